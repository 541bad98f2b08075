// Tile files: FITS float tiles (BITPIX -32, NaN blank, with the tile's HPX
// WCS), 8-bit PNG (grey + alpha or RGBA: blank pixels transparent) and JPEG
// (grey or RGB: blank pixels black). Every file is written to a temporary
// name beside the target and renamed, so a reader (or a restarted run)
// never sees a partial file.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "hips/tile.hpp"
#include "image/render.hpp"

namespace pixserve::hips {

// PNG and JPEG tiles as image::encode_png (sRGB) and image::encode_jpeg make them.
void write_png(const std::filesystem::path& path, const image::Raster& image);
void write_jpeg(const std::filesystem::path& path, const image::Raster& image, int quality = 90);

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
