// Resolution of Authorization headers into identities, and the RFC 6750
// refusals with their WWW-Authenticate challenges.
#include <gtest/gtest.h>

#include "auth/authenticator.hpp"
#include "auth/token_store.hpp"
#include "db/database.hpp"
#include "test_scratch.hpp"

namespace pixserve {
namespace {

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = std::make_shared<auth::TokenStore>(db::open_sqlite(scratch_.dir / "registry.sqlite3", true));
    authn_ = std::make_unique<auth::Authenticator>(
        auth::AuthSettings{.realm = "test-realm", .data_rights_groups = {"dr"}, .embargo_exempt_groups = {"staff"}}, store_,
        nullptr);
  }
  auth::AuthError refusal(std::optional<std::string_view> header, std::string_view scope = auth::kScopeRead) {
    try {
      authn_->resolve_authorization(header, scope, auth::unix_now());
    } catch (const auth::AuthError& e) {
      return e;
    }
    ADD_FAILURE() << "no refusal for " << header.value_or("(none)");
    return auth::AuthError(0, "", "", "");
  }
  testing::ScratchDir scratch_;
  std::shared_ptr<auth::TokenStore> store_;
  std::unique_ptr<auth::Authenticator> authn_;
};

TEST_F(IdentityTest, NoHeaderIsAnonymous) {
  const auto who = authn_->resolve_authorization(std::nullopt, auth::kScopeRead, auth::unix_now());
  EXPECT_TRUE(who.anonymous());
  EXPECT_TRUE(who.groups.empty());
  EXPECT_FALSE(who.data_rights);
}

TEST_F(IdentityTest, TokenGivesUserGroupsAndRoles) {
  const auto t = store_->create({.user = "alice", .groups = {"dr", "staff", "g1"}, .scopes = {}, .lifetime_s = {}, .note = {}});
  const auto who = authn_->resolve_authorization("Bearer " + t.token, auth::kScopeRead, auth::unix_now());
  EXPECT_EQ(who.user, "alice");
  EXPECT_TRUE(who.in_group("g1"));
  EXPECT_TRUE(who.data_rights);
  EXPECT_TRUE(who.staff);
  EXPECT_EQ(who.via, "token");
  // The scheme is case-insensitive.
  EXPECT_EQ(authn_->resolve_authorization("bearer " + t.token, auth::kScopeRead, auth::unix_now()).user, "alice");
  const auto plain = store_->create({.user = "bob", .groups = {"g1"}, .scopes = {}, .lifetime_s = {}, .note = {}});
  const auto bob = authn_->resolve_authorization("Bearer " + plain.token, auth::kScopeRead, auth::unix_now());
  EXPECT_FALSE(bob.data_rights);
  EXPECT_FALSE(bob.staff);
}

TEST_F(IdentityTest, RefusalsHaveStatusAndChallenge) {
  const auto basic = refusal("Basic YWxpY2U6c2VjcmV0");
  EXPECT_EQ(basic.status(), 400);
  EXPECT_EQ(basic.error_code(), "invalid_request");
  EXPECT_EQ(basic.challenge().rfind("Bearer realm=\"test-realm\"", 0), 0u) << basic.challenge();

  for (const std::string bad : {"Bearer", "Bearer ", "Bearer not-a-token", "Bearer pxs_tooshort", "Bearer a.b.c"}) {
    const auto e = refusal(std::string_view(bad));
    EXPECT_EQ(e.status(), bad == "Bearer" ? 400 : 401) << bad;
    if (bad != "Bearer") {
      EXPECT_NE(e.challenge().find("error=\"invalid_token\""), std::string::npos) << e.challenge();
    }
  }
  const auto t = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = 1, .note = {}}, auth::unix_now() - 10);
  const auto expired = refusal("Bearer " + t.token);
  EXPECT_EQ(expired.status(), 401);
  EXPECT_NE(std::string(expired.what()).find("expired"), std::string::npos);
  // The message never contains the token.
  EXPECT_EQ(std::string(expired.what()).find(t.token), std::string::npos);
  EXPECT_EQ(expired.challenge().find(t.token), std::string::npos);

  const auto r = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}});
  ASSERT_TRUE(store_->revoke(r.info.id));
  const auto revoked = refusal("Bearer " + r.token);
  EXPECT_EQ(revoked.status(), 401);
  EXPECT_EQ(revoked.error_code(), "invalid_token");

  std::string unknown = r.token;
  unknown[10] = unknown[10] == 'x' ? 'y' : 'x';
  EXPECT_EQ(refusal("Bearer " + unknown).status(), 401);
}

TEST_F(IdentityTest, TokensOfTheReservedSurveyOwnerAreRefused) {
  // A token for "survey" cannot be created any more; one stored before
  // (here: renamed in the database) must not act as the survey either.
  const auto t = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}});
  db::open_sqlite(scratch_.dir / "registry.sqlite3", false)->exec("UPDATE auth_token SET user_name = 'survey'");
  const auto e = refusal("Bearer " + t.token);
  EXPECT_EQ(e.status(), 401);
  EXPECT_NE(std::string(e.what()).find("reserved"), std::string::npos) << e.what();
}

TEST_F(IdentityTest, WrongScopeIsForbiddenWithInsufficientScope) {
  const auto w = store_->create({.user = "alice", .groups = {}, .scopes = {"write:image"}, .lifetime_s = {}, .note = {}});
  const auto e = refusal("Bearer " + w.token, auth::kScopeRead);
  EXPECT_EQ(e.status(), 403);
  EXPECT_EQ(e.error_code(), "insufficient_scope");
  EXPECT_NE(e.challenge().find("scope=\"read:image\""), std::string::npos) << e.challenge();
  EXPECT_EQ(authn_->resolve_authorization("Bearer " + w.token, auth::kScopeWrite, auth::unix_now()).user, "alice");
}

TEST_F(IdentityTest, AuthenticationRequiredChallengeHasNoErrorCode) {
  const auto e = auth::AuthError::authentication_required("r");
  EXPECT_EQ(e.status(), 401);
  EXPECT_EQ(e.challenge(), "Bearer realm=\"r\"");
}

TEST(PrincipalNames, Validation) {
  EXPECT_TRUE(auth::valid_principal_name("alice"));
  EXPECT_TRUE(auth::valid_principal_name("data-rights"));
  EXPECT_TRUE(auth::valid_principal_name("a.b_c-1"));
  EXPECT_FALSE(auth::valid_principal_name(""));
  EXPECT_FALSE(auth::valid_principal_name("@bob"));
  EXPECT_FALSE(auth::valid_principal_name("a,b"));
  EXPECT_FALSE(auth::valid_principal_name(".hidden"));
  EXPECT_FALSE(auth::valid_principal_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace pixserve
