// Streamed FITS responses of SODA /sync: the whole file laid out before its
// first byte is sent (so Content-Length is exact and every error is known),
// then written straight to the client: headers from memory, pixels copied
// with pread from uncompressed source files in whole rows, padded to 2880.
//
// The headers come from image::append_cutout_headers (the cutout engine's own
// cards, with a placeholder pixel per plane) written to a small scratch FITS
// file; FitsLayout takes that file apart and puts the planes' pixels in. The
// bytes are those of the file the engine writes with cfitsio, including how
// cfitsio reads float planes (every NaN or infinity becomes the quiet NaN,
// every zero or denormal +0).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/files.hpp"
#include "image/cutout.hpp"

namespace pixserve::services {

// An open source file, shared by the layouts that read it.
class SourceFile {
 public:
  // Throws std::system_error when the file cannot be opened.
  explicit SourceFile(const std::filesystem::path& path);
  ~SourceFile();
  SourceFile(const SourceFile&) = delete;
  SourceFile& operator=(const SourceFile&) = delete;
  int fd() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Where an HDU's data lie in a file, from its header cards.
struct RawHdu {
  std::uint64_t header_offset = 0;
  std::uint64_t data_offset = 0;
  std::uint64_t data_bytes = 0;  // without padding
  int bitpix = 0;                // as stored
  std::vector<long> naxis{};
  // Stored pixels equal the values (no BSCALE/BZERO, not tile-compressed):
  // their bytes are the bytes of a plane written with this BITPIX.
  bool plain = false;
};

// The HDUs of a FITS file (headers read with pread). Throws
// std::runtime_error for a file that is not FITS as this reader knows it.
std::vector<RawHdu> raw_hdus(const SourceFile& file);

// A FITS file to send: literal bytes and pixel rows of source files.
class FitsLayout {
 public:
  void literal(std::string_view bytes);
  // `rows` rows of `row_bytes` bytes, the first at `offset` of `file`, rows
  // `stride` bytes apart; float_bytes 4 or 8 for float planes (cfitsio's
  // NaN and underflow rules applied), 0 for integers (copied as they are).
  void rows(std::shared_ptr<const SourceFile> file, std::uint64_t offset, std::uint64_t stride,
            std::uint64_t row_bytes, long rows, int float_bytes);
  // Zeros to the next multiple of 2880 bytes.
  void pad();
  std::uint64_t size() const noexcept { return size_; }
  // Sends every byte; false when the sink refused them. Throws
  // std::system_error when a source cannot be read.
  bool write(const http::ByteSink& sink) const;

 private:
  struct Segment {
    std::string bytes{};  // literal (when file is null)
    std::shared_ptr<const SourceFile> file{};
    std::uint64_t offset = 0, stride = 0, row_bytes = 0;
    long rows = 0;
    int float_bytes = 0;
  };
  std::vector<Segment> segments_;
  std::uint64_t size_ = 0;
};

// Builds the response file from the scratch file holding the headers
// (image::append_cutout_headers' output, primary HDU first): `planes` lists,
// for each extension HDU in order, its pixels, and `sources` the open file
// and raw HDUs of the source each plane comes from. Throws std::logic_error
// when the scratch file does not have that shape.
struct StreamedPlane {
  image::PlanePixels pixels;
  std::shared_ptr<const SourceFile> file;
  RawHdu hdu;
};
FitsLayout layout_from_headers(const std::string& headers_file, const std::vector<StreamedPlane>& planes);

}  // namespace pixserve::services
