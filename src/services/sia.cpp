#include "services/sia.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "services/datasets.hpp"
#include "services/links.hpp"
#include "services/obscore_fields.hpp"

namespace pixserve::services {
namespace {

std::vector<repo::Range> ranges(const dali::ParsedParams& params, std::string_view name) {
  std::vector<repo::Range> out;
  for (const auto& i : params.all_as<dali::Interval>(name)) out.push_back({i.lo, i.hi});
  return out;
}

dali::ParamSpec interval_param(std::string name, std::string description, std::string unit, std::string ucd,
                               std::string example) {
  return {.name = std::move(name),
          .type = dali::ParamType::interval,
          .description = std::move(description),
          .unit = std::move(unit),
          .ucd = std::move(ucd),
          .multiple = true,
          .example = std::move(example),
          .standard = true};
}

dali::ParamSpec text_param(std::string name, std::string description, std::string ucd, std::string example) {
  return {.name = std::move(name),
          .type = dali::ParamType::text,
          .description = std::move(description),
          .ucd = std::move(ucd),
          .multiple = true,
          .example = std::move(example),
          .standard = true};
}

// The query the parameters ask for; nullopt when they can match nothing
// (a polarization, a product type other than image, IDs of other services).
std::optional<repo::DatasetQuery> sia_query(const dali::ParsedParams& params, const SharedRepository& repository) {
  repo::DatasetQuery q;
  apply_survey_params(params, q);
  if (params.has("POL")) return std::nullopt;  // the images are unpolarized: no pol_states
  if (params.has("DPTYPE")) {
    const auto types = params.all_as<std::string>("DPTYPE");
    if (std::find(types.begin(), types.end(), "image") == types.end()) return std::nullopt;
  }
  if (params.has("ID")) {
    for (const auto& id : params.all_as<std::string>("ID")) {
      if (auto dataset_id = repository.dataset_id_from(id)) q.dataset_ids.push_back(std::move(*dataset_id));
    }
    if (q.dataset_ids.empty()) return std::nullopt;
  }
  q.times = ranges(params, "TIME");
  q.wavelengths = ranges(params, "BAND");
  q.fovs = ranges(params, "FOV");
  q.spatial_resolutions = ranges(params, "SPATRES");
  q.exptimes = ranges(params, "EXPTIME");
  q.time_resolutions = ranges(params, "TIMERES");
  q.resolving_powers = ranges(params, "SPECRP");
  q.facilities = params.all_as<std::string>("FACILITY");
  q.instruments = params.all_as<std::string>("INSTRUMENT");
  q.targets = params.all_as<std::string>("TARGET");
  q.content_types = params.all_as<std::string>("FORMAT");
  q.calib_levels = params.all_as<std::int64_t>("CALIB");
  return q;
}

}  // namespace

const ObscoreColumns& sia_columns() {
  static const ObscoreColumns kColumns = ObscoreColumns::all();
  return kColumns;
}

std::vector<dali::ParamSpec> sia_query_params(const dali::ResultLimits& limits) {
  std::vector<dali::ParamSpec> p = survey_params();
  for (auto& spec : p) spec.standard = spec.name == "POS" || spec.name == "COLLECTION";
  p.push_back(interval_param("BAND", "Wavelength interval (vacuum, metres) the image's band must overlap.", "m",
                             "em.wl", "5.5e-7 6.5e-7"));
  p.push_back(interval_param("TIME", "Time interval (MJD) the observation must overlap.", "d", "time.interval",
                             "60000 60001.5"));
  p.push_back({.name = "POL",
               .type = dali::ParamType::enumerated,
               .description = "Polarization states the image must have; the survey's images are unpolarized, "
                              "so any value matches nothing.",
               .ucd = "meta.code;phys.polarization",
               .options = {"I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX", "POLI", "POLA"},
               .multiple = true,
               .example = "I",
               .standard = true});
  p.push_back(interval_param("FOV", "Interval containing the image's field of view (s_fov, degrees).", "deg",
                             "phys.angSize;instr.fov", "0.1 +Inf"));
  p.push_back(interval_param("SPATRES", "Interval containing the image's spatial resolution (arcsec).", "arcsec",
                             "pos.angResolution", "0 1.0"));
  p.push_back(interval_param("EXPTIME", "Interval containing the exposure time (seconds).", "s",
                             "time.duration;obs.exposure", "15 60"));
  p.push_back(text_param("ID", "Publisher DID of a dataset (obs_publisher_did).", "meta.id;meta.main",
                         "ivo://pixserve.example/repo?DR1.calexp.v1000000.d004"));
  p.push_back(text_param("FACILITY", "Facility name (exact).", "meta.id;instr.tel", "Simulated Survey Telescope"));
  p.push_back(text_param("INSTRUMENT", "Instrument name (exact).", "meta.id;instr", "SimCam"));
  p.push_back(text_param("DPTYPE", "Data product type; everything here is an image.", "meta.code.class", "image"));
  p.push_back({.name = "CALIB",
               .type = dali::ParamType::integer,
               .description = "Calibration level: 1 raw, bias and flat; 2 calibrated single exposures (calexp); 3 "
                              "enhanced products (difference images, coadds, user images).",
               .ucd = "meta.code;obs.calib",
               .min = 0.0,
               .max = 4.0,
               .multiple = true,
               .example = "2",
               .standard = true});
  p.push_back(text_param("TARGET", "Target name (exact).", "meta.id;src", "field1"));
  p.push_back(interval_param("TIMERES", "Interval containing the time resolution (seconds; the exposure time).",
                             "s", "time.resolution", "0 100"));
  p.push_back(interval_param("SPECRP", "Interval containing the spectral resolving power (lambda/dlambda).", "",
                             "spect.resolution", "1 10"));
  p.push_back(text_param("FORMAT", "Content type of the dataset's file, e.g. application/fits.", "meta.code.mime",
                         "application/fits"));
  for (auto& r : dali::result_params(limits)) p.push_back(std::move(r));
  return p;
}

dali::Service sia_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                          std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint query{
      .path = "query",
      .summary = "Images by position, band, time and survey data ID (SIA 2.0)",
      .description =
          "Simple Image Access 2.0 query. Values of one parameter are OR'ed, different parameters AND'ed; "
          "intervals take -Inf/+Inf for open ends. Spatial constraints use the HEALPix index and an exact "
          "spherical footprint test; calibrations (no footprint) only appear without one. Survey extensions: "
          "DPSUBTYPE, VISIT, DETECTOR, RAFT, TRACT, PATCH (e.g. VISIT=v&RAFT=R22: the PVIs of one raft of a "
          "visit). Rows are ObsCore records ordered by obs_id; access_url leads to the DataLink links of each.",
      .params = sia_query_params(limits),
      .result_types = dali::table_result_types(),
      .standard_id = "ivo://ivoa.net/std/SIA#query-2.0",
      .interface_version = "2.0",
      .example_params = {"POS"},
  };
  query.handler = [repository, limits](const http::Request& request, const dali::ParsedParams& params) {
    return dataset_query_response(repository, params, limits, sia_query(params, *repository),
                                  {.name = "results", .description = "Images matching the query (ObsCore)"},
                                  sia_columns(), request.base_url());
  };
  return dali::Service{
      .name = std::string(links::kSia),
      .title = "Image search (SIA 2.0)",
      .description = "Simple Image Access 2.0 over the survey repository, with survey data-ID extensions.",
      .endpoints = {std::move(query)},
      .checks = std::move(checks),
  };
}

}  // namespace pixserve::services
