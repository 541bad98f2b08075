// Helpers for tests that drive a Router without a socket: build a request as
// the server would, dispatch it, and collect the body of string or
// streaming responses.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/router.hpp"

namespace pixserve::testing {

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  http::Headers headers;
};

class StringBodyWriter final : public http::BodyWriter {
 public:
  bool write(std::string_view bytes) override {
    out.append(bytes);
    return true;
  }
  bool flush() override { return true; }
  std::string out;
};

inline std::string body_of(const http::Response& res) {
  if (const auto* s = std::get_if<std::string>(&res.body)) return *s;
  StringBodyWriter w;
  std::get<http::StreamBody>(res.body).producer(w);
  return w.out;
}

inline Reply call(const http::Router& router, std::string method, std::string target, std::string body = {},
                  std::string content_type = {}, std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::RawRequest raw;
  raw.method = std::move(method);
  raw.target = std::move(target);
  raw.headers.add("Host", "example.org:8080");
  for (auto& [k, v] : headers) raw.headers.set(k, v);
  if (!content_type.empty()) raw.headers.add("Content-Type", content_type);
  raw.body = http::Blob(std::move(body));
  raw.request_id = "test-request-1";
  auto request = http::Request::parse(std::move(raw));
  http::Response res = router.dispatch(request);
  Reply r;
  r.status = res.status;
  r.content_type = std::string(res.headers.get("Content-Type").value_or(""));
  r.body = body_of(res);  // the request is still alive, as in the server
  r.headers = res.headers;
  return r;
}

inline std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace pixserve::testing
