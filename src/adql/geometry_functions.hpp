// The ADQL geometry functions evaluated in C++ over pixserve's exact
// spherical geometry (sky::). The database backends only bind these:
// geometry values travel through SQL as STC-S text ("CIRCLE ICRS 10 20 0.5",
// "POLYGON ICRS 10 20 11 20 11 21", the form ObsCore's s_region uses), and
// the SQL user functions listed in sql_functions.hpp call the functions
// below. Angles are degrees throughout; areas square degrees.
#pragma once

#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

#include "sky/geometry.hpp"

namespace pixserve::adql::geometry {

class GeometryError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// ADQL BOX(ra, dec, width, height): here the RA/Dec range
// [ra - width/2, ra + width/2] x [dec - height/2, dec + height/2] (the
// same reading as pgsphere's sbox and the SIA RANGE shape); width is in RA
// degrees, not on-sky degrees, and width >= 360 covers all RA.
struct Box {
  sky::SkyPoint center;
  double width = 0.0;
  double height = 0.0;
  sky::RaDecRange range() const;
};

using Geometry = std::variant<sky::SkyPoint, sky::Circle, sky::Polygon, Box>;

// Constructors validating their numbers (finite; |dec| <= 90; 0 <= radius
// <= 180; widths >= 0; polygons: >= 3 vertices, no self-intersection).
sky::SkyPoint make_point(double ra, double dec);
sky::Circle make_circle(double ra, double dec, double radius);
Box make_box(double ra, double dec, double width, double height);
sky::Polygon make_polygon(std::span<const double> coordinates);  // ra1 dec1 ra2 dec2 ...

// STC-S text: POINT / CIRCLE / POLYGON / BOX, optionally followed by the
// frame ICRS (or UNKNOWNFRAME, reference positions, SPHERICAL2), then the
// numbers. Case-insensitive. Other frames (GALACTIC, FK4, ...) are refused.
Geometry parse(std::string_view stcs);
// STC-S text with frame ICRS and numbers in shortest round-trip form.
std::string format(const Geometry& g);

// CONTAINS(inner, outer): every point of `inner` lies in `outer` (closed
// regions; a point on a boundary is inside). BOX inside POLYGON is tested on
// the box's corners, its edges sampled every <= 0.01 deg and the polygon's
// edge crossings; every other pair is exact.
bool contains(const Geometry& inner, const Geometry& outer);
// INTERSECTS(a, b): the two closed regions share a point.
bool intersects(const Geometry& a, const Geometry& b);
double distance(const sky::SkyPoint& a, const sky::SkyPoint& b);
double area(const Geometry& g);
sky::SkyPoint centroid(const Geometry& g);

// The search shape for the HEALPix index (a point becomes a circle of
// radius 0, a box its RA/Dec range).
sky::Shape to_shape(const Geometry& g);

}  // namespace pixserve::adql::geometry
