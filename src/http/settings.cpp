#include "http/settings.hpp"

#include <algorithm>
#include <stdexcept>

#include "http/proxy.hpp"

namespace pixserve::http {

namespace {

using settings::Section;
using S = ServerSettings;

bool has_control_or_quote(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b <= 0x20 || b == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\';
  });
}

std::string check_base_url(S& s) {
  std::string& u = s.base_url;
  if (u.empty()) return {};
  const bool scheme = u.starts_with("http://") || u.starts_with("https://");
  if (!scheme || has_control_or_quote(u) || u.find_first_of("?#") != std::string::npos) {
    return "expected an http:// or https:// URL without query, got '" + u + "'";
  }
  // Links are made as base_url + "/api/...".
  while (u.size() > 8 && u.back() == '/') u.pop_back();
  return {};
}

std::string check_cors_origins(S& s) {
  for (const auto& o : s.cors_origins) {
    // "*" or an origin as browsers send it: scheme://host[:port], no path.
    const bool scheme = o.starts_with("http://") || o.starts_with("https://");
    const std::size_t host_at = o.find("://") + 3;
    const bool clean = std::none_of(o.begin(), o.end(), [](char c) {
      const auto b = static_cast<unsigned char>(c);
      return b <= 0x20 || b >= 0x7f || c == '"' || c == ',' || c == '\\';
    });
    if (o != "*" && (!scheme || !clean || o.size() <= host_at || o.find_first_of("/?#", host_at) != std::string::npos))
      return "expected \"*\" or origins like https://example.org[:port], got '" + o + "'";
  }
  return {};
}

std::string check_trusted_proxies(S& s) {
  try {
    AddressSet parsed(s.trusted_proxies);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

Section<S> make_server_section() {
  using namespace settings;
  return {.name = "server",
          .doc = {},
          .keys = {
              text("host", &S::host, "listen address (0.0.0.0: every interface)").with_check([](S& s) {
                return s.host.empty() ? "must not be empty" : std::string();
              }),
              integer("port", &S::port, {.max = 65535},
                      "0 picks a free port (logged as \"listening on http://HOST:PORT\")"),
              integer("threads", &S::threads, {.max = 1024}, "request handler threads; 0: 4 x cores"),
              integer("io_threads", &S::io_threads, {.max = 64}, "network threads; 0: min(cores, 4)"),
              text("base_url", &S::base_url,
                   "Public URL of the server as clients see it (behind a proxy, with its path prefix). Absolute URLs "
                   "in VOSI capabilities, DataLink and OpenAPI use it; when unset they are built from the request's "
                   "Host header.")
                  .with_example("https://data.example.org/pixserve")
                  .with_check(check_base_url),
              path("spool_dir", &S::spool_dir, "large uploads are spooled here (default: the system temp dir)")
                  .with_example("/var/tmp"),
              list("trusted_proxies", &S::trusted_proxies,
                   "Load balancers / reverse proxies in front of pixserve (addresses or CIDR networks, e.g. "
                   "[127.0.0.1, 10.0.0.0/8]). Only from these is the client address they report believed: "
                   "X-Forwarded-For (for request logs and remote_address), or with proxy_protocol a PROXY protocol "
                   "v1/v2 header, which they must then send on every connection (and which the per-client connection "
                   "limit counts).")
                  .with_check(check_trusted_proxies),
              boolean("proxy_protocol", &S::proxy_protocol,
                      "true: trusted proxies send a PROXY header (HAProxy send-proxy, AWS NLB)")
                  .with_check([](S& s) {
                    return s.proxy_protocol && s.trusted_proxies.empty()
                               ? "needs server.trusted_proxies (the proxies that send the header)"
                               : std::string();
                  }),
          }};
}

Section<S> make_cors_section() {
  return {.name = "service",
          .doc = {},
          .keys = {settings::list("cors_origins", &S::cors_origins,
                                  "origins whose browser pages may call the services (CORS headers on every "
                                  "response): \"*\" any, [] none, or a list such as [https://aladin.cds.unistra.fr]")
                       .with_check(check_cors_origins)}};
}

Section<Limits> make_limits_section() {
  using namespace settings;
  using L = Limits;
  return {.name = "limits",
          .doc = {},
          .keys = {
              integer("max_body_bytes", &L::max_body_bytes, {.max = std::uint64_t{1} << 42},
                      "larger request bodies get 413"),
              integer("max_header_bytes", &L::max_header_bytes, {.max = 16u << 20, .min = 1024},
                      "larger request heads get 431"),
              integer("max_connections", &L::max_connections, {.max = 1'000'000, .min = 1},
                      "when full, connections still waiting for a request head are closed (oldest first) to make "
                      "room; with none left, new ones get 503"),
              // Above max_connections it simply never applies, so a larger value is not an error.
              integer("max_connections_per_client", &L::max_connections_per_client, {.max = 1'000'000, .min = 1},
                      "per client IP address (see server.trusted_proxies); more get 503"),
              seconds("header_timeout_s", &L::header_timeout, "to receive a request head (408)"),
              seconds("request_timeout_s", &L::request_timeout, "to receive a whole request (408)"),
              seconds("keepalive_timeout_s", &L::keepalive_timeout, "idle keep-alive connection"),
              seconds("write_timeout_s", &L::write_timeout, "one write to a client that does not read"),
              seconds("drain_timeout_s", &L::drain_timeout, "on SIGTERM, in-flight requests get this long"),
              integer("spool_threshold_bytes", &L::spool_threshold, {.max = std::uint64_t{1} << 40},
                      "uploads larger than this go to spool_dir"),
              integer("max_form_parts", &L::max_form_parts, {.max = 1'000'000, .min = 1},
                      "parts of one multipart/form-data request"),
          }};
}

}  // namespace

const settings::Section<ServerSettings>& server_section() {
  static const Section<S> section = make_server_section();
  return section;
}

const settings::Section<ServerSettings>& cors_section() {
  static const Section<S> section = make_cors_section();
  return section;
}

const settings::Section<Limits>& limits_section() {
  static const Section<Limits> section = make_limits_section();
  return section;
}

void validate(ServerSettings& server) {
  settings::check(server_section(), server);
  settings::check(cors_section(), server);
  settings::check(limits_section(), server.limits);
}

}  // namespace pixserve::http
