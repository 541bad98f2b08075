// The configuration file: every section's keys read into the components'
// settings, and refused values named by file, line and key.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "test_scratch.hpp"

namespace pixserve::config {
namespace {

using namespace std::chrono_literals;

// The message of the ConfigError a configuration text raises ("no error": none).
std::string config_error(const std::string& yaml) {
  try {
    from_yaml(yaml, "test.yaml");
  } catch (const settings::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ConfigFile, ReadsEveryKey) {
  auto c = from_yaml(R"(
server:
  host: 0.0.0.0
  port: 9090
  threads: 8
  io_threads: 2
  base_url: https://data.example.org/pixserve/
  spool_dir: /var/tmp
service:
  authority: example.org
limits:
  max_body_bytes: 1000000
  max_header_bytes: 32768
  max_connections: 50
  header_timeout_s: 2.5
  request_timeout_s: 30
  keepalive_timeout_s: 5
  write_timeout_s: 20
  drain_timeout_s: 10
  spool_threshold_bytes: 4096
  max_form_parts: 20
)");
  EXPECT_EQ(c.server.host, "0.0.0.0");
  EXPECT_EQ(c.server.port, 9090);
  EXPECT_EQ(c.server.threads, 8u);
  EXPECT_EQ(c.server.io_threads, 2u);
  EXPECT_EQ(c.server.base_url, "https://data.example.org/pixserve");
  EXPECT_EQ(c.server.spool_dir, "/var/tmp");
  EXPECT_EQ(c.service.authority, "example.org");
  const auto& l = c.server.limits;
  EXPECT_EQ(l.max_body_bytes, 1000000u);
  EXPECT_EQ(l.max_header_bytes, 32768u);
  EXPECT_EQ(l.max_connections, 50u);
  EXPECT_EQ(l.header_timeout, 2500ms);
  EXPECT_EQ(l.request_timeout, 30s);
  EXPECT_EQ(l.keepalive_timeout, 5s);
  EXPECT_EQ(l.write_timeout, 20s);
  EXPECT_EQ(l.drain_timeout, 10s);
  EXPECT_EQ(l.spool_threshold, 4096u);
  EXPECT_EQ(l.max_form_parts, 20u);

  auto defaults = from_yaml("");
  EXPECT_EQ(defaults.server.port, 8080);
  EXPECT_EQ(defaults.server.host, "127.0.0.1");
  EXPECT_EQ(defaults.server.cors_origins, std::vector<std::string>{"*"});

  auto cors = from_yaml("service:\n  cors_origins: [https://a.example.org, 'http://localhost:8000']\n");
  EXPECT_EQ(cors.server.cors_origins, (std::vector<std::string>{"https://a.example.org", "http://localhost:8000"}));
  EXPECT_TRUE(from_yaml("service:\n  cors_origins: []\n").server.cors_origins.empty());
  EXPECT_EQ(from_yaml("service:\n  cors_origins: '*'\n").server.cors_origins, std::vector<std::string>{"*"});

  auto maxrec = from_yaml("service:\n  maxrec_default: 5\n  maxrec_limit: 50\n  min_free_disk_mb: 3\n");
  EXPECT_EQ(maxrec.results, (dali::ResultLimits{.default_maxrec = 5, .max_maxrec = 50}));
  EXPECT_EQ(maxrec.service.min_free_disk_bytes, 3u << 20);

  auto jobs = from_yaml(
      "jobs:\n  threads: 3\n  max_queued: 10\n  execution_duration_s: 30\n  max_execution_duration_s: 60\n"
      "  retention_s: 3600\n  max_retention_s: 7200\n  dir: /var/lib/pixserve/jobs\n");
  EXPECT_EQ(jobs.jobs.threads, 3u);
  EXPECT_EQ(jobs.jobs.max_queued, 10u);
  EXPECT_EQ(jobs.jobs.execution_duration, 30s);
  EXPECT_EQ(jobs.jobs.max_execution_duration, 60s);
  EXPECT_EQ(jobs.jobs.retention, 1h);
  EXPECT_EQ(jobs.jobs.max_retention, 2h);
  EXPECT_EQ(jobs.jobs.dir, "/var/lib/pixserve/jobs");
  auto tap = from_yaml(
      "tap:\n  sync_time_limit_s: 5\n  max_result_mb: 8\n  max_upload_mb: 2\n  max_upload_rows: 50\n"
      "  max_query_length: 1000\n  upload_fetch_timeout_s: 3\n  upload_allow_private_hosts: true\n");
  EXPECT_EQ(tap.tap.sync_time_limit, 5s);
  EXPECT_EQ(tap.tap.max_result_bytes, 8u << 20);
  EXPECT_EQ(tap.tap.max_upload_bytes, 2u << 20);
  EXPECT_EQ(tap.tap.max_upload_rows, 50u);
  EXPECT_EQ(tap.tap.max_query_length, 1000u);
  EXPECT_EQ(tap.tap.upload_fetch_timeout, 3s);
  EXPECT_TRUE(tap.tap.upload_allow_private_hosts);
  EXPECT_FALSE(defaults.tap.upload_allow_private_hosts);
  EXPECT_EQ(defaults.tap.sync_time_limit, 60s);
  EXPECT_EQ(defaults.jobs.threads, 2u);
  EXPECT_TRUE(defaults.jobs.dir.empty());

  auto hips = from_yaml("hips:\n  root: /srv/hips\n  public_max_order: 6\n  full_access: open\n");
  EXPECT_EQ(hips.hips, (services::HipsSettings{.root = "/srv/hips", .public_max_order = 6, .full_access = "open"}));
}

TEST(ConfigFile, ErrorsNameTheKey) {
  const auto message = config_error;
  EXPECT_NE(message("server:\n  prot: 80\n").find("server.prot: unknown key"), std::string::npos)
      << message("server:\n  prot: 80\n");
  EXPECT_NE(message("server:\n  prot: 80\n").find("test.yaml:2"), std::string::npos);
  EXPECT_NE(message("srv:\n  port: 80\n").find("srv: unknown section"), std::string::npos);
  EXPECT_NE(message("server:\n  port: eighty\n").find("server.port: expected an integer"), std::string::npos);
  EXPECT_NE(message("server:\n  port: 70000\n").find("server.port"), std::string::npos);
  EXPECT_NE(message("server:\n  port: [1, 2]\n").find("server.port: expected a single value"), std::string::npos);
  EXPECT_NE(message("limits:\n  request_timeout_s: -1\n").find("limits.request_timeout_s"), std::string::npos);
  EXPECT_NE(message("limits:\n  max_body_bytes: 1.5\n").find("limits.max_body_bytes"), std::string::npos);
  EXPECT_NE(message("server:\n  base_url: ftp://x\n").find("server.base_url"), std::string::npos);
  EXPECT_NE(message("server: [\n").find("test.yaml"), std::string::npos);
  EXPECT_NE(message("jobs:\n  threads: 0\n").find("jobs.threads: must be at least 1"), std::string::npos);
  EXPECT_NE(
      message("jobs:\n  execution_duration_s: 100\n  max_execution_duration_s: 10\n").find("jobs.execution_duration_s"),
      std::string::npos);
  EXPECT_NE(message("jobs:\n  retention_s: 0\n").find("jobs.retention_s"), std::string::npos);
  EXPECT_NE(message("tap:\n  upload_allow_private_hosts: yes\n")
                .find("tap.upload_allow_private_hosts: expected true or false"),
            std::string::npos);
  EXPECT_NE(message("tap:\n  max_result_mb: 0\n").find("tap.max_result_mb"), std::string::npos);
  EXPECT_NE(message("tap:\n  sync_time_limit_s: -3\n").find("tap.sync_time_limit_s"), std::string::npos);
  EXPECT_NE(message("- a\n- b\n").find("expected a mapping"), std::string::npos);
  EXPECT_NE(message("server: 3\n").find("server: expected a mapping"), std::string::npos);
  EXPECT_NE(message("service:\n  cors_origins: [https://a.org/path]\n").find("service.cors_origins"),
            std::string::npos);
  EXPECT_NE(message("service:\n  cors_origins: {a: b}\n").find("service.cors_origins: expected a list"),
            std::string::npos);
  EXPECT_NE(message("service:\n  maxrec_default: 10\n  maxrec_limit: 5\n")
                .find("service.maxrec_default: must be from 0 to service.maxrec_limit (5)"),
            std::string::npos);
  EXPECT_NE(message("service:\n  maxrec_limit: 0\n").find("service.maxrec_limit: must be at least 1"),
            std::string::npos);
  EXPECT_NE(message("hips:\n  full_access: maybe\n").find("hips.full_access: expected open or closed"),
            std::string::npos);

  pixserve::testing::ScratchDir dir("config");
  std::ofstream(dir.dir / "c.yaml") << "server:\n  port: 0\nlimits:\n  max_connections: 7\n";
  auto c = load(dir.dir / "c.yaml");
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.server.limits.max_connections, 7u);
  EXPECT_THROW(load(dir.dir / "missing.yaml"), settings::ConfigError);
}

TEST(ConfigFile, ConnectionLimitAndProxyKeys) {
  auto defaults = from_yaml("");
  EXPECT_EQ(defaults.server.limits.max_connections_per_client, 128u);
  EXPECT_TRUE(defaults.server.trusted_proxies.empty());
  EXPECT_FALSE(defaults.server.proxy_protocol);

  auto c = from_yaml(
      "server:\n  trusted_proxies: [127.0.0.1, 10.0.0.0/8, 'fd00::/8']\n  proxy_protocol: true\n"
      "limits:\n  max_connections_per_client: 16\n");
  EXPECT_EQ(c.server.trusted_proxies, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8", "fd00::/8"}));
  EXPECT_TRUE(c.server.proxy_protocol);
  EXPECT_EQ(c.server.limits.max_connections_per_client, 16u);
  EXPECT_EQ(from_yaml("server:\n  trusted_proxies: 10.0.0.1\n").server.trusted_proxies,
            std::vector<std::string>{"10.0.0.1"});

  auto expect = [](const std::string& yaml, const std::string& part) {
    EXPECT_NE(config_error(yaml).find(part), std::string::npos) << config_error(yaml);
  };
  expect("limits:\n  max_connections_per_client: 0\n", "limits.max_connections_per_client: must be at least 1");
  expect("limits:\n  max_connections_per_client: many\n", "limits.max_connections_per_client: expected an integer");
  expect("limits:\n  max_connection_per_client: 5\n", "limits.max_connection_per_client: unknown key");
  expect("server:\n  trusted_proxies: [10.0.0.0/33]\n", "server.trusted_proxies: expected an IP address or a CIDR");
  expect("server:\n  trusted_proxies: [lb.example.org]\n", "'lb.example.org'");
  expect("server:\n  trusted_proxies: {a: b}\n", "server.trusted_proxies: expected a list");
  expect("server:\n  proxy_protocol: yes\n", "server.proxy_protocol: expected true or false");
  expect("server:\n  proxy_protocol: true\n", "server.proxy_protocol: needs server.trusted_proxies");
  expect("server:\n  trusted_proxy: [127.0.0.1]\n", "server.trusted_proxy: unknown key");
}

TEST(ConfigFile, AuthAndUserImages) {
  const auto defaults = from_yaml("");
  EXPECT_EQ(defaults.auth.realm, "pixserve");
  EXPECT_EQ(defaults.auth.data_rights_groups, std::vector<std::string>{"data-rights"});
  EXPECT_EQ(defaults.auth.embargo_exempt_groups, std::vector<std::string>{"staff"});
  EXPECT_TRUE(defaults.auth.jwt_public_key.empty());
  EXPECT_TRUE(defaults.user_images.enabled);
  EXPECT_EQ(defaults.user_images.collection, "user");

  const auto c = from_yaml(
      "auth:\n  realm: survey\n  data_rights_groups: [dr, lsst]\n  embargo_exempt_groups: ops\n"
      "  jwt_public_key: /etc/key.pem\n  jwt_issuer: https://idp\n  jwt_audience: pix\n  jwt_groups_claim: memberOf\n"
      "  jwt_leeway_s: 5\n"
      "user_images:\n  enabled: false\n  collection: L3\n  max_file_mb: 2\n  quota_mb: 10\n");
  EXPECT_EQ(c.auth.realm, "survey");
  EXPECT_EQ(c.auth.data_rights_groups, (std::vector<std::string>{"dr", "lsst"}));
  EXPECT_EQ(c.auth.embargo_exempt_groups, std::vector<std::string>{"ops"});
  EXPECT_EQ(c.auth.jwt_public_key, "/etc/key.pem");
  EXPECT_EQ(c.auth.jwt_groups_claim, "memberOf");
  EXPECT_EQ(c.auth.jwt_leeway_s, 5);
  EXPECT_FALSE(c.user_images.enabled);
  EXPECT_EQ(c.user_images.collection, "L3");
  EXPECT_EQ(c.user_images.max_file_bytes, 2u << 20);
  EXPECT_EQ(c.user_images.quota_bytes, 10u << 20);

  const auto refused = [](const std::string& yaml, const std::string& part) {
    EXPECT_NE(config_error(yaml).find(part), std::string::npos) << yaml << " -> " << config_error(yaml);
  };
  refused("auth:\n  realm: 'a\"b'\n", "auth.realm");
  refused("auth:\n  data_rights_groups: ['bad group']\n", "auth.data_rights_groups: group names");
  refused("auth:\n  jwt_public_key: /k.pem\n", "jwt_issuer");
  refused("auth:\n  jwt_issuer: x\n  jwt_audience: y\n", "jwt_public_key");
  refused("auth:\n  jwt_leeway_s: -1\n", "jwt_leeway_s");
  refused("auth:\n  jwt_user_claim: ''\n", "auth.jwt_user_claim: must not be empty");
  refused("auth:\n  tokens: yes\n", "auth.tokens");
  refused("user_images:\n  enabled: maybe\n", "user_images.enabled");
  refused("user_images:\n  collection: 'a/b'\n", "user_images.collection");
  refused("user_images:\n  max_file_mb: 0\n", "max_file_mb");
}

TEST(ConfigFile, KeysSetLikeTheFile) {
  Config c;
  set(c, "server.port", "0");
  set(c, "server.base_url", "https://example.org/a/");
  set(c, "service.web_root", "/srv/web");
  set(c, "server.trusted_proxies", "10.0.0.1");
  EXPECT_EQ(c.server.port, 0);
  EXPECT_EQ(c.service.web_root, "/srv/web");
  EXPECT_EQ(c.server.trusted_proxies, std::vector<std::string>{"10.0.0.1"});
  validate(c);
  EXPECT_EQ(c.server.base_url, "https://example.org/a");  // validate normalises, as after loading
  const auto error = [&c](std::string_view key, std::string_view text) {
    try {
      set(c, key, text);
    } catch (const settings::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("server.port", "70000"), "server.port: expected an integer from 0 to 65535, got '70000'");
  EXPECT_EQ(error("server.prot", "80"), "server.prot: unknown key");
  EXPECT_EQ(error("port", "80"), "port: unknown key");
  set(c, "server.threads", "0");
  c.jobs.threads = 0;
  EXPECT_THROW(validate(c), settings::ConfigError);
}

}  // namespace
}  // namespace pixserve::config
