#include "image/exposure.hpp"

#include "image/mask.hpp"
#include "image/section.hpp"

namespace pixserve::image {
namespace {

fits::ImageWriteOptions plane(const char* extname) {
  fits::ImageWriteOptions o;
  o.extname = extname;
  return o;
}

template <typename T>
fits::Image<T> read_plane(fits::File& file, const char* extname, const std::optional<fits::PixelBox>& box) {
  if (!file.move_to_named_hdu(extname)) throw fits::FitsError(file.path(), std::string("no HDU named ") + extname);
  return box ? file.read_subset<T>(*box) : file.read_image<T>();
}

}  // namespace

void write_exposure(const std::filesystem::path& path, const Exposure& exposure, const ExposureHeaders& headers,
                    const wcs::Wcs* wcs) {
  auto file = fits::File::create(path);
  headers.primary.write_to(file);
  file.append_image(exposure.image, plane("IMAGE"));
  if (wcs != nullptr) wcs->write_to(file);
  headers.image.write_to(file);
  file.write_datasum();
  file.append_image(exposure.mask, plane("MASK"));
  if (wcs != nullptr) wcs->write_to(file);
  write_mask_keywords(file);
  file.write_datasum();
  file.append_image(exposure.variance, plane("VARIANCE"));
  if (wcs != nullptr) wcs->write_to(file);
  headers.variance.write_to(file);
  file.write_datasum();
  file.close();
}

void write_exposure_headers(const std::filesystem::path& path, const ExposureHeaders& headers, const wcs::Wcs* wcs) {
  auto file = fits::File::create(path);
  headers.primary.write_to(file);
  file.append_header_hdu("IMAGE");
  if (wcs != nullptr) wcs->write_to(file);
  headers.image.write_to(file);
  file.append_header_hdu("MASK");
  if (wcs != nullptr) wcs->write_to(file);
  write_mask_keywords(file);
  file.append_header_hdu("VARIANCE");
  if (wcs != nullptr) wcs->write_to(file);
  headers.variance.write_to(file);
  file.close();
}

ExposureFrame read_exposure_frame(const std::filesystem::path& path) {
  auto file = fits::File::open(path);
  file.move_to_hdu(1);
  HeaderCards primary = read_metadata_cards(file);
  const auto detsize = file.read_string("DETSIZE");
  if (!file.move_to_named_hdu("IMAGE")) throw fits::FitsError(path, "no HDU named IMAGE");
  wcs::Wcs wcs = wcs::Wcs::from_fits(file);
  const auto shape = file.image_shape();
  ExposureFrame frame{std::move(primary), std::move(wcs), 0, 0};
  if (shape.size() >= 2 && shape[0] > 0 && shape[1] > 0) {
    frame.width = shape[0];
    frame.height = shape[1];
  } else if (detsize) {
    const Section s = parse_section(*detsize);
    frame.width = s.width();
    frame.height = s.height();
  } else {
    throw fits::FitsError(path, "IMAGE has no pixels and the file no DETSIZE");
  }
  return frame;
}

Exposure read_exposure(const std::filesystem::path& path, const std::optional<fits::PixelBox>& box) {
  auto file = fits::File::open(path);
  Exposure e;
  e.image = read_plane<float>(file, "IMAGE", box);
  e.mask = read_plane<std::int32_t>(file, "MASK", box);
  e.variance = read_plane<float>(file, "VARIANCE", box);
  return e;
}

}  // namespace pixserve::image
