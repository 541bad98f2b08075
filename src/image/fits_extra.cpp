#include "image/fits_extra.hpp"

#include <fitsio.h>
#include <fmt/format.h>

#include <memory>
#include <system_error>
#include <utility>

#include "fits/fits.hpp"

namespace pixserve::image {
namespace {

std::string cfitsio_message(int status) {
  char text[FLEN_STATUS];
  fits_get_errstatus(status, text);
  std::string out = fmt::format("{} (status {})", text, status);
  char msg[FLEN_ERRMSG];
  while (fits_read_errmsg(msg) != 0) out += fmt::format("; {}", msg);
  return out;
}

// Closes the fitsfile on every path out; the explicit close() reports errors.
class Handle {
 public:
  Handle() = default;
  Handle(Handle&& other) noexcept : f_(std::exchange(other.f_, nullptr)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle& operator=(Handle&&) = delete;
  ~Handle() {
    if (f_ != nullptr) {
      int status = 0;
      fits_close_file(f_, &status);
    }
  }
  fitsfile** out() { return &f_; }
  fitsfile* get() const { return f_; }
  int close() {
    int status = 0;
    if (f_ != nullptr) fits_close_file(f_, &status);
    f_ = nullptr;
    return status;
  }

 private:
  fitsfile* f_ = nullptr;
};

void check(int status, const std::filesystem::path& path, std::string_view doing) {
  if (status != 0) throw fits::FitsError(path, fmt::format("{}: {}", doing, cfitsio_message(status)));
}

Handle create(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // truncate semantics; a missing file is fine
  Handle h;
  int status = 0;
  fits_create_diskfile(h.out(), path.c_str(), &status);
  check(status, path, "creating");
  return h;
}

}  // namespace

void compress_file(const std::filesystem::path& in, const std::filesystem::path& out,
                   const CompressionSettings& settings) {
  Handle src;
  int status = 0;
  fits_open_diskfile(src.out(), in.c_str(), READONLY, &status);
  check(status, in, "opening");
  Handle dst = create(out);
  int count = 0;
  fits_get_num_hdus(src.get(), &count, &status);
  check(status, in, "counting HDUs");
  for (int hdu = 1; hdu <= count; ++hdu) {
    int type = 0;
    fits_movabs_hdu(src.get(), hdu, &type, &status);
    check(status, in, fmt::format("moving to HDU {}", hdu));
    int naxis = 0, bitpix = 0;
    const bool compressible = hdu > 1 && type == IMAGE_HDU && fits_is_compressed_image(src.get(), &status) == 0 &&
                              fits_get_img_dim(src.get(), &naxis, &status) == 0 && naxis >= 1;
    check(status, in, "inspecting HDU");
    if (!compressible) {
      fits_copy_hdu(src.get(), dst.get(), 0, &status);
      check(status, out, fmt::format("copying HDU {}", hdu));
      continue;
    }
    long shape[2] = {1, 1};
    fits_get_img_size(src.get(), 2, shape, &status);
    fits_get_img_type(src.get(), &bitpix, &status);
    const bool is_float = bitpix < 0;
    long tile[2] = {shape[0], 1};
    fits_set_compression_type(dst.get(), RICE_1, &status);
    fits_set_tile_dim(dst.get(), 2, tile, &status);
    fits_set_quantize_level(dst.get(), is_float ? settings.quantize_level : 0.0F, &status);
    if (is_float) {
      fits_set_quantize_method(dst.get(), SUBTRACTIVE_DITHER_1, &status);
      // Offset per HDU so two planes of one file do not share a dither pattern.
      fits_set_dither_seed(dst.get(), 1 + (settings.dither_seed - 1 + hdu) % 10000, &status);
    }
    check(status, out, "setting compression parameters");
    fits_img_compress(src.get(), dst.get(), &status);
    check(status, out, fmt::format("compressing HDU {}", hdu));
    fits_set_compression_type(dst.get(), NOCOMPRESS, &status);
  }
  check(dst.close(), out, "closing");
}

void create_with_empty_extensions(const std::filesystem::path& path, const std::vector<std::string>& extnames) {
  Handle h = create(path);
  int status = 0;
  fits_create_img(h.get(), BYTE_IMG, 0, nullptr, &status);
  check(status, path, "creating the primary HDU");
  for (const auto& name : extnames) {
    // BITPIX is irrelevant without pixels; 8 is what cfitsio writes for NAXIS = 0.
    fits_create_img(h.get(), BYTE_IMG, 0, nullptr, &status);
    fits_update_key_str(h.get(), "EXTNAME", name.c_str(), nullptr, &status);
    check(status, path, fmt::format("creating header-only HDU {}", name));
  }
  check(h.close(), path, "closing");
}

}  // namespace pixserve::image
