// compress_copy (fits.hpp): a whole file copied HDU by HDU, image HDUs
// tile-compressed on the way.
#include "fits/cfitsio.hpp"

namespace pixserve::fits {

using namespace detail;  // the wrapper's shared pieces (cfitsio.hpp)

namespace {
void check_file(int status, const std::filesystem::path& path, std::string_view doing) {
  if (status != 0) throw FitsError(path, fmt::format("{}: {}", doing, status_text(status)));
}

struct CloseFitsfile {
  void operator()(fitsfile* f) const {
    int status = 0;
    fits_close_file(f, &status);
    if (status != 0) pop_error_stack();  // nothing to report to from here
  }
};
using OwnedFitsfile = std::unique_ptr<fitsfile, CloseFitsfile>;
}  // namespace

void compress_copy(const std::filesystem::path& in, const std::filesystem::path& out,
                   const CompressCopyOptions& options) {
  require_dither_seed(out, options.dither_seed);
  int status = 0;
  fitsfile* raw = nullptr;
  fits_open_diskfile(&raw, in.c_str(), READONLY, &status);
  check_file(status, in, "opening");
  OwnedFitsfile src(raw);
  std::error_code ec;
  std::filesystem::remove(out, ec);  // truncate semantics; a missing file is fine
  raw = nullptr;
  fits_create_diskfile(&raw, out.c_str(), &status);
  check_file(status, out, "creating");
  OwnedFitsfile dst(raw);
  int count = 0;
  fits_get_num_hdus(src.get(), &count, &status);
  check_file(status, in, "counting HDUs");
  for (int hdu = 1; hdu <= count; ++hdu) {
    int type = 0, naxis = 0;
    fits_movabs_hdu(src.get(), hdu, &type, &status);
    check_file(status, in, fmt::format("moving to HDU {}", hdu));
    // FITS forbids compressing the primary HDU.
    const bool compressible = options.compression != Compression::none && hdu > 1 && type == IMAGE_HDU &&
                              fits_is_compressed_image(src.get(), &status) == 0 &&
                              fits_get_img_dim(src.get(), &naxis, &status) == 0 && naxis >= 1;
    check_file(status, in, fmt::format("inspecting HDU {}", hdu));
    if (!compressible) {
      fits_copy_hdu(src.get(), dst.get(), 0, &status);
      check_file(status, out, fmt::format("copying HDU {}", hdu));
      continue;
    }
    std::vector<long> shape(static_cast<size_t>(naxis), 1);
    int bitpix = 0;
    fits_get_img_size(src.get(), naxis, shape.data(), &status);
    fits_get_img_type(src.get(), &bitpix, &status);
    check_file(status, in, fmt::format("reading the image size of HDU {}", hdu));
    const int seed = options.dither_seed == 0 ? 0 : 1 + (options.dither_seed - 1 + hdu) % kMaxDitherSeed;
    ResetCompression reset{dst.get()};
    request_compression(dst.get(), options.compression, options.quantize_level, options.tile_shape, seed, bitpix < 0,
                        shape[0], naxis > 1 ? shape[1] : 1, &status);
    check_file(status, out, "setting compression parameters");
    fits_img_compress(src.get(), dst.get(), &status);
    check_file(status, out, fmt::format("compressing HDU {}", hdu));
  }
  fits_close_file(dst.release(), &status);
  check_file(status, out, "closing");
}

}  // namespace pixserve::fits
