// Archives of cutout files for SODA's RESPONSEFORMAT=application/x-tar and
// application/zip: written straight from the files on disk to a byte sink
// (an HTTP body or a file), one fixed-size buffer at a time, never a whole
// file in memory. Both sizes are known before writing, so a response can
// carry Content-Length.
//
//   tar: POSIX ustar (IEEE 1003.1-1988), regular files only, names below
//        100 bytes, files below 8 GiB.
//   zip: PKWARE APPNOTE "stored" entries (no compression: FITS pixels compress
//        poorly and a cutout is served fast rather than small), CRC-32
//        computed from the files in a first pass; no ZIP64, so the archive
//        must stay below 4 GiB (ArchiveTooLarge otherwise: ask for tar).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http/files.hpp"

namespace pixserve::services {

struct ArchiveEntry {
  std::string name{};               // name inside the archive: [A-Za-z0-9._-], < 100 bytes
  std::filesystem::path file{};     // its content
  std::uint64_t size = 0;           // the file's size (taken when the entry is made)
};

// An entry for a file on disk (its size read now). Throws
// std::invalid_argument for a name that is not a plain safe file name.
ArchiveEntry archive_entry(std::string name, std::filesystem::path file);

class ArchiveTooLarge : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Receives the archive's bytes; returns false to stop (client gone).
using http::ByteSink;

// Exact sizes of the archives of these entries.
std::uint64_t tar_size(const std::vector<ArchiveEntry>& entries);
std::uint64_t zip_size(const std::vector<ArchiveEntry>& entries);

// Write the archive; return false when the sink stopped. Throw
// std::runtime_error when a file cannot be read or changed size,
// ArchiveTooLarge when the format cannot hold the entries.
bool write_tar(const std::vector<ArchiveEntry>& entries, const ByteSink& sink, std::int64_t mtime = 0);
bool write_zip(const std::vector<ArchiveEntry>& entries, const ByteSink& sink);

// CRC-32 (ISO-HDLC, as zip and gzip use), continuing from `crc` (0 to start).
std::uint32_t crc32(std::string_view bytes, std::uint32_t crc = 0);

}  // namespace pixserve::services
