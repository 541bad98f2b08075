#include "services/datasets.hpp"

#include <string>
#include <variant>

#include <spdlog/spdlog.h>

#include "db/database.hpp"
#include "repo/astro_units.hpp"
#include "services/links.hpp"
#include "services/obscore_fields.hpp"

namespace pixserve::services {
namespace {

constexpr std::array kDatasetTypes{"raw",      "bias",      "flat",           "calexp", "calexp_comp",
                                   "diffim",   "deepCoadd", "goodSeeingCoadd", "user"};

}  // namespace

const ObscoreColumns& dataset_columns() {
  static const ObscoreColumns kColumns({"obs_id", "obs_publisher_did", "dataproduct_type", "dataproduct_subtype",
                                        "calib_level", "obs_collection", "band", "visit", "detector", "tract", "patch",
                                        "s_ra", "s_dec", "s_fov", "s_region", "t_min", "t_max", "t_exptime", "em_min",
                                        "em_max", "access_estsize"});
  return kColumns;
}

std::vector<dali::ParamSpec> survey_params() {
  return {
      {.name = "POS",
       .type = dali::ParamType::shape,
       .description = "Region the dataset footprint must intersect: CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 "
                      "or POLYGON ra1 dec1 ... (degrees, ICRS). Datasets without a footprint, i.e. calibrations, "
                      "never match.",
       .unit = "deg",
       .ucd = "pos.outline;obs",
       .multiple = true,
       .example = "CIRCLE 53.0 -28.0 0.1"},
      {.name = "DPSUBTYPE",
       .type = dali::ParamType::enumerated,
       .description = "Dataset type (ObsCore dataproduct_subtype).",
       .ucd = "meta.code.class",
       .options = {kDatasetTypes.begin(), kDatasetTypes.end()},
       .multiple = true,
       .example = "calexp"},
      {.name = "COLLECTION",
       .type = dali::ParamType::text,
       .description = "Collection: a data release such as DR1, or prompt.",
       .ucd = "meta.id",
       .multiple = true,
       .example = "DR1"},
      {.name = "VISIT",
       .type = dali::ParamType::integer,
       .description = "Visit number.",
       .ucd = "meta.id;obs",
       .min = 0.0,
       .multiple = true,
       .example = "1000000"},
      {.name = "DETECTOR",
       .type = dali::ParamType::integer,
       .description = "Detector number.",
       .ucd = "meta.id;instr.det",
       .min = 0.0,
       .max = 999.0,
       .multiple = true,
       .example = "4"},
      {.name = "RAFT",
       .type = dali::ParamType::text,
       .description = "Raft of the detector, e.g. R22 (with VISIT: all PVIs of one raft of a visit).",
       .ucd = "meta.id;instr.det",
       .multiple = true,
       .example = "R22"},
      {.name = "TRACT",
       .type = dali::ParamType::integer,
       .description = "Sky-map tract of a coadd.",
       .ucd = "meta.id;pos",
       .min = 0.0,
       .multiple = true,
       .example = "0"},
      {.name = "PATCH",
       .type = dali::ParamType::text,
       .description = "Sky-map patch of a coadd within its tract, as x,y.",
       .ucd = "meta.id;pos",
       .multiple = true,
       .example = "1,1"},
  };
}

void apply_survey_params(const dali::ParsedParams& params, repo::DatasetQuery& q) {
  for (const auto& v : params.all("POS")) {
    std::visit(
        [&](const auto& shape) {
          using T = std::decay_t<decltype(shape)>;
          if constexpr (std::is_same_v<T, sky::Circle> || std::is_same_v<T, sky::Polygon> ||
                        std::is_same_v<T, sky::RaDecRange>) {
            q.regions.emplace_back(shape);
          }
        },
        v);
  }
  q.dataset_types = params.all_as<std::string>("DPSUBTYPE");
  q.collections = params.all_as<std::string>("COLLECTION");
  q.visits = params.all_as<std::int64_t>("VISIT");
  q.detectors = params.all_as<std::int64_t>("DETECTOR");
  q.rafts = params.all_as<std::string>("RAFT");
  q.tracts = params.all_as<std::int64_t>("TRACT");
  q.patches = params.all_as<std::string>("PATCH");
}

http::Response dataset_query_response(std::shared_ptr<SharedRepository> repository, const dali::ParsedParams& params,
                                      const dali::ResultLimits& limits, std::optional<repo::DatasetQuery> query,
                                      dali::TableResult table, const ObscoreColumns& columns, std::string base_url) {
  dali::response_format(params);  // a bad RESPONSEFORMAT fails before the query runs
  const std::int64_t maxrec = dali::effective_maxrec(params, limits);
  // The first pass (the keys of what matches) runs now, so that its
  // failures are the usual error answer; the records are then read a chunk
  // at a time as the response is written (VisibleDatasets).
  std::shared_ptr<VisibleDatasets> found;
  if (query && maxrec > 0) {
    // One more than MAXREC tells whether the result overflows.
    query->limit = static_cast<std::size_t>(maxrec) + 1;
    found = std::make_shared<VisibleDatasets>(repository, std::move(*query), params.caller());
  }
  table.fields = columns.fields();
  // One row refilled per record: a cone answers thousands of rows, and
  // building each as a fresh vector of fresh strings cost as much as
  // writing it.
  table.rows = [found, &columns, did_prefix = repository->publisher_did(""),
                base_url = std::move(base_url)](const dali::RowSink& emit) {
    if (!found) return;
    ObscoreRows rows(columns, did_prefix, base_url);
    try {
      found->for_each([&](repo::DatasetRecord&& r) { return emit(rows.row(r)); });
    } catch (const db::Unavailable& e) {
      throw dali::database_lost_mid_stream("datasets", e);
    }
  };
  return dali::table_response(params, limits, std::move(table));
}

std::vector<dali::ParamSpec> dataset_query_params(const dali::ResultLimits& limits) {
  std::vector<dali::ParamSpec> p = survey_params();
  p.push_back({.name = "BAND",
               .type = dali::ParamType::enumerated,
               .description = "Band letter (the survey's filter band, not a wavelength interval).",
               .ucd = "instr.bandpass",
               .options = {"u", "g", "r", "i", "z", "y"},
               .multiple = true,
               .example = "r"});
  for (auto& r : dali::result_params(limits)) p.push_back(std::move(r));
  return p;
}

dali::Service datasets_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint query{
      .path = "query",
      .summary = "Datasets of the repository by position, type, band, collection, visit and detector",
      .description =
          "Searches the registry (HEALPix index, then an exact spherical test) and returns one row per dataset "
          "with ObsCore column names; s_region is the footprint as a DALI polygon. Values of one parameter are "
          "OR'ed, different parameters AND'ed. Only datasets the caller may read are listed (anonymous: public ones whose embargo has ended).",
      .params = dataset_query_params(limits),
      .result_types = dali::table_result_types(),
      .example_params = {"POS"},
  };
  query.handler = [repository, limits](const http::Request&, const dali::ParsedParams& params) {
    repo::DatasetQuery q;
    apply_survey_params(params, q);
    q.bands = params.all_as<std::string>("BAND");
    // No access_url among these columns: no base URL needed.
    return dataset_query_response(repository, params, limits, std::move(q),
                                  {.name = "datasets", .description = "Datasets matching the query"},
                                  dataset_columns(), {});
  };
  return dali::Service{
      .name = std::string(links::kDatasets),
      .title = "Repository datasets",
      .description = "Find the datasets of the repository by position and data ID; ObsCore column names.",
      .endpoints = {std::move(query)},
      .checks = std::move(checks),
  };
}

}  // namespace pixserve::services
