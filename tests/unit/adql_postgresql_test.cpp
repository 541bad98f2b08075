// The ADQL geometry functions on PostgreSQL (postgresql_functions.sql, as
// postgresql_functions_sql() embeds it) against the C++ ones that SQLite
// calls through register_functions(): the same truth values, numbers, STC-S
// text and errors for hand-picked calls (boundaries, RA 0/360, the poles,
// both windings, degenerate and invalid input, NULL) and for thousands of
// random ones from a fixed seed. Then the ADQL corpus (adql_corpus.txt)
// translated for each dialect and run on both databases over the same rows.
// A private cluster (pg_cluster.hpp) serves; the tests skip only where
// PostgreSQL's server programs are not installed.
#include <gtest/gtest.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "adql/geometry_functions.hpp"
#include "adql/sql_functions.hpp"
#include "adql/translator.hpp"
#include "adql_test_catalog.hpp"
#include "db/database.hpp"
#include "pg_cluster.hpp"
#include "sky/geometry.hpp"

namespace pixserve::adql {
namespace {

// The one reason to skip: initdb missing (pg_cluster.hpp's own check).
bool pg_server_programs_installed() {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen("pg_config --bindir 2>/dev/null", "r"), ::pclose);
  if (!pipe) return false;
  std::string dir;
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), buf.size(), pipe.get()) != nullptr) dir += buf.data();
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == ' ')) dir.pop_back();
  return !dir.empty() && std::filesystem::exists(std::filesystem::path(dir) / "initdb");
}

enum class PgKind { text, integer, real };

// What one call gave: a value, NULL, or an error (its message's first line:
// PostgreSQL appends CONTEXT lines).
struct PgOutcome {
  bool error = false;
  bool null = false;
  std::string text;
  std::int64_t integer = 0;
  double real = 0.0;
};

PgOutcome pg_read(db::Statement& st, int column, PgKind kind) {
  PgOutcome out;
  if (st.is_null(column)) {
    out.null = true;
  } else if (kind == PgKind::text) {
    out.text = st.get_text(column);
  } else if (kind == PgKind::integer) {
    out.integer = st.get_int(column);
  } else {
    out.real = st.get_double(column);
  }
  return out;
}

PgOutcome pg_failure(const db::DbError& e) {
  PgOutcome out;
  out.error = true;
  const std::string reason(e.reason());
  out.text = reason.substr(0, reason.find('\n'));
  return out;
}

PgOutcome pg_call(db::Connection& c, const std::string& sql, const std::vector<db::Value>& args, PgKind kind) {
  try {
    auto st = c.prepare(sql);
    for (std::size_t i = 0; i < args.size(); ++i) st->bind(static_cast<int>(i) + 1, args[i]);
    if (!st->step()) throw std::runtime_error("no row from " + sql);
    return pg_read(*st, 0, kind);
  } catch (const db::DbError& e) {
    return pg_failure(e);
  }
}

// How closely the two backends agree, for the report of a failure and the
// count of bit-identical numbers.
struct PgTally {
  int compared = 0;
  int reals = 0;
  int identical_reals = 0;
  int errors = 0;
};

std::string pg_describe(const PgOutcome& o, PgKind kind) {
  if (o.error) return "error: " + o.text;
  if (o.null) return "NULL";
  if (kind == PgKind::text) return "'" + o.text + "'";
  if (kind == PgKind::integer) return std::to_string(o.integer);
  return fmt::format("{}", o.real);
}

::testing::AssertionResult pg_agree(const PgOutcome& lite, const PgOutcome& pg, PgKind kind, PgTally& tally) {
  ++tally.compared;
  const auto differ = [&] {
    return ::testing::AssertionFailure() << "SQLite: " << pg_describe(lite, kind)
                                         << ", PostgreSQL: " << pg_describe(pg, kind);
  };
  if (lite.error || pg.error) {
    if (lite.error != pg.error || lite.text != pg.text) return differ();
    ++tally.errors;
    return ::testing::AssertionSuccess();
  }
  if (lite.null || pg.null) return lite.null == pg.null ? ::testing::AssertionSuccess() : differ();
  if (kind == PgKind::text) return lite.text == pg.text ? ::testing::AssertionSuccess() : differ();
  if (kind == PgKind::integer) return lite.integer == pg.integer ? ::testing::AssertionSuccess() : differ();
  ++tally.reals;
  if (std::bit_cast<std::uint64_t>(lite.real) == std::bit_cast<std::uint64_t>(pg.real)) ++tally.identical_reals;
  // Within 1e-9, absolute below 1 and relative above.
  if (std::abs(lite.real - pg.real) <= 1e-9 * std::max(1.0, std::abs(lite.real))) return ::testing::AssertionSuccess();
  return differ();
}

// A call of one of the functions with literal arguments, evaluated alone.
struct PgCall {
  std::string function;
  PgKind kind;
  std::vector<db::Value> args;
};

std::string pg_call_sql(const PgCall& call) {
  std::string sql = "SELECT " + call.function + "(";
  for (std::size_t i = 0; i < call.args.size(); ++i) sql += i ? ", ?" : "?";
  return sql + ")";
}

std::string pg_describe_call(const PgCall& call) {
  std::string out = call.function + "(";
  for (std::size_t i = 0; i < call.args.size(); ++i) {
    const auto& a = call.args[i];
    out += i ? ", " : "";
    if (std::holds_alternative<std::monostate>(a)) {
      out += "NULL";
    } else if (const auto* d = std::get_if<double>(&a)) {
      out += fmt::format("{}", *d);
    } else if (const auto* s = std::get_if<std::string>(&a)) {
      out += "'" + *s + "'";
    } else {
      out += std::to_string(std::get<std::int64_t>(a));
    }
  }
  return out + ")";
}

// Random shapes as STC-S text, made and checked with the C++ functions.
class PgShapeMaker {
 public:
  explicit PgShapeMaker(std::uint64_t seed) : rng_(seed) {}

  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  // A centre: anywhere, astride RA 0, or near a pole.
  sky::SkyPoint centre() {
    switch (pick(4)) {
      case 0: return {uniform(-3, 3), uniform(-5, 5)};
      case 1: return {uniform(0, 360), uniform(80, 90)};
      case 2: return {uniform(0, 360), uniform(-90, -82)};
      default: return {uniform(0, 360), std::asin(uniform(-1, 1)) * 180 / M_PI};
    }
  }

  // The point `distance` degrees from `c` towards position angle `angle`.
  static sky::SkyPoint offset(const sky::SkyPoint& c, double distance, double angle) {
    const double d0 = c.dec * M_PI / 180, r = distance * M_PI / 180, t = angle * M_PI / 180;
    const double dec = std::asin(std::clamp(std::sin(d0) * std::cos(r) + std::cos(d0) * std::sin(r) * std::cos(t), -1.0, 1.0));
    // (asin(1) in degrees rounds to just above 90.)
    const double ra = c.ra * M_PI / 180 + std::atan2(std::sin(t) * std::sin(r) * std::cos(d0), std::cos(r) - std::sin(d0) * std::sin(dec));
    return {sky::normalize_ra(ra * 180 / M_PI), std::clamp(dec * 180 / M_PI, -90.0, 90.0)};
  }

  std::string point(const sky::SkyPoint& c, double size) {
    const auto p = offset(c, uniform(0, size), uniform(0, 360));
    return fmt::format("POINT ICRS {} {}", p.ra, p.dec);
  }
  std::string circle(const sky::SkyPoint& c, double size) {
    const int k = pick(20);
    const double r = k == 0 ? 0.0 : k == 1 ? 180.0 : uniform(0, size);
    const auto p = offset(c, uniform(0, size), uniform(0, 360));
    return fmt::format("CIRCLE ICRS {} {} {}", p.ra, p.dec, r);
  }
  std::string box(const sky::SkyPoint& c, double size) {
    const int k = pick(20);
    const double w = k == 0 ? 360.0 + uniform(0, 10) : k == 1 ? 0.0 : uniform(0, 2 * size);
    const double h = k == 2 ? 0.0 : uniform(0, std::min(2 * size, 30.0));
    const auto p = offset(c, uniform(0, size), uniform(0, 360));
    return fmt::format("BOX ICRS {} {} {} {}", p.ra, p.dec, w, h);
  }
  // A star-shaped polygon, either winding; empty when the C++ refuses it.
  std::vector<double> polygon_numbers(const sky::SkyPoint& c, double size) {
    const int n = 3 + pick(6);
    std::vector<double> angles;
    for (int i = 0; i < n; ++i) angles.push_back(uniform(0, 360));
    std::sort(angles.begin(), angles.end());
    if (pick(2) == 0) std::reverse(angles.begin(), angles.end());
    std::vector<double> out;
    for (const double a : angles) {
      const auto p = offset(c, size * uniform(0.2, 1.0), a);
      out.push_back(p.ra);
      out.push_back(p.dec);
    }
    try {
      (void)geometry::make_polygon(out);
    } catch (const geometry::GeometryError&) {
      out.clear();
    }
    return out;
  }
  std::string polygon(const sky::SkyPoint& c, double size) {
    for (;;) {
      const auto numbers = polygon_numbers(c, size);
      if (numbers.empty()) continue;
      std::string out = "POLYGON ICRS";
      for (const double x : numbers) out += fmt::format(" {}", x);
      return out;
    }
  }
  std::string any(const sky::SkyPoint& c, double size) {
    switch (pick(4)) {
      case 0: return point(c, size);
      case 1: return circle(c, size);
      case 2: return box(c, size);
      default: return polygon(c, size);
    }
  }

 private:
  std::mt19937_64 rng_;
};

// Hand-picked shapes: every kind, on and across RA 0, at the poles, both
// windings, touching and nested configurations.
const std::vector<std::string>& pg_shapes() {
  static const std::vector<std::string> shapes = {
      "POINT ICRS 10 20", "POINT 0 0", "POINT 359.99999 0", "POINT 0 90", "POINT 123 -90", "POINT 360 45",
      "POINT -0.5 -0.5", "POINT 10 21", "POINT 11 20", "POINT 180 0", "POINT 8 18", "POINT 12 22", "POINT 10 18",
      "POINT 0.5 0.5", "POINT 359 -1", "POINT 90 0", "POINT 270 -85",
      "CIRCLE ICRS 10 20 1", "CIRCLE 10 20 5", "CIRCLE 10 20 0", "CIRCLE 0 0 180", "CIRCLE 200 -40 1",
      "CIRCLE 0 90 5", "CIRCLE 359.5 0 1", "CIRCLE 0.5 0.2 0.3", "CIRCLE 180 -89 3", "CIRCLE 10 20 0.01",
      "CIRCLE 14 20 1.2", "CIRCLE 10 21 0", "CIRCLE 90 0 90", "CIRCLE 10 20 2.8284",
      "BOX ICRS 10 20 6 6", "BOX 10 20 1 1", "BOX 10 20 0.5 0.5", "BOX 0 0 2 1", "BOX 359.5 0 2 2",
      "BOX 0.5 0 1 1", "BOX 350 0 2 2", "BOX 180 87 360 2", "BOX 0 0 360 180", "BOX 100 89 20 4",
      "BOX 30 -88 10 6", "BOX 10 20 0 0", "BOX 10 20 400 10", "BOX 10 20 1e-11 1e-11", "BOX 0 0 4 4",
      "POLYGON ICRS 8 18 12 18 12 22 8 22", "POLYGON 8 22 12 22 12 18 8 18", "POLYGON 359 -1 1 -1 0 1",
      "POLYGON 9 19 11 19 11 21 9 21", "POLYGON 10 20 12 20 12 22", "POLYGON 0 80 120 80 240 80",
      "POLYGON 0 -85 90 -85 180 -85 270 -85", "POLYGON 0 0 10 0 10 10 5 3 0 10", "POLYGON 1 2 3 2 3 4 1 2",
      "POLYGON 0 0 90 0 180 0 270 0", "POLYGON 0 10 120 10 240 10", "POLYGON 358 -2 2 -2 2 2 0 0 358 2",
      "POLYGON 9.5 19.5 10.5 19.5 10.5 20.5 9.5 20.5", "POLYGON 350 -10 10 -10 10 10 350 10",
  };
  return shapes;
}

// Texts that exercise the STC-S reader: case, frames, numbers as
// std::from_chars reads them, and every refusal.
const std::vector<std::string>& pg_texts() {
  static const std::vector<std::string> texts = {
      "circle icrs 10 20 0.5", "Polygon ICRS TOPOCENTER 1 2 3 2 3 4", "CIRCLE GALACTIC 1 2 3", "CIRCLE ICRS 1 2",
      "POINT ICRS 1 x", "", "   ", "\t\n", "POINT 1 +2", "POINT 1 0x10", "POINT 1 1e", "POINT -inf 1", "POINT 1 -nan",
      "POINT inf 1", "POINT 1e999 1", "POINT 1e-400 1", "POINT 1e-300 1", "POSITION 1 2", "FOO 1 2",
      "FOO GALACTIC 1", "POINT ICRS 1 2 3", "POINT\t1\n2", "BOX ICRS 1 2 3", "POLYGON 1 2 3 4 5",
      "POLYGON ICRS 0 0 10 10 10 0 0 10", "po\xc4\xb1nt 1 2", "CIRCLE ICRS 1 2 -0.0", "CIRCLE 1 95 1",
      "CIRCLE 1 2 181", "CIRCLE 1 2 -1", "BOX 1 2 -1 3", "BOX 1 2 3 -0.5", "POINT 1 -90.0000001", "POINT 1e20 10",
      "POINT -720.5 45", "POINT 4503599627370496 1", "POINT 4503599627370497 1", "POINT -1e300 1",
      "POINT 1.5e300 -0", "point unknownframe barycenter spherical2 1 2", "POINT ICRS GEOCENTER FK5 1 2",
      "POINT 1. .5", "POINT -.5 00012", "POINT 1E+2 1e-2", "POLYGON 1 2 3 2 3 2 1 4", "POLYGON 0 0 180 0 90 10",
      "POLYGON 0 0 10 0 20 0", "POLYGON 0 0 10 0 5 0", "POLYGON 1 2 1 2 1 2", "POLYGON 1 2 3 4 5 6 1 2",
      "POLYGON 0 0 1 0 1 1 0 1 0 0", "POLYGON 0 0 1 0 nan 1", "POLYGON 0 0 1 0 -nan 1", "POLYGON 0 0 1 95 2 0",
      "POLYGON 0 0 10 0 10 10 0 10 5 -5", "POLYGON 0 90 90 0 180 0", "POLYGON 0 -90 10 0 20 0",
      "BOX 10 20 1e16 2", "CIRCLE 1.2345678901234567e15 0 1", "POINT 123456789012345.67 0",
      "POINT 1234567890123456.7 0", "BOX 0 0 1e15 1e-7", "POINT 1e-5 -1e-5", "POINT 0.0001 2.5e-7",
      "POLYGON 10 -0 20 -0 15 5", "POLYGON 0 0 1 0 inf 1", "POINT 1 -Infinity", "POINT 1 nan(x_1)",
  };
  return texts;
}

class AdqlPostgres : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    installed_ = pg_server_programs_installed();
    if (!installed_) return;
    try {
      cluster_ = std::make_unique<pixserve::testing::PgCluster>();
    } catch (const std::exception& e) {
      cluster_error_ = e.what();
    }
  }
  static void TearDownTestSuite() { cluster_.reset(); }

  void SetUp() override {
    if (!installed_) GTEST_SKIP() << "PostgreSQL's server programs are not installed";
    ASSERT_TRUE(cluster_) << "the PostgreSQL server did not start: " << cluster_error_;
    pg_ = db::open_postgresql(cluster_->url());
    pg_->exec(postgresql_functions_sql());
    lite_ = db::open_sqlite(":memory:", true);
    register_functions(*lite_);
  }

  void TearDown() override {
    // Each test leaves the database as it found it (the functions stay).
    if (pg_) {
      for (const auto& table : created_) pg_->exec("DROP TABLE IF EXISTS " + table);
    }
  }

  void expect_agree(const PgCall& call) {
    const std::string sql = pg_call_sql(call);
    const PgOutcome lite = pg_call(*lite_, sql, call.args, call.kind);
    const PgOutcome pg = pg_call(*pg_, sql, call.args, call.kind);
    EXPECT_TRUE(pg_agree(lite, pg, call.kind, tally_)) << pg_describe_call(call);
  }

  // The same table on both databases: `columns` as (name, SQLite type,
  // PostgreSQL type), filled with `rows`.
  void make_table(const std::string& name, const std::vector<std::array<std::string, 3>>& columns,
                  const std::vector<std::vector<db::Value>>& rows) {
    std::string lite_sql, pg_sql, marks;
    for (const auto& c : columns) {
      lite_sql += (lite_sql.empty() ? "" : ", ") + c[0] + " " + c[1];
      pg_sql += (pg_sql.empty() ? "" : ", ") + c[0] + " " + c[2];
      marks += marks.empty() ? "?" : ", ?";
    }
    lite_->exec("CREATE TABLE " + name + " (" + lite_sql + ")");
    pg_->exec("CREATE TABLE " + name + " (" + pg_sql + ")");
    created_.push_back(name);
    for (auto* c : {lite_.get(), pg_.get()}) {
      db::Transaction tx(*c);
      auto ins = c->prepare("INSERT INTO " + name + " VALUES (" + marks + ")");
      for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) ins->bind(static_cast<int>(i) + 1, row[i]);
        ins->run();
        ins->reset();
      }
      tx.commit();
    }
  }

  // Runs `select` (whose first column is the row id) on both databases and
  // compares every other column; a statement that fails on either side is
  // redone row by row so that the failing rows are compared one at a time.
  // Gives PostgreSQL's results.
  std::vector<std::vector<PgOutcome>> expect_rows_agree(const std::string& select, const std::string& table,
                                                        const std::vector<PgKind>& kinds) {
    const std::string sql = select + " FROM " + table + " ORDER BY id";
    std::vector<std::vector<PgOutcome>> results[2];
    bool failed = false;
    for (int side = 0; side < 2; ++side) {
      try {
        auto st = (side == 0 ? lite_ : pg_)->prepare(sql);
        while (st->step()) {
          std::vector<PgOutcome> row;
          for (std::size_t k = 0; k < kinds.size(); ++k) row.push_back(pg_read(*st, static_cast<int>(k) + 1, kinds[k]));
          results[side].push_back(std::move(row));
        }
      } catch (const db::DbError&) {
        failed = true;
      }
    }
    if (failed) return expect_rows_agree_one_by_one(select, table, kinds);
    EXPECT_EQ(results[0].size(), results[1].size()) << sql;
    EXPECT_FALSE(results[0].empty()) << sql;
    auto ids = lite_->prepare("SELECT id, * FROM " + table + " ORDER BY id");
    for (std::size_t r = 0; r < std::min(results[0].size(), results[1].size()); ++r) {
      if (!ids->step()) break;
      for (std::size_t k = 0; k < kinds.size(); ++k) {
        EXPECT_TRUE(pg_agree(results[0][r][k], results[1][r][k], kinds[k], tally_))
            << select << ", column " << k + 1 << ", " << table << " row " << row_text(*ids);
      }
    }
    return results[1];
  }

  std::vector<std::vector<PgOutcome>> expect_rows_agree_one_by_one(const std::string& select, const std::string& table,
                                                                   const std::vector<PgKind>& kinds) {
    std::vector<std::vector<PgOutcome>> pg_results;
    auto ids = lite_->prepare("SELECT id, * FROM " + table + " ORDER BY id");
    while (ids->step()) {
      const std::string sql = select + " FROM " + table + " WHERE id = " + std::to_string(ids->get_int(0));
      std::vector<PgOutcome> results[2];
      for (int side = 0; side < 2; ++side) {
        try {
          auto st = (side == 0 ? lite_ : pg_)->prepare(sql);
          if (!st->step()) throw std::runtime_error("no row from " + sql);
          for (std::size_t k = 0; k < kinds.size(); ++k) results[side].push_back(pg_read(*st, static_cast<int>(k) + 1, kinds[k]));
        } catch (const db::DbError& e) {
          results[side].assign(kinds.size(), pg_failure(e));
        }
      }
      for (std::size_t k = 0; k < kinds.size(); ++k) {
        EXPECT_TRUE(pg_agree(results[0][k], results[1][k], kinds[k], tally_))
            << select << ", column " << k + 1 << ", " << table << " row " << row_text(*ids);
      }
      pg_results.push_back(std::move(results[1]));
    }
    return pg_results;
  }

  static std::string row_text(db::Statement& st) {
    std::string out;
    for (int i = 1; i < st.column_count(); ++i) out += (i > 1 ? " | " : "") + (st.is_null(i) ? "NULL" : st.get_text(i));
    return out;
  }

  void report(const std::string& what) const {
    std::printf("%s: %d results compared, %d errors alike, %d of %d numbers bit-identical\n", what.c_str(),
                tally_.compared, tally_.errors, tally_.identical_reals, tally_.reals);
  }

  static inline bool installed_ = false;
  static inline std::unique_ptr<pixserve::testing::PgCluster> cluster_;
  static inline std::string cluster_error_;
  std::unique_ptr<db::Connection> pg_;
  std::unique_ptr<db::Connection> lite_;
  std::vector<std::string> created_;
  PgTally tally_;
};

TEST_F(AdqlPostgres, TheScriptDefinesEveryFunctionOfThePostgresqlDialectAndRunsAgainConcurrently) {
  for (const auto& f : user_functions(db::Dialect::postgresql)) {
    auto st = pg_->prepare(
        "SELECT p.pronargs, p.provariadic <> 0, p.provolatile, p.proparallel FROM pg_proc AS p "
        "JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE p.proname = ? AND n.nspname = current_schema()");
    st->bind(1, std::string(f.name));
    ASSERT_TRUE(st->step()) << f.name;
    if (f.arity < 0) {
      EXPECT_EQ(st->get_int(1), 1) << f.name << " is variadic";
    } else {
      EXPECT_EQ(st->get_int(0), f.arity) << f.name;
    }
    EXPECT_EQ(st->get_text(2), "i") << f.name << " is immutable";
    EXPECT_EQ(st->get_text(3), "s") << f.name << " is parallel safe";
    EXPECT_FALSE(st->step()) << f.name << " has one definition";
  }
  // Servers opening one registry together install at the same time.
  std::vector<std::string> failures(3);
  {
    std::vector<std::jthread> installers;
    for (std::size_t i = 0; i < failures.size(); ++i) {
      installers.emplace_back([&, i] {
        try {
          auto c = db::open_postgresql(cluster_->url());
          for (int k = 0; k < 3; ++k) c->exec(postgresql_functions_sql());
        } catch (const std::exception& e) {
          failures[i] = e.what();
        }
      });
    }
  }
  for (const auto& f : failures) EXPECT_EQ(f, "");
  const auto st = pg_->prepare("SELECT adql_area('CIRCLE ICRS 0 0 180')");
  ASSERT_TRUE(st->step());
  EXPECT_NEAR(st->get_double(0), 41252.96125, 1e-4);
}

TEST_F(AdqlPostgres, ConstructorsAndMeasuresOfHandPickedArgumentsAgree) {
  using V = db::Value;
  const V null;
  const double inf = std::numeric_limits<double>::infinity();
  const auto real = [](double x) { return V{x}; };
  std::vector<PgCall> calls;
  const std::vector<std::pair<double, double>> positions = {
      {10, 20}, {-10, -0.0}, {370, 10}, {-720.5, 45}, {1e20, 0}, {360, 90}, {0, -90}, {359.9999999999999, 1},
      {4503599627370496.0, 1}, {4503599627370497.0, 1}, {-4503599627370497.0, 1}, {1e300, -1e300}, {10, 95},
      {10, -90.0000001}, {inf, 0}, {0, -inf}, {-0.0, 0}, {1e-5, 1e-5}, {123456789012345.67, 0}, {-1e-20, 0},
      {0.1, 0.2}, {179.99999999, -89.9999999}};
  for (const auto& [ra, dec] : positions) {
    calls.push_back({"adql_point", PgKind::text, {real(ra), real(dec)}});
    for (const double r : {0.0, 1.0, 180.0, 180.0000001, -1.0, -0.0, 1e-12}) {
      calls.push_back({"adql_circle", PgKind::text, {real(ra), real(dec), real(r)}});
    }
    for (const auto& [w, h] : std::vector<std::pair<double, double>>{
             {1, 1}, {360, 180}, {0, 0}, {1e16, 2}, {1e15, 1e-7}, {-3, 4}, {3, -0.5}, {400, 10}, {-0.0, -0.0}}) {
      calls.push_back({"adql_box", PgKind::text, {real(ra), real(dec), real(w), real(h)}});
    }
  }
  calls.push_back({"adql_point", PgKind::text, {null, real(1)}});
  calls.push_back({"adql_circle", PgKind::text, {real(1), real(2), null}});
  calls.push_back({"adql_box", PgKind::text, {real(1), null, real(2), real(3)}});
  // Polygons from numbers: both windings, RA 0, the poles, a closing
  // vertex, and each refusal of make_polygon and the Polygon constructor.
  const std::vector<std::vector<double>> polygons = {
      {8, 18, 12, 18, 12, 22, 8, 22}, {8, 22, 12, 22, 12, 18, 8, 18}, {359, -1, 1, -1, 0, 1}, {0, 80, 120, 80, 240, 80},
      {0, 0, 10, 0, 10, 10, 5, 3, 0, 10}, {1, 2, 3, 2, 3, 4, 1, 2}, {0, 0, 90, 0, 180, 0, 270, 0}, {0, 90, 90, 0, 180, 0},
      {370, 10, -5, 10, 5, 20}, {0, 0, 10, 10, 10, 0, 0, 10}, {1, 2, 3, 2, 3, 2, 1, 4}, {0, 0, 180, 0, 90, 10},
      {0, 0, 10, 0, 20, 0}, {0, 0, 10, 0, 5, 0}, {1, 2, 1, 2, 1, 2}, {1, 2, 3, 4, 5, 6, 1, 2}, {0, 0, 1, 95, 2, 0},
      {0, 0, 1, 0, inf, 1}, {1, 2, 3, 4, 5}, {1, 2, 3, 4}, {}, {1}, {0, 0, 10, 0, 10, 10, 0, 10, 5, -5},
      {10, -0.0, 20, -0.0, 15, 5}, {0, 0, 1e-13, 0, 0, 1e-13}, {0, 0, 1e-9, 0, 0, 1e-9}, {0, 89.9999, 120, 89.9999, 240, 89.9999}};
  for (const auto& p : polygons) {
    PgCall call{"adql_polygon", PgKind::text, {}};
    for (const double x : p) call.args.push_back(real(x));
    calls.push_back(call);
  }
  calls.push_back({"adql_polygon", PgKind::text, {real(1), real(2), null, real(2), real(3), real(4)}});
  // Measures and the STC-S reader, on every hand-picked shape and text.
  std::vector<std::string> texts = pg_shapes();
  texts.insert(texts.end(), pg_texts().begin(), pg_texts().end());
  for (const auto& t : texts) {
    calls.push_back({"adql_area", PgKind::real, {V{t}}});
    calls.push_back({"adql_centroid", PgKind::text, {V{t}}});
    calls.push_back({"adql_coordsys", PgKind::text, {V{t}}});
    calls.push_back({"adql_coord1", PgKind::real, {V{t}}});
    calls.push_back({"adql_coord2", PgKind::real, {V{t}}});
    calls.push_back({"adql_point_distance", PgKind::real, {V{t}, V{"POINT 10 20"}}});
    calls.push_back({"adql_point_distance", PgKind::real, {V{"POINT 190 -20"}, V{t}}});
    calls.push_back({"adql_contains_point", PgKind::integer, {real(10), real(20), V{t}}});
    calls.push_back({"adql_contains", PgKind::integer, {V{t}, V{"CIRCLE 0 0 180"}}});
    calls.push_back({"adql_intersects", PgKind::integer, {V{"BOX 0 0 360 180"}, V{t}}});
  }
  for (const std::string f : {"adql_area", "adql_centroid", "adql_coordsys", "adql_coord1", "adql_coord2"}) {
    calls.push_back({f, f == "adql_centroid" || f == "adql_coordsys" ? PgKind::text : PgKind::real, {null}});
  }
  // NULL comes first: no parsing of the other argument.
  calls.push_back({"adql_contains", PgKind::integer, {null, V{"CIRCLE GALACTIC 1 2 3"}}});
  calls.push_back({"adql_intersects", PgKind::integer, {V{"POINT 1 x"}, null}});
  calls.push_back({"adql_point_distance", PgKind::real, {null, V{"FOO"}}});
  calls.push_back({"adql_contains_point", PgKind::integer, {null, real(1), V{"FOO"}}});
  calls.push_back({"adql_contains_point", PgKind::integer, {real(1), real(100), V{"FOO"}}});
  calls.push_back({"adql_contains_point", PgKind::integer, {real(1), real(100), V{"CIRCLE 0 0 1"}}});
  calls.push_back({"adql_contains_point", PgKind::integer, {real(inf), real(1), V{"CIRCLE 0 0 1"}}});
  for (const auto& call : calls) expect_agree(call);
  report("constructors and measures");
  EXPECT_GE(tally_.compared, 1000);
  EXPECT_GE(tally_.errors, 200);
}

TEST_F(AdqlPostgres, DistancesAndConeTestsAgreeToTheLastBit) {
  using V = db::Value;
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<V>> rows;
  int id = 0;
  const auto add = [&](V ra, V dec, V ra0, V dec0, V r) { rows.push_back({V{std::int64_t{++id}}, ra, dec, ra0, dec0, r}); };
  const auto real = [](double x) { return V{x}; };
  // Points on the circle as the C++ measures it: inside (closed), and out
  // by one ulp of the radius.
  const std::vector<std::array<double, 4>> pairs = {
      {10, 21, 10, 20}, {11, 20, 10, 20}, {359.5, 0, 0.5, 0}, {0, 90, 180, 89}, {0, 0, 180, 0}, {0, 0, 0, 0},
      {0, -90, 0, 90}, {90, 45, 270, -45}, {10, 20, 10.000000001, 20}, {359.9999999999, 0, 0, 0}, {0, 89.999999, 180, 89.999999},
      {123.456, -33.3, 123.456, -33.3}, {1e-10, 0, 0, 1e-10}, {400, 10, 40, 10}, {-20, 5, 340, 5}};
  for (const auto& [ra, dec, ra0, dec0] : pairs) {
    const double d = geometry::distance(geometry::make_point(ra0, dec0), geometry::make_point(ra, dec));
    for (const double r : {d, std::nextafter(d, 0.0), std::nextafter(d, 200.0), 1.0, 0.0}) {
      if (r >= 0 && r <= 180) add(real(ra), real(dec), real(ra0), real(dec0), real(r));
    }
  }
  PgShapeMaker maker(20240611);
  for (int i = 0; i < 4000; ++i) {
    const auto c = maker.centre();
    const double size = maker.pick(3) == 0 ? maker.uniform(0, 180) : maker.uniform(0, 5);
    const auto p = PgShapeMaker::offset(c, maker.uniform(0, size), maker.uniform(0, 360));
    // Now and then numbers outside [0, 360) for the RA normalisation.
    const double shift = maker.pick(10) == 0 ? 360.0 * (maker.pick(5) - 2) : 0.0;
    add(real(p.ra + shift), real(p.dec), real(c.ra), real(c.dec), real(std::min(180.0, maker.uniform(0, 1.5) * size)));
  }
  const std::vector<std::array<std::string, 3>> columns = {{{"id", "INTEGER", "bigint"}, {"ra", "REAL", "double precision"},
                                                          {"decl", "REAL", "double precision"},
                                                          {"ra0", "REAL", "double precision"},
                                                          {"dec0", "REAL", "double precision"},
                                                          {"r", "REAL", "double precision"}}};
  make_table("pg_cones", columns, rows);
  rows.clear();
  // Invalid points and circles, and NULLs: a table of their own, whose
  // statements fail and are redone row by row.
  add(real(1), real(95), real(0), real(0), real(1));
  add(real(1), real(2), real(0), real(-91), real(1));
  add(real(1), real(2), real(0), real(0), real(181));
  add(real(1), real(2), real(0), real(0), real(-0.5));
  add(real(inf), real(2), real(0), real(0), real(1));
  add(real(1), real(2), real(-inf), real(0), real(1));
  add(real(1), real(2), real(0), real(0), real(inf));
  add(V{}, real(2), real(0), real(0), real(1));
  add(real(1), real(95), real(0), real(0), V{});
  add(real(1), real(2), real(0), real(-91), V{});
  make_table("pg_bad_cones", columns, rows);
  for (const std::string table : {"pg_cones", "pg_bad_cones"}) {
    expect_rows_agree("SELECT id, adql_distance(ra0, dec0, ra, decl), adql_contains_point_circle(ra, decl, ra0, dec0, r)",
                      table, {PgKind::real, PgKind::integer});
    expect_rows_agree("SELECT id, adql_point_distance(adql_point(ra, decl), adql_point(ra0, dec0)), "
                      "adql_contains_point(ra, decl, adql_circle(ra0, dec0, r)), adql_point(ra, decl), "
                      "adql_circle(ra0, dec0, r), adql_coord1(adql_point(ra, decl)), adql_coord2(adql_point(ra, decl)), "
                      "adql_box(ra, decl, r, r * 2)",
                      table, {PgKind::real, PgKind::integer, PgKind::text, PgKind::text, PgKind::real, PgKind::real,
                              PgKind::text});
  }
  report("distances and cones");
  EXPECT_EQ(tally_.identical_reals, tally_.reals) << "the distance is computed operation by operation as in C++";
  EXPECT_GE(tally_.compared, 35000);
  EXPECT_GE(tally_.errors, 50);
}

TEST_F(AdqlPostgres, ContainsAndIntersectsAgreeOnHandPickedAndRandomShapes) {
  using V = db::Value;
  std::vector<std::vector<V>> rows;
  std::int64_t id = 0;
  // Every ordered pair of the hand-picked shapes.
  for (const auto& a : pg_shapes()) {
    for (const auto& b : pg_shapes()) rows.push_back({V{++id}, V{a}, V{b}});
  }
  // Random pairs near each other at comparable scales, and shapes with
  // themselves (every point of a closed region's boundary is in it).
  PgShapeMaker maker(7);
  for (int i = 0; i < 3000; ++i) {
    const auto c = maker.centre();
    const double size = maker.pick(4) == 0 ? maker.uniform(5, 40) : maker.uniform(0.01, 5);
    const std::string a = maker.any(c, size);
    const std::string b = maker.pick(10) == 0 ? a : maker.any(c, size * maker.uniform(0.2, 2));
    rows.push_back({V{++id}, V{a}, V{b}});
  }
  // Pairs with a shape that the C++ refuses go to a table of their own,
  // whose statements fail and are redone row by row.
  const auto valid = [](const db::Value& v) {
    try {
      (void)geometry::parse(std::get<std::string>(v));
      return true;
    } catch (const geometry::GeometryError&) {
      return false;
    }
  };
  std::vector<std::vector<V>> bad_rows;
  std::erase_if(rows, [&](const std::vector<V>& row) {
    if (valid(row[1]) && valid(row[2])) return false;
    bad_rows.push_back(row);
    return true;
  });
  ASSERT_FALSE(bad_rows.empty());
  const std::vector<std::array<std::string, 3>> columns = {
      {{"id", "INTEGER", "bigint"}, {"a", "TEXT", "text"}, {"b", "TEXT", "text"}}};
  make_table("pg_pairs", columns, rows);
  make_table("pg_bad_pairs", columns, bad_rows);
  const auto truths = expect_rows_agree("SELECT id, adql_contains(a, b), adql_intersects(a, b)", "pg_pairs",
                                        {PgKind::integer, PgKind::integer});
  expect_rows_agree("SELECT id, adql_contains(a, b), adql_intersects(a, b)", "pg_bad_pairs",
                    {PgKind::integer, PgKind::integer});
  // Their measures, for the random shapes too.
  for (const std::string table : {"pg_pairs", "pg_bad_pairs"}) {
    expect_rows_agree("SELECT id, adql_area(a), adql_centroid(a), adql_coordsys(b)", table,
                      {PgKind::real, PgKind::text, PgKind::text});
  }
  report("contains and intersects");
  EXPECT_GE(tally_.compared, 30000);
  // The predicates must really decide: enough of both answers.
  int contain = 0, intersect = 0;
  for (const auto& row : truths) {
    contain += row[0].integer == 1;
    intersect += row[1].integer == 1;
  }
  const int pairs = static_cast<int>(truths.size());
  std::printf("pairs: %d contain, %d intersect, of %d valid pairs\n", contain, intersect, pairs);
  EXPECT_GT(contain, pairs / 20);
  EXPECT_LT(intersect, pairs * 9 / 10);
  EXPECT_GT(pairs, 6000);
}

TEST_F(AdqlPostgres, PolygonsFromNumbersAgree) {
  PgShapeMaker maker(99);
  for (int i = 0; i < 300; ++i) {
    const auto c = maker.centre();
    auto numbers = maker.polygon_numbers(c, maker.uniform(0.001, 30));
    if (numbers.empty()) continue;
    if (i % 7 == 0) std::swap(numbers[0], numbers[2]);  // often self-intersecting
    PgCall call{"adql_polygon", PgKind::text, {}};
    for (const double x : numbers) call.args.emplace_back(x);
    expect_agree(call);
  }
  report("polygons");
  EXPECT_GE(tally_.compared, 250);
}

// ------------------------------------------------------------ the ADQL corpus

std::string pg_corpus_unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && s[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] == 'x') {
      out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The valid queries of adql_corpus.txt, with their line numbers.
std::vector<std::pair<int, std::string>> pg_corpus_queries() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "adql_corpus.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::vector<std::pair<int, std::string>> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.rfind("ok | ", 0) == 0) out.emplace_back(n, pg_corpus_unescape(line.substr(5)));
  }
  return out;
}

// One cell as both backends can be compared: numbers by value (SQLite
// writes reals with 15 digits, PostgreSQL with 17), timestamps with the
// date and time separated alike, anything else as text.
struct PgCell {
  bool null = false;
  std::string text;
  std::optional<double> number;
};

PgCell pg_cell(db::Statement& st, int i) {
  PgCell c;
  if (st.is_null(i)) {
    c.null = true;
    return c;
  }
  c.text = st.get_text(i);
  double v = 0;
  const auto [end, ec] = std::from_chars(c.text.data(), c.text.data() + c.text.size(), v);
  if (ec == std::errc() && end == c.text.data() + c.text.size()) c.number = st.get_double(i);
  if (c.text.size() >= 19 && c.text[4] == '-' && c.text[7] == '-' && c.text[10] == 'T') c.text[10] = ' ';
  return c;
}

bool pg_same_cell(const PgCell& a, const PgCell& b) {
  if (a.null || b.null) return a.null == b.null;
  if (a.number && b.number) return std::abs(*a.number - *b.number) <= 1e-9 * std::max(1.0, std::abs(*a.number));
  return a.text == b.text;
}

// A key that sorts equal rows alike on both sides (numbers to 9 digits).
std::string pg_row_key(const std::vector<PgCell>& row) {
  std::string key;
  for (const auto& c : row) key += (c.null ? "\x01" : c.number ? fmt::format("{:.9g}", *c.number) : c.text) + '\x02';
  return key;
}

// Where two results differ first, or "".
std::string pg_first_difference(const std::vector<std::vector<PgCell>>& lite, const std::vector<std::vector<PgCell>>& pg) {
  if (lite.size() != pg.size()) return fmt::format("{} rows on SQLite, {} on PostgreSQL", lite.size(), pg.size());
  for (std::size_t r = 0; r < lite.size(); ++r) {
    if (lite[r].size() != pg[r].size()) return fmt::format("row {}: {} and {} columns", r, lite[r].size(), pg[r].size());
    for (std::size_t k = 0; k < lite[r].size(); ++k) {
      if (!pg_same_cell(lite[r][k], pg[r][k])) {
        return fmt::format("row {} column {}: SQLite '{}', PostgreSQL '{}'", r, k + 1, lite[r][k].text, pg[r][k].text);
      }
    }
  }
  return "";
}

class AdqlPostgresCorpus : public AdqlPostgres {
 protected:
  void fill_catalogue_tables() {
    using V = db::Value;
    testing::create_sqlite_schema(*lite_, catalog_);
    for (const TableDef* t : catalog_.tables()) {
      std::string sql = "CREATE TABLE " + quote_identifier(t->sql()) + " (";
      for (std::size_t i = 0; i < t->columns.size(); ++i) {
        const auto& c = t->columns[i];
        sql += (i ? ", " : "") + quote_identifier(c.sql()) + " " +
               (is_integer(c.type)              ? "bigint"
                : is_numeric(c.type)            ? "double precision"
                : c.type == AdqlType::timestamp ? "timestamp"
                                                : "text");
      }
      if (t->name == "obscore") sql += ", dataset_key bigint";
      pg_->exec(sql + ")");
      created_.push_back(quote_identifier(t->sql()));
    }
    // Rows without ties on the keys that the corpus orders by (band counts
    // differ, each visit and seeing is one observation's), a few NULLs in
    // columns it does not order by, footprints astride RA 0 and near a pole.
    std::mt19937_64 rng(4242);
    std::uniform_real_distribution<double> u(0, 1);
    const char* bands[] = {"g", "g", "g", "g", "r", "r", "r", "i", "i", "z"};
    constexpr int kRows = 120;
    std::vector<std::vector<V>> obscore, visits, provenance, columns, mixed;
    for (int i = 0; i < kRows; ++i) {
      const int mode = i % 4;
      const double ra = mode == 0 ? 8 + 4 * u(rng) : mode == 1 ? sky::normalize_ra(-2 + 4 * u(rng)) : 360 * u(rng);
      const double dec = mode == 0 ? 18 + 4 * u(rng) : mode == 1 ? -2 + 4 * u(rng) : mode == 2 ? 85 + 4 * u(rng)
                                                                                              : -60 + 120 * u(rng);
      const double h = 0.05 + 0.3 * u(rng);
      const double cosd = std::max(std::cos(dec * M_PI / 180), 0.05);
      const sky::Polygon footprint({{sky::normalize_ra(ra - h / cosd), dec - h}, {sky::normalize_ra(ra + h / cosd), dec - h},
                                    {sky::normalize_ra(ra + h / cosd), std::min(dec + h, 89.99)},
                                    {sky::normalize_ra(ra - h / cosd), std::min(dec + h, 89.99)}});
      const std::string band = bands[i % 10];
      const std::int64_t visit = 5000 + i;
      obscore.push_back({V{i % 2 ? "image" : "cube"}, V{std::int64_t{1 + (i / 10) % 3}}, V{"survey"},
                         V{fmt::format("obs{}", 1000 + i)}, V{ra}, V{dec}, i % 17 == 5 ? V{} : V{0.1 + u(rng)},
                         i % 29 == 3 ? V{} : V{sky::to_stcs(footprint)}, V{59000 + 1000 * u(rng)}, V{60000 + 100 * u(rng)},
                         V{3e-7 + 7e-7 * u(rng)}, V{band}, V{visit}, V{std::int64_t{i % 9}},
                         V{fmt::format("20{:02}-0{}-1{}T0{}:30:00", 20 + i % 15, 1 + i % 9, i % 10, i % 10)},
                         i % 3 ? V{fmt::format("target {}", i % 11)} : V{}, V{std::int64_t{i + 1}}});
      if (i % 3 != 2) {
        visits.push_back({V{visit}, V{band}, V{0.5 + u(rng)}, V{1 + u(rng)}, V{30.0 * (1 + i % 4)}});
      }
      if (i % 2 == 0) {
        provenance.push_back({V{fmt::format("obs{}", 1000 + i)}, V{fmt::format("raw{}", 1000 + i)}, V{band}});
        provenance.push_back({V{fmt::format("obs{}", 1000 + i)}, V{fmt::format("obs{}", 1001 + i)}, V{"input"}});
      }
    }
    for (int i = 0; i < 6; ++i) {  // visits no observation has
      visits.push_back({V{std::int64_t{9000 + i}}, V{bands[i]}, V{2 + u(rng)}, V{1 + u(rng)}, V{15.0}});
    }
    for (const char* name : {"obs_id", "s_ra", "s_dec", "band"}) {
      columns.push_back({V{"ivoa.obscore"}, V{name}, V{"double"}, V{}, V{std::int64_t{name[0] == 's'}}});
    }
    for (int i = 0; i < 20; ++i) {
      mixed.push_back({V{u(rng) * 100}, V{std::int64_t{i}}, V{fmt::format("POINT ICRS {} {}", u(rng) * 4, u(rng) * 4)}});
    }
    insert("ivoa_obscore", obscore);
    insert("survey_visits", visits);
    insert("survey_provenance", provenance);
    insert("tap_schema_columns", columns);
    insert("survey_mixed", mixed);
  }

  void insert(const std::string& table, const std::vector<std::vector<db::Value>>& rows) {
    for (auto* c : {lite_.get(), pg_.get()}) {
      db::Transaction tx(*c);
      std::string marks;
      for (std::size_t i = 0; i < rows.at(0).size(); ++i) marks += i ? ", ?" : "?";
      auto ins = c->prepare("INSERT INTO " + quote_identifier(table) + " VALUES (" + marks + ")");
      for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) ins->bind(static_cast<int>(i) + 1, row[i]);
        ins->run();
        ins->reset();
      }
      tx.commit();
    }
  }

  // The rows of `sql`, or the error.
  static std::vector<std::vector<PgCell>> rows_of(db::Connection& c, const std::string& sql, std::string& error) {
    std::vector<std::vector<PgCell>> out;
    try {
      auto st = c.prepare(sql);
      while (st->step()) {
        std::vector<PgCell> row;
        for (int i = 0; i < st->column_count(); ++i) row.push_back(pg_cell(*st, i));
        out.push_back(std::move(row));
      }
    } catch (const db::DbError& e) {
      error = std::string(e.reason());
    }
    return out;
  }

  SimpleCatalog catalog_ = testing::make_test_catalog();
};

TEST_F(AdqlPostgresCorpus, EveryValidQueryGivesTheSameRowsOnBothDatabases) {
  fill_catalogue_tables();
  int ran = 0, ordered = 0, counted_only = 0, failed_alike = 0, with_rows = 0, rows = 0;
  for (const auto& [line, query] : pg_corpus_queries()) {
    SCOPED_TRACE("adql_corpus.txt:" + std::to_string(line) + ": " + query);
    TranslateOptions lite_options;
    TranslateOptions pg_options;
    pg_options.dialect = db::Dialect::postgresql;
    const Translation lite_sql = translate(query, catalog_, lite_options);
    const Translation pg_sql = translate(query, catalog_, pg_options);
    std::string lite_error, pg_error;
    auto lite_rows = rows_of(*lite_, lite_sql.sql, lite_error);
    auto pg_rows = rows_of(*pg_, pg_sql.sql, pg_error);
    ++ran;
    if (!lite_error.empty() || !pg_error.empty()) {
      // A query may fail on data (a polygon past the pole), but alike.
      EXPECT_FALSE(lite_error.empty()) << "PostgreSQL failed: " << pg_error << "\n" << pg_sql.sql;
      EXPECT_FALSE(pg_error.empty()) << "SQLite failed: " << lite_error << "\n" << lite_sql.sql;
      ++failed_alike;
      continue;
    }
    const std::string upper = ascii_upper(query);
    const bool has_order = upper.find("ORDER BY") != std::string::npos;
    // Which rows an unordered TOP or OFFSET keeps, or what RAND() draws, is
    // up to each database: only the count must agree.
    if ((!has_order && (upper.find(" TOP ") != std::string::npos || upper.find(" OFFSET ") != std::string::npos)) ||
        upper.find("RAND(") != std::string::npos) {
      EXPECT_EQ(lite_rows.size(), pg_rows.size());
      ++counted_only;
      continue;
    }
    // The outer query's order is defined when its ORDER BY is outside any
    // parentheses; otherwise the rows are compared as multisets.
    int depth = 0;
    bool outer_order = false;
    for (std::size_t i = 0; i < upper.size(); ++i) {
      depth += upper[i] == '(' ? 1 : upper[i] == ')' ? -1 : 0;
      if (depth == 0 && upper.compare(i, 8, "ORDER BY") == 0) outer_order = true;
    }
    if (!outer_order) {
      std::sort(lite_rows.begin(), lite_rows.end(), [](const auto& a, const auto& b) { return pg_row_key(a) < pg_row_key(b); });
      std::sort(pg_rows.begin(), pg_rows.end(), [](const auto& a, const auto& b) { return pg_row_key(a) < pg_row_key(b); });
    } else {
      ++ordered;
    }
    rows += static_cast<int>(lite_rows.size());
    with_rows += lite_rows.empty() ? 0 : 1;
    EXPECT_EQ(pg_first_difference(lite_rows, pg_rows), "") << lite_sql.sql << "\n" << pg_sql.sql;
  }
  std::printf("corpus: %d queries on both, %d ordered, %d compared by count, %d failing alike, %d with rows, "
              "%d rows compared\n",
              ran, ordered, counted_only, failed_alike, with_rows, rows);
  EXPECT_GE(ran, 150);
  EXPECT_GE(with_rows, 150);
  EXPECT_GE(rows, 10000);
}

TEST_F(AdqlPostgresCorpus, NumbersWithoutAFiniteValueAreNullOnBothDatabases) {
  // Domain errors, overflows and division by zero: NULL on SQLite (the C++
  // functions), an error or infinity from PostgreSQL's own functions unless
  // translated to the adql_* ones.
  fill_catalogue_tables();
  const std::vector<std::string> queries{
      "SELECT TOP 1 SQRT(-1.0) AS a, LOG(0.0) AS b, LOG10(-5.0) AS c, ACOS(2.0) AS d, ASIN(-1.5) AS e, COT(0.0) AS f, "
      "EXP(1000.0) AS g, EXP(-1000.0) AS h, POWER(-8.0, 0.5) AS i, POWER(0.0, -1.0) AS j, POWER(10.0, 400.0) AS k, "
      "POWER(10.0, -400.0) AS l, 1 / 0 AS m, 1.0 / 0.0 AS n, MOD(5, 0) AS o, MOD(5.5, 0.0) AS p FROM ivoa.obscore",
      "SELECT TOP 1 SQRT(4.0) AS a, LOG(1.0) AS b, LOG10(1000.0) AS c, ACOS(-1.0) AS d, ASIN(1.0) AS e, COT(1.0) AS f, "
      "EXP(-745.0) AS g, EXP(709.0) AS h, POWER(-2.0, 3.0) AS i, POWER(0.0, 0.0) AS j, POWER(1.0, 1e300) AS k, "
      "POWER(-1.0, 1e300) AS l, 7 / 2 AS m, 7.0 / 2.0 AS n, MOD(-7, 3) AS o, MOD(-7.5, 2.0) AS p FROM ivoa.obscore",
      "SELECT obs_id, SQRT(s_dec) AS a, LOG(s_ra - 180) AS b, 1 / (s_ra - s_ra) AS c, ACOS(s_dec / 10) AS d "
      "FROM ivoa.obscore ORDER BY obs_id",
      "SELECT COUNT(*) AS n FROM ivoa.obscore WHERE SQRT(s_dec) IS NULL AND 1 / (s_ra - s_ra) IS NULL",
  };
  for (const auto& query : queries) {
    SCOPED_TRACE(query);
    TranslateOptions pg_options;
    pg_options.dialect = db::Dialect::postgresql;
    const Translation lite_sql = translate(query, catalog_, TranslateOptions{});
    const Translation pg_sql = translate(query, catalog_, pg_options);
    std::string lite_error, pg_error;
    const auto lite_rows = rows_of(*lite_, lite_sql.sql, lite_error);
    const auto pg_rows = rows_of(*pg_, pg_sql.sql, pg_error);
    ASSERT_EQ(lite_error, "");
    ASSERT_EQ(pg_error, "") << pg_sql.sql;
    ASSERT_FALSE(lite_rows.empty());
    EXPECT_EQ(pg_first_difference(lite_rows, pg_rows), "") << lite_sql.sql << "\n" << pg_sql.sql;
  }
}

}  // namespace
}  // namespace pixserve::adql
