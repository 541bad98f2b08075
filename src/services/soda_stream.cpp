#include "services/soda_stream.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

namespace pixserve::services {
// Named (not anonymous): the folder is compiled as unity batches.
namespace soda_stream_detail {

constexpr std::size_t kStreamBlock = 2880;
constexpr std::size_t kStreamCard = 80;
constexpr std::size_t kWriteBuffer = std::size_t{1} << 20;
// Planes whose rows are at most this far apart are read many rows at a
// time, up to kGatherBytes a read.
constexpr std::uint64_t kGatherStride = 8 << 10;
constexpr std::size_t kGatherBytes = 256 << 10;

std::uint64_t block_padded(std::uint64_t n) { return (n + kStreamBlock - 1) / kStreamBlock * kStreamBlock; }

std::string_view trim_spaces(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

// The value field of a card (columns 11-80) without its comment; strings
// keep their quotes.
std::string_view card_value(std::string_view card) {
  if (card.size() < 10 || card.substr(8, 2) != "= ") return {};
  std::string_view v = card.substr(10);
  if (const auto first = v.find_first_not_of(' '); first != std::string_view::npos && v[first] == '\'') {
    const auto close = v.find('\'', first + 1);
    return close == std::string_view::npos ? v.substr(first) : v.substr(first, close - first + 1);
  }
  if (const auto slash = v.find('/'); slash != std::string_view::npos) v = v.substr(0, slash);
  return trim_spaces(v);
}

std::optional<long long> as_int(std::string_view v) {
  long long out = 0;
  if (!v.empty() && v.front() == '+') v.remove_prefix(1);
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return out;
}

std::optional<double> as_double(std::string_view v) {
  std::string text(v);
  std::replace(text.begin(), text.end(), 'D', 'E');
  char* end = nullptr;
  const double d = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) return std::nullopt;
  return d;
}

bool is_end(std::string_view card) { return card.substr(0, 3) == "END" && trim_spaces(card.substr(3)).empty(); }

// The cards of one header (without END) describe the data of its HDU.
struct HeaderFacts {
  int bitpix = 0;
  std::vector<long> naxis{};
  long long pcount = 0, gcount = 1;
  bool extension = false, image_extension = false, zimage = false, scaled = false;
};

HeaderFacts facts(std::string_view header, std::size_t cards) {
  HeaderFacts f;
  long long naxis = -1;
  for (std::size_t i = 0; i < cards; ++i) {
    const std::string_view card = header.substr(i * kStreamCard, kStreamCard);
    const std::string_view key = trim_spaces(card.substr(0, 8));
    const std::string_view value = card_value(card);
    if (key == "XTENSION") {
      f.extension = true;
      f.image_extension = value.starts_with("'IMAGE");
    } else if (key == "BITPIX") {
      f.bitpix = static_cast<int>(as_int(value).value_or(0));
    } else if (key == "NAXIS") {
      naxis = as_int(value).value_or(-1);
      if (naxis < 0 || naxis > 999) throw std::runtime_error(fmt::format("bad NAXIS '{}'", value));
      f.naxis.assign(static_cast<std::size_t>(naxis), -1);
    } else if (key.starts_with("NAXIS") && naxis > 0) {
      const auto n = as_int(key.substr(5));
      if (n && *n >= 1 && *n <= naxis) f.naxis[static_cast<std::size_t>(*n - 1)] = static_cast<long>(as_int(value).value_or(-1));
    } else if (key == "PCOUNT") {
      f.pcount = as_int(value).value_or(-1);
    } else if (key == "GCOUNT") {
      f.gcount = as_int(value).value_or(-1);
    } else if (key == "ZIMAGE") {
      f.zimage = value == "T";
    } else if (key == "BSCALE") {
      f.scaled = f.scaled || as_double(value) != 1.0;
    } else if (key == "BZERO") {
      f.scaled = f.scaled || as_double(value) != 0.0;
    }
  }
  const int b = f.bitpix;
  if (b != 8 && b != 16 && b != 32 && b != 64 && b != -32 && b != -64) {
    throw std::runtime_error(fmt::format("bad BITPIX {}", b));
  }
  if (naxis < 0 || f.pcount < 0 || f.gcount < 0 || std::any_of(f.naxis.begin(), f.naxis.end(), [](long n) { return n < 0; })) {
    throw std::runtime_error("bad NAXISn, PCOUNT or GCOUNT");
  }
  return f;
}

std::uint64_t data_bytes(const HeaderFacts& f) {
  if (f.naxis.empty()) return 0;
  std::uint64_t n = 1;
  for (long a : f.naxis) n *= static_cast<std::uint64_t>(a);
  return static_cast<std::uint64_t>(std::abs(f.bitpix) / 8) * static_cast<std::uint64_t>(f.gcount) *
         (static_cast<std::uint64_t>(f.pcount) + n);
}

// Reads exactly n bytes at offset; false at the end of the file.
void read_at(const SourceFile& file, char* out, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t got = ::pread(file.fd(), out, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw std::system_error(errno, std::generic_category(), "reading " + file.path().string());
    if (got == 0) throw std::runtime_error(fmt::format("{} is shorter than its FITS headers say", file.path().string()));
    out += got;
    n -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
}

// What cfitsio does reading float pixels with a NaN null value: a value whose
// exponent bits are all set (NaN, infinity) becomes the quiet NaN, one whose
// exponent bits are all clear (zero, denormal) becomes +0. Big-endian bytes;
// Word is the real's size, kExponent and kNan its first two bytes' exponent
// mask and quiet NaN (0x7F80 / 0x7FC0 for 32 bits, 0x7FF0 / 0x7FF8 for 64).
template <typename Word, unsigned kExponent, unsigned kNan>
void canonical_reals(char* p, std::size_t n) {
  constexpr std::size_t size = sizeof(Word);
  if constexpr (std::endian::native == std::endian::little) {
    // The first two big-endian bytes, loaded little-endian, are the low 16 bits swapped.
    constexpr Word mask = static_cast<Word>((kExponent >> 8) | ((kExponent & 0xFFu) << 8));
    constexpr Word nan = static_cast<Word>((kNan >> 8) | ((kNan & 0xFFu) << 8));
    for (std::size_t i = 0; i + size <= n; i += size) {
      Word w;
      std::memcpy(&w, p + i, size);
      const Word e = w & mask;
      w = e == mask ? nan : (e == 0 ? Word{0} : w);
      std::memcpy(p + i, &w, size);
    }
  } else {
    for (std::size_t i = 0; i + size <= n; i += size) {
      const unsigned e = ((static_cast<unsigned char>(p[i]) << 8) | static_cast<unsigned char>(p[i + 1])) & kExponent;
      if (e == kExponent) {
        std::memset(p + i, 0, size);
        p[i] = static_cast<char>(kNan >> 8);
        p[i + 1] = static_cast<char>(kNan & 0xFFu);
      } else if (e == 0) {
        std::memset(p + i, 0, size);
      }
    }
  }
}

void canonical(int float_bytes, char* p, std::size_t n) {
  if (float_bytes == 4) canonical_reals<std::uint32_t, 0x7F80u, 0x7FC0u>(p, n);
  if (float_bytes == 8) canonical_reals<std::uint64_t, 0x7FF0u, 0x7FF8u>(p, n);
}

}  // namespace soda_stream_detail

using namespace soda_stream_detail;

SourceFile::SourceFile(const std::filesystem::path& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "opening " + path.string());
}

SourceFile::~SourceFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<RawHdu> raw_hdus(const SourceFile& file) {
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) throw std::system_error(errno, std::generic_category(), "stat " + file.path().string());
  const auto size = static_cast<std::uint64_t>(st.st_size);
  std::vector<RawHdu> out;
  std::uint64_t pos = 0;
  std::string header;
  constexpr std::size_t kMaxHeaderBlocks = 4096;
  while (pos + kStreamBlock <= size && out.size() < 10000) {
    header.clear();
    std::size_t cards = 0;
    bool ended = false;
    while (!ended) {
      if (header.size() / kStreamBlock >= kMaxHeaderBlocks || pos + header.size() + kStreamBlock > size) {
        throw std::runtime_error(fmt::format("{}: a FITS header without END", file.path().string()));
      }
      const std::size_t at = header.size();
      header.resize(at + kStreamBlock);
      read_at(file, header.data() + at, kStreamBlock, pos + at);
      for (std::size_t c = at; c < header.size(); c += kStreamCard, ++cards) {
        if (is_end(std::string_view(header).substr(c, kStreamCard))) {
          ended = true;
          break;
        }
      }
    }
    const HeaderFacts f = facts(header, cards);
    RawHdu h;
    h.header_offset = pos;
    h.data_offset = pos + header.size();
    h.data_bytes = data_bytes(f);
    h.bitpix = f.bitpix;
    h.naxis = f.naxis;
    h.plain = (!f.extension || f.image_extension) && !f.zimage && !f.scaled && f.pcount == 0 && f.gcount == 1;
    out.push_back(std::move(h));
    pos = out.back().data_offset + block_padded(out.back().data_bytes);
  }
  return out;
}

void FitsLayout::literal(std::string_view bytes) {
  if (bytes.empty()) return;
  if (segments_.empty() || segments_.back().file || !segments_.back().runs.empty()) segments_.push_back({});
  segments_.back().bytes.append(bytes);
  size_ += bytes.size();
}

void FitsLayout::rows(std::shared_ptr<const SourceFile> file, std::uint64_t offset, std::uint64_t stride,
                      std::uint64_t row_bytes, long rows, int float_bytes) {
  if (rows <= 0 || row_bytes == 0) return;
  Segment s;
  s.file = std::move(file);
  s.offset = offset;
  s.stride = stride;
  s.row_bytes = row_bytes;
  s.rows = rows;
  s.float_bytes = float_bytes;
  segments_.push_back(std::move(s));
  size_ += row_bytes * static_cast<std::uint64_t>(rows);
}

void FitsLayout::band(std::vector<RowRun> runs, long rows, int float_bytes) {
  if (rows <= 0) return;
  std::uint64_t row_bytes = 0;
  for (auto& run : runs) {
    if (!run.file) {
      if (run.fill.empty() || run.bytes % run.fill.size() != 0) {
        throw std::logic_error("streamed FITS: a fill run that is not whole pixels");
      }
      std::string filled;
      filled.reserve(static_cast<std::size_t>(run.bytes));
      while (filled.size() < run.bytes) filled += run.fill;
      run.fill = std::move(filled);
    }
    row_bytes += run.bytes;
  }
  if (row_bytes == 0) return;
  Segment s;
  s.rows = rows;
  s.float_bytes = float_bytes;
  s.runs = std::move(runs);
  segments_.push_back(std::move(s));
  size_ += row_bytes * static_cast<std::uint64_t>(rows);
}

void FitsLayout::pad() {
  const std::uint64_t n = block_padded(size_) - size_;
  if (n > 0) literal(std::string(static_cast<std::size_t>(n), '\0'));
}

bool FitsLayout::write(const http::ByteSink& sink) const {
  const std::size_t capacity = static_cast<std::size_t>(std::min<std::uint64_t>(size_, kWriteBuffer));
  const auto buffer = std::make_unique_for_overwrite<char[]>(capacity);
  std::unique_ptr<char[]> gathered;  // rows of narrow planes, read together
  std::size_t used = 0;
  const auto flush = [&] {
    if (used == 0) return true;
    const bool ok = sink(std::string_view(buffer.get(), used));
    used = 0;
    return ok;
  };
  // Copies n bytes (from `from`, or read from the file at `offset` when
  // from is null) into the buffer in element-aligned pieces, cfitsio's
  // float rules applied; a piece that fits is never split across flushes.
  const auto put_piece = [&](const SourceFile* file, int float_bytes, const char* from, std::uint64_t offset,
                             std::uint64_t n) {
    const std::size_t unit = float_bytes == 8 ? 8 : 4;
    if (n <= capacity && capacity - used < n && !flush()) return false;
    while (n > 0) {
      if (capacity - used < unit && !flush()) return false;
      std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(n, capacity - used));
      if (piece < n) piece -= piece % unit;
      if (from != nullptr) {
        std::memcpy(buffer.get() + used, from, piece);
        from += piece;
      } else {
        read_at(*file, buffer.get() + used, piece, offset);
      }
      canonical(float_bytes, buffer.get() + used, piece);
      used += piece;
      offset += piece;
      n -= piece;
    }
    return true;
  };
  const auto put = [&](const Segment& s, const char* from, std::uint64_t offset, std::uint64_t n) {
    return put_piece(s.file.get(), s.float_bytes, from, offset, n);
  };
  for (const auto& s : segments_) {
    if (!s.runs.empty()) {
      for (long r = 0; r < s.rows; ++r) {
        for (const auto& run : s.runs) {
          const bool ok = run.file ? put_piece(run.file.get(), s.float_bytes, nullptr,
                                               run.offset + static_cast<std::uint64_t>(r) * run.stride, run.bytes)
                                   : put_piece(nullptr, s.float_bytes, run.fill.data(), 0, run.bytes);
          if (!ok) return false;
        }
      }
      continue;
    }
    if (!s.file) {
      std::string_view rest = s.bytes;
      while (!rest.empty()) {
        if (used == capacity && !flush()) return false;
        const std::size_t n = std::min(rest.size(), capacity - used);
        std::memcpy(buffer.get() + used, rest.data(), n);
        used += n;
        rest.remove_prefix(n);
      }
      continue;
    }
    if (s.row_bytes == s.stride) {  // full-width rows: one contiguous range
      if (!put(s, nullptr, s.offset, s.row_bytes * static_cast<std::uint64_t>(s.rows))) return false;
      continue;
    }
    if (s.stride <= kGatherStride) {
      // Rows of a narrow plane lie close together: one read of many rows
      // costs less than a read per row.
      if (!gathered) gathered = std::make_unique_for_overwrite<char[]>(kGatherBytes);
      const long per_read = static_cast<long>((kGatherBytes - s.row_bytes) / s.stride) + 1;
      for (long r = 0; r < s.rows; r += per_read) {
        const long n = std::min(per_read, s.rows - r);
        read_at(*s.file, gathered.get(), static_cast<std::size_t>(static_cast<std::uint64_t>(n - 1) * s.stride + s.row_bytes),
                s.offset + static_cast<std::uint64_t>(r) * s.stride);
        for (long k = 0; k < n; ++k) {
          if (!put(s, gathered.get() + static_cast<std::uint64_t>(k) * s.stride, 0, s.row_bytes)) return false;
        }
      }
      continue;
    }
    for (long r = 0; r < s.rows; ++r) {
      if (!put(s, nullptr, s.offset + static_cast<std::uint64_t>(r) * s.stride, s.row_bytes)) return false;
    }
  }
  return flush();
}

namespace {

// Where pixel (x, y) of a plane HDU lies in its file.
std::uint64_t pixel_offset(const RawHdu& hdu, long x, long y, std::uint64_t bpp) {
  const std::uint64_t stride = static_cast<std::uint64_t>(hdu.naxis[0]) * bpp;
  return hdu.data_offset + static_cast<std::uint64_t>(y) * stride + static_cast<std::uint64_t>(x) * bpp;
}

}  // namespace

FitsLayout layout_planes(std::string_view primary_header, const std::vector<image::PlaneHeader>& planes,
                         const std::vector<PlaneSource>& sources) {
  if (planes.size() != sources.size()) throw std::logic_error("streamed FITS: planes and sources differ in number");
  FitsLayout out;
  out.literal(primary_header);
  for (std::size_t i = 0; i < planes.size(); ++i) {
    const auto& pixels = planes[i].pixels;
    const auto& box = pixels.box;
    out.literal(planes[i].header);
    if (!pixels.bands.empty()) {
      const std::uint64_t bpp = static_cast<std::uint64_t>(std::abs(pixels.bitpix) / 8);
      for (const auto& band : pixels.bands) {
        std::vector<FitsLayout::RowRun> runs;
        for (const auto& run : band.runs) {
          FitsLayout::RowRun r;
          r.bytes = static_cast<std::uint64_t>(run.width) * bpp;
          if (run.patch < 0) {
            r.fill = pixels.fill;
          } else {
            const auto& patch = sources[i].patches.at(static_cast<std::size_t>(run.patch));
            if (!patch.file) throw std::logic_error("streamed FITS: a run from a patch without a source");
            r.file = patch.file;
            r.stride = static_cast<std::uint64_t>(patch.hdu.naxis[0]) * bpp;
            r.offset = pixel_offset(patch.hdu, run.src_x, run.src_y, bpp);
          }
          runs.push_back(std::move(r));
        }
        out.band(std::move(runs), band.rows, pixels.bitpix < 0 ? static_cast<int>(bpp) : 0);
      }
      out.pad();
      continue;
    }
    const RawHdu& hdu = sources[i].hdu;
    const std::uint64_t bpp = static_cast<std::uint64_t>(std::abs(hdu.bitpix) / 8);
    const std::uint64_t stride = static_cast<std::uint64_t>(hdu.naxis[0]) * bpp;
    out.rows(sources[i].file, pixel_offset(hdu, box.x0, box.y0, bpp), stride, static_cast<std::uint64_t>(box.width) * bpp,
             box.height, hdu.bitpix < 0 ? static_cast<int>(bpp) : 0);
    out.pad();
  }
  return out;
}

SourceCache::Entry::Entry(const std::filesystem::path& path) : cutout(path) {
  try {
    file_ = std::make_shared<const SourceFile>(path);
    hdus_ = raw_hdus(*file_);
  } catch (...) {
    error_ = std::current_exception();
  }
}

const std::shared_ptr<const SourceFile>& SourceCache::Entry::file() const {
  if (error_) std::rethrow_exception(error_);
  return file_;
}

const std::vector<RawHdu>& SourceCache::Entry::hdus() const {
  if (error_) std::rethrow_exception(error_);
  return hdus_;
}

SourceCache::SourceCache(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {}

std::shared_ptr<const SourceCache::Entry> SourceCache::get(const std::filesystem::path& path) {
  const std::string key = path.string();
  struct stat st {};
  const bool known = ::stat(path.c_str(), &st) == 0;
  const Identity identity{.device = static_cast<std::uint64_t>(st.st_dev),
                          .inode = static_cast<std::uint64_t>(st.st_ino),
                          .size = static_cast<std::uint64_t>(st.st_size),
                          .mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                          .ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
  if (known) {
    std::lock_guard lock(mutex_);
    if (const auto it = slots_.find(key); it != slots_.end() && it->second.identity == identity) {
      recent_.splice(recent_.begin(), recent_, it->second.recent);
      return it->second.entry;
    }
  }
  // Made without the lock (describing a file reads it); when it cannot be
  // made, the entry goes and the error is the caller's.
  std::shared_ptr<const Entry> entry;
  try {
    entry = std::make_shared<const Entry>(path);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (const auto it = slots_.find(key); it != slots_.end()) {
      recent_.erase(it->second.recent);
      slots_.erase(it);
    }
    throw;
  }
  if (!known) return entry;
  std::lock_guard lock(mutex_);
  if (const auto it = slots_.find(key); it != slots_.end()) {
    it->second.identity = identity;
    it->second.entry = entry;
    recent_.splice(recent_.begin(), recent_, it->second.recent);
    return entry;
  }
  recent_.push_front(key);
  slots_.emplace(key, Slot{identity, entry, recent_.begin()});
  while (slots_.size() > capacity_) {
    slots_.erase(recent_.back());
    recent_.pop_back();
  }
  return entry;
}

}  // namespace pixserve::services
