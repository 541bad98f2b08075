#include "adql/geometry_functions.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "adql/sql_text.hpp"
// The prepared shapes and arc helpers of pixserve_sky: internal to the sky
// library but shared within pixserve, so that these predicates use the very
// same robust primitives as the index and SIA searches.
#include "sky/spherical_internal.hpp"

namespace pixserve::adql::geometry {

using sky::Circle;
using sky::Polygon;
using sky::RaDecRange;
using sky::SkyPoint;
using sky::Vec3;
namespace detail = sky::detail;

namespace {

constexpr double kDeg = detail::kDegToRad;
// Slack (degrees) for comparisons: far below any meaningful angle, far above
// the rounding of the trigonometry.
constexpr double kSlackDeg = 1e-10;
constexpr double kSlackRad = kSlackDeg * kDeg;

void check_finite(std::initializer_list<double> values) {
  for (const double v : values) {
    if (!std::isfinite(v)) throw GeometryError("geometry coordinates must be finite numbers");
  }
}

void check_dec(double dec) {
  if (dec < -90.0 || dec > 90.0) throw GeometryError(fmt::format("declination {} is outside [-90, 90]", dec));
}

// -------------------------------------------------------------- primitives
int orientation(const Vec3& a, const Vec3& b, const Vec3& c) {
  const double d = detail::dot(detail::robust_cross(a, b), c);
  return d > detail::kBoundaryTol ? 1 : d < -detail::kBoundaryTol ? -1 : 0;
}

// Arcs a->b and c->d cross at a point interior to both (touching excluded):
// the four orientation tests of S2's SimpleCrossing.
bool arcs_cross_strictly(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
  const int acb = -orientation(a, b, c);
  if (acb == 0) return false;
  if (orientation(a, b, d) != acb) return false;
  if (-orientation(c, d, b) != acb) return false;
  return orientation(c, d, a) == acb;
}

double min_distance_to_range(const Vec3& p, const detail::PreparedRange& r) {
  if (r.contains(p)) return 0.0;
  return r.boundary_distance(p);
}

bool full_sky(const detail::PreparedRange& r) { return r.full_ra && r.dec_min <= -90.0 && r.dec_max >= 90.0; }

double ra_width(const detail::PreparedRange& r) {
  return r.full_ra ? 360.0 : sky::normalize_ra(r.ra_hi - r.ra_lo);
}

// ------------------------------------------------------------ containment
bool point_in(const SkyPoint& p, const Geometry& outer) {
  struct V {
    const SkyPoint& p;
    bool operator()(const SkyPoint& q) const { return sky::angular_distance_deg(p, q) <= kSlackDeg; }
    bool operator()(const Circle& c) const { return c.contains(p); }
    bool operator()(const Polygon& poly) const { return poly.contains(p); }
    bool operator()(const Box& b) const { return b.range().contains(p); }
  };
  return std::visit(V{p}, outer);
}

bool circle_in(const Circle& c, const Geometry& outer) {
  const Vec3 centre = sky::to_vector(c.center);
  const double r = c.radius_deg * kDeg;
  struct V {
    const Circle& c;
    const Vec3& centre;
    double r;
    bool operator()(const SkyPoint& q) const {
      return c.radius_deg <= kSlackDeg && sky::angular_distance_deg(c.center, q) <= kSlackDeg;
    }
    bool operator()(const Circle& o) const {
      return o.radius_deg >= 180.0 || sky::angular_distance_deg(c.center, o.center) + c.radius_deg <=
                                          o.radius_deg + kSlackDeg;
    }
    bool operator()(const Polygon& poly) const {
      if (c.radius_deg >= 180.0) return false;
      const detail::PreparedPolygon pp(poly);
      return pp.contains(centre) && !pp.boundary_within(centre, r - kSlackRad);
    }
    bool operator()(const Box& b) const {
      const detail::PreparedRange pr(b.range());
      if (full_sky(pr)) return true;
      return pr.contains(centre) && pr.boundary_distance(centre) >= r - kSlackRad;
    }
  };
  return std::visit(V{c, centre, r}, outer);
}

bool polygon_in(const Polygon& p, const Geometry& outer) {
  struct V {
    const Polygon& p;
    bool operator()(const SkyPoint&) const { return false; }
    bool operator()(const Circle& c) const {
      if (c.radius_deg >= 180.0) return true;
      const Vec3 centre = sky::to_vector(c.center);
      const detail::PreparedPolygon pp(p);
      const auto& v = pp.vertices();
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (detail::max_distance_to_arc(centre, v[i], v[(i + 1) % v.size()]) > c.radius_deg * kDeg + kSlackRad) {
          return false;
        }
      }
      // The boundary is inside the cap; the polygon is then the part inside
      // unless it is the other side, which holds the antipode.
      return !pp.contains(detail::operator*(-1.0, centre));
    }
    bool operator()(const Polygon& q) const {
      const detail::PreparedPolygon pp(p);
      const detail::PreparedPolygon pq(q);
      for (const auto& x : pp.vertices()) {
        if (!pq.contains(x)) return false;
      }
      for (const auto& x : pq.vertices()) {
        if (pp.contains(x) && !pp.boundary_within(x, kSlackRad)) return false;
      }
      const auto& a = pp.vertices();
      const auto& b = pq.vertices();
      for (std::size_t i = 0; i < a.size(); ++i) {
        for (std::size_t j = 0; j < b.size(); ++j) {
          if (arcs_cross_strictly(a[i], a[(i + 1) % a.size()], b[j], b[(j + 1) % b.size()])) return false;
        }
      }
      return true;
    }
    bool operator()(const Box& b) const {
      // Inside the range iff the polygon meets none of the (slightly shrunk)
      // pieces of its complement: the caps beyond its declination limits
      // and the lune of RA outside it.
      const detail::PreparedRange r(b.range());
      if (full_sky(r)) return true;
      std::vector<RaDecRange> outside;
      if (r.dec_min > -90.0) outside.push_back({0.0, 360.0, -90.0, r.dec_min - kSlackDeg});
      if (r.dec_max < 90.0) outside.push_back({0.0, 360.0, r.dec_max + kSlackDeg, 90.0});
      if (!r.full_ra) outside.push_back({r.ra_hi + kSlackDeg, r.ra_lo - kSlackDeg, -90.0, 90.0});
      for (const auto& piece : outside) {
        if (piece.dec_min <= piece.dec_max && sky::intersects(p, piece)) return false;
      }
      return true;
    }
  };
  return std::visit(V{p}, outer);
}

bool box_in(const Box& box, const Geometry& outer) {
  const RaDecRange range = box.range();
  const detail::PreparedRange r(range);
  struct V {
    const Box& box;
    const RaDecRange& range;
    const detail::PreparedRange& r;
    bool operator()(const SkyPoint& q) const {
      return box.width <= kSlackDeg && box.height <= kSlackDeg &&
             sky::angular_distance_deg(box.center, q) <= kSlackDeg;
    }
    bool operator()(const Circle& c) const {
      if (c.radius_deg >= 180.0) return true;
      // The farthest point of the range from the centre is the antipode's
      // nearest point.
      const Vec3 anti = detail::operator*(-1.0, sky::to_vector(c.center));
      const double far = detail::kPi - min_distance_to_range(anti, r);
      return far <= c.radius_deg * kDeg + kSlackRad;
    }
    bool operator()(const Polygon& poly) const {
      const detail::PreparedPolygon pp(poly);
      for (const auto& x : pp.vertices()) {
        if (r.contains(x) && r.boundary_distance(x) > kSlackRad) return false;  // a vertex strictly inside
      }
      const double width = ra_width(r);
      const double ra0 = r.full_ra ? 0.0 : r.ra_lo;
      const int n_ra = std::max(4, static_cast<int>(std::ceil(width / 0.01)));
      const int n_dec = std::max(4, static_cast<int>(std::ceil((r.dec_max - r.dec_min) / 0.01)));
      for (int i = 0; i <= n_ra; ++i) {
        const double ra = ra0 + width * i / n_ra;
        if (!poly.contains({sky::normalize_ra(ra), r.dec_min}) || !poly.contains({sky::normalize_ra(ra), r.dec_max})) {
          return false;
        }
      }
      if (!r.full_ra) {
        for (const double ra : {r.ra_lo, r.ra_hi}) {
          for (int i = 0; i <= n_dec; ++i) {
            if (!poly.contains({ra, r.dec_min + (r.dec_max - r.dec_min) * i / n_dec})) return false;
          }
          const Vec3 m0 = sky::to_vector({ra, r.dec_min});
          const Vec3 m1 = sky::to_vector({ra, r.dec_max});
          const auto& v = pp.vertices();
          for (std::size_t k = 0; k < v.size(); ++k) {
            if (arcs_cross_strictly(m0, m1, v[k], v[(k + 1) % v.size()])) return false;
          }
        }
      }
      return true;
    }
    bool operator()(const Box& o) const {
      const detail::PreparedRange q(o.range());
      if (r.dec_min < q.dec_min - kSlackDeg || r.dec_max > q.dec_max + kSlackDeg) return false;
      if (q.full_ra) return true;
      if (r.full_ra) return false;
      const double off = sky::normalize_ra(r.ra_lo - q.ra_lo);
      const double shifted = off > 360.0 - kSlackDeg ? 0.0 : off;
      return shifted + ra_width(r) <= ra_width(q) + kSlackDeg;
    }
  };
  return std::visit(V{box, range, r}, outer);
}

// ----------------------------------------------------------- intersection
bool circle_meets(const Circle& c, const Geometry& other) {
  struct V {
    const Circle& c;
    bool operator()(const SkyPoint& q) const { return c.contains(q); }
    bool operator()(const Circle& o) const {
      return sky::angular_distance_deg(c.center, o.center) <= c.radius_deg + o.radius_deg + kSlackDeg;
    }
    bool operator()(const Polygon& p) const { return sky::intersects(p, c); }
    bool operator()(const Box& b) const {
      const detail::PreparedRange r(b.range());
      if (r.empty) return false;
      return min_distance_to_range(sky::to_vector(c.center), r) <= c.radius_deg * kDeg + kSlackRad;
    }
  };
  return std::visit(V{c}, other);
}

bool ranges_meet(const RaDecRange& a, const RaDecRange& b) {
  const detail::PreparedRange p(a);
  const detail::PreparedRange q(b);
  if (p.empty || q.empty) return false;
  if (p.dec_max < q.dec_min - kSlackDeg || q.dec_max < p.dec_min - kSlackDeg) return false;
  // Ranges touching a pole meet there whatever their RA.
  if ((p.dec_max >= 90.0 && q.dec_max >= 90.0) || (p.dec_min <= -90.0 && q.dec_min <= -90.0)) return true;
  return p.ra_in(q.ra_lo, kSlackDeg) || q.ra_in(p.ra_lo, kSlackDeg);
}

double parse_number(std::string_view token) {
  double v = 0.0;
  const auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || ptr != token.data() + token.size()) {
    throw GeometryError(fmt::format("invalid number '{}' in geometry", token));
  }
  return v;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// ---------------------------------------------------------------- public

RaDecRange Box::range() const {
  RaDecRange r;
  if (width >= 360.0) {
    r.ra_min = 0.0;
    r.ra_max = 360.0;
  } else {
    r.ra_min = sky::normalize_ra(center.ra - width / 2);
    r.ra_max = sky::normalize_ra(center.ra + width / 2);
    if (width == 0.0) r.ra_max = r.ra_min;
  }
  r.dec_min = std::max(-90.0, center.dec - height / 2);
  r.dec_max = std::min(90.0, center.dec + height / 2);
  return r;
}

SkyPoint make_point(double ra, double dec) {
  check_finite({ra, dec});
  check_dec(dec);
  return {sky::normalize_ra(ra), dec};
}

Circle make_circle(double ra, double dec, double radius) {
  check_finite({ra, dec, radius});
  check_dec(dec);
  if (radius < 0.0 || radius > 180.0) throw GeometryError(fmt::format("circle radius {} is outside [0, 180]", radius));
  return {{sky::normalize_ra(ra), dec}, radius};
}

Box make_box(double ra, double dec, double width, double height) {
  check_finite({ra, dec, width, height});
  check_dec(dec);
  if (width < 0.0 || height < 0.0) throw GeometryError("box width and height must not be negative");
  return {{sky::normalize_ra(ra), dec}, width, height};
}

Polygon make_polygon(std::span<const double> c) {
  if (c.size() % 2 != 0) throw GeometryError("a polygon needs an even number of coordinates");
  if (c.size() < 6) throw GeometryError("a polygon needs at least 3 vertices");
  std::vector<SkyPoint> vertices;
  for (std::size_t i = 0; i < c.size(); i += 2) vertices.push_back(make_point(c[i], c[i + 1]));
  try {
    return Polygon(std::move(vertices));
  } catch (const std::invalid_argument& e) {
    throw GeometryError(fmt::format("invalid polygon: {}", e.what()));
  }
}

Geometry parse(std::string_view text) {
  std::vector<std::string_view> tokens;
  for (std::size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) tokens.push_back(text.substr(start, i - start));
  }
  if (tokens.empty()) throw GeometryError("empty geometry");
  const std::string shape = upper(tokens[0]);
  std::size_t k = 1;
  for (; k < tokens.size(); ++k) {
    const char c = tokens[k][0];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') break;
    const std::string word = upper(tokens[k]);
    static constexpr std::string_view kAccepted[] = {"ICRS", "UNKNOWNFRAME", "GEOCENTER", "BARYCENTER",
                                                     "TOPOCENTER", "HELIOCENTER", "UNKNOWNREFPOS", "SPHERICAL2"};
    if (std::find(std::begin(kAccepted), std::end(kAccepted), word) == std::end(kAccepted)) {
      throw GeometryError(fmt::format("unsupported coordinate frame or flag '{}' (only ICRS is served)", tokens[k]));
    }
  }
  std::vector<double> n;
  for (; k < tokens.size(); ++k) n.push_back(parse_number(tokens[k]));
  auto need = [&](std::size_t count) {
    if (n.size() != count) {
      throw GeometryError(fmt::format("{} needs {} numbers, got {}", shape, count, n.size()));
    }
  };
  if (shape == "POINT" || shape == "POSITION") {
    need(2);
    return make_point(n[0], n[1]);
  }
  if (shape == "CIRCLE") {
    need(3);
    return make_circle(n[0], n[1], n[2]);
  }
  if (shape == "BOX") {
    need(4);
    return make_box(n[0], n[1], n[2], n[3]);
  }
  if (shape == "POLYGON") return make_polygon(n);
  throw GeometryError(fmt::format("unsupported geometry '{}'", tokens[0]));
}

std::string format(const Geometry& g) {
  struct V {
    std::string operator()(const SkyPoint& p) const {
      return fmt::format("POINT ICRS {} {}", format_real(p.ra), format_real(p.dec));
    }
    std::string operator()(const Circle& c) const {
      return fmt::format("CIRCLE ICRS {} {} {}", format_real(c.center.ra), format_real(c.center.dec),
                         format_real(c.radius_deg));
    }
    std::string operator()(const Polygon& p) const {
      std::string out = "POLYGON ICRS";
      for (const auto& v : p.vertices()) out += fmt::format(" {} {}", format_real(v.ra), format_real(v.dec));
      return out;
    }
    std::string operator()(const Box& b) const {
      return fmt::format("BOX ICRS {} {} {} {}", format_real(b.center.ra), format_real(b.center.dec),
                         format_real(b.width), format_real(b.height));
    }
  };
  return std::visit(V{}, g);
}

bool contains(const Geometry& inner, const Geometry& outer) {
  struct V {
    const Geometry& outer;
    bool operator()(const SkyPoint& p) const { return point_in(p, outer); }
    bool operator()(const Circle& c) const { return circle_in(c, outer); }
    bool operator()(const Polygon& p) const { return polygon_in(p, outer); }
    bool operator()(const Box& b) const { return box_in(b, outer); }
  };
  return std::visit(V{outer}, inner);
}

bool intersects(const Geometry& a, const Geometry& b) {
  if (const auto* p = std::get_if<SkyPoint>(&a)) return point_in(*p, b);
  if (const auto* p = std::get_if<SkyPoint>(&b)) return point_in(*p, a);
  if (const auto* c = std::get_if<Circle>(&a)) return circle_meets(*c, b);
  if (const auto* c = std::get_if<Circle>(&b)) return circle_meets(*c, a);
  if (const auto* p = std::get_if<Polygon>(&a)) {
    if (const auto* q = std::get_if<Polygon>(&b)) return sky::intersects(*p, *q);
    return sky::intersects(*p, std::get<Box>(b).range());
  }
  const RaDecRange ra = std::get<Box>(a).range();
  if (const auto* q = std::get_if<Polygon>(&b)) return sky::intersects(*q, ra);
  return ranges_meet(ra, std::get<Box>(b).range());
}

double distance(const SkyPoint& a, const SkyPoint& b) { return sky::angular_distance_deg(a, b); }

double area(const Geometry& g) {
  constexpr double kSrToDeg2 = detail::kRadToDeg * detail::kRadToDeg;
  struct V {
    double operator()(const SkyPoint&) const { return 0.0; }
    double operator()(const Circle& c) const {
      // 2 pi (1 - cos r) written with sin^2 to keep small circles accurate.
      const double h = std::sin(c.radius_deg * kDeg / 2);
      return 4.0 * detail::kPi * h * h * kSrToDeg2;
    }
    double operator()(const Polygon& p) const { return p.area_sr() * kSrToDeg2; }
    double operator()(const Box& b) const {
      const detail::PreparedRange r(b.range());
      if (r.empty) return 0.0;
      return ra_width(r) * kDeg * (std::sin(r.dec_max * kDeg) - std::sin(r.dec_min * kDeg)) * kSrToDeg2;
    }
  };
  return std::visit(V{}, g);
}

SkyPoint centroid(const Geometry& g) {
  struct V {
    SkyPoint operator()(const SkyPoint& p) const { return p; }
    SkyPoint operator()(const Circle& c) const { return c.center; }
    SkyPoint operator()(const Polygon& p) const { return p.centroid(); }
    SkyPoint operator()(const Box& b) const { return b.center; }
  };
  return std::visit(V{}, g);
}

sky::Shape to_shape(const Geometry& g) {
  struct V {
    sky::Shape operator()(const SkyPoint& p) const { return Circle{p, 0.0}; }
    sky::Shape operator()(const Circle& c) const { return c; }
    sky::Shape operator()(const Polygon& p) const { return p; }
    sky::Shape operator()(const Box& b) const { return b.range(); }
  };
  return std::visit(V{}, g);
}

}  // namespace pixserve::adql::geometry
