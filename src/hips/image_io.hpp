// Tile files: FITS float tiles (BITPIX -32, NaN blank, with the tile's HPX
// WCS), 8-bit PNG (grey + alpha or RGBA: blank pixels transparent) and JPEG
// (grey or RGB: blank pixels black). Every file is written to a temporary
// name beside the target and renamed, so a reader (or a restarted run)
// never sees a partial file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "hips/tile.hpp"

namespace pixserve::hips {

// An 8-bit image with 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)
// channels, rows top-down as in PNG and JPEG.
struct Raster {
  long width = 0;
  long height = 0;
  int channels = 1;
  std::vector<std::uint8_t> pixels{};  // width * height * channels
};

void write_png(const std::filesystem::path& path, const Raster& image);
// JPEG drops an alpha channel (grey+alpha -> grey, RGBA -> RGB).
void write_jpeg(const std::filesystem::path& path, const Raster& image, int quality = 90);
// Reads an 8-bit PNG as RGBA (for tests and tools).
Raster read_png_rgba(const std::filesystem::path& path);

// Writes a float tile with its WCS and HiPS keywords (ORDER, NPIX).
void write_fits_tile(const std::filesystem::path& path, const TileId& id, const fits::Image<float>& pixels);
// Writes a float image without tile WCS (Allsky).
void write_fits_image(const std::filesystem::path& path, const fits::Image<float>& pixels,
                      const std::vector<std::pair<std::string, long long>>& int_keys = {});
// The tile's pixels; nullopt when the file does not exist.
std::optional<fits::Image<float>> read_fits_tile(const std::filesystem::path& path);

// Writes bytes to path atomically (temporary file + rename).
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace pixserve::hips
