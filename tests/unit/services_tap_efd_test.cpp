// The R-EFD tables in TAP (repo/efd.hpp, tap/schema.cpp): joins with
// ivoa.obscore by visit and by time give the expected rows; weather is seen
// by everyone, a visit summary only by who may see a dataset of its visit;
// TAP_SCHEMA describes the tables with their units, UCDs and key. On both
// backends (ctest runs the services tests on PostgreSQL too).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "auth/identity.hpp"
#include "repo/astro_units.hpp"
#include "repo/efd.hpp"
#include "service_test_support.hpp"
#include "services/repository_access.hpp"
#include "tap/query.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace pixserve::services {
namespace {

// Visits 1..6 as test_calexp makes them (t_min = 60000 + visit, 30 s long);
// 4 is alice's own, 5 is embargoed. Visit 7 has a summary and no dataset.
struct EfdTapFixture {
  pixserve::testing::ScratchDir scratch;
  std::shared_ptr<SharedRepository> repository;

  EfdTapFixture() : scratch("tap_efd") {
    auto repo = repo::Repository::open_or_create(
        scratch.dir / "repo",
        pixserve::testing::test_repository_config({.name = "efdrepo", .authority = "example.org"}));
    auto& reg = repo.registry();
    db::Transaction t(reg.connection());
    for (std::int64_t v = 1; v <= 6; ++v) {
      auto r = pixserve::testing::test_calexp(v, 1, "r", 53.0, -28.0, 0.05);
      if (v == 4) {
        r.rights.policy = repo::ReadPolicy::owner;
        r.rights.owner = "alice";
      }
      if (v == 5) r.rights.release_mjd = repo::mjd_now() + 1.0;
      reg.insert(r);
    }
    // Summaries: visit v had seeing 0.5 + 0.1 v.
    std::vector<repo::efd::Row> summaries;
    for (std::int64_t v = 1; v <= 7; ++v) {
      const double t0 = 60000.0 + static_cast<double>(v);
      summaries.push_back({v, v, t0, t0 + 30.0 / 86400.0, 1.2, 0.5 + 0.1 * static_cast<double>(v), 283.0, 284.0, 5.0,
                           180.0, 20.0, 743.0});
    }
    // Weather: a sample 10 s into each exposure of visits 1..7, one 1 h
    // after it (inside no exposure).
    std::vector<repo::efd::Row> weather;
    for (std::int64_t v = 1; v <= 7; ++v) {
      const double t0 = 60000.0 + static_cast<double>(v);
      weather.push_back({t0 + 10.0 / 86400.0, 0.4 + 0.1 * static_cast<double>(v), 283.0, 284.0, 5.0, 180.0, 20.0,
                         743.0});
      weather.push_back({t0 + 1.0 / 24.0, 2.0, 283.0, 284.0, 5.0, 180.0, 20.0, 743.0});
    }
    const auto insert = [&](std::string_view table, const std::vector<repo::efd::Row>& rows) {
      std::vector<const repo::efd::Row*> pointers;
      for (const auto& r : rows) pointers.push_back(&r);
      repo::efd::insert_rows(reg.connection(), *repo::efd::table_named(table), pointers);
    };
    insert("visit_summary", summaries);
    insert("weather", weather);
    t.commit();
    repository = std::make_shared<SharedRepository>(std::move(repo));
  }

  std::shared_ptr<tap::TapEngine> engine() const {
    tap::EngineOptions options;
    const auto database = repository->registry_database();
    options.registry_file = database.sqlite_file;
    options.registry_url = database.postgresql_url;
    options.index_order = repository->with([](repo::Repository& r) { return r.registry().index_order(); });
    return std::make_shared<tap::TapEngine>(std::make_shared<const tap::TapMetadata>(), options);
  }
};

// The cells of a query's rows as text, rows sorted.
std::vector<std::string> efd_rows(tap::TapEngine& engine, const std::string& adql, const auth::Identity& viewer = {}) {
  tap::QueryRequest q;
  q.adql = adql;
  q.maxrec = 10'000;
  q.viewer = viewer;
  const auto result = engine.run(q);
  std::vector<std::string> out;
  for (const auto& row : result.rows) {
    std::string line;
    for (const auto& cell : row) {
      if (!line.empty()) line += '|';
      if (const auto* s = cell.get_if<std::string>()) line += *s;
      if (const auto* i = cell.get_if<std::int64_t>()) line += std::to_string(*i);
      if (const auto* d = cell.get_if<double>()) line += fmt::format("{:.4f}", *d);
    }
    out.push_back(std::move(line));
  }
  std::sort(out.begin(), out.end());
  return out;
}

auth::Identity efd_alice() {
  auth::Identity a;
  a.user = "alice";
  return a;
}

TEST(TapEfd, JoinByVisitGivesTheImagesOfTheGoodSeeingVisits) {
  EfdTapFixture f;
  const auto engine = f.engine();
  const std::string adql =
      "SELECT o.visit, e.dimm_seeing FROM ivoa.obscore AS o JOIN efd.visit_summary AS e ON e.visit = o.visit "
      "WHERE e.dimm_seeing < 1.05";
  // Anonymous: visits 1, 2, 3 (4 is alice's, 5 embargoed, 6 too poor).
  EXPECT_EQ(efd_rows(*engine, adql), (std::vector<std::string>{"1|0.6000", "2|0.7000", "3|0.8000"}));
  EXPECT_EQ(efd_rows(*engine, adql, efd_alice()),
            (std::vector<std::string>{"1|0.6000", "2|0.7000", "3|0.8000", "4|0.9000"}));
  // And through survey.visits, the key's target.
  EXPECT_EQ(efd_rows(*engine, "SELECT v.visit FROM survey.visits AS v JOIN efd.visit_summary AS e "
                              "ON e.visit = v.visit WHERE e.airmass < 2"),
            (std::vector<std::string>{"1", "2", "3", "6"}));
}

TEST(TapEfd, JoinByTimeGivesTheSamplesInsideEachExposure) {
  EfdTapFixture f;
  const auto engine = f.engine();
  const std::string adql =
      "SELECT o.visit, w.dimm_seeing FROM ivoa.obscore AS o JOIN efd.weather AS w "
      "ON w.time_mjd BETWEEN o.t_min AND o.t_max WHERE w.dimm_seeing < 0.85";
  EXPECT_EQ(efd_rows(*engine, adql), (std::vector<std::string>{"1|0.5000", "2|0.6000", "3|0.7000"}));
  EXPECT_EQ(efd_rows(*engine, adql, efd_alice()),
            (std::vector<std::string>{"1|0.5000", "2|0.6000", "3|0.7000", "4|0.8000"}));
}

TEST(TapEfd, WeatherIsPublicAndSummariesFollowTheirVisitsRights) {
  EfdTapFixture f;
  const auto engine = f.engine();
  EXPECT_EQ(efd_rows(*engine, "SELECT COUNT(*) FROM efd.weather"), (std::vector<std::string>{"14"}));
  // No dataset of visit 7: nobody sees its summary; 5 is embargoed, 4 alice's.
  EXPECT_EQ(efd_rows(*engine, "SELECT visit FROM efd.visit_summary"),
            (std::vector<std::string>{"1", "2", "3", "6"}));
  EXPECT_EQ(efd_rows(*engine, "SELECT visit FROM efd.visit_summary", efd_alice()),
            (std::vector<std::string>{"1", "2", "3", "4", "6"}));
  auth::Identity staff;
  staff.user = "ops";
  staff.staff = true;
  EXPECT_EQ(efd_rows(*engine, "SELECT visit FROM efd.visit_summary WHERE visit >= 5", staff),
            (std::vector<std::string>{"5", "6"}));
}

TEST(TapEfd, TapSchemaDescribesTheTablesAndTheirKey) {
  EfdTapFixture f;
  const auto engine = f.engine();
  EXPECT_EQ(efd_rows(*engine, "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'efd'"),
            (std::vector<std::string>{"efd.visit_summary", "efd.weather"}));
  EXPECT_EQ(efd_rows(*engine, "SELECT column_name, unit, ucd, datatype FROM TAP_SCHEMA.columns "
                              "WHERE table_name = 'efd.weather' AND column_name IN ('time_mjd', 'air_temperature', "
                              "'relative_humidity', 'pressure')"),
            (std::vector<std::string>{"air_temperature|K|phys.temperature|double",
                                      "pressure|hPa|phys.pressure|double",
                                      "relative_humidity|%|obs.atmos.humidity|double",
                                      "time_mjd|d|time.epoch|double"}));
  EXPECT_EQ(efd_rows(*engine, "SELECT k.from_table, k.target_table, c.from_column, c.target_column "
                              "FROM TAP_SCHEMA.keys AS k JOIN TAP_SCHEMA.key_columns AS c ON c.key_id = k.key_id "
                              "WHERE k.from_table LIKE 'efd.%'"),
            (std::vector<std::string>{"efd.visit_summary|survey.visits|visit|visit"}));
}

}  // namespace
}  // namespace pixserve::services
