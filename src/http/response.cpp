#include "http/response.hpp"

#include <algorithm>
#include <utility>

namespace pixserve::http {

Response Response::text(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

Response Response::stream(std::string content_type, Producer producer, std::optional<std::uint64_t> length) {
  Response r;
  r.headers.set("Content-Type", std::move(content_type));
  r.body = StreamBody{std::move(producer), length};
  return r;
}

Response Response::redirect(int status, std::string location) {
  Response r = text(status, "see " + location + "\n");
  r.headers.set("Location", std::move(location));
  return r;
}

Response Response::empty(int status) {
  Response r;
  r.status = status;
  return r;
}

void apply_cors(Response& res, std::string_view method, const Headers& request_headers,
                const std::vector<std::string>& allowed_origins) {
  if (allowed_origins.empty() || res.headers.has("Access-Control-Allow-Origin")) return;
  const bool any = std::find(allowed_origins.begin(), allowed_origins.end(), "*") != allowed_origins.end();
  const auto origin = request_headers.get("Origin");
  if (any) {
    res.headers.set("Access-Control-Allow-Origin", "*");
  } else {
    // The answer depends on Origin: caches must not reuse it for another.
    res.headers.add("Vary", "Origin");
    // Origins compare exactly (scheme and host are case-insensitive, but
    // browsers send them in lower case).
    if (!origin || std::find(allowed_origins.begin(), allowed_origins.end(), *origin) == allowed_origins.end()) return;
    res.headers.set("Access-Control-Allow-Origin", std::string(*origin));
  }
  res.headers.set("Access-Control-Expose-Headers", "X-Request-Id, Content-Disposition, Content-Range, Location");
  const bool preflight = method == "OPTIONS" && request_headers.has("Access-Control-Request-Method");
  if (!preflight || res.status < 200 || res.status > 299) return;
  std::string methods(res.headers.get("Allow").value_or("GET, POST, HEAD, OPTIONS"));
  if (!res.headers.has("Access-Control-Allow-Methods")) res.headers.set("Access-Control-Allow-Methods", methods);
  if (!res.headers.has("Access-Control-Allow-Headers"))
    res.headers.set("Access-Control-Allow-Headers", "Authorization, Content-Type");
  if (!res.headers.has("Access-Control-Max-Age")) res.headers.set("Access-Control-Max-Age", "86400");
}

}  // namespace pixserve::http
