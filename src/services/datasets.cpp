#include "services/datasets.hpp"

#include <string>
#include <variant>

#include "repo/astro_units.hpp"
#include "services/obscore_fields.hpp"

namespace pixserve::services {
namespace {

constexpr std::array kDatasetTypes{"raw",      "bias",      "flat",           "calexp", "calexp_comp",
                                   "diffim",   "deepCoadd", "goodSeeingCoadd", "user"};

template <typename T>
votable::Value optional_value(const std::optional<T>& v) {
  return v ? votable::Value(*v) : votable::Value();
}

votable::Value text_or_null(const std::string& s) { return s.empty() ? votable::Value() : votable::Value(s); }

}  // namespace

const std::vector<votable::Field>& dataset_fields() {
  static const std::vector<votable::Field> kFields = [] {
    std::vector<votable::Field> f;
    for (const char* name : {"obs_id", "obs_publisher_did", "dataproduct_type", "dataproduct_subtype", "calib_level",
                             "obs_collection", "band", "visit", "detector", "tract", "patch", "s_ra", "s_dec", "s_fov"}) {
      f.push_back(obscore_field(name));
    }
    f.push_back(obscore_polygon_field("s_region"));
    for (const char* name : {"t_min", "t_max", "t_exptime", "em_min", "em_max", "access_estsize"}) {
      f.push_back(obscore_field(name));
    }
    return f;
  }();
  return kFields;
}

std::vector<votable::Value> dataset_row(const repo::DatasetRecord& r, const SharedRepository& repository) {
  const auto& id = r.data_id;
  std::vector<votable::Value> row;
  row.reserve(dataset_fields().size());
  row.emplace_back(r.dataset_id);
  row.emplace_back(repository.publisher_did(r.dataset_id));
  row.emplace_back("image");
  row.emplace_back(repo::to_string(r.type));
  row.emplace_back(repo::calib_level(r.type));
  row.emplace_back(r.collection);
  row.push_back(text_or_null(id.band));
  row.push_back(optional_value(id.visit));
  row.push_back(optional_value(id.detector));
  row.push_back(optional_value(id.tract));
  row.push_back(text_or_null(id.patch));
  row.push_back(optional_value(r.s_ra));
  row.push_back(optional_value(r.s_dec));
  row.push_back(optional_value(r.s_fov));
  row.push_back(r.footprint ? votable::Value(sky::to_dali_array(*r.footprint)) : votable::Value());
  row.push_back(optional_value(r.t_min));
  row.push_back(optional_value(r.t_max));
  row.push_back(optional_value(r.t_exptime));
  row.push_back(optional_value(r.em_min));
  row.push_back(optional_value(r.em_max));
  row.emplace_back((r.file_size + 1023) / 1024);
  return row;
}

std::vector<dali::ParamSpec> dataset_query_params(const dali::ResultLimits& limits) {
  std::vector<dali::ParamSpec> p{
      {.name = "POS",
       .type = dali::ParamType::shape,
       .description = "Region the dataset footprint must intersect (datasets without a footprint, i.e. "
                      "calibrations, never match).",
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
      {.name = "BAND",
       .type = dali::ParamType::enumerated,
       .description = "Band letter (the survey's filter band, not a wavelength interval).",
       .ucd = "instr.bandpass",
       .options = {"u", "g", "r", "i", "z", "y"},
       .multiple = true,
       .example = "r"},
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
  };
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
          "OR'ed, different parameters AND'ed. Only public datasets whose embargo has ended are listed.",
      .params = dataset_query_params(limits),
      .result_types = {"application/x-votable+xml", "application/x-votable+xml;serialization=BINARY2", "text/csv",
                       "text/tab-separated-values"},
  };
  query.handler = [repository, limits](const http::Request&, const dali::ParsedParams& params) {
    dali::response_format(params);  // a bad RESPONSEFORMAT fails before the query runs
    const std::int64_t maxrec = dali::effective_maxrec(params, limits);
    repo::DatasetQuery q;
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
    q.bands = params.all_as<std::string>("BAND");
    q.collections = params.all_as<std::string>("COLLECTION");
    q.visits = params.all_as<std::int64_t>("VISIT");
    q.detectors = params.all_as<std::int64_t>("DETECTOR");
    q.public_at = repo::mjd_now();
    // One more than MAXREC tells whether the result overflows.
    q.limit = static_cast<std::size_t>(maxrec) + 1;
    auto records = std::make_shared<const std::vector<repo::DatasetRecord>>(
        maxrec == 0 ? std::vector<repo::DatasetRecord>{}
                    : repository->with([&q](repo::Repository& r) { return r.registry().find(q); }));
    return dali::table_response(
        params, limits,
        {.name = "datasets",
         .description = "Datasets matching the query",
         .fields = dataset_fields(),
         .rows = [records, repository](const dali::RowSink& emit) {
           for (const auto& r : *records) {
             if (!emit(dataset_row(r, *repository))) return;
           }
         }});
  };
  return dali::Service{
      .name = "datasets",
      .title = "Repository datasets",
      .description = "Find the datasets of the repository by position and data ID; ObsCore column names.",
      .endpoints = {std::move(query)},
      .checks = std::move(checks),
  };
}

}  // namespace pixserve::services
