#include "http/response_head.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <boost/beast/http/status.hpp>

#include "http/files.hpp"

namespace pixserve::http::detail {

namespace bhttp = boost::beast::http;

namespace {

// Fields the server sets itself: a handler must not frame the message.
bool is_framing_field(std::string_view name) {
  for (std::string_view f :
       {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer"})
    if (iequals(name, f)) return true;
  return false;
}

bool valid_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// No CR/LF/NUL: a value with them would inject fields or split the response.
bool valid_field_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

}  // namespace

std::optional<std::string> build_head(const ResponseHead& h, const Headers& headers, const std::string& request_id) {
  std::string out = "HTTP/1.1 " + std::to_string(h.status) + " ";
  std::string_view reason = sv(bhttp::obsolete_reason(static_cast<bhttp::status>(h.status)));
  out += (reason.empty() || reason.front() == '<') ? std::string_view("Status") : reason;
  out += "\r\n";
  for (const auto& [name, value] : headers) {
    if (!valid_field_name(name) || !valid_field_value(value)) return std::nullopt;
    if (is_framing_field(name) || iequals(name, "X-Request-Id")) continue;
    out += name + ": " + value + "\r\n";
  }
  if (!headers.has("Date")) out += "Date: " + http_date(std::chrono::system_clock::now()) + "\r\n";
  if (!headers.has("Server")) out += "Server: pixserve\r\n";
  out += "X-Request-Id: " + request_id + "\r\n";
  if (h.framing == Framing::length) out += "Content-Length: " + std::to_string(h.length) + "\r\n";
  if (h.framing == Framing::chunked) out += "Transfer-Encoding: chunked\r\n";
  if (h.close)
    out += "Connection: close\r\n";
  else if (h.http10_keep_alive)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
  return out;
}

bool has_no_body(int status) { return status == 204 || status == 304 || (status >= 100 && status < 200); }

std::string busy_response(const std::string& request_id) {
  static constexpr std::string_view kBody = "server busy, retry later\n";
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
         "Connection: close\r\nX-Request-Id: " +
         request_id + "\r\nContent-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
}

}  // namespace pixserve::http::detail
