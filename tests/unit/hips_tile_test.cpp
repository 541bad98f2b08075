// HiPS tiles: the pixel -> HEALPix cell layout, the HPX WCS written into FITS
// tiles (every pixel centre on its cell centre, on every kind of base face),
// PNG/JPEG tile files (the stretches and encoders: image_render_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <ostream>

#include "fits/fits.hpp"
#include "hips/image_io.hpp"
#include "hips/properties.hpp"
#include "hips/tile.hpp"
#include "sky/healpix.hpp"
#include "test_scratch.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::hips {

// How gtest (and so ctest's test names) prints a tile: by its fields, not by
// the struct's bytes, whose padding differs from build to build.
void PrintTo(const TileId& tile, std::ostream* out) { *out << "order " << tile.order << " pixel " << tile.npix; }

namespace {

TEST(HipsTile, PathLayout) {
  EXPECT_EQ(tile_path({3, 5}, "png"), "Norder3/Dir0/Npix5.png");
  EXPECT_EQ(tile_path({11, 123456}, "fits"), "Norder11/Dir120000/Npix123456.fits");
  EXPECT_TRUE(valid_tile(0, 11));
  EXPECT_FALSE(valid_tile(0, 12));
  EXPECT_FALSE(valid_tile(-1, 0));
  EXPECT_FALSE(valid_tile(21, 0));
  EXPECT_THROW(TileGeometry({1, 48}), std::invalid_argument);
}

TEST(HipsTile, PixelsAreTheCellsNineOrdersDeeper) {
  const TileId t{4, 1234};
  const TileGeometry g(t);
  // Every pixel's cell lies inside the tile's cell.
  for (long y = 0; y < kTileWidth; y += 37) {
    for (long x = 0; x < kTileWidth; x += 41) EXPECT_EQ(g.cell(x, y) >> 18, t.npix);
  }
  // (0, 511) is the first cell; the rows run down the face's x axis (bit 0
  // of the nested index), the columns along its y axis (bit 1), as in
  // Hipsgen's tiles.
  EXPECT_EQ(g.cell(0, 511), t.npix << 18);
  EXPECT_EQ(g.cell(0, 510), (t.npix << 18) + 1);
  EXPECT_EQ(g.cell(1, 511), (t.npix << 18) + 2);
  EXPECT_EQ(g.cell(1, 510), (t.npix << 18) + 3);
  EXPECT_EQ(g.cell(511, 0), (t.npix << 18) + (1 << 18) - 1);
  // Centres agree with sky::cell_center.
  const auto c = g.center(100, 200);
  const auto ref = sky::cell_center(g.cell(100, 200), t.order + 9);
  EXPECT_NEAR(sky::angular_distance_deg(c, ref), 0.0, 1e-9);
}

TEST(HipsTile, ChildrenSitInTheirQuadrant) {
  const TileId p{5, 777};
  const TileGeometry pg(p);
  for (int q = 0; q < 4; ++q) {
    const TileId child{6, p.npix * 4 + q};
    EXPECT_EQ(parent(child), p);
    const auto [x0, y0] = child_offset(q);
    // Child pixels (2x .. 2x+1, 2y .. 2y+1) lie inside parent pixel (x0 + x, y0 + y).
    const TileGeometry cg(child);
    for (long k : {0L, 17L, 255L}) {
      for (long dx : {0L, 1L}) {
        for (long dy : {0L, 1L}) {
          EXPECT_EQ(cg.cell(2 * k + dx, 2 * k + dy) >> 2, pg.cell(x0 + k, y0 + k)) << "quadrant " << q;
        }
      }
    }
  }
}

// The FITS tile's WCS puts every pixel on its HEALPix cell centre.
class HipsTileWcs : public ::testing::TestWithParam<TileId> {};

TEST_P(HipsTileWcs, PixelCentresAreCellCentres) {
  const TileId t = GetParam();
  const pixserve::testing::ScratchDir scratch;
  const auto path = scratch.dir / "tile.fits";
  write_fits_tile(path, t, fits::Image<float>(kTileWidth, kTileWidth, 1.0F));
  auto file = fits::File::open(path);
  EXPECT_EQ(file.read_int("ORDER"), t.order);
  EXPECT_EQ(file.read_int("NPIX"), t.npix);
  EXPECT_EQ(file.image_bitpix(), -32);
  const auto w = wcs::Wcs::from_fits(file);
  const TileGeometry g(t);
  const double cell = sky::cell_size_deg(t.order + 9);
  for (long y : {0L, 1L, 100L, 255L, 400L, 511L}) {
    for (long x : {0L, 3L, 256L, 511L}) {
      const auto s = w.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
      EXPECT_LT(sky::angular_distance_deg(s, g.center(x, y)), 1e-3 * cell) << "pixel " << x << "," << y;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Faces, HipsTileWcs,
                         ::testing::Values(TileId{3, 0}, TileId{3, 3 * 64 + 21}, TileId{3, 4 * 64 + 40},
                                           TileId{3, 7 * 64 + 5}, TileId{6, 6 * 4096 + 1000},
                                           TileId{3, 9 * 64 + 63}, TileId{11, 8 * 4194304LL + 12345},
                                           TileId{11, 4 * 4194304LL + 3000000}),
                         // Named by order and pixel, for names that stay the same between builds.
                         [](const ::testing::TestParamInfo<TileId>& info) {
                           return "order" + std::to_string(info.param.order) + "_pixel" + std::to_string(info.param.npix);
                         });

TEST(HipsImages, PngRoundTripAndJpegMagic) {
  const pixserve::testing::ScratchDir scratch;
  image::Raster r{.width = 3, .height = 2, .channels = 2, .pixels = {0, 255, 10, 255, 20, 0, 30, 255, 40, 255, 250, 255}};
  write_png(scratch.dir / "a" / "t.png", r);
  const auto back = image::read_png_rgba(scratch.dir / "a" / "t.png");
  ASSERT_EQ(back.width, 3);
  ASSERT_EQ(back.height, 2);
  EXPECT_EQ(back.pixels[4 * 1 + 0], 10);
  EXPECT_EQ(back.pixels[4 * 2 + 3], 0);  // transparent
  EXPECT_EQ(back.pixels[4 * 5 + 0], 250);
  write_jpeg(scratch.dir / "t.jpg", r);
  std::ifstream in(scratch.dir / "t.jpg", std::ios::binary);
  unsigned char magic[2] = {};
  in.read(reinterpret_cast<char*>(magic), 2);
  EXPECT_EQ(magic[0], 0xFF);
  EXPECT_EQ(magic[1], 0xD8);
  EXPECT_THROW(write_png(scratch.dir / "bad.png", image::Raster{.width = 2, .height = 2, .channels = 1, .pixels = {1}}),
               std::invalid_argument);
  // No temporary file left behind.
  for (const auto& e : std::filesystem::directory_iterator(scratch.dir)) {
    EXPECT_EQ(e.path().extension() == ".tmp", false) << e.path();
  }
}

TEST(HipsProperties, ParseSetAndText) {
  auto p = Properties::parse("# comment\nobs_title = A map \nhips_order=11\n\nbroken line\n");
  EXPECT_EQ(p.get("obs_title"), "A map");
  EXPECT_EQ(p.get("hips_order"), "11");
  p.set("hips_order", "5");
  p.set("x", "a\nb");
  EXPECT_EQ(p.get("x"), "a b");
  const auto again = Properties::parse(p.text());
  EXPECT_EQ(again.get("hips_order"), "5");
  EXPECT_EQ(again.entries().size(), 3u);
  EXPECT_EQ(required_keywords().size(), 9u);
}

}  // namespace
}  // namespace pixserve::hips
