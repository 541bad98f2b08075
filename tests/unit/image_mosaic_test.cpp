// Unit tests of coadd mosaics (image/mosaic.hpp): two tracts, each its own
// TAN projection about its own centre with two patches on its grid, hold a
// smooth sky; a mosaic onto a rotated TAN grid of another scale gives that
// sky back where either tract covers it, takes each pixel from the tract
// whose tangent point is nearest, is NO_DATA where no tract covers, and
// any strip equals the same rows of the whole. Grids: sized to hold a
// region, also across RA 0 and around a pole; bad scales, absurd sizes and
// regions too wide for one TAN grid are refused.

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>
#include <string>
#include <vector>

#include "image/exposure.hpp"
#include "image/mask.hpp"
#include "image/mosaic.hpp"
#include "sky/geometry.hpp"
#include "test_scratch.hpp"
#include "wcs/wcs.hpp"

namespace {

namespace im = pixserve::image;
using pixserve::fits::PixelBox;
using pixserve::sky::SkyPoint;
using pixserve::wcs::Wcs;

constexpr double kMosaicScale = 2.0 / 3600.0;  // deg/pixel of the tracts
constexpr long kPatchInner = 60, kPatchBorder = 5, kPatchOuter = kPatchInner + 2 * kPatchBorder;
constexpr std::int32_t kMosaicNoData = im::mask_bit(im::MaskPlane::no_data);
constexpr float kTractBOffset = 0.001F;  // tells tract B's pixels from tract A's

// A smooth sky (periods of tens of tract pixels: Lanczos-3 reproduces it
// to well under a percent).
double mosaic_sky(const SkyPoint& p) {
  const double ra = p.ra > 180.0 ? p.ra - 360.0 : p.ra;
  return 100.0 + 20.0 * std::sin(ra * 90.0) * std::cos(p.dec * 70.0) + 5.0 * p.dec;
}

Wcs mosaic_tract_wcs(const SkyPoint& center, long width, long height) {
  pixserve::wcs::TanParameters t;
  t.crval = center;
  t.crpix = {0.5 * static_cast<double>(width) - 0.5, 0.5 * static_cast<double>(height) - 0.5};
  t.cd = {-kMosaicScale, 0.0, 0.0, kMosaicScale};
  return Wcs::tan(t);
}

// One tract of 2 x 1 patches (120 x 60 inner pixels) about `center`.
std::vector<std::filesystem::path> write_tract(const std::string& name, const SkyPoint& center, float offset) {
  const Wcs tract = mosaic_tract_wcs(center, 2 * kPatchInner, kPatchInner);
  std::vector<std::filesystem::path> files;
  for (int px = 0; px < 2; ++px) {
    const PixelBox b{px * kPatchInner - kPatchBorder, -kPatchBorder, kPatchOuter, kPatchOuter};
    const Wcs w = tract.shifted(static_cast<double>(b.x0), static_cast<double>(b.y0));
    im::Exposure e(b.width, b.height);
    for (long y = 0; y < b.height; ++y) {
      for (long x = 0; x < b.width; ++x) {
        const SkyPoint s = w.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
        e.image.at(x, y) = static_cast<float>(mosaic_sky(s)) * (1.0F + offset);
        e.variance.at(x, y) = 4.0F;
        e.mask.at(x, y) = x == 30 && y == 30 ? 1 : 0;  // one flagged pixel per patch
      }
    }
    im::ExposureHeaders h;
    h.primary.set("DSTYPE", "deepCoadd");
    h.primary.set("PATCH", std::to_string(px) + ",0");
    const auto path = pixserve::testing::test_scratch_file(name + "_" + std::to_string(px) + ".fits");
    im::write_exposure(path, e, h, &w);
    files.push_back(path);
  }
  return files;
}

class MosaicTest : public ::testing::Test {
 protected:
  // Tract A about (10, 0), tract B about (10.05, 0): 180" apart in RA;
  // each 240" x 120" (plus 10" of patch border on every side), so they
  // overlap by about 80".
  const SkyPoint a_{10.0, 0.0}, b_{10.05, 0.0};
  std::vector<std::vector<std::filesystem::path>> tracts_{write_tract("mosaic_a", a_, 0.0F),
                                                          write_tract("mosaic_b", b_, kTractBOffset)};
  // The output: TAN about the midpoint, rotated 30 degrees, 2.5"/pixel,
  // holding a circle wider than both tracts.
  const pixserve::sky::Shape region_ = pixserve::sky::Circle{{10.025, 0.0}, 0.07};
  const im::MosaicGrid grid_ = im::tan_grid_covering(region_, {10.025, 0.0}, 2.5, 30.0, 10'000'000);
};

TEST_F(MosaicTest, ReproducesTheSkyAcrossTractsAndMarksUncoveredPixels) {
  const im::CoaddMosaic mosaic(tracts_, im::Kernel::lanczos3);
  const auto e = mosaic.warp(grid_, {0, 0, grid_.width, grid_.height});
  long with_data = 0, no_data = 0, worst_x = 0, worst_y = 0;
  double worst = 0.0;
  for (long y = 0; y < grid_.height; ++y) {
    for (long x = 0; x < grid_.width; ++x) {
      const SkyPoint s = grid_.wcs.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
      const bool inside_a = std::abs((s.ra - a_.ra) * 3600.0) < 115.0 && std::abs(s.dec * 3600.0) < 55.0;
      const bool inside_b = std::abs((s.ra - b_.ra) * 3600.0) < 115.0 && std::abs(s.dec * 3600.0) < 55.0;
      // Beyond the patches' outer edges (130" and 70") by more than the kernel.
      const bool outside = std::abs(s.dec * 3600.0) > 75.0 || (s.ra - a_.ra) * 3600.0 < -135.0 ||
                           (s.ra - b_.ra) * 3600.0 > 135.0;
      if ((e.mask.at(x, y) & kMosaicNoData) != 0) {
        ++no_data;
        EXPECT_TRUE(std::isnan(e.image.at(x, y)));
        EXPECT_FALSE(inside_a || inside_b) << x << "," << y;
        continue;
      }
      ++with_data;
      EXPECT_FALSE(outside) << x << "," << y;
      const double want = mosaic_sky(s);
      const double got = e.image.at(x, y) / (e.image.at(x, y) > want * (1.0 + kTractBOffset / 2) ? 1.0 + kTractBOffset : 1.0);
      if (std::abs(got - want) > worst) worst = std::abs(got - want), worst_x = x, worst_y = y;
      EXPECT_GT(e.variance.at(x, y), 0.0F);
      EXPECT_LE(e.variance.at(x, y), 4.0F * 1.2F);
    }
  }
  EXPECT_GT(with_data, grid_.pixels() / 6);  // 0.0039 of the grid's 0.0196 square degrees
  EXPECT_GT(no_data, 0);
  EXPECT_LT(worst, 0.2) << "at " << worst_x << "," << worst_y;  // 0.2 of a 100 level: 0.2%
}

TEST_F(MosaicTest, EachPixelComesFromTheTractWithTheNearestTangentPoint) {
  const im::CoaddMosaic mosaic(tracts_, im::Kernel::bilinear);
  const auto e = mosaic.warp(grid_, {0, 0, grid_.width, grid_.height});
  long from_a = 0, from_b = 0;
  for (long y = 0; y < grid_.height; ++y) {
    for (long x = 0; x < grid_.width; ++x) {
      if ((e.mask.at(x, y) & kMosaicNoData) != 0) continue;
      const SkyPoint s = grid_.wcs.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
      const double da = pixserve::sky::angular_distance_deg(s, a_), db = pixserve::sky::angular_distance_deg(s, b_);
      if (std::abs(da - db) * 3600.0 < 5.0) continue;  // within two pixels of the dividing line
      // Both tracts cover RA 10.0142 .. 10.0358: there the nearer one gives it.
      const bool in_both = s.ra > 10.016 && s.ra < 10.034 && std::abs(s.dec) < 0.015;
      if (!in_both) continue;
      const double want = mosaic_sky(s);
      const bool b_value = e.image.at(x, y) > want * (1.0 + kTractBOffset / 2);
      EXPECT_EQ(b_value, db < da) << x << "," << y;
      (db < da ? from_b : from_a) += 1;
    }
  }
  EXPECT_GT(from_a, 100);
  EXPECT_GT(from_b, 100);
}

TEST_F(MosaicTest, AnyStripEqualsTheSameRowsOfTheWhole) {
  const im::CoaddMosaic mosaic(tracts_, im::Kernel::lanczos3);
  const auto whole = mosaic.warp(grid_, {0, 0, grid_.width, grid_.height});
  for (const PixelBox b : {PixelBox{0, 0, grid_.width, 7}, PixelBox{0, 33, grid_.width, 41},
                           PixelBox{13, 50, 29, 17}, PixelBox{0, grid_.height - 1, grid_.width, 1}}) {
    const auto part = mosaic.warp(grid_, b);
    long differ = 0;
    for (long y = 0; y < b.height; ++y) {
      for (long x = 0; x < b.width; ++x) {
        const long wx = b.x0 + x, wy = b.y0 + y;
        differ += std::bit_cast<std::uint32_t>(part.image.at(x, y)) != std::bit_cast<std::uint32_t>(whole.image.at(wx, wy)) ||
                  std::bit_cast<std::uint32_t>(part.variance.at(x, y)) != std::bit_cast<std::uint32_t>(whole.variance.at(wx, wy)) ||
                  part.mask.at(x, y) != whole.mask.at(wx, wy);
      }
    }
    EXPECT_EQ(differ, 0) << "box " << b.x0 << "," << b.y0 << " " << b.width << "x" << b.height;
  }
  EXPECT_THROW(mosaic.warp(grid_, {0, 0, grid_.width + 1, 1}), std::invalid_argument);
  EXPECT_THROW(mosaic.warp(grid_, {0, 0, 0, 1}), std::invalid_argument);
}

TEST_F(MosaicTest, MaskBitsAreOredOverTheKernelFootprint) {
  // On tract A's own grid the kernel copies pixels, flags included; with a
  // half-pixel shift Lanczos-3 spreads a flag over the 6 x 6 pixels it reads.
  const im::CoaddMosaic mosaic({tracts_[0]}, im::Kernel::lanczos3);
  const Wcs tract = mosaic_tract_wcs(a_, 2 * kPatchInner, kPatchInner);
  const im::MosaicGrid same{tract, 2 * kPatchInner, kPatchInner};
  const auto copied = mosaic.warp(same, {0, 0, same.width, same.height});
  long flagged = 0;
  for (auto m : copied.mask.pixels) flagged += (m & 1) != 0;
  EXPECT_EQ(flagged, 2);  // one per patch (both inside the inner regions)
  const im::MosaicGrid shifted{tract.shifted(0.5, 0.5), 2 * kPatchInner, kPatchInner};
  const auto spread = mosaic.warp(shifted, {0, 0, shifted.width, shifted.height});
  flagged = 0;
  for (auto m : spread.mask.pixels) flagged += (m & 1) != 0;
  EXPECT_EQ(flagged, 2 * 36);
}

TEST_F(MosaicTest, OnTheTractsOwnGridPixelsAreCopiedAsTheWarpWouldGiveThem) {
  // A grid on tract A's pixels, shifted by whole pixels and reaching past
  // its patches: the copy (CoaddMosaic's path) equals the resampling warp
  // bit for bit, flags, NaNs and NO_DATA included.
  const Wcs tract = mosaic_tract_wcs(a_, 2 * kPatchInner, kPatchInner);
  const im::MosaicGrid shifted{tract.shifted(-7.0, 4.0), 2 * kPatchInner + 20, kPatchInner};
  const im::CoaddMosaic mosaic({tracts_[0]}, im::Kernel::lanczos3);
  const auto copied = mosaic.warp(shifted, {0, 0, shifted.width, shifted.height});
  const im::TractPatches patches(tracts_[0], im::Kernel::lanczos3);
  ASSERT_TRUE(patches.whole_pixel_shift(shifted.wcs));
  const auto warped = patches.warp(shifted.wcs, shifted.width, shifted.height, {0, 0, shifted.width, shifted.height});
  long differ = 0, no_data = 0;
  for (size_t i = 0; i < copied.image.pixels.size(); ++i) {
    differ += std::bit_cast<std::uint32_t>(copied.image.pixels[i]) != std::bit_cast<std::uint32_t>(warped.image.pixels[i]) ||
              std::bit_cast<std::uint32_t>(copied.variance.pixels[i]) != std::bit_cast<std::uint32_t>(warped.variance.pixels[i]) ||
              copied.mask.pixels[i] != warped.mask.pixels[i];
    no_data += (copied.mask.pixels[i] & kMosaicNoData) != 0;
  }
  EXPECT_EQ(differ, 0);
  EXPECT_GT(no_data, 0);  // the columns past the tract
  EXPECT_FALSE(patches.whole_pixel_shift(tract.shifted(0.5, 0.0)));
}

TEST(MosaicGrid, CoversARegionAcrossRaZero) {
  const pixserve::sky::Shape c = pixserve::sky::Circle{{359.98, 10.0}, 0.05};
  const auto g = im::tan_grid_covering(c, im::region_center(c), 1.0, 0.0, 1'000'000);
  EXPECT_NEAR(static_cast<double>(g.width), 2 * 0.05 * 3600.0 / std::cos(0.0), 3.0);
  EXPECT_NEAR(static_cast<double>(g.height), 2 * 0.05 * 3600.0, 3.0);
  const SkyPoint left = g.wcs.pixel_to_sky({0.0, static_cast<double>(g.height - 1) / 2});
  const SkyPoint right = g.wcs.pixel_to_sky({static_cast<double>(g.width - 1), static_cast<double>(g.height - 1) / 2});
  // East is left: the left edge is past RA 0, the right edge before it.
  EXPECT_LT(left.ra, 1.0);
  EXPECT_GT(right.ra, 359.0);
  EXPECT_NEAR(pixserve::sky::angular_distance_deg(left, {359.98, 10.0}), 0.05, 0.001);
}

TEST(MosaicGrid, CoversARegionAroundAPole) {
  const pixserve::sky::Shape c = pixserve::sky::Circle{{0.0, -89.98}, 0.05};
  const auto g = im::tan_grid_covering(c, im::region_center(c), 1.0, 0.0, 1'000'000);
  const auto pole = g.wcs.sky_to_pixel({123.0, -90.0});
  EXPECT_GT(pole.x, 0.0);
  EXPECT_LT(pole.x, static_cast<double>(g.width - 1));
  EXPECT_GT(pole.y, 0.0);
  EXPECT_LT(pole.y, static_cast<double>(g.height - 1));
  // A circle on the pole itself (where bearings have no meaning) is a circle.
  const pixserve::sky::Shape on_pole = pixserve::sky::Circle{{0.0, -90.0}, 0.05};
  const auto gp = im::tan_grid_covering(on_pole, im::region_center(on_pole), 1.0, 0.0, 1'000'000);
  EXPECT_NEAR(static_cast<double>(gp.width), 2 * 0.05 * 3600.0, 3.0);
  EXPECT_NEAR(static_cast<double>(gp.height), 2 * 0.05 * 3600.0, 3.0);
  // A RANGE over every RA down to the pole is centred on it.
  const pixserve::sky::Shape cap = pixserve::sky::RaDecRange{0.0, 360.0, -90.0, -89.9};
  const auto center = im::region_center(cap);
  EXPECT_DOUBLE_EQ(center.dec, -90.0);
  const auto gc = im::tan_grid_covering(cap, center, 2.0, 45.0, 1'000'000);
  EXPECT_NEAR(static_cast<double>(gc.width), 2 * 0.1 * 3600.0 / 2.0, 3.0);
}

TEST(MosaicGrid, RefusesBadScalesAbsurdSizesAndTooWideRegions) {
  const pixserve::sky::Shape c = pixserve::sky::Circle{{53.0, -28.0}, 1.0};
  EXPECT_THROW(im::tan_grid_covering(c, {53.0, -28.0}, 0.0, 0.0, 1'000'000'000), std::invalid_argument);
  EXPECT_THROW(im::tan_grid_covering(c, {53.0, -28.0}, -1.0, 0.0, 1'000'000'000), std::invalid_argument);
  EXPECT_THROW(im::tan_grid_covering(c, {53.0, -28.0}, std::nan(""), 0.0, 1'000'000'000), std::invalid_argument);
  try {
    im::tan_grid_covering(c, {53.0, -28.0}, 0.0001, 0.0, 1'000'000'000);
    FAIL() << "a grid of 5e15 pixels was made";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("at most 1000000000 pixels"), std::string::npos) << e.what();
  }
  const pixserve::sky::Shape wide = pixserve::sky::Circle{{53.0, -28.0}, 85.0};
  EXPECT_THROW(im::tan_grid_covering(wide, {53.0, -28.0}, 3600.0, 0.0, 1'000'000'000), std::invalid_argument);
  EXPECT_THROW(im::CoaddMosaic({}, im::Kernel::lanczos3), std::invalid_argument);
}

}  // namespace
