#include "services/moc.hpp"

#include <fmt/format.h>

#include "repo/coverage.hpp"
#include "repo/astro_units.hpp"
#include "services/datasets.hpp"
#include "services/links.hpp"

namespace pixserve::services {
namespace {

dali::ParamSpec format_param() {
  return {.name = "FORMAT",
          .type = dali::ParamType::enumerated,
          .description = "Serialisation: fits (MOC 2.0 FITS), ascii (MOC 2.0 string) or json.",
          .options = {"fits", "ascii", "json"},
          .default_value = "fits",
          // json: the example links open in a browser, where FITS would be a download.
          .example = "json"};
}

std::vector<dali::ParamSpec> selection_params(int default_order) {
  auto p = survey_params();
  p.push_back({.name = "BAND",
               .type = dali::ParamType::enumerated,
               .description = "Band letter.",
               .ucd = "instr.bandpass",
               .options = {"u", "g", "r", "i", "z", "y"},
               .multiple = true,
               .example = "r"});
  p.push_back({.name = "ORDER",
               .type = dali::ParamType::integer,
               .description = fmt::format("HEALPix order of the MOC's cells (MOCORD_S), 0 to {}.", kMocMaxHttpOrder),
               .ucd = "meta.number",
               .min = 0.0,
               .max = static_cast<double>(kMocMaxHttpOrder),
               .default_value = std::to_string(default_order),
               .example = "12"});
  p.push_back(format_param());
  return p;
}

std::vector<repo::DatasetRecord> select(SharedRepository& repository, const dali::ParsedParams& params,
                                        std::vector<std::string> default_types) {
  repo::DatasetQuery q;
  apply_survey_params(params, q);
  q.bands = params.all_as<std::string>("BAND");
  if (q.dataset_types.empty()) q.dataset_types = std::move(default_types);
  q.limit = kMocMaxDatasets + 1;
  q.patches_only = true;
  auto found = repository.find_visible(std::move(q), params.caller());
  if (found.size() > kMocMaxDatasets) {
    throw dali::usage_error(fmt::format("the selection has more than {} datasets: narrow it (POS, DPSUBTYPE, BAND, "
                                        "COLLECTION, ...) or use `pixserve moc`",
                                        kMocMaxDatasets));
  }
  return found;
}

http::Response moc_response(const std::string& format, std::string fits, std::string ascii, std::string json,
                            const std::string& name) {
  http::Response res;
  if (format == "ascii") {
    res = http::Response::text(200, std::move(ascii) + "\n", "text/plain; charset=utf-8");
  } else if (format == "json") {
    res = http::Response::text(200, std::move(json), "application/json");
  } else {
    res = http::Response::text(200, std::move(fits), "application/fits");
    res.headers.set("Content-Disposition", fmt::format("inline; filename=\"{}.fits\"", name));
  }
  return res;
}

}  // namespace

dali::Service moc_service(std::shared_ptr<SharedRepository> repository, std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint query{
      .path = "query",
      .summary = "The sky coverage of a selection of datasets as a MOC 2.0",
      .description = "The union of the footprints of the matching datasets (all types with a footprint unless "
                     "DPSUBTYPE says otherwise) as HEALPix cells of ORDER: every cell shares at least one point "
                     "with a footprint, and every point of a footprint lies in a cell. FITS (NUNIQ packaging, "
                     "MOCVERS 2.0), ASCII or JSON. An empty selection gives an empty MOC.",
      .params = selection_params(repo::kDefaultMocOrder),
      .methods = {"GET", "POST"},
      .result_types = {"application/fits", "text/plain", "application/json"},
      .example_params = {"FORMAT"},
  };
  query.handler = [repository](const http::Request& request, const dali::ParsedParams& params) {
    const auto order = static_cast<int>(*params.first<std::int64_t>("ORDER"));
    const auto format = *params.first<std::string>("FORMAT");
    const auto records = select(*repository, params, {});
    const auto moc = repo::coverage_moc(records, order, 2);
    const std::string id = request.base_url() + links::endpoint(links::kMoc, "query");
    return moc_response(format, sky::to_fits(moc, {.moc_id = id, .date = repo::iso_from_mjd(repo::mjd_now())}),
                        moc.to_ascii(), moc.to_json(), "moc");
  };

  auto st_params = selection_params(10);
  st_params.push_back({.name = "TIME_ORDER",
                       .type = dali::ParamType::integer,
                       .description = "Order of the time cells (MOCORD_T): 2^(61 - order) microseconds each; 31 "
                                      "(about 18 minutes) by default, MOC 2.0's advice when times are not TCB.",
                       .ucd = "meta.number",
                       .min = 0.0,
                       .max = 61.0,
                       .default_value = std::to_string(repo::kDefaultTimeOrder),
                       .example = "31"});
  dali::Endpoint stmoc{
      .path = "stmoc",
      .summary = "The space-time coverage of a selection of datasets as a MOC 2.0 ST-MOC",
      .description = "Each matching dataset's time interval (t_min to t_max) with its footprint, merged into a "
                     "space-time MOC (MOCDIM TIME.SPACE). Visit images (calexp) unless DPSUBTYPE says otherwise. "
                     "FITS (RANGE packaging, time values with the 64th bit set), ASCII or JSON.",
      .params = std::move(st_params),
      .methods = {"GET", "POST"},
      .result_types = {"application/fits", "text/plain", "application/json"},
      .example_params = {"FORMAT"},
  };
  stmoc.handler = [repository](const http::Request& request, const dali::ParsedParams& params) {
    const auto order = static_cast<int>(*params.first<std::int64_t>("ORDER"));
    const auto time_order = static_cast<int>(*params.first<std::int64_t>("TIME_ORDER"));
    const auto format = *params.first<std::string>("FORMAT");
    const auto records = select(*repository, params, {"calexp"});
    const auto st = repo::coverage_stmoc(records, time_order, order, 2);
    const std::string id = request.base_url() + links::endpoint(links::kMoc, "stmoc");
    return moc_response(format, st.to_fits({.moc_id = id, .date = repo::iso_from_mjd(repo::mjd_now())}),
                        st.to_ascii(), st.to_json(), "stmoc");
  };
  return dali::Service{
      .name = std::string(links::kMoc),
      .title = "MOC coverage",
      .description = "IVOA MOC 2.0 coverage (space, and space-time) of any selection of the repository's datasets.",
      .endpoints = {std::move(query), std::move(stmoc)},
      .checks = std::move(checks),
  };
}

}  // namespace pixserve::services
