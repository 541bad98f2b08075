#include "http/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>

#include "http/proxy.hpp"

namespace pixserve::http {

namespace {

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& why) const {
    std::string where = source_;
    if (node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
    throw ConfigError(where + ": " + key + ": " + why);
  }

  std::string scalar(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) fail(node, key, "expected a single value");
    return node.Scalar();
  }

  std::string string(const YAML::Node& node, const std::string& key) const { return scalar(node, key); }

  // A list of strings; a single value is taken as a list of one.
  std::vector<std::string> strings(const YAML::Node& node, const std::string& key) const {
    if (node.IsScalar()) return {node.Scalar()};
    if (!node.IsSequence()) fail(node, key, "expected a list of values");
    std::vector<std::string> out;
    for (const auto& item : node) out.push_back(scalar(item, key));
    return out;
  }

  std::uint64_t integer(const YAML::Node& node, const std::string& key, std::uint64_t max) const {
    std::string text = scalar(node, key);
    std::uint64_t value = 0;
    bool ok = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
              text.size() <= 19;
    if (ok) value = std::stoull(text);
    if (!ok || value > max)
      fail(node, key, "expected an integer from 0 to " + std::to_string(max) + ", got '" + text + "'");
    return value;
  }

  bool boolean(const YAML::Node& node, const std::string& key) const {
    const std::string text = scalar(node, key);
    if (text != "true" && text != "false") fail(node, key, "expected true or false, got '" + text + "'");
    return text == "true";
  }

  std::chrono::milliseconds seconds(const YAML::Node& node, const std::string& key) const {
    std::string text = scalar(node, key);
    double s = 0;
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    in >> s;
    if (in.fail() || !in.eof() || !std::isfinite(s) || s <= 0 || s > 1e7)
      fail(node, key, "expected a positive number of seconds, got '" + text + "'");
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
  }

 private:
  std::string source_;
};

using Setter = std::function<void(const Reader&, const YAML::Node&, const std::string&, ServerConfig&)>;

const std::map<std::string, std::map<std::string, Setter>>& schema() {
  using C = ServerConfig;
  using R = Reader;
  using N = YAML::Node;
  using S = std::string;
  static const std::map<std::string, std::map<std::string, Setter>> table = {
      {"server",
       {
           {"host", [](const R& r, const N& n, const S& k, C& c) { c.host = r.string(n, k); }},
           {"port", [](const R& r, const N& n, const S& k,
                       C& c) { c.port = static_cast<std::uint16_t>(r.integer(n, k, 65535)); }},
           {"threads",
            [](const R& r, const N& n, const S& k, C& c) { c.threads = static_cast<unsigned>(r.integer(n, k, 1024)); }},
           {"io_threads", [](const R& r, const N& n, const S& k,
                             C& c) { c.io_threads = static_cast<unsigned>(r.integer(n, k, 64)); }},
           {"base_url", [](const R& r, const N& n, const S& k, C& c) { c.base_url = r.string(n, k); }},
           {"spool_dir", [](const R& r, const N& n, const S& k, C& c) { c.spool_dir = r.string(n, k); }},
           {"trusted_proxies", [](const R& r, const N& n, const S& k, C& c) { c.trusted_proxies = r.strings(n, k); }},
           {"proxy_protocol", [](const R& r, const N& n, const S& k, C& c) { c.proxy_protocol = r.boolean(n, k); }},
       }},
      {"service",
       {
           {"authority", [](const R& r, const N& n, const S& k, C& c) { c.authority = r.string(n, k); }},
           {"web_root", [](const R& r, const N& n, const S& k, C& c) { c.web_root = r.string(n, k); }},
           {"swagger_ui_dir", [](const R& r, const N& n, const S& k, C& c) { c.swagger_ui_dir = r.string(n, k); }},
           {"min_free_disk_mb", [](const R& r, const N& n, const S& k, C& c) { c.min_free_disk_bytes = r.integer(n, k, std::uint64_t{1} << 30) << 20; }},
           {"maxrec_default", [](const R& r, const N& n, const S& k, C& c) { c.maxrec_default = static_cast<std::int64_t>(r.integer(n, k, std::uint64_t{1} << 40)); }},
           {"maxrec_limit", [](const R& r, const N& n, const S& k, C& c) { c.maxrec_limit = static_cast<std::int64_t>(r.integer(n, k, std::uint64_t{1} << 40)); }},
           {"cors_origins", [](const R& r, const N& n, const S& k, C& c) { c.cors_origins = r.strings(n, k); }},
       }},
      {"jobs",
       {
           {"threads", [](const R& r, const N& n, const S& k,
                          C& c) { c.jobs.threads = static_cast<unsigned>(r.integer(n, k, 256)); }},
           {"max_queued", [](const R& r, const N& n, const S& k, C& c) { c.jobs.max_queued = r.integer(n, k, 1'000'000); }},
           {"execution_duration_s",
            [](const R& r, const N& n, const S& k, C& c) { c.jobs.execution_duration = r.seconds(n, k); }},
           {"max_execution_duration_s",
            [](const R& r, const N& n, const S& k, C& c) { c.jobs.max_execution_duration = r.seconds(n, k); }},
           {"retention_s", [](const R& r, const N& n, const S& k, C& c) { c.jobs.retention = r.seconds(n, k); }},
           {"max_retention_s",
            [](const R& r, const N& n, const S& k, C& c) { c.jobs.max_retention = r.seconds(n, k); }},
           {"dir", [](const R& r, const N& n, const S& k, C& c) { c.jobs.dir = r.string(n, k); }},
       }},
      {"hips",
       {
           {"root", [](const R& r, const N& n, const S& k, C& c) { c.hips.root = r.string(n, k); }},
           {"public_max_order",
            [](const R& r, const N& n, const S& k, C& c) { c.hips.public_max_order = static_cast<int>(r.integer(n, k, 20)); }},
           {"full_access", [](const R& r, const N& n, const S& k, C& c) { c.hips.full_access = r.string(n, k); }},
       }},
      {"auth",
       {
           {"realm", [](const R& r, const N& n, const S& k, C& c) { c.auth.realm = r.string(n, k); }},
           {"data_rights_groups", [](const R& r, const N& n, const S& k, C& c) { c.auth.data_rights_groups = r.strings(n, k); }},
           {"embargo_exempt_groups",
            [](const R& r, const N& n, const S& k, C& c) { c.auth.embargo_exempt_groups = r.strings(n, k); }},
           {"jwt_public_key", [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_public_key = r.string(n, k); }},
           {"jwt_issuer", [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_issuer = r.string(n, k); }},
           {"jwt_audience", [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_audience = r.string(n, k); }},
           {"jwt_user_claim", [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_user_claim = r.string(n, k); }},
           {"jwt_groups_claim", [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_groups_claim = r.string(n, k); }},
           {"jwt_leeway_s",
            [](const R& r, const N& n, const S& k, C& c) { c.auth.jwt_leeway_s = static_cast<std::int64_t>(r.integer(n, k, 3600)); }},
       }},
      {"tap",
       {
           {"sync_time_limit_s", [](const R& r, const N& n, const S& k, C& c) { c.tap.sync_time_limit = r.seconds(n, k); }},
           {"max_result_mb",
            [](const R& r, const N& n, const S& k, C& c) { c.tap.max_result_bytes = r.integer(n, k, 1 << 20) << 20; }},
           {"max_upload_mb",
            [](const R& r, const N& n, const S& k, C& c) { c.tap.max_upload_bytes = r.integer(n, k, 1 << 16) << 20; }},
           {"max_upload_rows", [](const R& r, const N& n, const S& k, C& c) { c.tap.max_upload_rows = r.integer(n, k, 100'000'000); }},
           {"max_query_length",
            [](const R& r, const N& n, const S& k, C& c) { c.tap.max_query_length = r.integer(n, k, 10'000'000); }},
           {"upload_fetch_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.tap.upload_fetch_timeout = r.seconds(n, k); }},
           {"upload_allow_private_hosts",
            [](const R& r, const N& n, const S& k, C& c) { c.tap.upload_allow_private_hosts = r.boolean(n, k); }},
       }},
      {"user_images",
       {
           {"enabled", [](const R& r, const N& n, const S& k, C& c) { c.user_images.enabled = r.boolean(n, k); }},
           {"collection", [](const R& r, const N& n, const S& k, C& c) { c.user_images.collection = r.string(n, k); }},
           {"max_file_mb",
            [](const R& r, const N& n, const S& k, C& c) { c.user_images.max_file_bytes = r.integer(n, k, std::uint64_t{1} << 30) << 20; }},
           {"quota_mb",
            [](const R& r, const N& n, const S& k, C& c) { c.user_images.quota_bytes = r.integer(n, k, std::uint64_t{1} << 30) << 20; }},
       }},
      {"limits",
       {
           {"max_body_bytes", [](const R& r, const N& n, const S& k,
                                 C& c) { c.limits.max_body_bytes = r.integer(n, k, std::uint64_t{1} << 42); }},
           {"max_header_bytes",
            [](const R& r, const N& n, const S& k, C& c) {
              c.limits.max_header_bytes = static_cast<std::uint32_t>(r.integer(n, k, 16u << 20));
            }},
           {"max_connections",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.max_connections = r.integer(n, k, 1'000'000); }},
           {"max_connections_per_client",
            [](const R& r, const N& n, const S& k, C& c) {
              c.limits.max_connections_per_client = r.integer(n, k, 1'000'000);
            }},
           {"header_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.header_timeout = r.seconds(n, k); }},
           {"request_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.request_timeout = r.seconds(n, k); }},
           {"keepalive_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.keepalive_timeout = r.seconds(n, k); }},
           {"write_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.write_timeout = r.seconds(n, k); }},
           {"drain_timeout_s",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.drain_timeout = r.seconds(n, k); }},
           {"spool_threshold_bytes", [](const R& r, const N& n, const S& k,
                                        C& c) { c.limits.spool_threshold = r.integer(n, k, std::uint64_t{1} << 40); }},
           {"max_form_parts",
            [](const R& r, const N& n, const S& k, C& c) { c.limits.max_form_parts = r.integer(n, k, 1'000'000); }},
       }},
  };
  return table;
}

}  // namespace

ServerConfig config_from_yaml(std::string_view text, std::string_view source) {
  Reader reader{std::string(source)};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(source) + ": " + e.what());
  }
  ServerConfig config;
  if (root.IsNull()) return config;  // an empty file keeps the defaults
  if (!root.IsMap()) reader.fail(root, "(top level)", "expected a mapping of sections");
  const auto& table = schema();
  for (const auto& section : root) {
    std::string name = reader.scalar(section.first, "(section name)");
    auto s = table.find(name);
    if (s == table.end()) reader.fail(section.first, name, "unknown section (known: server, service, jobs, tap, hips, limits, auth, user_images)");
    if (section.second.IsNull()) continue;
    if (!section.second.IsMap()) reader.fail(section.second, name, "expected a mapping");
    for (const auto& entry : section.second) {
      std::string key = reader.scalar(entry.first, name + ".(key)");
      std::string full = name + "." + key;
      auto setter = s->second.find(key);
      if (setter == s->second.end()) reader.fail(entry.first, full, "unknown key");
      setter->second(reader, entry.second, full, config);
    }
  }
  validate(config);
  return config;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const auto& [section, entries] : schema()) {
    for (const auto& [key, setter] : entries) keys.push_back(section + "." + key);
  }
  return keys;
}

ServerConfig load_config(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot open the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return config_from_yaml(text.str(), path.string());
}

void validate(ServerConfig& config) {
  if (config.host.empty()) throw ConfigError("server.host: must not be empty");
  if (!config.base_url.empty()) {
    const std::string& u = config.base_url;
    bool scheme = u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0;
    bool clean = std::none_of(u.begin(), u.end(), [](char c) {
      auto b = static_cast<unsigned char>(c);
      return b <= 0x20 || b == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\';
    });
    if (!scheme || !clean || u.find('?') != std::string::npos || u.find('#') != std::string::npos)
      throw ConfigError("server.base_url: expected an http:// or https:// URL without query, got '" + u + "'");
    while (config.base_url.size() > 8 && config.base_url.back() == '/') config.base_url.pop_back();
  }
  if (config.maxrec_limit < 1) throw ConfigError("service.maxrec_limit: must be at least 1");
  if (config.hips.full_access != "open" && config.hips.full_access != "closed")
    throw ConfigError("hips.full_access: expected open or closed, got '" + config.hips.full_access + "'");
  if (config.maxrec_default < 0 || config.maxrec_default > config.maxrec_limit)
    throw ConfigError("service.maxrec_default: must be from 0 to service.maxrec_limit (" +
                      std::to_string(config.maxrec_limit) + ")");
  for (const auto& o : config.cors_origins) {
    // "*" or an origin as browsers send it: scheme://host[:port], no path.
    const bool scheme = o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0;
    const std::size_t host_at = o.find("://") + 3;
    const bool clean = std::none_of(o.begin(), o.end(), [](char c) {
      auto b = static_cast<unsigned char>(c);
      return b <= 0x20 || b >= 0x7f || c == '"' || c == ',' || c == '\\';
    });
    if (o != "*" && (!scheme || !clean || o.size() <= host_at || o.find_first_of("/?#", host_at) != std::string::npos))
      throw ConfigError("service.cors_origins: expected \"*\" or origins like https://example.org[:port], got '" + o + "'");
  }
  const Limits& l = config.limits;
  if (l.max_connections == 0) throw ConfigError("limits.max_connections: must be at least 1");
  // Above max_connections it simply never applies, so a larger value is not an error.
  if (l.max_connections_per_client == 0) throw ConfigError("limits.max_connections_per_client: must be at least 1");
  try {
    AddressSet trusted(config.trusted_proxies);
  } catch (const std::invalid_argument& e) {
    throw ConfigError(std::string("server.trusted_proxies: ") + e.what());
  }
  if (config.proxy_protocol && config.trusted_proxies.empty())
    throw ConfigError("server.proxy_protocol: needs server.trusted_proxies (the proxies that send the header)");
  if (l.max_header_bytes < 1024) throw ConfigError("limits.max_header_bytes: must be at least 1024");
  if (l.max_form_parts == 0) throw ConfigError("limits.max_form_parts: must be at least 1");
  for (auto [name, t] : {std::pair{"header_timeout_s", l.header_timeout},
                         {"request_timeout_s", l.request_timeout},
                         {"keepalive_timeout_s", l.keepalive_timeout},
                         {"write_timeout_s", l.write_timeout},
                         {"drain_timeout_s", l.drain_timeout}})
    if (t.count() <= 0) throw ConfigError(std::string("limits.") + name + ": must be positive");
  const auto& a = config.auth;
  const auto name_ok = [](const std::string& g) {
    return !g.empty() && g.size() <= 64 && std::all_of(g.begin(), g.end(), [](char ch) {
      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
    });
  };
  const bool realm_ok = !a.realm.empty() && std::none_of(a.realm.begin(), a.realm.end(), [](char ch) {
    auto b = static_cast<unsigned char>(ch);
    return b < 0x20 || b >= 0x7f || ch == '"' || ch == '\\';
  });
  if (!realm_ok) throw ConfigError("auth.realm: expected printable ASCII without quotes or backslashes, got '" + a.realm + "'");
  for (const auto* list : {&a.data_rights_groups, &a.embargo_exempt_groups})
    for (const auto& g : *list)
      if (!name_ok(g)) throw ConfigError("auth: group names are 1-64 characters of [A-Za-z0-9._-], got '" + g + "'");
  if (!a.jwt_public_key.empty() && (a.jwt_issuer.empty() || a.jwt_audience.empty()))
    throw ConfigError("auth.jwt_public_key: needs auth.jwt_issuer and auth.jwt_audience");
  if (a.jwt_public_key.empty() && (!a.jwt_issuer.empty() || !a.jwt_audience.empty()))
    throw ConfigError("auth.jwt_issuer/jwt_audience: set auth.jwt_public_key too (the key verifying the tokens)");
  if (a.jwt_user_claim.empty() || a.jwt_groups_claim.empty()) throw ConfigError("auth.jwt_*_claim: must not be empty");
  if (!name_ok(config.user_images.collection) || !std::isalnum(static_cast<unsigned char>(config.user_images.collection.front())))
    throw ConfigError("user_images.collection: expected letters, digits, '.', '_', '-', got '" + config.user_images.collection + "'");
  if (config.user_images.max_file_bytes == 0) throw ConfigError("user_images.max_file_mb: must be at least 1");
  if (config.tap.max_result_bytes == 0) throw ConfigError("tap.max_result_mb: must be at least 1");
  if (config.tap.max_upload_rows == 0) throw ConfigError("tap.max_upload_rows: must be at least 1");
  if (config.tap.max_query_length < 16) throw ConfigError("tap.max_query_length: must be at least 16");
  const auto& j = config.jobs;
  if (j.threads == 0) throw ConfigError("jobs.threads: must be at least 1");
  if (j.max_queued == 0) throw ConfigError("jobs.max_queued: must be at least 1");
  if (j.execution_duration > j.max_execution_duration)
    throw ConfigError("jobs.execution_duration_s: must not exceed jobs.max_execution_duration_s");
  if (j.retention > j.max_retention) throw ConfigError("jobs.retention_s: must not exceed jobs.max_retention_s");
}

}  // namespace pixserve::http
