#include "adql/sql_functions.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "adql/geometry_functions.hpp"

namespace pixserve::adql {

namespace {

namespace geo = geometry;

// Every function a backend provides for translated SQL. The geometry ones
// come first: PostgreSQL has the others built in and needs only that prefix.
constexpr std::size_t kGeometryFunctionCount = 15;
constexpr UserFunction kAllFunctions[] = {
    {"adql_point", 2, "adql_point(ra, dec) -> text"},
    {"adql_circle", 3, "adql_circle(ra, dec, radius) -> text"},
    {"adql_box", 4, "adql_box(ra, dec, width, height) -> text"},
    {"adql_polygon", -1, "adql_polygon(ra1, dec1, ra2, dec2, ra3, dec3, ...) -> text"},
    {"adql_contains", 2, "adql_contains(inner text, outer text) -> 0/1"},
    {"adql_intersects", 2, "adql_intersects(a text, b text) -> 0/1"},
    {"adql_contains_point", 3, "adql_contains_point(ra, dec, region text) -> 0/1"},
    {"adql_contains_point_circle", 5, "adql_contains_point_circle(ra, dec, ra0, dec0, radius) -> 0/1"},
    {"adql_distance", 4, "adql_distance(ra1, dec1, ra2, dec2) -> degrees"},
    {"adql_point_distance", 2, "adql_point_distance(point text, point text) -> degrees"},
    {"adql_area", 1, "adql_area(region text) -> square degrees"},
    {"adql_coord1", 1, "adql_coord1(point text) -> ra"},
    {"adql_coord2", 1, "adql_coord2(point text) -> dec"},
    {"adql_coordsys", 1, "adql_coordsys(region text) -> 'ICRS'"},
    {"adql_centroid", 1, "adql_centroid(region text) -> point text"},
    {"adql_like", 2, "adql_like(text, pattern) -> 0/1, case-sensitive, no escape"},
    {"adql_acos", 1, "acos"},
    {"adql_asin", 1, "asin"},
    {"adql_atan", 1, "atan"},
    {"adql_atan2", 2, "atan2(y, x)"},
    {"adql_ceiling", 1, "ceiling"},
    {"adql_cos", 1, "cos"},
    {"adql_cot", 1, "cot"},
    {"adql_degrees", 1, "degrees"},
    {"adql_exp", 1, "exp"},
    {"adql_floor", 1, "floor"},
    {"adql_log", 1, "natural logarithm"},
    {"adql_log10", 1, "base-10 logarithm"},
    {"adql_mod", 2, "mod(a, b): integer remainder for integers, fmod otherwise"},
    {"adql_pi", 0, "pi"},
    {"adql_power", 2, "power(x, y)"},
    {"adql_radians", 1, "radians"},
    {"adql_rand", 0, "uniform in [0, 1)"},
    {"adql_round", 2, "round(x, digits), half away from zero"},
    {"adql_sin", 1, "sin"},
    {"adql_sqrt", 1, "sqrt"},
    {"adql_tan", 1, "tan"},
    {"adql_truncate", 2, "truncate(x, digits), towards zero"},
};

bool any_null(const db::FunctionCall& call) {
  for (int i = 0; i < call.size(); ++i) {
    if (call.is_null(i)) return true;
  }
  return false;
}

db::Value real(double v) { return std::isfinite(v) ? db::Value(v) : db::Value(); }
db::Value truth(bool b) { return db::Value(std::int64_t{b ? 1 : 0}); }

// A geometry argument, parsed once per statement when it is constant.
const geo::Geometry& geometry(db::FunctionCall& call, int index) {
  return call.derived<geo::Geometry>(index, [&] { return geo::parse(call.get_text(index)); });
}

using Impl = db::Value (*)(db::FunctionCall&);

// Wraps an implementation: NULL in, NULL out. (Exceptions become SQL errors
// in the backend.)
template <Impl F>
db::Value guarded(db::FunctionCall& call) {
  if (any_null(call)) return {};
  return F(call);
}

template <double (*F)(double)>
db::Value unary(db::FunctionCall& call) {
  return real(F(call.get_double(0)));
}
template <double (*F)(double, double)>
db::Value binary(db::FunctionCall& call) {
  return real(F(call.get_double(0), call.get_double(1)));
}

constexpr double kPi = 3.141592653589793238462643383279502884;
double f_acos(double x) { return std::acos(x); }
double f_asin(double x) { return std::asin(x); }
double f_atan(double x) { return std::atan(x); }
double f_atan2(double y, double x) { return std::atan2(y, x); }
double f_ceil(double x) { return std::ceil(x); }
double f_cos(double x) { return std::cos(x); }
double f_cot(double x) { return 1.0 / std::tan(x); }
double f_degrees(double x) { return x * 180.0 / kPi; }
double f_exp(double x) { return std::exp(x); }
double f_floor(double x) { return std::floor(x); }
double f_log(double x) { return std::log(x); }
double f_log10(double x) { return std::log10(x); }
double f_pow(double x, double y) { return std::pow(x, y); }
double f_radians(double x) { return x * kPi / 180.0; }
double f_sin(double x) { return std::sin(x); }
double f_sqrt(double x) { return std::sqrt(x); }
double f_tan(double x) { return std::tan(x); }

db::Value f_pi(db::FunctionCall&) { return kPi; }

db::Value f_mod(db::FunctionCall& call) {
  if (call.type(0) == db::ValueType::integer && call.type(1) == db::ValueType::integer) {
    const std::int64_t a = call.get_int(0);
    const std::int64_t b = call.get_int(1);
    if (b == 0) return {};
    if (b == -1) return std::int64_t{0};  // INT64_MIN % -1 overflows in C++
    return a % b;
  }
  return real(std::fmod(call.get_double(0), call.get_double(1)));
}

// x rounded (or truncated) to `digits` decimal places.
template <bool Round>
db::Value f_round(db::FunctionCall& call) {
  const double x = call.get_double(0);
  const std::int64_t digits = std::clamp<std::int64_t>(call.get_int(1), -400, 400);
  auto op = [](double v) { return Round ? std::round(v) : std::trunc(v); };
  if (!std::isfinite(x)) return {};
  double r;
  if (digits >= 0) {
    const double scale = std::pow(10.0, static_cast<double>(digits));
    const double scaled = x * scale;
    // Beyond 2^52 a double has no fractional digits left to round.
    r = (!std::isfinite(scaled) || std::abs(scaled) >= 0x1.0p52) ? x : op(scaled) / scale;
  } else {
    const double scale = std::pow(10.0, static_cast<double>(-digits));
    r = op(x / scale) * scale;
  }
  return real(r);
}

// Code points of UTF-8 text (invalid bytes stand for themselves).
std::vector<std::uint32_t> code_points(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const auto n = static_cast<int>(text.size());
  std::vector<std::uint32_t> out;
  for (int i = 0; i < n;) {
    const unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (i + len > n) len = 1;
    std::uint32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
    for (int k = 1; k < len; ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

// SQL LIKE without escape, case-sensitive: greedy matching with one
// backtrack point (the last %), linear in practice and never recursive.
bool like(const std::vector<std::uint32_t>& s, const std::vector<std::uint32_t>& p) {
  std::size_t si = 0, pi = 0, star = std::string::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == s[si]))) {
      ++si;
      ++pi;
    } else if (pi < p.size() && p[pi] == '%') {
      star = pi++;
      mark = si;
    } else if (star != std::string::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '%') ++pi;
  return pi == p.size();
}

db::Value f_like(db::FunctionCall& call) {
  return truth(like(code_points(call.get_text(0)), code_points(call.get_text(1))));
}

db::Value f_point(db::FunctionCall& call) {
  return geo::format(geo::make_point(call.get_double(0), call.get_double(1)));
}
db::Value f_circle(db::FunctionCall& call) {
  return geo::format(geo::make_circle(call.get_double(0), call.get_double(1), call.get_double(2)));
}
db::Value f_box(db::FunctionCall& call) {
  return geo::format(geo::make_box(call.get_double(0), call.get_double(1), call.get_double(2), call.get_double(3)));
}
db::Value f_polygon(db::FunctionCall& call) {
  std::vector<double> c;
  for (int i = 0; i < call.size(); ++i) c.push_back(call.get_double(i));
  return geo::format(geo::make_polygon(c));
}
db::Value f_contains(db::FunctionCall& call) {
  const auto& a = geometry(call, 0);
  const auto& b = geometry(call, 1);
  return truth(geo::contains(a, b));
}
db::Value f_intersects(db::FunctionCall& call) {
  const auto& a = geometry(call, 0);
  const auto& b = geometry(call, 1);
  return truth(geo::intersects(a, b));
}
db::Value f_contains_point(db::FunctionCall& call) {
  const auto& region = geometry(call, 2);
  const geo::Geometry p = geo::make_point(call.get_double(0), call.get_double(1));
  return truth(geo::contains(p, region));
}
db::Value f_contains_point_circle(db::FunctionCall& call) {
  const auto p = geo::make_point(call.get_double(0), call.get_double(1));
  const auto c = geo::make_circle(call.get_double(2), call.get_double(3), call.get_double(4));
  return truth(c.contains(p));
}
db::Value f_distance(db::FunctionCall& call) {
  return real(geo::distance(geo::make_point(call.get_double(0), call.get_double(1)),
                            geo::make_point(call.get_double(2), call.get_double(3))));
}
const sky::SkyPoint& as_point(const geo::Geometry& g) {
  const auto* p = std::get_if<sky::SkyPoint>(&g);
  if (!p) throw geo::GeometryError("a point is needed");
  return *p;
}
db::Value f_point_distance(db::FunctionCall& call) {
  const auto& a = geometry(call, 0);
  const auto& b = geometry(call, 1);
  return real(geo::distance(as_point(a), as_point(b)));
}
db::Value f_area(db::FunctionCall& call) { return real(geo::area(geometry(call, 0))); }
db::Value f_coord1(db::FunctionCall& call) { return real(as_point(geometry(call, 0)).ra); }
db::Value f_coord2(db::FunctionCall& call) { return real(as_point(geometry(call, 0)).dec); }
db::Value f_coordsys(db::FunctionCall& call) {
  (void)geometry(call, 0);  // validates
  return std::string("ICRS");
}
db::Value f_centroid(db::FunctionCall& call) { return geo::format(geo::centroid(geometry(call, 0))); }

struct Registration {
  std::string_view name;
  int arity;
  Impl fn;
  bool deterministic = true;
};

constexpr Registration kRegistrations[] = {
    {"adql_point", 2, guarded<f_point>},
    {"adql_circle", 3, guarded<f_circle>},
    {"adql_box", 4, guarded<f_box>},
    {"adql_polygon", -1, guarded<f_polygon>},
    {"adql_contains", 2, guarded<f_contains>},
    {"adql_intersects", 2, guarded<f_intersects>},
    {"adql_contains_point", 3, guarded<f_contains_point>},
    {"adql_contains_point_circle", 5, guarded<f_contains_point_circle>},
    {"adql_distance", 4, guarded<f_distance>},
    {"adql_point_distance", 2, guarded<f_point_distance>},
    {"adql_area", 1, guarded<f_area>},
    {"adql_coord1", 1, guarded<f_coord1>},
    {"adql_coord2", 1, guarded<f_coord2>},
    {"adql_coordsys", 1, guarded<f_coordsys>},
    {"adql_centroid", 1, guarded<f_centroid>},
    {"adql_like", 2, guarded<f_like>},
    {"adql_acos", 1, guarded<unary<f_acos>>},
    {"adql_asin", 1, guarded<unary<f_asin>>},
    {"adql_atan", 1, guarded<unary<f_atan>>},
    {"adql_atan2", 2, guarded<binary<f_atan2>>},
    {"adql_ceiling", 1, guarded<unary<f_ceil>>},
    {"adql_cos", 1, guarded<unary<f_cos>>},
    {"adql_cot", 1, guarded<unary<f_cot>>},
    {"adql_degrees", 1, guarded<unary<f_degrees>>},
    {"adql_exp", 1, guarded<unary<f_exp>>},
    {"adql_floor", 1, guarded<unary<f_floor>>},
    {"adql_log", 1, guarded<unary<f_log>>},
    {"adql_log10", 1, guarded<unary<f_log10>>},
    {"adql_mod", 2, guarded<f_mod>},
    {"adql_pi", 0, guarded<f_pi>},
    {"adql_power", 2, guarded<binary<f_pow>>},
    {"adql_radians", 1, guarded<unary<f_radians>>},
    {"adql_rand", 0, nullptr, false},  // stateful: see register_functions()
    {"adql_round", 2, guarded<f_round<true>>},
    {"adql_sin", 1, guarded<unary<f_sin>>},
    {"adql_sqrt", 1, guarded<unary<f_sqrt>>},
    {"adql_tan", 1, guarded<unary<f_tan>>},
    {"adql_truncate", 2, guarded<f_round<false>>},
};

static_assert(std::size(kRegistrations) == std::size(kAllFunctions), "every listed function is registered");
static_assert(std::string_view(kAllFunctions[kGeometryFunctionCount - 1].name) == "adql_centroid" &&
                  std::string_view(kAllFunctions[kGeometryFunctionCount].name) == "adql_like",
              "the geometry functions are the first kGeometryFunctionCount entries");

}  // namespace

std::span<const UserFunction> user_functions(db::Dialect dialect) {
  if (dialect == db::Dialect::postgresql) return std::span(kAllFunctions).first(kGeometryFunctionCount);
  return kAllFunctions;
}

void register_functions(db::Connection& connection) {
  for (const auto& r : kRegistrations) {
    if (r.fn) {
      connection.create_function(r.name, r.arity, r.deterministic, r.fn);
    } else {
      // RAND() draws from a generator of its own connection (a connection
      // runs one statement at a time), seeded from the system's entropy.
      connection.create_function(r.name, r.arity, r.deterministic,
                                 [rng = std::mt19937_64(std::random_device{}())](db::FunctionCall&) mutable {
                                   return db::Value(static_cast<double>(rng() >> 11) * 0x1.0p-53);
                                 });
    }
  }
}

}  // namespace pixserve::adql
