// Spherical geometry on the celestial sphere (ICRS, degrees at the API).
// Shapes: Circle, Polygon (great-circle edges), RaDecRange (the DALI/SIA
// "RANGE" box: RA interval x Dec interval, RA may wrap through 0).
// All tests are exact spherical tests (no flat-sky approximations).
#pragma once

#include <array>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pixserve::sky {

// One degree in radians: the API speaks degrees, the trigonometry radians.
inline constexpr double kDeg = std::numbers::pi / 180.0;

struct SkyPoint {
  double ra = 0.0;   // degrees, [0, 360)
  double dec = 0.0;  // degrees, [-90, 90]
};

struct Vec3 {
  double x = 0.0, y = 0.0, z = 0.0;
};

Vec3 to_vector(const SkyPoint& p);
SkyPoint to_sky(const Vec3& v);  // v need not be normalised; ra normalised to [0,360)
double angular_distance_deg(const SkyPoint& a, const SkyPoint& b);  // accurate at all scales
double normalize_ra(double ra_deg);  // to [0, 360)

struct Circle {
  SkyPoint center;
  double radius_deg = 0.0;
  bool contains(const SkyPoint& p) const;
};

// A spherical polygon with great-circle edges, vertices in order (either
// winding accepted on input). Stored in the DALI/STC order: the interior (the
// smaller of the two regions) lies to the left when walking the edges on a
// chart with RA increasing to the right, i.e. counter-clockwise as drawn on
// such a chart (clockwise as literally seen from inside the sphere).
class Polygon {
 public:
  Polygon() = default;
  // Throws std::invalid_argument for < 3 vertices, repeated consecutive
  // vertices, non-finite values or self-intersecting edges.
  explicit Polygon(std::vector<SkyPoint> vertices);
  // The vertices of a polygon the constructor above has accepted (and
  // ordered), kept as they are without checking them again: a footprint
  // read back from the registry, which was checked when it was registered
  // (the checks were most of the cost of reading one).
  struct Checked {};
  Polygon(std::vector<SkyPoint> vertices, Checked) : vertices_(std::move(vertices)) {}

  const std::vector<SkyPoint>& vertices() const noexcept { return vertices_; }
  bool contains(const SkyPoint& p) const;
  bool is_convex() const;
  double area_sr() const;
  SkyPoint centroid() const;
  // Smallest circle around the centroid that contains every vertex (and,
  // for convex polygons, the whole polygon).
  Circle bounding_circle() const;

 private:
  std::vector<SkyPoint> vertices_;
};

// The SIA/DALI RANGE shape: ra_min..ra_max (ra_min > ra_max means the
// interval wraps through RA=0), dec_min..dec_max.
struct RaDecRange {
  double ra_min = 0.0, ra_max = 360.0;
  double dec_min = -90.0, dec_max = 90.0;
  bool contains(const SkyPoint& p) const;
};

using Shape = std::variant<Circle, Polygon, RaDecRange>;

// Exact intersection tests between a footprint polygon and a search shape:
// true when the two regions share at least one point.
bool intersects(const Polygon& a, const Polygon& b);
bool intersects(const Polygon& a, const Circle& c);
bool intersects(const Polygon& a, const RaDecRange& r);
bool intersects(const Polygon& a, const Shape& s);
bool contains(const Shape& s, const SkyPoint& p);

// IVOA/ObsCore string form used in s_region: "POLYGON ICRS ra1 dec1 ra2 dec2 ..."
// (STC-S as in ObsCore 1.1) and the DALI polygon array (ra1 dec1 ra2 dec2 ...).
std::string to_stcs(const Polygon& p);
std::vector<double> to_dali_array(const Polygon& p);

}  // namespace pixserve::sky
