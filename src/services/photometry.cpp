#include "services/photometry.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "dali/errors.hpp"
#include "http/headers.hpp"
#include "http/params.hpp"
#include "image/exposure.hpp"
#include "image/header.hpp"
#include "image/photometry.hpp"
#include "services/links.hpp"
#include "services/sia.hpp"
#include "votable/reader.hpp"
#include "uws/job_service.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::services {
namespace {

// AB magnitude of 1 nJy.
constexpr double kNanojanskyMagnitude = 31.4;
// The footprint search circle around each position: the registry's
// footprints are polygons, so a point query is a circle this small.
constexpr double kPointSearchRadiusDeg = 1e-7;
// Positions per registry search: each is a circle of the search's index
// condition, and a search of thousands of circles is one long statement.
constexpr std::size_t kPositionsPerSearch = 200;
// SODA stamps around each measurement: a few aperture radii, at least this.
constexpr double kMinStampRadiusArcsec = 10.0;

dali::UsageError photometry_bad(std::string message) { return dali::UsageError(std::move(message)); }

// A declaration of SIA's, so that BAND, TIME and COLLECTION mean here what
// they mean in an image search.
dali::ParamSpec sia_param(const dali::ResultLimits& limits, std::string_view name) {
  for (auto& spec : sia_query_params(limits)) {
    if (spec.name == name) {
      spec.standard = false;
      return spec;
    }
  }
  throw std::logic_error(fmt::format("SIA declares no parameter {}", name));
}

std::vector<repo::Range> photometry_ranges(const dali::ParsedParams& params, std::string_view name) {
  std::vector<repo::Range> out;
  for (const auto& i : params.all_as<dali::Interval>(name)) out.push_back({i.lo, i.hi});
  return out;
}

// One image to measure: its registry record and the positions its
// footprint contains.
struct Target {
  repo::DatasetRecord record;
  std::vector<std::size_t> positions;
};

// The caller's images of the request, each with the positions on its
// footprint; sorted by dataset ID.
std::vector<Target> find_targets(SharedRepository& repository, const PhotometryRequest& request,
                                 const auth::Identity& caller) {
  repo::DatasetQuery base;
  base.dataset_types = {request.subtype};
  base.collections = request.collections;
  base.times = request.times;
  base.wavelengths = request.wavelengths;
  if (!request.ids.empty()) {
    base.dataset_types.clear();  // the IDs say which images; DPSUBTYPE only chooses without them
    for (const auto& id : request.ids) {
      const auto dataset_id = repository.dataset_id_from(id);
      if (!dataset_id || !repo::is_safe_identifier(*dataset_id)) {
        throw dali::NotFound(fmt::format("ID '{}' is not a known dataset", id.substr(0, 120)));
      }
      base.dataset_ids.push_back(*dataset_id);
    }
  }
  std::map<std::string, Target, std::less<>> found;
  for (std::size_t first = 0; first < request.positions.size(); first += kPositionsPerSearch) {
    repo::DatasetQuery q = base;
    const std::size_t last = std::min(request.positions.size(), first + kPositionsPerSearch);
    for (std::size_t i = first; i < last; ++i) {
      q.regions.emplace_back(sky::Circle{.center = request.positions[i], .radius_deg = kPointSearchRadiusDeg});
    }
    for (auto& record : repository.find_visible(std::move(q), caller)) {
      if (!record.footprint) continue;
      auto& target = found.try_emplace(record.dataset_id, Target{.record = record, .positions = {}}).first->second;
      for (std::size_t i = first; i < last; ++i) {
        if (record.footprint->contains(request.positions[i])) target.positions.push_back(i);
      }
    }
  }
  std::vector<Target> out;
  for (auto& [id, target] : found) {
    if (target.record.type != repo::DatasetType::calexp && target.record.type != repo::DatasetType::calexp_comp &&
        target.record.type != repo::DatasetType::diffim) {
      if (!request.ids.empty()) {
        throw photometry_bad(fmt::format("ID {} is a {}: forced photometry measures calexp and diffim images", id,
                                         repo::to_string(target.record.type)));
      }
      continue;
    }
    if (!target.positions.empty()) out.push_back(std::move(target));
  }
  return out;
}

// The pixels of one image: its stored file, the cached file of a virtual
// product, or the part source that computes a virtual product's box alone.
struct PixelSource {
  image::ExposureFrame frame;
  std::function<image::Exposure(const fits::PixelBox&)> pixels;
};

PixelSource open_pixels(SharedRepository& repository, const repo::DatasetRecord& record) {
  return recreation_faults_to_server([&] {
    if (auto part = repository.part_of(record)) {
      auto shared = std::make_shared<products::ProductPart>(std::move(*part));
      return PixelSource{.frame = image::read_exposure_frame(shared->exposure().headers),
                         .pixels = [shared](const fits::PixelBox& box) { return shared->exposure().pixels(box); }};
    }
    auto path = repository.file_of(record);
    return PixelSource{.frame = image::read_exposure_frame(path),
                       .pixels = [path](const fits::PixelBox& box) { return image::read_exposure(path, box); }};
  });
}

votable::Field photometry_field(std::string name, votable::Datatype type, std::string unit, std::string ucd,
                                std::string description) {
  votable::Field f;
  f.id = name;
  f.name = std::move(name);
  f.datatype = type;
  if (type == votable::Datatype::char_) f.arraysize = "*";
  f.unit = std::move(unit);
  f.ucd = std::move(ucd);
  f.description = std::move(description);
  return f;
}

const std::vector<votable::Field>& photometry_fields() {
  using votable::Datatype;
  static const std::vector<votable::Field> kFields = {
      photometry_field("pos_index", Datatype::int_, "", "meta.number", "0-based index of the position among POS"),
      photometry_field("ra", Datatype::double_, "deg", "pos.eq.ra;meta.main", "Right ascension of the position (ICRS)"),
      photometry_field("dec", Datatype::double_, "deg", "pos.eq.dec;meta.main", "Declination of the position (ICRS)"),
      photometry_field("obs_id", Datatype::char_, "", "meta.id", "Dataset ID of the image (ObsCore obs_id)"),
      photometry_field("dataproduct_subtype", Datatype::char_, "", "meta.code.class", "calexp or diffim"),
      photometry_field("band", Datatype::char_, "", "instr.bandpass", "Band of the image"),
      photometry_field("visit", Datatype::long_, "", "meta.id;obs", "Visit of the image"),
      photometry_field("detector", Datatype::long_, "", "meta.id;instr.det", "Detector of the image"),
      photometry_field("mjd", Datatype::double_, "d", "time.epoch", "Middle of the exposure (MJD, TAI)"),
      photometry_field("x", Datatype::double_, "pixel", "pos.cartesian.x;instr.det",
                       "Column of the position on the image, 0-based (centre of the first pixel: 0)"),
      photometry_field("y", Datatype::double_, "pixel", "pos.cartesian.y;instr.det",
                       "Row of the position on the image, 0-based (centre of the first pixel: 0)"),
      photometry_field("flux", Datatype::double_, "nJy", "phot.flux.density",
                       "Forced flux: aperture sum or PSF fit, in nJy from the image's MAGZERO and EXPTIME"),
      photometry_field("flux_err", Datatype::double_, "nJy", "stat.error;phot.flux.density",
                       "1-sigma error of flux, from the variance plane"),
      photometry_field("zero_point", Datatype::double_, "mag", "phot.mag;arith.zp",
                       "MAGZERO of the image: the AB magnitude of one count per second"),
      photometry_field("mag", Datatype::double_, "mag", "phot.mag", "AB magnitude of flux; null when flux <= 0"),
      photometry_field("mag_err", Datatype::double_, "mag", "stat.error;phot.mag", "1-sigma error of mag"),
      photometry_field("flag_edge", Datatype::boolean, "", "meta.code",
                       "Part of the aperture (or PSF footprint) lies off the image"),
      photometry_field("flag_masked", Datatype::boolean, "", "meta.code",
                       "Pixels with a rejecting mask bit (bad, no data, cosmic ray, saturated) were left out"),
      photometry_field("flag_saturated", Datatype::boolean, "", "meta.code", "A saturated pixel lies in the aperture"),
      photometry_field("stamp_url", Datatype::char_, "", "meta.ref.url",
                       "SODA cutout of the image around the position, relative to the server's root URL"),
  };
  return kFields;
}

struct Row {
  std::size_t position = 0;
  double mjd = 0.0;
  std::string dataset_id;
  std::vector<votable::Value> cells;
};

votable::Value number_or_null(std::optional<double> v) {
  return v && std::isfinite(*v) ? votable::Value(*v) : votable::Value();
}

// Absolute on the root URL the request (or the job's creation) came
// through, as every other link the services write.
std::string stamp_url(const std::string& base_url, const std::string& did, const sky::SkyPoint& p,
                      double radius_arcsec) {
  const double r = std::max(3.0 * radius_arcsec, kMinStampRadiusArcsec) / 3600.0;
  return fmt::format("{}{}?ID={}&CIRCLE={}", base_url, links::endpoint(links::kSoda, "sync"), http::percent_encode(did),
                     http::percent_encode(fmt::format("{:.7f} {:.7f} {:.6f}", p.ra, p.dec, r)));
}

// Measures every position of one image. The PSF width is the image's
// PSFFWHM (arcsec), else the registry's.
void measure_image(SharedRepository& repository, const PhotometryRequest& request, const Target& target,
                   const std::string& base_url, const uws::CancelToken& cancel, std::vector<Row>& rows) {
  const auto& r = target.record;
  const PixelSource source = open_pixels(repository, r);
  const auto& frame = source.frame;
  const double scale_arcsec = frame.wcs.linear_scale_deg() * 3600.0;
  const auto zero_point = image::card_number(frame.primary, "MAGZERO");
  const auto exptime = image::card_number(frame.primary, "EXPTIME");
  const auto start = image::card_number(frame.primary, "MJD-OBS");
  std::optional<double> to_njy;
  if (zero_point && exptime && *exptime > 0.0) {
    to_njy = std::pow(10.0, -0.4 * (*zero_point - kNanojanskyMagnitude)) / *exptime;
  }
  double mjd = r.t_min && r.t_max ? 0.5 * (*r.t_min + *r.t_max) : std::nan("");
  if (start && exptime) mjd = *start + *exptime / 2.0 / 86400.0;
  double reach = request.radius_arcsec / scale_arcsec;
  double fwhm_px = 0.0;
  if (request.method == PhotometryMethod::psf) {
    const auto fwhm = image::card_number(frame.primary, "PSFFWHM");
    const double arcsec = fwhm.value_or(r.psf_fwhm.value_or(r.seeing.value_or(0.0)));
    if (!(arcsec > 0.0)) {
      throw dali::ServerFault(fmt::format("{} has no PSF width (PSFFWHM): use METHOD=aperture", r.dataset_id));
    }
    fwhm_px = arcsec / scale_arcsec;
    reach = 3.0 * fwhm_px;
  }
  const std::string did = repository.publisher_did(r.dataset_id);
  for (const std::size_t k : target.positions) {
    cancel.throw_if_cancelled();
    const sky::SkyPoint& p = request.positions[k];
    wcs::PixelPoint xy;
    try {
      xy = frame.wcs.sky_to_pixel(p);
    } catch (const wcs::WcsError&) {
      continue;  // not on this image's projection
    }
    const double w = static_cast<double>(frame.width), h = static_cast<double>(frame.height);
    if (!(xy.x >= -0.5 && xy.x < w - 0.5 && xy.y >= -0.5 && xy.y < h - 0.5)) continue;
    // The pixels the measurement can touch, and one more on each side.
    const long x0 = std::max(0L, static_cast<long>(std::floor(xy.x - reach)) - 1);
    const long y0 = std::max(0L, static_cast<long>(std::floor(xy.y - reach)) - 1);
    const long x1 = std::min(frame.width - 1, static_cast<long>(std::ceil(xy.x + reach)) + 1);
    const long y1 = std::min(frame.height - 1, static_cast<long>(std::ceil(xy.y + reach)) + 1);
    const fits::PixelBox box{.x0 = x0, .y0 = y0, .width = x1 - x0 + 1, .height = y1 - y0 + 1};
    const image::Exposure stamp = recreation_faults_to_server([&] { return source.pixels(box); });
    const double sx = xy.x - static_cast<double>(x0), sy = xy.y - static_cast<double>(y0);
    const image::ForcedMeasurement m = request.method == PhotometryMethod::psf
                                           ? image::psf_photometry(stamp, sx, sy, fwhm_px)
                                           : image::aperture_photometry(stamp, sx, sy, reach);
    // The box stops only at the image's borders, so an aperture off the
    // box is one off the image.
    std::optional<double> flux, flux_err, mag, mag_err;
    if (to_njy && m.valid()) {
      flux = m.flux * *to_njy;
      flux_err = m.flux_err * *to_njy;
      if (*flux > 0.0) {
        mag = kNanojanskyMagnitude - 2.5 * std::log10(*flux);
        mag_err = 2.5 / std::log(10.0) * *flux_err / *flux;
      }
    }
    Row row{.position = k, .mjd = mjd, .dataset_id = r.dataset_id, .cells = {}};
    row.cells = {
        votable::Value(static_cast<std::int64_t>(k)),
        votable::Value(p.ra),
        votable::Value(p.dec),
        votable::Value(r.dataset_id),
        votable::Value(repo::to_string(r.type)),
        votable::text_or_null(r.data_id.band),
        r.data_id.visit ? votable::Value(*r.data_id.visit) : votable::Value(),
        r.data_id.detector ? votable::Value(*r.data_id.detector) : votable::Value(),
        number_or_null(mjd),
        votable::Value(xy.x),
        votable::Value(xy.y),
        number_or_null(flux),
        number_or_null(flux_err),
        number_or_null(zero_point),
        number_or_null(mag),
        number_or_null(mag_err),
        votable::Value(m.edge),
        votable::Value(m.masked),
        votable::Value(m.saturated),
        votable::Value(stamp_url(base_url, did, p, request.radius_arcsec)),
    };
    rows.push_back(std::move(row));
  }
}

// Images a /sync request would re-create whole first (virtual, neither
// cached nor computable by parts).
std::size_t whole_recreations(const SharedRepository& repository, const std::vector<Target>& targets) {
  return static_cast<std::size_t>(std::count_if(targets.begin(), targets.end(), [&](const Target& t) {
    return !repository.has_file_now(t.record) && !repository.has_part_now(t.record);
  }));
}

void run_photometry(SharedRepository& repository, const dali::ResultLimits& limits, const PhotometryLimits& photometry,
                    uws::JobRun& run) {
  const auto& params = run.params();
  const auto format = dali::response_format(params);  // a bad RESPONSEFORMAT fails before any work
  const std::int64_t maxrec = dali::effective_maxrec(params, limits);
  const PhotometryRequest request = photometry_request(params, photometry, run.synchronous(),
                                                      [&run](std::string_view part) { return run.upload(part); });
  if (!run.synchronous()) run.progress().report(0.0, "finding the images");
  const auto targets = find_targets(repository, request, run.caller());
  if (run.synchronous()) {
    std::size_t measurements = 0;
    for (const auto& t : targets) measurements += t.positions.size();
    check_sync_measurements(measurements, photometry);
    const std::size_t to_make = whole_recreations(repository, targets);
    if (to_make > repository.sync_max_recreations()) {
      throw photometry_bad(fmt::format("{} of the images are virtual and must be re-created first, more than the {} "
                                       "a /sync request may re-create; submit the request to /async",
                                       to_make, repository.sync_max_recreations()));
    }
  }
  auto rows = std::make_shared<std::vector<Row>>();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    run.cancel().throw_if_cancelled();
    measure_image(repository, request, targets[i], run.base_url(), run.cancel(), *rows);
    if (!run.synchronous()) {
      run.progress().report(static_cast<double>(i + 1) / static_cast<double>(targets.size()),
                            fmt::format("{} of {} images measured", i + 1, targets.size()));
    }
  }
  // One light curve after another: by position, then in time.
  std::sort(rows->begin(), rows->end(), [](const Row& a, const Row& b) {
    if (a.position != b.position) return a.position < b.position;
    if (a.mjd != b.mjd) return a.mjd < b.mjd;
    return a.dataset_id < b.dataset_id;
  });
  dali::TableResult table{.name = "photometry",
                          .description = "Forced photometry: one row per position x image",
                          .fields = photometry_fields(),
                          .infos = {{"METHOD", request.method == PhotometryMethod::psf ? "psf" : "aperture"},
                                    {"RADIUS", fmt::format("{}", request.radius_arcsec)}},
                          .rows = [rows](const dali::RowSink& emit) {
                            for (const auto& row : *rows) {
                              if (!emit(row.cells)) return;
                            }
                          }};
  const std::string extension = format.format == dali::TableFormat::csv   ? "csv"
                                : format.format == dali::TableFormat::tsv ? "tsv"
                                                                          : "xml";
  run.results().add_stream(
      {.id = "result",
       .file_name = "photometry." + extension,
       .mime_type = format.content_type,
       .size = std::nullopt,
       .produce =
           [table = std::move(table), format, maxrec](const http::ByteSink& sink) {
             struct Gone {};
             try {
               const auto stats = dali::write_table(
                   [&sink](std::string_view chunk) {
                     if (!sink(chunk)) throw Gone{};
                   },
                   format, maxrec, table);
               dali::end_failed_stream(format, stats);
             } catch (const Gone&) {
               return false;
             }
             return true;
           },
       .consumed_files = {},
       .attachment = false});
  if (!run.synchronous()) run.progress().report(1.0, fmt::format("{} measurements", rows->size()));
}

// The position columns of an uploaded table: by name (ra, dec), else by
// UCD (pos.eq.ra, pos.eq.dec; the main ones first).
std::pair<std::size_t, std::size_t> position_columns(const std::vector<votable::Field>& fields,
                                                     const std::string& name) {
  const auto find = [&](std::string_view column, std::string_view ucd) {
    for (std::size_t i = 0; i < fields.size(); ++i) {
      if (http::iequals(fields[i].name, column)) return i;
    }
    for (const bool main : {true, false}) {
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto& u = fields[i].ucd;
        if (u.rfind(ucd, 0) == 0 && (!main || u.find("meta.main") != std::string::npos)) return i;
      }
    }
    throw photometry_bad(
        fmt::format("UPLOAD {}: the table has no {} column (name {} or UCD {})", name, column, column, ucd));
  };
  return {find("ra", "pos.eq.ra"), find("dec", "pos.eq.dec")};
}

std::optional<double> cell_number(const votable::Value& v) {
  if (const auto* d = v.get_if<double>()) return *d;
  if (const auto* i = v.get_if<std::int64_t>()) return static_cast<double>(*i);
  return std::nullopt;
}

// UPLOAD=name,param:part: the name and the part.
std::pair<std::string, std::string> upload_reference(const std::string& value) {
  const auto comma = value.find(',');
  const std::string name = value.substr(0, std::min(comma, value.size())).substr(0, 64);
  if (comma == std::string::npos || value.compare(comma + 1, 6, "param:") != 0 || value.size() <= comma + 7) {
    throw photometry_bad(fmt::format("UPLOAD: '{}' is not 'name,param:part' (an inline VOTable of positions)",
                                     value.substr(0, 80)));
  }
  return {name, value.substr(comma + 7)};
}

void add_uploaded_positions(const dali::ParsedParams& params, const PhotometryLimits& limits,
                            const PhotometryUploads& uploads, std::vector<sky::SkyPoint>& positions) {
  for (const auto& value : params.all_as<std::string>("UPLOAD")) {
    const auto [name, part] = upload_reference(value);
    if (!uploads) continue;
    const auto content = uploads(part);
    if (!content) throw photometry_bad(fmt::format("UPLOAD {}: no part '{}' in the request", name, part.substr(0, 64)));
    votable::ReadLimits read_limits;
    read_limits.max_bytes = limits.max_upload_bytes;
    read_limits.max_rows = limits.max_positions;
    votable::ReadTable table;
    try {
      table = votable::read_votable(*content, read_limits);
    } catch (const votable::ReadError& e) {
      throw photometry_bad(fmt::format("UPLOAD {}: {}", name, e.what()));
    }
    const auto [ra_column, dec_column] = position_columns(table.fields, name);
    for (std::size_t row = 0; row < table.rows.size(); ++row) {
      const auto ra = cell_number(table.rows[row].at(ra_column));
      const auto dec = cell_number(table.rows[row].at(dec_column));
      if (!ra || !dec || !std::isfinite(*ra) || !(std::abs(*dec) <= 90.0)) {
        throw photometry_bad(fmt::format("UPLOAD {}: row {} has no valid ra, dec (degrees)", name, row + 1));
      }
      // Wrapped only when outside [0, 360): adding 360 would round the value.
      double wrapped = std::fmod(*ra, 360.0);
      if (wrapped < 0.0) wrapped += 360.0;
      positions.push_back({.ra = wrapped, .dec = *dec});
    }
  }
}

}  // namespace

std::vector<dali::ParamSpec> photometry_params(const dali::ResultLimits& limits, const PhotometryLimits& photometry) {
  std::vector<dali::ParamSpec> p{
      {.name = "POS",
       .type = dali::ParamType::point,
       .description = fmt::format("Position to measure: ra dec (ICRS); repeat for several (at most {}, {} on /sync). "
                                  "POS or UPLOAD is required.",
                                  photometry.max_positions, photometry.sync_max_positions),
       .unit = "deg",
       .ucd = "pos",
       .multiple = true,
       .example = "53.0 -28.0"},
      {.name = "UPLOAD",
       .type = dali::ParamType::text,
       .description = "More positions as an inline VOTable: 'name,param:part' with the table in the multipart "
                      "part 'part'; its columns ra and dec (or with UCDs pos.eq.ra, pos.eq.dec), degrees, are "
                      "measured after the POS values.",
       .example = "pos,param:table"},
      {.name = "ID",
       .type = dali::ParamType::text,
       .description = "Publisher DID (or dataset ID) of an image to measure on; repeat for several. Without ID: "
                      "every image of DPSUBTYPE the caller may read that contains a position, chosen further by "
                      "BAND, TIME and COLLECTION.",
       .ucd = "meta.id;meta.main",
       .multiple = true,
       .ref = "ID",
       .example = "ivo://pixserve.example/repo?DR1.calexp.v1000000.d004"},
  };
  p.push_back(sia_param(limits, "BAND"));
  p.push_back(sia_param(limits, "TIME"));
  p.push_back(sia_param(limits, "COLLECTION"));
  p.push_back({.name = "DPSUBTYPE",
               .type = dali::ParamType::enumerated,
               .description = "The images measured without ID: calexp (calibrated single exposures) or diffim "
                              "(difference images); stored and virtual alike.",
               .ucd = "meta.code.class",
               .options = {"calexp", "diffim"},
               .default_value = "calexp",
               .example = "calexp"});
  p.push_back({.name = "METHOD",
               .type = dali::ParamType::enumerated,
               .description = "aperture: sum in a circle of RADIUS, each pixel weighted by its exact overlap; psf: "
                              "a Gaussian PSF of the image's PSFFWHM fitted at the fixed position.",
               .ucd = "meta.code",
               .options = {"aperture", "psf"},
               .default_value = "aperture",
               .example = "aperture"});
  p.push_back({.name = "RADIUS",
               .type = dali::ParamType::real,
               .description = "Aperture radius (METHOD=aperture).",
               .unit = "arcsec",
               .ucd = "phys.angSize;instr.fov",
               .min = 0.01,
               .max = photometry.max_radius_arcsec,
               .default_value = "2.0",
               .example = "2.0"});
  for (auto& r : dali::result_params(limits)) p.push_back(std::move(r));
  return p;
}

dali::Endpoint photometry_sync_declaration(const dali::ResultLimits& limits, const PhotometryLimits& photometry) {
  return dali::Endpoint{
      .path = "sync",
      .summary = "Forced photometry at positions on every epoch (sync)",
      .description = fmt::format(
          "Measures each POS on each calexp or difference image that contains it (or on the images given by ID), "
          "with an aperture or a PSF fit, and returns one row per position x image with the flux in nJy. At most "
          "{} positions and {} measurements per request; larger requests go to /async.",
          photometry.sync_max_positions, photometry.sync_max_measurements),
      .params = photometry_params(limits, photometry),
      .result_types = dali::table_result_types(),
      .example_params = {"POS"},
  };
}

PhotometryRequest photometry_request(const dali::ParsedParams& params, const PhotometryLimits& limits,
                                     bool synchronous, const PhotometryUploads& uploads) {
  PhotometryRequest r;
  r.positions = params.all_as<sky::SkyPoint>("POS");
  add_uploaded_positions(params, limits, uploads, r.positions);
  if (r.positions.empty() && !params.has("UPLOAD")) {
    throw photometry_bad("POS is required: ra dec (degrees), or UPLOAD=name,param:part with a table of them");
  }
  if (r.positions.size() > limits.max_positions) {
    throw photometry_bad(fmt::format("{} positions in one request; at most {} are accepted: split the request",
                                     r.positions.size(), limits.max_positions));
  }
  if (synchronous && r.positions.size() > limits.sync_max_positions) {
    throw photometry_bad(fmt::format("{} positions in one /sync request, more than {}: submit the request to /async",
                                     r.positions.size(), limits.sync_max_positions));
  }
  r.ids = params.all_as<std::string>("ID");
  if (r.ids.size() > limits.max_ids) {
    throw photometry_bad(fmt::format("{} IDs in one request; at most {} are accepted", r.ids.size(), limits.max_ids));
  }
  r.subtype = params.first<std::string>("DPSUBTYPE").value_or("calexp");
  r.method = params.first<std::string>("METHOD").value_or("aperture") == "psf" ? PhotometryMethod::psf
                                                                                  : PhotometryMethod::aperture;
  r.radius_arcsec = params.first<double>("RADIUS").value_or(2.0);
  if (!(std::isfinite(r.radius_arcsec) && r.radius_arcsec > 0.0 && r.radius_arcsec <= limits.max_radius_arcsec)) {
    throw photometry_bad(
        fmt::format("RADIUS: {} arcsec is outside (0, {}]", r.radius_arcsec, limits.max_radius_arcsec));
  }
  r.collections = params.all_as<std::string>("COLLECTION");
  r.times = photometry_ranges(params, "TIME");
  r.wavelengths = photometry_ranges(params, "BAND");
  return r;
}

void check_sync_measurements(std::size_t measurements, const PhotometryLimits& limits) {
  if (measurements > limits.sync_max_measurements) {
    throw photometry_bad(fmt::format("{} measurements (positions x images) in one /sync request, more than {}: submit "
                                     "the request to /async",
                                     measurements, limits.sync_max_measurements));
  }
}

dali::Service photometry_service(std::shared_ptr<SharedRepository> repository, std::shared_ptr<uws::JobEngine> jobs,
                                 const dali::ResultLimits& limits, const PhotometryLimits& photometry,
                                 std::vector<dali::AvailabilityCheck> checks) {
  dali::Service service{
      .name = std::string(links::kPhotometry),
      .title = "Forced photometry",
      .description = "Forced photometry at given positions on every calibrated or difference image containing them "
                     "(stored or re-created on request), synchronously or as UWS jobs.",
      .endpoints = {},
      .checks = std::move(checks),
      .live_examples =
          [repository] {
            const auto record = example_dataset(*repository);
            if (!record || !record->s_ra || !record->s_dec) return dali::RawParams{{"POS", "53.0 -28.0"}};
            return dali::RawParams{{"POS", fmt::format("{:.6f} {:.6f}", *record->s_ra, *record->s_dec)}};
          },
  };
  dali::Endpoint async{
      .path = "async",
      .summary = "Forced photometry as asynchronous jobs (UWS 1.1)",
      .description = "The parameters of /sync create a UWS job without the /sync limits; its result 'result' is the "
                     "same table. Progress counts the images measured.",
      .params = photometry_params(limits, photometry),
      .methods = {"POST"},
      .result_types = dali::table_result_types(),
      .binding = dali::Binding::uws,
  };
  uws::add_job_endpoints(
      service, std::move(jobs),
      {.kind = std::string(links::kPhotometry),
       .sync = photometry_sync_declaration(limits, photometry),
       .async = std::move(async),
       .run =
           [repository, limits, photometry](uws::JobRun& run) {
             database_outages_to_unavailable([&] { run_photometry(*repository, limits, photometry, run); });
           },
       .check_on_create = true,
       .check = [photometry](const dali::ParsedParams& params) { photometry_request(params, photometry, false); },
       .sync_time_limit = {},
       .sync_without_result = {},
       .spool = {},
       .max_inline_upload_bytes = photometry.max_upload_bytes});
  return service;
}

}  // namespace pixserve::services
