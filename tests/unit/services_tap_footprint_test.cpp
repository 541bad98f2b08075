// TAP constraints on ivoa.obscore's s_region (INTERSECTS and CONTAINS, the
// region on either side, every kind of constant) give the same rows whether
// the footprints are tested by the engine over the index's candidates (on
// PostgreSQL: the default) or by the query's own SQL functions (forced by an
// index-row budget of 0), for anonymous callers and for an owner, next to
// other conditions; around RA 0, where a footprint crosses the meridian.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "auth/identity.hpp"
#include "service_test_support.hpp"
#include "services/repository_access.hpp"
#include "services/tap.hpp"
#include "tap/query.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace pixserve::services {
namespace {

double wrap_ra(double ra) { return std::fmod(ra + 360.0, 360.0); }

// Footprints of three sizes and two shapes (squares and diamonds) on a grid
// of 0.025° across RA 0, every seventh hidden from anyone but alice.
repo::DatasetRecord grid_calexp(std::int64_t visit) {
  const double ra = -0.25 + 0.025 * static_cast<double>(visit % 20);
  const double dec = -28.1 + 0.025 * static_cast<double>(visit / 20);
  const double half = 0.004 + 0.008 * static_cast<double>(visit % 3);
  auto r = pixserve::testing::test_calexp(visit, 1, visit % 2 ? "r" : "g", wrap_ra(ra), dec, half);
  if (visit % 4 == 1) {
    r.footprint = sky::Polygon({{wrap_ra(ra), dec - half}, {wrap_ra(ra + half), dec}, {wrap_ra(ra), dec + half},
                                {wrap_ra(ra - half), dec}});
  } else {
    r.footprint = sky::Polygon({{wrap_ra(ra - half), dec - half}, {wrap_ra(ra + half), dec - half},
                                {wrap_ra(ra + half), dec + half}, {wrap_ra(ra - half), dec + half}});
  }
  r.s_fov = 2.0 * std::sqrt(2.0) * half;
  if (visit % 7 == 0) {
    r.rights.policy = repo::ReadPolicy::owner;
    r.rights.owner = "alice";
  }
  return r;
}

constexpr int kGridDatasets = 320;  // 20 x 16

struct FootprintFixture {
  pixserve::testing::ScratchDir scratch;
  std::shared_ptr<SharedRepository> repository;

  FootprintFixture() : scratch("tap_footprint") {
    auto repo = repo::Repository::open_or_create(
        scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "fprepo", .authority = "example.org"}));
    {
      db::Transaction t(repo.registry().connection());
      for (int v = 1; v <= kGridDatasets; ++v) repo.registry().insert(grid_calexp(v));
      t.commit();
    }
    repository = std::make_shared<SharedRepository>(std::move(repo));
  }

  std::shared_ptr<tap::TapEngine> engine(std::size_t exact_test_max_index_rows) const {
    tap::EngineOptions options;
    const auto database = repository->registry_database();
    options.registry_file = database.sqlite_file;
    options.registry_url = database.postgresql_url;
    options.index_order = repository->with([](repo::Repository& r) { return r.registry().index_order(); });
    options.exact_test_max_index_rows = exact_test_max_index_rows;
    return std::make_shared<tap::TapEngine>(std::make_shared<const tap::TapMetadata>(), options);
  }

  bool postgresql() const { return !repository->registry_database().postgresql_url.empty(); }
};

struct Answer {
  std::vector<std::string> ids;  // sorted
  std::string sql;
};

Answer ask(tap::TapEngine& engine, const std::string& adql, const auth::Identity& viewer,
           std::int64_t maxrec = 100'000, bool* overflow = nullptr) {
  tap::QueryRequest q;
  q.adql = adql;
  q.maxrec = maxrec;
  q.viewer = viewer;
  auto cursor = engine.open(q);
  Answer a;
  a.sql = cursor.sql();
  while (const auto* row = cursor.next()) a.ids.push_back(std::string(*row->at(0).get_if<std::string>()));
  std::sort(a.ids.begin(), a.ids.end());
  if (overflow) *overflow = cursor.overflow();
  return a;
}

bool tests_in_sql(const std::string& sql) {
  for (const char* f : {"adql_intersects(", "adql_contains(", "adql_contains_point("}) {
    if (sql.find(f) != std::string::npos) return true;
  }
  return false;
}

TEST(TapFootprint, TheEnginesExactTestGivesTheRowsOfTheQuerysOwn) {
  FootprintFixture f;
  const auto exact = f.engine(1'000'000);
  const auto in_sql = f.engine(0);  // any candidate is over budget
  auth::Identity alice;
  alice.user = "alice";

  const std::vector<std::string> constants = {
      "CIRCLE(0.02, -27.95, 0.08)",      "CIRCLE(359.97, -27.9, 0.031)",
      "POLYGON(359.9, -28.0, 0.1, -28.02, 0.0, -27.85)", "BOX(0.0, -27.9, 0.2, 0.1)",
      "POINT(0.0, -27.9)",               "CIRCLE(0.0, -27.9, 0.002)",
  };
  std::size_t compared = 0, nonempty = 0;
  for (const auto& constant : constants) {
    for (const std::string& where :
         {"INTERSECTS(s_region, " + constant + ") = 1", "1 = INTERSECTS(" + constant + ", s_region)",
          "CONTAINS(s_region, " + constant + ") = 1", "CONTAINS(" + constant + ", s_region) = 1",
          "band = 'r' AND INTERSECTS(s_region, " + constant + ") = 1 AND t_min > 60010"}) {
      const std::string adql = "SELECT obs_publisher_did FROM ivoa.obscore WHERE " + where;
      for (const auth::Identity& viewer : {auth::Identity{}, alice}) {
        const Answer a = ask(*exact, adql, viewer);
        const Answer b = ask(*in_sql, adql, viewer);
        EXPECT_EQ(a.ids, b.ids) << adql << " for " << (viewer.anonymous() ? "anonymous" : viewer.user);
        ++compared;
        if (!a.ids.empty()) ++nonempty;
        EXPECT_TRUE(tests_in_sql(b.sql)) << b.sql;
        if (f.postgresql()) {
          EXPECT_FALSE(tests_in_sql(a.sql)) << a.sql;  // the engine tested the footprints
        }
      }
    }
  }
  EXPECT_EQ(compared, constants.size() * 5 * 2);
  EXPECT_GE(nonempty, compared / 2);  // most constraints keep something to compare
}

// CONTAINS(POINT(s_ra, s_dec), constant) takes its candidates from the
// index of centres (center_cell) and gives the rows of the same test
// without any index (the point written as expressions, which no index
// serves), for cones of every size, across RA 0. A point of other columns
// is not served by that index (it holds (s_ra, s_dec) only).
TEST(TapFootprint, APointConeUsesTheIndexOfCentresAndGivesTheRowsOfTheUnindexedTest) {
  FootprintFixture f;
  const auto engine = f.engine(1'000'000);
  auth::Identity alice;
  alice.user = "alice";
  const std::string select = "SELECT obs_publisher_did FROM ivoa.obscore WHERE ";
  std::size_t compared = 0, nonempty = 0;
  for (const std::string constant :
       {"CIRCLE(0.0, -27.9, 0.001)", "CIRCLE(359.975, -27.85, 0.03)", "CIRCLE(0.0, -27.9, 0.3)",
        "CIRCLE(0.0, -27.9, 20)", "POLYGON(359.9, -28.0, 0.1, -28.02, 0.0, -27.85)", "BOX(0.0, -27.9, 0.2, 0.1)",
        "POINT(0.025, -27.8)", "CIRCLE(10.0, 10.0, 0.5)"}) {
    for (const auth::Identity& viewer : {auth::Identity{}, alice}) {
      const Answer indexed = ask(*engine, select + "CONTAINS(POINT(s_ra, s_dec), " + constant + ") = 1", viewer);
      const Answer unindexed =
          ask(*engine, select + "CONTAINS(POINT(s_ra + 0, s_dec + 0), " + constant + ") = 1", viewer);
      EXPECT_EQ(indexed.ids, unindexed.ids) << constant;
      EXPECT_NE(indexed.sql.find("center_cell"), std::string::npos) << indexed.sql;
      EXPECT_EQ(unindexed.sql.find("_cell"), std::string::npos) << unindexed.sql;
      ++compared;
      if (!indexed.ids.empty()) ++nonempty;
    }
  }
  EXPECT_GE(nonempty, compared / 2);
  // (s_ra, s_fov) is a point the index of centres knows nothing of.
  const Answer by_columns =
      ask(*engine, select + "CONTAINS(POINT(s_ra, s_fov), CIRCLE(0.1, 0.02, 0.5)) = 1", alice);
  const Answer by_expressions =
      ask(*engine, select + "CONTAINS(POINT(s_ra + 0, s_fov + 0), CIRCLE(0.1, 0.02, 0.5)) = 1", alice);
  EXPECT_FALSE(by_columns.ids.empty());
  EXPECT_EQ(by_columns.ids, by_expressions.ids);
  EXPECT_EQ(by_columns.sql.find("_cell"), std::string::npos) << by_columns.sql;
}

TEST(TapFootprint, TheExactTestKeepsRightsAndNeverShowsAHiddenDataset) {
  FootprintFixture f;
  const auto exact = f.engine(1'000'000);
  auth::Identity alice;
  alice.user = "alice";
  const std::string adql =
      "SELECT obs_publisher_did FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(0.0, -27.9, 0.3)) = 1";
  const Answer anonymous = ask(*exact, adql, auth::Identity{});
  const Answer owner = ask(*exact, adql, alice);
  EXPECT_GT(owner.ids.size(), anonymous.ids.size());
  EXPECT_TRUE(std::includes(owner.ids.begin(), owner.ids.end(), anonymous.ids.begin(), anonymous.ids.end()));
  for (int v = 7; v <= kGridDatasets; v += 7) {
    const auto hidden = grid_calexp(v).dataset_id;
    for (const auto& id : anonymous.ids) EXPECT_EQ(id.find(hidden), std::string::npos) << id;
  }
  // Counting sees what listing sees.
  tap::QueryRequest count;
  count.adql = "SELECT COUNT(*) FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(0.0, -27.9, 0.3)) = 1";
  count.maxrec = 10;
  auto cursor = exact->open(count);
  const auto* row = cursor.next();
  ASSERT_NE(row, nullptr);
  ASSERT_NE(row->at(0).get_if<std::int64_t>(), nullptr);
  EXPECT_EQ(*row->at(0).get_if<std::int64_t>(), static_cast<std::int64_t>(anonymous.ids.size()));
}

// A plain selection of rows with a row limit (MAXREC, TOP) reads the
// footprints' candidates in parts on PostgreSQL: whatever the limit and
// however many rows the other conditions and the caller's rights leave of
// each part, it gives as many rows as the whole result would (up to the
// limit), all of them rows of that result, and says so when it is cut.
TEST(TapFootprint, ALimitedSelectionGivesRowsOfTheWholeResultUpToItsLimit) {
  FootprintFixture f;
  const auto exact = f.engine(1'000'000);
  auth::Identity alice;
  alice.user = "alice";
  const std::string region = "INTERSECTS(s_region, CIRCLE(0.0, -27.9, 0.3)) = 1";
  std::size_t checked = 0;
  for (const std::string& conditions : {region, region + " AND band = 'r' AND MOD(visit, 5) = 3",
                                        "t_min > 60200 AND " + region, region + " AND visit = 999999"}) {
    for (const auth::Identity& viewer : {auth::Identity{}, alice}) {
      const std::string adql = "SELECT obs_publisher_did FROM ivoa.obscore WHERE " + conditions;
      const Answer whole = ask(*exact, adql, viewer);
      for (const std::int64_t maxrec : {std::int64_t{1}, std::int64_t{7}, std::int64_t{40},
                                        static_cast<std::int64_t>(whole.ids.size())}) {
        bool overflow = false;
        const Answer part = ask(*exact, adql, viewer, maxrec, &overflow);
        const auto n = static_cast<std::int64_t>(whole.ids.size());
        EXPECT_EQ(static_cast<std::int64_t>(part.ids.size()), std::min(maxrec, n)) << adql << " MAXREC=" << maxrec;
        EXPECT_EQ(overflow, n > maxrec) << adql << " MAXREC=" << maxrec;
        EXPECT_TRUE(std::includes(whole.ids.begin(), whole.ids.end(), part.ids.begin(), part.ids.end())) << adql;
        if (f.postgresql()) {
          EXPECT_NE(part.sql.find("CAST(? AS BIGINT[])"), std::string::npos) << part.sql;
        }
        ++checked;
      }
      // TOP below MAXREC: TOP rows, not cut.
      bool overflow = true;
      const Answer top = ask(*exact, "SELECT TOP 3 obs_publisher_did FROM ivoa.obscore WHERE " + conditions, viewer,
                             100, &overflow);
      EXPECT_EQ(top.ids.size(), std::min<std::size_t>(3, whole.ids.size())) << conditions;
      EXPECT_FALSE(overflow);
      EXPECT_TRUE(std::includes(whole.ids.begin(), whole.ids.end(), top.ids.begin(), top.ids.end()));
    }
  }
  EXPECT_EQ(checked, 4u * 2u * 4u);
  // Not a plain selection (an aggregate, ORDER BY): the keys that match, all at once.
  if (f.postgresql()) {
    for (const std::string& adql :
         {"SELECT COUNT(*) FROM ivoa.obscore WHERE " + region,
          "SELECT obs_publisher_did FROM ivoa.obscore WHERE " + region + " ORDER BY obs_publisher_did"}) {
      tap::QueryRequest q;
      q.adql = adql;
      q.maxrec = 10;
      auto cursor = exact->open(q);
      EXPECT_EQ(cursor.sql().find("CAST(? AS BIGINT[])"), std::string::npos) << cursor.sql();
      EXPECT_FALSE(tests_in_sql(cursor.sql())) << cursor.sql();
    }
  }
}

TEST(TapFootprint, ARegionOutsideEveryFootprintFindsNothing) {
  FootprintFixture f;
  const auto exact = f.engine(1'000'000);
  for (const std::string constant : {"CIRCLE(180, 30, 0.1)", "POLYGON(10, 10, 11, 10, 10, 11)"}) {
    const Answer a = ask(*exact,
                         "SELECT obs_publisher_did FROM ivoa.obscore WHERE INTERSECTS(s_region, " + constant + ") = 1",
                         auth::Identity{});
    EXPECT_TRUE(a.ids.empty()) << constant;
  }
}

}  // namespace
}  // namespace pixserve::services
