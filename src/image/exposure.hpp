// An exposure: the image, mask and variance planes of one processed image
// (calexp, coadd patch, or a cutout of one), and its file layout: primary
// header of metadata, then HDUs IMAGE (float32), MASK (int32 with MP_
// keywords) and VARIANCE (float32), each carrying the same WCS
// (docs/fits-conventions.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "fits/fits.hpp"
#include "image/header.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

struct Exposure {
  fits::Image<float> image;
  fits::Image<std::int32_t> mask;
  fits::Image<float> variance;

  Exposure() = default;
  Exposure(long width, long height)
      : image(width, height, 0.0F), mask(width, height, 0), variance(width, height, 0.0F) {}
  long width() const noexcept { return image.width; }
  long height() const noexcept { return image.height; }
};

struct ExposureHeaders {
  HeaderCards primary;   // metadata of the primary HDU
  HeaderCards image;     // extra cards of IMAGE (e.g. BUNIT)
  HeaderCards variance;  // extra cards of VARIANCE
};

// Writes the exposure (creating or truncating path). wcs, when given, goes
// into every plane's header.
void write_exposure(const std::filesystem::path& path, const Exposure& exposure, const ExposureHeaders& headers,
                    const wcs::Wcs* wcs);

// The same layout without pixels: IMAGE, MASK and VARIANCE are header-only
// HDUs (NAXIS = 0). The primary header should carry DETSIZE so readers know
// the size the WCS refers to (as ingest does for such files).
void write_exposure_headers(const std::filesystem::path& path, const ExposureHeaders& headers, const wcs::Wcs* wcs);

// What an exposure file says of itself without its pixels: the primary
// metadata (read_metadata_cards), the IMAGE plane's WCS and the image size
// (NAXIS1/2 of IMAGE, or DETSIZE for a header-only file).
struct ExposureFrame {
  HeaderCards primary;
  wcs::Wcs wcs;
  long width = 0, height = 0;
};
// Throws fits::FitsError / wcs::WcsError / std::invalid_argument for a file
// without an IMAGE plane, WCS or size.
ExposureFrame read_exposure_frame(const std::filesystem::path& path);

// Reads the three planes (whole, or the pixels of box) of an exposure file,
// tile-compressed or not.
Exposure read_exposure(const std::filesystem::path& path, const std::optional<fits::PixelBox>& box = std::nullopt);

}  // namespace pixserve::image
