// Server configuration and its YAML file. Every key, with its default and
// what it does, is listed in docs/pixserve.example.yaml; the defaults are
// the member initialisers below, and a unit test (HttpConfig.
// ExampleFileListsEveryKeyWithItsDefault) checks that the example file
// names exactly the keys config_keys() declares and that loading it gives
// a default-constructed ServerConfig.
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
//
// Unknown keys and values of the wrong type are errors naming the key.
// Command-line flags override the file: load it, then assign the fields.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

struct ServerConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  unsigned threads = 0;     // 0: 4 x hardware threads
  unsigned io_threads = 0;  // 0: min(hardware threads, 4)
  std::string base_url;     // no trailing '/'; empty: from the Host header
  std::filesystem::path spool_dir;
  // Peers whose X-Forwarded-For / PROXY header names the client (see above).
  std::vector<std::string> trusted_proxies;
  bool proxy_protocol = false;
  std::string authority;       // expected authority of the repository (checked by serve); empty: any
  // The rest of the `service` section is read by src/services, not by the HTTP layer.
  std::filesystem::path web_root;        // empty: looked up near the binary
  std::filesystem::path swagger_ui_dir;  // empty: node_modules/swagger-ui-dist beside web_root
  std::uint64_t min_free_disk_bytes = std::uint64_t{1} << 30;
  std::int64_t maxrec_default = 10'000;
  std::int64_t maxrec_limit = 100'000;
  // CORS (service.cors_origins): origins whose browser pages may call the
  // services (Aladin Lite, Firefly elsewhere); "*" allows any, an empty list
  // sends no CORS headers. Applied by the HTTP server to every response.
  std::vector<std::string> cors_origins{"*"};
  bool handle_signals = true;  // SIGINT/SIGTERM stop run() gracefully (not from the file)
  Limits limits;
  // Asynchronous (UWS) jobs of every service, read by src/services.
  struct Jobs {
    unsigned threads = 2;  // jobs executing at once, over all async services
    std::uint64_t max_queued = 1000;
    std::chrono::milliseconds execution_duration{600'000};      // default EXECUTIONDURATION
    std::chrono::milliseconds max_execution_duration{3'600'000};
    std::chrono::milliseconds retention{7LL * 24 * 3'600'000};  // default DESTRUCTION - creation
    std::chrono::milliseconds max_retention{30LL * 24 * 3'600'000};
    std::filesystem::path dir{};  // result files; empty: <repository>/jobs
    friend bool operator==(const Jobs&, const Jobs&) = default;
  } jobs;
  // TAP limits (section `tap`), read by src/services (services::TapOptions).
  struct Tap {
    std::chrono::milliseconds sync_time_limit{60'000};  // a /sync query is interrupted after this
    std::uint64_t max_result_bytes = 256ull << 20;      // rows kept per query (estimated)
    std::uint64_t max_upload_bytes = 16ull << 20;       // one uploaded VOTable
    std::size_t max_upload_rows = 100'000;
    std::size_t max_query_length = 100'000;  // characters of ADQL
    // UPLOAD=name,http://...: fetched with this deadline; hosts resolving to
    // loopback, private or link-local addresses are refused unless allowed.
    std::chrono::milliseconds upload_fetch_timeout{15'000};
    bool upload_allow_private_hosts = false;
    friend bool operator==(const Tap&, const Tap&) = default;
  } tap;
  // HiPS maps (section `hips`), read by src/services.
  struct Hips {
    std::filesystem::path root{};  // folder of the maps; empty: <repository>/hips
    int public_max_order = 9;      // deepest order of the public endpoint /api/hips/<map>/
    std::string full_access = "closed";  // /api/hips/full/<map>/: "closed" (data-rights holders) or "open" (everyone)
    friend bool operator==(const Hips&, const Hips&) = default;
  } hips;
  // Identity and rights (section `auth`), read by src/auth and src/services.
  struct Auth {
    std::string realm = "pixserve";  // WWW-Authenticate realm
    std::vector<std::string> data_rights_groups{"data-rights"};   // see data-rights datasets
    std::vector<std::string> embargo_exempt_groups{"staff"};      // see visit data before its release
    std::filesystem::path jwt_public_key{};  // PEM file of the identity provider's RSA key; empty: no JWT
    std::string jwt_issuer{};                // required with jwt_public_key
    std::string jwt_audience{};              // required with jwt_public_key
    std::string jwt_user_claim = "sub";
    std::string jwt_groups_claim = "groups";
    std::int64_t jwt_leeway_s = 60;
    friend bool operator==(const Auth&, const Auth&) = default;
  } auth;
  // Level-3 user images (section `user_images`), read by src/services.
  struct UserImages {
    bool enabled = true;
    std::string collection = "user";                      // collection they are registered in
    std::uint64_t max_file_bytes = std::uint64_t{100} << 20;  // one upload
    std::uint64_t quota_bytes = std::uint64_t{1} << 30;       // all images of one user
    friend bool operator==(const UserImages&, const UserImages&) = default;
  } user_images;

  friend bool operator==(const ServerConfig&, const ServerConfig&) = default;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a YAML configuration file over the defaults. Throws ConfigError
// naming the file, the key and the line.
ServerConfig load_config(const std::filesystem::path& path);
// Same from text; `source` names it in messages.
ServerConfig config_from_yaml(std::string_view text, std::string_view source = "<config>");
// Every key the file may hold, as "section.key", in the loader's order.
std::vector<std::string> config_keys();

// Checks values (port range, positive limits, base_url form) and normalizes
// base_url (trailing '/' removed). Throws ConfigError.
void validate(ServerConfig& config);

}  // namespace pixserve::http
