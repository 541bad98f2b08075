#include "services/obscore_fields.hpp"

#include <stdexcept>
#include <string>

namespace pixserve::services {

votable::Field obscore_field(std::string_view name) {
  for (const auto& c : repo::obscore_columns()) {
    if (c.name != name) continue;
    const auto datatype = votable::parse_datatype(c.datatype);
    if (!datatype) throw std::invalid_argument("ObsCore column " + std::string(name) + ": unknown datatype");
    votable::Field f;
    f.name = std::string(c.name);
    f.id = std::string(c.name);
    f.datatype = *datatype;
    f.arraysize = std::string(c.arraysize);
    f.unit = std::string(c.unit);
    f.ucd = std::string(c.ucd);
    f.utype = std::string(c.utype);
    f.xtype = std::string(c.xtype);
    f.description = std::string(c.description);
    return f;
  }
  throw std::invalid_argument("no ObsCore column named " + std::string(name));
}

votable::Field obscore_polygon_field(std::string_view name) {
  votable::Field f = obscore_field(name);
  f.datatype = votable::Datatype::double_;
  f.arraysize = "*";
  f.xtype = "polygon";
  f.description = "Footprint of the image on the sky from its WCS, as a DALI polygon (ra1 dec1 ra2 dec2 ... in degrees)";
  return f;
}

}  // namespace pixserve::services
