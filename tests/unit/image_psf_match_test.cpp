// image/psf_match and image/difference: the Alard-Lupton basis, star
// selection, the kernel fit with clipping, kernels as data, and template
// subtraction on synthetic star fields (Gaussian PSFs, template sigma 1.5 px,
// science 2.0..2.4 px varying over the CCD, noise, a sky offset, some
// variable stars) with known truth.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "image/difference.hpp"
#include "image/diffim.hpp"
#include "image/statistics.hpp"
#include "image/mask.hpp"
#include "image/psf_match.hpp"

namespace pixserve::image {
namespace {

struct TruthStar {
  double x = 0, y = 0;
  double template_flux = 0, science_flux = 0;
  bool usable = true;  // isolated and unsaturated: a fair PSF-matching star
};

// A star field seen twice: a deep template with a narrow PSF and the
// science exposure with a wider, position-dependent PSF and a sky offset.
struct StarFieldPair {
  Exposure science, tmpl;
  fits::Image<float> science_model, template_model;  // noiseless star light
  std::vector<TruthStar> stars;
  long width = 0, height = 0;

  static constexpr double kTemplateSigma = 1.5;
  static constexpr double kScienceSky = 300.0;  // left in the science image: the differential background
  static constexpr double kScienceReadVar = 25.0;
  static constexpr double kTemplateSkyVar = 8.0;
  // The template's pixel unit per science unit (as a coadd in nJy against a
  // calexp in electrons): the kernel sum must come out as its inverse.
  static constexpr double kTemplateUnit = 0.25;

  double science_sigma(double x, double y) const {
    const double xn = 2.0 * x / static_cast<double>(width - 1) - 1.0;
    const double yn = 2.0 * y / static_cast<double>(height - 1) - 1.0;
    return 2.2 + 0.2 * xn + 0.05 * yn;
  }
};

// Fraction of a unit Gaussian (centre c, sigma s) falling in pixel i.
double pixel_fraction(double i, double c, double s) {
  const double k = 1.0 / (std::sqrt(2.0) * s);
  return 0.5 * (std::erf((i + 0.5 - c) * k) - std::erf((i - 0.5 - c) * k));
}

void add_gaussian_star(fits::Image<float>& img, double x, double y, double sigma, double flux) {
  const long r = static_cast<long>(std::ceil(7.0 * sigma));
  for (long py = std::max(0L, std::lround(y) - r); py <= std::min(img.height - 1, std::lround(y) + r); ++py) {
    const double fy = pixel_fraction(static_cast<double>(py), y, sigma);
    for (long px = std::max(0L, std::lround(x) - r); px <= std::min(img.width - 1, std::lround(x) + r); ++px) {
      img.at(px, py) += static_cast<float>(flux * fy * pixel_fraction(static_cast<double>(px), x, sigma));
    }
  }
}

// A jittered grid of stars of log-uniform fluxes; every variable_every-th
// star changes flux between template and science (alternately brighter and
// fainter; with 9 stars a row, every 8th falls on a diagonal); plus a close pair and a saturated star that selection
// must skip.
StarFieldPair make_star_field(long size, unsigned seed, int variable_every = 8) {
  StarFieldPair f;
  f.width = f.height = size;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> jitter(-6.0, 6.0), log_flux(std::log(3e3), std::log(1.5e5));
  int n = 0;
  for (double gy = 32; gy < static_cast<double>(size) - 24; gy += 40) {
    for (double gx = 32; gx < static_cast<double>(size) - 24; gx += 40) {
      TruthStar s;
      s.x = gx + jitter(rng);
      s.y = gy + jitter(rng);
      s.template_flux = s.science_flux = std::exp(log_flux(rng));
      if (variable_every > 0 && n % variable_every == 4) {
        s.science_flux *= (n / variable_every) % 2 == 0 ? 1.6 : 0.55;
      }
      f.stars.push_back(s);
      ++n;
    }
  }
  // A close pair (neither isolated) and a saturated star, away from the grid.
  f.stars.push_back({52.0 + 20.0, 52.0, 4e4, 4e4, false});
  f.stars.push_back({52.0 + 25.0, 55.0, 3e4, 3e4, false});
  f.stars.push_back({static_cast<double>(size) - 52.0, 52.0 + 20.0, 1.2e5, 1.2e5, false});

  f.science_model = fits::Image<float>(size, size, 0.0F);
  f.template_model = fits::Image<float>(size, size, 0.0F);
  for (const auto& s : f.stars) {
    add_gaussian_star(f.template_model, s.x, s.y, StarFieldPair::kTemplateSigma, s.template_flux);
    add_gaussian_star(f.science_model, s.x, s.y, f.science_sigma(s.x, s.y), s.science_flux);
  }
  f.science = Exposure(size, size);
  f.tmpl = Exposure(size, size);
  std::normal_distribution<double> unit(0.0, 1.0);
  for (std::size_t k = 0; k < f.science.image.pixels.size(); ++k) {
    const double sm = f.science_model.pixels[k], tm = f.template_model.pixels[k];
    const double sv = StarFieldPair::kScienceSky + sm + StarFieldPair::kScienceReadVar;
    const double tv = StarFieldPair::kTemplateSkyVar + tm / 10.0;
    f.science.image.pixels[k] = static_cast<float>(StarFieldPair::kScienceSky + sm + std::sqrt(sv) * unit(rng));
    f.science.variance.pixels[k] = static_cast<float>(sv);
    constexpr double scale = StarFieldPair::kTemplateUnit;
    f.tmpl.image.pixels[k] = static_cast<float>(scale * (tm + std::sqrt(tv) * unit(rng)));
    f.tmpl.variance.pixels[k] = static_cast<float>(scale * scale * tv);
  }
  const auto& sat = f.stars.back();
  for (long py = std::lround(sat.y) - 1; py <= std::lround(sat.y) + 1; ++py) {
    for (long px = std::lround(sat.x) - 1; px <= std::lround(sat.x) + 1; ++px) {
      f.science.mask.at(px, py) |= mask_bit(MaskPlane::saturated);
    }
  }
  return f;
}

std::vector<StarPosition> usable_positions(const StarFieldPair& f) {
  std::vector<StarPosition> out;
  for (const auto& s : f.stars) {
    if (s.usable) out.push_back({s.x, s.y});
  }
  return out;
}

PsfMatchOptions field_fit_options() {
  PsfMatchOptions o;
  o.basis = basis_spec_for_psfs(2.3548 * StarFieldPair::kTemplateSigma, 2.3548 * 2.2);
  o.spatial_order = 1;
  o.background_order = 0;
  return o;
}

bool same_bits(const Exposure& a, const Exposure& b) {
  if (a.width() != b.width() || a.height() != b.height()) return false;
  const auto bytes = a.image.pixels.size() * sizeof(float);
  return std::memcmp(a.image.pixels.data(), b.image.pixels.data(), bytes) == 0 &&
         std::memcmp(a.variance.pixels.data(), b.variance.pixels.data(), bytes) == 0 && a.mask.pixels == b.mask.pixels;
}

Exposure copy_piece(const Exposure& e, const fits::PixelBox& box) {
  Exposure out(box.width, box.height);
  for (long y = 0; y < box.height; ++y) {
    for (long x = 0; x < box.width; ++x) {
      out.image.at(x, y) = e.image.at(box.x0 + x, box.y0 + y);
      out.mask.at(x, y) = e.mask.at(box.x0 + x, box.y0 + y);
      out.variance.at(x, y) = e.variance.at(box.x0 + x, box.y0 + y);
    }
  }
  return out;
}

// Sums of D and Var(D) within radius r of (x, y), and the science PSF's share of it.
struct ApertureSum {
  double flux = 0, variance = 0, psf_fraction = 0;
  bool clean = true;
};

ApertureSum aperture_sum(const Exposure& d, const StarFieldPair& f, const TruthStar& s, double r) {
  ApertureSum a;
  const double sigma = f.science_sigma(s.x, s.y);
  for (long py = std::lround(s.y - r) - 1; py <= std::lround(s.y + r) + 1; ++py) {
    for (long px = std::lround(s.x - r) - 1; px <= std::lround(s.x + r) + 1; ++px) {
      const double dx = static_cast<double>(px) - s.x, dy = static_cast<double>(py) - s.y;
      if (dx * dx + dy * dy > r * r) continue;
      if (px < 0 || py < 0 || px >= d.width() || py >= d.height() || d.mask.at(px, py) != 0) {
        a.clean = false;
        continue;
      }
      a.flux += d.image.at(px, py);
      a.variance += d.variance.at(px, py);
      a.psf_fraction +=
          pixel_fraction(static_cast<double>(px), s.x, sigma) * pixel_fraction(static_cast<double>(py), s.y, sigma);
    }
  }
  return a;
}

// --- basis ---

TEST(ImagePsfMatchBasis, FirstBasisCarriesTheSumOthersAreOrthonormalWithZeroSum) {
  const KernelBasis basis(KernelBasisSpec{});
  EXPECT_EQ(basis.raw_size(), 15u + 10u + 6u);
  EXPECT_EQ(basis.size(), basis.raw_size());
  std::vector<std::vector<double>> images;
  for (std::size_t k = 0; k < basis.size(); ++k) images.push_back(basis.basis_image(k));
  EXPECT_NEAR(std::accumulate(images[0].begin(), images[0].end(), 0.0), 1.0, 1e-12);
  for (std::size_t k = 1; k < images.size(); ++k) {
    EXPECT_NEAR(std::accumulate(images[k].begin(), images[k].end(), 0.0), 0.0, 1e-9) << k;
    for (std::size_t j = 1; j <= k; ++j) {
      const double dot = std::inner_product(images[k].begin(), images[k].end(), images[j].begin(), 0.0);
      EXPECT_NEAR(dot, j == k ? 1.0 : 0.0, 1e-9) << k << "," << j;
    }
  }
}

TEST(ImagePsfMatchBasis, SpecFollowsThePsfWidths) {
  const auto spec = basis_spec_for_psfs(2.3548 * 1.5, 2.3548 * 2.2);
  const double matching = std::sqrt(2.2 * 2.2 - 1.5 * 1.5);
  ASSERT_EQ(spec.gaussians.size(), 3u);
  EXPECT_NEAR(spec.gaussians[1].sigma, matching, 1e-3);
  EXPECT_EQ(spec.half_size, 10);
  EXPECT_THROW(basis_spec_for_psfs(0.0, 2.0), std::invalid_argument);
  EXPECT_THROW(KernelBasis(KernelBasisSpec{0, {{1.0, 2}}}), std::invalid_argument);
  EXPECT_THROW(KernelBasis(KernelBasisSpec{5, {}}), std::invalid_argument);
  EXPECT_THROW(KernelBasis(KernelBasisSpec{5, {{std::nan(""), 2}}}), std::invalid_argument);
}

TEST(ImagePsfMatchBasis, ConvolutionMatchesTheKernelImages) {
  const KernelBasis basis(KernelBasisSpec{4, {{0.8, 2}, {1.6, 1}}});
  const long h = 4, w = 5, ht = 3, wp = KernelBasis::padded_width(w), stride = wp + 2 * h;
  std::vector<float> in(static_cast<std::size_t>(stride * (ht + 2 * h)));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0F, 1.0F);
  for (auto& v : in) v = u(rng);
  basis.convolve_raw(in, w, ht, [&](std::size_t l, std::span<const float> plane) {
    std::vector<double> unit(basis.raw_size(), 0.0);
    unit[l] = 1.0;
    const auto k = basis.raw_kernel_image(unit);
    for (long y = 0; y < ht; ++y) {
      for (long x = 0; x < w; ++x) {
        double direct = 0.0;
        for (long v = -h; v <= h; ++v) {
          for (long uu = -h; uu <= h; ++uu) {
            direct += k[static_cast<std::size_t>((v + h) * (2 * h + 1) + uu + h)] *
                      in[static_cast<std::size_t>((y - v + h) * stride + x - uu + h)];
          }
        }
        EXPECT_NEAR(plane[static_cast<std::size_t>(y * wp + x)], direct, 2e-5) << l;
      }
    }
  });
}

// --- star selection ---

TEST(ImagePsfMatchStars, FindsBrightIsolatedUnsaturatedStarsSpreadOverTheCcd) {
  const auto f = make_star_field(384, 11);
  StarSelectionOptions o;
  o.grid = 3;
  o.max_per_cell = 100;
  const auto found = find_psf_match_stars(f.science, o);
  ASSERT_GE(found.size(), 30u);
  std::vector<int> per_cell(9, 0);
  for (const auto& p : found) {
    const auto nearest = std::min_element(f.stars.begin(), f.stars.end(), [&](const TruthStar& a, const TruthStar& b) {
      return std::hypot(a.x - p.x, a.y - p.y) < std::hypot(b.x - p.x, b.y - p.y);
    });
    EXPECT_LT(std::hypot(nearest->x - p.x, nearest->y - p.y), 1.5);
    EXPECT_TRUE(nearest->usable) << "picked a close pair member or the saturated star at " << p.x << "," << p.y;
    ++per_cell[static_cast<std::size_t>(p.y * 3 / 384) * 3 + static_cast<std::size_t>(p.x * 3 / 384)];
  }
  for (int c : per_cell) EXPECT_GT(c, 0);
  o.max_per_cell = 2;
  EXPECT_LE(find_psf_match_stars(f.science, o).size(), 18u);
}

TEST(ImagePsfMatchStars, NothingToFindInAMaskedOrFlatImage) {
  auto f = make_star_field(192, 12);
  for (auto& m : f.science.mask.pixels) m = mask_bit(MaskPlane::bad);
  EXPECT_TRUE(find_psf_match_stars(f.science).empty());
  Exposure flat(64, 64);
  EXPECT_TRUE(find_psf_match_stars(flat).empty());
}

// --- fit and subtraction on a field ---

class ImageDifferenceField : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    field_ = std::make_unique<StarFieldPair>(make_star_field(384, 7));
    fit_ = std::make_unique<PsfMatchResult>(
        fit_psf_matching_kernel(field_->science, field_->tmpl, usable_positions(*field_), field_fit_options()));
    difference_ = std::make_unique<Exposure>(subtract_template(field_->science, field_->tmpl, fit_->kernel));
  }
  static void TearDownTestSuite() {
    difference_.reset();
    fit_.reset();
    field_.reset();
  }
  static inline std::unique_ptr<StarFieldPair> field_;
  static inline std::unique_ptr<PsfMatchResult> fit_;
  static inline std::unique_ptr<Exposure> difference_;
};

TEST_F(ImageDifferenceField, KernelSumAndBackgroundAreRecovered) {
  const auto& k = fit_->kernel;
  EXPECT_NEAR(k.kernel_sum() * StarFieldPair::kTemplateUnit, 1.0, 0.01);
  const auto img = k.image_at(100.0, 200.0);
  EXPECT_NEAR(std::accumulate(img.begin(), img.end(), 0.0), k.kernel_sum(), 1e-9);
  EXPECT_NEAR(k.background_at(10.0, 300.0), StarFieldPair::kScienceSky, 1.0);
  // The matching width grows with the science PSF across the CCD.
  const auto second_moment = [&](double x, double y) {
    const auto im = k.image_at(x, y);
    const long w = 2 * k.half_size() + 1;
    double s = 0, sum = 0;
    for (long v = 0; v < w; ++v) {
      for (long u = 0; u < w; ++u) {
        const double du = static_cast<double>(u - k.half_size()), dv = static_cast<double>(v - k.half_size());
        s += im[static_cast<std::size_t>(v * w + u)] * (du * du + dv * dv) / 2.0;
        sum += im[static_cast<std::size_t>(v * w + u)];
      }
    }
    return s / sum;
  };
  const auto expected = [&](double x, double y) {
    const double ss = field_->science_sigma(x, y);
    return ss * ss - StarFieldPair::kTemplateSigma * StarFieldPair::kTemplateSigma;
  };
  EXPECT_NEAR(second_moment(40, 192), expected(40, 192), 0.15);
  EXPECT_NEAR(second_moment(344, 192), expected(344, 192), 0.15);
  std::printf(
      "kernel: %zu coefficients, sum %.5f, background %.2f; matching sigma^2 %.3f (truth %.3f) at x=40, "
      "%.3f (truth %.3f) at x=344\n",
      k.coefficients().size() + k.background().size(), k.kernel_sum(), k.background_at(0, 0), second_moment(40, 192),
      expected(40, 192), second_moment(344, 192), expected(344, 192));
}

TEST_F(ImageDifferenceField, OffSourcePixelsAreNoiseOfUnitScaledVariance) {
  double sum = 0, sum_sq = 0;
  long n = 0;
  for (long y = 0; y < field_->height; ++y) {
    for (long x = 0; x < field_->width; ++x) {
      if (difference_->mask.at(x, y) != 0) continue;
      if (field_->science_model.at(x, y) > 0.5F || field_->template_model.at(x, y) > 0.5F) continue;
      const double z = difference_->image.at(x, y) / std::sqrt(difference_->variance.at(x, y));
      sum += z;
      sum_sq += z * z;
      ++n;
    }
  }
  ASSERT_GT(n, 50000);
  const double mean = sum / static_cast<double>(n);
  const double sd = std::sqrt(sum_sq / static_cast<double>(n) - mean * mean);
  std::printf("off-source: %ld pixels, mean(D/sqrt(Var)) = %.4f, std = %.4f\n", n, mean, sd);
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(sd, 1.0, 0.1);
}

TEST_F(ImageDifferenceField, ConstantStarsLeaveNoiseAndVariableStarsTheirFluxChange) {
  int constant = 0, constant_ok = 0, variable = 0, variable_ok = 0;
  double worst_constant = 0;
  for (const auto& s : field_->stars) {
    if (!s.usable) continue;
    const auto a = aperture_sum(*difference_, *field_, s, 8.0);
    if (!a.clean) continue;
    const double truth = (s.science_flux - s.template_flux) * a.psf_fraction;
    const double chi = (a.flux - truth) / std::sqrt(a.variance);
    if (s.science_flux == s.template_flux) {
      ++constant;
      constant_ok += std::abs(chi) < 3.0 ? 1 : 0;
      worst_constant = std::max(worst_constant, std::abs(chi));
    } else {
      ++variable;
      variable_ok += std::abs(chi) < 3.0 ? 1 : 0;
      std::printf("variable star at %.1f,%.1f: difference flux %.0f, truth %.0f, sigma %.0f\n", s.x, s.y, a.flux, truth,
                  std::sqrt(a.variance));
    }
  }
  std::printf("constant stars: %d of %d within 3 sigma (worst %.2f); variable: %d of %d\n", constant_ok, constant,
              worst_constant, variable_ok, variable);
  ASSERT_GE(constant, 50);
  ASSERT_GE(variable, 5);
  EXPECT_GE(constant_ok, static_cast<int>(std::ceil(0.95 * constant)));
  EXPECT_GE(variable_ok, static_cast<int>(std::ceil(0.95 * variable)));
}

TEST_F(ImageDifferenceField, VariableStarsAreClippedFromTheFit) {
  const auto positions = usable_positions(*field_);
  ASSERT_EQ(fit_->stamps.size(), positions.size());
  int clipped_constant = 0, used = 0;
  std::size_t i = 0;
  for (const auto& s : field_->stars) {
    if (!s.usable) continue;
    const auto& stamp = fit_->stamps[i++];
    if (s.science_flux != s.template_flux && s.template_flux > 1e4) {
      EXPECT_EQ(stamp.status, StampStatus::clipped) << "bright variable star at " << s.x << "," << s.y;
    }
    if (s.science_flux == s.template_flux && stamp.status == StampStatus::clipped) ++clipped_constant;
    if (stamp.status == StampStatus::used) {
      ++used;
      EXPECT_LT(stamp.chi2_per_pixel, 2.0);
    }
  }
  std::printf("stamps used %d, constant stars clipped %d, iterations %d\n", used, clipped_constant, fit_->iterations);
  EXPECT_GE(used, 50);
  EXPECT_LE(clipped_constant, 8);
}

TEST_F(ImageDifferenceField, SubBoxesEqualTheWholeImageBitForBit) {
  const auto& k = fit_->kernel;
  const long n = field_->width;
  const std::vector<fits::PixelBox> boxes{{0, 0, 51, 51},    {37, 101, 51, 51},  {n - 51, n - 51, 51, 51},
                                          {123, 5, 7, 3},    {200, 150, 100, 1}, {3, 250, 1, 60},
                                          {64, 64, 256, 70}, {n - 1, 0, 1, 1}};
  for (const auto& box : boxes) {
    const auto tbox = difference_template_box(k, box);
    const Exposure science_piece = copy_piece(field_->science, box);
    const Exposure template_piece = copy_piece(field_->tmpl, tbox);
    const auto piece = subtract_template(ExposurePiece{science_piece, box.x0, box.y0},
                                         ExposurePiece{template_piece, tbox.x0, tbox.y0}, k, box);
    EXPECT_TRUE(same_bits(piece, copy_piece(*difference_, box)))
        << "box " << box.x0 << "," << box.y0 << " " << box.width << "x" << box.height;
  }
}

TEST_F(ImageDifferenceField, SavedKernelRecreatesTheSameBits) {
  const std::string text = fit_->kernel.to_json();
  EXPECT_NE(text.find(std::string(kDiffimVersion)), std::string::npos);
  EXPECT_LT(text.size(), 6000u);
  const auto loaded = PsfMatchingKernel::from_json(text);
  EXPECT_TRUE(loaded == fit_->kernel);
  EXPECT_EQ(loaded.to_json(), text);
  EXPECT_TRUE(same_bits(subtract_template(field_->science, field_->tmpl, loaded), *difference_));
  std::printf("kernel JSON: %zu bytes\n", text.size());
}

TEST_F(ImageDifferenceField, EdgesAndMissingTemplateAreMasked) {
  const long h = fit_->kernel.half_size();
  Exposure tmpl = field_->tmpl;
  for (long y = 0; y < tmpl.height(); ++y) {
    for (long x = 150; x < 160; ++x) tmpl.mask.at(x, y) |= mask_bit(MaskPlane::no_data);
  }
  tmpl.mask.at(300, 300) |= mask_bit(MaskPlane::bad);
  tmpl.mask.at(250, 80) |= mask_bit(MaskPlane::detected);
  tmpl.image.at(40, 300) = std::numeric_limits<float>::quiet_NaN();
  const auto d = subtract_template(field_->science, tmpl, fit_->kernel);
  const std::int32_t edge = mask_bit(MaskPlane::edge), no_data = mask_bit(MaskPlane::no_data);
  const long y = 200;
  EXPECT_EQ(d.mask.at(155, y) & (edge | no_data), edge | no_data);
  EXPECT_TRUE(std::isnan(d.image.at(155, y)) && std::isnan(d.variance.at(155, y)));
  EXPECT_EQ(d.mask.at(150 - h, y) & (edge | no_data), edge);
  EXPECT_EQ(d.mask.at(159 + h, y) & (edge | no_data), edge);
  EXPECT_EQ(d.mask.at(149 - h, y) & (edge | no_data), 0);
  EXPECT_EQ(d.mask.at(160 + h, y) & (edge | no_data), 0);
  EXPECT_TRUE(std::isfinite(d.image.at(149 - h, y)));
  // The CCD border: the kernel footprint leaves the template.
  EXPECT_NE(d.mask.at(h - 1, y) & edge, 0);
  EXPECT_EQ(d.mask.at(h, y) & edge, 0);
  EXPECT_NE(d.mask.at(field_->width - h, y) & edge, 0);
  EXPECT_EQ(d.mask.at(field_->width - h - 1, y) & edge, 0);
  // A non-finite template value is no data, too.
  EXPECT_EQ(d.mask.at(40, 300) & (edge | no_data), edge | no_data);
  EXPECT_EQ(d.mask.at(40 + h, 300 - h) & (edge | no_data), edge);
  // Defects spread over the footprint; detections do not.
  const std::int32_t bad = mask_bit(MaskPlane::bad);
  EXPECT_NE(d.mask.at(300 + h, 300 - h) & bad, 0);
  EXPECT_EQ(d.mask.at(300 + h + 1, 300) & bad, 0);
  EXPECT_EQ(d.mask.at(250, 80) & mask_bit(MaskPlane::detected), 0);
}

TEST_F(ImageDifferenceField, StarsFoundInTheScienceImageServeAsWell) {
  StarSelectionOptions select;
  select.grid = 3;
  const auto stars = find_psf_match_stars(field_->science, select);
  const auto fit = fit_psf_matching_kernel(field_->science, field_->tmpl, stars, field_fit_options());
  EXPECT_NEAR(fit.kernel.kernel_sum() * StarFieldPair::kTemplateUnit, 1.0, 0.01);
  const auto d = subtract_template(field_->science, field_->tmpl, fit.kernel);
  double sum_sq = 0;
  long n = 0;
  for (std::size_t k = 0; k < d.image.pixels.size(); ++k) {
    if (d.mask.pixels[k] != 0 || field_->science_model.pixels[k] > 0.5F) continue;
    const double z = d.image.pixels[k] / std::sqrt(d.variance.pixels[k]);
    sum_sq += z * z;
    ++n;
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(n));
  std::printf("%zu stars found; off-source rms(D/sqrt(Var)) = %.4f\n", stars.size(), rms);
  EXPECT_NEAR(rms, 1.0, 0.1);
}

// --- degenerate input ---

TEST(ImagePsfMatchFit, DegenerateInputIsAClearError) {
  auto f = make_star_field(192, 21, 0);
  const auto stars = usable_positions(f);
  const auto opts = field_fit_options();
  EXPECT_THROW(fit_psf_matching_kernel(f.science, f.tmpl, {}, opts), PsfMatchError);
  // Every stamp masked.
  Exposure masked = f.science;
  for (auto& m : masked.mask.pixels) m = mask_bit(MaskPlane::bad);
  EXPECT_THROW(fit_psf_matching_kernel(masked, f.tmpl, stars, opts), PsfMatchError);
  // A template of NaNs.
  Exposure nan_template = f.tmpl;
  for (auto& v : nan_template.image.pixels) v = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(fit_psf_matching_kernel(f.science, nan_template, stars, opts), PsfMatchError);
  // An empty template constrains no basis.
  Exposure empty_template(f.width, f.height);
  for (auto& v : empty_template.variance.pixels) v = 1.0F;
  EXPECT_THROW(fit_psf_matching_kernel(f.science, empty_template, stars, opts), PsfMatchError);
  // One position repeated cannot fix a spatial variation.
  const std::vector<StarPosition> same(10, stars[5]);
  EXPECT_THROW(fit_psf_matching_kernel(f.science, f.tmpl, same, opts), PsfMatchError);
  // Positions that are not numbers, or off the image.
  const std::vector<StarPosition> nowhere(10, StarPosition{std::nan(""), -1e300});
  EXPECT_THROW(fit_psf_matching_kernel(f.science, f.tmpl, nowhere, opts), PsfMatchError);
  // Mismatched planes.
  EXPECT_THROW(fit_psf_matching_kernel(f.science, Exposure(10, 10), stars, opts), std::invalid_argument);
}

TEST(ImagePsfMatchFit, ASpatiallyConstantFitNeedsFewStamps) {
  const auto f = make_star_field(192, 22, 0);
  auto opts = field_fit_options();
  opts.spatial_order = 0;
  const auto stars = usable_positions(f);
  const auto r = fit_psf_matching_kernel(f.science, f.tmpl, std::span(stars).first(4), opts);
  EXPECT_NEAR(r.kernel.kernel_sum() * StarFieldPair::kTemplateUnit, 1.0, 0.02);
  EXPECT_EQ(r.kernel.coefficients().size(), r.kernel.basis().size());
  for (double c : r.kernel.coefficients()) EXPECT_TRUE(std::isfinite(c));
}

TEST(ImagePsfMatchKernelData, MalformedOrForeignKernelsAreRefused) {
  const PsfMatchingKernel k(KernelBasisSpec{3, {{1.0, 1}}}, 100, 80, 1, 0, std::vector<double>(1 + 2 * 3, 0.5), {2.0});
  const std::string text = k.to_json();
  EXPECT_TRUE(PsfMatchingKernel::from_json(text) == k);
  auto other_version = text;
  other_version.replace(other_version.find(kDiffimVersion), kDiffimVersion.size(), "pixserve-diffim-0.9");
  EXPECT_THROW(PsfMatchingKernel::from_json(other_version), PsfMatchError);
  EXPECT_THROW(PsfMatchingKernel::from_json("{"), PsfMatchError);
  EXPECT_THROW(PsfMatchingKernel::from_json("[]"), PsfMatchError);
  auto short_coefficients = text;
  short_coefficients.replace(short_coefficients.find("[0.5,"), 5, "[");
  EXPECT_THROW(PsfMatchingKernel::from_json(short_coefficients), PsfMatchError);
  EXPECT_THROW(PsfMatchingKernel(KernelBasisSpec{3, {{1.0, 1}}}, 100, 80, 1, 0,
                                 std::vector<double>(7, std::numeric_limits<double>::quiet_NaN()), {2.0}),
               std::invalid_argument);
  const Exposure e(100, 80);
  EXPECT_THROW(subtract_template(ExposurePiece{e}, ExposurePiece{e}, k, fits::PixelBox{90, 70, 20, 20}),
               std::invalid_argument);  // leaves the frame
  EXPECT_THROW(subtract_template(ExposurePiece{e, 5, 0}, ExposurePiece{e}, k, fits::PixelBox{0, 0, 20, 20}),
               std::invalid_argument);  // science does not cover the box
  EXPECT_THROW(subtract_template(ExposurePiece{e}, ExposurePiece{e}, k, fits::PixelBox{0, 0, 0, 20}),
               std::invalid_argument);  // empty
  const auto whole = subtract_template(e, e, k);
  EXPECT_EQ(whole.width(), 100);
}


// fit_diffim_kernel: the recipe's fit where there are stars enough, a
// spatially constant fit with fewer, the model kernel without any; the
// differential sky from the difference itself.
TEST(ImageDiffimKernel, FitsWithEnoughStarsAndTakesTheSkyFromTheDifference) {
  const auto field = make_star_field(384, 11);
  DiffimParameters p;
  const auto k = fit_diffim_kernel(field.science, field.tmpl, 2.3548 * 2.2, 2.3548 * StarFieldPair::kTemplateSigma,
                                   1.0 / StarFieldPair::kTemplateUnit, p);
  EXPECT_EQ(k.source, KernelSource::fit);
  EXPECT_GE(k.stamps, 10U);
  EXPECT_NEAR(k.kernel.kernel_sum() * StarFieldPair::kTemplateUnit, 1.0, 0.01);
  auto d = subtract_template(field.science, field.tmpl, k.kernel);
  mask_difference_detections(d, p.detection_sigma);
  const std::int32_t reject = kPsfMatchRejectBits | mask_bit(MaskPlane::detected) | mask_bit(MaskPlane::detected_negative);
  EXPECT_NEAR(estimate_background(d.image, &d.mask, reject).level, 0.0, 0.5);
}

TEST(ImageDiffimKernel, FewStarsGiveAConstantFitAndNoneTheModelKernel) {
  const auto field = make_star_field(384, 12);
  // A piece holding a couple of stars only.
  const fits::PixelBox piece{0, 0, 100, 100};
  Exposure s = copy_piece(field.science, piece), t = copy_piece(field.tmpl, piece);
  DiffimParameters p;
  const auto few = fit_diffim_kernel(s, t, 2.3548 * 2.2, 2.3548 * StarFieldPair::kTemplateSigma, 4.0, p);
  EXPECT_NE(few.source, KernelSource::fit);
  EXPECT_EQ(few.kernel.spatial_order(), 0);
  // No star at all: the model kernel, whose sum is the zero points' scale.
  Exposure flat_s(64, 64), flat_t(64, 64);
  for (auto& v : flat_s.variance.pixels) v = 1.0F;
  for (auto& v : flat_t.variance.pixels) v = 1.0F;
  const auto model = fit_diffim_kernel(flat_s, flat_t, 5.0, 3.0, 4.0, p);
  EXPECT_EQ(model.source, KernelSource::model);
  EXPECT_EQ(model.stamps, 0U);
  EXPECT_DOUBLE_EQ(model.kernel.kernel_sum(), 4.0);
  EXPECT_EQ(to_string(model.source), "model");
  EXPECT_THROW(fit_diffim_kernel(flat_s, flat_t, 5.0, 3.0, 0.0, p), PsfMatchError);
}

TEST(ImageDiffimKernel, DetectionsAndTheModelScaleFromTheHeader) {
  Exposure d(3, 1);
  d.image.pixels = {10.0F, -10.0F, 1.0F};
  d.variance.pixels = {1.0F, 1.0F, 1.0F};
  mask_difference_detections(d, 5.0F);
  EXPECT_EQ(d.mask.pixels[0], mask_bit(MaskPlane::detected));
  EXPECT_EQ(d.mask.pixels[1], mask_bit(MaskPlane::detected_negative));
  EXPECT_EQ(d.mask.pixels[2], 0);
  HeaderCards h;
  h.set("MAGZERO", 28.9).set("EXPTIME", 30.0);
  EXPECT_NEAR(model_kernel_scale(h), 30.0 * std::pow(10.0, 0.4 * (28.9 - 31.4)), 1e-12);
  EXPECT_EQ(model_kernel_scale(HeaderCards{}), 0.0);
}

}  // namespace
}  // namespace pixserve::image
