// Choosing PSF-matching stars and fitting the spatially varying kernel on
// stamps around them (image/psf_match.hpp).

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "image/psf_match.hpp"
#include "image/statistics.hpp"

namespace pixserve::image {
namespace {

constexpr double kFitMadToSigma = 1.4826;  // Gaussian sigma per median absolute deviation

struct FoundPeak {
  long x = 0, y = 0;
  float value = 0.0F;
};

// A pixel above level that no pixel of its 5x5 neighbourhood exceeds (ties
// go to the first in row order, so a flat top gives one peak).
bool is_local_peak(const fits::Image<float>& img, long x, long y) {
  const float v = img.at(x, y);
  for (long dy = -2; dy <= 2; ++dy) {
    for (long dx = -2; dx <= 2; ++dx) {
      if (dx == 0 && dy == 0) continue;
      const float w = img.at(x + dx, y + dy);
      if (w > v) return false;
      if (w == v && (dy < 0 || (dy == 0 && dx < 0))) return false;
    }
  }
  return true;
}

// No pixel of the square of half-size r around (x, y) leaves the image,
// has a rejected mask bit, or is not finite.
bool footprint_is_clean(const Exposure& e, long x, long y, long r, std::int32_t reject_bits) {
  if (x - r < 0 || y - r < 0 || x + r >= e.width() || y + r >= e.height()) return false;
  for (long py = y - r; py <= y + r; ++py) {
    for (long px = x - r; px <= x + r; ++px) {
      if ((e.mask.at(px, py) & reject_bits) != 0 || !std::isfinite(e.image.at(px, py))) return false;
    }
  }
  return true;
}

// Solves a x = b for symmetric positive definite a (n x n, row-major; both
// overwritten). The system is first scaled to unit diagonal, which removes
// the spread of scales between basis, spatial and background terms, then
// factored by Cholesky. A pivot that vanishes relative to its diagonal means
// the data do not constrain some combination of unknowns.
std::vector<double> solve_positive_definite(std::vector<double> a, std::vector<double> b, std::size_t n) {
  constexpr double kMinPivot = 1e-13;
  std::vector<double> scale(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double d = a[i * n + i];
    if (!(d > 0.0) || !std::isfinite(d)) {
      throw PsfMatchError("PSF-matching fit is degenerate: unknown " + std::to_string(i) + " is not constrained");
    }
    scale[i] = 1.0 / std::sqrt(d);
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) a[i * n + j] *= scale[i] * scale[j];
    b[i] *= scale[i];
  }
  // In-place Cholesky: the lower triangle becomes L with a = L L^T.
  for (std::size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    if (!(d > kMinPivot)) {
      throw PsfMatchError("PSF-matching fit is degenerate: the stamps do not constrain the kernel (pivot " +
                          std::to_string(d) + " at unknown " + std::to_string(j) + ")");
    }
    const double ljj = std::sqrt(d);
    a[j * n + j] = ljj;
    for (std::size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / ljj;
    }
  }
  for (std::size_t i = 0; i < n; ++i) {  // L y = b
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= a[i * n + k] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (std::size_t i = n; i-- > 0;) {  // L^T x = y
    double s = b[i];
    for (std::size_t k = i + 1; k < n; ++k) s -= a[k * n + i] * b[k];
    b[i] = s / a[i * n + i];
  }
  for (std::size_t i = 0; i < n; ++i) b[i] *= scale[i];
  return b;
}

double median_of_values(std::vector<double> v) {
  const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  double m = *mid;
  if (v.size() % 2 == 0) m = 0.5 * (m + *std::max_element(v.begin(), mid));
  return m;
}

// One stamp's weighted least-squares system in its local unknowns (the
// fitted bases' coefficients, then the background), and what maps those to
// the global unknowns at the stamp centre.
struct StampSystem {
  std::size_t index = 0;       // into the stars given
  std::vector<double> normal;  // (nb + 1)^2: sum w phi phi^T
  std::vector<double> rhs;     // nb + 1: sum w phi S
  double data_sq = 0.0;        // sum w S^2
  double pixels = 0.0;
  std::vector<double> spatial, background;  // polynomial terms at the centre
};

class StampFitter {
 public:
  StampFitter(const Exposure& science, const Exposure& tmpl, const KernelBasis& basis, const PsfMatchOptions& o)
      : science_(science), tmpl_(tmpl), basis_(basis), options_(o) {}

  // The stamp's system, or the reason it cannot be used.
  std::pair<StampStatus, StampSystem> build(std::size_t index, const StarPosition& star) const {
    const long h = basis_.half_size();
    const long hs = options_.stamp_half_size > 0 ? options_.stamp_half_size : h;
    if (!std::isfinite(star.x) || !std::isfinite(star.y)) return {StampStatus::rejected, {}};
    const long xc = std::lround(star.x), yc = std::lround(star.y);
    const long margin = hs + h;
    if (xc - margin < 0 || yc - margin < 0 || xc + margin >= science_.width() || yc + margin >= science_.height()) {
      return {StampStatus::off_image, {}};
    }
    const std::int32_t reject = options_.reject_bits;
    for (long y = yc - margin; y <= yc + margin; ++y) {
      for (long x = xc - margin; x <= xc + margin; ++x) {
        const float t = tmpl_.image.at(x, y), tv = tmpl_.variance.at(x, y);
        if ((tmpl_.mask.at(x, y) & reject) != 0 || !std::isfinite(t) || !(tv >= 0.0F) || !std::isfinite(tv)) {
          return {StampStatus::rejected, {}};
        }
        if (std::abs(x - xc) > hs || std::abs(y - yc) > hs) continue;
        const float s = science_.image.at(x, y), sv = science_.variance.at(x, y);
        if ((science_.mask.at(x, y) & reject) != 0 || !std::isfinite(s) || !(sv > 0.0F) || !std::isfinite(sv)) {
          return {StampStatus::rejected, {}};
        }
      }
    }

    // Template around the stamp in convolve_raw's layout; columns past the
    // stamp's kernel margin only pad the last block of lanes.
    const long w = 2 * hs + 1;
    const long wp = KernelBasis::padded_width(w);
    const long stride = wp + 2 * h;
    std::vector<float> in(static_cast<std::size_t>(stride * (w + 2 * h)), 0.0F);
    for (long yy = 0; yy < w + 2 * h; ++yy) {
      for (long xx = 0; xx < w + 2 * h; ++xx) {
        in[static_cast<std::size_t>(yy * stride + xx)] = tmpl_.image.at(xc - margin + xx, yc - margin + yy);
      }
    }
    const std::size_t nb = basis_.size();
    const auto npix = static_cast<std::size_t>(w * w);
    std::vector<double> conv(nb * npix, 0.0);  // [basis][pixel]: B_k * T on the stamp
    basis_.convolve_raw(in, w, w, [&](std::size_t l, std::span<const float> plane) {
      for (std::size_t k = 0; k < nb; ++k) {
        const double t = basis_.transform(k)[l];
        if (t == 0.0) continue;
        double* out = conv.data() + k * npix;
        for (long y = 0; y < w; ++y) {
          for (long x = 0; x < w; ++x) out[y * w + x] += t * plane[static_cast<std::size_t>(y * wp + x)];
        }
      }
    });

    StampSystem sys;
    sys.index = index;
    const std::size_t nl = nb + 1;
    sys.normal.assign(nl * nl, 0.0);
    sys.rhs.assign(nl, 0.0);
    std::vector<double> phi(nl);
    for (long y = 0; y < w; ++y) {
      for (long x = 0; x < w; ++x) {
        const long px = xc - hs + x, py = yc - hs + y;
        const double s = science_.image.at(px, py);
        const double weight = 1.0 / static_cast<double>(science_.variance.at(px, py));
        const auto p = static_cast<std::size_t>(y * w + x);
        for (std::size_t k = 0; k < nb; ++k) phi[k] = conv[k * npix + p];
        phi[nb] = 1.0;
        for (std::size_t a = 0; a < nl; ++a) {
          const double wa = weight * phi[a];
          for (std::size_t b = a; b < nl; ++b) sys.normal[a * nl + b] += wa * phi[b];
          sys.rhs[a] += wa * s;
        }
        sys.data_sq += weight * s * s;
      }
    }
    for (std::size_t a = 0; a < nl; ++a) {
      for (std::size_t b = 0; b < a; ++b) sys.normal[a * nl + b] = sys.normal[b * nl + a];
    }
    sys.pixels = static_cast<double>(npix);
    sys.spatial.resize(polynomial_terms(options_.spatial_order));
    sys.background.resize(polynomial_terms(options_.background_order));
    const auto xd = static_cast<double>(xc), yd = static_cast<double>(yc);
    polynomial_terms_at(xd, yd, science_.width(), science_.height(), options_.spatial_order, sys.spatial);
    polynomial_terms_at(xd, yd, science_.width(), science_.height(), options_.background_order, sys.background);
    return {StampStatus::used, std::move(sys)};
  }

 private:
  const Exposure& science_;
  const Exposure& tmpl_;
  const KernelBasis& basis_;
  const PsfMatchOptions& options_;
};

// The global unknowns: the kernel sum, then nsp terms per fitted basis 1..,
// then the background terms. Each local unknown of a stamp is a weighted sum
// of some of them.
struct GlobalLayout {
  std::size_t bases = 0, spatial = 0, background = 0;
  std::size_t size() const { return 1 + (bases - 1) * spatial + background; }

  // (global index, weight) pairs of local unknown a of a stamp.
  std::vector<std::pair<std::size_t, double>> terms(const StampSystem& s, std::size_t a) const {
    std::vector<std::pair<std::size_t, double>> out;
    if (a == 0) {
      out.emplace_back(0, 1.0);
    } else if (a < bases) {
      for (std::size_t m = 0; m < spatial; ++m) out.emplace_back(1 + (a - 1) * spatial + m, s.spatial[m]);
    } else {
      for (std::size_t m = 0; m < background; ++m) out.emplace_back(1 + (bases - 1) * spatial + m, s.background[m]);
    }
    return out;
  }

  std::vector<double> local(const StampSystem& s, const std::vector<double>& theta) const {
    std::vector<double> u(bases + 1, 0.0);
    for (std::size_t a = 0; a <= bases; ++a) {
      for (const auto& [g, wgt] : terms(s, a)) u[a] += wgt * theta[g];
    }
    return u;
  }
};

// chi^2 per pixel of a stamp under local unknowns u: (q - 2 u.r + u^T M u) / n.
double stamp_chi2(const StampSystem& s, const std::vector<double>& u) {
  const std::size_t nl = u.size();
  double quad = 0.0, lin = 0.0;
  for (std::size_t a = 0; a < nl; ++a) {
    lin += u[a] * s.rhs[a];
    double row = 0.0;
    for (std::size_t b = 0; b < nl; ++b) row += s.normal[a * nl + b] * u[b];
    quad += u[a] * row;
  }
  return std::max(0.0, s.data_sq - 2.0 * lin + quad) / s.pixels;
}

}  // namespace

std::vector<StarPosition> find_psf_match_stars(const Exposure& science, const StarSelectionOptions& o) {
  if (o.grid < 1 || o.max_per_cell < 1 || o.footprint_half_size < 0 || !(o.isolation_radius >= 0.0)) {
    throw std::invalid_argument("find_psf_match_stars: grid, max_per_cell must be positive, radii not negative");
  }
  const auto& img = science.image;
  const long width = img.width, height = img.height;
  if (science.mask.width != width || science.mask.height != height) {
    throw std::invalid_argument("find_psf_match_stars: image and mask differ in size");
  }
  if (width < 5 || height < 5) return {};
  const BackgroundStats bg = estimate_background(img, &science.mask, o.reject_bits);
  if (!(bg.rms > 0.0) || bg.samples == 0) return {};
  const double neighbour_level = bg.level + o.neighbour_snr * bg.rms;
  const double star_level = bg.level + o.min_peak_snr * bg.rms;

  std::vector<FoundPeak> peaks;  // row order, so sorted by y
  for (long y = 2; y < height - 2; ++y) {
    for (long x = 2; x < width - 2; ++x) {
      const float v = img.at(x, y);
      if (!(v > neighbour_level)) continue;
      if (is_local_peak(img, x, y)) peaks.push_back({x, y, v});
    }
  }
  const double r2 = o.isolation_radius * o.isolation_radius;
  const auto radius = static_cast<long>(std::ceil(o.isolation_radius));
  const auto cells = static_cast<std::size_t>(o.grid) * static_cast<std::size_t>(o.grid);
  std::vector<std::vector<FoundPeak>> by_cell(cells);
  for (const auto& p : peaks) {
    if (!(p.value > star_level)) continue;
    if (!footprint_is_clean(science, p.x, p.y, o.footprint_half_size, o.reject_bits)) continue;
    const auto first =
        std::lower_bound(peaks.begin(), peaks.end(), p.y - radius, [](const FoundPeak& q, long y) { return q.y < y; });
    bool isolated = true;
    for (auto q = first; q != peaks.end() && q->y <= p.y + radius; ++q) {
      if (q->x == p.x && q->y == p.y) continue;
      const double dx = static_cast<double>(q->x - p.x), dy = static_cast<double>(q->y - p.y);
      if (dx * dx + dy * dy <= r2) {
        isolated = false;
        break;
      }
    }
    if (!isolated) continue;
    const auto cx = static_cast<std::size_t>(p.x * o.grid / width),
               cy = static_cast<std::size_t>(p.y * o.grid / height);
    by_cell[cy * static_cast<std::size_t>(o.grid) + cx].push_back(p);
  }
  std::vector<StarPosition> out;
  for (auto& cell : by_cell) {
    std::stable_sort(cell.begin(), cell.end(),
                     [](const FoundPeak& a, const FoundPeak& b) { return a.value > b.value; });
    const auto n = std::min(cell.size(), static_cast<std::size_t>(o.max_per_cell));
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back({static_cast<double>(cell[i].x), static_cast<double>(cell[i].y)});
    }
  }
  return out;
}

PsfMatchResult fit_psf_matching_kernel(const Exposure& science, const Exposure& tmpl,
                                       std::span<const StarPosition> stars, const PsfMatchOptions& options) {
  const long width = science.width(), height = science.height();
  const auto same_size = [&](const auto& plane) { return plane.width == width && plane.height == height; };
  if (!same_size(science.mask) || !same_size(science.variance) || !same_size(tmpl.image) || !same_size(tmpl.mask) ||
      !same_size(tmpl.variance)) {
    throw std::invalid_argument("fit_psf_matching_kernel: science and template planes must have the same size");
  }
  if (width < 1 || height < 1) throw std::invalid_argument("fit_psf_matching_kernel: empty exposure");
  if (options.spatial_order < 0 || options.spatial_order > 3 || options.background_order < 0 ||
      options.background_order > 3) {
    throw std::invalid_argument("fit_psf_matching_kernel: spatial and background orders must be in 0..3");
  }
  if (options.max_iterations < 1 || !(options.clip_sigma > 0.0) || options.stamp_half_size < 0) {
    throw std::invalid_argument("fit_psf_matching_kernel: max_iterations, clip_sigma must be positive");
  }
  const KernelBasis basis(options.basis);
  GlobalLayout layout{basis.size(), polynomial_terms(options.spatial_order),
                      polynomial_terms(options.background_order)};
  const long min_stamps =
      options.min_stamps > 0 ? options.min_stamps : 2 + static_cast<long>(std::max(layout.spatial, layout.background));

  std::vector<StampFit> fits(stars.size());
  std::vector<StampSystem> systems;
  const StampFitter fitter(science, tmpl, basis, options);
  for (std::size_t i = 0; i < stars.size(); ++i) {
    fits[i].star = stars[i];
    auto [status, sys] = fitter.build(i, stars[i]);
    fits[i].status = status;
    if (status == StampStatus::used) systems.push_back(std::move(sys));
  }

  const std::size_t n = layout.size();
  std::vector<double> theta;
  int iteration = 0;
  for (;;) {
    ++iteration;
    const auto active = static_cast<long>(std::count_if(systems.begin(), systems.end(), [&](const StampSystem& s) {
      return fits[s.index].status == StampStatus::used;
    }));
    if (active < min_stamps) {
      throw PsfMatchError("PSF matching needs at least " + std::to_string(min_stamps) + " usable star stamps, has " +
                          std::to_string(active) + " of " + std::to_string(stars.size()) + " stars given");
    }
    std::vector<double> normal(n * n, 0.0), rhs(n, 0.0);
    const std::size_t nl = layout.bases + 1;
    for (const auto& s : systems) {
      if (fits[s.index].status != StampStatus::used) continue;
      std::vector<std::vector<std::pair<std::size_t, double>>> terms(nl);
      for (std::size_t a = 0; a < nl; ++a) terms[a] = layout.terms(s, a);
      for (std::size_t a = 0; a < nl; ++a) {
        for (const auto& [ga, wa] : terms[a]) rhs[ga] += wa * s.rhs[a];
        for (std::size_t b = 0; b < nl; ++b) {
          const double m = s.normal[a * nl + b];
          for (const auto& [gb, wb] : terms[b]) {
            for (const auto& [ga, wa] : terms[a]) normal[ga * n + gb] += wa * m * wb;
          }
        }
      }
    }
    theta = solve_positive_definite(std::move(normal), std::move(rhs), n);
    if (!std::all_of(theta.begin(), theta.end(), [](double v) { return std::isfinite(v); })) {
      throw PsfMatchError("PSF-matching fit gave non-finite coefficients");
    }
    std::vector<double> active_chi2;
    for (const auto& s : systems) {
      auto& f = fits[s.index];
      f.chi2_per_pixel = stamp_chi2(s, layout.local(s, theta));
      if (f.status == StampStatus::used) active_chi2.push_back(f.chi2_per_pixel);
    }
    if (iteration >= options.max_iterations) break;
    // Clip on the upper side only: a stamp fitting better than the rest is
    // no sign of trouble. The scatter used is at least what chi^2 per pixel
    // has from noise alone (sqrt(2 / pixels) relative), so a set of equally
    // good stamps is not thinned for nothing.
    const double median = median_of_values(active_chi2);
    std::vector<double> deviations;
    for (double c : active_chi2) deviations.push_back(std::abs(c - median));
    const double pixels = systems.front().pixels;
    const double scatter = std::max(kFitMadToSigma * median_of_values(deviations), std::sqrt(2.0 / pixels) * median);
    const double limit = median + options.clip_sigma * scatter;
    const auto outliers = std::count_if(active_chi2.begin(), active_chi2.end(), [&](double c) { return c > limit; });
    // Clipping that would leave too few stamps keeps the fit as it is: a
    // field of few stars is better served by all of them than by an error.
    if (outliers == 0 || active - static_cast<long>(outliers) < min_stamps) break;
    for (const auto& s : systems) {
      auto& f = fits[s.index];
      if (f.status == StampStatus::used && f.chi2_per_pixel > limit) f.status = StampStatus::clipped;
    }
  }

  const auto split = theta.begin() + static_cast<std::ptrdiff_t>(1 + (layout.bases - 1) * layout.spatial);
  std::vector<double> coefficients(theta.begin(), split), background(split, theta.end());
  if (!(coefficients[0] > 0.0)) {
    throw PsfMatchError("PSF-matching fit gave a kernel sum of " + std::to_string(coefficients[0]) +
                        ": the template does not resemble the science image at the stars");
  }
  return PsfMatchResult{PsfMatchingKernel(options.basis, width, height, options.spatial_order, options.background_order,
                                          std::move(coefficients), std::move(background)),
                        std::move(fits), iteration};
}

}  // namespace pixserve::image
