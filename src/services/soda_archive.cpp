#include "services/soda_archive.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <limits>

#include <fmt/format.h>

namespace pixserve::services {
namespace {

constexpr std::uint64_t kBlock = 512;

bool safe_name(std::string_view name) {
  if (name.empty() || name.size() >= 100 || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::uint64_t padded(std::uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }

// An octal number right-aligned in `width - 1` digits plus a NUL.
void octal(char* field, std::size_t width, std::uint64_t value) {
  const std::string text = fmt::format("{:0{}o}", value, width - 1);
  if (text.size() != width - 1) throw ArchiveTooLarge("tar: value too large for its header field");
  std::memcpy(field, text.data(), text.size());
  field[width - 1] = '\0';
}

std::array<char, kBlock> tar_header(const ArchiveEntry& e, std::int64_t mtime) {
  std::array<char, kBlock> h{};
  std::memcpy(h.data(), e.name.data(), e.name.size());  // name[100]
  octal(h.data() + 100, 8, 0644);                         // mode
  octal(h.data() + 108, 8, 0);                            // uid
  octal(h.data() + 116, 8, 0);                            // gid
  octal(h.data() + 124, 12, e.size);                      // size
  octal(h.data() + 136, 12, static_cast<std::uint64_t>(std::max<std::int64_t>(mtime, 0)));
  std::memset(h.data() + 148, ' ', 8);                    // chksum, as spaces while summing
  h[156] = '0';                                           // regular file
  std::memcpy(h.data() + 257, "ustar", 6);                // magic "ustar\0"
  std::memcpy(h.data() + 263, "00", 2);                   // version
  std::memcpy(h.data() + 265, "pixserve", 8);             // uname
  std::memcpy(h.data() + 297, "pixserve", 8);             // gname
  octal(h.data() + 329, 8, 0);                            // devmajor
  octal(h.data() + 337, 8, 0);                            // devminor
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  const std::string chk = fmt::format("{:06o}", sum);
  std::memcpy(h.data() + 148, chk.data(), 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

void put16(std::string& out, std::uint32_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& out, std::uint32_t v) {
  put16(out, v & 0xffff);
  put16(out, v >> 16);
}

constexpr std::uint32_t kDosDate = (0u << 9) | (1u << 5) | 1u;  // 1980-01-01
constexpr std::uint32_t kDosTime = 0;

std::uint32_t file_crc(const std::filesystem::path& file, std::uint64_t size) {
  std::uint32_t crc = 0;
  http::copy_file_to(file, size, [&crc](std::string_view bytes) {
    crc = crc32(bytes, crc);
    return true;
  });
  return crc;
}

void check_zip(const std::vector<ArchiveEntry>& entries) {
  if (entries.size() > 0xffff) throw ArchiveTooLarge("zip: more than 65535 files; ask for application/x-tar");
  if (zip_size(entries) > 0xffffffffULL) {
    throw ArchiveTooLarge("zip: the archive would exceed 4 GiB (no ZIP64); ask for application/x-tar");
  }
}

}  // namespace

ArchiveEntry archive_entry(std::string name, std::filesystem::path file) {
  if (!safe_name(name)) throw std::invalid_argument("archive entry: unsafe name '" + name + "'");
  const auto size = std::filesystem::file_size(file);
  return {.name = std::move(name), .file = std::move(file), .size = size};
}

std::uint32_t crc32(std::string_view bytes, std::uint32_t crc) {
  static constexpr auto kTable = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (char ch : bytes) crc = kTable[(crc ^ static_cast<unsigned char>(ch)) & 0xffu] ^ (crc >> 8);
  return ~crc;
}


std::uint64_t tar_size(const std::vector<ArchiveEntry>& entries) {
  std::uint64_t n = 2 * kBlock;  // end-of-archive marker
  for (const auto& e : entries) n += kBlock + padded(e.size);
  return n;
}

bool write_tar(const std::vector<ArchiveEntry>& entries, const ByteSink& sink, std::int64_t mtime) {
  static constexpr std::array<char, kBlock> kZeros{};
  for (const auto& e : entries) {
    if (!safe_name(e.name)) throw std::invalid_argument("tar: unsafe entry name");
    const auto header = tar_header(e, mtime);
    if (!sink(std::string_view(header.data(), header.size()))) return false;
    if (!http::copy_file_to(e.file, e.size, sink)) return false;
    const auto pad = padded(e.size) - e.size;
    if (pad > 0 && !sink(std::string_view(kZeros.data(), static_cast<std::size_t>(pad)))) return false;
  }
  return sink(std::string_view(kZeros.data(), kZeros.size())) && sink(std::string_view(kZeros.data(), kZeros.size()));
}

std::uint64_t zip_size(const std::vector<ArchiveEntry>& entries) {
  std::uint64_t n = 22;  // end of central directory
  for (const auto& e : entries) n += 30 + e.name.size() + e.size + 46 + e.name.size();
  return n;
}

bool write_zip(const std::vector<ArchiveEntry>& entries, const ByteSink& sink) {
  check_zip(entries);
  std::vector<std::uint32_t> crcs;
  crcs.reserve(entries.size());
  for (const auto& e : entries) crcs.push_back(file_crc(e.file, e.size));

  std::string central;
  std::uint32_t offset = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    if (!safe_name(e.name)) throw std::invalid_argument("zip: unsafe entry name");
    const auto size = static_cast<std::uint32_t>(e.size);
    const auto name_len = static_cast<std::uint32_t>(e.name.size());
    std::string local;
    put32(local, 0x04034b50);
    put16(local, 10);  // version needed: 1.0 (stored)
    put16(local, 0);   // flags
    put16(local, 0);   // method: stored
    put16(local, kDosTime);
    put16(local, kDosDate);
    put32(local, crcs[i]);
    put32(local, size);
    put32(local, size);
    put16(local, name_len);
    put16(local, 0);  // extra
    local += e.name;
    if (!sink(local) || !http::copy_file_to(e.file, e.size, sink)) return false;

    put32(central, 0x02014b50);
    put16(central, 20);  // made by: 2.0
    put16(central, 10);
    put16(central, 0);
    put16(central, 0);
    put16(central, kDosTime);
    put16(central, kDosDate);
    put32(central, crcs[i]);
    put32(central, size);
    put32(central, size);
    put16(central, name_len);
    put16(central, 0);  // extra
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0);  // external attributes
    put32(central, offset);
    central += e.name;
    offset += static_cast<std::uint32_t>(local.size()) + size;
  }
  std::string end;
  put32(end, 0x06054b50);
  put16(end, 0);
  put16(end, 0);
  put16(end, static_cast<std::uint32_t>(entries.size()));
  put16(end, static_cast<std::uint32_t>(entries.size()));
  put32(end, static_cast<std::uint32_t>(central.size()));
  put32(end, offset);
  put16(end, 0);
  return sink(central) && sink(end);
}

}  // namespace pixserve::services
