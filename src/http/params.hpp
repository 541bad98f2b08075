// Request parameters (DALI: names case-insensitive, values case-sensitive,
// repeated parameters kept in order) and request bodies, which may be large
// and are then kept in a temporary file rather than in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pixserve::http {

class Parameters {
 public:
  using Entry = std::pair<std::string, std::string>;

  void add(std::string name, std::string value);

  bool has(std::string_view name) const noexcept;
  // Every value of the parameter, in the order received (query string first,
  // then the body).
  std::vector<std::string> all(std::string_view name) const;
  std::optional<std::string> first(std::string_view name) const;
  // Distinct names in order of first appearance, spelled as first received.
  std::vector<std::string> names() const;

  std::size_t size() const noexcept { return entries_.size(); }
  bool empty() const noexcept { return entries_.empty(); }
  auto begin() const noexcept { return entries_.begin(); }
  auto end() const noexcept { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

namespace detail {
class TempFile;
}
struct MultipartOptions;
struct UploadedFile;

// Immutable bytes, either in memory or in a temporary file that is removed
// when the last copy of the Blob goes away. Copies share the file.
class Blob {
 public:
  Blob() = default;
  explicit Blob(std::string bytes);

  std::uint64_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool in_memory() const noexcept { return file_ == nullptr; }
  // The bytes, when in memory; throws std::logic_error for a spooled blob.
  std::string_view data() const;
  // The temporary file holding the bytes; empty path when in memory. Valid as
  // long as this Blob (or a copy) lives.
  const std::filesystem::path& path() const noexcept;
  // Reads everything into memory (for a spooled blob, from its file).
  std::string read_all() const;

 private:
  friend class BlobWriter;
  // Maps a spooled body through its open descriptor.
  friend void parse_multipart(const Blob&, std::string_view, const MultipartOptions&, Parameters&,
                              std::vector<UploadedFile>&);
  std::string memory_;
  std::shared_ptr<const detail::TempFile> file_;
  std::uint64_t size_ = 0;
};

// Accumulates bytes in memory up to `threshold`, then moves them to a
// temporary file in `dir` (system temp directory when empty), so that a large
// upload never sits in memory.
class BlobWriter {
 public:
  explicit BlobWriter(std::uint64_t threshold = 1 << 20, std::filesystem::path dir = {});
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter();

  // Throws std::system_error when the temporary file cannot be written.
  void append(std::string_view bytes);
  std::uint64_t size() const noexcept { return size_; }
  Blob finish() &&;

 private:
  std::uint64_t threshold_;
  std::filesystem::path dir_;
  std::string memory_;
  std::shared_ptr<detail::TempFile> file_;
  std::uint64_t size_ = 0;
};

// A multipart/form-data part that carried a filename (an upload, e.g. a TAP
// UPLOAD table).
struct UploadedFile {
  std::string name;          // the form field name
  std::string filename;      // as sent by the client; never use it as a path
  std::string content_type;  // "application/octet-stream" when the part had none
  Blob content;
};

// Percent-decoding of a URL component. With plus_is_space '+' becomes ' ' (the
// application/x-www-form-urlencoded rule, used for query strings too).
// Throws HttpError(400) for a malformed %-escape.
std::string percent_decode(std::string_view s, bool plus_is_space);
// Percent-encodes everything but the RFC 3986 unreserved characters
// (A-Z a-z 0-9 - . _ ~): safe as a query-string value or a path segment.
std::string percent_encode(std::string_view s);

// Adds the pairs of an application/x-www-form-urlencoded string (a query
// string or a POST body) to `out`. "a" without '=' gives an empty value;
// empty pairs ("a=1&&b=2") are skipped. Throws HttpError(400).
void parse_urlencoded(std::string_view text, Parameters& out);

struct MultipartOptions {
  std::uint64_t spool_threshold = 1 << 20;  // file parts larger than this go to a temp file
  std::filesystem::path spool_dir;          // empty: system temp directory
  std::size_t max_parts = 1000;
};

// Splits a multipart/form-data body: parts without a filename become
// parameters, parts with one become files. `content_type` is the request's
// Content-Type (it carries the boundary). Throws HttpError(400) when malformed.
void parse_multipart(const Blob& body, std::string_view content_type, const MultipartOptions& options,
                     Parameters& params, std::vector<UploadedFile>& files);

// Splits a header value of the form `type; key=value; key="quoted"` (as in
// Content-Type and Content-Disposition). Keys are lower-cased.
struct HeaderValue {
  std::string value;  // lower-cased main value, e.g. "multipart/form-data"
  std::vector<std::pair<std::string, std::string>> params;
  std::optional<std::string> param(std::string_view key) const;
};
HeaderValue parse_header_value(std::string_view text);

}  // namespace pixserve::http
