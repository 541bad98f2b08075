#include "sim/camera.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>

#include "sim/random.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {
namespace {

using sky::kDeg;

// Raft slots, centre first so that a survey with few detectors still
// images the middle of the field.
constexpr std::array<std::array<int, 2>, 9> kSlotOrder{
    {{1, 1}, {0, 1}, {1, 0}, {1, 2}, {2, 1}, {0, 0}, {0, 2}, {2, 0}, {2, 2}}};

// Radial distortion at the raft corner, pixels: small, but well above the
// 0.1 px at which ingest starts following the edges of a footprint.
constexpr double kCornerDistortionPixels = 2.0;

// Columns of prescan and serial overscan per amplifier row.
constexpr long kPrescanColumns = 3;
long overscan_columns(long amp_width) { return amp_width >= 128 ? 32 : 16; }

}  // namespace

double AmplifierSpec::level_at(long raw_row) const {
  const double t = static_cast<double>(raw_row);
  return bias_level + drift_amplitude * std::sin(2.0 * std::numbers::pi * t / drift_period + drift_phase) +
         drift_slope * (t / static_cast<double>(std::max(1L, raw_height - 1)) - 0.5);
}

Camera::Camera(const SurveyConfig& config)
    : seed_(config.seed),
      width_(config.detector_width),
      height_(config.detector_height),
      gap_(std::max(4L, std::lround(0.025 * static_cast<double>(std::max(width_, height_))))),
      scale_arcsec_(config.pixel_scale_arcsec) {
  if (width_ < 16 || height_ < 16) throw std::invalid_argument("detectors must be at least 16x16 pixels");
  if (config.detectors < 1 || config.detectors > 9) throw std::invalid_argument("detectors must be 1..9");
  if (!(scale_arcsec_ > 0.0)) throw std::invalid_argument("pixel scale must be positive");
  const double corner = std::hypot(1.5 * pitch_x(), 1.5 * pitch_y());
  distortion_ = kCornerDistortionPixels / (corner * corner * corner);
  for (int i = 0; i < config.detectors; ++i) {
    const auto [row, col] = kSlotOrder[static_cast<size_t>(i)];
    DetectorInfo d;
    d.row = row;
    d.col = col;
    d.number = 90 + 3 * row + col;
    d.name = fmt::format("S{}{}", row, col);
    detectors_.push_back(d);
  }
}

double Camera::raft_width_deg() const { return 3.0 * std::max(pitch_x(), pitch_y()) * scale_arcsec_ / 3600.0; }

double Camera::detector_radius_deg() const {
  // Half the diagonal plus room for the distortion.
  return (0.5 * std::hypot(static_cast<double>(width_), static_cast<double>(height_)) + 2.0 * kCornerDistortionPixels) *
         scale_arcsec_ / 3600.0;
}

double Camera::focal_x(const DetectorInfo& det, double x) const noexcept {
  return (det.col - 1) * pitch_x() + x - 0.5 * static_cast<double>(width_ - 1);
}
double Camera::focal_y(const DetectorInfo& det, double y) const noexcept {
  return (det.row - 1) * pitch_y() + y - 0.5 * static_cast<double>(height_ - 1);
}

wcs::Wcs Camera::detector_wcs(const DetectorInfo& det, const Visit& visit) const {
  wcs::TanParameters p;
  // The reference point is the boresight (focal-plane origin), usually off
  // the detector: there the SIP polynomial is exactly the focal plane's
  // radial distortion u' = u (1 + k (u^2 + v^2)), the same for all detectors.
  p.crval = visit.pointing;
  p.crpix = {-focal_x(det, 0.0), -focal_y(det, 0.0)};
  const double s = scale_arcsec_ / 3600.0;
  const double t = visit.rotation_deg * kDeg;
  // +y points to position angle ROTPA (east of north); east is to the left
  // of north as on the sky (CD determinant < 0).
  p.cd = {-s * std::cos(t), s * std::sin(t), s * std::sin(t), s * std::cos(t)};
  wcs::Sip sip;
  sip.order = 3;
  sip.a.assign(4, std::vector<double>(4, 0.0));
  sip.b.assign(4, std::vector<double>(4, 0.0));
  sip.a[3][0] = distortion_;
  sip.a[1][2] = distortion_;
  sip.b[2][1] = distortion_;
  sip.b[0][3] = distortion_;
  p.sip = sip;
  return wcs::Wcs::tan(p);
}

std::vector<AmplifierSpec> Camera::amplifiers(const DetectorInfo& det) const {
  // Eight amplifiers (2 rows x 4) on detectors of 256 pixels or more; small
  // detectors have fewer so every amplifier keeps a sensible size.
  const long nx = width_ >= 256 ? 4 : 2;
  const long ny = height_ >= 256 ? 2 : 1;
  std::vector<AmplifierSpec> amps;
  for (long ay = 0; ay < ny; ++ay) {
    for (long ax = 0; ax < nx; ++ax) {
      Rng rng(seed_, Stream::amplifiers,
              {static_cast<std::uint64_t>(det.number), static_cast<std::uint64_t>(ay * nx + ax)});
      const long x0 = ax * width_ / nx, x1 = (ax + 1) * width_ / nx;
      const long y0 = ay * height_ / ny, y1 = (ay + 1) * height_ / ny;
      const long aw = x1 - x0, ah = y1 - y0;
      const long overscan = overscan_columns(aw);
      AmplifierSpec a;
      a.raw_width = kPrescanColumns + aw + overscan;
      a.raw_height = ah;
      auto& h = a.header;
      h.name = fmt::format("SEGMENT{}{}", ay, ax);
      h.prescan = image::section_of({0, 0, kPrescanColumns, ah});
      h.datasec = image::section_of({kPrescanColumns, 0, aw, ah});
      h.biassec = image::section_of({kPrescanColumns + aw, 0, overscan, ah});
      // Amplifiers read out towards the detector's outer corners: the top
      // row runs downwards, the right half leftwards.
      h.detsec = image::section_of({x0, y0, aw, ah}, ax >= nx / 2 && nx > 1, ay == 1);
      h.gain = std::round(rng.uniform(1.5, 1.9) * 1000.0) / 1000.0;
      h.read_noise = std::round(rng.uniform(4.5, 8.0) * 100.0) / 100.0;
      a.bias_level = std::round(rng.uniform(18000.0, 26000.0));
      a.drift_amplitude = rng.uniform(0.5, 3.0);
      a.drift_period = rng.uniform(0.5, 2.0) * static_cast<double>(ah);
      a.drift_phase = rng.uniform(0.0, 2.0 * std::numbers::pi);
      a.drift_slope = rng.uniform(-2.0, 2.0);
      a.full_well = std::round(rng.uniform(90000.0, 110000.0));
      // Saturated pixels sit at the full well; flag a little below it so the
      // drift and bias pattern cannot hide them.
      h.saturation = std::floor(a.bias_level + 0.97 * a.full_well / h.gain);
      amps.push_back(a);
    }
  }
  return amps;
}

fits::Image<float> Camera::bias_frame(const DetectorInfo& det) const {
  Rng rng(seed_, Stream::bias, {static_cast<std::uint64_t>(det.number)});
  fits::Image<float> bias(width_, height_);
  // Column-to-column offsets, a gentle gradient and per-pixel fixed pattern.
  std::vector<double> column(static_cast<size_t>(width_));
  for (auto& c : column) c = 1.5 * rng.normal();
  const double gx = rng.uniform(-3.0, 3.0), gy = rng.uniform(-3.0, 3.0);
  for (long y = 0; y < height_; ++y) {
    const double fy = static_cast<double>(y) / static_cast<double>(height_) - 0.5;
    for (long x = 0; x < width_; ++x) {
      const double fx = static_cast<double>(x) / static_cast<double>(width_) - 0.5;
      bias.at(x, y) = static_cast<float>(column[static_cast<size_t>(x)] + gx * fx + gy * fy + 0.8 * rng.normal());
    }
  }
  return bias;
}

fits::Image<float> Camera::flat_frame(const DetectorInfo& det, const BandInfo& band) const {
  // The pixel response non-uniformity is a property of the silicon, the same
  // in every band up to an amplitude that grows towards the blue and the red.
  Rng prnu(seed_, Stream::pixel_response, {static_cast<std::uint64_t>(det.number)});
  constexpr std::array<double, 6> kPrnuScale{1.6, 1.2, 1.0, 0.9, 1.1, 1.4};
  const double prnu_scale = 0.008 * kPrnuScale[static_cast<size_t>(band.index)];
  Rng rng(seed_, Stream::flat, {static_cast<std::uint64_t>(det.number)});
  // Dead columns (a defect of the detector, so the same in every band).
  std::vector<long> dead;
  if (width_ >= 128) {
    const auto n = 1 + rng.below(2);
    for (std::uint64_t i = 0; i < n; ++i)
      dead.push_back(8 + static_cast<long>(rng.below(static_cast<std::uint64_t>(width_ - 16))));
  }
  const double corner = std::hypot(1.5 * pitch_x(), 1.5 * pitch_y());
  const double vignetting = 0.12 + 0.02 * (5 - band.index) / 5.0;
  fits::Image<float> flat(width_, height_);
  for (long y = 0; y < height_; ++y) {
    const double fy = focal_y(det, static_cast<double>(y));
    for (long x = 0; x < width_; ++x) {
      const double fx = focal_x(det, static_cast<double>(x));
      const double r2 = (fx * fx + fy * fy) / (corner * corner);
      flat.at(x, y) = static_cast<float>((1.0 - vignetting * r2) * (1.0 + prnu_scale * prnu.normal()));
    }
  }
  for (long x : dead) {
    for (long y = 0; y < height_; ++y) flat.at(x, y) = 0.05F;
  }
  return flat;
}

}  // namespace pixserve::sim
