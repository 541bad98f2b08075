#include "http/request.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <random>

namespace pixserve::http {

namespace {

bool is_control(char c) noexcept {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// Strips "http://authority" from an absolute-form target (sent by proxies).
std::string_view origin_form(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() && iequals(target.substr(0, scheme.size()), scheme)) {
      std::string_view rest = target.substr(scheme.size());
      std::size_t slash = rest.find_first_of("/?");
      if (slash == std::string_view::npos) return "/";
      if (rest[slash] == '?') return {};  // "http://host?x": no path, rejected below
      return rest.substr(slash);
    }
  }
  return target;
}

}  // namespace

std::string normalize_path(std::string_view raw_path) {
  std::string decoded = percent_decode(raw_path, false);
  if (std::any_of(decoded.begin(), decoded.end(), is_control))
    throw HttpError(400, "control character in request path");
  if (decoded.empty() || decoded.front() != '/') throw HttpError(400, "request path must start with '/'");

  std::vector<std::string_view> segments;
  bool trailing_slash = false;
  std::string_view rest = std::string_view(decoded).substr(1);
  for (;;) {
    std::size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    bool last = slash == std::string_view::npos;
    if (seg == "..") {
      // A ".." above the root would let a file handler escape its directory.
      if (segments.empty()) throw HttpError(400, "request path leaves the root");
      segments.pop_back();
      trailing_slash = true;
    } else if (seg.empty() || seg == ".") {
      trailing_slash = true;
    } else {
      segments.push_back(seg);
      trailing_slash = false;
    }
    if (last) break;
    rest = rest.substr(slash + 1);
  }
  std::string out = "/";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out += '/';
    out += segments[i];
  }
  if (trailing_slash && !segments.empty()) out += '/';
  return out;
}

bool valid_host(std::string_view host) noexcept {
  if (host.empty() || host.size() > 260) return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    std::size_t close = host.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    std::string_view inner = host.substr(1, close - 1);
    if (!std::all_of(inner.begin(), inner.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; }))
      return false;
    std::string_view after = host.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
  } else {
    std::size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      name = host.substr(0, colon);
      port = host.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (name.empty() || name.size() > 253) return false;
    if (!std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
        }))
      return false;
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  return true;
}

std::string random_request_id() {
  std::array<unsigned char, 8> bytes{};
  // getrandom keeps the generator stateless (no shared engine to lock).
  if (::getrandom(bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size())) {
    std::random_device rd;
    for (auto& b : bytes) b = static_cast<unsigned char>(rd());
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

bool valid_request_id(std::string_view id) noexcept {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
  });
}

Request Request::parse(RawRequest raw, const RequestOptions& options) {
  Request r;
  r.method_ = std::move(raw.method);
  r.target_ = std::move(raw.target);
  r.version_ = raw.version;
  r.headers_ = std::move(raw.headers);
  r.remote_address_ = std::move(raw.remote_address);
  r.configured_base_url_ = options.base_url;
  r.fallback_host_ = options.fallback_host;
  if (!raw.request_id.empty()) {
    r.request_id_ = std::move(raw.request_id);
  } else if (auto incoming = r.headers_.get("X-Request-Id"); incoming && valid_request_id(*incoming)) {
    r.request_id_ = std::string(*incoming);
  } else {
    r.request_id_ = random_request_id();
  }

  std::string_view target = origin_form(r.target_);
  if (target.empty() || target.front() != '/') throw HttpError(400, "unsupported request target");
  std::size_t q = target.find('?');
  r.path_ = normalize_path(target.substr(0, q));
  if (q != std::string_view::npos) r.query_ = std::string(target.substr(q + 1));
  parse_urlencoded(r.query_, r.params_);

  // DALI POST bodies are forms; any other body is handed over as is.
  HeaderValue content_type = parse_header_value(r.headers_.get("Content-Type").value_or(""));
  if (r.method_ == "POST" && content_type.value == "application/x-www-form-urlencoded") {
    parse_urlencoded(raw.body.read_all(), r.params_);
  } else if (r.method_ == "POST" && content_type.value == "multipart/form-data") {
    parse_multipart(raw.body, *r.headers_.get("Content-Type"), options.multipart, r.params_, r.files_);
  } else {
    r.body_ = std::move(raw.body);
  }
  return r;
}

const UploadedFile* Request::file(std::string_view field_name) const noexcept {
  for (const auto& f : files_)
    if (iequals(f.name, field_name)) return &f;
  return nullptr;
}

std::string_view Request::path_param(std::string_view name) const noexcept {
  for (const auto& [n, v] : path_params_)
    if (n == name) return v;
  return {};
}

std::string Request::base_url() const {
  if (!configured_base_url_.empty()) return configured_base_url_;
  if (auto host = headers_.get("Host"); host && valid_host(*host)) return "http://" + std::string(*host);
  return "http://" + (fallback_host_.empty() ? std::string("localhost") : fallback_host_);
}

}  // namespace pixserve::http
