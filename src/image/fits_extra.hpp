// FITS operations that fits::File does not offer yet, done on closed files
// through cfitsio directly:
//  - tile compression of a whole file with a fixed dithering seed (cfitsio
//    otherwise seeds the quantization dither from the clock, so the same
//    image would compress to different bytes on every run);
//  - creating header-only image extensions (NAXIS = 0), which
//    fits::File::append_image refuses.
// They belong in fits::File (e.g. ImageWriteOptions::dither_seed and
// File::append_header_hdu); move them there when it grows them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace pixserve::image {

struct CompressionSettings {
  // cfitsio's q for float planes: quantization step = noise / q. Integer
  // planes are always compressed losslessly.
  float quantize_level = 16.0F;
  // Seed (1..10000) of the subtractive dither; the same seed gives the same bytes.
  int dither_seed = 1;
};

// Writes `out` (truncating it): a copy of `in` whose image extensions with
// pixels are RICE tile-compressed row by row (the fpack layout); the primary
// HDU and other HDUs are copied unchanged.
void compress_file(const std::filesystem::path& in, const std::filesystem::path& out,
                   const CompressionSettings& settings);

// Creates `path` (truncating it) with an empty primary HDU followed by one
// header-only image extension per name, EXTNAME set. Keywords are then
// written by opening the file with fits::File.
void create_with_empty_extensions(const std::filesystem::path& path, const std::vector<std::string>& extnames);

}  // namespace pixserve::image
