#include "http/params.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <functional>
#include <stdexcept>
#include <system_error>

#include "http/headers.hpp"

namespace pixserve::http {

// ---------------------------------------------------------------- Parameters

void Parameters::add(std::string name, std::string value) { entries_.emplace_back(std::move(name), std::move(value)); }

bool Parameters::has(std::string_view name) const noexcept {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return iequals(e.first, name); });
}

std::vector<std::string> Parameters::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : entries_)
    if (iequals(n, name)) out.push_back(v);
  return out;
}

std::optional<std::string> Parameters::first(std::string_view name) const {
  for (const auto& [n, v] : entries_)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

std::vector<std::string> Parameters::names() const {
  std::vector<std::string> out;
  for (const auto& entry : entries_) {
    const std::string& n = entry.first;  // not a structured binding: clang 14 cannot capture one
    if (std::none_of(out.begin(), out.end(), [&](const std::string& seen) { return iequals(seen, n); }))
      out.push_back(n);
  }
  return out;
}

// ---------------------------------------------------------------- temp files

namespace detail {

// A file created with mkstemp and removed on destruction; the descriptor stays
// open so that reads do not depend on the path still existing.
class TempFile {
 public:
  explicit TempFile(const std::filesystem::path& dir) {
    std::filesystem::path base = dir.empty() ? std::filesystem::temp_directory_path() : dir;
    std::string templ = (base / "pixserve-body-XXXXXX").string();
    fd_ = ::mkostemp(templ.data(), O_CLOEXEC);
    if (fd_ < 0)
      throw std::system_error(errno, std::generic_category(), "cannot create a temporary file in " + base.string());
    path_ = templ;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    ::close(fd_);
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

  void write(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "cannot write " + path_.string());
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads `size` bytes at `offset`; short only at end of file.
  std::size_t read_at(char* out, std::size_t size, std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd_, out + done, size - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "cannot read " + path_.string());
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  int fd() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace detail

namespace {

// Read-only memory map of a spooled body, so multipart parsing can search it
// like a string without reading it into memory.
class Mapping {
 public:
  Mapping(int fd, std::size_t size) : size_(size) {
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "cannot map a request body");
    addr_ = p;
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr_ != nullptr) ::munmap(addr_, size_);
  }
  std::string_view view() const noexcept {
    return addr_ == nullptr ? std::string_view{} : std::string_view(static_cast<const char*>(addr_), size_);
  }

 private:
  void* addr_ = nullptr;
  std::size_t size_;
};

}  // namespace

// ---------------------------------------------------------------- Blob

Blob::Blob(std::string bytes) : memory_(std::move(bytes)), size_(memory_.size()) {}

std::string_view Blob::data() const {
  if (file_) throw std::logic_error("Blob::data(): the body is spooled to a file; use path() or read_all()");
  return memory_;
}

const std::filesystem::path& Blob::path() const noexcept {
  static const std::filesystem::path none;  // immutable, so not shared mutable state
  return file_ ? file_->path() : none;
}

std::string Blob::read_all() const {
  if (!file_) return memory_;
  std::string out(static_cast<std::size_t>(size_), '\0');
  std::size_t n = file_->read_at(out.data(), out.size(), 0);
  out.resize(n);
  return out;
}

BlobWriter::BlobWriter(std::uint64_t threshold, std::filesystem::path dir)
    : threshold_(threshold), dir_(std::move(dir)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter& BlobWriter::operator=(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

void BlobWriter::append(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!file_ && memory_.size() + bytes.size() > threshold_) {
    file_ = std::make_shared<detail::TempFile>(dir_);
    file_->write(memory_);
    memory_.clear();
    memory_.shrink_to_fit();
  }
  if (file_)
    file_->write(bytes);
  else
    memory_.append(bytes);
  size_ += bytes.size();
}

Blob BlobWriter::finish() && {
  Blob b;
  b.size_ = size_;
  if (file_)
    b.file_ = std::move(file_);
  else
    b.memory_ = std::move(memory_);
  return b;
}

// ---------------------------------------------------------------- decoding

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_encode(std::string_view s) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  return out;
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw HttpError(400, "malformed percent-escape in URL or form data");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void parse_urlencoded(std::string_view text, Parameters& out) {
  while (!text.empty()) {
    std::size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view{} : text.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string name = percent_decode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1), true);
    out.add(std::move(name), std::move(value));
  }
}

std::optional<std::string> HeaderValue::param(std::string_view key) const {
  for (const auto& [k, v] : params)
    if (iequals(k, key)) return v;
  return std::nullopt;
}

HeaderValue parse_header_value(std::string_view text) {
  HeaderValue out;
  std::size_t semi = text.find(';');
  out.value = ascii_lower(trim_ows(text.substr(0, semi)));
  std::size_t pos = semi == std::string_view::npos ? text.size() : semi + 1;
  while (pos < text.size()) {
    // key up to '=' or ';'
    std::size_t stop = text.find_first_of("=;", pos);
    std::string key =
        ascii_lower(trim_ows(text.substr(pos, stop == std::string_view::npos ? std::string_view::npos : stop - pos)));
    std::string value;
    if (stop == std::string_view::npos) {
      pos = text.size();
    } else if (text[stop] == ';') {
      pos = stop + 1;
    } else {
      pos = stop + 1;
      while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
      if (pos < text.size() && text[pos] == '"') {
        // quoted-string with backslash escapes
        ++pos;
        while (pos < text.size() && text[pos] != '"') {
          if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
          value.push_back(text[pos++]);
        }
        std::size_t next = text.find(';', pos);
        pos = next == std::string_view::npos ? text.size() : next + 1;
      } else {
        std::size_t next = text.find(';', pos);
        value =
            std::string(trim_ows(text.substr(pos, next == std::string_view::npos ? std::string_view::npos : next - pos)));
        pos = next == std::string_view::npos ? text.size() : next + 1;
      }
    }
    if (!key.empty()) out.params.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

// ---------------------------------------------------------------- multipart

namespace {

void parse_multipart_view(std::string_view body, const std::string& boundary, const MultipartOptions& options,
                          Parameters& params, std::vector<UploadedFile>& files) {
  const std::string delimiter = "\r\n--" + boundary;
  const std::boyer_moore_horspool_searcher searcher(delimiter.begin(), delimiter.end());
  auto find_delimiter = [&](std::size_t from) -> std::size_t {
    auto it = std::search(body.begin() + static_cast<std::ptrdiff_t>(from), body.end(), searcher);
    return it == body.end() ? std::string_view::npos : static_cast<std::size_t>(it - body.begin());
  };
  auto malformed = [](const char* why) {
    return HttpError(400, std::string("malformed multipart/form-data body: ") + why);
  };

  // The first delimiter may start the body (no preceding CRLF) or follow a preamble.
  std::size_t pos;
  if (body.substr(0, delimiter.size() - 2) == std::string_view(delimiter).substr(2)) {
    pos = delimiter.size() - 2;
  } else {
    pos = find_delimiter(0);
    if (pos == std::string_view::npos) throw malformed("no boundary");
    pos += delimiter.size();
  }

  std::size_t parts = 0;
  for (;;) {
    if (body.substr(pos, 2) == "--") return;                                     // close-delimiter
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;  // transport padding
    if (body.substr(pos, 2) != "\r\n") throw malformed("bad delimiter line");
    pos += 2;
    if (++parts > options.max_parts) throw HttpError(400, "too many parts in multipart/form-data body");

    std::string_view header_block;
    std::size_t content_start;
    if (body.substr(pos, 2) == "\r\n") {
      content_start = pos + 2;
    } else {
      std::size_t end = body.find("\r\n\r\n", pos);
      if (end == std::string_view::npos) throw malformed("unterminated part headers");
      header_block = body.substr(pos, end - pos);
      content_start = end + 4;
    }
    std::size_t next = find_delimiter(content_start);
    if (next == std::string_view::npos) throw malformed("missing closing boundary");
    std::string_view content = body.substr(content_start, next - content_start);
    pos = next + delimiter.size();

    std::optional<HeaderValue> disposition;
    std::string content_type;
    while (!header_block.empty()) {
      std::size_t eol = header_block.find("\r\n");
      std::string_view line = header_block.substr(0, eol);
      header_block = eol == std::string_view::npos ? std::string_view{} : header_block.substr(eol + 2);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) throw malformed("bad part header");
      std::string_view name = trim_ows(line.substr(0, colon));
      std::string_view value = trim_ows(line.substr(colon + 1));
      if (iequals(name, "Content-Disposition"))
        disposition = parse_header_value(value);
      else if (iequals(name, "Content-Type"))
        content_type = std::string(value);
    }
    if (!disposition || disposition->value != "form-data") continue;  // not a form field (RFC 7578 says ignore)
    auto field = disposition->param("name");
    if (!field) throw malformed("part without a name");
    if (auto filename = disposition->param("filename")) {
      BlobWriter writer(options.spool_threshold, options.spool_dir);
      writer.append(content);
      files.push_back(UploadedFile{std::move(*field), std::move(*filename),
                                   content_type.empty() ? "application/octet-stream" : content_type,
                                   std::move(writer).finish()});
    } else {
      params.add(std::move(*field), std::string(content));
    }
  }
}

}  // namespace

void parse_multipart(const Blob& body, std::string_view content_type, const MultipartOptions& options,
                     Parameters& params, std::vector<UploadedFile>& files) {
  HeaderValue ct = parse_header_value(content_type);
  auto boundary = ct.param("boundary");
  if (!boundary || boundary->empty() || boundary->size() > 200)
    throw HttpError(400, "multipart/form-data without a valid boundary");
  if (body.in_memory()) {
    parse_multipart_view(body.data(), *boundary, options, params, files);
  } else {
    Mapping map(body.file_->fd(), static_cast<std::size_t>(body.size()));
    parse_multipart_view(map.view(), *boundary, options, params, files);
  }
}

}  // namespace pixserve::http
