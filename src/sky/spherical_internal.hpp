// Internal to pixserve_sky: unit-vector helpers and prepared shapes shared by
// geometry.cpp and healpix.cpp. Not part of the public API.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "sky/geometry.hpp"

namespace pixserve::sky::detail {

inline constexpr double kPi = 3.141592653589793238462643383279502884;
inline constexpr double kDegToRad = kPi / 180.0;
inline constexpr double kRadToDeg = 180.0 / kPi;

// Angular slack (radians) under which a point counts as lying on a boundary.
// A few hundred ulps of a unit vector: far above the rounding noise of the
// predicates below, far below anything astronomically meaningful (2e-9").
inline constexpr double kBoundaryTol = 1e-14;

inline Vec3 operator+(const Vec3& a, const Vec3& b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 operator-(const Vec3& a, const Vec3& b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
inline Vec3 operator-(const Vec3& a) { return {-a.x, -a.y, -a.z}; }
inline Vec3 operator*(double s, const Vec3& a) { return {s * a.x, s * a.y, s * a.z}; }
inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
// Returns the zero vector for a zero input (callers check for that).
inline Vec3 normalized(const Vec3& a) {
  const double n = norm(a);
  return n > 0.0 ? (1.0 / n) * a : Vec3{};
}

// 2 * (a x b), computed as (b + a) x (b - a): for nearby points the naive
// cross product loses all relative precision (its components are
// differences of O(1) products), this form keeps it. Also exactly
// antisymmetric, so an edge and its reverse get exactly opposite normals.
inline Vec3 robust_cross(const Vec3& a, const Vec3& b) { return cross(b + a, b - a); }

// Angle between two (not necessarily unit) vectors, radians, accurate at all
// scales (atan2 of |a x b| and a.b).
double angle_between(const Vec3& a, const Vec3& b);

// Shortest angular distance (radians) from p to the great-circle arc a->b
// (a and b unit vectors, not antipodal).
double distance_to_arc(const Vec3& p, const Vec3& a, const Vec3& b);

// Largest angular distance (radians) from p to any point of the arc a->b.
double max_distance_to_arc(const Vec3& p, const Vec3& a, const Vec3& b);

// True when the arcs a->b and c->d share a point (crossing or touching).
bool arcs_intersect(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d);

// Cheap bounds on an arc for pre-filtering exact distance computations: its
// unit midpoint and half its length.
struct ArcBound {
  Vec3 mid;
  double half_length = 0.0;
};
ArcBound arc_bound(const Vec3& a, const Vec3& b);
// False only when every point of the two arcs is more than `gap` apart.
bool arc_bounds_may_meet(const ArcBound& a, const ArcBound& b, double gap);

// A polygon's vertices as unit vectors with its edge planes, so that
// repeated tests (HEALPix descent) do not redo the trigonometry.
class PreparedPolygon {
 public:
  explicit PreparedPolygon(const Polygon& p);
  bool contains(const Vec3& p) const;
  // Whether some point of the boundary is within `radius` (radians) of p.
  bool boundary_within(const Vec3& p, double radius) const;
  bool convex() const noexcept { return convex_; }
  const std::vector<Vec3>& vertices() const noexcept { return v_; }

 private:
  // Containment of a point known to be off the boundary.
  bool parity_contains(const Vec3& p) const;
  // A point outside the polygon, just right of edge k, and its clearance
  // from the whole boundary (0 when edge k is unsuitable).
  Vec3 reference_point(std::size_t k, double& clearance) const;

  std::vector<Vec3> v_;
  std::vector<Vec3> unit_normal_;  // of edge i -> i+1, pointing to the interior side
  std::vector<ArcBound> bound_;
  bool convex_ = false;
  Vec3 ref_{};
  double ref_clearance_ = 0.0;
};

// An RaDecRange with RA normalised: [ra_lo, ra_hi] in [0,360), wrapping
// through 0 when ra_lo > ra_hi; full_ra when the interval is the whole circle.
struct PreparedRange {
  explicit PreparedRange(const RaDecRange& r);
  bool empty = false;
  bool full_ra = false;
  double ra_lo = 0.0, ra_hi = 360.0;
  double dec_min = -90.0, dec_max = 90.0;
  // RA membership (degrees, any value), `slack_deg` widening the interval.
  bool ra_in(double ra_deg, double slack_deg = 0.0) const;
  bool contains(const Vec3& p) const;
  // Shortest angular distance (radians) from p to the range's boundary.
  double boundary_distance(const Vec3& p) const;
};

}  // namespace pixserve::sky::detail
