// SIAv2 (/api/sia/query, standardID ivo://ivoa.net/std/SIA#query-2.0): the
// standard face of the datasets search. Every SIA 2.0 parameter plus the
// survey extensions (VISIT, DETECTOR, RAFT, TRACT, PATCH, DPSUBTYPE); ObsCore
// rows whose access_url leads to DataLink.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "repo/dataset.hpp"
#include "services/obscore_fields.hpp"
#include "services/repository_access.hpp"
#include "votable/model.hpp"

namespace pixserve::services {

// Every ObsCore column (s_region as a DALI polygon), in ivoa.obscore order.
const ObscoreColumns& sia_columns();

std::vector<dali::ParamSpec> sia_query_params(const dali::ResultLimits& limits);

dali::Service sia_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                          std::vector<dali::AvailabilityCheck> checks);

}  // namespace pixserve::services
