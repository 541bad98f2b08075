// The rights policy: may_read in C++ and its SQL twin applied by the
// registry must agree on every record and identity; plus the rules
// themselves on hand-picked cases.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "auth/policy.hpp"
#include "db/database.hpp"
#include "repo/registry.hpp"
#include "test_scratch.hpp"

namespace pixserve {
namespace {

using auth::Identity;

std::string fmt_id(int i) { char b[32]; std::snprintf(b, sizeof b, "DR1.calexp.v%06d.d001", i); return b; }
using repo::DatasetRecord;
using repo::ReadPolicy;

DatasetRecord record(const std::string& id, const std::string& owner, ReadPolicy policy,
                     std::vector<std::string> groups = {}, std::optional<double> release = std::nullopt) {
  DatasetRecord r;
  r.dataset_id = id;
  r.type = repo::DatasetType::calexp;
  r.collection = "DR1";
  r.file_path = "data/" + id + ".fits";
  r.file_size = 2880;
  r.checksum = "00";
  r.rights.owner = owner;
  r.rights.policy = policy;
  r.rights.groups = std::move(groups);
  r.rights.release_mjd = release;
  return r;
}

Identity user(std::string name, std::vector<std::string> groups = {}, bool data_rights = false, bool staff = false) {
  return Identity{.user = std::move(name), .groups = std::move(groups), .scopes = {"read:image"},
                  .data_rights = data_rights, .staff = staff, .via = "token"};
}

constexpr double kNow = 60000.0;

TEST(AuthPolicy, PublicReleasedIsReadableByEveryone) {
  const auto r = record("a", "survey", ReadPolicy::public_);
  EXPECT_TRUE(auth::may_read(Identity{}, r, kNow));
  EXPECT_TRUE(auth::may_read(user("alice"), r, kNow));
}

TEST(AuthPolicy, EmbargoHidesUntilReleaseExceptForStaffAndOwner) {
  const auto r = record("a", "survey", ReadPolicy::public_, {}, kNow + 0.25);
  EXPECT_FALSE(auth::may_read(Identity{}, r, kNow));
  EXPECT_FALSE(auth::may_read(user("alice", {"g1"}, true), r, kNow));
  EXPECT_TRUE(auth::may_read(user("ops", {"staff"}, false, true), r, kNow));
  EXPECT_TRUE(auth::may_read(user("alice"), record("b", "alice", ReadPolicy::public_, {}, kNow + 0.25), kNow));
  EXPECT_TRUE(auth::may_read(Identity{}, r, kNow + 0.25));  // release time itself: released
}

TEST(AuthPolicy, TheSurveysOwnerNameOwnsNothing) {
  // Survey data belong to the reserved owner repo::kSurveyOwner: an identity
  // that claims that name (a token or JWT made before names were reserved)
  // reads them as anybody would, in C++ and in SQL alike.
  const std::string survey(repo::kSurveyOwner);
  const auto embargoed = record("a", survey, ReadPolicy::public_, {}, kNow + 1);
  const auto owner_only = record("b", survey, ReadPolicy::owner);
  const auto restricted = record("c", survey, ReadPolicy::data_rights);
  for (const auto& name : {survey, std::string("Survey"), std::string("SURVEY"), std::string("anonymous")}) {
    for (const auto* r : {&embargoed, &owner_only, &restricted}) {
      EXPECT_FALSE(auth::may_read(user(name), *r, kNow)) << name << " " << r->dataset_id;
    }
    EXPECT_EQ(auth::visibility_sql(user(name), kNow).sql, auth::visibility_sql(Identity{}, kNow).sql) << name;
  }
  EXPECT_TRUE(repo::is_reserved_owner("survey"));
  EXPECT_TRUE(repo::is_reserved_owner("sUrVeY"));
  EXPECT_FALSE(repo::is_reserved_owner("surveyor"));
  EXPECT_FALSE(repo::is_reserved_owner("alice"));
}

TEST(AuthPolicy, AudiencesOfDerivedProducts) {
  const auto pub = record("p", "survey", ReadPolicy::public_);
  const auto rights = record("d", "survey", ReadPolicy::data_rights);
  const auto grp = record("g", "survey", ReadPolicy::groups, {"team1"});
  const auto emb = record("e", "survey", ReadPolicy::data_rights, {}, kNow + 1);
  const auto mine = record("o", "alice", ReadPolicy::owner);
  const auto pub_who = auth::audience_identity(auth::Audience::public_);
  const auto dr_who = auth::audience_identity(auth::Audience::data_rights);
  EXPECT_TRUE(auth::may_read(pub_who, pub, kNow));
  EXPECT_FALSE(auth::may_read(pub_who, rights, kNow));
  EXPECT_TRUE(auth::may_read(dr_who, rights, kNow));
  for (const auto* r : {&grp, &emb, &mine}) {
    EXPECT_FALSE(auth::may_read(pub_who, *r, kNow)) << r->dataset_id;
    EXPECT_FALSE(auth::may_read(dr_who, *r, kNow)) << r->dataset_id;
  }
  EXPECT_EQ(auth::why_unreadable(pub_who, pub, kNow), "");
  EXPECT_EQ(auth::why_unreadable(pub_who, rights, kNow), "for data-rights holders");
  EXPECT_EQ(auth::why_unreadable(dr_who, grp, kNow), "restricted to groups");
  EXPECT_EQ(auth::why_unreadable(dr_who, mine, kNow), "readable by its owner only");
  EXPECT_TRUE(auth::why_unreadable(dr_who, emb, kNow).starts_with("embargoed until ")) << auth::why_unreadable(dr_who, emb, kNow);
  EXPECT_EQ(auth::audience_from_string("data-rights"), auth::Audience::data_rights);
  EXPECT_EQ(auth::audience_from_string(auth::to_string(auth::Audience::public_)), auth::Audience::public_);
  EXPECT_EQ(auth::audience_from_string("everyone"), std::nullopt);
}

TEST(AuthPolicy, StaffDoNotGetPastTheReadPolicy) {
  const auto r = record("a", "survey", ReadPolicy::groups, {"g1"}, kNow + 1);
  EXPECT_FALSE(auth::may_read(user("ops", {"staff"}, false, true), r, kNow));
  EXPECT_TRUE(auth::may_read(user("ops", {"staff", "g1"}, false, true), r, kNow));
}

TEST(AuthPolicy, GroupsDataRightsAndOwner) {
  const auto grp = record("g", "survey", ReadPolicy::groups, {"g1", "g2"});
  EXPECT_FALSE(auth::may_read(Identity{}, grp, kNow));
  EXPECT_FALSE(auth::may_read(user("bob", {"g3"}), grp, kNow));
  EXPECT_TRUE(auth::may_read(user("bob", {"g3", "g2"}), grp, kNow));
  // An anonymous caller claiming groups gets nothing from them.
  const auto rights = record("d", "survey", ReadPolicy::data_rights);
  EXPECT_FALSE(auth::may_read(Identity{}, rights, kNow));
  EXPECT_FALSE(auth::may_read(user("bob"), rights, kNow));
  EXPECT_TRUE(auth::may_read(user("bob", {}, true), rights, kNow));
  const auto mine = record("o", "alice", ReadPolicy::owner, {}, kNow + 5);
  EXPECT_TRUE(auth::may_read(user("alice"), mine, kNow));
  EXPECT_FALSE(auth::may_read(user("bob", {"staff", "g1"}, true, true), mine, kNow));
  EXPECT_FALSE(auth::may_read(Identity{}, mine, kNow));
}

TEST(AuthPolicy, SharingWithUsersUsesAtEntries) {
  const auto shared = record("s", "alice", ReadPolicy::groups, {"@bob"});
  EXPECT_TRUE(auth::may_read(user("bob"), shared, kNow));
  EXPECT_FALSE(auth::may_read(user("carol"), shared, kNow));
  // A group literally named like an entry cannot be claimed: '@' is not a
  // valid group name and is ignored.
  EXPECT_FALSE(auth::may_read(user("carol", {"@bob"}), shared, kNow));
}

TEST(AuthPolicy, AnonymousRuleIsPublicAndReleased) {
  const auto sql = auth::visibility_sql(Identity{}, kNow);
  EXPECT_EQ(sql.sql.find("owner"), std::string::npos) << sql.sql;
  EXPECT_NE(sql.sql.find("read_policy"), std::string::npos);
  EXPECT_NE(sql.sql.find("release_mjd"), std::string::npos);
}

// The agreement test: random records in a real registry, random identities
// and times; the SQL filter must select exactly the records may_read accepts.
class AuthPolicyAgreement : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = std::make_unique<repo::Registry>(db::open_sqlite(scratch_.dir / "registry.sqlite3", true), 6);
  }
  testing::ScratchDir scratch_;
  std::unique_ptr<repo::Registry> registry_;
};

TEST_F(AuthPolicyAgreement, SqlAndCppAgreeOnRandomRecords) {
  std::mt19937_64 rng(20240501);
  const std::vector<std::string> owners{"survey", "alice", "bob", "carol"};
  const std::vector<std::string> group_pool{"g1", "g2", "staff", "data-rights", "@alice", "@bob", "g.x", "g_1"};
  const std::vector<std::optional<double>> releases{std::nullopt, kNow - 1.0, kNow - 1e-6, kNow, kNow + 1e-6, kNow + 0.25, kNow + 10};
  const auto pick = [&](const auto& v) { return v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)]; };
  const auto subset = [&](const std::vector<std::string>& pool) {
    std::vector<std::string> out;
    for (const auto& g : pool)
      if (rng() % 3 == 0) out.push_back(g);
    return out;
  };
  {
    db::Transaction tx(registry_->connection());
    for (int i = 0; i < 600; ++i) {
      const auto policy = static_cast<ReadPolicy>(rng() % 4);
      registry_->insert(record(fmt_id(i), pick(owners), policy, subset(group_pool), pick(releases)));
    }
    tx.commit();
  }
  // The records as the registry holds them.
  const auto all = registry_->find(repo::DatasetQuery{});
  ASSERT_EQ(all.size(), 600u);

  const std::vector<std::string> users{"", "alice", "bob", "carol", "dave", "survey"};
  const std::vector<std::string> identity_groups{"g1", "g2", "g3", "g.x", "@bob", "bad,name", ""};
  std::size_t visible_total = 0, invisible_total = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Identity who;
    who.user = pick(users);
    who.groups = subset(identity_groups);
    who.data_rights = rng() % 2 == 0;
    who.staff = rng() % 3 == 0;
    const double now = pick(std::vector<double>{kNow, kNow - 2, kNow + 0.25, kNow + 1e-6, kNow + 20});

    std::set<std::string> expected;
    for (const auto& r : all)
      if (auth::may_read(who, r, now)) expected.insert(r.dataset_id);
    repo::DatasetQuery q;
    q.access = auth::visibility_sql(who, now);
    std::set<std::string> got;
    for (const auto& r : registry_->find(q)) got.insert(r.dataset_id);
    ASSERT_EQ(got, expected) << "trial " << trial << " user '" << who.user << "' SQL: " << q.access->sql;
    visible_total += expected.size();
    invisible_total += all.size() - expected.size();
  }
  // The random cases exercise both outcomes plenty.
  EXPECT_GT(visible_total, 1000u);
  EXPECT_GT(invisible_total, 1000u);
}

TEST_F(AuthPolicyAgreement, AnonymousEqualsPublicAt) {
  std::mt19937_64 rng(7);
  {
    db::Transaction tx(registry_->connection());
    for (int i = 0; i < 200; ++i) {
      std::optional<double> release;
      if (rng() % 2) release = kNow + (static_cast<double>(rng() % 200) - 100.0) / 50.0;
      registry_->insert(record(fmt_id(i), "survey", static_cast<ReadPolicy>(rng() % 4), {"g1"}, release));
    }
    tx.commit();
  }
  repo::DatasetQuery by_public_at;
  by_public_at.public_at = kNow;
  repo::DatasetQuery by_rule;
  by_rule.access = auth::visibility_sql(Identity{}, kNow);
  const auto a = registry_->find(by_public_at);
  const auto b = registry_->find(by_rule);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].dataset_id, b[i].dataset_id);
  EXPECT_GT(a.size(), 10u);
  EXPECT_LT(a.size(), 190u);
}

TEST_F(AuthPolicyAgreement, LimitCountsOnlyVisibleRows) {
  {
    db::Transaction tx(registry_->connection());
    for (int i = 0; i < 50; ++i) registry_->insert(record(fmt_id(i), "survey", ReadPolicy::owner));
    for (int i = 50; i < 55; ++i) registry_->insert(record(fmt_id(i), "survey", ReadPolicy::public_));
    tx.commit();
  }
  repo::DatasetQuery q;
  q.access = auth::visibility_sql(Identity{}, kNow);
  q.limit = 3;
  EXPECT_EQ(registry_->find(q).size(), 3u);  // the 50 invisible rows first in ID order do not use up the limit
}

}  // namespace
}  // namespace pixserve
