#include "sim/render.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "sim/random.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {
namespace {

using sky::kDeg;
constexpr double kSigmaPerFwhm = 1.0 / 2.354820045;
// Profiles are drawn out to where they fall below this many electrons per
// pixel: far below the sky noise of any band.
constexpr double kFloorElectrons = 0.02;
constexpr long kMaxStampRadius = 200;

// Fraction of a unit Gaussian (centre c, width sigma) falling in each pixel
// [x - 0.5, x + 0.5] for x = first .. first + n - 1.
void pixel_fractions(double c, double sigma, long first, long n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  const double k = 1.0 / (std::sqrt(2.0) * sigma);
  double lower = std::erf((static_cast<double>(first) - 0.5 - c) * k);
  for (long i = 0; i < n; ++i) {
    const double upper = std::erf((static_cast<double>(first + i) + 0.5 - c) * k);
    out[static_cast<size_t>(i)] = 0.5 * (upper - lower);
    lower = upper;
  }
}

long stamp_radius(double peak, double sigma) {
  const double ratio = std::max(peak / kFloorElectrons, std::exp(4.5));  // at least 3 sigma
  return std::min(kMaxStampRadius, static_cast<long>(std::ceil(sigma * std::sqrt(2.0 * std::log(ratio)))) + 1);
}

void add_star(fits::Image<float>& img, double x, double y, double flux, double sigma, std::vector<double>& fx,
              std::vector<double>& fy) {
  const long r = stamp_radius(flux / (2.0 * std::numbers::pi * sigma * sigma), sigma);
  const long x0 = std::max(0L, std::lround(x) - r), x1 = std::min(img.width - 1, std::lround(x) + r);
  const long y0 = std::max(0L, std::lround(y) - r), y1 = std::min(img.height - 1, std::lround(y) + r);
  if (x0 > x1 || y0 > y1) return;
  pixel_fractions(x, sigma, x0, x1 - x0 + 1, fx);
  pixel_fractions(y, sigma, y0, y1 - y0 + 1, fy);
  for (long py = y0; py <= y1; ++py) {
    const double wy = flux * fy[static_cast<size_t>(py - y0)];
    float* row = &img.at(0, py);
    for (long px = x0; px <= x1; ++px) row[px] += static_cast<float>(wy * fx[static_cast<size_t>(px - x0)]);
  }
}

// An elliptical Gaussian with pixel covariance [[cxx, cxy], [cxy, cyy]],
// sampled at pixel centres.
void add_gaussian(fits::Image<float>& img, double x, double y, double flux, double cxx, double cxy, double cyy) {
  const double det = cxx * cyy - cxy * cxy;
  if (!(det > 0.0)) return;
  const double ixx = cyy / det, ixy = -cxy / det, iyy = cxx / det;
  const double norm = flux / (2.0 * std::numbers::pi * std::sqrt(det));
  const double major = std::sqrt(0.5 * (cxx + cyy) + std::sqrt(0.25 * (cxx - cyy) * (cxx - cyy) + cxy * cxy));
  const long r = stamp_radius(norm, major);
  const long x0 = std::max(0L, std::lround(x) - r), x1 = std::min(img.width - 1, std::lround(x) + r);
  const long y0 = std::max(0L, std::lround(y) - r), y1 = std::min(img.height - 1, std::lround(y) + r);
  for (long py = y0; py <= y1; ++py) {
    const double dy = static_cast<double>(py) - y;
    for (long px = x0; px <= x1; ++px) {
      const double dx = static_cast<double>(px) - x;
      const double q = ixx * dx * dx + 2.0 * ixy * dx * dy + iyy * dy * dy;
      if (q < 60.0) img.at(px, py) += static_cast<float>(norm * std::exp(-0.5 * q));
    }
  }
}

}  // namespace

fits::Image<float> render_scene(const SkyModel& sky, const Visit& visit, const wcs::Wcs& wcs, const Camera& camera) {
  const long width = camera.width(), height = camera.height();
  fits::Image<float> img(width, height, static_cast<float>(visit.sky_electrons));
  const double scale = camera.pixel_scale_arcsec();
  const double psf_sigma = visit.seeing_arcsec * kSigmaPerFwhm / scale;  // pixels
  const double mjd = visit.mjd_mid();
  const sky::SkyPoint center =
      wcs.pixel_to_sky({0.5 * static_cast<double>(width - 1), 0.5 * static_cast<double>(height - 1)});
  // Objects up to a few arcseconds outside still spill light onto the edge.
  const double radius = camera.detector_radius_deg() + 10.0 / 3600.0;
  const double margin = 60.0;  // pixels
  std::vector<double> fx, fy;
  for (const SkyObject* o : sky.near(center, radius, mjd)) {
    const sky::SkyPoint pos = SkyModel::position_at(*o, mjd);
    wcs::PixelPoint p;
    try {
      p = wcs.sky_to_pixel(pos);
    } catch (const wcs::WcsError&) {
      continue;  // not projectable onto this detector: far outside
    }
    if (p.x < -margin || p.y < -margin || p.x > static_cast<double>(width) + margin ||
        p.y > static_cast<double>(height) + margin) {
      continue;
    }
    const double flux = visit.exposure_time *
                        std::pow(10.0, -0.4 * (SkyModel::magnitude_at(*o, visit.band->index, mjd) - visit.zero_point));
    if (o->type != ObjectType::galaxy) {
      add_star(img, p.x, p.y, flux, psf_sigma, fx, fy);
      continue;
    }
    // The galaxy's sky covariance (arcsec^2, east/north axes) mapped into
    // pixels through the local WCS Jacobian, then convolved with the PSF.
    const double sa = o->half_light_radius_arcsec / 1.177410023;  // Gaussian sigma from half-light radius
    const double sb = sa * o->axis_ratio;
    const double pa = o->position_angle_deg * kDeg;
    const double ue = std::sin(pa), un = std::cos(pa);  // major axis (east, north)
    const double cee = sa * sa * ue * ue + sb * sb * un * un;
    const double cen = (sa * sa - sb * sb) * ue * un;
    const double cnn = sa * sa * un * un + sb * sb * ue * ue;
    const double step = 1.0 / 3600.0;  // one arcsecond
    wcs::PixelPoint pe, pn;
    try {
      pe = wcs.sky_to_pixel(offset_tangent(pos, step, 0.0));
      pn = wcs.sky_to_pixel(offset_tangent(pos, 0.0, step));
    } catch (const wcs::WcsError&) {
      continue;
    }
    // Jacobian columns: pixels per arcsecond east and north.
    const double jxe = pe.x - p.x, jye = pe.y - p.y, jxn = pn.x - p.x, jyn = pn.y - p.y;
    const double cxx = jxe * jxe * cee + 2.0 * jxe * jxn * cen + jxn * jxn * cnn + psf_sigma * psf_sigma;
    const double cxy = jxe * jye * cee + (jxe * jyn + jxn * jye) * cen + jxn * jyn * cnn;
    const double cyy = jye * jye * cee + 2.0 * jye * jyn * cen + jyn * jyn * cnn + psf_sigma * psf_sigma;
    add_gaussian(img, p.x, p.y, flux, cxx, cxy, cyy);
  }
  return img;
}

std::vector<fits::Image<std::int32_t>> render_raw(const std::vector<AmplifierSpec>& amps,
                                                  const fits::Image<float>& scene, const fits::Image<float>& flat,
                                                  const fits::Image<float>& bias, std::uint64_t noise_seed) {
  constexpr double kAdcMax = 262143.0;  // 18-bit converter
  std::vector<fits::Image<std::int32_t>> out;
  out.reserve(amps.size());
  for (size_t a = 0; a < amps.size(); ++a) {
    const auto& amp = amps[a];
    const auto& h = amp.header;
    Rng rng(noise_seed, Stream::noise, {a});
    fits::Image<std::int32_t> raw(amp.raw_width, amp.raw_height, 0);
    const double rn_adu = h.read_noise / h.gain;
    auto digitize = [&](double adu) { return static_cast<std::int32_t>(std::clamp(std::round(adu), 0.0, kAdcMax)); };
    // Bias-only columns: prescan and overscan.
    const auto pre = h.prescan ? h.prescan->box() : fits::PixelBox{};
    const auto over = h.biassec.box();
    for (long y = 0; y < amp.raw_height; ++y) {
      const double level = amp.level_at(y);
      for (long x = pre.x0; x < pre.x0 + pre.width; ++x) raw.at(x, y) = digitize(level + rn_adu * rng.normal());
      for (long x = over.x0; x < over.x0 + over.width; ++x) raw.at(x, y) = digitize(level + rn_adu * rng.normal());
    }
    // Image columns, walked in DATASEC order so DETSEC's flips apply.
    for (long j = 0; j < h.datasec.height(); ++j) {
      const long ry = h.datasec.row(j), dy = h.detsec.row(j);
      const double level = amp.level_at(ry);
      for (long i = 0; i < h.datasec.width(); ++i) {
        const long dx = h.detsec.column(i);
        const double mean = std::max(0.0, static_cast<double>(scene.at(dx, dy)) * flat.at(dx, dy));
        double electrons = 0.0;
        if (mean >= amp.full_well) {
          electrons = amp.full_well + h.read_noise * rng.normal();
        } else if (mean >= 30.0) {
          // Poisson (normal approximation) and read noise in one deviate.
          electrons = std::min(mean + std::sqrt(mean + h.read_noise * h.read_noise) * rng.normal(), amp.full_well);
        } else {
          // Two draws in two statements: the order of a + b's operands is
          // the compiler's choice, and the pixels must not depend on it.
          const double photons = rng.poisson(mean);
          electrons = photons + h.read_noise * rng.normal();
        }
        raw.at(h.datasec.column(i), ry) = digitize(level + (bias.at(dx, dy) + electrons) / h.gain);
      }
    }
    out.push_back(std::move(raw));
  }
  return out;
}

}  // namespace pixserve::sim
