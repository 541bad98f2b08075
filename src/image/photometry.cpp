#include "image/photometry.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>

#include "image/mask.hpp"

namespace pixserve::image {
namespace {

// The integral of sqrt(r^2 - t^2) dt from 0 to X, for |X| <= r.
double half_chord_integral(double x, double r) {
  const double c = std::clamp(x / r, -1.0, 1.0);
  return 0.5 * (x * std::sqrt(std::max(0.0, r * r - x * x)) + r * r * std::asin(c));
}

// Pixels of an exposure that a measurement leaves out: a rejecting mask
// bit, or a value that is not a number (no data in a coadd).
struct PixelUse {
  bool used = true;
  bool saturated = false;
};

PixelUse use_of(const Exposure& e, long x, long y, std::int32_t reject) {
  const std::int32_t bits = e.mask.at(x, y);
  PixelUse u;
  u.saturated = (bits & mask_bit(MaskPlane::saturated)) != 0;
  u.used = (bits & reject) == 0 && std::isfinite(e.image.at(x, y)) && std::isfinite(e.variance.at(x, y));
  return u;
}

}  // namespace

double circle_rectangle_overlap(double x0, double y0, double x1, double y1, double r) {
  if (!(r > 0.0) || !(x0 < x1) || !(y0 < y1)) return 0.0;
  // The area is the integral over X of the length of [y0, y1] within the
  // chord [-s(X), s(X)], s = sqrt(r^2 - X^2). Between the X where s equals
  // |y0| or |y1| (and the circle's own ends) each bound of that length is
  // either a constant or +-s, so each piece integrates in closed form.
  std::array<double, 6> cuts{};
  std::size_t n = 0;
  const double a = std::max(x0, -r), b = std::min(x1, r);
  if (!(a < b)) return 0.0;
  cuts[n++] = a;
  cuts[n++] = b;
  for (const double y : {y0, y1}) {
    if (std::abs(y) < r) {
      const double x = std::sqrt(r * r - y * y);
      for (const double c : {-x, x}) {
        if (c > a && c < b) cuts[n++] = c;
      }
    }
  }
  // At most six cuts: an insertion sort (std::sort's bounds on a partly
  // filled array confuse GCC 12's array-bounds warning).
  for (std::size_t i = 1; i < n; ++i) {
    for (std::size_t k = i; k > 0 && cuts[k - 1] > cuts[k]; --k) std::swap(cuts[k - 1], cuts[k]);
  }
  double area = 0.0;
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double lo = cuts[i], hi = cuts[i + 1];
    if (!(lo < hi)) continue;
    const double mid = 0.5 * (lo + hi);
    const double s = std::sqrt(std::max(0.0, r * r - mid * mid));
    const bool upper_is_chord = s < y1;   // else the rectangle's top bounds the length
    const bool lower_is_chord = -s > y0;  // else its bottom
    const double upper = upper_is_chord ? s : y1, lower = lower_is_chord ? -s : y0;
    if (!(upper > lower)) continue;
    const double chord = half_chord_integral(hi, r) - half_chord_integral(lo, r);
    area += (upper_is_chord ? chord : y1 * (hi - lo)) - (lower_is_chord ? -chord : y0 * (hi - lo));
  }
  return area;
}

std::int32_t photometry_reject_bits() {
  return mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::no_data) | mask_bit(MaskPlane::cosmic_ray) |
         mask_bit(MaskPlane::saturated);
}

ForcedMeasurement aperture_photometry(const Exposure& exposure, double x, double y, double radius) {
  if (!(std::isfinite(radius) && radius > 0.0)) throw std::invalid_argument("aperture radius must be positive");
  if (!(std::isfinite(x) && std::isfinite(y))) throw std::invalid_argument("aperture position must be finite");
  ForcedMeasurement m;
  const std::int32_t reject = photometry_reject_bits();
  // Pixel i spans [i - 0.5, i + 0.5].
  const long i0 = static_cast<long>(std::floor(x - radius + 0.5)), i1 = static_cast<long>(std::ceil(x + radius - 0.5));
  const long j0 = static_cast<long>(std::floor(y - radius + 0.5)), j1 = static_cast<long>(std::ceil(y + radius - 0.5));
  double flux = 0.0, variance = 0.0;
  for (long j = j0; j <= j1; ++j) {
    for (long i = i0; i <= i1; ++i) {
      const double w = circle_rectangle_overlap(i - 0.5 - x, j - 0.5 - y, i + 0.5 - x, j + 0.5 - y, radius);
      if (w <= 0.0) continue;
      if (i < 0 || j < 0 || i >= exposure.width() || j >= exposure.height()) {
        m.edge = true;
        continue;
      }
      const PixelUse u = use_of(exposure, i, j, reject);
      m.saturated = m.saturated || u.saturated;
      if (!u.used) {
        m.masked = true;
        continue;
      }
      flux += w * exposure.image.at(i, j);
      variance += w * exposure.variance.at(i, j);
      m.area += w;
    }
  }
  m.flux = m.valid() ? flux : std::numeric_limits<double>::quiet_NaN();
  m.flux_err = m.valid() ? std::sqrt(variance) : std::numeric_limits<double>::quiet_NaN();
  return m;
}

ForcedMeasurement psf_photometry(const Exposure& exposure, double x, double y, double fwhm) {
  if (!(std::isfinite(fwhm) && fwhm > 0.0)) throw std::invalid_argument("PSF FWHM must be positive");
  if (!(std::isfinite(x) && std::isfinite(y))) throw std::invalid_argument("PSF position must be finite");
  ForcedMeasurement m;
  const std::int32_t reject = photometry_reject_bits();
  const double sigma = fwhm / (2.0 * std::sqrt(2.0 * std::numbers::ln2));
  const double scale = 1.0 / (std::numbers::sqrt2 * sigma);
  // The Gaussian integrated over each pixel: a separable product of erf
  // differences, so its sum over the plane is exactly 1.
  const auto profile = [&](double offset) { return 0.5 * (std::erf((offset + 0.5) * scale) - std::erf((offset - 0.5) * scale)); };
  const double reach = 3.0 * fwhm;
  const long i0 = static_cast<long>(std::floor(x - reach)), i1 = static_cast<long>(std::ceil(x + reach));
  const long j0 = static_cast<long>(std::floor(y - reach)), j1 = static_cast<long>(std::ceil(y + reach));
  double num = 0.0, den = 0.0;
  for (long j = j0; j <= j1; ++j) {
    const double py = profile(static_cast<double>(j) - y);
    for (long i = i0; i <= i1; ++i) {
      const double dx = static_cast<double>(i) - x, dy = static_cast<double>(j) - y;
      if (dx * dx + dy * dy > reach * reach) continue;
      if (i < 0 || j < 0 || i >= exposure.width() || j >= exposure.height()) {
        m.edge = true;
        continue;
      }
      const PixelUse u = use_of(exposure, i, j, reject);
      m.saturated = m.saturated || u.saturated;
      const double v = exposure.variance.at(i, j);
      if (!u.used || !(v > 0.0)) {
        m.masked = m.masked || !u.used;
        continue;
      }
      const double p = profile(dx) * py;
      num += p * exposure.image.at(i, j) / v;
      den += p * p / v;
      m.area += 1.0;
    }
  }
  if (!(den > 0.0)) m.area = 0.0;
  m.flux = m.valid() ? num / den : std::numeric_limits<double>::quiet_NaN();
  m.flux_err = m.valid() ? 1.0 / std::sqrt(den) : std::numeric_limits<double>::quiet_NaN();
  return m;
}

}  // namespace pixserve::image
