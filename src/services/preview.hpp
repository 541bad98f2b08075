// PNG previews of images: the first image plane (IMAGE for exposures),
// block-averaged to at most max_size pixels on a side, north-up as stored
// (FITS row 1 at the bottom), with an asinh stretch between the sky level
// and a few hundred noise sigmas. Generated on demand and cached.
#pragma once

#include <filesystem>
#include <string>

namespace pixserve::services {

inline constexpr int kPreviewMaxSize = 512;

// Renders the FITS file's image as an 8-bit grey PNG at `png` (written to a
// temporary file beside it, then renamed: readers never see a partial file).
// Throws std::runtime_error when the file holds no image.
void render_preview(const std::filesystem::path& fits, const std::filesystem::path& png, int max_size = kPreviewMaxSize);

// The cached preview of a dataset: REPO/cache/preview/<dataset_id>.png,
// rendered first when missing or older than the FITS file. dataset_id must
// be a safe identifier (the caller found it in the registry).
std::filesystem::path cached_preview(const std::filesystem::path& repository_root, const std::string& dataset_id,
                                     const std::filesystem::path& fits);

}  // namespace pixserve::services
