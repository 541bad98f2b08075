// A response: status, headers and a body that is either a string or a
// producer streaming bytes to the client with backpressure.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http/headers.hpp"

namespace pixserve::http {

// Where a streaming producer writes. write() blocks while the client reads
// slower than the producer produces (at most one chunk of ~64 KiB is held),
// so a producer never piles data up in memory.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Sends bytes (buffered into chunks). Returns false once the client is gone
  // or too slow (write timeout); the producer should then return.
  virtual bool write(std::string_view bytes) = 0;
  // Sends what is buffered now (e.g. before a slow computation).
  virtual bool flush() = 0;
};

// Runs on a server worker thread after the handler returned; the Request the
// handler got is still alive while it runs. An exception thrown before the
// first 64 KiB left becomes a 500; after that the connection is cut so the
// client sees a truncated body, never a silently short one.
using Producer = std::function<void(BodyWriter&)>;

struct StreamBody {
  Producer producer;
  // Known length: sent with Content-Length (the producer must write exactly
  // that many bytes). Unknown: chunked transfer encoding.
  std::optional<std::uint64_t> length;
};

struct Response {
  int status = 200;
  Headers headers;
  std::variant<std::string, StreamBody> body;

  // A body given as a string.
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  // A streamed body.
  static Response stream(std::string content_type, Producer producer,
                         std::optional<std::uint64_t> length = std::nullopt);
  // A redirect (301, 302, 303, 307, 308) to `location`.
  static Response redirect(int status, std::string location);
  // A bodiless response (204, 304, ...).
  static Response empty(int status);

  bool is_stream() const noexcept { return std::holds_alternative<StreamBody>(body); }
};

// CORS, so that browser clients on other origins (Aladin Lite, Firefly) can
// call the services. Given the request's method and headers and the allowed
// origins ("*" for any; empty: CORS off), adds to `res`:
// - Access-Control-Allow-Origin ("*", or the request's Origin when it is
//   listed, with Vary: Origin) and Access-Control-Expose-Headers;
// - for a preflight (OPTIONS with Access-Control-Request-Method) answered
//   with a 2xx: Access-Control-Allow-Methods (the route's Allow header),
//   Access-Control-Allow-Headers (Authorization, Content-Type) and
//   Access-Control-Max-Age.
// Headers the handler set itself are kept. The server calls this for every
// response, errors included, so that the browser can read DALI error documents.
void apply_cors(Response& res, std::string_view method, const Headers& request_headers,
                const std::vector<std::string>& allowed_origins);

}  // namespace pixserve::http
