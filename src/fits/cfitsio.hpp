// Internal to src/fits: what the files of the cfitsio wrapper share. It
// includes fitsio.h, so nothing outside src/fits may include it; cfitsio is
// used nowhere else.
#pragma once

#include <fitsio.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "fits/fits.hpp"

namespace pixserve::fits {
namespace detail {

// Pops cfitsio's error-message stack and returns its newest messages
// ("; "-separated).
std::string pop_error_stack();
// cfitsio's text for a status, with the newest messages of its stack.
std::string status_text(int status);

constexpr int kMaxDitherSeed = 10000;  // cfitsio's dither seeds are 1..10000

inline void require_dither_seed(const std::filesystem::path& path, int seed) {
  if (seed < 0 || seed > kMaxDitherSeed) {
    throw FitsError(path, fmt::format("dither seed {} is outside 0..{}", seed, kMaxDitherSeed));
  }
}

// Compression settings live in the fitsfile and apply to every image created
// afterwards; this resets them on every exit so later HDUs are plain images.
struct ResetCompression {
  fitsfile* f;
  explicit ResetCompression(fitsfile* file) : f(file) {}
  ResetCompression(const ResetCompression&) = delete;
  ResetCompression& operator=(const ResetCompression&) = delete;
  ~ResetCompression() {
    // 0, not NOCOMPRESS: cfitsio treats any non-zero request (even
    // NOCOMPRESS = -1) as "create a compressed image".
    int s = 0;
    fits_set_compression_type(f, 0, &s);
    fits_set_dither_seed(f, 0, &s);
    if (s != 0) pop_error_stack();
  }
};

// Asks cfitsio to tile-compress the next image created in (or compressed
// into) f, a width x height plane of floats or integers.
inline void request_compression(fitsfile* f, Compression compression, float quantize_level, const std::vector<long>& tile_shape,
                         int dither_seed, bool is_float, long width, long height, int* status) {
  int type = RICE_1;
  switch (compression) {
    case Compression::rice: type = RICE_1; break;
    case Compression::gzip: type = GZIP_1; break;
    case Compression::hcompress: type = HCOMPRESS_1; break;
    case Compression::none: break;
  }
  // Unquantized floats can only be compressed losslessly by GZIP; RICE and
  // HCOMPRESS work on integers. Shuffled GZIP (GZIP_2) suits float bytes.
  if (is_float && quantize_level == 0.0F && type != GZIP_1) type = GZIP_2;
  fits_set_compression_type(f, type, status);
  std::vector<long> tile = tile_shape;
  if (tile.empty()) {
    // cfitsio's default: row by row; HCOMPRESS needs 2-D tiles of >= 4 rows.
    tile = {width, type == HCOMPRESS_1 ? std::min<long>(height, 16) : 1};
  }
  fits_set_tile_dim(f, static_cast<int>(tile.size()), tile.data(), status);
  // q = 0 tells cfitsio not to quantize (lossless); it is ignored for integers.
  fits_set_quantize_level(f, is_float ? quantize_level : 0.0F, status);
  // Without a seed of its own cfitsio seeds the dither from the clock.
  if (is_float && quantize_level != 0.0F && dither_seed != 0) fits_set_dither_seed(f, dither_seed, status);
}

}  // namespace detail

// Owns the fitsfile*. Closing in the destructor ignores errors: close()
// is the place to learn about them.
struct File::Handle {
  fitsfile* fptr = nullptr;
  explicit Handle(fitsfile* f) : fptr(f) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (fptr != nullptr) {
      int status = 0;
      fits_close_file(fptr, &status);
      if (status != 0) detail::pop_error_stack();  // nothing to report to from here
    }
  }
  // The fitsfile of an open File, or a FitsError for a moved-from/closed one.
  static fitsfile* get(const std::unique_ptr<Handle>& h, const std::filesystem::path& path) {
    if (!h || h->fptr == nullptr) throw FitsError(path, "file is not open");
    return h->fptr;
  }
  // As get(), but refuses read-only files up front: cfitsio would only fail
  // when flushing, i.e. in close() or silently in the destructor.
  static fitsfile* writable(const std::unique_ptr<Handle>& h, const std::filesystem::path& path,
                            std::string_view doing) {
    fitsfile* f = get(h, path);
    int mode = READWRITE, status = 0;
    fits_file_mode(f, &mode, &status);
    if (status != 0 || mode != READWRITE) {
      throw FitsError(path, fmt::format("{}: file is open read-only", doing));
    }
    return f;
  }
};

}  // namespace pixserve::fits
