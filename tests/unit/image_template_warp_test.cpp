// Unit tests of the template warp (image/template_warp.hpp): coadd patches
// of a small tract (2 x 2 patches overlapping by a border, TAN, one pixel
// grid) warped onto a rotated TAN-SIP "calexp" with Lanczos-3. Any box
// equals the same pixels of the whole warp bit for bit; flat stays flat; a
// star lands where the WCSs put it; each pixel comes from the patch whose
// inner region holds it, else from the first patch with data; pixels no
// patch covers are NO_DATA.

#include <gtest/gtest.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "image/exposure.hpp"
#include "image/mask.hpp"
#include "image/template_warp.hpp"
#include "test_scratch.hpp"
#include "wcs/wcs.hpp"

namespace {

namespace tw = pixserve::image;
using pixserve::fits::PixelBox;
using pixserve::wcs::PixelPoint;
using pixserve::wcs::Wcs;

constexpr double kTwScale = 0.2 / 3600.0;  // deg/pixel
constexpr std::int32_t kTwNoData = tw::mask_bit(tw::MaskPlane::no_data);

// The tract: TAN, north up, reference pixel at its centre.
Wcs tw_tract_wcs(long size) {
  pixserve::wcs::TanParameters t;
  t.crval = {53.0, -28.0};
  t.crpix = {0.5 * static_cast<double>(size) - 0.5, 0.5 * static_cast<double>(size) - 0.5};
  t.cd = {-kTwScale, 0.0, 0.0, kTwScale};
  return Wcs::tan(t);
}

// A calexp: rotated TAN-SIP, pixel scale a little different, reference
// pixel (cx, cy) at the sky position of tract pixel (tx, ty).
Wcs tw_calexp_wcs(const Wcs& tract, double tx, double ty, double cx, double cy) {
  pixserve::wcs::TanParameters t;
  t.crval = tract.pixel_to_sky({tx, ty});
  t.crpix = {cx, cy};
  const double a = 0.4, s = kTwScale * 1.03;
  t.cd = {-s * std::cos(a), s * std::sin(a), s * std::sin(a), s * std::cos(a)};
  pixserve::wcs::Sip sip;
  sip.order = 2;
  sip.a = {{0, 0, 2e-6}, {0, 1e-6, 0}, {-1e-6, 0, 0}};
  sip.b = {{0, 0, -1e-6}, {0, 2e-6, 0}, {1e-6, 0, 0}};
  t.sip = sip;
  return Wcs::tan(t);
}

// A smooth field in tract pixels, and its variance.
float tw_field(double x, double y) {
  return static_cast<float>(100.0 + 20.0 * std::sin(x * 0.11) * std::cos(y * 0.07) + 0.05 * x);
}
float tw_field_variance(double x, double y) { return static_cast<float>(4.0 + 0.01 * x + 0.02 * y); }

struct TwPatchSpec {
  int px = 0, py = 0;
  float offset = 0.0F;  // added to the image (tells which patch supplied a pixel)
  std::optional<double> psf{};
};

// A tract of 2 x 2 patches: inner 60 pixels, border 8 (outer 76).
class TemplateWarpTest : public ::testing::Test {
 protected:
  static constexpr long kInner = 60, kBorder = 8, kOuter = kInner + 2 * kBorder, kTract = 2 * kInner;
  Wcs tract_ = tw_tract_wcs(kTract);

  PixelBox patch_box(int px, int py) const {
    return {px * kInner - kBorder, py * kInner - kBorder, kOuter, kOuter};
  }

  // Writes one patch with value(x, y) in tract pixels (plus the offset).
  template <typename F>
  std::filesystem::path write_patch(const TwPatchSpec& spec, F&& value) {
    const auto b = patch_box(spec.px, spec.py);
    tw::Exposure e(b.width, b.height);
    for (long y = 0; y < b.height; ++y) {
      for (long x = 0; x < b.width; ++x) {
        const double tx = static_cast<double>(x + b.x0), ty = static_cast<double>(y + b.y0);
        e.image.at(x, y) = value(tx, ty) + spec.offset;
        e.variance.at(x, y) = tw_field_variance(tx, ty);
        e.mask.at(x, y) = 0;
      }
    }
    tw::ExposureHeaders h;
    h.primary.set("DSTYPE", "deepCoadd");
    h.primary.set("PATCH", std::to_string(spec.px) + "," + std::to_string(spec.py));
    if (spec.psf) h.primary.set("PSFFWHM", *spec.psf, "[arcsec]");
    const Wcs w = tract_.shifted(static_cast<double>(b.x0), static_cast<double>(b.y0));
    const auto path = pixserve::testing::test_scratch_file("patch_" + std::to_string(spec.px) + "_" +
                                                           std::to_string(spec.py) + ".fits");
    tw::write_exposure(path, e, h, &w);
    return path;
  }

  std::vector<std::filesystem::path> field_patches(bool offsets = false) {
    std::vector<std::filesystem::path> out;
    float k = 0.0F;
    for (int py = 0; py < 2; ++py) {
      for (int px = 0; px < 2; ++px, k += 1.0F) {
        out.push_back(write_patch({px, py, offsets ? 1000.0F * (k + 1.0F) : 0.0F, 0.7 + 0.1 * k}, tw_field));
      }
    }
    return out;
  }
};

bool tw_same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

void tw_expect_box_equals_whole(const tw::Exposure& whole, const tw::Exposure& part, const PixelBox& b) {
  ASSERT_EQ(part.width(), b.width);
  ASSERT_EQ(part.height(), b.height);
  long differ = 0;
  for (long y = 0; y < b.height; ++y) {
    for (long x = 0; x < b.width; ++x) {
      const long wx = b.x0 + x, wy = b.y0 + y;
      if (!tw_same_bits(part.image.at(x, y), whole.image.at(wx, wy)) ||
          !tw_same_bits(part.variance.at(x, y), whole.variance.at(wx, wy)) ||
          part.mask.at(x, y) != whole.mask.at(wx, wy)) {
        ++differ;
      }
    }
  }
  EXPECT_EQ(differ, 0) << "box " << b.x0 << "," << b.y0 << " " << b.width << "x" << b.height;
}

TEST_F(TemplateWarpTest, AnyBoxEqualsTheWholeWarpBitForBit) {
  const auto patches = field_patches(true);
  // The calexp straddles the corner shared by the four patches and runs
  // off the tract on two sides.
  constexpr long kW = 150, kH = 130;
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 70.0, 65.0);
  const tw::TractPatches t(patches);
  EXPECT_EQ(t.border(), kBorder);
  const tw::Exposure whole = t.warp(calexp, kW, kH, {0, 0, kW, kH});
  long with_data = 0, no_data = 0;
  for (size_t i = 0; i < whole.mask.pixels.size(); ++i) {
    ((whole.mask.pixels[i] & kTwNoData) != 0 ? no_data : with_data) += 1;
  }
  EXPECT_GT(with_data, kW * kH / 3);
  EXPECT_GT(no_data, 100);

  std::vector<PixelBox> boxes = {{0, 0, kW, kH},   {0, 0, 1, 1},        {kW - 1, kH - 1, 1, 1}, {0, 0, 51, 51},
                                 {kW - 51, kH - 51, 51, 51}, {30, 0, 1, kH}, {0, 64, kW, 1},  {60, 45, 81, 81},
                                 {63, 33, 33, 31}, {31, 32, 32, 32}};
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    std::uniform_int_distribution<long> wd(1, 90), hd(1, 90);
    const long w = wd(rng), h = hd(rng);
    std::uniform_int_distribution<long> xd(0, kW - w), yd(0, kH - h);
    boxes.push_back({xd(rng), yd(rng), w, h});
  }
  for (const auto& b : boxes) tw_expect_box_equals_whole(whole, t.warp(calexp, kW, kH, b), b);
  // The one-shot form agrees too.
  tw_expect_box_equals_whole(whole, tw::warp_template(patches, calexp, kW, kH, {60, 45, 81, 81}), {60, 45, 81, 81});
}

TEST_F(TemplateWarpTest, EachPixelComesFromThePatchWhoseInnerRegionHoldsIt) {
  const auto patches = field_patches(true);
  constexpr long kW = 110, kH = 110;
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 55.0, 55.0);
  const tw::Exposure e = tw::warp_template(patches, calexp, kW, kH, {0, 0, kW, kH});
  long checked = 0;
  for (long y = 0; y < kH; ++y) {
    for (long x = 0; x < kW; ++x) {
      const auto t = tract_.sky_to_pixel(calexp.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)}));
      // Well inside the tract and off the inner boundaries by more than the
      // mapping's error: the patch is unambiguous.
      if (t.x < 4 || t.y < 4 || t.x > kTract - 5 || t.y > kTract - 5) continue;
      if (std::abs(t.x - (kInner - 0.5)) < 0.01 || std::abs(t.y - (kInner - 0.5)) < 0.01) continue;
      const int px = t.x < kInner - 0.5 ? 0 : 1, py = t.y < kInner - 0.5 ? 0 : 1;
      const float offset = 1000.0F * static_cast<float>(py * 2 + px + 1);
      ASSERT_EQ(e.mask.at(x, y) & kTwNoData, 0) << x << "," << y;
      EXPECT_NEAR(e.image.at(x, y) - offset, tw_field(t.x, t.y), 0.2) << x << "," << y;
      ++checked;
    }
  }
  EXPECT_GT(checked, 5000);
}

TEST_F(TemplateWarpTest, WithoutTheInnerPatchTheFirstPatchWithDataSupplies) {
  // Patch 1,1 missing: its inner region (tract x, y >= 59.5) comes from the
  // others' borders where they have data, the first in sorted file order
  // (patch_0_0, patch_0_1, patch_1_0); Lanczos-3 reads 3 pixels on, so a
  // patch ending at tract pixel 67 has data up to x (or y) = 65.
  auto patches = field_patches(true);
  patches.pop_back();
  constexpr long kW = 110, kH = 110;
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 55.0, 55.0);
  const tw::Exposure e = tw::warp_template(patches, calexp, kW, kH, {0, 0, kW, kH});
  long counts[4] = {0, 0, 0, 0};
  for (long y = 0; y < kH; ++y) {
    for (long x = 0; x < kW; ++x) {
      const auto t = tract_.sky_to_pixel(calexp.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)}));
      if (t.x < kInner - 0.49 || t.y < kInner - 0.49 || t.x > kTract - 5 || t.y > kTract - 5) continue;
      if (std::abs(t.x - 65.0) < 0.01 || std::abs(t.y - 65.0) < 0.01) continue;
      const bool low_x = t.x < 65.0, low_y = t.y < 65.0;
      if (!low_x && !low_y) {
        EXPECT_EQ(e.mask.at(x, y), kTwNoData) << x << "," << y;
        EXPECT_TRUE(std::isnan(e.image.at(x, y)));
        ++counts[3];
        continue;
      }
      const float offset = low_x && low_y ? 1000.0F : low_x ? 3000.0F : 2000.0F;
      ASSERT_EQ(e.mask.at(x, y) & kTwNoData, 0) << x << "," << y;
      EXPECT_NEAR(e.image.at(x, y) - offset, tw_field(t.x, t.y), 0.2) << x << "," << y;
      ++counts[low_x && low_y ? 0 : low_x ? 1 : 2];
    }
  }
  EXPECT_GT(counts[0], 10);
  EXPECT_GT(counts[1], 100);
  EXPECT_GT(counts[2], 100);
  EXPECT_GT(counts[3], 1000);
}

TEST_F(TemplateWarpTest, FlatTemplateWarpsFlat) {
  std::vector<std::filesystem::path> patches;
  for (int py = 0; py < 2; ++py) {
    for (int px = 0; px < 2; ++px) patches.push_back(write_patch({px, py, 0.0F, std::nullopt}, [](double, double) { return 5.0F; }));
  }
  constexpr long kW = 100, kH = 100;
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 50.0, 50.0);
  const tw::Exposure e = tw::warp_template(patches, calexp, kW, kH, {0, 0, kW, kH});
  long with_data = 0;
  for (size_t i = 0; i < e.image.pixels.size(); ++i) {
    if ((e.mask.pixels[i] & kTwNoData) != 0) continue;
    ++with_data;
    EXPECT_NEAR(e.image.pixels[i], 5.0F, 2e-5F);
    EXPECT_EQ(e.mask.pixels[i], 0);
    EXPECT_GT(e.variance.pixels[i], 0.0F);
  }
  EXPECT_GT(with_data, kW * kH / 2);
}

TEST_F(TemplateWarpTest, AStarLandsWhereTheWcsesSay) {
  // A Gaussian star (sigma 2 pixels) in every patch, at a fractional tract
  // position near the patch corner, so it spans the overlaps.
  const double sx = 62.3, sy = 57.8, sigma = 2.0;
  auto star = [&](double x, double y) {
    const double r2 = (x - sx) * (x - sx) + (y - sy) * (y - sy);
    return static_cast<float>(1000.0 * std::exp(-0.5 * r2 / (sigma * sigma)));
  };
  std::vector<std::filesystem::path> patches;
  for (int py = 0; py < 2; ++py) {
    for (int px = 0; px < 2; ++px) patches.push_back(write_patch({px, py, 0.0F, std::nullopt}, star));
  }
  constexpr long kW = 100, kH = 100;
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 48.0, 51.0);
  const auto expected = calexp.sky_to_pixel(tract_.pixel_to_sky({sx, sy}));
  const long cx = std::lround(expected.x), cy = std::lround(expected.y);
  const PixelBox b{cx - 12, cy - 12, 25, 25};
  const tw::Exposure e = tw::warp_template(patches, calexp, kW, kH, b);
  double sum = 0, mx = 0, my = 0;
  for (long y = 0; y < b.height; ++y) {
    for (long x = 0; x < b.width; ++x) {
      ASSERT_EQ(e.mask.at(x, y) & kTwNoData, 0);
      const double v = e.image.at(x, y);
      sum += v;
      mx += v * static_cast<double>(b.x0 + x);
      my += v * static_cast<double>(b.y0 + y);
    }
  }
  EXPECT_NEAR(mx / sum, expected.x, 0.02);
  EXPECT_NEAR(my / sum, expected.y, 0.02);
  // Flux kept (pixel areas nearly equal: scale 1.03 per axis).
  EXPECT_NEAR(sum, 1000.0 * 2.0 * std::numbers::pi * sigma * sigma / (1.03 * 1.03), 0.01 * sum);
}

TEST_F(TemplateWarpTest, NoCoverageIsNoData) {
  const auto patches = field_patches();
  constexpr long kW = 40, kH = 30;
  // Far off the tract (a few arcminutes away).
  const Wcs calexp = tw_calexp_wcs(tract_, 2000.0, -1500.0, 20.0, 15.0);
  const tw::Exposure e = tw::warp_template(patches, calexp, kW, kH, {0, 0, kW, kH});
  for (size_t i = 0; i < e.image.pixels.size(); ++i) {
    EXPECT_TRUE(std::isnan(e.image.pixels[i]));
    EXPECT_TRUE(std::isnan(e.variance.pixels[i]));
    EXPECT_EQ(e.mask.pixels[i], kTwNoData);
  }
}

TEST_F(TemplateWarpTest, PsfFwhmIsTheMeanOfThePatches) {
  const auto patches = field_patches();  // 0.7, 0.8, 0.9, 1.0
  EXPECT_NEAR(tw::template_psf_fwhm(patches), 0.85, 1e-9);
  const auto lacking = write_patch({0, 0, 0.0F, std::nullopt}, tw_field);
  const std::vector<std::filesystem::path> one{lacking};
  EXPECT_THROW(tw::template_psf_fwhm(one), std::invalid_argument);
}

TEST_F(TemplateWarpTest, BadArgumentsAreRefused) {
  const auto patches = field_patches();
  const Wcs calexp = tw_calexp_wcs(tract_, 60.0, 60.0, 50.0, 50.0);
  EXPECT_THROW(tw::warp_template(patches, calexp, 100, 100, {90, 90, 20, 5}), std::invalid_argument);
  EXPECT_THROW(tw::warp_template(patches, calexp, 100, 100, {0, 0, 0, 5}), std::invalid_argument);
  EXPECT_THROW(tw::warp_template(std::vector<std::filesystem::path>{}, calexp, 100, 100, {0, 0, 5, 5}),
               std::invalid_argument);
  // A patch off the grid (half-pixel shift).
  tw::Exposure e(20, 20);
  tw::ExposureHeaders h;
  const Wcs off = tract_.shifted(10.5, 0.0);
  const auto path = pixserve::testing::test_scratch_file("off_grid.fits");
  tw::write_exposure(path, e, h, &off);
  auto with_off = patches;
  with_off.push_back(path);
  EXPECT_THROW(tw::TractPatches{with_off}, std::invalid_argument);
}

// Timing (informative; printed): a 512 x 512 calexp and an 81 x 81 stamp
// from 4 patches of 700 x 700 (inner 600, border 50).
TEST(TemplateWarpTiming, WholeAndStamp) {
  constexpr long kIn = 600, kBd = 50, kOut = kIn + 2 * kBd;
  const Wcs tract = tw_tract_wcs(2 * kIn);
  std::vector<std::filesystem::path> patches;
  for (int py = 0; py < 2; ++py) {
    for (int px = 0; px < 2; ++px) {
      tw::Exposure e(kOut, kOut);
      for (long y = 0; y < kOut; ++y) {
        for (long x = 0; x < kOut; ++x) {
          e.image.at(x, y) = tw_field(static_cast<double>(x), static_cast<double>(y));
          e.variance.at(x, y) = 4.0F;
        }
      }
      tw::ExposureHeaders h;
      h.primary.set("PATCH", std::to_string(px) + "," + std::to_string(py));
      const Wcs w = tract.shifted(static_cast<double>(px * kIn - kBd), static_cast<double>(py * kIn - kBd));
      const auto path = pixserve::testing::test_scratch_file("big_" + std::to_string(px) + std::to_string(py) + ".fits");
      tw::write_exposure(path, e, h, &w);
      patches.push_back(path);
    }
  }
  const Wcs calexp = tw_calexp_wcs(tract, 600.0, 600.0, 256.0, 256.0);
  const tw::TractPatches t(patches);
  auto time_ms = [&](const PixelBox& b, int runs, bool reopen) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < runs; ++i) {
      const auto e = reopen ? tw::warp_template(patches, calexp, 512, 512, b) : t.warp(calexp, 512, 512, b);
      EXPECT_EQ(e.width(), b.width);
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / runs;
  };
  const double whole = time_ms({0, 0, 512, 512}, 3, false);
  const double stamp = time_ms({20, 20, 81, 81}, 20, false);
  const double stamp_open = time_ms({20, 20, 81, 81}, 20, true);
  const double stamp_corner = time_ms({215, 215, 81, 81}, 20, true);
  std::printf("template warp, Lanczos-3, 4 patches of %ldx%ld: 512x512 %.1f ms; 81x81 %.2f ms (%.2f ms opening the "
              "patches; %.2f ms across 4 patches)\n",
              kOut, kOut, whole, stamp, stamp_open, stamp_corner);
  RecordProperty("whole_ms", std::to_string(whole));
  RecordProperty("stamp_ms", std::to_string(stamp_open));
  EXPECT_LT(stamp_open, 200.0);
}

}  // namespace
