// Unit tests of the resampling engine (image/resample.hpp): kernel weights,
// integer and sub-pixel shifts, flat fields, noise variance, mask and
// NO_DATA propagation, strips against the whole, a rotated TAN -> TAN warp
// against an analytic sky, and GridMapping.

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/mask.hpp"
#include "image/resample.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image::resample_tests {
namespace {

constexpr std::int32_t kNoData = mask_bit(MaskPlane::no_data);
constexpr std::int32_t kCosmicRay = mask_bit(MaskPlane::cosmic_ray);
constexpr Kernel kAllKernels[] = {Kernel::nearest, Kernel::bilinear, Kernel::lanczos3};

std::uint32_t float_bits(float v) { return std::bit_cast<std::uint32_t>(v); }

// Noise about 100 in the image, variance 1..5, a few mask bits.
Exposure random_exposure(long width, long height, unsigned seed) {
  std::mt19937 random(seed);
  std::normal_distribution<float> noise(100.0F, 10.0F);
  std::uniform_real_distribution<float> level(1.0F, 5.0F);
  std::uniform_int_distribution<int> bit(0, 40);
  Exposure e(width, height);
  for (std::size_t k = 0; k < e.image.pixels.size(); ++k) {
    e.image.pixels[k] = noise(random);
    e.variance.pixels[k] = level(random);
    const int b = bit(random);
    e.mask.pixels[k] = b < 8 ? std::int32_t{1} << b : 0;
  }
  return e;
}

Exposure crop(const Exposure& e, const fits::PixelBox& b) {
  Exposure out(b.width, b.height);
  for (long y = 0; y < b.height; ++y) {
    for (long x = 0; x < b.width; ++x) {
      out.image.at(x, y) = e.image.at(b.x0 + x, b.y0 + y);
      out.variance.at(x, y) = e.variance.at(b.x0 + x, b.y0 + y);
      out.mask.at(x, y) = e.mask.at(b.x0 + x, b.y0 + y);
    }
  }
  return out;
}

// (x, y) -> (x + dx, y + dy). On a lattice of 8 pixels the interpolation
// fractions are multiples of 1/8, so integer shifts map to exact integers.
GridMapping shift_map(const fits::PixelBox& box, double dx, double dy) {
  return GridMapping(box, 8, GridMapping::Lattice{}, [=](double x, double y) -> std::optional<wcs::PixelPoint> {
    return wcs::PixelPoint{x + dx, y + dy};
  });
}

// A rotation by 20 degrees about (60, 50) with a scale of 1.1, shifted.
std::optional<wcs::PixelPoint> rotated_position(double x, double y) {
  const double a = 20.0 * std::numbers::pi / 180.0, s = 1.1;
  const double u = x - 60.0, v = y - 50.0;
  return wcs::PixelPoint{60.3 + s * (std::cos(a) * u - std::sin(a) * v),
                         49.8 + s * (std::sin(a) * u + std::cos(a) * v)};
}

double lanczos3(double d) {
  if (d == 0.0) return 1.0;
  if (std::abs(d) >= 3.0) return 0.0;
  const double pd = std::numbers::pi * d;
  return 3.0 * std::sin(pd) * std::sin(pd / 3.0) / (pd * pd);
}

double gaussian(double x, double y, double cx, double cy, double sigma) {
  return std::exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (2.0 * sigma * sigma));
}

struct ShiftError {
  double max_error = 0.0;  // of the valid pixels, relative to the peak (1)
  double flux_ratio = 0.0;
};

// A Gaussian of width sigma sampled on 64 x 64 pixels, shifted by (dx, dy).
ShiftError gaussian_shift_error(Kernel kernel, double sigma, double dx, double dy) {
  const double cx = 31.3, cy = 32.6;
  Exposure src(64, 64);
  for (long y = 0; y < 64; ++y) {
    for (long x = 0; x < 64; ++x) src.image.at(x, y) = static_cast<float>(gaussian(x, y, cx, cy, sigma));
  }
  const fits::PixelBox out{0, 0, 64, 64};
  const auto got = Resampler(kernel, src).warp(shift_map(out, dx, dy), out);
  ShiftError e;
  double sum_in = 0.0, sum_out = 0.0;
  for (const float v : src.image.pixels) sum_in += v;
  for (long y = 0; y < 64; ++y) {
    for (long x = 0; x < 64; ++x) {
      const float v = got.image.at(x, y);
      EXPECT_TRUE(std::isfinite(v) || (got.mask.at(x, y) & kNoData) != 0);
      if (!std::isfinite(v)) continue;
      sum_out += v;
      const double want = gaussian(static_cast<double>(x) + dx, static_cast<double>(y) + dy, cx, cy, sigma);
      e.max_error = std::max(e.max_error, std::abs(v - want));
    }
  }
  e.flux_ratio = sum_out / sum_in;
  return e;
}

// --- kernels and weights ---

TEST(ResampleKernel, NamesParseAndRoundTrip) {
  for (const Kernel k : kAllKernels) EXPECT_EQ(parse_kernel(kernel_name(k)), k);
  EXPECT_EQ(parse_kernel("lanczos3"), Kernel::lanczos3);
  EXPECT_EQ(parse_kernel("LANCZOS3"), Kernel::lanczos3);
  EXPECT_EQ(parse_kernel("Bilinear"), Kernel::bilinear);
  EXPECT_EQ(parse_kernel("nearest"), Kernel::nearest);
  EXPECT_FALSE(parse_kernel("lanczos"));
  EXPECT_FALSE(parse_kernel("bicubic"));
  EXPECT_FALSE(parse_kernel(""));
}

TEST(ResampleKernel, LanczosWeightsFollowTheDefinitionNormalized) {
  for (const double p : {10.05, 10.2, 10.37, 10.5, 10.79, 10.999}) {
    const auto a = axis_weights(Kernel::lanczos3, p, 40);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->first, 8);
    ASSERT_EQ(a->count, 6);
    double norm = 0.0, sum = 0.0;
    for (int k = 0; k < 6; ++k) norm += lanczos3(p - static_cast<double>(a->first + k));
    for (int k = 0; k < 6; ++k) {
      const double want = lanczos3(p - static_cast<double>(a->first + k)) / norm;
      EXPECT_NEAR(a->w[static_cast<std::size_t>(k)], want, 1e-6) << "p=" << p << " k=" << k;
      EXPECT_NE(a->w[static_cast<std::size_t>(k)], 0.0F);
      sum += a->w[static_cast<std::size_t>(k)];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
  // At (and within a millionth of a pixel of) a pixel centre: that pixel alone.
  for (const double p : {7.0, 7.0 + 5e-7, 7.0 - 5e-7}) {
    const auto a = axis_weights(Kernel::lanczos3, p, 40);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->first, 7);
    EXPECT_EQ(a->count, 1);
    EXPECT_EQ(a->w[0], 1.0F);
  }
}

TEST(ResampleKernel, WhereEachKernelHasAValue) {
  // Every kernel: nothing beyond the outer pixel edges.
  for (const Kernel k : kAllKernels) {
    EXPECT_FALSE(axis_weights(k, -0.51, 20));
    EXPECT_FALSE(axis_weights(k, 19.5, 20));
    EXPECT_FALSE(axis_weights(k, std::numeric_limits<double>::quiet_NaN(), 20));
  }
  // Nearest and bilinear: the whole area of the edge pixels.
  EXPECT_EQ(axis_weights(Kernel::nearest, -0.5, 20)->first, 0);
  EXPECT_EQ(axis_weights(Kernel::nearest, 19.49, 20)->first, 19);
  const auto edge = axis_weights(Kernel::bilinear, -0.4, 20);
  ASSERT_TRUE(edge);
  EXPECT_EQ(edge->first, 0);
  EXPECT_EQ(edge->count, 1);
  EXPECT_EQ(axis_weights(Kernel::bilinear, 19.4, 20)->first, 19);
  const auto inner = axis_weights(Kernel::bilinear, 3.25, 20);
  ASSERT_TRUE(inner);
  EXPECT_EQ(inner->first, 3);
  ASSERT_EQ(inner->count, 2);
  EXPECT_EQ(inner->w[0], 0.75F);
  EXPECT_EQ(inner->w[1], 0.25F);
  // Lanczos-3: only where all six pixels exist, or on a pixel centre.
  EXPECT_FALSE(axis_weights(Kernel::lanczos3, 1.9, 20));
  EXPECT_TRUE(axis_weights(Kernel::lanczos3, 2.1, 20));
  EXPECT_TRUE(axis_weights(Kernel::lanczos3, 16.9, 20));
  EXPECT_FALSE(axis_weights(Kernel::lanczos3, 17.1, 20));
  EXPECT_TRUE(axis_weights(Kernel::lanczos3, 0.0, 20));
  EXPECT_TRUE(axis_weights(Kernel::lanczos3, 19.0, 20));
}

// --- warps ---

TEST(Resample, IntegerShiftsCopyPixelsExactly) {
  const Exposure src = random_exposure(40, 30, 1);
  const fits::PixelBox out{-8, -8, 56, 48};
  for (const Kernel k : kAllKernels) {
    const auto got = Resampler(k, src).warp(shift_map(out, 3.0, -2.0), out);
    for (long y = 0; y < out.height; ++y) {
      for (long x = 0; x < out.width; ++x) {
        const long sx = out.x0 + x + 3, sy = out.y0 + y - 2;
        if (sx >= 0 && sx < 40 && sy >= 0 && sy < 30) {
          ASSERT_EQ(float_bits(got.image.at(x, y)), float_bits(src.image.at(sx, sy))) << kernel_name(k);
          ASSERT_EQ(float_bits(got.variance.at(x, y)), float_bits(src.variance.at(sx, sy)));
          ASSERT_EQ(got.mask.at(x, y), src.mask.at(sx, sy));
        } else {
          ASSERT_TRUE(std::isnan(got.image.at(x, y)));
          ASSERT_TRUE(std::isnan(got.variance.at(x, y)));
          ASSERT_EQ(got.mask.at(x, y), kNoData);
        }
      }
    }
  }
}

TEST(Resample, IntegerShiftsThroughTwoWcsCopyPixels) {
  // Two TAN WCSs that differ by an integer offset of CRPIX: the positions
  // come through the sky with rounding errors far below a millionth of a
  // pixel, and Lanczos-3 still copies pixels.
  wcs::TanParameters t;
  t.crval = {150.0, 2.2};
  t.crpix = {20.0, 15.0};
  const double s = 0.2 / 3600.0, a = 0.3;
  t.cd = {-s * std::cos(a), s * std::sin(a), s * std::sin(a), s * std::cos(a)};
  const auto source_wcs = wcs::Wcs::tan(t);
  t.crpix = {17.0, 17.0};  // output (x, y) = source (x + 3, y - 2)
  const auto output_wcs = wcs::Wcs::tan(t);
  const Exposure src = random_exposure(40, 30, 2);
  const fits::PixelBox out{0, 0, 30, 30};
  const GridMapping map(out, 8, [&](double x, double y) -> std::optional<wcs::PixelPoint> {
    return source_wcs.sky_to_pixel(output_wcs.pixel_to_sky({x, y}));
  });
  for (const Kernel k : {Kernel::nearest, Kernel::lanczos3}) {
    const auto got = Resampler(k, src).warp(map, out);
    for (long y = 2; y < 30; ++y) {
      for (long x = 0; x < 30; ++x) {
        ASSERT_EQ(float_bits(got.image.at(x, y)), float_bits(src.image.at(x + 3, y - 2))) << kernel_name(k);
        ASSERT_EQ(got.mask.at(x, y), src.mask.at(x + 3, y - 2));
      }
    }
  }
}

TEST(Resample, SubpixelShiftOfAGaussian) {
  // Lanczos-3 errs by a few thousandths of the peak on well-sampled
  // Gaussians: the kernel does not reproduce linear ramps exactly (its
  // first moment reaches 0.02 pixel), so the error falls only slowly with
  // the width. Bilinear errs ten times more.
  for (const auto& [dx, dy] : {std::pair{0.37, -0.21}, std::pair{0.5, 0.5}, std::pair{-0.13, 0.77}}) {
    const auto l2 = gaussian_shift_error(Kernel::lanczos3, 2.0, dx, dy);
    const auto l3 = gaussian_shift_error(Kernel::lanczos3, 3.0, dx, dy);
    const auto b2 = gaussian_shift_error(Kernel::bilinear, 2.0, dx, dy);
    std::cout << "shift (" << dx << ", " << dy << "): max error / peak: lanczos3 sigma 2: " << l2.max_error
              << ", sigma 3: " << l3.max_error << "; bilinear sigma 2: " << b2.max_error << "\n";
    EXPECT_LT(l2.max_error, 5e-3);
    EXPECT_LT(l3.max_error, 3.5e-3);
    EXPECT_LT(b2.max_error, 0.065);
    EXPECT_LT(8.0 * l2.max_error, b2.max_error);
    // The weights sum to 1 on every axis: a shift keeps the flux.
    EXPECT_NEAR(l2.flux_ratio, 1.0, 1e-5);
    EXPECT_NEAR(b2.flux_ratio, 1.0, 1e-5);
  }
}

TEST(Resample, FlatStaysFlat) {
  Exposure src(120, 100);
  std::fill(src.image.pixels.begin(), src.image.pixels.end(), 1234.5F);
  std::fill(src.variance.pixels.begin(), src.variance.pixels.end(), 4.0F);
  const fits::PixelBox out{0, 0, 120, 100};
  const GridMapping map(out, 16, GridMapping::Lattice{}, rotated_position);
  for (const Kernel k : kAllKernels) {
    const auto got = Resampler(k, src).warp(map, out);
    long valid = 0;
    for (std::size_t i = 0; i < got.image.pixels.size(); ++i) {
      if ((got.mask.pixels[i] & kNoData) != 0) continue;
      ++valid;
      ASSERT_NEAR(got.image.pixels[i], 1234.5F, 1234.5 * 1e-6) << kernel_name(k);
      ASSERT_LE(got.variance.pixels[i], 4.0F * (1.0F + 1e-6F));  // sum w^2 <= (sum w)^2 for these kernels
    }
    EXPECT_GT(valid, 5000) << kernel_name(k);
  }
}

TEST(Resample, VarianceOfWarpedWhiteNoiseIsSumOfSquaredWeights) {
  const long n = 48;
  const double dx = 0.3, dy = 0.6;
  const fits::PixelBox out{4, 4, n - 8, n - 8};
  for (const Kernel k : {Kernel::bilinear, Kernel::lanczos3}) {
    // The prediction from the weights themselves.
    const auto ax = axis_weights(k, 20.0 + dx, n), ay = axis_weights(k, 20.0 + dy, n);
    ASSERT_TRUE(ax && ay);
    double sx = 0.0, sy = 0.0;
    for (int i = 0; i < ax->count; ++i) sx += ax->w[static_cast<std::size_t>(i)] * ax->w[static_cast<std::size_t>(i)];
    for (int j = 0; j < ay->count; ++j) sy += ay->w[static_cast<std::size_t>(j)] * ay->w[static_cast<std::size_t>(j)];
    const double predicted = 2.0 * sx * sy;  // source variance 2

    std::mt19937 random(7);
    std::normal_distribution<float> noise(0.0F, std::sqrt(2.0F));
    Exposure src(n, n);
    std::fill(src.variance.pixels.begin(), src.variance.pixels.end(), 2.0F);
    const Resampler r(k, src);
    const auto map = shift_map(out, dx, dy);
    double sum = 0.0, sum2 = 0.0;
    long count = 0;
    for (int realisation = 0; realisation < 200; ++realisation) {
      for (auto& v : src.image.pixels) v = noise(random);
      const auto got = r.warp(map, out);
      for (std::size_t i = 0; i < got.image.pixels.size(); ++i) {
        ASSERT_EQ(got.mask.pixels[i], 0);
        ASSERT_NEAR(got.variance.pixels[i], predicted, 1e-5 * predicted);
        sum += got.image.pixels[i];
        sum2 += static_cast<double>(got.image.pixels[i]) * got.image.pixels[i];
        ++count;
      }
    }
    const double mean = sum / static_cast<double>(count);
    const double measured = sum2 / static_cast<double>(count) - mean * mean;
    std::cout << kernel_name(k) << ": sum w^2 Var = " << predicted << ", measured " << measured << "\n";
    EXPECT_NEAR(measured / predicted, 1.0, 0.03) << kernel_name(k);
    EXPECT_LT(predicted, 2.0 * 0.8);  // interpolation smooths noise
  }
}

// The output pixels whose mask has `bit`, as a bounding box and a count.
struct FlaggedPixels {
  long x_min = 1L << 30, x_max = -(1L << 30), y_min = 1L << 30, y_max = -(1L << 30), count = 0;
};
FlaggedPixels flagged(const Exposure& e, const fits::PixelBox& out, std::int32_t bit) {
  FlaggedPixels f;
  for (long y = 0; y < out.height; ++y) {
    for (long x = 0; x < out.width; ++x) {
      if ((e.mask.at(x, y) & bit) == 0) continue;
      f.x_min = std::min(f.x_min, out.x0 + x);
      f.x_max = std::max(f.x_max, out.x0 + x);
      f.y_min = std::min(f.y_min, out.y0 + y);
      f.y_max = std::max(f.y_max, out.y0 + y);
      ++f.count;
    }
  }
  return f;
}

TEST(Resample, MaskBitsSpreadOverTheKernelFootprint) {
  Exposure src(40, 40);
  src.mask.at(20, 20) = kCosmicRay;
  const fits::PixelBox out{0, 0, 40, 40};
  // Output (x, y) samples source (x + 0.5, y + 0.5).
  struct Case {
    Kernel kernel;
    double dx, dy;
    long x_min, x_max, y_min, y_max;
  };
  for (const Case c :
       {Case{Kernel::lanczos3, 0.5, 0.5, 17, 22, 17, 22}, Case{Kernel::bilinear, 0.5, 0.5, 19, 20, 19, 20},
        Case{Kernel::nearest, 0.5, 0.5, 19, 19, 19, 19},
        // On pixel centres along x, only that column has a weight.
        Case{Kernel::lanczos3, 1.0, 0.5, 19, 19, 17, 22}, Case{Kernel::bilinear, 1.0, 0.3, 19, 19, 19, 20}}) {
    const auto got = Resampler(c.kernel, src).warp(shift_map(out, c.dx, c.dy), out);
    const auto f = flagged(got, out, kCosmicRay);
    EXPECT_EQ(f.x_min, c.x_min) << kernel_name(c.kernel) << " " << c.dx;
    EXPECT_EQ(f.x_max, c.x_max) << kernel_name(c.kernel) << " " << c.dx;
    EXPECT_EQ(f.y_min, c.y_min) << kernel_name(c.kernel) << " " << c.dx;
    EXPECT_EQ(f.y_max, c.y_max) << kernel_name(c.kernel) << " " << c.dx;
    EXPECT_EQ(f.count, (c.x_max - c.x_min + 1) * (c.y_max - c.y_min + 1));
    // A mask bit does not make the value missing.
    EXPECT_EQ(got.image.at(20, 20), 0.0F);
  }
}

TEST(Resample, NoDataWhereTheSourceDoesNotReach) {
  Exposure src(20, 20);
  std::fill(src.image.pixels.begin(), src.image.pixels.end(), 1.0F);
  const fits::PixelBox out{-4, -4, 28, 28};
  // Output x samples source x + 0.5: bilinear has a value for x + 0.5 in
  // [-0.5, 19.5), Lanczos-3 only where floor(x + 0.5) - 2 >= 0 and
  // floor(x + 0.5) + 3 <= 19.
  for (const auto& [kernel, lo, hi] : {std::tuple{Kernel::bilinear, -1L, 18L}, std::tuple{Kernel::lanczos3, 2L, 16L}}) {
    const auto got = Resampler(kernel, src).warp(shift_map(out, 0.5, 0.5), out);
    for (long y = out.y0; y < out.y0 + out.height; ++y) {
      for (long x = out.x0; x < out.x0 + out.width; ++x) {
        const bool inside = x >= lo && x <= hi && y >= lo && y <= hi;
        const float v = got.image.at(x - out.x0, y - out.y0);
        const std::int32_t m = got.mask.at(x - out.x0, y - out.y0);
        if (inside) {
          ASSERT_NEAR(v, 1.0F, 1e-6) << kernel_name(kernel) << " " << x << "," << y;
          ASSERT_EQ(m, 0);
        } else {
          ASSERT_TRUE(std::isnan(v)) << kernel_name(kernel) << " " << x << "," << y;
          ASSERT_TRUE(std::isnan(got.variance.at(x - out.x0, y - out.y0)));
          ASSERT_EQ(m, kNoData);
        }
      }
    }
  }
  // A mapping without a position: NO_DATA.
  const GridMapping nowhere(out, 8, [](double, double) -> std::optional<wcs::PixelPoint> { return std::nullopt; });
  const auto got = Resampler(Kernel::bilinear, src).warp(nowhere, out);
  EXPECT_TRUE(std::all_of(got.mask.pixels.begin(), got.mask.pixels.end(), [](std::int32_t m) { return m == kNoData; }));
}

TEST(Resample, NonFinitePixelsMakeHolesNotSilentNaN) {
  Exposure src(40, 40);
  std::fill(src.image.pixels.begin(), src.image.pixels.end(), 3.0F);
  std::fill(src.variance.pixels.begin(), src.variance.pixels.end(), 1.0F);
  src.image.at(20, 20) = std::numeric_limits<float>::quiet_NaN();
  src.mask.at(20, 20) = kCosmicRay;
  src.variance.at(10, 30) = std::numeric_limits<float>::infinity();
  const fits::PixelBox out{0, 0, 40, 40};
  const auto got = Resampler(Kernel::lanczos3, src).warp(shift_map(out, 0.5, 0.5), out);
  long holes = 0;
  for (long y = 3; y < 35; ++y) {
    for (long x = 3; x < 35; ++x) {
      const bool near_nan = x >= 17 && x <= 22 && y >= 17 && y <= 22;
      const bool near_inf = x >= 7 && x <= 12 && y >= 27 && y <= 32;
      const float v = got.image.at(x, y);
      const std::int32_t m = got.mask.at(x, y);
      if (near_nan || near_inf) {
        ++holes;
        ASSERT_TRUE(std::isnan(v)) << x << "," << y;
        ASSERT_TRUE(std::isnan(got.variance.at(x, y)));
        ASSERT_TRUE((m & kNoData) != 0);
        // The bits of the pixels read are kept.
        ASSERT_EQ((m & kCosmicRay) != 0, near_nan);
      } else {
        ASSERT_NEAR(v, 3.0F, 1e-5) << x << "," << y;
        ASSERT_TRUE(std::isfinite(got.variance.at(x, y)));
        ASSERT_EQ(m, 0);
      }
    }
  }
  EXPECT_EQ(holes, 72);
  // A single plane: NaN where a NaN pixel is read.
  const Resampler plane(Kernel::bilinear, src.image);
  EXPECT_TRUE(std::isnan(plane.sample_image({19.5, 19.5})));
  EXPECT_EQ(plane.sample_image({18.5, 18.5}), 3.0F);
  EXPECT_THROW((void)plane.sample({18.5, 18.5}), std::logic_error);
  EXPECT_THROW((void)plane.warp(shift_map(out, 0.5, 0.5), out), std::logic_error);
}

TEST(Resample, StripsReadingOnlyTheirSourceAreaEqualTheWhole) {
  const long width = 130, height = 110;
  const Exposure src = random_exposure(width, height, 3);
  const fits::PixelBox out{-10, -7, 137, 121};
  const GridMapping::Lattice lattice{-10, -7};
  for (const Kernel k : kAllKernels) {
    const GridMapping whole_map(out, 16, lattice, rotated_position);
    const Exposure whole = Resampler(k, src).warp(whole_map, out);
    long valid = 0;
    for (const auto m : whole.mask.pixels) valid += (m & kNoData) == 0 ? 1 : 0;
    EXPECT_GT(valid, 5000);
    // Strips of 19 rows, each with its own mapping and the source pixels it reads.
    for (long y0 = out.y0; y0 < out.y0 + out.height; y0 += 19) {
      const fits::PixelBox strip{out.x0, y0, out.width, std::min(19L, out.y0 + out.height - y0)};
      const GridMapping map(strip, 16, lattice, rotated_position);
      const auto region = source_box(map, k, width, height);
      ASSERT_TRUE(region);
      const Exposure planes = crop(src, *region);
      const Exposure part = Resampler(k, planes, *region, width, height).warp(map, strip);
      // And a sub-box of the whole mapping.
      const Exposure sub = Resampler(k, src).warp(whole_map, strip);
      for (long y = 0; y < strip.height; ++y) {
        for (long x = 0; x < strip.width; ++x) {
          const long wy = y0 - out.y0 + y;
          ASSERT_EQ(float_bits(part.image.at(x, y)), float_bits(whole.image.at(x, wy))) << kernel_name(k);
          ASSERT_EQ(float_bits(part.variance.at(x, y)), float_bits(whole.variance.at(x, wy)));
          ASSERT_EQ(part.mask.at(x, y), whole.mask.at(x, wy));
          ASSERT_EQ(float_bits(sub.image.at(x, y)), float_bits(whole.image.at(x, wy)));
          ASSERT_EQ(sub.mask.at(x, y), whole.mask.at(x, wy));
        }
      }
    }
  }
}

TEST(Resample, RotatedTanToTanMatchesAnAnalyticSky) {
  // The source: 0.2"/pixel rotated by 30 degrees; the output: 0.25"/pixel
  // rotated by -15 degrees, elsewhere on the sky.
  auto tan = [](sky::SkyPoint crval, wcs::PixelPoint crpix, double arcsec, double degrees) {
    wcs::TanParameters t;
    t.crval = crval;
    t.crpix = crpix;
    const double s = arcsec / 3600.0, a = degrees * std::numbers::pi / 180.0;
    t.cd = {-s * std::cos(a), s * std::sin(a), s * std::sin(a), s * std::cos(a)};
    return wcs::Wcs::tan(t);
  };
  const auto source_wcs = tan({150.0, 2.2}, {100.0, 90.0}, 0.2, 30.0);
  const auto output_wcs = tan({150.0012, 2.2009}, {60.0, 60.0}, 0.25, -15.0);
  // Gaussian blobs of sigma 0.6" (3 source pixels) on a sky of 10.
  const std::vector<std::pair<sky::SkyPoint, double>> blobs{
      {{150.0, 2.2}, 100.0}, {{150.0025, 2.2012}, 60.0}, {{149.9985, 2.2021}, 80.0}, {{150.0031, 2.1995}, 40.0}};
  auto sky_value = [&](const sky::SkyPoint& p) {
    double v = 10.0;
    for (const auto& [c, amplitude] : blobs) {
      const double r = sky::angular_distance_deg(p, c) * 3600.0 / 0.6;
      v += amplitude * std::exp(-0.5 * r * r);
    }
    return v;
  };
  Exposure src(200, 180);
  for (long y = 0; y < 180; ++y) {
    for (long x = 0; x < 200; ++x) {
      src.image.at(x, y) =
          static_cast<float>(sky_value(source_wcs.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)})));
    }
  }
  const fits::PixelBox out{0, 0, 120, 120};
  const GridMapping map(out, 8, [&](double x, double y) -> std::optional<wcs::PixelPoint> {
    return source_wcs.sky_to_pixel(output_wcs.pixel_to_sky({x, y}));
  });
  double worst_lanczos = 0.0, worst_bilinear = 0.0;
  for (const Kernel k : {Kernel::lanczos3, Kernel::bilinear}) {
    const auto got = Resampler(k, src).warp(map, out);
    long valid = 0;
    double worst = 0.0;
    for (long y = 0; y < out.height; ++y) {
      for (long x = 0; x < out.width; ++x) {
        if ((got.mask.at(x, y) & kNoData) != 0) continue;
        ++valid;
        const double want = sky_value(output_wcs.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)}));
        worst = std::max(worst, std::abs(got.image.at(x, y) - want) / 100.0);
      }
    }
    EXPECT_GT(valid, 10000) << kernel_name(k);
    (k == Kernel::lanczos3 ? worst_lanczos : worst_bilinear) = worst;
  }
  std::cout << "TAN -> TAN, max error / peak: lanczos3 " << worst_lanczos << ", bilinear " << worst_bilinear << "\n";
  EXPECT_LT(worst_lanczos, 4e-3);
  EXPECT_LT(worst_lanczos * 5.0, worst_bilinear);
}

TEST(Resample, BilinearSamplesAndEdges) {
  Exposure src(3, 2);
  src.image.pixels = {0, 1, 2, 10, 11, 12};
  src.mask.at(1, 1) = 4;
  const Resampler r(Kernel::bilinear, src);
  EXPECT_FLOAT_EQ(r.sample({0.5, 0.5}).image, 5.5F);
  EXPECT_FLOAT_EQ(r.sample({2.4, 1.0}).image, 12.0F);  // within half a pixel of the edge: edge value
  EXPECT_EQ(r.sample({2.5, 1.0}).mask, kNoData);
  EXPECT_TRUE(std::isnan(r.sample({-0.6, 0.0}).image));
  EXPECT_EQ(r.sample({0.5, 0.5}).mask, 4);
  // On a pixel centre its neighbours have no weight, and no say in the mask.
  EXPECT_EQ(r.sample({0.0, 0.0}).mask, 0);
  EXPECT_EQ(r.sample({0.0, 0.5}).mask, 0);
  EXPECT_EQ(r.sample({1.0, 0.5}).mask, 4);
}

TEST(Resample, SourceBoxCoversTheKernelReach) {
  const fits::PixelBox out{0, 0, 10, 10};
  auto shift = [](double dx, double dy) {
    return [=](double x, double y) -> std::optional<wcs::PixelPoint> { return wcs::PixelPoint{x + dx, y + dy}; };
  };
  // Nodes on the box's edges: positions 20.25 .. 29.25, 30.75 .. 39.75.
  const GridMapping map(out, 8, shift(20.25, 30.75));
  const auto l = source_box(map, Kernel::lanczos3, 100, 100);
  ASSERT_TRUE(l);
  EXPECT_LE(l->x0, 18);
  EXPECT_GE(l->x0 + l->width - 1, 32);
  EXPECT_LE(l->y0, 28);
  EXPECT_GE(l->y0 + l->height - 1, 42);
  EXPECT_LE(l->width, 20);  // the reach and a pixel of slack, not more
  const auto b = source_box(map, Kernel::bilinear, 100, 100);
  ASSERT_TRUE(b);
  EXPECT_LE(b->x0, 20);
  EXPECT_GE(b->x0 + b->width - 1, 30);
  // Clipped to the source; nothing when the mapping misses it.
  const auto clipped = source_box(map, Kernel::lanczos3, 25, 35);
  ASSERT_TRUE(clipped);
  EXPECT_EQ(clipped->x0 + clipped->width, 25);
  EXPECT_EQ(clipped->y0 + clipped->height, 35);
  EXPECT_FALSE(source_box(GridMapping(out, 8, shift(200.0, 0.0)), Kernel::lanczos3, 100, 100));
  EXPECT_FALSE(source_box(GridMapping(out, 8, shift(-15.0, 0.0)), Kernel::lanczos3, 100, 100));
  // On a lattice the nodes reach past the box: so does the source box.
  const auto wide = source_box(shift_map(out, 20.25, 30.75), Kernel::lanczos3, 100, 100);
  ASSERT_TRUE(wide);
  EXPECT_LE(wide->x0, 18);
}

// --- grid mapping ---

TEST(GridMapping, IsExactForAffineMaps) {
  auto affine = [](double x, double y) -> std::optional<wcs::PixelPoint> {
    return wcs::PixelPoint{0.9 * x - 0.2 * y + 3.5, 0.1 * x + 1.1 * y - 7.25};
  };
  const GridMapping map({5, 7, 101, 37}, 16, affine);
  const GridMapping on_lattice({5, 7, 101, 37}, 16, GridMapping::Lattice{3, -2}, affine);
  for (long y = 7; y < 44; y += 3) {
    for (long x = 5; x < 106; x += 7) {
      const auto want = affine(static_cast<double>(x), static_cast<double>(y));
      for (const auto* m : {&map, &on_lattice}) {
        const auto got = (*m)(x, y);
        ASSERT_TRUE(got);
        EXPECT_NEAR(got->x, want->x, 1e-9);
        EXPECT_NEAR(got->y, want->y, 1e-9);
      }
    }
  }
  const auto e = map.extent();
  ASSERT_TRUE(e);
  EXPECT_NEAR(e->x_min, std::min(affine(5, 43)->x, affine(5, 7)->x), 1e-9);
  // Nodes without an answer make their cells map nowhere.
  const GridMapping holes({0, 0, 64, 64}, 16, [](double x, double) -> std::optional<wcs::PixelPoint> {
    if (x > 40) return std::nullopt;
    return wcs::PixelPoint{x, 0};
  });
  EXPECT_TRUE(holes(10, 10));
  EXPECT_FALSE(holes(60, 10));
}

TEST(GridMapping, LatticeNodesMakeStripsAgreeWithTheWhole) {
  auto curved = [](double x, double y) -> std::optional<wcs::PixelPoint> {
    return wcs::PixelPoint{x + 1e-3 * x * y + 0.3, y - 2e-4 * x * x + 0.7};
  };
  const fits::PixelBox whole_box{3, -5, 70, 50};
  const GridMapping::Lattice lattice{1, 2};
  const GridMapping whole(whole_box, 16, lattice, curved);
  for (long y0 = -5; y0 < 45; y0 += 7) {
    for (long x0 = 3; x0 < 73; x0 += 23) {
      const fits::PixelBox strip{x0, y0, std::min(23L, 73 - x0), std::min(7L, 45 - y0)};
      const GridMapping part(strip, 16, lattice, curved);
      for (long y = strip.y0; y < strip.y0 + strip.height; ++y) {
        for (long x = strip.x0; x < strip.x0 + strip.width; ++x) {
          const auto a = whole(x, y), b = part(x, y);
          ASSERT_TRUE(a && b);
          ASSERT_EQ(a->x, b->x) << x << "," << y;
          ASSERT_EQ(a->y, b->y) << x << "," << y;
        }
      }
    }
  }
  // A one-pixel box still has nodes on both sides.
  const GridMapping pixel({17, 18, 1, 1}, 16, lattice, curved);
  EXPECT_EQ(pixel(17, 18)->x, whole(17, 18)->x);
}

}  // namespace
}  // namespace pixserve::image::resample_tests
