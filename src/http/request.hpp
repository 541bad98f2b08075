// An HTTP request as handlers see it: decoded and normalized path, DALI-style
// parameters from the query string and a form body, uploaded files, and the
// request id that appears in logs and in the X-Request-Id response header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/headers.hpp"
#include "http/params.hpp"

namespace pixserve::http {

// What arrives on the wire, before interpretation (the server fills it; tests
// and other callers may build one by hand).
struct RawRequest {
  std::string method = "GET";  // as sent, e.g. "GET"
  std::string target = "/";    // request-target as sent, e.g. "/api/sia/query?POS=..."
  int version = 11;            // 10 or 11
  Headers headers;
  Blob body;
  std::string remote_address;  // client IP
  std::string request_id;      // empty: parse() makes one up
};

// Settings the server passes to every request.
struct RequestOptions {
  std::string base_url;       // configured public base URL without trailing '/'; empty: from Host
  std::string fallback_host;  // "host:port" used when the Host header is missing or invalid
  MultipartOptions multipart;
};

class Request {
 public:
  // Interprets a raw request. Throws HttpError(400) for a bad target (invalid
  // %-escape, NUL or control characters, a ".." that leaves the root) or a
  // malformed form body.
  static Request parse(RawRequest raw, const RequestOptions& options = {});

  const std::string& method() const noexcept { return method_; }
  const std::string& target() const noexcept { return target_; }  // as sent
  // Percent-decoded and normalized ("//" -> "/", "." and ".." resolved); a
  // trailing '/' is kept.
  const std::string& path() const noexcept { return path_; }
  const std::string& query() const noexcept { return query_; }  // raw, without '?'
  int version() const noexcept { return version_; }

  const Headers& headers() const noexcept { return headers_; }
  std::optional<std::string_view> header(std::string_view name) const { return headers_.get(name); }

  // Query-string parameters followed by those of an urlencoded or multipart body.
  const Parameters& params() const noexcept { return params_; }
  const std::vector<UploadedFile>& files() const noexcept { return files_; }
  // The first uploaded file whose field name matches (case-insensitive).
  const UploadedFile* file(std::string_view field_name) const noexcept;
  // The body as received when it was not a form (empty otherwise).
  const Blob& body() const noexcept { return body_; }

  const std::string& remote_address() const noexcept { return remote_address_; }
  const std::string& request_id() const noexcept { return request_id_; }

  // Path parameters captured by the router: "{name}" segments and a trailing
  // "{name...}". Empty view when absent.
  std::string_view path_param(std::string_view name) const noexcept;
  // Set by the Router when it dispatches; not for handlers.
  void set_path_params(std::vector<std::pair<std::string, std::string>> params) { path_params_ = std::move(params); }

  // Public base URL of the server (no trailing '/'): the configured one, else
  // "http://" + the Host header when that is a valid host[:port], else the
  // listening address.
  std::string base_url() const;

 private:
  std::string method_, target_, path_, query_;
  int version_ = 11;
  Headers headers_;
  Parameters params_;
  std::vector<UploadedFile> files_;
  Blob body_;
  std::string remote_address_, request_id_;
  std::vector<std::pair<std::string, std::string>> path_params_;
  std::string configured_base_url_, fallback_host_;
};

// Same as request.base_url(), spelled as a free function.
inline std::string base_url(const Request& request) { return request.base_url(); }

// Decodes and normalizes the path part of a request target (see
// Request::path()). Throws HttpError(400).
std::string normalize_path(std::string_view raw_path);

// True for a Host header value that is a DNS name, IPv4 address or bracketed
// IPv6 address with an optional port, and nothing else.
bool valid_host(std::string_view host) noexcept;

// A random request id: 16 lower-case hex characters.
std::string random_request_id();
// True for an incoming X-Request-Id worth keeping: 1-64 characters of
// [A-Za-z0-9._:-].
bool valid_request_id(std::string_view id) noexcept;

}  // namespace pixserve::http
