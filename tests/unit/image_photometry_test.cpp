// Forced photometry: the exact circle-pixel overlap, aperture sums and
// errors against closed forms, edge and mask flags, PSF fits of noise-free
// stars.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "image/mask.hpp"
#include "image/photometry.hpp"

using namespace pixserve::image;

namespace {

// A flat exposure: every pixel `value`, variance `var`, no mask bits.
Exposure flat_exposure(long w, long h, float value, float var) {
  Exposure e(w, h);
  std::fill(e.image.pixels.begin(), e.image.pixels.end(), value);
  std::fill(e.variance.pixels.begin(), e.variance.pixels.end(), var);
  return e;
}

// A Gaussian star of `flux` at (x, y), integrated over each pixel.
void add_star(Exposure& e, double x, double y, double flux, double fwhm) {
  const double s = 1.0 / (std::numbers::sqrt2 * fwhm / (2.0 * std::sqrt(2.0 * std::numbers::ln2)));
  const auto p = [&](double d) { return 0.5 * (std::erf((d + 0.5) * s) - std::erf((d - 0.5) * s)); };
  for (long j = 0; j < e.height(); ++j) {
    for (long i = 0; i < e.width(); ++i) {
      e.image.at(i, j) += static_cast<float>(flux * p(static_cast<double>(i) - x) * p(static_cast<double>(j) - y));
    }
  }
}

}  // namespace

TEST(CircleOverlap, ClosedFormsOfWholeHalvesAndQuarters) {
  const double r = 2.5, pi = std::numbers::pi;
  EXPECT_NEAR(circle_rectangle_overlap(-10, -10, 10, 10, r), pi * r * r, 1e-12);
  EXPECT_NEAR(circle_rectangle_overlap(0, -10, 10, 10, r), pi * r * r / 2, 1e-12);
  EXPECT_NEAR(circle_rectangle_overlap(0, 0, 10, 10, r), pi * r * r / 4, 1e-12);
  EXPECT_NEAR(circle_rectangle_overlap(-1, -1, 1, 1, r), 4.0, 1e-12);  // inside the circle
  EXPECT_EQ(circle_rectangle_overlap(3, 3, 4, 4, r), 0.0);              // outside
  // A strip of height h through the centre: 2 (h/2 sqrt(r^2 - h^2/4) + r^2 asin(h / 2r)).
  const double h = 1.0;
  EXPECT_NEAR(circle_rectangle_overlap(-10, -h / 2, 10, h / 2, r),
              2.0 * (h / 2 * std::sqrt(r * r - h * h / 4) + r * r * std::asin(h / (2 * r))), 1e-12);
  EXPECT_EQ(circle_rectangle_overlap(-1, -1, 1, 1, 0.0), 0.0);
}

TEST(CircleOverlap, APixelGridSharesOutTheCircleExactly) {
  // Whatever the centre and radius, the overlaps of the pixels the circle
  // touches add up to its area, and each lies in [0, 1].
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> offset(-0.5, 0.5), radius(0.3, 7.0);
  for (int trial = 0; trial < 200; ++trial) {
    const double cx = offset(rng), cy = offset(rng), r = radius(rng);
    double sum = 0.0;
    for (int j = -9; j <= 9; ++j) {
      for (int i = -9; i <= 9; ++i) {
        const double w = circle_rectangle_overlap(i - 0.5 - cx, j - 0.5 - cy, i + 0.5 - cx, j + 0.5 - cy, r);
        ASSERT_GE(w, 0.0);
        ASSERT_LE(w, 1.0 + 1e-12);
        sum += w;
      }
    }
    EXPECT_NEAR(sum, std::numbers::pi * r * r, 1e-9 * r * r) << "r=" << r;
  }
}

TEST(AperturePhotometry, AFlatImageGivesValueTimesAreaAndItsError) {
  const auto e = flat_exposure(64, 48, 3.0F, 4.0F);
  const double r = 5.3, area = std::numbers::pi * r * r;
  const auto m = aperture_photometry(e, 30.2, 20.7, r);
  ASSERT_TRUE(m.valid());
  EXPECT_NEAR(m.area, area, 1e-9);
  EXPECT_NEAR(m.flux, 3.0 * area, 1e-9);
  EXPECT_NEAR(m.flux_err, std::sqrt(4.0 * area), 1e-9);
  EXPECT_FALSE(m.edge || m.masked || m.saturated);
}

TEST(AperturePhotometry, EdgesAndMaskedPixelsAreLeftOutAndFlagged) {
  auto e = flat_exposure(40, 40, 1.0F, 1.0F);
  const double r = 4.0;
  const auto edge = aperture_photometry(e, 1.0, 20.0, r);
  EXPECT_TRUE(edge.edge);
  EXPECT_LT(edge.area, std::numbers::pi * r * r);
  EXPECT_NEAR(edge.flux, edge.area, 1e-9);
  e.mask.at(20, 20) = mask_bit(MaskPlane::bad);
  e.mask.at(21, 20) = mask_bit(MaskPlane::saturated);
  e.image.at(19, 20) = std::numeric_limits<float>::quiet_NaN();
  const auto masked = aperture_photometry(e, 20.0, 20.0, r);
  EXPECT_TRUE(masked.masked);
  EXPECT_TRUE(masked.saturated);
  EXPECT_FALSE(masked.edge);
  EXPECT_NEAR(masked.area, std::numbers::pi * r * r - 3.0, 1e-9);  // three whole pixels out
  EXPECT_NEAR(masked.flux, masked.area, 1e-9);
  // Off the image altogether: no measurement.
  const auto off = aperture_photometry(e, -50.0, 20.0, r);
  EXPECT_FALSE(off.valid());
  EXPECT_TRUE(std::isnan(off.flux));
  EXPECT_THROW(aperture_photometry(e, 20.0, 20.0, 0.0), std::invalid_argument);
  EXPECT_THROW(aperture_photometry(e, 20.0, std::nan(""), 2.0), std::invalid_argument);
}

TEST(PsfPhotometry, ANoiseFreeStarIsMeasuredExactlyWithItsError) {
  auto e = flat_exposure(64, 64, 0.0F, 25.0F);
  const double fwhm = 3.2;
  add_star(e, 31.3, 29.8, 5000.0, fwhm);
  const auto m = psf_photometry(e, 31.3, 29.8, fwhm);
  ASSERT_TRUE(m.valid());
  EXPECT_NEAR(m.flux, 5000.0, 5000.0 * 1e-5);
  // With equal variances: error = sigma / sqrt(sum P^2), sum P^2 ~ 1 / (4 pi s^2).
  const double s = fwhm / (2.0 * std::sqrt(2.0 * std::numbers::ln2));
  EXPECT_NEAR(m.flux_err, 5.0 * std::sqrt(4.0 * std::numbers::pi * s * s), 0.05 * m.flux_err);
  // The aperture agrees where it holds nearly all the light.
  const auto a = aperture_photometry(e, 31.3, 29.8, 3.0 * fwhm);
  EXPECT_NEAR(a.flux, 5000.0, 5000.0 * 1e-3);
  EXPECT_THROW(psf_photometry(e, 31.3, 29.8, -1.0), std::invalid_argument);
}
