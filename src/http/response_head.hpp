// The head of a response as the server writes it: status line, the
// handler's fields (checked), and the fields the server owns (Date, Server,
// X-Request-Id, framing, Connection). Internal to the server
// (server.cpp, connection*.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/string.hpp>

#include "http/headers.hpp"

namespace pixserve::http::detail {

// Beast 1.74 uses boost::string_view; the rest of pixserve uses std's.
inline std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

enum class Framing { none, length, chunked };

struct ResponseHead {
  int status = 200;
  Framing framing = Framing::none;
  std::uint64_t length = 0;
  bool close = false;
  bool http10_keep_alive = false;
};

// Serializes a response head; nullopt if the handler's headers are invalid.
std::optional<std::string> build_head(const ResponseHead& h, const Headers& headers, const std::string& request_id);

bool has_no_body(int status);

// The answer to a connection the server has no room for. Short enough for a
// fresh socket's send buffer, so it can be written without waiting.
std::string busy_response(const std::string& request_id);

}  // namespace pixserve::http::detail
