// End to end on an in-memory SQLite database: an ObsCore-like table of
// random footprints, the adql_* functions registered, translated queries
// compared with the same selection computed in C++ over the same rows
// (CONTAINS, INTERSECTS, DISTANCE, AREA, LIKE, aggregates, paging), with and
// without the HEALPix cell prefilter driven by the spatial hints.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "adql/geometry_functions.hpp"
#include "adql/sql_functions.hpp"
#include "adql/translator.hpp"
#include "adql_test_catalog.hpp"
#include "sky/healpix.hpp"

namespace pixserve::adql {
namespace {

struct Row {
  int key;
  std::string obs_id;
  double ra, dec;
  sky::Polygon footprint;
  std::string band;
  int calib_level;
};

constexpr int kIndexOrder = 8;

class AdqlSqlite : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = db::open_sqlite(":memory:", true);
    testing::create_sqlite_schema(*db_, catalog_);
    register_functions(*db_);
    db_->exec("CREATE TABLE footprint_cell (cell INTEGER, dataset_key INTEGER)");
    std::mt19937 rng(12345);
    std::uniform_real_distribution<double> u(0, 1);
    const char* bands[] = {"g", "r", "i"};
    const auto ins = db_->prepare(
        "INSERT INTO ivoa_obscore (obs_id, s_ra, s_dec, s_region, band, calib_level, dataset_key) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    const auto cell = db_->prepare("INSERT INTO footprint_cell VALUES (?, ?)");
    for (int i = 0; i < 600; ++i) {
      Row r;
      r.key = i + 1;
      r.obs_id = "obs" + std::to_string(1000 + i);
      // Clustered near (10, 20), across RA = 0 and near the pole, plus all-sky.
      const int mode = i % 4;
      if (mode == 0) {
        r.ra = 8 + 4 * u(rng);
        r.dec = 18 + 4 * u(rng);
      } else if (mode == 1) {
        r.ra = sky::normalize_ra(-2 + 4 * u(rng));
        r.dec = -2 + 4 * u(rng);
      } else if (mode == 2) {
        r.ra = 360 * u(rng);
        r.dec = 85 + 4.5 * u(rng);
      } else {
        r.ra = 360 * u(rng);
        r.dec = std::asin(2 * u(rng) - 1) * 180 / M_PI;
      }
      const double h = 0.05 + 0.3 * u(rng);
      const double cosd = std::max(std::cos(r.dec * M_PI / 180), 0.05);
      std::vector<sky::SkyPoint> v = {{r.ra - h / cosd, r.dec - h}, {r.ra + h / cosd, r.dec - h},
                                      {r.ra + h / cosd, std::min(r.dec + h, 89.99)},
                                      {r.ra - h / cosd, std::min(r.dec + h, 89.99)}};
      for (auto& p : v) p.ra = sky::normalize_ra(p.ra);
      r.footprint = sky::Polygon(v);
      r.band = bands[i % 3];
      r.calib_level = 1 + i % 3;
      const std::string region = sky::to_stcs(r.footprint);
      ins->bind(1, r.obs_id).bind(2, r.ra).bind(3, r.dec).bind(4, region).bind(5, r.band);
      ins->bind(6, r.calib_level).bind(7, r.key);
      ASSERT_FALSE(ins->step());
      ins->reset();
      for (const auto c : sky::expand(sky::cover(r.footprint, kIndexOrder))) {
        cell->bind(1, static_cast<std::int64_t>(c)).bind(2, r.key);
        cell->step();
        cell->reset();
      }
      rows_.push_back(std::move(r));
    }
  }

  // Runs the translation; each row's columns as text.
  std::vector<std::vector<std::string>> run(const std::string& adql, bool use_index = false) {
    TranslateOptions o;
    if (use_index) {
      // The db layer's job, done here as the registry does it: cells of the
      // shape at the index order, as ranges.
      // Ranges go through a table (a large cone has thousands of them).
      o.index_filter = [this](const SpatialHint& h) {
        const std::string table = "hint_ranges_" + std::to_string(++hint_tables_);
        db_->exec("CREATE TEMP TABLE " + table + " (lo INTEGER, hi INTEGER)");
        for (const auto& r : sky::cover(h.shape, kIndexOrder)) {
          db_->exec("INSERT INTO " + table + " VALUES (" + std::to_string(r.first) + ", " + std::to_string(r.last) +
                    ")");
        }
        return h.sql_alias + ".dataset_key IN (SELECT f.dataset_key FROM " + table +
               " AS r JOIN footprint_cell AS f ON f.cell BETWEEN r.lo AND r.hi)";
      };
    }
    const Translation t = translate(adql, catalog_, o);
    last_sql_ = t.sql;
    last_hints_ = t.hints.size();
    std::vector<std::vector<std::string>> out;
    try {
      const auto st = db_->prepare(t.sql);
      while (st->step()) {
        std::vector<std::string> row;
        for (int i = 0; i < st->column_count(); ++i) row.push_back(st->is_null(i) ? "NULL" : st->get_text(i));
        out.push_back(std::move(row));
      }
    } catch (const db::DbError& e) {
      ADD_FAILURE() << e.reason() << " in " << t.sql;
    }
    return out;
  }

  std::set<std::string> ids(const std::string& adql, bool use_index = false) {
    std::set<std::string> out;
    for (const auto& r : run(adql, use_index)) out.insert(r.at(0));
    return out;
  }

  template <typename Pred>
  std::set<std::string> brute(Pred pred) {
    std::set<std::string> out;
    for (const auto& r : rows_) {
      if (pred(r)) out.insert(r.obs_id);
    }
    return out;
  }

  std::unique_ptr<db::Connection> db_;
  SimpleCatalog catalog_ = testing::make_test_catalog();
  std::vector<Row> rows_;
  std::string last_sql_;
  std::size_t last_hints_ = 0;
  int hint_tables_ = 0;
};

TEST_F(AdqlSqlite, ConeSearchOnPoints) {
  for (const auto& c : std::vector<sky::Circle>{{{10, 20}, 1.0}, {{0.5, 0.2}, 1.5}, {{359.8, -0.5}, 0.7},
                                                {{123, 88}, 3}, {{200, -30}, 40}}) {
    const std::string q = fmt::format(
        "SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {}, {}, {})) = 1",
        c.center.ra, c.center.dec, c.radius_deg);
    const auto expected = brute([&](const Row& r) { return c.contains({r.ra, r.dec}); });
    EXPECT_FALSE(expected.empty());
    EXPECT_EQ(ids(q), expected) << q;
    EXPECT_EQ(ids(q, true), expected) << last_sql_;
    EXPECT_EQ(last_hints_, 1u);
  }
}

TEST_F(AdqlSqlite, IntersectsRegionWithShapes) {
  struct Case {
    std::string adql_shape;
    sky::Shape shape;
  };
  const std::vector<Case> cases = {
      {"CIRCLE(10, 20, 0.8)", sky::Circle{{10, 20}, 0.8}},
      {"CIRCLE('ICRS', 0, 0, 0.5)", sky::Circle{{0, 0}, 0.5}},
      {"POLYGON(9, 19, 11, 19, 11, 21, 9, 21)", sky::Polygon({{9, 19}, {11, 19}, {11, 21}, {9, 21}})},
      {"POLYGON('ICRS', 359, -1, 1, -1, 0, 1)", sky::Polygon({{359, -1}, {1, -1}, {0, 1}})},
      {"BOX(0, 0, 2, 1)", sky::RaDecRange{359, 1, -0.5, 0.5}},
      {"BOX(180, 87, 360, 2)", sky::RaDecRange{0, 360, 86, 88}},
  };
  for (const auto& c : cases) {
    const std::string q = "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, " + c.adql_shape + ") = 1";
    const auto expected = brute([&](const Row& r) { return sky::intersects(r.footprint, c.shape); });
    EXPECT_FALSE(expected.empty()) << q;
    EXPECT_EQ(ids(q), expected) << q;
    EXPECT_EQ(ids(q, true), expected) << last_sql_;
  }
}

TEST_F(AdqlSqlite, ContainsRegionInShapeAndPointInRegion) {
  const sky::Circle c{{10, 20}, 1.5};
  const auto expected = brute([&](const Row& r) {
    return std::all_of(r.footprint.vertices().begin(), r.footprint.vertices().end(),
                       [&](const sky::SkyPoint& p) { return c.contains(p); });
  });
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(s_region, CIRCLE(10, 20, 1.5)) = 1"), expected);
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(s_region, CIRCLE(10, 20, 1.5)) = 1", true), expected);
  // Every footprint contains its own centre.
  EXPECT_EQ(run("SELECT COUNT(*) FROM ivoa.obscore WHERE CONTAINS(POINT(s_ra, s_dec), s_region) = 1")[0][0], "600");
  const auto at = brute([&](const Row& r) { return r.footprint.contains({10.5, 20.5}); });
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT(10.5, 20.5), s_region) = 1", true), at);
}

TEST_F(AdqlSqlite, DistanceAndArea) {
  const auto rows = run("SELECT obs_id, DISTANCE(POINT(s_ra, s_dec), POINT(10, 20)), DISTANCE(s_ra, s_dec, 10, 20), "
                        "AREA(s_region), COORD1(CENTROID(s_region)) FROM ivoa.obscore ORDER BY obs_id");
  ASSERT_EQ(rows.size(), rows_.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows_[i];
    ASSERT_EQ(rows[i][0], r.obs_id);
    const double d = sky::angular_distance_deg({r.ra, r.dec}, {10, 20});
    EXPECT_NEAR(std::stod(rows[i][1]), d, 1e-9);
    EXPECT_NEAR(std::stod(rows[i][2]), d, 1e-9);
    EXPECT_NEAR(std::stod(rows[i][3]), r.footprint.area_sr() * std::pow(180 / M_PI, 2), 1e-9);
    EXPECT_NEAR(std::stod(rows[i][4]), r.footprint.centroid().ra, 1e-9);
  }
  const auto near = brute([](const Row& r) { return sky::angular_distance_deg({r.ra, r.dec}, {0, 0}) < 1.2; });
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE DISTANCE(POINT(s_ra, s_dec), POINT(0, 0)) < 1.2"), near);
}

TEST_F(AdqlSqlite, RelationalFeatures) {
  // Aggregates and grouping.
  const auto groups = run("SELECT band, COUNT(*) AS n FROM ivoa.obscore GROUP BY band ORDER BY band");
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], (std::vector<std::string>{"g", "200"}));
  // Paging: TOP + OFFSET over a stable order.
  const auto page = run("SELECT TOP 5 obs_id FROM ivoa.obscore ORDER BY obs_id DESC OFFSET 10");
  ASSERT_EQ(page.size(), 5u);
  EXPECT_EQ(page[0][0], "obs1589");
  // LIKE is case-sensitive, ILIKE is not.
  EXPECT_TRUE(ids("SELECT obs_id FROM ivoa.obscore WHERE obs_id LIKE 'OBS1%'").empty());
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE obs_id ILIKE 'OBS10_1'").size(), 10u);
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE obs_id LIKE band").size(), 0u);
  EXPECT_EQ(ids("SELECT obs_id FROM ivoa.obscore WHERE obs_id LIKE 'obs' || '15%'").size(), 100u);
  // Math with the registered functions.
  const auto m = run("SELECT ROUND(2.5), ROUND(-2.5), ROUND(1.23456, 2), TRUNCATE(-1.57, 1), MOD(7, 3), MOD(-7, 3), "
                     "MOD(7.5, 2), POWER(2, 10), LOG10(1000), SQRT(-1), 7 / 2, CEILING(1.2), PI() FROM "
                     "ivoa.obscore WHERE obs_id = 'obs1000'");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::vector<std::string>{"3.0", "-3.0", "1.23", "-1.5", "1", "-1", "1.5", "1024.0", "3.0", "NULL",
                                            "3", "2.0", "3.14159265358979"}));
  // Set operations, subqueries and CTEs.
  EXPECT_EQ(run("SELECT band FROM ivoa.obscore UNION SELECT 'z' FROM ivoa.obscore ORDER BY 1").size(), 4u);
  EXPECT_EQ(run("WITH g AS (SELECT obs_id FROM ivoa.obscore WHERE band = 'g') SELECT COUNT(*) FROM g")[0][0], "200");
  // (calib_level is constant within a band here.)
  EXPECT_EQ(run("SELECT COUNT(*) FROM ivoa.obscore AS a WHERE calib_level >= (SELECT AVG(calib_level) FROM "
                "ivoa.obscore AS b WHERE b.band = a.band)")[0][0],
            "600");
}

TEST_F(AdqlSqlite, GeometryOutputsAreStcs) {
  const auto r = run("SELECT POINT(s_ra, s_dec), CIRCLE(1, 2, 3), s_region FROM ivoa.obscore WHERE obs_id = 'obs1000'");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0][0].rfind("POINT ICRS ", 0), 0u);
  EXPECT_EQ(r[0][1], "CIRCLE ICRS 1.0 2.0 3.0");
  EXPECT_EQ(geometry::format(geometry::parse(r[0][2])).rfind("POLYGON ICRS", 0), 0u);
}

TEST(AdqlGeometry, ParseFormatAndPredicates) {
  namespace g = geometry;
  EXPECT_EQ(g::format(g::parse("circle icrs 10 20 0.5")), "CIRCLE ICRS 10.0 20.0 0.5");
  EXPECT_EQ(g::format(g::parse("Polygon ICRS TOPOCENTER 1 2 3 2 3 4")), "POLYGON ICRS 1.0 2.0 3.0 2.0 3.0 4.0");
  EXPECT_THROW(g::parse("CIRCLE GALACTIC 1 2 3"), g::GeometryError);
  EXPECT_THROW(g::parse("CIRCLE ICRS 1 2"), g::GeometryError);
  EXPECT_THROW(g::parse("POINT ICRS 1 x"), g::GeometryError);
  EXPECT_THROW(g::parse(""), g::GeometryError);
  const g::Geometry small = g::make_circle(10, 20, 1);
  const g::Geometry big = g::make_circle(10, 20, 5);
  const g::Geometry poly = g::make_polygon(std::vector<double>{8, 18, 12, 18, 12, 22, 8, 22});
  const g::Geometry box = g::make_box(10, 20, 6, 6);
  const g::Geometry far = g::make_circle(200, -40, 1);
  EXPECT_TRUE(g::contains(small, big));
  EXPECT_FALSE(g::contains(big, small));
  EXPECT_TRUE(g::contains(small, poly));
  EXPECT_FALSE(g::contains(big, poly));
  EXPECT_TRUE(g::contains(poly, big));
  EXPECT_TRUE(g::contains(poly, box));
  EXPECT_TRUE(g::contains(small, box));
  EXPECT_TRUE(g::contains(g::make_box(10, 20, 1, 1), poly));
  EXPECT_FALSE(g::contains(box, poly));
  EXPECT_TRUE(g::contains(g::make_box(10, 20, 1, 1), box));
  EXPECT_TRUE(g::contains(g::make_box(10, 20, 0.5, 0.5), small));
  EXPECT_TRUE(g::contains(g::make_point(10, 20), poly));
  EXPECT_TRUE(g::intersects(far, far));
  EXPECT_FALSE(g::intersects(far, poly));
  EXPECT_FALSE(g::intersects(far, box));
  EXPECT_TRUE(g::intersects(g::make_circle(14, 20, 1.2), box));
  EXPECT_TRUE(g::intersects(g::make_box(359.5, 0, 2, 2), g::make_box(0.5, 0, 1, 1)));
  EXPECT_FALSE(g::intersects(g::make_box(350, 0, 2, 2), g::make_box(0.5, 0, 1, 1)));
  EXPECT_NEAR(g::area(g::make_circle(0, 0, 180)), 41252.96125, 1e-4);
  EXPECT_NEAR(g::area(g::make_box(0, 0, 360, 180)), 41252.96125, 1e-4);
  EXPECT_NEAR(g::distance({0, 0}, {90, 0}), 90, 1e-12);
}

}  // namespace
}  // namespace pixserve::adql
