#include "tap/fetch.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fmt/format.h>

#include "dali/params.hpp"

namespace pixserve::tap {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

bool public_v4(const asio::ip::address_v4& a) {
  const auto b = a.to_bytes();
  if (b[0] == 0 || b[0] == 10 || b[0] == 127) return false;         // this network, private, loopback
  if (b[0] == 100 && (b[1] & 0xc0) == 64) return false;             // CGNAT 100.64/10
  if (b[0] == 169 && b[1] == 254) return false;                     // link-local
  if (b[0] == 172 && (b[1] & 0xf0) == 16) return false;             // 172.16/12
  if (b[0] == 192 && b[1] == 168) return false;                     // 192.168/16
  if (b[0] == 192 && b[1] == 0 && b[2] == 0) return false;          // IETF protocol assignments
  if (b[0] == 198 && (b[1] & 0xfe) == 18) return false;             // benchmarking 198.18/15
  if (b[0] >= 224) return false;                                    // multicast, reserved, broadcast
  return true;
}

bool public_address(const asio::ip::address& a) {
  if (a.is_v4()) return public_v4(a.to_v4());
  const auto v6 = a.to_v6();
  if (v6.is_v4_mapped()) return public_v4(asio::ip::make_address_v4(asio::ip::v4_mapped, v6));
  if (v6.is_loopback() || v6.is_unspecified() || v6.is_link_local() || v6.is_site_local() || v6.is_multicast()) {
    return false;
  }
  const auto b = v6.to_bytes();
  if ((b[0] & 0xfe) == 0xfc) return false;  // unique local fc00::/7
  return true;
}

struct Url {
  std::string host, port = "80", target = "/";
};

Url parse_url(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return dali::usage_error(fmt::format("UPLOAD: '{}': {}", url.substr(0, 120), why));
  };
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) throw bad("only http:// URLs (or inline param:) are accepted");
  std::string_view rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  Url u;
  if (slash != std::string_view::npos) u.target = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) throw bad("user information in URLs is not accepted");
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw bad("malformed host");
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw bad("malformed host");
      u.port = std::string(authority.substr(close + 2));
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) throw bad("no host");
  for (const char c : u.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) throw bad("invalid characters");
  }
  if (u.port.empty() || u.port.size() > 5 || u.port.find_first_not_of("0123456789") != std::string::npos) {
    throw bad("invalid port");
  }
  return u;
}

}  // namespace

bool is_public_address(std::string_view address) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(std::string(address), ec);
  return !ec && public_address(a);
}

std::string fetch_upload(std::string_view url, const TapSettings& settings) {
  const Url u = parse_url(url);
  const auto fail = [&](std::string_view why) {
    return dali::usage_error(fmt::format("UPLOAD: fetching '{}' failed: {}", url.substr(0, 120), why));
  };
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  const auto results = resolver.resolve(u.host, u.port, ec);
  if (ec || results.empty()) throw fail("the host does not resolve");
  std::vector<tcp::endpoint> endpoints;
  for (const auto& r : results) {
    if (!settings.upload_allow_private_hosts && !public_address(r.endpoint().address())) {
      throw fail("the host is not a public address (loopback, private and link-local hosts are refused)");
    }
    endpoints.push_back(r.endpoint());
  }
  beast::tcp_stream stream(io);
  stream.expires_after(settings.upload_fetch_timeout);
  // Connect to the checked addresses themselves (no second resolution).
  stream.connect(endpoints.front(), ec);
  if (ec) throw fail("cannot connect");
  beast::http::request<beast::http::empty_body> req{beast::http::verb::get, u.target, 11};
  req.set(beast::http::field::host, u.host);
  req.set(beast::http::field::user_agent, "pixserve-tap");
  req.set(beast::http::field::accept, "application/x-votable+xml, text/xml, */*");
  beast::http::write(stream, req, ec);
  if (ec) throw fail("cannot send the request");
  beast::flat_buffer buffer;
  beast::http::response_parser<beast::http::string_body> parser;
  parser.body_limit(settings.max_upload_bytes);
  parser.header_limit(64 * 1024);
  beast::http::read(stream, buffer, parser, ec);
  if (ec == beast::http::error::body_limit) {
    throw fail(fmt::format("the table is larger than the limit of {} bytes", settings.max_upload_bytes));
  }
  if (ec == beast::error::timeout) throw fail("timed out");
  if (ec) throw fail("bad HTTP response");
  const auto& res = parser.get();
  if (res.result_int() != 200) throw fail(fmt::format("HTTP status {} (redirects are not followed)", res.result_int()));
  return res.body();
}

}  // namespace pixserve::tap
