#include "http/response.hpp"

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

}  // namespace pixserve::http
