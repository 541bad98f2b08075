// /api/datasets/query: the datasets of the repository by position, type,
// band, collection, visit and detector, as ObsCore-named columns, for
// operators and scripts. Built on repo::Registry::find; the SIAv2 service
// reuses its columns and row conversion.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "repo/dataset.hpp"
#include "services/repository_access.hpp"
#include "votable/model.hpp"

namespace pixserve::services {

// The result columns, in row order.
const std::vector<votable::Field>& dataset_fields();
// One result row for a record, in dataset_fields() order.
std::vector<votable::Value> dataset_row(const repo::DatasetRecord& record, const SharedRepository& repository);

// The parameters of /api/datasets/query (POS, DPSUBTYPE, BAND, COLLECTION,
// VISIT, DETECTOR, MAXREC, RESPONSEFORMAT).
std::vector<dali::ParamSpec> dataset_query_params(const dali::ResultLimits& limits);

// The "datasets" service. Anonymous requests see public datasets whose
// embargo has ended.
dali::Service datasets_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               std::vector<dali::AvailabilityCheck> checks);

}  // namespace pixserve::services
