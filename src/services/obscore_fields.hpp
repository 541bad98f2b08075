// VOTable FIELDs for ObsCore-named result columns, with their metadata
// (datatype, unit, UCD, utype, description) taken from repo::obscore_columns()
// so that every service's columns agree with the ivoa.obscore table.
#pragma once

#include <string_view>

#include "repo/obscore_schema.hpp"
#include "votable/model.hpp"

namespace pixserve::services {

// The FIELD of one ObsCore column (ID = name, so that service descriptors
// can ref it). Throws std::invalid_argument for an unknown column name.
votable::Field obscore_field(std::string_view name);

// The same with s_region as a DALI polygon (double array, xtype="polygon")
// instead of the STC-S string: what SIA and the datasets query return.
votable::Field obscore_polygon_field(std::string_view name = "s_region");

}  // namespace pixserve::services
