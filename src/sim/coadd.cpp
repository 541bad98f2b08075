#include "sim/coadd.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/mask.hpp"
#include "image/resample.hpp"
#include "parallel/parallel_for.hpp"
#include "repo/recipe.hpp"
#include "sim/observing.hpp"
#include "sim/products.hpp"
#include "sim/stage_progress.hpp"

namespace pixserve::sim {
namespace {

using image::mask_bit;
using image::MaskPlane;

// Input pixels that cannot be used at all.
constexpr std::int32_t kReject =
    mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::saturated) | mask_bit(MaskPlane::no_data);
// Input conditions a coadd pixel reports (whether the input was used or not).
constexpr std::int32_t kPropagate = mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::saturated) |
                                    mask_bit(MaskPlane::cosmic_ray) | mask_bit(MaskPlane::interpolated);
// How calexp pixels are sampled on the patch grid.
constexpr image::Kernel kWarpKernel = image::Kernel::bilinear;
// Grid spacing of the patch -> calexp mapping: the TAN-SIP distortion is
// cubic and small, so bilinear interpolation over 32 pixels errs by far
// less than a thousandth of a pixel.
constexpr long kMappingStep = 32;

// Calexp electrons -> coadd nJy: a source of magnitude m holds
// EXPTIME 10^(-0.4 (m - MAGZERO)) electrons and 10^(-0.4 (m - 31.4)) nJy.
double flux_scale(const CalexpInfo& c) {
  return std::pow(10.0, -0.4 * (c.zero_point - kNanojanskyZeroPoint)) / c.exposure_time;
}

// One weight per input, the inverse of its typical variance in nJy^2:
// per-pixel weights would favour the fainter side of every source (Poisson
// variance grows with the signal) and bias the photometry.
double weight(const CalexpInfo& c) {
  const double s = flux_scale(c);
  return 1.0 / (c.variance_level * s * s);
}

struct Job {
  char band;
  int tract;
  PatchId patch;
  std::vector<std::size_t> inputs;  // indices into calexps, sorted by (visit, detector)
};

// The sums accumulate in the planes of the coadd itself (image: sum of
// w v, variance: sum of w^2 var, mask: the propagated bits); only the sum
// of weights is extra.
struct Accumulator {
  explicit Accumulator(long w, long h)
      : width(w), height(h), planes(w, h), sum_w(static_cast<size_t>(w) * static_cast<size_t>(h), 0.0F) {}
  // Back to zero sums for another patch of the same size.
  void clear() {
    std::fill(planes.image.pixels.begin(), planes.image.pixels.end(), 0.0F);
    std::fill(planes.mask.pixels.begin(), planes.mask.pixels.end(), 0);
    std::fill(planes.variance.pixels.begin(), planes.variance.pixels.end(), 0.0F);
    std::fill(sum_w.begin(), sum_w.end(), 0.0F);
  }
  long width, height;
  image::Exposure planes;
  std::vector<float> sum_w;
};

// Accumulators for the patches being built, reused from patch to patch
// (at most one per thread): fresh patch-sized planes cost more in page
// faults than the warping of a few inputs.
class AccumulatorPool {
 public:
  std::unique_ptr<Accumulator> take(long w, long h) {
    std::unique_ptr<Accumulator> acc;
    {
      const std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        acc = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (acc && acc->width == w && acc->height == h) {
      acc->clear();
      return acc;
    }
    return std::make_unique<Accumulator>(w, h);
  }
  void give_back(std::unique_ptr<Accumulator> acc) {
    const std::lock_guard lock(mutex_);
    free_.push_back(std::move(acc));
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Accumulator>> free_;
};

// Adds one calexp to the patch; true if it contributed any pixel.
bool add_input(Accumulator& acc, const wcs::Wcs& patch_wcs, const CalexpInfo& in) {
  // A Wcs must not be used by two threads at once (wcslib's scratch space),
  // and one calexp feeds several patches built in parallel: work on a copy.
  const wcs::Wcs calexp_wcs = in.wcs;
  // Where the calexp lands on the patch: its outline through both WCSs.
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const auto& p : image_outline(in.width, in.height)) {
    try {
      const auto q = patch_wcs.sky_to_pixel(calexp_wcs.pixel_to_sky(p));
      x_min = std::min(x_min, q.x);
      x_max = std::max(x_max, q.x);
      y_min = std::min(y_min, q.y);
      y_max = std::max(y_max, q.y);
    } catch (const wcs::WcsError&) {
    }
  }
  if (!(x_min <= x_max)) return false;
  const long bx0 = std::max(0L, static_cast<long>(std::floor(x_min)) - 2);
  const long by0 = std::max(0L, static_cast<long>(std::floor(y_min)) - 2);
  const long bx1 = std::min(acc.width - 1, static_cast<long>(std::ceil(x_max)) + 2);
  const long by1 = std::min(acc.height - 1, static_cast<long>(std::ceil(y_max)) + 2);
  if (bx0 > bx1 || by0 > by1) return false;

  const image::GridMapping map({bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1}, kMappingStep,
                               [&](double x, double y) -> std::optional<wcs::PixelPoint> {
                                 try {
                                   return calexp_wcs.sky_to_pixel(patch_wcs.pixel_to_sky({x, y}));
                                 } catch (const wcs::WcsError&) {
                                   return std::nullopt;
                                 }
                               });
  // Read only the calexp pixels the mapping reaches.
  const auto read_box = image::source_box(map, kWarpKernel, in.width, in.height);
  if (!read_box) return false;
  const image::Exposure e = image::read_exposure(in.file, *read_box);
  const image::Resampler calexp(kWarpKernel, e, *read_box, in.width, in.height);

  const double scale = flux_scale(in);
  const auto s = static_cast<float>(scale), s2 = static_cast<float>(scale * scale);
  const auto w = static_cast<float>(weight(in));
  bool contributed = false;
  for (long y = by0; y <= by1; ++y) {
    for (long x = bx0; x <= bx1; ++x) {
      const auto m = map(x, y);
      if (!m) continue;
      const auto sample = calexp.sample(*m);
      const size_t k = static_cast<size_t>(y) * static_cast<size_t>(acc.width) + static_cast<size_t>(x);
      acc.planes.mask.pixels[k] |= sample.mask & kPropagate;
      // NO_DATA (in kReject) covers positions off the calexp and non-finite
      // pixels: what remains is finite.
      if ((sample.mask & kReject) != 0) continue;
      acc.planes.image.pixels[k] += w * sample.image * s;
      acc.sum_w[k] += w;
      acc.planes.variance.pixels[k] += w * w * sample.variance * s2;
      contributed = true;
    }
  }
  return contributed;
}

// The weighted means, in place; NaN and NO_DATA where no input reached.
const image::Exposure& finish(Accumulator& acc) {
  image::Exposure& e = acc.planes;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t k = 0; k < acc.sum_w.size(); ++k) {
    if (acc.sum_w[k] > 0.0F) {
      e.image.pixels[k] /= acc.sum_w[k];
      e.variance.pixels[k] /= acc.sum_w[k] * acc.sum_w[k];
    } else {
      e.image.pixels[k] = nan;
      e.variance.pixels[k] = nan;
      e.mask.pixels[k] |= mask_bit(MaskPlane::no_data);
    }
  }
  image::mask_detected(e, 5.0F);
  return e;
}

// What the portal's coadd searches ask of a patch (DMS-PRTL-REQ-0039):
// the fraction of its pixels that some input reached, and its 5-sigma
// point-source depth: the AB magnitude of a source whose flux, measured in
// the noise-equivalent area of a Gaussian PSF of the inputs' weighted mean
// FWHM, is five times its error, with the pixel noise the median variance
// of the covered pixels (pixels in nJy: AB = 31.4 - 2.5 log10(flux)).
struct CoaddQuality {
  double coverage_fraction = 0.0;
  std::optional<double> depth_5sigma;
};

CoaddQuality measure_quality(const Accumulator& acc, double psf_fwhm_arcsec, double pixel_scale_arcsec) {
  CoaddQuality q;
  std::vector<float> variances;
  std::size_t covered = 0;
  for (std::size_t k = 0; k < acc.sum_w.size(); ++k) {
    if (acc.sum_w[k] <= 0.0F) continue;
    ++covered;
    // Every 16th covered pixel is plenty for a median of millions.
    if (covered % 16 == 1 && std::isfinite(acc.planes.variance.pixels[k])) {
      variances.push_back(acc.planes.variance.pixels[k]);
    }
  }
  q.coverage_fraction = acc.sum_w.empty() ? 0.0 : static_cast<double>(covered) / static_cast<double>(acc.sum_w.size());
  if (variances.empty() || psf_fwhm_arcsec <= 0.0 || pixel_scale_arcsec <= 0.0) return q;
  auto middle = variances.begin() + static_cast<std::ptrdiff_t>(variances.size() / 2);
  std::nth_element(variances.begin(), middle, variances.end());
  const double sigma_pixels = psf_fwhm_arcsec / pixel_scale_arcsec / (2.0 * std::sqrt(2.0 * std::numbers::ln2));
  const double noise_area = 4.0 * std::numbers::pi * sigma_pixels * sigma_pixels;
  const double flux_5sigma = 5.0 * std::sqrt(static_cast<double>(*middle) * noise_area);
  if (flux_5sigma > 0.0) q.depth_5sigma = kNanojanskyZeroPoint - 2.5 * std::log10(flux_5sigma);
  return q;
}

// The weighted mean PSF FWHM of the inputs, in arcsec (PSFFWHM).
double mean_psf_fwhm(const std::vector<const CalexpInfo*>& used) {
  double psf_sum = 0.0, weight_sum = 0.0;
  for (const CalexpInfo* c : used) {
    psf_sum += weight(*c) * c->psf_fwhm_arcsec;
    weight_sum += weight(*c);
  }
  return std::round(psf_sum / weight_sum * 1e4) / 1e4;
}

image::ExposureHeaders coadd_headers(const CoaddKind& kind, const Job& job, const SkyMap& skymap,
                                     const std::vector<const CalexpInfo*>& used, const CoaddQuality& quality) {
  double mjd_beg = std::numeric_limits<double>::infinity(), mjd_end = -mjd_beg;
  // Exposure time counts each visit once (a patch may see several of its detectors).
  std::map<long long, double> visit_time;
  for (const CalexpInfo* c : used) {
    mjd_beg = std::min(mjd_beg, c->mjd_start);
    mjd_end = std::max(mjd_end, c->mjd_start + c->exposure_time / 86400.0);
    visit_time[c->visit] = c->exposure_time;
  }
  double exptime = 0.0;
  for (const auto& [visit, t] : visit_time) exptime += t;

  image::ExposureHeaders h;
  auto& p = h.primary;
  p.set("DSTYPE", std::string(kind.dataset_type), "dataset type");
  p.set("INSTRUME", std::string(kInstrument), "instrument");
  p.set("TELESCOP", std::string(kTelescope), "facility");
  p.set("OBJECT", std::string(kFieldName), "field name");
  p.set("BAND", std::string(1, job.band), "abstract band");
  p.set("FILTER", std::string(band_info(job.band).physical_filter), "physical filter");
  p.set("SKYMAP", skymap.name(), "sky map");
  p.set("TRACT", job.tract, "tract number");
  p.set("PATCH", job.patch.str(), "patch x,y within the tract");
  p.set("TIMESYS", "TAI", "time scale of MJD-BEG and MJD-END");
  p.set("MJD-BEG", mjd_beg, "start of the first input exposure (TAI)");
  p.set("MJD-END", mjd_end, "end of the last input exposure (TAI)");
  p.set("NINPUTS", static_cast<long long>(used.size()), "number of input calexps");
  p.set("EXPTIME", exptime, "[s] summed exposure time of the input visits");
  p.set("PSFFWHM", mean_psf_fwhm(used), "[arcsec] weighted mean input PSF FWHM");
  p.set("MAGZERO", kNanojanskyZeroPoint - 2.5 * std::log10(exptime), "AB mag: 1 count/s over EXPTIME; pixels in nJy");
  p.set("COVFRAC", std::round(quality.coverage_fraction * 1e6) / 1e6, "fraction of the pixels with input data");
  if (quality.depth_5sigma) {
    p.set("DEPTH5", std::round(*quality.depth_5sigma * 1e3) / 1e3, "[mag] AB 5-sigma point-source depth");
  }
  p.set("BGSUB", true, "background subtracted");
  p.set("SWVER", repo::software_version(), "software that made the file");
  h.image.set("BUNIT", "nJy", "pixel unit");
  h.variance.set("BUNIT", "nJy**2", "pixel unit");
  return h;
}

}  // namespace

CoaddResult build_coadds(const SkyMap& skymap, const std::vector<CalexpInfo>& calexps, const CoaddKind& kind,
                         const std::filesystem::path& out, unsigned threads, const ProgressCallback& progress) {
  // Which calexps touch which (band, tract, patch); std::map keeps the
  // jobs in a fixed order and the inputs of each sorted as the calexps are.
  // A calexp over the overlap of tracts feeds patches of each.
  std::vector<std::size_t> order(calexps.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair{calexps[a].visit, calexps[a].detector} < std::pair{calexps[b].visit, calexps[b].detector};
  });
  std::map<std::tuple<char, int, PatchId>, std::vector<std::size_t>> overlaps;
  for (const size_t i : order) {
    const auto& c = calexps[i];
    for (const int t : skymap.tracts_overlapping(c.wcs, c.width, c.height)) {
      for (const auto& p : skymap.tract(t).patches_overlapping(c.wcs, c.width, c.height)) {
        overlaps[{c.band, t, p}].push_back(i);
      }
    }
  }
  std::vector<Job> jobs;
  for (auto& [key, inputs] : overlaps) {
    jobs.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), std::move(inputs)});
  }

  for (const auto& job : jobs) {
    std::filesystem::create_directories(out / paths::coadd(kind.dataset_type, job.band, job.tract, "x").parent_path());
  }

  CoaddResult result;
  std::atomic<std::size_t> written{0}, bytes{0};
  StageProgress stage(progress, kind.stage, jobs.size());
  AccumulatorPool pool;
  parallel::parallel_for(jobs.size(), threads, [&](std::size_t j) {
    const Job& job = jobs[j];
    const Tract& tract = skymap.tract(job.tract);
    const auto box = tract.patch_box(job.patch);
    const wcs::Wcs patch_wcs = tract.patch_wcs(job.patch);
    auto pooled = pool.take(box.width, box.height);
    Accumulator& acc = *pooled;
    std::vector<const CalexpInfo*> used;
    for (const size_t i : job.inputs) {
      if (add_input(acc, patch_wcs, calexps[i])) used.push_back(&calexps[i]);
    }
    if (!used.empty()) {
      const auto path = out / paths::coadd(kind.dataset_type, job.band, job.tract, job.patch.file_token());
      const image::Exposure& planes = finish(acc);
      const auto quality = measure_quality(acc, mean_psf_fwhm(used), skymap.pixel_scale_arcsec());
      image::write_exposure(path, planes, coadd_headers(kind, job, skymap, used, quality), &patch_wcs);
      std::vector<long long> visits, detectors;
      for (const CalexpInfo* c : used) {
        visits.push_back(c->visit);
        detectors.push_back(c->detector);
      }
      auto file = fits::File::open(path, fits::OpenMode::read_write);
      file.append_int_table("INPUTS", {"VISIT", "DETECTOR"}, {visits, detectors});
      file.close();
      written.fetch_add(1);
      bytes.fetch_add(static_cast<std::size_t>(std::filesystem::file_size(path)));
    }
    pool.give_back(std::move(pooled));
    stage.step();
  });
  result.patches = written.load();
  result.bytes = bytes.load();
  return result;
}

std::vector<CalexpInfo> template_calexps(const std::vector<CalexpInfo>& calexps, int visits_per_band) {
  if (visits_per_band <= 0) return {};
  // Per band and visit, the summed PSF FWHM and the number of calexps.
  std::map<char, std::map<long long, std::pair<double, int>>> seeing;
  for (const auto& c : calexps) {
    auto& s = seeing[c.band][c.visit];
    s.first += c.psf_fwhm_arcsec;
    s.second += 1;
  }
  std::set<std::pair<char, long long>> chosen;
  for (const auto& [band, visits] : seeing) {
    std::vector<std::pair<double, long long>> ranked;  // (mean FWHM, visit): ties go to the lower visit
    for (const auto& [visit, s] : visits) ranked.emplace_back(s.first / s.second, visit);
    std::sort(ranked.begin(), ranked.end());
    const auto n = std::min(ranked.size(), static_cast<std::size_t>(visits_per_band));
    for (std::size_t i = 0; i < n; ++i) chosen.insert({band, ranked[i].second});
  }
  std::vector<CalexpInfo> out;
  for (const auto& c : calexps) {
    if (chosen.count({c.band, c.visit})) out.push_back(c);
  }
  return out;
}

}  // namespace pixserve::sim
