#include "adql/sqlite_functions.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
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

bool any_null(int argc, sqlite3_value** argv) {
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return true;
  }
  return false;
}

double num(sqlite3_value* v) { return sqlite3_value_double(v); }

void result_double(sqlite3_context* ctx, double v) {
  if (std::isfinite(v)) {
    sqlite3_result_double(ctx, v);
  } else {
    sqlite3_result_null(ctx);
  }
}

void result_text(sqlite3_context* ctx, const std::string& s) {
  sqlite3_result_text(ctx, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
}

// A geometry argument, parsed once per statement when it is constant:
// SQLite keeps auxiliary data only for arguments that do not change between
// rows, which is exactly the search shape of a spatial query.
class GeometryArg {
 public:
  GeometryArg(sqlite3_context* ctx, sqlite3_value** argv, int index) : ctx_(ctx), index_(index) {
    cached_ = static_cast<const geo::Geometry*>(sqlite3_get_auxdata(ctx, index));
    if (cached_) return;
    const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv[index]));
    const int n = sqlite3_value_bytes(argv[index]);
    owned_ = std::make_unique<geo::Geometry>(geo::parse(std::string_view(text ? text : "", static_cast<std::size_t>(n))));
  }
  GeometryArg(const GeometryArg&) = delete;
  GeometryArg& operator=(const GeometryArg&) = delete;
  // Hands the parsed value to SQLite (which may free it at once).
  ~GeometryArg() {
    if (owned_) {
      sqlite3_set_auxdata(ctx_, index_, owned_.release(), [](void* p) { delete static_cast<geo::Geometry*>(p); });
    }
  }
  const geo::Geometry& operator*() const { return cached_ ? *cached_ : *owned_; }

 private:
  sqlite3_context* ctx_;
  int index_;
  const geo::Geometry* cached_ = nullptr;
  std::unique_ptr<geo::Geometry> owned_;
};

using Impl = void (*)(sqlite3_context*, int, sqlite3_value**);

// Wraps an implementation: NULL in, NULL out; C++ exceptions become SQL
// errors (they must not cross SQLite's C frames).
template <void (*F)(sqlite3_context*, int, sqlite3_value**)>
void guarded(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (any_null(argc, argv)) {
    sqlite3_result_null(ctx);
    return;
  }
  try {
    F(ctx, argc, argv);
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  }
}

template <double (*F)(double)>
void unary(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_double(ctx, F(num(argv[0])));
}
template <double (*F)(double, double)>
void binary(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_double(ctx, F(num(argv[0]), num(argv[1])));
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

void f_pi(sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_double(ctx, kPi); }

void f_rand(sqlite3_context* ctx, int, sqlite3_value**) {
  std::uint64_t r = 0;
  sqlite3_randomness(sizeof r, &r);
  sqlite3_result_double(ctx, static_cast<double>(r >> 11) * 0x1.0p-53);
}

void f_mod(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_INTEGER && sqlite3_value_type(argv[1]) == SQLITE_INTEGER) {
    const sqlite3_int64 a = sqlite3_value_int64(argv[0]);
    const sqlite3_int64 b = sqlite3_value_int64(argv[1]);
    if (b == 0) {
      sqlite3_result_null(ctx);
    } else if (b == -1) {
      sqlite3_result_int64(ctx, 0);  // INT64_MIN % -1 overflows in C++
    } else {
      sqlite3_result_int64(ctx, a % b);
    }
    return;
  }
  result_double(ctx, std::fmod(num(argv[0]), num(argv[1])));
}

// x rounded (or truncated) to `digits` decimal places.
template <bool Round>
void f_round(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const double x = num(argv[0]);
  const sqlite3_int64 digits = std::clamp<sqlite3_int64>(sqlite3_value_int64(argv[1]), -400, 400);
  auto op = [](double v) { return Round ? std::round(v) : std::trunc(v); };
  if (!std::isfinite(x)) {
    sqlite3_result_null(ctx);
    return;
  }
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
  result_double(ctx, r);
}

// Code points of UTF-8 text (invalid bytes stand for themselves).
std::vector<std::uint32_t> code_points(const unsigned char* s, int n) {
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

void f_like(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto s = code_points(sqlite3_value_text(argv[0]), sqlite3_value_bytes(argv[0]));
  const auto p = code_points(sqlite3_value_text(argv[1]), sqlite3_value_bytes(argv[1]));
  sqlite3_result_int(ctx, like(s, p) ? 1 : 0);
}

void f_point(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_text(ctx, geo::format(geo::make_point(num(argv[0]), num(argv[1]))));
}
void f_circle(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_text(ctx, geo::format(geo::make_circle(num(argv[0]), num(argv[1]), num(argv[2]))));
}
void f_box(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_text(ctx, geo::format(geo::make_box(num(argv[0]), num(argv[1]), num(argv[2]), num(argv[3]))));
}
void f_polygon(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  std::vector<double> c;
  for (int i = 0; i < argc; ++i) c.push_back(num(argv[i]));
  result_text(ctx, geo::format(geo::make_polygon(c)));
}
void f_contains(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg a(ctx, argv, 0), b(ctx, argv, 1);
  sqlite3_result_int(ctx, geo::contains(*a, *b) ? 1 : 0);
}
void f_intersects(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg a(ctx, argv, 0), b(ctx, argv, 1);
  sqlite3_result_int(ctx, geo::intersects(*a, *b) ? 1 : 0);
}
void f_contains_point(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg region(ctx, argv, 2);
  const geo::Geometry p = geo::make_point(num(argv[0]), num(argv[1]));
  sqlite3_result_int(ctx, geo::contains(p, *region) ? 1 : 0);
}
void f_contains_point_circle(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const auto p = geo::make_point(num(argv[0]), num(argv[1]));
  const auto c = geo::make_circle(num(argv[2]), num(argv[3]), num(argv[4]));
  sqlite3_result_int(ctx, c.contains(p) ? 1 : 0);
}
void f_distance(sqlite3_context* ctx, int, sqlite3_value** argv) {
  result_double(ctx, geo::distance(geo::make_point(num(argv[0]), num(argv[1])),
                                   geo::make_point(num(argv[2]), num(argv[3]))));
}
const sky::SkyPoint& as_point(const geo::Geometry& g) {
  const auto* p = std::get_if<sky::SkyPoint>(&g);
  if (!p) throw geo::GeometryError("a point is needed");
  return *p;
}
void f_point_distance(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg a(ctx, argv, 0), b(ctx, argv, 1);
  result_double(ctx, geo::distance(as_point(*a), as_point(*b)));
}
void f_area(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg g(ctx, argv, 0);
  result_double(ctx, geo::area(*g));
}
void f_coord1(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg g(ctx, argv, 0);
  result_double(ctx, as_point(*g).ra);
}
void f_coord2(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg g(ctx, argv, 0);
  result_double(ctx, as_point(*g).dec);
}
void f_coordsys(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg g(ctx, argv, 0);  // validates
  sqlite3_result_text(ctx, "ICRS", -1, SQLITE_STATIC);
}
void f_centroid(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const GeometryArg g(ctx, argv, 0);
  result_text(ctx, geo::format(geo::centroid(*g)));
}

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
    {"adql_rand", 0, guarded<f_rand>, false},
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

std::span<const UserFunction> user_functions(Dialect dialect) {
  if (dialect == Dialect::postgresql) return std::span(kAllFunctions).first(kGeometryFunctionCount);
  return kAllFunctions;
}

void register_sqlite_functions(sqlite3* db) {
  for (const auto& r : kRegistrations) {
    const int flags = SQLITE_UTF8 | (r.deterministic ? SQLITE_DETERMINISTIC : 0) | SQLITE_INNOCUOUS;
    const std::string name(r.name);
    const int rc = sqlite3_create_function_v2(db, name.c_str(), r.arity, flags, nullptr, r.fn, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      throw std::runtime_error(fmt::format("cannot register SQL function {}: {}", r.name, sqlite3_errmsg(db)));
    }
  }
}

}  // namespace pixserve::adql
