// Exact spherical geometry. Points are handled as unit vectors internally;
// every predicate is written so that it keeps its relative precision for
// tiny shapes (arcsecond footprints, sub-milliarcsecond cells): normals come
// from robust_cross, areas from a translated triple product, distances from
// atan2 rather than acos/asin.
#include "sky/geometry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "sky/spherical_internal.hpp"

namespace pixserve::sky {

using detail::angle_between;
using detail::cross;
using detail::dot;
using detail::kBoundaryTol;
using detail::kDegToRad;
using detail::kPi;
using detail::kRadToDeg;
using detail::norm;
using detail::normalized;
using detail::PreparedPolygon;
using detail::PreparedRange;
using detail::robust_cross;
using detail::operator+;
using detail::operator-;
using detail::operator*;

namespace {

// Slack (degrees) for comparisons done in RA/Dec, matching kBoundaryTol in
// spirit: far below any meaningful angle, far above the rounding of the
// vector <-> degree conversions.
constexpr double kDegSlack = 1e-12;

// sin/cos of an angle in degrees with exact quadrant reduction, so that
// multiples of 90 give exact 0/+-1 (a vertex at a pole or on RA=90 then maps
// to an exact vector, and coordinate-aligned edges stay exactly aligned).
void sincos_deg(double deg, double& s, double& c) {
  const double r = std::remainder(deg, 360.0);  // exact, in [-180, 180]
  const double q = std::round(r / 90.0);
  const double t = (r - 90.0 * q) * kDegToRad;  // r - 90q is exact (Sterbenz)
  const double s0 = std::sin(t);
  const double c0 = std::cos(t);
  switch (static_cast<int>(q) & 3) {
    case 0: s = s0; c = c0; break;
    case 1: s = c0; c = -s0; break;
    case 2: s = -s0; c = -c0; break;
    default: s = -c0; c = s0; break;
  }
}

bool finite(const SkyPoint& p) { return std::isfinite(p.ra) && std::isfinite(p.dec); }

// b - a in degrees, reduced to [-180, 180] without losing the precision of a
// small difference across RA = 0 (359.99... vs 0.00...), where the plain
// difference would be close to 360 and carry its rounding.
double ra_difference(double a, double b) {
  const double plain = b - a;
  const double shifted = std::remainder(b, 360.0) - std::remainder(a, 360.0);
  return std::remainder(std::abs(shifted) < std::abs(plain) ? shifted : plain, 360.0);
}

// Distance in radians between two sky points, computed from the coordinates
// (Vincenty's form with the differences taken in degrees) rather than from
// unit vectors, whose 1e-16 component rounding would dominate below ~1e-8 deg.
double distance_rad(const SkyPoint& a, const SkyPoint& b) {
  double s1, c1, s2, c2, sda, cda, sh, ch, sdd, cdd;
  sincos_deg(a.dec, s1, c1);
  sincos_deg(b.dec, s2, c2);
  const double dra = ra_difference(a.ra, b.ra);
  sincos_deg(dra, sda, cda);
  sincos_deg(0.5 * dra, sh, ch);
  sincos_deg(b.dec - a.dec, sdd, cdd);
  const double x = c2 * sda;
  // cos(d1) sin(d2) - sin(d1) cos(d2) cos(dra), rewritten to avoid the
  // cancellation between its two terms for nearby points.
  const double y = sdd + 2.0 * s1 * c2 * sh * sh;
  const double num = std::hypot(x, y);
  const double den = s1 * s2 + c1 * c2 * cda;
  return std::atan2(num, den);
}

// Signed spherical excess of triangle (a, b, c), positive when c is to the
// left of a->b. Van Oosterom & Strackee, with the triple product evaluated on
// the differences b-a, c-a so that it stays accurate for tiny triangles.
double signed_triangle_area(const Vec3& a, const Vec3& b, const Vec3& c) {
  const double num = dot(a, cross(b - a, c - a));
  const double den = 1.0 + dot(a, b) + dot(b, c) + dot(c, a);
  return 2.0 * std::atan2(num, den);
}

// Signed area of the region to the left of the closed vertex chain, reduced to
// (-2pi, 2pi]: positive means the chain is counter-clockwise around the
// smaller region. The fan triangles' sum equals that area modulo 4pi for any
// apex; the apex is chosen with no vertex antipodal to it, since a fan
// diagonal between antipodes would be ill-defined.
double signed_area(const std::vector<Vec3>& v) {
  const std::size_t n = v.size();
  if (n < 3) return 0.0;
  std::size_t apex = 0;
  for (std::size_t k = 0; k < n; ++k) {
    bool ok = true;
    for (std::size_t i = 0; i < n && ok; ++i) ok = dot(v[k], v[i]) > -1.0 + 1e-9;
    if (ok) {
      apex = k;
      break;
    }
  }
  double s = 0.0;
  for (std::size_t i = 1; i + 1 < n; ++i) {
    s += signed_triangle_area(v[apex], v[(apex + i) % n], v[(apex + i + 1) % n]);
  }
  while (s > 2.0 * kPi) s -= 4.0 * kPi;
  while (s <= -2.0 * kPi) s += 4.0 * kPi;
  return s;
}

std::vector<Vec3> to_vectors(const std::vector<SkyPoint>& pts) {
  std::vector<Vec3> v;
  v.reserve(pts.size());
  for (const auto& p : pts) v.push_back(to_vector(p));
  return v;
}

bool same_point(const Vec3& a, const Vec3& b) { return norm(a - b) <= kBoundaryTol; }

// Strict crossing of arcs a->b and c->d at a single interior point (S2's
// SimpleCrossing): the four triangles ACB, BDA, CBD, DAC share one
// orientation. Touching configurations return false.
bool arcs_cross_strictly(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
  const Vec3 ab = robust_cross(a, b);
  const double acb = -dot(ab, c);
  const double bda = dot(ab, d);
  if (acb == 0.0 || bda == 0.0 || (acb > 0.0) != (bda > 0.0)) return false;
  const Vec3 cd = robust_cross(c, d);
  const double cbd = -dot(cd, b);
  const double dac = dot(cd, a);
  if (cbd == 0.0 || dac == 0.0) return false;
  return (acb > 0.0) == (cbd > 0.0) && (acb > 0.0) == (dac > 0.0);
}

}  // namespace

// ---------------------------------------------------------------------------
// Points

Vec3 to_vector(const SkyPoint& p) {
  double sr, cr, sd, cd;
  sincos_deg(p.ra, sr, cr);
  sincos_deg(p.dec, sd, cd);
  return {cd * cr, cd * sr, sd};
}

SkyPoint to_sky(const Vec3& v) {
  if (v.x == 0.0 && v.y == 0.0 && v.z == 0.0) return {};
  const double ra = std::atan2(v.y, v.x) * kRadToDeg;
  // The degree conversion can round pi/2 to just over 90.
  const double dec = std::clamp(std::atan2(v.z, std::hypot(v.x, v.y)) * kRadToDeg, -90.0, 90.0);
  return {normalize_ra(ra), dec};
}

double normalize_ra(double ra_deg) {
  if (!std::isfinite(ra_deg)) return ra_deg;
  double r = std::fmod(ra_deg, 360.0);
  if (r < 0.0) r += 360.0;
  // A tiny negative input rounds to exactly 360 above.
  if (r >= 360.0) r = 0.0;
  return r + 0.0;  // no -0
}

double angular_distance_deg(const SkyPoint& a, const SkyPoint& b) {
  return distance_rad(a, b) * kRadToDeg;
}

bool Circle::contains(const SkyPoint& p) const {
  if (!finite(p) || !finite(center) || !(radius_deg >= 0.0)) return false;
  return angular_distance_deg(center, p) <= radius_deg;
}

// ---------------------------------------------------------------------------
// Vector helpers shared with healpix.cpp

namespace detail {

double angle_between(const Vec3& a, const Vec3& b) {
  // |(b+a) x (b-a)| = 2|a x b|, but keeps precision for nearby vectors.
  return std::atan2(0.5 * norm(robust_cross(a, b)), dot(a, b));
}

namespace {

// Projection of p on the plane of the great circle with normal n (not
// normalised); the zero vector when p is a pole of that circle.
Vec3 project_on_circle(const Vec3& p, const Vec3& n) {
  const Vec3 nh = normalized(n);
  return p - dot(p, nh) * nh;
}

// Whether x (in the plane of a->b, normal n = a x b up to scale) lies on the
// arc between a and b.
bool within_arc(const Vec3& x, const Vec3& a, const Vec3& b, const Vec3& n) {
  return dot(cross(a, x), n) >= 0.0 && dot(cross(x, b), n) >= 0.0;
}

}  // namespace

double distance_to_arc(const Vec3& p, const Vec3& a, const Vec3& b) {
  const Vec3 n = robust_cross(a, b);
  const double ends = std::min(angle_between(p, a), angle_between(p, b));
  if (norm(n) == 0.0) return ends;
  const Vec3 x = project_on_circle(p, n);
  const double xn = norm(x);
  if (xn < 1e-300 || !within_arc(x, a, b, n)) return ends;
  // p = x + (p.n^) n^ with x perpendicular to n^.
  return std::min(ends, std::atan2(norm(p - x), xn));
}

double max_distance_to_arc(const Vec3& p, const Vec3& a, const Vec3& b) {
  const Vec3 n = robust_cross(a, b);
  double best = std::max(angle_between(p, a), angle_between(p, b));
  if (norm(n) == 0.0) return best;
  const Vec3 x = project_on_circle(p, n);
  if (norm(x) < 1e-300) return best;  // every point of the circle is 90 deg away
  // The farthest point of the great circle from p is opposite p's projection.
  const Vec3 far = -x;
  if (within_arc(far, a, b, n)) best = std::max(best, angle_between(p, far));
  return best;
}

bool arcs_intersect(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d) {
  if (arcs_cross_strictly(a, b, c, d)) return true;
  return distance_to_arc(c, a, b) <= kBoundaryTol || distance_to_arc(d, a, b) <= kBoundaryTol ||
         distance_to_arc(a, c, d) <= kBoundaryTol || distance_to_arc(b, c, d) <= kBoundaryTol;
}

// ---------------------------------------------------------------------------
// PreparedPolygon

ArcBound arc_bound(const Vec3& a, const Vec3& b) { return {normalized(a + b), 0.5 * angle_between(a, b)}; }

bool arc_bounds_may_meet(const ArcBound& a, const ArcBound& b, double gap) {
  const double reach = a.half_length + b.half_length + gap;
  // The slack covers the rounding of the dot product; near cos = 1 the test
  // just becomes weaker, never wrong.
  return reach >= kPi || dot(a.mid, b.mid) >= std::cos(reach) - 1e-15;
}

PreparedPolygon::PreparedPolygon(const Polygon& p) : v_(to_vectors(p.vertices())) {
  const std::size_t n = v_.size();
  unit_normal_.reserve(n);
  bound_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    unit_normal_.push_back(normalized(robust_cross(v_[i], v_[(i + 1) % n])));
    bound_.push_back(arc_bound(v_[i], v_[(i + 1) % n]));
  }
  convex_ = n >= 3;
  for (std::size_t i = 0; i < n && convex_; ++i) {
    // Turn at vertex i+1: the next vertex must not be to the right of edge i.
    // Measured on the chord to the next vertex so that it is scale-free.
    const Vec3& b = v_[(i + 1) % n];
    const Vec3 chord = v_[(i + 2) % n] - b;
    convex_ = dot(unit_normal_[i], chord) >= -1e-12 * norm(chord);
  }
  if (!convex_) {
    // Prefer a reference point well clear of the boundary relative to its
    // edge, but bound the search: each candidate costs O(n).
    for (std::size_t k = 0; k < std::min<std::size_t>(n, 8); ++k) {
      double clearance = 0.0;
      const Vec3 r = reference_point(k, clearance);
      if (clearance > ref_clearance_) {
        ref_ = r;
        ref_clearance_ = clearance;
      }
      if (clearance >= 2e-3 * bound_[k].half_length) break;
    }
  }
}

bool PreparedPolygon::boundary_within(const Vec3& p, double radius) const {
  const std::size_t n = v_.size();
  const double s = radius >= kPi / 2 ? 1.0 : std::sin(radius);
  const ArcBound point{p, 0.0};
  for (std::size_t i = 0; i < n; ++i) {
    // Farther than `radius` from the edge's great circle, or from the edge's
    // bounding cap: no exact distance needed.
    if (std::abs(dot(unit_normal_[i], p)) > s + 1e-15) continue;
    if (!arc_bounds_may_meet(bound_[i], point, radius)) continue;
    if (distance_to_arc(p, v_[i], v_[(i + 1) % n]) <= radius) return true;
  }
  return false;
}

bool PreparedPolygon::contains(const Vec3& p) const {
  if (v_.size() < 3) return false;
  if (convex_) {
    // A convex polygon is the intersection of its edges' hemispheres.
    for (const auto& nh : unit_normal_) {
      if (dot(nh, p) < -kBoundaryTol) return false;
    }
    return true;
  }
  if (boundary_within(p, kBoundaryTol)) return true;
  return parity_contains(p);
}

namespace {

// Number of crossings of the arc p->r with the polygon's edges. A vertex lying
// exactly on the great circle through p and r is treated as being on its
// negative side (consistently for both edges that share it), which keeps the
// parity right when the test arc passes through a vertex. p and r must be
// off the boundary.
int count_crossings(const std::vector<Vec3>& v, const Vec3& p, const Vec3& r) {
  const Vec3 nn = robust_cross(p, r);
  const std::size_t n = v.size();
  int count = 0;
  for (std::size_t j = 0; j < n; ++j) {
    const Vec3& a = v[j];
    const Vec3& b = v[(j + 1) % n];
    const bool sa = dot(nn, a) > 0.0;
    const bool sb = dot(nn, b) > 0.0;
    if (sa == sb) continue;
    const Vec3 m = robust_cross(a, b);
    const double mp = dot(m, p);
    const double mr = dot(m, r);
    if (!((mp > 0.0 && mr < 0.0) || (mp < 0.0 && mr > 0.0))) continue;
    // Same intersection point on both arcs, not its antipode.
    if ((mr > 0.0) == sa) ++count;
  }
  return count;
}

}  // namespace

Vec3 PreparedPolygon::reference_point(std::size_t k, double& clearance) const {
  // Just to the right of a point of edge k (the interior is on the left),
  // closer to it than to any other edge, is outside. The point along the edge
  // is off-centre so that it is unlikely to line up with anything special in
  // the input.
  const std::size_t n = v_.size();
  const Vec3& a = v_[k];
  const Vec3& b = v_[(k + 1) % n];
  const Vec3 m = normalized(a + 0.41421356237 * (b - a));
  double clear = std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < n; ++j) {
    if (j != k) clear = std::min(clear, distance_to_arc(m, v_[j], v_[(j + 1) % n]));
  }
  const double delta = std::min(0.5 * clear, 1e-2);
  // r is delta from m, hence at least delta from every other edge too.
  clearance = delta > 0.0 ? delta : 0.0;
  return normalized(std::cos(delta) * m - std::sin(delta) * unit_normal_[k]);
}

bool PreparedPolygon::parity_contains(const Vec3& p) const {
  const std::size_t n = v_.size();
  auto decide = [&](const Vec3& r, double clearance, bool& decided) {
    decided = true;
    if (angle_between(p, r) < clearance) return false;
    if (dot(p, r) >= -0.5) return (count_crossings(v_, p, r) & 1) != 0;
    decided = false;  // keep the test arc short and well defined
    return false;
  };
  bool decided = false;
  if (ref_clearance_ > 0.0) {
    const bool in = decide(ref_, ref_clearance_, decided);
    if (decided) return in;
  }
  // p is far from the precomputed reference: try the other edges' ones.
  for (std::size_t k = 0; k < n; ++k) {
    double clearance = 0.0;
    const Vec3 r = reference_point(k, clearance);
    if (!(clearance > 0.0)) continue;
    const bool in = decide(r, clearance, decided);
    if (decided) return in;
  }
  // p is (nearly) opposite every reference point: go through a point at 90
  // degrees from p, which makes two well-defined arcs.
  const Vec3 axis = std::abs(p.x) < 0.5 ? Vec3{1, 0, 0} : Vec3{0, 1, 0};
  const Vec3 q = normalized(cross(p, axis));
  return ((count_crossings(v_, p, q) + count_crossings(v_, q, ref_)) & 1) != 0;
}

// ---------------------------------------------------------------------------
// PreparedRange

PreparedRange::PreparedRange(const RaDecRange& r) {
  empty = !(std::isfinite(r.ra_min) && std::isfinite(r.ra_max) && std::isfinite(r.dec_min) &&
            std::isfinite(r.dec_max)) ||
          r.dec_min > r.dec_max || r.dec_max < -90.0 || r.dec_min > 90.0;
  if (empty) return;
  dec_min = std::max(r.dec_min, -90.0);
  dec_max = std::min(r.dec_max, 90.0);
  full_ra = r.ra_max - r.ra_min >= 360.0;
  if (!full_ra) {
    ra_lo = normalize_ra(r.ra_min);
    ra_hi = normalize_ra(r.ra_max);
  } else {
    ra_lo = 0.0;
    ra_hi = 360.0;
  }
}

bool PreparedRange::ra_in(double ra_deg, double slack_deg) const {
  if (full_ra) return true;
  // Offsets measured counter-clockwise from ra_lo handle the wrap uniformly.
  const double width = normalize_ra(ra_hi - ra_lo);
  const double off = normalize_ra(ra_deg - ra_lo);
  return off <= width + slack_deg || off >= 360.0 - slack_deg;
}

bool PreparedRange::contains(const Vec3& p) const {
  if (empty) return false;
  const SkyPoint s = to_sky(p);
  if (s.dec < dec_min || s.dec > dec_max) return false;
  if (std::abs(s.dec) >= 90.0) return true;  // a pole: its RA is arbitrary
  return ra_in(s.ra);
}

namespace {

// Distance (radians) from p to the meridian arc at RA `ra` between d1 and d2:
// the minimum is at an end or at the foot of the perpendicular from p.
double distance_to_meridian_arc(const Vec3& p, double ra, double d1, double d2) {
  double s, c;
  sincos_deg(ra, s, c);
  const Vec3 e{c, s, 0.0};   // the meridian's equator point
  const Vec3 q{-s, c, 0.0};  // normal of the meridian plane
  const SkyPoint ps = to_sky(p);
  double best = std::min(distance_rad(ps, {ra, d1}), distance_rad(ps, {ra, d2}));
  const double a = dot(p, e);
  const double foot = std::atan2(p.z, a) * kRadToDeg;  // latitude of the foot, in (-180, 180]
  if (foot >= d1 && foot <= d2) best = std::min(best, std::atan2(std::abs(dot(p, q)), std::hypot(a, p.z)));
  return best;
}

}  // namespace

double PreparedRange::boundary_distance(const Vec3& p) const {
  double d = std::numeric_limits<double>::infinity();
  if (empty) return d;
  const SkyPoint s = to_sky(p);
  if (!full_ra) {
    d = std::min(d, distance_to_meridian_arc(p, ra_lo, dec_min, dec_max));
    d = std::min(d, distance_to_meridian_arc(p, ra_hi, dec_min, dec_max));
  }
  auto parallel = [&](double dec) {
    // Along a parallel the distance grows with the RA difference, so the
    // nearest point has p's RA when that is inside the interval, else an end.
    if (full_ra || ra_in(s.ra)) return std::abs(s.dec - dec) * kDegToRad;
    return std::min(distance_rad(s, {ra_lo, dec}), distance_rad(s, {ra_hi, dec}));
  };
  if (dec_min > -90.0) d = std::min(d, parallel(dec_min));
  if (dec_max < 90.0) d = std::min(d, parallel(dec_max));
  return d;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Polygon

Polygon::Polygon(std::vector<SkyPoint> vertices) {
  for (std::size_t i = 0; i < vertices.size(); ++i) {
    auto& p = vertices[i];
    if (!finite(p)) throw std::invalid_argument(fmt::format("polygon vertex {} is not finite", i));
    if (p.dec < -90.0 || p.dec > 90.0) {
      throw std::invalid_argument(fmt::format("polygon vertex {} has dec {} outside [-90, 90]", i, p.dec));
    }
    p.ra = normalize_ra(p.ra);
    p.dec += 0.0;
  }
  std::vector<Vec3> v = to_vectors(vertices);
  // STC-S writers sometimes repeat the first vertex to close the polygon.
  if (v.size() >= 2 && same_point(v.front(), v.back())) {
    v.pop_back();
    vertices.pop_back();
  }
  const std::size_t n = v.size();
  if (n < 3) {
    throw std::invalid_argument(fmt::format("a polygon needs at least 3 distinct vertices, got {}", n));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const Vec3& a = v[i];
    const Vec3& b = v[(i + 1) % n];
    if (same_point(a, b)) {
      throw std::invalid_argument(fmt::format("polygon vertices {} and {} are the same point", i, (i + 1) % n));
    }
    if (norm(a + b) <= kBoundaryTol) {
      throw std::invalid_argument(
          fmt::format("polygon vertices {} and {} are antipodal: the edge between them is undefined", i, (i + 1) % n));
    }
  }
  std::vector<Vec3> normals;
  normals.reserve(n);
  for (std::size_t i = 0; i < n; ++i) normals.push_back(normalized(robust_cross(v[i], v[(i + 1) % n])));
  for (std::size_t i = 0; i < n; ++i) {
    // Consecutive edges folding back onto each other (a zero angle) overlap.
    if (angle_between(normals[i], normals[(i + 1) % n]) > kPi - 1e-10) {
      throw std::invalid_argument(fmt::format("polygon folds back on itself at vertex {}", (i + 1) % n));
    }
  }
  std::vector<detail::ArcBound> bounds;
  bounds.reserve(n);
  for (std::size_t i = 0; i < n; ++i) bounds.push_back(detail::arc_bound(v[i], v[(i + 1) % n]));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 2; j < n; ++j) {
      if (i == 0 && j == n - 1) continue;  // adjacent through the closing edge
      if (!detail::arc_bounds_may_meet(bounds[i], bounds[j], kBoundaryTol)) continue;
      if (detail::arcs_intersect(v[i], v[(i + 1) % n], v[j], v[(j + 1) % n])) {
        throw std::invalid_argument(
            fmt::format("polygon is self-intersecting: edges {} and {} meet", i, j));
      }
    }
  }
  const double s = signed_area(v);
  if (!(std::abs(s) > 0.0)) throw std::invalid_argument("polygon has zero area");
  if (s < 0.0) std::reverse(vertices.begin(), vertices.end());
  vertices_ = std::move(vertices);
}

bool Polygon::contains(const SkyPoint& p) const {
  if (vertices_.empty() || !finite(p)) return false;
  return PreparedPolygon(*this).contains(to_vector(p));
}

bool Polygon::is_convex() const { return !vertices_.empty() && PreparedPolygon(*this).convex(); }

double Polygon::area_sr() const { return std::abs(signed_area(to_vectors(vertices_))); }

SkyPoint Polygon::centroid() const {
  if (vertices_.empty()) return {};
  const std::vector<Vec3> v = to_vectors(vertices_);
  const std::size_t n = v.size();
  Vec3 sum{};
  if (area_sr() > 1e-4) {
    // Exact: the integral of x over the region is half the sum over the edges
    // of (arc length x unit normal). Fine for large polygons; for small ones
    // the terms cancel to below their rounding, hence the branch.
    for (std::size_t i = 0; i < n; ++i) {
      const Vec3& a = v[i];
      const Vec3& b = v[(i + 1) % n];
      sum = sum + angle_between(a, b) * normalized(robust_cross(a, b));
    }
  } else {
    // Area-weighted fan triangle centres: exact to far below any use for
    // polygons this small.
    for (std::size_t i = 1; i + 1 < n; ++i) {
      const double w = signed_triangle_area(v[0], v[i], v[i + 1]);
      sum = sum + w * normalized(v[0] + v[i] + v[i + 1]);
    }
  }
  if (!(norm(sum) > 0.0)) {
    for (const auto& x : v) sum = sum + x;
  }
  if (!(norm(sum) > 0.0)) return vertices_.front();
  return to_sky(sum);
}

Circle Polygon::bounding_circle() const {
  if (vertices_.empty()) return {};
  const SkyPoint cs = centroid();
  const Vec3 c = to_vector(cs);
  const PreparedPolygon pp(*this);
  const auto& v = pp.vertices();
  double r = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) r = std::max(r, detail::max_distance_to_arc(c, v[i], v[(i + 1) % v.size()]));
  // The cap holds the whole boundary; it holds the interior too unless the
  // polygon wraps around the antipode of the centre.
  if (pp.contains(-c)) r = kPi;
  // A hair of slack so that Circle::contains (computed from degrees) agrees
  // for the farthest vertex despite the different rounding.
  return Circle{cs, std::min(180.0, r * kRadToDeg * (1.0 + 1e-12) + 1e-12)};
}

// ---------------------------------------------------------------------------
// RaDecRange

bool RaDecRange::contains(const SkyPoint& p) const {
  const PreparedRange r(*this);
  if (r.empty || !finite(p)) return false;
  if (p.dec < r.dec_min || p.dec > r.dec_max) return false;
  if (std::abs(p.dec) >= 90.0) return true;  // a pole: its RA is arbitrary
  return r.ra_in(p.ra);
}

// ---------------------------------------------------------------------------
// Intersections

bool intersects(const Polygon& a, const Polygon& b) {
  if (a.vertices().empty() || b.vertices().empty()) return false;
  const PreparedPolygon pa(a);
  const PreparedPolygon pb(b);
  // Touching counts: a vertex on the other's boundary is "contained".
  for (const auto& x : pa.vertices()) {
    if (pb.contains(x)) return true;
  }
  for (const auto& x : pb.vertices()) {
    if (pa.contains(x)) return true;
  }
  // Otherwise they meet only if two edges cross.
  const auto& va = pa.vertices();
  const auto& vb = pb.vertices();
  for (std::size_t i = 0; i < va.size(); ++i) {
    for (std::size_t j = 0; j < vb.size(); ++j) {
      if (arcs_cross_strictly(va[i], va[(i + 1) % va.size()], vb[j], vb[(j + 1) % vb.size()])) return true;
    }
  }
  return false;
}

bool intersects(const Polygon& a, const Circle& c) {
  if (a.vertices().empty() || !finite(c.center) || !(c.radius_deg >= 0.0)) return false;
  if (c.radius_deg >= 180.0) return true;
  const PreparedPolygon pa(a);
  const Vec3 centre = to_vector(c.center);
  if (pa.contains(centre)) return true;
  return pa.boundary_within(centre, c.radius_deg * kDegToRad + kBoundaryTol);
}

namespace {

// Whether the arc a->b has a point in the range. The arc is cut where it
// crosses the range's two boundary meridians and at its latitude extremes;
// on each piece RA membership is constant and latitude is monotonic, so the
// piece meets the range iff it is inside in RA and its latitude interval
// overlaps [dec_min, dec_max].
bool arc_meets_range(const Vec3& a, const Vec3& b, const PreparedRange& r) {
  const Vec3 nh = normalized(robust_cross(a, b));
  if (norm(nh) == 0.0) return r.contains(a);
  const double theta = angle_between(a, b);
  const Vec3 u = cross(nh, a);  // unit tangent at a, towards b
  auto at = [&](double t) { return std::cos(t) * a + std::sin(t) * u; };
  auto dec_of = [](const Vec3& x) { return std::atan2(x.z, std::hypot(x.x, x.y)) * kRadToDeg; };
  auto dec_ok = [&](double d) { return d >= r.dec_min - kDegSlack && d <= r.dec_max + kDegSlack; };

  std::vector<double> cuts{0.0, theta};
  auto add_roots = [&](double t0, auto&& accept) {
    for (double t : {t0 - 2 * kPi, t0 - kPi, t0, t0 + kPi, t0 + 2 * kPi}) {
      if (t >= 0.0 && t <= theta && accept(t)) cuts.push_back(t);
    }
  };
  if (!r.full_ra) {
    for (double ra : {r.ra_lo, r.ra_hi}) {
      double sr, cr;
      sincos_deg(ra, sr, cr);
      const Vec3 q{-sr, cr, 0.0};  // normal of the meridian's plane
      const Vec3 e{cr, sr, 0.0};   // the meridian's equator point
      // q.x(t) = (q.a) cos t + (q.u) sin t vanishes at t0 and t0 + pi.
      const double t0 = std::atan2(-dot(q, a), dot(q, u));
      bool hit = false;
      add_roots(t0, [&](double t) {
        const Vec3 x = at(t);
        if (dot(e, x) < 0.0) return false;  // the other half of that great circle
        hit = hit || dec_ok(dec_of(x));     // on the boundary meridian itself
        return true;
      });
      if (hit) return true;
    }
  }
  // z(t) = a.z cos t + u.z sin t is extreme at t0 and t0 + pi.
  add_roots(std::atan2(u.z, a.z), [](double) { return true; });
  std::sort(cuts.begin(), cuts.end());
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    const double t0 = cuts[i];
    const double t1 = cuts[i + 1];
    if (!(t1 > t0)) continue;
    const SkyPoint mid = to_sky(at(0.5 * (t0 + t1)));
    if (!r.ra_in(mid.ra, kDegSlack) && std::abs(mid.dec) < 90.0) continue;
    const double d0 = dec_of(at(t0));
    const double d1 = dec_of(at(t1));
    if (std::max(d0, d1) >= r.dec_min - kDegSlack && std::min(d0, d1) <= r.dec_max + kDegSlack) return true;
  }
  return false;
}

}  // namespace

bool intersects(const Polygon& a, const RaDecRange& range) {
  const PreparedRange r(range);
  if (a.vertices().empty() || r.empty) return false;
  if (r.full_ra && r.dec_min <= -90.0 && r.dec_max >= 90.0) return true;
  for (const auto& v : a.vertices()) {
    if (range.contains(v)) return true;
  }
  const PreparedPolygon pa(a);
  // With no edge meeting the (connected) range, it is either wholly inside
  // the polygon or wholly outside: one of its points decides.
  if (pa.contains(to_vector({r.ra_lo, r.dec_min}))) return true;
  const auto& v = pa.vertices();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (arc_meets_range(v[i], v[(i + 1) % v.size()], r)) return true;
  }
  return false;
}

bool intersects(const Polygon& a, const Shape& s) {
  return std::visit([&](const auto& shape) { return intersects(a, shape); }, s);
}

bool contains(const Shape& s, const SkyPoint& p) {
  return std::visit([&](const auto& shape) { return shape.contains(p); }, s);
}

// ---------------------------------------------------------------------------
// Serialisation

std::string to_stcs(const Polygon& p) {
  std::string out = "POLYGON ICRS";
  // "{}" is the shortest representation that parses back to the same double.
  for (const auto& v : p.vertices()) fmt::format_to(std::back_inserter(out), " {} {}", v.ra + 0.0, v.dec + 0.0);
  return out;
}

std::vector<double> to_dali_array(const Polygon& p) {
  std::vector<double> out;
  out.reserve(2 * p.vertices().size());
  for (const auto& v : p.vertices()) {
    out.push_back(v.ra);
    out.push_back(v.dec);
  }
  return out;
}

}  // namespace pixserve::sky
