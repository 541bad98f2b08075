// Serving files: FITS downloads, HiPS tiles, portal assets. Streams from disk
// (never reads a whole file into memory) and implements single byte ranges,
// ETag / If-None-Match, Last-Modified / If-Modified-Since and If-Range.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "http/request.hpp"
#include "http/response.hpp"

namespace pixserve::http {

// Answers a GET or HEAD for one file: 200, 206 (Range: bytes=a-b, a-, -n),
// 304 (validators match), 416 (unsatisfiable range), 404 (missing or not a
// regular file). Check access rights before calling. Multi-range requests
// get the whole file (allowed by RFC 9110). The caller may add headers (e.g.
// Cache-Control, Content-Disposition) to the result.
Response serve_file(const Request& request, const std::filesystem::path& path, std::string content_type);

// serve_file for `relative` inside `root` (e.g. a {rest...} path parameter):
// 404 for absolute paths, ".." segments or anything resolving outside root,
// content type from the extension.
Response serve_static(const Request& request, const std::filesystem::path& root, std::string_view relative);

// Receives bytes; returns false to stop (the client went away, a write failed).
using ByteSink = std::function<bool(std::string_view bytes)>;

// Streams a file's first `size` bytes to the sink in chunks; false when the
// sink stopped. Throws std::runtime_error when the file cannot be read or is
// shorter than `size`.
bool copy_file_to(const std::filesystem::path& file, std::uint64_t size, const ByteSink& sink);

// MIME type from a file name's extension (.fits -> application/fits, .png,
// .jpg, .html, .js, .css, .json, .xml, .txt, ...); application/octet-stream
// otherwise.
std::string content_type_for(const std::filesystem::path& path);

// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point t);
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

}  // namespace pixserve::http
