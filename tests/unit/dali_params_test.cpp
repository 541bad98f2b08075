// DALI parameter parsing: every type's exact serialisation, bounds,
// multiplicity, defaults, case-insensitive names and hostile values.
#include <gtest/gtest.h>

#include <cmath>

#include "dali/params.hpp"

namespace pixserve::dali {
namespace {

ParamSpec spec(std::string name, ParamType type) {
  ParamSpec s;
  s.name = std::move(name);
  s.type = type;
  return s;
}

int status_of(const ParamSpec& s, std::string_view text) {
  try {
    parse_value(s, text);
  } catch (const DaliError& e) {
    EXPECT_NE(std::string(e.what()).find(s.name), std::string::npos) << e.what();
    return e.status();
  }
  return 200;
}

TEST(DaliParams, Numbers) {
  auto real = spec("SIZE", ParamType::real);
  real.min = 0.0;
  real.max = 10.0;
  EXPECT_DOUBLE_EQ(std::get<double>(parse_value(real, "2.5")), 2.5);
  EXPECT_DOUBLE_EQ(std::get<double>(parse_value(real, "+1e-3")), 1e-3);
  for (const char* bad : {"", "abc", "1.5x", "NaN", "inf", "11", "-1", "1 2", "0x10"}) EXPECT_EQ(status_of(real, bad), 400) << bad;
  auto integer = spec("MAXREC", ParamType::integer);
  integer.min = 0;
  EXPECT_EQ(std::get<std::int64_t>(parse_value(integer, "1000")), 1000);
  for (const char* bad : {"1.0", "-5", "99999999999999999999999", " 3", "3 "}) EXPECT_EQ(status_of(integer, bad), 400) << bad;
}

TEST(DaliParams, IntervalsAreOpenEnded) {
  const auto band = spec("BAND", ParamType::interval);
  auto iv = std::get<Interval>(parse_value(band, "5e-7 6e-7"));
  EXPECT_DOUBLE_EQ(iv.lo, 5e-7);
  EXPECT_DOUBLE_EQ(iv.hi, 6e-7);
  iv = std::get<Interval>(parse_value(band, "-Inf 6e-7"));
  EXPECT_TRUE(std::isinf(iv.lo) && iv.lo < 0);
  iv = std::get<Interval>(parse_value(band, "5e-7 +Inf"));
  EXPECT_TRUE(std::isinf(iv.hi) && iv.hi > 0);
  iv = std::get<Interval>(parse_value(band, "6.2e-7"));
  EXPECT_DOUBLE_EQ(iv.lo, iv.hi);
  for (const char* bad : {"6e-7 5e-7", "1 2 3", "a b", "NaN 1", ""}) EXPECT_EQ(status_of(band, bad), 400) << bad;
}

TEST(DaliParams, Shapes) {
  const auto pos = spec("POS", ParamType::shape);
  const auto c = std::get<sky::Circle>(parse_value(pos, "CIRCLE 53.1 -28.2 0.05"));
  EXPECT_DOUBLE_EQ(c.center.ra, 53.1);
  EXPECT_DOUBLE_EQ(c.radius_deg, 0.05);
  EXPECT_DOUBLE_EQ(std::get<sky::Circle>(parse_value(pos, "circle -10 0 1")).center.ra, 350.0);
  const auto r = std::get<sky::RaDecRange>(parse_value(pos, "RANGE 350 10 -Inf -80"));
  EXPECT_DOUBLE_EQ(r.ra_min, 350.0);
  EXPECT_DOUBLE_EQ(r.ra_max, 10.0);
  EXPECT_DOUBLE_EQ(r.dec_min, -90.0);
  const auto full = std::get<sky::RaDecRange>(parse_value(pos, "RANGE -Inf +Inf 0 10"));
  EXPECT_DOUBLE_EQ(full.ra_max - full.ra_min, 360.0);
  const auto p = std::get<sky::Polygon>(parse_value(pos, "POLYGON 10 0 11 0 11 1 10 1"));
  EXPECT_EQ(p.vertices().size(), 4U);
  for (const char* bad : {"CIRCLE 1 2", "CIRCLE 1 95 1", "CIRCLE 1 2 0", "CIRCLE 1 2 -1", "BOX 1 2 3 4", "POLYGON 1 2 3 4",
                          "POLYGON 0 0 1 1 0 1 1 0", "RANGE 1 2 3", "RANGE 0 10 20 10", "", "POLYGON 1 2 3 4 5"}) {
    EXPECT_EQ(status_of(pos, bad), 400) << bad;
  }
  const auto circle = spec("CIRCLE", ParamType::circle);
  EXPECT_DOUBLE_EQ(std::get<sky::Circle>(parse_value(circle, "1 2 3")).radius_deg, 3.0);
  EXPECT_EQ(status_of(circle, "CIRCLE 1 2 3"), 400);
}

TEST(DaliParams, TimestampsAndEnums) {
  const auto t = spec("DATE", ParamType::timestamp);
  EXPECT_DOUBLE_EQ(std::get<double>(parse_value(t, "2000-01-01T12:00:00Z")), 51544.5);
  EXPECT_EQ(status_of(t, "yesterday"), 400);
  auto e = spec("RESPONSEFORMAT", ParamType::enumerated);
  e.options = {"votable", "csv"};
  EXPECT_EQ(std::get<std::string>(parse_value(e, "csv")), "csv");
  EXPECT_EQ(status_of(e, "CSV"), 400);  // DALI values are case-sensitive
}

TEST(DaliParams, RequestLevelRules) {
  std::vector<ParamSpec> specs{spec("ID", ParamType::text), spec("POS", ParamType::shape), spec("MAXREC", ParamType::integer)};
  specs[0].multiple = true;
  specs[0].required = true;
  specs[2].default_value = "100";
  const auto parsed = parse_params(specs, {{"id", "a"}, {"Id", "b"}, {"pos", "CIRCLE 1 2 3"}, {"unknown", "x"}});
  EXPECT_EQ(parsed.all_as<std::string>("ID"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parsed.first<std::int64_t>("maxrec").value_or(0), 100);
  EXPECT_TRUE(parsed.has("POS"));
  EXPECT_THROW(parse_params(specs, {{"POS", "CIRCLE 1 2 3"}}), DaliError);                          // ID missing
  EXPECT_THROW(parse_params(specs, {{"ID", "a"}, {"MAXREC", "1"}, {"maxrec", "2"}}), DaliError);  // single-valued
  EXPECT_THROW(parse_params(specs, {{"ID", "a"}, {"bogus", "1"}}, {.reject_unknown = true}), DaliError);
  // Hostile values are quoted short and printable in the message.
  try {
    parse_params(specs, {{"ID", "a"}, {"MAXREC", std::string(10000, 'x') + "\x01<script>"}});
    FAIL();
  } catch (const DaliError& e) {
    EXPECT_LT(std::string(e.what()).size(), 200U);
  }
}

}  // namespace
}  // namespace pixserve::dali
