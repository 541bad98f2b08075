// /api/datasets/query: the datasets of the repository by position, type,
// band, collection, visit and detector, as ObsCore-named columns, for
// operators and scripts. Built on repo::Registry::find; the SIAv2 service
// reuses its columns and row conversion.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "repo/dataset.hpp"
#include "services/obscore_fields.hpp"
#include "services/repository_access.hpp"
#include "votable/model.hpp"

namespace pixserve::services {

// The result columns.
const ObscoreColumns& dataset_columns();

// The search parameters the datasets query and SIA share: POS, DPSUBTYPE,
// COLLECTION, VISIT, DETECTOR, RAFT, TRACT, PATCH.
std::vector<dali::ParamSpec> survey_params();
// Sets the members of q those parameters constrain.
void apply_survey_params(const dali::ParsedParams& params, repo::DatasetQuery& q);

// Runs q for the caller's visible datasets (VisibleDatasets; nullopt: a
// query known to match nothing) with MAXREC + 1 as the limit, and streams one
// row of `columns` per record as it is read as `table` (whose fields and rows are set here) in
// the requested RESPONSEFORMAT. base_url makes access_url absolute;
// `columns` must outlive the response's body (a static set of columns).
http::Response dataset_query_response(std::shared_ptr<SharedRepository> repository, const dali::ParsedParams& params,
                                      const dali::ResultLimits& limits, std::optional<repo::DatasetQuery> q,
                                      dali::TableResult table, const ObscoreColumns& columns, std::string base_url);

// The parameters of /api/datasets/query (POS, DPSUBTYPE, BAND, COLLECTION,
// VISIT, DETECTOR, MAXREC, RESPONSEFORMAT).
std::vector<dali::ParamSpec> dataset_query_params(const dali::ResultLimits& limits);

// The "datasets" service. Anonymous requests see public datasets whose
// embargo has ended.
dali::Service datasets_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               std::vector<dali::AvailabilityCheck> checks);

}  // namespace pixserve::services
