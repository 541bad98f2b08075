// Streamed FITS responses of SODA /sync: the whole file laid out before its
// first byte is sent (so Content-Length is exact and every error is known),
// then written straight to the client: headers from memory, pixels copied
// with pread from uncompressed source files in whole rows, padded to 2880.
//
// The headers are the cutout engine's own (image::cutout_headers, built in
// memory byte for byte as the engine writes them with cfitsio); the bytes
// are those of the file the engine writes, including how cfitsio reads
// float planes (every NaN or infinity becomes the quiet NaN, every zero or
// denormal +0). Source files are opened and described once and kept while
// they are in use (SourceCache).
#pragma once

#include <cstdint>
#include <exception>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  // One piece of each of `rows` rows: `bytes` bytes read from `file` at
  // offset + row * stride, or without a file, `fill` (one pixel's bytes)
  // repeated.
  struct RowRun {
    std::shared_ptr<const SourceFile> file{};
    std::uint64_t offset = 0, stride = 0, bytes = 0;
    std::string fill{};
  };
  // `rows` rows, each the runs in turn (a coadd cutout's rows across patches).
  void band(std::vector<RowRun> runs, long rows, int float_bytes);
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
    std::vector<RowRun> runs{};  // a band (then file is null)
  };
  std::vector<Segment> segments_;
  std::uint64_t size_ = 0;
};

// Where the pixels of one plane HDU are read: the open source file and the
// raw HDU of the plane in it; for a coadd plane across patches
// (image::PlanePixels::bands), the plane in each patch instead, numbered
// like the runs' patches (unused ones without a file).
struct PlaneSource {
  struct Patch {
    std::shared_ptr<const SourceFile> file{};
    RawHdu hdu{};
  };
  std::shared_ptr<const SourceFile> file{};
  RawHdu hdu{};
  std::vector<Patch> patches{};
};

// The response file: the primary header, then for each plane HDU its header
// and its box's rows from its source, padded. `sources` parallels `planes`.
FitsLayout layout_planes(std::string_view primary_header, const std::vector<image::PlaneHeader>& planes,
                         const std::vector<PlaneSource>& sources);

// Source files of streamed responses, each opened and described once: the
// recently used ones are kept (at most `capacity`; the least recently used
// go first), each only while its file is the same (device, inode, size,
// modification and status change times, checked at every use, so a
// replaced or changed file is read anew). Thread-safe.
class SourceCache {
 public:
  struct Entry {
    // Throws what image::CutoutSource throws.
    explicit Entry(const std::filesystem::path& path);
    // The open file and its raw HDUs; throws (here, not when the entry is
    // made, as the engine reads them only for cutouts with pixels) when the
    // file cannot be opened or is not FITS as raw_hdus knows it.
    const std::shared_ptr<const SourceFile>& file() const;
    const std::vector<RawHdu>& hdus() const;

    image::CutoutSource cutout;

   private:
    std::shared_ptr<const SourceFile> file_{};
    std::vector<RawHdu> hdus_{};
    std::exception_ptr error_{};
  };

  explicit SourceCache(std::size_t capacity);
  SourceCache(const SourceCache&) = delete;
  SourceCache& operator=(const SourceCache&) = delete;

  // The entry of `path`, made now when it is missing or stale.
  std::shared_ptr<const Entry> get(const std::filesystem::path& path);

 private:
  struct Identity {
    std::uint64_t device = 0, inode = 0, size = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const Identity&) const = default;
  };
  struct Slot {
    Identity identity;
    std::shared_ptr<const Entry> entry;
    std::list<std::string>::iterator recent;
  };
  std::mutex mutex_;
  std::size_t capacity_;
  std::list<std::string> recent_;  // paths, the most recently used first
  std::unordered_map<std::string, Slot> slots_;
};

}  // namespace pixserve::services
