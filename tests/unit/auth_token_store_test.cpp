// The token store: tokens stored only as hashes, expiry, revocation, scopes,
// last use, input checks.
#include <gtest/gtest.h>

#include <set>

#include "auth/token_store.hpp"
#include "db/database.hpp"
#include "test_scratch.hpp"

namespace pixserve {
namespace {

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = scratch_.dir / "registry.sqlite3";
    store_ = std::make_unique<auth::TokenStore>(db::open_sqlite(file_, true));
  }
  testing::ScratchDir scratch_;
  std::filesystem::path file_;
  std::unique_ptr<auth::TokenStore> store_;
};

TEST_F(TokenStoreTest, CreatedTokenVerifiesWithItsUserGroupsAndScopes) {
  const auto issued = store_->create({.user = "alice", .groups = {"g1", "staff"}, .scopes = {}, .lifetime_s = 3600, .note = "ci"}, 1000);
  EXPECT_TRUE(auth::looks_like_opaque_token(issued.token));
  EXPECT_EQ(issued.info.scopes, std::vector<std::string>{"read:image"});  // the default scope
  const auto check = store_->verify(issued.token, 1001);
  ASSERT_EQ(check.status, auth::TokenStatus::ok);
  EXPECT_EQ(check.info.user, "alice");
  EXPECT_EQ(check.info.groups, (std::vector<std::string>{"g1", "staff"}));
  EXPECT_EQ(check.info.expires, 4600);
  EXPECT_EQ(check.info.id, issued.info.id);
}

TEST_F(TokenStoreTest, OnlyTheHashIsStored) {
  const auto issued = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}, 1000);
  auto conn = db::open_sqlite(file_, false);
  auto s = conn->prepare("SELECT count(*) FROM auth_token WHERE token_hash = ?");
  s->bind(1, auth::sha256_hex(issued.token));
  ASSERT_TRUE(s->step());
  EXPECT_EQ(s->get_int(0), 1);
  // The secret appears in no column of any row.
  auto all = conn->prepare("SELECT * FROM auth_token");
  while (all->step()) {
    for (int c = 0; c < all->column_count(); ++c) {
      if (all->is_null(c)) continue;
      EXPECT_EQ(all->get_text(c).find(issued.token.substr(4)), std::string::npos) << all->column_name(c);
    }
  }
}

TEST_F(TokenStoreTest, UnknownMalformedExpiredAndRevoked) {
  const auto issued = store_->create({.user = "bob", .groups = {}, .scopes = {"read:image", "write:image"}, .lifetime_s = 60, .note = {}}, 1000);
  std::string other = issued.token;
  other.back() = other.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(store_->verify(other, 1001).status, auth::TokenStatus::unknown);
  EXPECT_EQ(store_->verify("pxs_short", 1001).status, auth::TokenStatus::malformed);
  EXPECT_EQ(store_->verify(issued.token + "x", 1001).status, auth::TokenStatus::malformed);
  EXPECT_EQ(store_->verify(issued.token, 1059).status, auth::TokenStatus::ok);
  EXPECT_EQ(store_->verify(issued.token, 1060).status, auth::TokenStatus::expired);
  EXPECT_TRUE(store_->revoke(issued.info.id, 1010));
  EXPECT_FALSE(store_->revoke(issued.info.id, 1011));  // already revoked
  EXPECT_EQ(store_->verify(issued.token, 1020).status, auth::TokenStatus::revoked);
}

TEST_F(TokenStoreTest, RevokeUserAndList) {
  const auto a1 = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = "one"}, 1000);
  const auto a2 = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = "two"}, 1001);
  const auto b = store_->create({.user = "bob", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}, 1002);
  EXPECT_EQ(store_->list().size(), 3u);
  const auto alices = store_->list("alice");
  ASSERT_EQ(alices.size(), 2u);
  EXPECT_EQ(alices.front().note, "two");  // newest first
  EXPECT_EQ(store_->revoke_user("alice", 1100), 2u);
  EXPECT_EQ(store_->verify(a1.token, 1101).status, auth::TokenStatus::revoked);
  EXPECT_EQ(store_->verify(a2.token, 1101).status, auth::TokenStatus::revoked);
  EXPECT_EQ(store_->verify(b.token, 1101).status, auth::TokenStatus::ok);
}

TEST_F(TokenStoreTest, LastUseIsRecorded) {
  const auto issued = store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}, 1000);
  EXPECT_FALSE(store_->list().front().last_used.has_value());
  ASSERT_EQ(store_->verify(issued.token, 2000).status, auth::TokenStatus::ok);
  EXPECT_EQ(store_->list().front().last_used, 2000);
  ASSERT_EQ(store_->verify(issued.token, 2030).status, auth::TokenStatus::ok);
  EXPECT_EQ(store_->list().front().last_used, 2000);  // at most once a minute
  ASSERT_EQ(store_->verify(issued.token, 2100).status, auth::TokenStatus::ok);
  EXPECT_EQ(store_->list().front().last_used, 2100);
}

TEST_F(TokenStoreTest, RefusesBadNamesAndScopes) {
  EXPECT_THROW(store_->create({.user = "", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}), std::invalid_argument);
  EXPECT_THROW(store_->create({.user = "a b", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}), std::invalid_argument);
  EXPECT_THROW(store_->create({.user = "alice", .groups = {"@bob"}, .scopes = {}, .lifetime_s = {}, .note = {}}), std::invalid_argument);
  EXPECT_THROW(store_->create({.user = "alice", .groups = {"a,b"}, .scopes = {}, .lifetime_s = {}, .note = {}}), std::invalid_argument);
  EXPECT_THROW(store_->create({.user = "alice", .groups = {}, .scopes = {"admin"}, .lifetime_s = {}, .note = {}}), std::invalid_argument);
  // The owner of survey data is no user a token can name.
  for (const char* reserved : {"survey", "Survey", "anonymous"}) {
    try {
      store_->create({.user = reserved, .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}});
      ADD_FAILURE() << reserved << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("reserved"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(store_->list().empty());
}

TEST_F(TokenStoreTest, TokensAreDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(store_->create({.user = "alice", .groups = {}, .scopes = {}, .lifetime_s = {}, .note = {}}).token);
  EXPECT_EQ(seen.size(), 50u);
}

TEST(TokenDuration, Parses) {
  EXPECT_EQ(auth::parse_duration("30d"), 30 * 86400);
  EXPECT_EQ(auth::parse_duration("12h"), 12 * 3600);
  EXPECT_EQ(auth::parse_duration("90m"), 90 * 60);
  EXPECT_EQ(auth::parse_duration("3600s"), 3600);
  EXPECT_EQ(auth::parse_duration("3600"), 3600);
  EXPECT_FALSE(auth::parse_duration(""));
  EXPECT_FALSE(auth::parse_duration("0d"));
  EXPECT_FALSE(auth::parse_duration("-5m"));
  EXPECT_FALSE(auth::parse_duration("5w"));
  EXPECT_FALSE(auth::parse_duration("d"));
  EXPECT_FALSE(auth::parse_duration("99999999999d"));
}

}  // namespace
}  // namespace pixserve
