// The survey simulation, stage by stage: the sky model and its truth table;
// calibrations (bias per detector, flat per detector and band); then per
// (visit, detector) the raw file, the calexp made from it by the ISR
// library, and its compressed copy; finally the coadd patches (deepCoadd,
// then the goodSeeingCoadd templates). Each stage runs in parallel over
// independent files.
#include "sim/simulator.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "image/calexp.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/statistics.hpp"
#include "parallel/parallel_for.hpp"
#include "repo/recipe.hpp"
#include "sim/camera.hpp"
#include "sim/coadd.hpp"
#include "sim/efd.hpp"
#include "sim/observing.hpp"
#include "sim/products.hpp"
#include "sim/random.hpp"
#include "sim/render.hpp"
#include "sim/sky_model.hpp"
#include "sim/skymap.hpp"
#include "sim/stage_progress.hpp"

namespace pixserve::sim {
namespace {

namespace fs = std::filesystem;

void validate(const SurveyConfig& c) {
  if (c.visits < 1) throw std::invalid_argument("visits must be at least 1");
  if (c.template_visits < 0) throw std::invalid_argument("template_visits must not be negative");
  if (c.bands.empty()) throw std::invalid_argument("at least one band is needed");
  for (const char b : c.bands) band_info(b);  // throws for letters outside ugrizy
  if (c.detector_width > 65536 || c.detector_height > 65536)
    throw std::invalid_argument("detectors are at most 65536 pixels wide");
  if (!(c.exposure_time > 0.0)) throw std::invalid_argument("exposure_time must be positive");
  if (!(c.compression_q > 0.0F)) throw std::invalid_argument("compression_q must be positive");
  if (!(c.pointing_radius_deg >= 0.0) || c.pointing_radius_deg > 30.0)
    throw std::invalid_argument("pointing_radius_deg must be within [0, 30]");
}

// Large detectors (or a wide pointing disc) make the observed area wider
// than the configured sky disc and single tract: grow both so every
// pointing lands on catalogued sky and on the tract (the defaults leave
// room to spare). The rings sky map covers the sphere as it is.
SurveyConfig with_coverage(const SurveyConfig& c, const Camera& camera) {
  SurveyConfig e = c;
  const double reach =
      std::max(0.0, c.pointing_radius_deg) + (c.dither_fraction + std::sqrt(0.5)) * camera.raft_width_deg() + 0.01;
  e.field_radius_deg = std::max(c.field_radius_deg, reach);
  if (c.skymap != kRingsSkyMap) e.tract_size_deg = std::max(c.tract_size_deg, 2.0 * reach);
  return e;
}

// Counts what was written; shared by the worker threads.
struct Tally {
  std::atomic<std::size_t> files{0}, bytes{0}, raws{0}, calibrations{0}, calexps{0}, compressed{0};
  void add(const fs::path& p, std::atomic<std::size_t>& kind) {
    files.fetch_add(1);
    kind.fetch_add(1);
    bytes.fetch_add(static_cast<std::size_t>(fs::file_size(p)));
  }
};

// One simulation run: the fixed inputs (camera, visits, sky) and the stages.
class Survey {
 public:
  Survey(const SurveyConfig& config, const fs::path& out, const ProgressCallback& progress)
      : config_(config),
        out_(out),
        progress_(progress),
        threads_(config.threads > 0 ? static_cast<unsigned>(config.threads) : parallel::default_threads()),
        camera_(config),
        covered_(with_coverage(config, camera_)),
        skymap_(covered_),
        visits_(plan_visits(config, camera_.raft_width_deg())) {
    for (const auto& v : visits_) {
      if (std::find(bands_.begin(), bands_.end(), v.band) == bands_.end()) bands_.push_back(v.band);
    }
  }

  SurveySummary run() {
    make_directories();
    const SkyModel sky = SkyModel::generate(covered_);
    sky.write_truth_csv(out_ / "truth.csv");
    write_engineering();
    write_calibrations();
    auto calexps = write_exposures(sky);
    SurveySummary summary;
    if (config_.write_coadds && !config_.headers_only) {
      const auto coadds = build_coadds(skymap_, calexps, kDeepCoadd, out_, threads_, progress_);
      summary.coadds = coadds.patches;
      tally_.files.fetch_add(coadds.patches);
      tally_.bytes.fetch_add(coadds.bytes);
      const auto inputs = template_calexps(calexps, config_.template_visits);
      if (!inputs.empty()) {
        const auto templates = build_coadds(skymap_, inputs, kGoodSeeingCoadd, out_, threads_, progress_);
        summary.templates = templates.patches;
        tally_.files.fetch_add(templates.patches);
        tally_.bytes.fetch_add(templates.bytes);
      }
    }
    // The calexps both kinds of coadd read, when the survey keeps none
    // (virtual): only now are they done with.
    fs::remove_all(out_ / kScratchDir);
    summary.files_written = tally_.files.load();
    summary.raws = tally_.raws.load();
    summary.calibrations = tally_.calibrations.load();
    summary.calexps = tally_.calexps.load();
    summary.compressed = tally_.compressed.load();
    summary.bytes_written = tally_.bytes.load();
    return summary;
  }

 private:
  // Every directory up front, so the workers only write files.
  void make_directories() {
    const auto& any = camera_.detectors().front();
    fs::create_directories(out_ / paths::bias(any).parent_path());
    for (const auto* b : bands_) fs::create_directories(out_ / paths::flat(any, *b).parent_path());
    for (const auto& v : visits_) {
      fs::create_directories(out_ / paths::raw(v, any).parent_path());
      fs::create_directories(calexp_file(v, any).parent_path());
      if (compress()) fs::create_directories(out_ / paths::calexp_comp(v, any).parent_path());
    }
  }

  bool compress() const { return config_.write_calexp_comp && !config_.headers_only && config_.write_calexps; }

  // Where a calexp is written: its place in the survey, or (a survey without
  // stored calexps) a scratch folder that the coadds (deepCoadd and
  // goodSeeingCoadd) read and that is removed when both are done.
  static constexpr const char* kScratchDir = ".calexp-scratch";
  fs::path calexp_file(const Visit& visit, const DetectorInfo& det) const {
    return config_.write_calexps ? out_ / paths::calexp(visit, det) : out_ / kScratchDir / paths::calexp(visit, det);
  }

  // The R-EFD tables (sim/efd.hpp): computed from the plan alone, on this
  // thread, so the bytes do not depend on the thread count.
  void write_engineering() {
    StageProgress stage(progress_, "efd", 1);
    const std::size_t bytes = write_efd(config_, visits_, out_);
    tally_.files.fetch_add(2);
    tally_.bytes.fetch_add(bytes);
    stage.step();
  }

  // One bias per detector, one flat per detector and band.
  void write_calibrations() {
    const auto& detectors = camera_.detectors();
    const std::size_t per_detector = 1 + bands_.size();
    StageProgress stage(progress_, "calib", detectors.size() * per_detector);
    parallel::parallel_for(detectors.size() * per_detector, threads_, [&](std::size_t i) {
      const DetectorInfo& det = detectors[i / per_detector];
      const std::size_t k = i % per_detector;
      const BandInfo* band = k == 0 ? nullptr : bands_[k - 1];
      const fs::path path = out_ / (band ? paths::flat(det, *band) : paths::bias(det));
      image::HeaderCards plane_cards;
      if (!band) plane_cards.set("BUNIT", "electron", "overscan-subtracted bias pattern");
      if (config_.headers_only) {
        write_calibration(path, calibration_cards(band ? "flat" : "bias", det, band), nullptr, plane_cards);
      } else {
        const auto plane = band ? camera_.flat_frame(det, *band) : camera_.bias_frame(det);
        write_calibration(path, calibration_cards(band ? "flat" : "bias", det, band), &plane, plane_cards);
      }
      tally_.add(path, tally_.calibrations);
      stage.step();
    });
  }

  // Per (visit, detector): raw, calexp and calexp_comp. Returns what the
  // coadds need to know of the calexps, in (visit, detector) order.
  std::vector<CalexpInfo> write_exposures(const SkyModel& sky) {
    const auto& detectors = camera_.detectors();
    const std::size_t count = visits_.size() * detectors.size();
    std::vector<std::optional<CalexpInfo>> calexps(count);
    StageProgress stage(progress_, "exposures", count);
    parallel::parallel_for(count, threads_, [&](std::size_t j) {
      const Visit& visit = visits_[j / detectors.size()];
      const DetectorInfo& det = detectors[j % detectors.size()];
      if (config_.headers_only) {
        write_headers_only(visit, det);
      } else {
        calexps[j] = write_exposure(sky, visit, det);
      }
      stage.step();
    });
    std::vector<CalexpInfo> out;
    for (auto& c : calexps) {
      if (c) out.push_back(std::move(*c));
    }
    return out;
  }

  // Full headers and WCS without pixels; what processing would measure is
  // taken from the truth.
  void write_headers_only(const Visit& visit, const DetectorInfo& det) {
    const wcs::Wcs wcs = camera_.detector_wcs(det, visit);
    const fs::path raw_path = out_ / paths::raw(visit, det);
    write_raw(raw_path, observation_cards("raw", visit, det, camera_), wcs, camera_.amplifiers(det), {});
    tally_.add(raw_path, tally_.raws);
    if (!config_.write_calexps) return;
    const fs::path calexp_path = out_ / paths::calexp(visit, det);
    const auto h = image::calexp_headers(observation_cards("calexp", visit, det, camera_), visit.seeing_arcsec,
                                         {visit.sky_electrons, std::sqrt(visit.sky_electrons), 0}, true,
                                         repo::software_version());
    image::write_exposure_headers(calexp_path, h, &wcs);
    tally_.add(calexp_path, tally_.calexps);
  }

  // Renders the raw, then runs the ISR library on the file just written
  // (as a pipeline would) to make the calexp, and compresses that.
  CalexpInfo write_exposure(const SkyModel& sky, const Visit& visit, const DetectorInfo& det) {
    const wcs::Wcs wcs = camera_.detector_wcs(det, visit);
    const auto amps = camera_.amplifiers(det);
    const auto bias = image::read_calibration(out_ / paths::bias(det));
    const auto flat = image::read_calibration(out_ / paths::flat(det, *visit.band));
    const auto seed = derive_seed(config_.seed, Stream::noise,
                                  {static_cast<std::uint64_t>(visit.id), static_cast<std::uint64_t>(det.number)});
    const fs::path raw_path = out_ / paths::raw(visit, det);
    write_raw(raw_path, observation_cards("raw", visit, det, camera_), wcs, amps,
              render_raw(amps, render_scene(sky, visit, wcs, camera_), flat, bias, seed));
    tally_.add(raw_path, tally_.raws);

    // The calexp is made from the files just written, by the code that
    // re-creates unstored calexps (image/calexp.hpp), so both give one file.
    const auto calexp = image::make_calexp(raw_path, bias, flat, {.software_version = repo::software_version()});
    const double psf_fwhm = calexp.psf_fwhm.value_or(visit.seeing_arcsec);
    const fs::path calexp_path = calexp_file(visit, det);
    image::write_calexp(calexp_path, calexp);
    if (config_.write_calexps) tally_.add(calexp_path, tally_.calexps);

    if (compress()) {
      const fs::path comp_path = out_ / paths::calexp_comp(visit, det);
      // RICE, row by row; a dither seed from the survey seed keeps it reproducible.
      fits::CompressCopyOptions comp_options;
      comp_options.compression = fits::Compression::rice;
      comp_options.quantize_level = config_.compression_q;
      comp_options.dither_seed = 1 + static_cast<int>(seed % 10000);
      fits::compress_copy(calexp_path, comp_path, comp_options);
      auto comp = fits::File::open(comp_path, fits::OpenMode::read_write);
      comp.write_string("DSTYPE", "calexp_comp", "dataset type");
      comp.close();
      tally_.add(comp_path, tally_.compressed);
    }
    return CalexpInfo{visit.id,
                      det.number,
                      visit.band->band,
                      calexp_path,
                      wcs,
                      camera_.width(),
                      camera_.height(),
                      visit.zero_point,
                      visit.exposure_time,
                      visit.mjd_start,
                      psf_fwhm,
                      image::estimate_background(calexp.exposure.variance).level};
  }

  const SurveyConfig& config_;
  fs::path out_;
  const ProgressCallback& progress_;
  unsigned threads_;
  Camera camera_;
  SurveyConfig covered_;
  SkyMap skymap_;
  std::vector<Visit> visits_;
  std::vector<const BandInfo*> bands_;  // in the order first observed
  Tally tally_;
};

}  // namespace

SurveySummary simulate(const SurveyConfig& config, const fs::path& out, const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  validate(config);
  Survey survey(config, out, progress);
  SurveySummary summary = survey.run();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace pixserve::sim
