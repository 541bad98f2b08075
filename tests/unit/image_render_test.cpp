// image/render: the asinh stretches (grey, colour) and PNG/JPEG encoding.
#include <gtest/gtest.h>
#include <png.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <random>
#include <string>

#include "fits/fits.hpp"
#include "image/render.hpp"
#include "test_scratch.hpp"

namespace pixserve::image {
namespace {

TEST(ImageRender, GreyStretchFlipsRowsAndKeepsBlankTransparent) {
  fits::Image<float> tile(2, 2, 0.0F);
  tile.at(0, 0) = std::nanf("");
  tile.at(1, 1) = 1e9F;
  const auto cut = cut_from_background(0.0, 1.0);
  const auto r = grey_raster(tile, cut, BlankPixels::transparent);
  ASSERT_EQ(r.channels, 2);
  // FITS row 0 is the PNG's last row.
  EXPECT_EQ(r.pixels[(1 * 2 + 0) * 2 + 1], 0);    // (0,0) blank -> transparent
  EXPECT_EQ(r.pixels[(0 * 2 + 1) * 2 + 0], 255);  // (1,1) bright -> white, first row
  EXPECT_GT(grey_level(10.0F, cut), grey_level(1.0F, cut));
  EXPECT_EQ(grey_level(-100.0F, cut), 0);
}

TEST(ImageRender, GreyWithoutAlphaHasBlankPixelsBlack) {
  fits::Image<float> image(2, 1, 1e9F);
  image.at(0, 0) = std::nanf("");
  const auto r = grey_raster(image, cut_from_background(0.0, 1.0), BlankPixels::black);
  ASSERT_EQ(r.channels, 1);
  ASSERT_EQ(r.pixels.size(), 2u);
  EXPECT_EQ(r.pixels[0], 0);
  EXPECT_EQ(r.pixels[1], 255);
}

TEST(ImageRender, CutFromBackgroundReplacesAMissingNoise) {
  const auto c = cut_from_background(std::nan(""), 0.0);
  EXPECT_EQ(c.sky, 0.0);
  EXPECT_EQ(c.noise, 1.0);
  EXPECT_EQ(c.lo, -2.0);
  EXPECT_EQ(c.hi, 500.0);
  EXPECT_EQ(c.soft, 3.0);
}

TEST(ImageRender, ColourKeepsTheHueOfABrightSource) {
  fits::Image<float> red(1, 1, 1000.0F), green(1, 1, 500.0F), blue(1, 1, 100.0F);
  const auto c = cut_from_background(0.0, 1.0);
  const auto r = color_raster(red, green, blue, {c, c, c});
  EXPECT_EQ(r.pixels[0], 255);
  EXPECT_GT(r.pixels[0], r.pixels[1]);
  EXPECT_GT(r.pixels[1], r.pixels[2]);
  EXPECT_EQ(r.pixels[3], 255);
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Raster random_raster(long width, long height, int channels, std::mt19937& random) {
  Raster r{.width = width, .height = height, .channels = channels, .pixels = {}};
  r.pixels.resize(static_cast<std::size_t>(width * height * channels));
  std::uniform_int_distribution<int> level(0, 255);
  for (auto& p : r.pixels) p = static_cast<std::uint8_t>(level(random) / 16 * 16);  // some runs to compress
  return r;
}

// The sRGB PNG is the file libpng's simplified writer makes (what HiPS tiles
// were written with), to the byte.
TEST(ImageRender, SrgbPngIsTheSimplifiedWritersFile) {
  const auto dir = pixserve::testing::test_scratch_dir();
  std::mt19937 random(7);
  for (int channels = 1; channels <= 4; ++channels) {
    const auto r = random_raster(37, 23, channels, random);
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(r.width);
    image.height = static_cast<png_uint_32>(r.height);
    image.format = channels == 1   ? PNG_FORMAT_GRAY
                   : channels == 2 ? PNG_FORMAT_GA
                   : channels == 3 ? PNG_FORMAT_RGB
                                   : PNG_FORMAT_RGBA;
    const auto path = dir / ("simplified" + std::to_string(channels) + ".png");
    ASSERT_TRUE(png_image_write_to_file(&image, path.c_str(), 0, r.pixels.data(), 0, nullptr)) << image.message;
    EXPECT_EQ(encode_png(r, PngColorSpace::srgb), file_bytes(path)) << channels << " channels";
  }
}

TEST(ImageRender, PngStatesItsColourSpaceOnlyWhenAskedAndKeepsThePixels) {
  const auto dir = pixserve::testing::test_scratch_dir();
  std::mt19937 random(11);
  const auto rgb = random_raster(5, 4, 3, random);
  for (auto space : {PngColorSpace::unstated, PngColorSpace::srgb}) {
    const auto bytes = encode_png(rgb, space);
    EXPECT_EQ(bytes.find("sRGB") != std::string::npos, space == PngColorSpace::srgb);
    const auto path = dir / "rgb.png";
    std::ofstream(path, std::ios::binary) << bytes;
    const auto back = read_png_rgba(path);
    ASSERT_EQ(back.pixels.size(), 5u * 4u * 4u);
    for (std::size_t p = 0; p < 5 * 4; ++p) {
      for (std::size_t c = 0; c < 3; ++c) EXPECT_EQ(back.pixels[p * 4 + c], rgb.pixels[p * 3 + c]);
      EXPECT_EQ(back.pixels[p * 4 + 3], 255);
    }
  }
}

TEST(ImageRender, RejectsABadShape) {
  const Raster bad{.width = 2, .height = 2, .channels = 1, .pixels = {1}};
  EXPECT_THROW(encode_png(bad, PngColorSpace::unstated), std::invalid_argument);
  EXPECT_THROW(encode_jpeg(bad), std::invalid_argument);
}

TEST(ImageRender, JpegDropsAlpha) {
  const Raster grey_alpha{.width = 2, .height = 1, .channels = 2, .pixels = {10, 255, 200, 0}};
  const Raster grey{.width = 2, .height = 1, .channels = 1, .pixels = {10, 200}};
  const auto bytes = encode_jpeg(grey_alpha);
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[0]), 0xFF);
  EXPECT_EQ(static_cast<unsigned char>(bytes[1]), 0xD8);
  EXPECT_EQ(bytes, encode_jpeg(grey));
}

}  // namespace
}  // namespace pixserve::image
