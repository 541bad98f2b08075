#include "http/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "http/headers.hpp"

namespace pixserve::http {

namespace {

constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// An open file descriptor shared between serve_file and its producer, so the
// bytes streamed are those of the file that was stat'ed even if it is
// replaced meanwhile.
class FileHandle {
 public:
  explicit FileHandle(int fd) noexcept : fd_(fd) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const noexcept { return fd_; }

 private:
  int fd_;
};

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  std::uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

struct ByteRange {
  std::uint64_t first = 0, last = 0;  // inclusive
};
enum class RangeKind { none, satisfiable, unsatisfiable };

// RFC 9110 section 14: "bytes=a-b", "bytes=a-", "bytes=-n". Anything else
// (other units, several ranges, bad syntax) is ignored, i.e. the whole file.
RangeKind parse_range(std::string_view header, std::uint64_t size, ByteRange& out) {
  header = trim_ows(header);
  if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes=")) return RangeKind::none;
  std::string_view spec = trim_ows(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeKind::none;
  std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeKind::none;
  std::string_view a = trim_ows(spec.substr(0, dash)), b = trim_ows(spec.substr(dash + 1));
  if (a.empty()) {  // suffix range: the last n bytes
    auto n = parse_u64(b);
    if (!n) return RangeKind::none;
    if (*n == 0 || size == 0) return RangeKind::unsatisfiable;
    out.first = *n >= size ? 0 : size - *n;
    out.last = size - 1;
    return RangeKind::satisfiable;
  }
  auto first = parse_u64(a);
  if (!first) return RangeKind::none;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    auto l = parse_u64(b);
    if (!l || *l < *first) return RangeKind::none;
    last = std::min(*l, last);
  }
  if (*first >= size) return RangeKind::unsatisfiable;
  out.first = *first;
  out.last = last;
  return RangeKind::satisfiable;
}

std::string_view strip_weak(std::string_view tag) noexcept {
  if (tag.size() >= 2 && tag.substr(0, 2) == "W/") tag.remove_prefix(2);
  return tag;
}

// If-None-Match uses the weak comparison: "*" or any listed tag equal to ours
// ignoring W/ prefixes.
bool none_match_hits(std::string_view header, std::string_view etag) {
  header = trim_ows(header);
  if (header == "*") return true;
  while (!header.empty()) {
    std::size_t comma = header.find(',');
    std::string_view tag = trim_ows(header.substr(0, comma));
    if (!tag.empty() && strip_weak(tag) == strip_weak(etag)) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string http_date(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  // Built by hand: strftime's %a and %b follow the locale.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[static_cast<std::size_t>(tm.tm_wday)],
                tm.tm_mday, kMonths[static_cast<std::size_t>(tm.tm_mon)], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text) {
  std::string s(trim_ows(text));
  char day[4] = {}, month[4] = {};
  int d = 0, y = 0, hh = 0, mm = 0, ss = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%3s, %2d %3s %4d %2d:%2d:%2d GMT%n", day, &d, month, &y, &hh, &mm, &ss, &consumed) != 7 ||
      consumed != static_cast<int>(s.size()))
    return std::nullopt;
  std::tm tm{};
  int mon = -1;
  for (std::size_t i = 0; i < kMonths.size(); ++i)
    if (iequals(month, kMonths[i])) mon = static_cast<int>(i);
  if (mon < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mon;
  tm.tm_mday = d;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  std::time_t t = ::timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string content_type_for(const std::filesystem::path& path) {
  static const std::array<std::pair<std::string_view, std::string_view>, 24> types = {{
      {".fits", "application/fits"},
      {".fit", "application/fits"},
      {".fz", "application/fits"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".ico", "image/x-icon"},
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".xml", "application/xml"},
      {".vot", "application/x-votable+xml"},
      {".txt", "text/plain; charset=utf-8"},
      {".yaml", "application/yaml"},
      {".woff", "font/woff"},
      {".woff2", "font/woff2"},
      {".wasm", "application/wasm"},
      {".csv", "text/csv; charset=utf-8"},
  }};
  // HiPS "properties" has no extension and is text.
  if (path.filename() == "properties") return "text/plain; charset=utf-8";
  std::string ext = ascii_lower(path.extension().string());
  for (const auto& [e, type] : types)
    if (e == ext) return std::string(type);
  return "application/octet-stream";
}

Response serve_file(const Request& request, const std::filesystem::path& path, std::string content_type) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EACCES) return Response::text(403, "forbidden\n");
    return Response::text(404, "not found\n");
  }
  auto file = std::make_shared<FileHandle>(fd);
  struct stat st {};
  if (::fstat(file->fd(), &st) != 0 || !S_ISREG(st.st_mode)) return Response::text(404, "not found\n");

  const auto size = static_cast<std::uint64_t>(st.st_size);
  const auto mtime_ns =
      static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(st.st_mtim.tv_nsec);
  char etag_buf[80];
  std::snprintf(etag_buf, sizeof etag_buf, "\"%llx-%llx-%llx\"", static_cast<unsigned long long>(size),
                static_cast<unsigned long long>(mtime_ns), static_cast<unsigned long long>(st.st_ino));
  const std::string etag = etag_buf;
  const auto mtime = std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec);
  const std::string last_modified = http_date(mtime);

  auto with_validators = [&](Response r) {
    r.headers.set("ETag", etag);
    r.headers.set("Last-Modified", last_modified);
    r.headers.set("Accept-Ranges", "bytes");
    return r;
  };

  const bool get_or_head = request.method() == "GET" || request.method() == "HEAD";
  if (get_or_head) {
    // RFC 9110 13.2.2: If-None-Match takes precedence over If-Modified-Since.
    if (auto inm = request.header("If-None-Match")) {
      if (none_match_hits(*inm, etag)) return with_validators(Response::empty(304));
    } else if (auto ims = request.header("If-Modified-Since")) {
      if (auto since = parse_http_date(*ims); since && mtime <= *since) return with_validators(Response::empty(304));
    }
  }

  std::uint64_t first = 0, length = size;
  int status = 200;
  std::string content_range;
  if (request.method() == "GET") {
    if (auto range = request.header("Range")) {
      bool if_range_ok = true;
      if (auto ir = request.header("If-Range")) {
        std::string_view v = trim_ows(*ir);
        // A strong comparison: a weak tag or a different date means the
        // client's partial copy is stale, so it gets the whole file.
        if (!v.empty() && (v.front() == '"' || v.substr(0, 2) == "W/"))
          if_range_ok = v == etag;
        else
          if_range_ok = v == last_modified;
      }
      ByteRange br;
      switch (if_range_ok ? parse_range(*range, size, br) : RangeKind::none) {
        case RangeKind::none:
          break;
        case RangeKind::unsatisfiable: {
          Response r = with_validators(Response::text(416, "range not satisfiable\n"));
          r.headers.set("Content-Range", "bytes */" + std::to_string(size));
          return r;
        }
        case RangeKind::satisfiable:
          status = 206;
          first = br.first;
          length = br.last - br.first + 1;
          content_range =
              "bytes " + std::to_string(br.first) + "-" + std::to_string(br.last) + "/" + std::to_string(size);
          break;
      }
    }
  }

  Response r = Response::stream(
      std::move(content_type),
      [file, first, length](BodyWriter& out) {
        std::vector<char> buf(static_cast<std::size_t>(std::min<std::uint64_t>(length, 256u << 10)));
        std::uint64_t offset = first, left = length;
        while (left > 0) {
          std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
          ssize_t n = ::pread(file->fd(), buf.data(), want, static_cast<off_t>(offset));
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) throw std::system_error(errno, std::generic_category(), "reading a served file");
          // A file truncated while being served: the server cuts the
          // connection since fewer bytes than Content-Length were sent.
          if (n == 0) return;
          if (!out.write(std::string_view(buf.data(), static_cast<std::size_t>(n)))) return;
          offset += static_cast<std::uint64_t>(n);
          left -= static_cast<std::uint64_t>(n);
        }
      },
      length);
  r.status = status;
  if (!content_range.empty()) r.headers.set("Content-Range", content_range);
  return with_validators(std::move(r));
}

Response serve_static(const Request& request, const std::filesystem::path& root, std::string_view relative) {
  std::filesystem::path rel(relative);
  if (relative.empty() || rel.is_absolute() || relative.find('\0') != std::string_view::npos)
    return Response::text(404, "not found\n");
  for (const auto& part : rel)
    if (part == "..") return Response::text(404, "not found\n");
  std::filesystem::path full = root / rel;
  return serve_file(request, full, content_type_for(full));
}

bool copy_file_to(const std::filesystem::path& file, std::uint64_t size, const ByteSink& sink) {
  constexpr std::size_t kChunk = 1 << 20;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::string buffer(kChunk, '\0');
  std::uint64_t left = size;
  while (left > 0) {
    const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(left, buffer.size()));
    in.read(buffer.data(), want);
    if (in.gcount() != want) throw std::runtime_error(fmt::format("{} is shorter than {} bytes", file.string(), size));
    left -= static_cast<std::uint64_t>(want);
    if (!sink(std::string_view(buffer.data(), static_cast<std::size_t>(want)))) return false;
  }
  return true;
}

}  // namespace pixserve::http
