// The `auth` and `user_images` sections of the server configuration.
#include <gtest/gtest.h>

#include "http/config.hpp"

namespace pixserve {
namespace {

TEST(AuthConfig, DefaultsAndValues) {
  const auto defaults = http::config_from_yaml("");
  EXPECT_EQ(defaults.auth.realm, "pixserve");
  EXPECT_EQ(defaults.auth.data_rights_groups, std::vector<std::string>{"data-rights"});
  EXPECT_EQ(defaults.auth.embargo_exempt_groups, std::vector<std::string>{"staff"});
  EXPECT_TRUE(defaults.auth.jwt_public_key.empty());
  EXPECT_TRUE(defaults.user_images.enabled);
  EXPECT_EQ(defaults.user_images.collection, "user");

  const auto c = http::config_from_yaml(
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
}

TEST(AuthConfig, RefusesBadValues) {
  const auto refused = [](const std::string& yaml, const std::string& key) {
    try {
      http::config_from_yaml(yaml, "test.yaml");
    } catch (const http::ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << yaml;
  };
  refused("auth:\n  realm: 'a\"b'\n", "auth.realm");
  refused("auth:\n  data_rights_groups: ['bad group']\n", "group");
  refused("auth:\n  jwt_public_key: /k.pem\n", "jwt_issuer");
  refused("auth:\n  jwt_issuer: x\n  jwt_audience: y\n", "jwt_public_key");
  refused("auth:\n  jwt_leeway_s: -1\n", "jwt_leeway_s");
  refused("auth:\n  tokens: yes\n", "auth.tokens");
  refused("user_images:\n  enabled: maybe\n", "user_images.enabled");
  refused("user_images:\n  collection: 'a/b'\n", "user_images.collection");
  refused("user_images:\n  max_file_mb: 0\n", "max_file_mb");
}

}  // namespace
}  // namespace pixserve
