// Random shapes and boundary/interior samplers shared by the sky tests. The
// samplers are the oracles: they use only exact point placement (destination
// point along a bearing, slerp along an arc) and the shapes' contains().
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <optional>
#include <random>
#include <stdexcept>
#include <variant>
#include <vector>

#include "sky/geometry.hpp"

namespace pixserve::sky::testing {

constexpr double kDeg = std::numbers::pi / 180.0;

inline Vec3 add(const Vec3& a, const Vec3& b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 scale(double s, const Vec3& a) { return {s * a.x, s * a.y, s * a.z}; }
inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

// The point reached from c after `dist_deg` along the great circle leaving it
// at position angle `bearing_deg` (0 = north, 90 = east).
inline SkyPoint offset(const SkyPoint& c, double bearing_deg, double dist_deg) {
  const Vec3 v = to_vector(c);
  const double ra = c.ra * kDeg;
  const double dec = c.dec * kDeg;
  const Vec3 east{-std::sin(ra), std::cos(ra), 0.0};
  const Vec3 north{-std::sin(dec) * std::cos(ra), -std::sin(dec) * std::sin(ra), std::cos(dec)};
  const double b = bearing_deg * kDeg;
  const double d = dist_deg * kDeg;
  const Vec3 dir = add(scale(std::cos(b), north), scale(std::sin(b), east));
  return to_sky(add(scale(std::cos(d), v), scale(std::sin(d), dir)));
}

// Points along the arc a->b, both ends included.
inline std::vector<SkyPoint> arc_points(const SkyPoint& a, const SkyPoint& b, int n) {
  const Vec3 va = to_vector(a);
  const Vec3 vb = to_vector(b);
  const double theta = std::atan2(std::sqrt(dot(cross(va, vb), cross(va, vb))), dot(va, vb));
  std::vector<SkyPoint> out;
  for (int i = 0; i <= n; ++i) {
    const double t = theta * i / n;
    const double s = std::sin(theta);
    const Vec3 x = s > 0 ? add(scale(std::sin(theta - t) / s, va), scale(std::sin(t) / s, vb)) : va;
    out.push_back(to_sky(x));
  }
  return out;
}

class ShapeMaker {
 public:
  explicit ShapeMaker(unsigned seed) : rng_(seed) {}

  double uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  int integer(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

  // Centres uniform on the sphere, with extra weight near RA=0 and the poles
  // where the coordinate handling is most likely to go wrong.
  SkyPoint centre() {
    const int kind = integer(0, 7);
    if (kind == 0) return {normalize_ra(uniform(-2.0, 2.0)), uniform(-60.0, 60.0)};
    if (kind == 1) return {uniform(0.0, 360.0), (integer(0, 1) ? 1.0 : -1.0) * uniform(84.0, 90.0)};
    return {uniform(0.0, 360.0), std::asin(uniform(-1.0, 1.0)) / kDeg};
  }

  // A star-shaped polygon around c of radius up to size_deg; convex when asked
  // (equal radii), otherwise with random radii so that it is usually concave.
  Polygon polygon(const SkyPoint& c, double size_deg, bool convex) {
    for (;;) {
      const int n = convex ? integer(3, 8) : integer(5, 10);
      std::vector<double> angles;
      for (int i = 0; i < n; ++i) angles.push_back(uniform(0.0, 360.0));
      std::sort(angles.begin(), angles.end());
      bool spread = true;
      for (int i = 0; i < n; ++i) {
        const double next = i + 1 < n ? angles[i + 1] : angles[0] + 360.0;
        spread = spread && next - angles[i] > 8.0 && next - angles[i] < 170.0;
      }
      if (!spread) continue;
      std::vector<SkyPoint> v;
      for (double a : angles) v.push_back(offset(c, a, size_deg * (convex ? 1.0 : uniform(0.25, 1.0))));
      if (integer(0, 1)) std::reverse(v.begin(), v.end());  // both windings as input
      try {
        return Polygon(v);
      } catch (const std::invalid_argument&) {
        continue;
      }
    }
  }

  Circle circle(const SkyPoint& c, double size_deg) { return {c, size_deg * uniform(0.05, 1.0)}; }

  RaDecRange range(const SkyPoint& c, double size_deg) {
    const double cosdec = std::max(std::cos(c.dec * kDeg), 0.02);
    const double width = std::min(359.0, size_deg * uniform(0.2, 2.0) / cosdec);
    const double half_h = size_deg * uniform(0.1, 1.0);
    RaDecRange r;
    r.ra_min = normalize_ra(c.ra - width / 2);
    r.ra_max = normalize_ra(c.ra + width / 2);
    r.dec_min = std::max(-90.0, c.dec - half_h);
    r.dec_max = std::min(90.0, c.dec + half_h);
    const int kind = integer(0, 9);
    if (kind == 0) r.dec_max = 90.0;
    if (kind == 1) r.dec_min = -90.0;
    if (kind == 2) {
      r.ra_min = 0.0;
      r.ra_max = 360.0;
    }
    return r;
  }

  Shape shape(const SkyPoint& c, double size_deg) {
    switch (integer(0, 3)) {
      case 0: return circle(c, size_deg);
      case 1: return polygon(c, size_deg, true);
      case 2: return polygon(c, size_deg, false);
      default: return range(c, size_deg);
    }
  }

 private:
  std::mt19937_64 rng_;
};

inline std::vector<SkyPoint> boundary_points(const Polygon& p, int per_edge) {
  std::vector<SkyPoint> out;
  const auto& v = p.vertices();
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto pts = arc_points(v[i], v[(i + 1) % v.size()], per_edge);
    out.insert(out.end(), pts.begin(), pts.end());
  }
  return out;
}

inline std::vector<SkyPoint> boundary_points(const Circle& c, int n) {
  std::vector<SkyPoint> out;
  for (int i = 0; i < n; ++i) out.push_back(offset(c.center, 360.0 * i / n, c.radius_deg));
  return out;
}

inline double ra_width(const RaDecRange& r) {
  if (r.ra_max - r.ra_min >= 360.0) return 360.0;
  return normalize_ra(r.ra_max - r.ra_min);
}

inline std::vector<SkyPoint> boundary_points(const RaDecRange& r, int n) {
  std::vector<SkyPoint> out;
  const double w = ra_width(r);
  for (int i = 0; i <= n; ++i) {
    const double ra = normalize_ra(r.ra_min + w * i / n);
    const double dec = std::min(r.dec_max, r.dec_min + (r.dec_max - r.dec_min) * i / n);
    out.push_back({ra, r.dec_min});
    out.push_back({ra, r.dec_max});
    if (w < 360.0) {
      out.push_back({normalize_ra(r.ra_min), dec});
      out.push_back({normalize_ra(r.ra_max), dec});
    }
  }
  return out;
}

inline std::vector<SkyPoint> boundary_points(const Shape& s, int n) {
  return std::visit([n](const auto& x) { return boundary_points(x, n); }, s);
}

// Random points inside a shape, uniform over its area.
inline std::vector<SkyPoint> cap_points(const SkyPoint& c, double radius_deg, int n, ShapeMaker& mk) {
  std::vector<SkyPoint> out;
  const double zmin = std::cos(std::min(radius_deg, 180.0) * kDeg);
  for (int i = 0; i < n; ++i) {
    // cos(distance) uniform in [cos r, 1] is uniform over the cap's area.
    const double d = std::acos(std::min(1.0, mk.uniform(zmin, 1.0))) / kDeg;
    out.push_back(offset(c, mk.uniform(0.0, 360.0), std::min(d, radius_deg)));
  }
  return out;
}

inline std::vector<SkyPoint> interior_points(const Circle& c, int n, ShapeMaker& mk) {
  return cap_points(c.center, c.radius_deg, n, mk);
}

inline std::vector<SkyPoint> interior_points(const Polygon& p, int n, ShapeMaker& mk) {
  const Circle bc = p.bounding_circle();
  std::vector<SkyPoint> out;
  for (int round = 0; round < 200 && static_cast<int>(out.size()) < n; ++round) {
    for (const auto& x : cap_points(bc.center, bc.radius_deg, n, mk)) {
      if (p.contains(x) && static_cast<int>(out.size()) < n) out.push_back(x);
    }
  }
  return out;
}

inline std::vector<SkyPoint> interior_points(const RaDecRange& r, int n, ShapeMaker& mk) {
  std::vector<SkyPoint> out;
  const double w = ra_width(r);
  const double s0 = std::sin(r.dec_min * kDeg);
  const double s1 = std::sin(r.dec_max * kDeg);
  for (int i = 0; i < n; ++i) {
    const double dec = std::clamp(std::asin(std::clamp(mk.uniform(s0, s1), -1.0, 1.0)) / kDeg, r.dec_min, r.dec_max);
    out.push_back({normalize_ra(r.ra_min + w * mk.uniform(0.0, 1.0)), dec});
  }
  return out;
}

inline std::vector<SkyPoint> interior_points(const Shape& s, int n, ShapeMaker& mk) {
  return std::visit([&](const auto& x) { return interior_points(x, n, mk); }, s);
}

}  // namespace pixserve::sky::testing
