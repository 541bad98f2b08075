// PSF matching of a template to a science exposure (Alard & Lupton 1998):
// the kernel K(x, y) that turns the template T into the science image S,
// S ~ K * T + background, written as a sum of fixed basis kernels whose
// coefficients are low-order polynomials in the CCD position. The fitted
// kernel is a few hundred numbers; it is kept as data (JSON) so that a
// difference image (image/difference.hpp) can be re-created, or a cutout of
// one computed, without fitting again.
//
// Basis. Each Gaussian component (sigma, degree) contributes the raw kernels
//   g(u) g(v) (u/sigma)^i (v/sigma)^j,  i + j <= degree,
// with g(u) = exp(-u^2 / (2 sigma^2)) on |u| <= min(half_size, floor(6 sigma))
// and zero beyond (6 sigma: a truncation below 1e-4 of the largest value for
// degree 4). They are separable, which makes convolving with them cheap.
// The bases actually fitted are linear combinations of the raw ones: the
// first (component 0, i = j = 0) is normalised to sum 1, every other one is
// made to sum to 0 (by subtracting a multiple of the first) and
// Gram-Schmidt-orthonormalised against the others of sum 0. The kernel sum
// (the photometric scale between template and science) is then the first
// coefficient alone, and that coefficient is held spatially constant: the
// PSF may vary over the CCD, the zero point does not. Raw kernels that are
// linearly dependent on the ones before them on the pixel grid are dropped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "image/exposure.hpp"
#include "image/mask.hpp"

namespace pixserve::image {

// Version of the PSF-matching and subtraction algorithm, written as DIFFVER
// into difference images and into every saved kernel: a kernel saved by one
// version re-creates bit-identical pixels only with the same version.
inline constexpr std::string_view kDiffimVersion = "pixserve-diffim-1.0";

// A fit or subtraction that cannot be done with the data given (no usable
// star, a degenerate system, a kernel file of another version).
class PsfMatchError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Pixels that cannot serve as PSF-matching stamps (in science or template).
inline constexpr std::int32_t kPsfMatchRejectBits = mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::saturated) |
                                                    mask_bit(MaskPlane::interpolated) |
                                                    mask_bit(MaskPlane::cosmic_ray) | mask_bit(MaskPlane::edge) |
                                                    mask_bit(MaskPlane::suspect) | mask_bit(MaskPlane::no_data);

struct GaussianComponent {
  double sigma = 1.0;  // pixels
  int degree = 0;      // of the polynomial multiplier x^i y^j, i + j <= degree
  bool operator==(const GaussianComponent&) const = default;
};

struct KernelBasisSpec {
  int half_size = 10;  // the kernel is (2 half_size + 1)^2 pixels
  std::vector<GaussianComponent> gaussians{{0.7, 4}, {1.5, 3}, {3.0, 2}};
  bool operator==(const KernelBasisSpec&) const = default;
};

// A basis suited to the PSFs (FWHM in pixels of template and science): the
// default sigmas 0.7, 1.5, 3.0 suit a matching kernel of width about 1.5 px
// and are scaled by the width sqrt(sigma_s^2 - sigma_t^2) actually needed
// (at least 0.5 px, so a science PSF narrower than the template's still gets
// a usable basis); half_size covers 3 sigma of the widest Gaussian, in 5..25.
KernelBasisSpec basis_spec_for_psfs(double template_fwhm, double science_fwhm);

// The basis of a spec, built once: raw separable kernels and the matrix
// combining them into the fitted bases.
class KernelBasis {
 public:
  // Throws std::invalid_argument for a half size outside 1..50, no
  // components, a sigma not positive and finite, or a degree outside 0..8.
  explicit KernelBasis(KernelBasisSpec spec);

  const KernelBasisSpec& spec() const noexcept { return spec_; }
  int half_size() const noexcept { return spec_.half_size; }
  long kernel_width() const noexcept { return 2L * spec_.half_size + 1; }
  std::size_t size() const noexcept { return transform_.size(); }  // fitted bases
  std::size_t raw_size() const noexcept { return raw_.size(); }

  // Fitted basis k = sum over l of transform(k)[l] * raw kernel l.
  std::span<const double> transform(std::size_t k) const { return transform_.at(k); }

  // The kernel image sum_l raw_coefficients[l] * raw kernel l, row-major,
  // kernel_width()^2 values; pixel (u, v) (offsets -h..h) at
  // (v + h) * width + (u + h). Convolution convention: (K * T)(x, y) =
  // sum K(u, v) T(x - u, y - v).
  std::vector<double> raw_kernel_image(std::span<const double> raw_coefficients) const;
  // The image of fitted basis k.
  std::vector<double> basis_image(std::size_t k) const;

  // Convolves a plane with every raw kernel. in holds the plane's values on
  // rows -h .. height + h - 1 and columns -h .. padded_width(width) + h - 1
  // relative to the output's first pixel, row-major with row length
  // padded_width(width) + 2h. For each raw kernel l in index order,
  // visit(l, plane) receives the convolution on height rows of
  // padded_width(width) values.
  // Every output value is computed by the same operations in the same order
  // wherever it lies in the output, so overlapping calls agree bit for bit.
  // The arithmetic is single precision, like the pixels: the fitted bases
  // combine raw kernels with small weights (sums of |weights| of a few
  // tens), so rounding stays near 1e-6 of the template's values, far below
  // its noise; single precision halves the cost of the convolutions.
  void convolve_raw(std::span<const float> in, long width, long height,
                    const std::function<void(std::size_t, std::span<const float>)>& visit) const;

  // Values are computed in blocks of this many adjacent pixels.
  static constexpr long kLanes = 16;
  static long padded_width(long width) noexcept { return (width + kLanes - 1) / kLanes * kLanes; }

 private:
  struct RawKernel {
    std::size_t gaussian = 0;
    int x_power = 0, y_power = 0;
  };
  // The 1-D profile g(u) (u/sigma)^power of a component over -r..r.
  const std::vector<double>& profile(std::size_t gaussian, int power) const;
  const std::vector<float>& profile_taps(std::size_t gaussian, int power) const;

  KernelBasisSpec spec_;
  std::vector<int> radius_;                                 // per component: support half-width r <= h
  std::vector<std::vector<std::vector<double>>> profiles_;  // [component][power] over -r..r
  std::vector<std::vector<std::vector<float>>> taps_;       // the same, as convolution taps
  std::vector<RawKernel> raw_;
  std::vector<std::vector<double>> transform_;  // [fitted basis][raw kernel]
};

// The number of terms x^a y^b, a + b <= order, of a 2-D polynomial.
constexpr std::size_t polynomial_terms(int order) noexcept {
  return order < 0 ? 0 : static_cast<std::size_t>((order + 1) * (order + 2) / 2);
}

// The terms P_m(x, y) of a polynomial of an order (at most 3) in the
// normalised position of pixel (x, y) of a frame (see PsfMatchingKernel),
// written to out (polynomial_terms(order) values).
void polynomial_terms_at(double x, double y, long frame_width, long frame_height, int order,
                         std::span<double> out) noexcept;

// A fitted PSF-matching kernel and differential background, as data.
//
// Coefficients of the fitted bases: basis 0 (the kernel sum) is constant;
// basis k >= 1 has coefficient sum_m a[k][m] P_m(x, y), and the background is
// sum_m b[m] P_m(x, y), where P_m runs over 1, X, Y, X^2, X Y, Y^2, ... with
// X = (2x - (width - 1)) / (width - 1) and Y likewise (-1..1 across the CCD
// frame the kernel was fitted on; x, y are 0-based pixel centres).
// coefficients holds a[0][0], then a[1][0..], a[2][0..], ...
class PsfMatchingKernel {
 public:
  PsfMatchingKernel(KernelBasisSpec spec, long frame_width, long frame_height, int spatial_order, int background_order,
                    std::vector<double> coefficients, std::vector<double> background);

  const KernelBasis& basis() const noexcept { return *basis_; }
  long frame_width() const noexcept { return frame_width_; }
  long frame_height() const noexcept { return frame_height_; }
  int spatial_order() const noexcept { return spatial_order_; }
  int background_order() const noexcept { return background_order_; }
  std::span<const double> coefficients() const noexcept { return coefficients_; }
  std::span<const double> background() const noexcept { return background_; }
  int half_size() const noexcept { return basis_->half_size(); }

  // The kernel sum (photometric scale template -> science), the same everywhere.
  double kernel_sum() const noexcept { return coefficients_.front(); }
  // The polynomial terms P_m(x, y) of an order at a pixel.
  void spatial_terms(double x, double y, int order, std::span<double> out) const noexcept;
  // The coefficient of raw kernel l at a pixel whose spatial-order terms are
  // given: sum over m of raw_polynomial(l)[m] * terms[m], in m order.
  std::span<const double> raw_polynomial(std::size_t l) const { return raw_polynomials_.at(l); }
  double raw_coefficient(std::size_t l, std::span<const double> terms) const noexcept;
  double background_at(double x, double y) const noexcept;
  // The kernel image at a pixel (layout of KernelBasis::raw_kernel_image).
  std::vector<double> image_at(double x, double y) const;

  // Compact JSON (version, basis, frame, orders, coefficients); doubles are
  // written so that they read back exactly.
  std::string to_json() const;
  // Throws PsfMatchError for another version or malformed content.
  static PsfMatchingKernel from_json(std::string_view text);

  bool operator==(const PsfMatchingKernel& other) const;

 private:
  std::shared_ptr<const KernelBasis> basis_;  // shared by copies: it is immutable
  long frame_width_ = 0, frame_height_ = 0;
  int spatial_order_ = 0, background_order_ = 0;
  std::vector<double> coefficients_, background_;
  // Per raw kernel l, its coefficient polynomial (spatial-order terms):
  // sum over fitted bases k of transform(k)[l] * a[k][m].
  std::vector<std::vector<double>> raw_polynomials_;
};

// A star to fit the kernel on: its peak, 0-based pixel coordinates.
struct StarPosition {
  double x = 0.0, y = 0.0;
};

struct StarSelectionOptions {
  double min_peak_snr = 20.0;      // peak above background, in units of the background noise
  double neighbour_snr = 5.0;      // peaks this bright count as neighbours
  double isolation_radius = 12.0;  // pixels: no neighbour peak closer
  // Pixels around the peak that must be inside the image and carry none of
  // reject_bits: the stamp plus the kernel margin (stamp_half_size +
  // half_size of the fit, 10 + 10 by default).
  long footprint_half_size = 20;
  int grid = 4;          // the CCD is split into grid x grid cells ...
  int max_per_cell = 5;  // ... each giving at most this many (its brightest) stars
  std::int32_t reject_bits = kPsfMatchRejectBits;
};

// Bright isolated stars of a science exposure, spread over the CCD: local
// maxima (over 5x5 pixels) above min_peak_snr, with no other peak above
// neighbour_snr within isolation_radius and no rejected pixel in their
// footprint. Brightest first within each cell; cells in row order.
std::vector<StarPosition> find_psf_match_stars(const Exposure& science, const StarSelectionOptions& options = {});

struct PsfMatchOptions {
  KernelBasisSpec basis{};
  int spatial_order = 1;     // of the basis coefficients over the CCD (0..3)
  int background_order = 0;  // of the differential background (0..3)
  long stamp_half_size = 0;  // pixels fitted around each star; 0: the kernel's half size
  double clip_sigma = 3.0;   // stamps whose residual chi^2 is this far above the others' are dropped
  int max_iterations = 5;    // of fitting and clipping
  long min_stamps = 0;       // fewer usable stamps is an error; 0: 2 + the spatial terms
  std::int32_t reject_bits = kPsfMatchRejectBits;
};

enum class StampStatus {
  used,       // in the final fit
  clipped,    // its residuals were outliers (e.g. a variable star)
  rejected,   // masked or non-finite pixels, or no positive variance
  off_image,  // stamp plus kernel margin leaves the image
};

struct StampFit {
  StarPosition star;
  StampStatus status = StampStatus::rejected;
  double chi2_per_pixel = 0.0;  // of the last fit (weights 1 / Var S); 0 unless fitted
};

struct PsfMatchResult {
  PsfMatchingKernel kernel;
  std::vector<StampFit> stamps;  // one per star given, same order
  int iterations = 0;
};

// Fits the kernel taking template (already on the science pixel grid, the
// same size) to science on stamps around the stars: least squares over each
// stamp's pixels weighted by 1 / Var S, the basis coefficients and
// background evaluated at the stamp centre; then iterative clipping of
// stamps whose chi^2 per pixel is an outlier (above median + clip_sigma *
// max(robust scatter, the scatter expected from noise)), e.g. variable
// stars. Var T is left out of the weights: the template is usually a deep
// coadd whose noise adds little, and it is in its own units (nJy for
// coadds) until the kernel's sum, the fitted photometric scale, is known.
// Throws PsfMatchError with too few usable stamps or a degenerate system,
// std::invalid_argument for mismatched sizes or bad options.
PsfMatchResult fit_psf_matching_kernel(const Exposure& science, const Exposure& tmpl,
                                       std::span<const StarPosition> stars, const PsfMatchOptions& options = {});

}  // namespace pixserve::image
