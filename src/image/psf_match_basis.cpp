// The Alard-Lupton basis (raw separable kernels, the fitted bases made from
// them), separable convolution with it, and the fitted kernel as data.

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <utility>

#include "image/lane_block.hpp"
#include "image/psf_match.hpp"

namespace pixserve::image {
namespace {

constexpr double kFwhmPerSigmaPsf = 2.354820045;  // 2 sqrt(2 ln 2)
constexpr double kProfileSupportSigmas = 6.0;     // raw profiles are zero beyond this many sigma
// A raw kernel whose part independent of the earlier ones is below this
// fraction of its norm adds nothing the fit could determine: dropped.
constexpr double kDependentFraction = 1e-6;

double basis_dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

constexpr auto kBasisLanes = static_cast<std::size_t>(KernelBasis::kLanes);

}  // namespace

KernelBasisSpec basis_spec_for_psfs(double template_fwhm, double science_fwhm) {
  if (!(template_fwhm > 0.0 && science_fwhm > 0.0 && std::isfinite(template_fwhm) && std::isfinite(science_fwhm))) {
    throw std::invalid_argument("basis_spec_for_psfs: FWHMs must be positive and finite");
  }
  const double st = template_fwhm / kFwhmPerSigmaPsf, ss = science_fwhm / kFwhmPerSigmaPsf;
  const double matching = std::sqrt(std::max(ss * ss - st * st, 0.25));
  const double scale = matching / 1.5;
  KernelBasisSpec spec;
  for (auto& g : spec.gaussians) g.sigma *= scale;
  const double widest = spec.gaussians.back().sigma;
  spec.half_size = static_cast<int>(std::clamp(std::ceil(3.0 * widest), 5.0, 25.0));
  return spec;
}

KernelBasis::KernelBasis(KernelBasisSpec spec) : spec_(std::move(spec)) {
  const int h = spec_.half_size;
  if (h < 1 || h > 50) throw std::invalid_argument("kernel half size must be in 1..50");
  if (spec_.gaussians.empty()) throw std::invalid_argument("kernel basis needs at least one Gaussian");
  for (const auto& g : spec_.gaussians) {
    if (!(g.sigma > 0.0 && std::isfinite(g.sigma))) throw std::invalid_argument("basis sigma must be positive");
    if (g.degree < 0 || g.degree > 8) throw std::invalid_argument("basis degree must be in 0..8");
  }
  // Profiles g(u) (u/sigma)^p over -r..r, rounded to the single precision
  // the convolutions use, so that kernel images show exactly the kernel
  // applied.
  for (std::size_t c = 0; c < spec_.gaussians.size(); ++c) {
    const auto& g = spec_.gaussians[c];
    const int r = static_cast<int>(std::min<double>(h, std::floor(kProfileSupportSigmas * g.sigma)));
    radius_.push_back(std::max(r, 0));
    std::vector<std::vector<double>> by_power;
    for (int p = 0; p <= g.degree; ++p) {
      std::vector<double> prof;
      for (int u = -radius_.back(); u <= radius_.back(); ++u) {
        const double s = static_cast<double>(u) / g.sigma;
        double v = std::exp(-0.5 * s * s);
        for (int k = 0; k < p; ++k) v *= s;
        prof.push_back(static_cast<double>(static_cast<float>(v)));
      }
      by_power.push_back(std::move(prof));
    }
    std::vector<std::vector<float>> as_taps;
    for (const auto& prof : by_power) as_taps.emplace_back(prof.begin(), prof.end());
    taps_.push_back(std::move(as_taps));
    profiles_.push_back(std::move(by_power));
    // Index order matches convolve_raw: x power outer, y power inner.
    for (int i = 0; i <= g.degree; ++i) {
      for (int j = 0; i + j <= g.degree; ++j) raw_.push_back({c, i, j});
    }
  }

  // Fitted bases: the first raw kernel normalised to sum 1, the others made
  // to sum 0 and orthonormalised (twice, for numerical orthogonality).
  const std::size_t n = raw_.size();
  std::vector<std::vector<double>> images;
  std::vector<double> sums;
  for (std::size_t l = 0; l < n; ++l) {
    std::vector<double> unit(n, 0.0);
    unit[l] = 1.0;
    images.push_back(raw_kernel_image(unit));
    double s = 0.0;
    for (double v : images.back()) s += v;
    sums.push_back(s);
  }
  std::vector<double> first = images[0];
  for (auto& v : first) v /= sums[0];
  std::vector<double> first_row(n, 0.0);
  first_row[0] = 1.0 / sums[0];
  transform_.push_back(first_row);
  std::vector<std::vector<double>> zero_sum_images;  // images of the fitted bases 1..
  for (std::size_t l = 1; l < n; ++l) {
    std::vector<double> b = images[l];
    std::vector<double> row(n, 0.0);
    row[l] = 1.0;
    for (std::size_t p = 0; p < b.size(); ++p) b[p] -= sums[l] * first[p];
    for (std::size_t m = 0; m < n; ++m) row[m] -= sums[l] * first_row[m];
    const double norm_before = std::sqrt(basis_dot(b, b));
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t k = 0; k < zero_sum_images.size(); ++k) {
        const double proj = basis_dot(b, zero_sum_images[k]);
        for (std::size_t p = 0; p < b.size(); ++p) b[p] -= proj * zero_sum_images[k][p];
        for (std::size_t m = 0; m < n; ++m) row[m] -= proj * transform_[k + 1][m];
      }
    }
    const double norm = std::sqrt(basis_dot(b, b));
    if (!(norm > kDependentFraction * norm_before)) continue;
    for (auto& v : b) v /= norm;
    for (auto& v : row) v /= norm;
    zero_sum_images.push_back(std::move(b));
    transform_.push_back(std::move(row));
  }
}

const std::vector<double>& KernelBasis::profile(std::size_t gaussian, int power) const {
  return profiles_[gaussian][static_cast<std::size_t>(power)];
}

const std::vector<float>& KernelBasis::profile_taps(std::size_t gaussian, int power) const {
  return taps_[gaussian][static_cast<std::size_t>(power)];
}

std::vector<double> KernelBasis::raw_kernel_image(std::span<const double> raw_coefficients) const {
  const long w = kernel_width();
  const int h = spec_.half_size;
  std::vector<double> img(static_cast<std::size_t>(w * w), 0.0);
  for (std::size_t l = 0; l < raw_.size() && l < raw_coefficients.size(); ++l) {
    const double c = raw_coefficients[l];
    if (c == 0.0) continue;
    const int r = radius_[raw_[l].gaussian];
    const auto& px = profile(raw_[l].gaussian, raw_[l].x_power);
    const auto& py = profile(raw_[l].gaussian, raw_[l].y_power);
    for (int v = -r; v <= r; ++v) {
      const double cy = c * py[static_cast<std::size_t>(v + r)];
      double* row = img.data() + static_cast<std::ptrdiff_t>((v + h) * w + h);
      for (int u = -r; u <= r; ++u) row[u] += cy * px[static_cast<std::size_t>(u + r)];
    }
  }
  return img;
}

std::vector<double> KernelBasis::basis_image(std::size_t k) const { return raw_kernel_image(transform(k)); }

void KernelBasis::convolve_raw(std::span<const float> in, long width, long height,
                               const std::function<void(std::size_t, std::span<const float>)>& visit) const {
  const long h = spec_.half_size;
  const long wp = padded_width(width);
  const long stride = wp + 2 * h;
  if (width <= 0 || height <= 0) return;
  if (in.size() != static_cast<std::size_t>(stride * (height + 2 * h))) {
    throw std::invalid_argument("KernelBasis::convolve_raw: input size does not match the output size");
  }
  std::vector<float> horizontal, plane(static_cast<std::size_t>(wp * height));
  std::size_t l = 0;
  for (std::size_t c = 0; c < spec_.gaussians.size(); ++c) {
    const long r = radius_[c];
    const int ntaps = static_cast<int>(2 * r + 1);
    const long hrows = height + 2 * r;
    horizontal.assign(static_cast<std::size_t>(hrows * wp), 0.0F);
    for (int i = 0; i <= spec_.gaussians[c].degree; ++i) {
      // H(x, y) = sum_u p_i(u) T(x - u, y) on rows -r .. height + r - 1;
      // tap t is u = t - r, read at column x + r - t.
      const float* taps_x = profile_taps(c, i).data();
      for (long hr = 0; hr < hrows; ++hr) {
        const float* in_row = in.data() + (hr - r + h) * stride + h + r;
        float* out_row = horizontal.data() + hr * wp;
        for (long x = 0; x < wp; x += kLanes) convolve_lanes<kBasisLanes>(taps_x, ntaps, in_row + x, 1, out_row + x);
      }
      for (int j = 0; i + j <= spec_.gaussians[c].degree; ++j) {
        // V(x, y) = sum_v p_j(v) H(x, y - v); tap t reads H row y + 2r - t.
        const float* taps_y = profile_taps(c, j).data();
        for (long y = 0; y < height; ++y) {
          const float* base = horizontal.data() + (y + 2 * r) * wp;
          float* out_row = plane.data() + y * wp;
          for (long x = 0; x < wp; x += kLanes) convolve_lanes<kBasisLanes>(taps_y, ntaps, base + x, wp, out_row + x);
        }
        visit(l++, plane);
      }
    }
  }
}

PsfMatchingKernel::PsfMatchingKernel(KernelBasisSpec spec, long frame_width, long frame_height, int spatial_order,
                                     int background_order, std::vector<double> coefficients,
                                     std::vector<double> background)
    : basis_(std::make_shared<const KernelBasis>(std::move(spec))),
      frame_width_(frame_width),
      frame_height_(frame_height),
      spatial_order_(spatial_order),
      background_order_(background_order),
      coefficients_(std::move(coefficients)),
      background_(std::move(background)) {
  if (frame_width_ < 1 || frame_height_ < 1) throw std::invalid_argument("kernel frame must not be empty");
  if (spatial_order_ < 0 || spatial_order_ > 3 || background_order_ < 0 || background_order_ > 3) {
    throw std::invalid_argument("spatial and background orders must be in 0..3");
  }
  const std::size_t nsp = polynomial_terms(spatial_order_);
  const std::size_t nb = basis_->size();
  if (coefficients_.size() != 1 + (nb - 1) * nsp) {
    throw std::invalid_argument("kernel has " + std::to_string(coefficients_.size()) +
                                " coefficients, its basis needs " + std::to_string(1 + (nb - 1) * nsp));
  }
  if (background_.size() != polynomial_terms(background_order_)) {
    throw std::invalid_argument("background coefficients do not match the background order");
  }
  for (double v : coefficients_) {
    if (!std::isfinite(v)) throw std::invalid_argument("kernel coefficients must be finite");
  }
  for (double v : background_) {
    if (!std::isfinite(v)) throw std::invalid_argument("background coefficients must be finite");
  }
  raw_polynomials_.assign(basis_->raw_size(), std::vector<double>(nsp, 0.0));
  for (std::size_t l = 0; l < basis_->raw_size(); ++l) {
    auto& poly = raw_polynomials_[l];
    poly[0] = basis_->transform(0)[l] * coefficients_[0];
    for (std::size_t k = 1; k < nb; ++k) {
      const double t = basis_->transform(k)[l];
      for (std::size_t m = 0; m < nsp; ++m) poly[m] += t * coefficients_[1 + (k - 1) * nsp + m];
    }
  }
}

void polynomial_terms_at(double x, double y, long frame_width, long frame_height, int order,
                         std::span<double> out) noexcept {
  const double sx = frame_width > 1 ? static_cast<double>(frame_width - 1) : 1.0;
  const double sy = frame_height > 1 ? static_cast<double>(frame_height - 1) : 1.0;
  const double xn = frame_width > 1 ? (2.0 * x - sx) / sx : 0.0;
  const double yn = frame_height > 1 ? (2.0 * y - sy) / sy : 0.0;
  const double xp[4] = {1.0, xn, xn * xn, xn * xn * xn};
  const double yp[4] = {1.0, yn, yn * yn, yn * yn * yn};
  std::size_t m = 0;
  for (int n = 0; n <= std::min(order, 3); ++n) {
    for (int b = 0; b <= n; ++b) {
      if (m < out.size()) out[m] = xp[n - b] * yp[b];
      ++m;
    }
  }
}

void PsfMatchingKernel::spatial_terms(double x, double y, int order, std::span<double> out) const noexcept {
  polynomial_terms_at(x, y, frame_width_, frame_height_, order, out);
}

double PsfMatchingKernel::raw_coefficient(std::size_t l, std::span<const double> terms) const noexcept {
  const auto& poly = raw_polynomials_[l];
  double s = 0.0;
  for (std::size_t m = 0; m < poly.size() && m < terms.size(); ++m) s += poly[m] * terms[m];
  return s;
}

double PsfMatchingKernel::background_at(double x, double y) const noexcept {
  double terms[polynomial_terms(3)];
  spatial_terms(x, y, background_order_, terms);
  double s = 0.0;
  for (std::size_t m = 0; m < background_.size(); ++m) s += background_[m] * terms[m];
  return s;
}

std::vector<double> PsfMatchingKernel::image_at(double x, double y) const {
  double terms[polynomial_terms(3)];
  spatial_terms(x, y, spatial_order_, terms);
  std::vector<double> raw(basis_->raw_size());
  for (std::size_t l = 0; l < raw.size(); ++l) raw[l] = raw_coefficient(l, terms);
  return basis_->raw_kernel_image(raw);
}

std::string PsfMatchingKernel::to_json() const {
  nlohmann::json j;
  j["version"] = std::string(kDiffimVersion);
  j["half_size"] = basis_->half_size();
  auto gaussians = nlohmann::json::array();
  for (const auto& g : basis_->spec().gaussians) gaussians.push_back({{"sigma", g.sigma}, {"degree", g.degree}});
  j["gaussians"] = std::move(gaussians);
  j["frame"] = {frame_width_, frame_height_};
  j["spatial_order"] = spatial_order_;
  j["background_order"] = background_order_;
  j["coefficients"] = coefficients_;
  j["background"] = background_;
  return j.dump();
}

PsfMatchingKernel PsfMatchingKernel::from_json(std::string_view text) {
  try {
    const auto j = nlohmann::json::parse(text);
    const auto version = j.at("version").get<std::string>();
    if (version != kDiffimVersion) {
      throw PsfMatchError("PSF-matching kernel of version " + version + ", this is " + std::string(kDiffimVersion));
    }
    KernelBasisSpec spec;
    spec.half_size = j.at("half_size").get<int>();
    spec.gaussians.clear();
    for (const auto& g : j.at("gaussians"))
      spec.gaussians.push_back({g.at("sigma").get<double>(), g.at("degree").get<int>()});
    const auto& frame = j.at("frame");
    if (!frame.is_array() || frame.size() != 2) throw PsfMatchError("kernel frame must be [width, height]");
    return PsfMatchingKernel(std::move(spec), frame[0].get<long>(), frame[1].get<long>(),
                             j.at("spatial_order").get<int>(), j.at("background_order").get<int>(),
                             j.at("coefficients").get<std::vector<double>>(),
                             j.at("background").get<std::vector<double>>());
  } catch (const nlohmann::json::exception& e) {
    throw PsfMatchError(std::string("malformed PSF-matching kernel: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw PsfMatchError(std::string("invalid PSF-matching kernel: ") + e.what());
  }
}

bool PsfMatchingKernel::operator==(const PsfMatchingKernel& other) const {
  return basis_->spec() == other.basis_->spec() && frame_width_ == other.frame_width_ &&
         frame_height_ == other.frame_height_ && spatial_order_ == other.spatial_order_ &&
         background_order_ == other.background_order_ && coefficients_ == other.coefficients_ &&
         background_ == other.background_;
}

}  // namespace pixserve::image
