// Images for people: the asinh stretch from pixel values to 8-bit levels and
// PNG/JPEG encoding (libpng, libjpeg). Used by the dataset previews
// (services/preview.cpp) and the HiPS PNG/JPEG tiles (hips/).
//
// Stretch: one set of cut levels per image or per map (so that HiPS tiles
// match across borders and orders).
//   grey:   t = asinh((v - lo) / soft) / asinh((hi - lo) / soft), clipped to
//           [0, 1]: linear near the sky, logarithmic for bright sources
//   colour: Lupton et al. (2004) asinh on the mean of the three
//           background-subtracted, noise-scaled bands, which keeps hues of
//           bright objects instead of saturating them to white.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "fits/fits.hpp"

namespace pixserve::image {

// An 8-bit image with 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)
// channels, rows top-down as in PNG and JPEG.
struct Raster {
  long width = 0;
  long height = 0;
  int channels = 1;
  std::vector<std::uint8_t> pixels{};  // width * height * channels
};

// Cut levels of the asinh stretch.
struct Cut {
  double lo = 0.0;    // black (the sky level minus a little)
  double hi = 1.0;    // white
  double soft = 1.0;  // asinh softening (about the sky noise)
  double sky = 0.0;   // sky level
  double noise = 1.0; // sky noise
};

// lo = sky - 2 noise, soft = 3 noise, hi = sky + 500 noise, from the sky
// level and noise (image::estimate_background). A noise that is not positive
// counts as 1, a sky level that is not finite as 0.
Cut cut_from_background(double sky, double noise);

// 0 for a pixel that is not finite.
std::uint8_t grey_level(float value, const Cut& cut);

enum class BlankPixels {
  black,        // a grey raster (1 channel), blank pixels black
  transparent,  // grey + alpha (2 channels), blank pixels transparent
};
// A grey raster from an image in FITS layout (row 0 at the bottom): the
// raster's first row is the image's last.
Raster grey_raster(const fits::Image<float>& image, const Cut& cut, BlankPixels blank);
// An RGBA raster from the three bands (red, green, blue order), each with its
// own sky and noise; a pixel blank in all three is transparent.
Raster color_raster(const fits::Image<float>& red, const fits::Image<float>& green, const fits::Image<float>& blue,
                    const std::array<Cut, 3>& cuts);

// What a PNG says about its colour space.
enum class PngColorSpace {
  unstated,  // no colour chunk (previews)
  srgb,      // sRGB (with its gAMA and cHRM), as libpng's simplified API writes (HiPS tiles)
};
// The PNG file of the raster (8 bits per channel, default compression).
// Throws std::invalid_argument for a raster of a bad shape.
std::string encode_png(const Raster& image, PngColorSpace color_space);
// The JPEG file of the raster; JPEG drops an alpha channel (grey+alpha ->
// grey, RGBA -> RGB).
std::string encode_jpeg(const Raster& image, int quality = 90);
// Reads an 8-bit PNG as RGBA (for tests and tools).
Raster read_png_rgba(const std::filesystem::path& path);

}  // namespace pixserve::image
