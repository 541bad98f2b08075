// The HTTP server's settings: sections `server` and `limits` of the
// configuration file, and `service.cors_origins`. The defaults are the
// member initialisers below; server_sections() declares the keys (what the
// file, the command line and docs/pixserve.example.yaml use, see
// settings/settings.hpp).
//
// Connections and clients: a client is known by its IP address - the TCP
// peer's, or for a connection from one of server.trusted_proxies (addresses
// or CIDR networks) the address that proxy reports: in a PROXY protocol
// header when server.proxy_protocol is true (then required from those
// peers, and the per-client limit counts that address), else in
// X-Forwarded-For (used for RawRequest::remote_address and the access log;
// the proxy's connections are not counted per client, since it sends the
// requests of many clients over each). X-Forwarded-For and PROXY headers from
// any other peer are never believed. When max_connections are open, a new
// connection first closes the oldest connection that has not sent a whole
// request head yet (keep-alive connections idle between requests are kept);
// only when there is none is it refused with 503.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "settings/settings.hpp"

namespace pixserve::http {

struct Limits {
  std::uint64_t max_body_bytes = 64ull << 20;
  std::uint32_t max_header_bytes = 64u << 10;
  std::size_t max_connections = 1024;
  // One address may hold at most this many: an eighth of the default
  // max_connections, so a single client (or a slowloris sender) cannot take
  // every slot, while a NATed office or a benchmark with dozens of
  // connections still fits.
  std::size_t max_connections_per_client = 128;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds request_timeout{60'000};
  std::chrono::milliseconds keepalive_timeout{15'000};
  std::chrono::milliseconds write_timeout{60'000};
  std::chrono::milliseconds drain_timeout{30'000};
  std::uint64_t spool_threshold = 1u << 20;
  std::size_t max_form_parts = 1000;
  friend bool operator==(const Limits&, const Limits&) = default;
};

struct ServerSettings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 0;     // 0: 4 x hardware threads
  unsigned io_threads = 0;  // 0: min(hardware threads, 4)
  std::string base_url;     // no trailing '/'; empty: from the Host header
  std::filesystem::path spool_dir;
  // Peers whose X-Forwarded-For / PROXY header names the client (see above).
  std::vector<std::string> trusted_proxies;
  bool proxy_protocol = false;
  // CORS (service.cors_origins): origins whose browser pages may call the
  // services (Aladin Lite, Firefly elsewhere); "*" allows any, an empty list
  // sends no CORS headers. Applied by the HTTP server to every response.
  std::vector<std::string> cors_origins{"*"};
  bool handle_signals = true;  // SIGINT/SIGTERM stop run() gracefully (not from the file)
  Limits limits;
  friend bool operator==(const ServerSettings&, const ServerSettings&) = default;
};

// The keys of section server; of section service, cors_origins (the rest of
// that section belongs to the services); of section limits.
const settings::Section<ServerSettings>& server_section();
const settings::Section<ServerSettings>& cors_section();
const settings::Section<Limits>& limits_section();

// Checks the values (host, base_url form, proxies, CORS origins, positive
// limits) and normalises base_url (trailing '/' removed). Throws
// settings::ConfigError naming the key.
void validate(ServerSettings& server);

}  // namespace pixserve::http
