#include "image/statistics.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "image/mask.hpp"

namespace pixserve::image {
namespace {

double median_of(std::vector<float>& v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  double m = *mid;
  if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), mid));
  return m;
}

constexpr double kMadToSigma = 1.4826;                 // Gaussian sigma per median absolute deviation
constexpr double kGaussianFwhmPerSigma = 2.354820045;  // 2 sqrt(2 ln 2)

}  // namespace

BackgroundStats estimate_background(const fits::Image<float>& image, const fits::Image<std::int32_t>* mask,
                                    std::int32_t reject_bits, std::size_t max_samples) {
  BackgroundStats out;
  const auto total = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  if (total == 0) return out;
  // A square grid step giving about max_samples points.
  const long step = std::max<long>(
      1, static_cast<long>(std::floor(std::sqrt(static_cast<double>(total) / static_cast<double>(max_samples)))));
  std::vector<float> values;
  values.reserve(total / static_cast<std::size_t>(step * step) + 1);
  for (long y = step / 2; y < image.height; y += step) {
    for (long x = step / 2; x < image.width; x += step) {
      const float v = image.at(x, y);
      if (!std::isfinite(v)) continue;
      if (mask != nullptr && (mask->at(x, y) & reject_bits) != 0) continue;
      values.push_back(v);
    }
  }
  if (values.empty()) return out;
  // Three rounds of 3-sigma clipping about the median remove stars and
  // galaxies from the estimate; the median keeps it robust meanwhile.
  double level = 0.0, sigma = 0.0;
  std::vector<float> work;
  for (int round = 0; round < 4; ++round) {
    work = values;
    level = median_of(work);
    for (auto& w : work) w = static_cast<float>(std::abs(w - level));
    sigma = kMadToSigma * median_of(work);
    if (sigma <= 0.0 || round == 3) break;
    const double lo = level - 3.0 * sigma, hi = level + 3.0 * sigma;
    const auto kept = std::remove_if(values.begin(), values.end(), [&](float v) { return v < lo || v > hi; });
    if (kept == values.end()) break;
    values.erase(kept, values.end());
    if (values.empty()) break;
  }
  out.level = level;
  out.rms = sigma;
  out.samples = values.size();
  return out;
}

std::optional<Moments> adaptive_moments(const fits::Image<float>& image, double x, double y, double sigma_guess) {
  if (!(sigma_guess > 0.0)) return std::nullopt;
  double s2 = sigma_guess * sigma_guess;
  for (int iter = 0; iter < 60; ++iter) {
    const double s = std::sqrt(s2);
    const long r = static_cast<long>(std::ceil(4.0 * s));
    const long cx = std::lround(x), cy = std::lround(y);
    if (cx - r < 0 || cy - r < 0 || cx + r >= image.width || cy + r >= image.height) return std::nullopt;
    double sw = 0, sx = 0, sy = 0, sxx = 0, syy = 0;
    for (long py = cy - r; py <= cy + r; ++py) {
      const double dy = static_cast<double>(py) - y;
      for (long px = cx - r; px <= cx + r; ++px) {
        const double dx = static_cast<double>(px) - x;
        const double w = std::exp(-0.5 * (dx * dx + dy * dy) / s2) * image.at(px, py);
        sw += w;
        sx += w * dx;
        sy += w * dy;
        sxx += w * dx * dx;
        syy += w * dy * dy;
      }
    }
    if (!(sw > 0.0)) return std::nullopt;
    const double mx = sx / sw, my = sy / sw;
    // Second moments about the weighted centroid; for a Gaussian source of
    // variance sigma^2 and weight variance s2 they equal
    // sigma^2 s2 / (sigma^2 + s2), so 2 * moment is s2's fixed point.
    const double e = 0.5 * ((sxx / sw - mx * mx) + (syy / sw - my * my));
    if (!(e > 0.0)) return std::nullopt;
    const double s2_new = 2.0 * e;
    x += mx;
    y += my;
    const bool converged = std::abs(s2_new - s2) < 1e-6 * s2 && std::abs(mx) < 1e-4 && std::abs(my) < 1e-4;
    s2 = s2_new;
    if (s2 > 1e4) return std::nullopt;  // runaway: not a compact source
    if (converged) return Moments{x, y, std::sqrt(s2), sw};
  }
  return std::nullopt;
}

std::optional<double> measure_psf_fwhm(const Exposure& exposure, double noise_rms, double sigma_guess, double min_snr,
                                       int max_stars) {
  const auto& img = exposure.image;
  if (!(noise_rms > 0.0) || !(sigma_guess > 0.0)) return std::nullopt;
  const float threshold = static_cast<float>(min_snr * noise_rms);
  const long margin = static_cast<long>(std::ceil(6.0 * sigma_guess)) + 2;
  struct Peak {
    float value;
    long x, y;
  };
  std::vector<Peak> peaks;
  for (long y = margin; y < img.height - margin; ++y) {
    for (long x = margin; x < img.width - margin; ++x) {
      const float v = img.at(x, y);
      if (!(v > threshold)) continue;
      bool is_max = true;
      for (long dy = -1; dy <= 1 && is_max; ++dy) {
        for (long dx = -1; dx <= 1; ++dx) {
          if ((dx != 0 || dy != 0) && img.at(x + dx, y + dy) >= v) {
            is_max = false;
            break;
          }
        }
      }
      if (is_max) peaks.push_back({v, x, y});
    }
  }
  // Brightest first; ties broken by position so the choice is deterministic.
  std::sort(peaks.begin(), peaks.end(), [](const Peak& a, const Peak& b) {
    return a.value != b.value ? a.value > b.value : (a.y != b.y ? a.y < b.y : a.x < b.x);
  });
  const std::int32_t unusable =
      mask_bit(MaskPlane::saturated) | mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::no_data);
  const long isolation = static_cast<long>(std::ceil(5.0 * sigma_guess));
  std::vector<double> sizes;
  for (std::size_t i = 0; i < peaks.size() && static_cast<int>(sizes.size()) < max_stars; ++i) {
    const auto& p = peaks[i];
    // Isolated: no other peak above a tenth of this one nearby (blends
    // would inflate the size).
    bool isolated = true;
    for (const auto& q : peaks) {
      if (&q == &p || q.value < 0.1F * p.value) continue;
      if (std::abs(q.x - p.x) <= isolation && std::abs(q.y - p.y) <= isolation) {
        isolated = false;
        break;
      }
    }
    if (!isolated) continue;
    bool clean = true;
    for (long y = p.y - isolation; y <= p.y + isolation && clean; ++y) {
      for (long x = p.x - isolation; x <= p.x + isolation; ++x) {
        if (x < 0 || y < 0 || x >= img.width || y >= img.height || (exposure.mask.at(x, y) & unusable) != 0) {
          clean = false;
          break;
        }
      }
    }
    if (!clean) continue;
    const auto m = adaptive_moments(img, static_cast<double>(p.x), static_cast<double>(p.y), sigma_guess);
    if (m) sizes.push_back(m->sigma);
  }
  if (sizes.empty()) return std::nullopt;
  // The median resists the few galaxies (larger than the PSF) among the stars.
  std::sort(sizes.begin(), sizes.end());
  return kGaussianFwhmPerSigma * sizes[sizes.size() / 2];
}

}  // namespace pixserve::image
