// Spherical geometry: distances, shapes, exact intersection tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <numbers>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "sky/geometry.hpp"
#include "sky_test_shapes.hpp"

namespace pixserve::sky {
namespace {

using testing::kDeg;
using testing::offset;
using testing::ShapeMaker;

constexpr double kPi = std::numbers::pi;

// Sign of (a x b) . c: positive when c is to the left of a->b seen from outside.
double orientation(const SkyPoint& a, const SkyPoint& b, const SkyPoint& c) {
  return testing::dot(testing::cross(to_vector(a), to_vector(b)), to_vector(c));
}

bool stored_counter_clockwise(const Polygon& p) {
  // Interior to the left of every edge: the centroid is left of each edge
  // for the convex polygons this is used on.
  const SkyPoint c = p.centroid();
  const auto& v = p.vertices();
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (orientation(v[i], v[(i + 1) % v.size()], c) <= 0) return false;
  }
  return true;
}

Polygon square(const SkyPoint& c, double half) {
  return Polygon({offset(offset(c, 180, half), 270, half), offset(offset(c, 180, half), 90, half),
                  offset(offset(c, 0, half), 90, half), offset(offset(c, 0, half), 270, half)});
}

// ----------------------------------------------------------------- points

TEST(SkyGeometry, KnownDistances) {
  EXPECT_NEAR(angular_distance_deg({0, 0}, {90, 0}), 90.0, 1e-13);
  EXPECT_NEAR(angular_distance_deg({0, 0}, {0, 90}), 90.0, 1e-13);
  EXPECT_NEAR(angular_distance_deg({10, 20}, {10, 50}), 30.0, 1e-13);
  EXPECT_NEAR(angular_distance_deg({0, 60}, {180, 60}), 60.0, 1e-12);
  EXPECT_EQ(angular_distance_deg({123.4, -56.7}, {123.4, -56.7}), 0.0);
  // Both poles are single points whatever the RA.
  EXPECT_NEAR(angular_distance_deg({10, 90}, {250, 90}), 0.0, 1e-15);
  EXPECT_NEAR(angular_distance_deg({10, -90}, {250, 90}), 180.0, 1e-12);
  // Antipodes and near-antipodes.
  EXPECT_NEAR(angular_distance_deg({10, 20}, {190, -20}), 180.0, 1e-12);
  EXPECT_NEAR(angular_distance_deg({10, 0}, {190, 1e-9}), 180.0 - 1e-9, 1e-12);
  // Haversine reference for an ordinary pair.
  const double d1 = 41.0 * kDeg, d2 = -12.5 * kDeg, dra = 77.25 * kDeg;
  const double hav = 2 * std::asin(std::sqrt(std::pow(std::sin((d2 - d1) / 2), 2) +
                                             std::cos(d1) * std::cos(d2) * std::pow(std::sin(dra / 2), 2)));
  EXPECT_NEAR(angular_distance_deg({300, 41}, {17.25, -12.5}), hav / kDeg, 1e-12);
}

TEST(SkyGeometry, TinyDistancesKeepRelativePrecision) {
  for (const double d : {1e-6, 1e-8, 1e-10, 1e-12}) {
    // The offsets actually representable next to the coordinates (exact
    // differences by Sterbenz' lemma).
    const double dd = (20 + d) - 20;
    const double dra = (300 + d) - 300;
    const double wrap = d / 2 + (360 - (360 - d / 2));
    EXPECT_NEAR(angular_distance_deg({10, 20}, {10, 20 + d}) / dd, 1.0, 1e-9) << d;
    // RA offsets shrink by cos(dec).
    EXPECT_NEAR(angular_distance_deg({300, 60}, {300 + d, 60}) / (dra * 0.5), 1.0, 1e-9) << d;
    // Across RA = 0.
    EXPECT_NEAR(angular_distance_deg({360 - d / 2, 0}, {d / 2, 0}) / wrap, 1.0, 1e-9) << d;
  }
  EXPECT_NEAR(angular_distance_deg({45, 45}, {45, 45 + 1e-10}), 1e-10, 1e-10 * 1e-4);
}

TEST(SkyGeometry, NormalizeRa) {
  EXPECT_EQ(normalize_ra(0.0), 0.0);
  EXPECT_EQ(normalize_ra(360.0), 0.0);
  EXPECT_EQ(normalize_ra(-10.0), 350.0);
  EXPECT_EQ(normalize_ra(720.5), 0.5);
  EXPECT_EQ(normalize_ra(-720.0), 0.0);
  EXPECT_FALSE(std::signbit(normalize_ra(-0.0)));
  const double tiny = normalize_ra(-1e-20);
  EXPECT_TRUE(tiny >= 0.0 && tiny < 360.0) << tiny;
  EXPECT_TRUE(std::isnan(normalize_ra(NAN)));
}

TEST(SkyGeometry, VectorRoundTrip) {
  ShapeMaker mk(1);
  for (int i = 0; i < 1000; ++i) {
    const SkyPoint p = mk.centre();
    const Vec3 v = to_vector(p);
    EXPECT_NEAR(testing::dot(v, v), 1.0, 1e-15);
    const SkyPoint q = to_sky(v);
    EXPECT_LT(angular_distance_deg(p, q), 1e-12);
    EXPECT_GE(q.ra, 0.0);
    EXPECT_LT(q.ra, 360.0);
  }
  // Not normalised, and on the axes.
  const SkyPoint a = to_sky({0, -5, 0});
  EXPECT_NEAR(a.ra, 270.0, 1e-12);
  EXPECT_NEAR(a.dec, 0.0, 1e-12);
  EXPECT_NEAR(to_sky({0, 0, 3}).dec, 90.0, 1e-12);
  EXPECT_NEAR(to_sky({1, -1e-17, 0}).ra, 0.0, 1e-12);  // just below RA 0 wraps to [0,360)
  const Vec3 pole = to_vector({123, 90});
  EXPECT_EQ(pole.x, 0.0);
  EXPECT_EQ(pole.y, 0.0);
  EXPECT_EQ(pole.z, 1.0);
}

TEST(SkyGeometry, CircleContains) {
  const Circle c{{359.5, 10}, 1.0};
  EXPECT_TRUE(c.contains({0.3, 10}));  // across RA = 0
  EXPECT_TRUE(c.contains({358.6, 10}));
  EXPECT_FALSE(c.contains({1.0, 10}));
  EXPECT_TRUE(c.contains(offset(c.center, 33, 0.999999)));
  EXPECT_FALSE(c.contains(offset(c.center, 33, 1.000001)));
  const Circle pole{{0, 90}, 2.0};
  EXPECT_TRUE(pole.contains({180, 88.5}));
  EXPECT_TRUE(pole.contains({77, 90}));
  EXPECT_FALSE(pole.contains({180, 87.9}));
  EXPECT_FALSE((Circle{{0, 0}, -1}).contains({0, 0}));
}

// --------------------------------------------------------------- polygons

TEST(SkyPolygon, RejectsInvalidInput) {
  EXPECT_THROW(Polygon(std::vector<SkyPoint>{}), std::invalid_argument);
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}}), std::invalid_argument);
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}, {NAN, 1}}), std::invalid_argument);
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}, {1, INFINITY}}), std::invalid_argument);
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}, {1, 90.5}}), std::invalid_argument);
  // Repeated consecutive vertex.
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}, {1, 0}, {1, 1}}), std::invalid_argument);
  // Closed triangle of 2 distinct points.
  EXPECT_THROW(Polygon({{0, 0}, {1, 0}, {0, 0}}), std::invalid_argument);
  // Bow-tie: edges 0 and 2 cross.
  EXPECT_THROW(Polygon({{0, 0}, {1, 1}, {1, 0}, {0, 1}}), std::invalid_argument);
  // A vertex touching a non-adjacent edge.
  EXPECT_THROW(Polygon({{0, 0}, {2, 0}, {2, 2}, {1, 0}, {0, 2}}), std::invalid_argument);
  // Folding back along an edge, and all vertices on one great circle.
  EXPECT_THROW(Polygon({{0, 0}, {2, 0}, {1, 0}}), std::invalid_argument);
  EXPECT_THROW(Polygon({{0, 0}, {2, 0}, {1, 0}, {1, 1}}), std::invalid_argument);
  // An edge between antipodes is undefined.
  EXPECT_THROW(Polygon({{0, 0}, {180, 0}, {90, 45}}), std::invalid_argument);
  try {
    Polygon({{0, 0}, {1, 1}, {1, 0}, {0, 1}});
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("self-intersecting"), std::string::npos) << e.what();
  }
}

TEST(SkyPolygon, AcceptsClosedInputAndNormalisesRa) {
  const Polygon p({{-1, 0}, {1, 0}, {1, 1}, {-1, 1}, {359, 0}});
  ASSERT_EQ(p.vertices().size(), 4u);
  for (const auto& v : p.vertices()) {
    EXPECT_GE(v.ra, 0.0);
    EXPECT_LT(v.ra, 360.0);
  }
  EXPECT_TRUE(p.contains({0, 0.5}));
  EXPECT_TRUE(p.contains({359.5, 0.5}));
  EXPECT_FALSE(p.contains({2, 0.5}));
}

TEST(SkyPolygon, WindingIsNormalised) {
  const std::vector<SkyPoint> ccw{{10, 10}, {12, 10}, {12, 12}, {10, 12}};
  std::vector<SkyPoint> cw(ccw.rbegin(), ccw.rend());
  const Polygon a(ccw);
  const Polygon b(cw);
  EXPECT_TRUE(stored_counter_clockwise(a));
  EXPECT_TRUE(stored_counter_clockwise(b));
  EXPECT_EQ(a.vertices().front().ra, 10.0);  // already counter-clockwise: unchanged
  // DALI's own example of a counter-clockwise polygon keeps its order.
  const Polygon dali({{10.0, 10.0}, {10.2, 10.0}, {10.2, 10.2}, {10.0, 10.2}});
  EXPECT_EQ(to_dali_array(dali), (std::vector<double>{10.0, 10.0, 10.2, 10.0, 10.2, 10.2, 10.0, 10.2}));
  EXPECT_EQ(to_dali_array(Polygon({{10.0, 10.2}, {10.2, 10.2}, {10.2, 10.0}, {10.0, 10.0}})), to_dali_array(dali));
  EXPECT_NEAR(a.area_sr(), b.area_sr(), 1e-18);
  EXPECT_TRUE(b.contains({11, 11}));
  EXPECT_FALSE(b.contains({190, -11}));
  // Either winding of a polygon around a pole describes the small cap.
  std::vector<SkyPoint> ring;
  for (int k = 0; k < 6; ++k) ring.push_back({60.0 * k, 80.0});
  const Polygon north(ring);
  std::reverse(ring.begin(), ring.end());
  const Polygon north_cw(ring);
  for (const auto* p : {&north, &north_cw}) {
    EXPECT_TRUE(p->contains({0, 90}));
    EXPECT_TRUE(p->contains({200, 85}));
    EXPECT_FALSE(p->contains({0, 0}));
    EXPECT_LT(p->area_sr(), 0.2);
    EXPECT_TRUE(stored_counter_clockwise(*p));
  }
}

TEST(SkyPolygon, AreaOfKnownShapes) {
  const Polygon octant({{0, 0}, {90, 0}, {0, 90}});
  EXPECT_NEAR(octant.area_sr(), kPi / 2, 1e-14);
  // A triangle with the pole as apex and two right angles: its excess is the
  // apex angle.
  for (const double a : {1.0, 30.0, 170.0}) {
    EXPECT_NEAR(Polygon({{350, 0}, {350 + a, 0}, {0, 90}}).area_sr(), a * kDeg, 1e-13) << a;
  }
  EXPECT_NEAR(Polygon({{0, 0}, {0, -90}, {90, 0}}).area_sr(), kPi / 2, 1e-14);
  // Tiny squares: area ~ side^2 (curvature corrections are ~side^2 relative).
  for (const double side_deg : {1.0 / 3600, 1e-3 / 3600}) {
    const double s = side_deg * kDeg;
    EXPECT_NEAR(square({123, 0}, side_deg / 2).area_sr() / (s * s), 1.0, 1e-6) << side_deg;
    EXPECT_NEAR(square({300, -60}, side_deg / 2).area_sr() / (s * s), 1.0, 1e-6) << side_deg;
    // An RA/Dec box at dec 60 is narrower by cos(dec).
    const Polygon box({{40, 60}, {40 + side_deg, 60}, {40 + side_deg, 60 + side_deg}, {40, 60 + side_deg}});
    EXPECT_NEAR(box.area_sr() / (s * s * std::cos((60 + side_deg / 2) * kDeg)), 1.0, 1e-6) << side_deg;
  }
  // A cap-like hexagon compared with the sum of its six pole triangles.
  std::vector<SkyPoint> ring;
  for (int k = 0; k < 6; ++k) ring.push_back({60.0 * k, 70.0});
  const double a = (kPi / 2 - 70 * kDeg);  // side from the pole
  // Each pole triangle: two sides a, apex 60 deg; area via l'Huilier.
  const double c = std::acos(std::cos(a) * std::cos(a) + std::sin(a) * std::sin(a) * std::cos(60 * kDeg));
  const double s = (a + a + c) / 2;
  const double e = 4 * std::atan(std::sqrt(std::tan(s / 2) * std::tan((s - a) / 2) * std::tan((s - a) / 2) *
                                           std::tan((s - c) / 2)));
  EXPECT_NEAR(Polygon(ring).area_sr(), 6 * e, 1e-12);
}

TEST(SkyPolygon, ContainsConvex) {
  const Polygon p({{10, 10}, {20, 10}, {20, 20}, {10, 20}});
  EXPECT_TRUE(p.is_convex());
  EXPECT_TRUE(p.contains({15, 15}));
  EXPECT_FALSE(p.contains({25, 15}));
  EXPECT_FALSE(p.contains({195, -15}));  // antipode of an inside point
  for (const auto& v : p.vertices()) EXPECT_TRUE(p.contains(v));
  // The bottom edge is a great circle bulging north of the parallel dec 10.
  EXPECT_FALSE(p.contains({15, 10}));
  // Points on an edge (the edge is a great-circle arc, not a parallel).
  for (const auto& x : testing::arc_points({10, 20}, {20, 20}, 10)) EXPECT_TRUE(p.contains(x));
  // Just outside the top edge's midpoint (which bulges north of dec 20).
  const auto mid = testing::arc_points({10, 20}, {20, 20}, 2)[1];
  EXPECT_GT(mid.dec, 20.0);
  EXPECT_TRUE(p.contains({15, 20.05}));
  EXPECT_FALSE(p.contains({15, 20.1}));
  EXPECT_FALSE(p.contains(offset(mid, 0, 1e-9)));
  EXPECT_TRUE(p.contains(offset(mid, 180, 1e-9)));
}

TEST(SkyPolygon, ContainsConcaveLShape) {
  // An L: the notch at the upper right is outside.
  const std::vector<SkyPoint> l{{0, 0}, {4, 0}, {4, 2}, {2, 2}, {2, 4}, {0, 4}};
  for (const double ra0 : {0.0, 358.0, 100.0}) {
    std::vector<SkyPoint> v;
    for (const auto& x : l) v.push_back({normalize_ra(x.ra + ra0), x.dec});
    const Polygon p(v);
    EXPECT_FALSE(p.is_convex());
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 1), 1}));
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 3), 1}));
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 1), 3}));
    EXPECT_FALSE(p.contains({normalize_ra(ra0 + 3), 3}));
    EXPECT_FALSE(p.contains({normalize_ra(ra0 + 5), 1}));
    EXPECT_FALSE(p.contains({normalize_ra(ra0 + 180), -2}));
    // The reflex corner and the notch's edges are boundary.
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 2), 2}));
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 2), 3}));
    // Lined up with vertices: rays through vertices must not confuse parity.
    EXPECT_TRUE(p.contains({normalize_ra(ra0 + 1), 2}));
    EXPECT_FALSE(p.contains({normalize_ra(ra0 + 3), 2.5}));
    EXPECT_NEAR(p.area_sr(), 12 * kDeg * kDeg, 12 * kDeg * kDeg * 5e-3);
  }
  // A concave polygon around the south pole (a cap with a bite taken out).
  std::vector<SkyPoint> ring;
  for (int k = 0; k < 8; ++k) ring.push_back({45.0 * k, k == 2 ? -88.0 : -75.0});
  const Polygon south(ring);
  EXPECT_FALSE(south.is_convex());
  EXPECT_TRUE(south.contains({0, -90}));
  EXPECT_TRUE(south.contains({270, -80}));
  EXPECT_FALSE(south.contains({90, -80}));
  EXPECT_FALSE(south.contains({90, -60}));
}

TEST(SkyPolygon, ContainsComb) {
  // A comb of 20 teeth straddling RA = 0: many reflex vertices lined up on
  // the same parallels, where crossing tests are easily confused.
  const double w = 0.1;
  std::vector<SkyPoint> v{{358, 10}, {normalize_ra(358 + 40 * w), 10}};
  for (int t = 19; t >= 0; --t) {
    const double x = 358 + 2 * w * t;
    for (const SkyPoint q : {SkyPoint{x + 2 * w, 11}, SkyPoint{x + w, 11}, SkyPoint{x + w, 10.2}, SkyPoint{x, 10.2}}) {
      v.push_back({normalize_ra(q.ra), q.dec});
    }
  }
  v.back() = {358, 11};  // the first tooth runs down to the back
  const Polygon comb(v);
  EXPECT_FALSE(comb.is_convex());
  for (int t = 1; t < 20; ++t) {
    const double x = 358 + 2 * w * t;
    EXPECT_TRUE(comb.contains({normalize_ra(x + 1.5 * w), 10.6})) << t;
    EXPECT_FALSE(comb.contains({normalize_ra(x + 0.5 * w), 10.6})) << t;
    EXPECT_TRUE(comb.contains({normalize_ra(x + 0.5 * w), 10.1})) << t;
    EXPECT_TRUE(comb.contains({normalize_ra(x + 0.5 * w), 10.2})) << t;  // on a gap's floor
    EXPECT_FALSE(comb.contains({normalize_ra(x + 0.5 * w), 11.0})) << t;
  }
  // Reference from an independent computation: shoelace formula in the
  // cylindrical equal-area projection over edges densified along their arcs.
  EXPECT_NEAR(comb.area_sr() / (kDeg * kDeg), 2.3839813, 1e-6);
}

// Gnomonic projection turns great circles into straight lines, so planar
// point-in-polygon there is an exact oracle for polygons within a hemisphere.
bool gnomonic_contains(const Polygon& poly, const SkyPoint& centre, const SkyPoint& p) {
  const Vec3 c = to_vector(centre);
  const Vec3 east = testing::cross({0, 0, 1}, c);
  const double en = std::sqrt(testing::dot(east, east));
  const Vec3 e = en > 1e-12 ? testing::scale(1 / en, east) : Vec3{0, 1, 0};
  const Vec3 n = testing::cross(c, e);
  auto project = [&](const SkyPoint& s, double& x, double& y) {
    const Vec3 v = to_vector(s);
    const double w = testing::dot(v, c);
    x = testing::dot(v, e) / w;
    y = testing::dot(v, n) / w;
    return w > 0;
  };
  double px, py;
  if (!project(p, px, py)) return false;
  bool inside = false;
  const auto& v = poly.vertices();
  for (std::size_t i = 0, j = v.size() - 1; i < v.size(); j = i++) {
    double xi, yi, xj, yj;
    project(v[i], xi, yi);
    project(v[j], xj, yj);
    if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

TEST(SkyPolygon, ContainsMatchesGnomonicOracle) {
  ShapeMaker mk(7);
  int checked = 0;
  for (int i = 0; i < 150; ++i) {
    const SkyPoint c = mk.centre();
    const double size = std::pow(10.0, mk.uniform(-4, 1.5));
    const Polygon p = mk.polygon(c, size, i % 3 == 0);
    for (int k = 0; k < 150; ++k) {
      const SkyPoint x = offset(c, mk.uniform(0, 360), size * mk.uniform(0, 1.3));
      ASSERT_EQ(p.contains(x), gnomonic_contains(p, c, x)) << testing::dot(to_vector(x), to_vector(c)) << " "
                                                            << to_stcs(p) << " point " << x.ra << " " << x.dec;
      ++checked;
    }
    EXPECT_FALSE(p.contains(offset(c, mk.uniform(0, 360), 179.0)));
  }
  EXPECT_EQ(checked, 150 * 150);
}

TEST(SkyPolygon, CentroidAndBoundingCircle) {
  for (const SkyPoint c : {SkyPoint{0, 0}, SkyPoint{359.9, 30}, SkyPoint{123, -89.5}, SkyPoint{10, 89.7}}) {
    const Polygon sq = square(c, 0.25);
    EXPECT_LT(angular_distance_deg(sq.centroid(), c), 1e-9) << c.ra << " " << c.dec;
    const Circle bc = sq.bounding_circle();
    EXPECT_NEAR(bc.radius_deg, angular_distance_deg(c, sq.vertices()[0]), 1e-6);
  }
  EXPECT_LT(angular_distance_deg(square({200, 10}, 1e-7).centroid(), {200, 10}), 1e-13);
  // The octant's centroid is on its symmetry axis.
  const SkyPoint oc = Polygon({{0, 0}, {90, 0}, {0, 90}}).centroid();
  EXPECT_NEAR(oc.ra, 45.0, 1e-9);
  EXPECT_NEAR(oc.dec, std::atan(1 / std::sqrt(2.0)) / kDeg, 1e-9);
  // A long thin triangle: its long edge bulges away from the centroid beyond
  // the vertices; the circle must still hold every boundary point.
  ShapeMaker mk(3);
  std::vector<Polygon> polys{Polygon({{0, 0}, {120, 0}, {60, 1}}), Polygon({{0, -10}, {150, -10}, {75, 5}})};
  for (int i = 0; i < 100; ++i) polys.push_back(mk.polygon(mk.centre(), std::pow(10.0, mk.uniform(-3, 1.8)), i % 2));
  for (const auto& p : polys) {
    const Circle bc = p.bounding_circle();
    for (const auto& v : p.vertices()) EXPECT_TRUE(bc.contains(v));
    for (const auto& x : testing::boundary_points(p, 50)) {
      EXPECT_LE(angular_distance_deg(bc.center, x), bc.radius_deg + 1e-9);
    }
    for (int k = 0; k < 50; ++k) {
      const SkyPoint x = offset(bc.center, mk.uniform(0, 360), bc.radius_deg * 1.02);
      if (bc.radius_deg < 170) {
        EXPECT_FALSE(p.contains(x));
      }
    }
  }
}

// ----------------------------------------------------------------- ranges

TEST(SkyRange, Contains) {
  const RaDecRange plain{10, 20, -5, 5};
  EXPECT_TRUE(plain.contains({15, 0}));
  EXPECT_TRUE(plain.contains({10, -5}));  // boundary
  EXPECT_TRUE(plain.contains({20, 5}));
  EXPECT_FALSE(plain.contains({21, 0}));
  EXPECT_FALSE(plain.contains({15, 5.1}));
  const RaDecRange wrap{350, 10, -5, 5};
  EXPECT_TRUE(wrap.contains({355, 0}));
  EXPECT_TRUE(wrap.contains({0, 0}));
  EXPECT_TRUE(wrap.contains({5, 0}));
  EXPECT_TRUE(wrap.contains({-5, 0}));  // un-normalised RA
  EXPECT_FALSE(wrap.contains({180, 0}));
  EXPECT_FALSE(wrap.contains({20, 0}));
  const RaDecRange full{0, 360, 10, 20};
  EXPECT_TRUE(full.contains({0, 15}));
  EXPECT_TRUE(full.contains({359.999, 15}));
  EXPECT_TRUE(full.contains({180, 15}));
  const RaDecRange polar{100, 110, 80, 90};
  EXPECT_TRUE(polar.contains({300, 90}));  // the pole itself, whatever its RA
  EXPECT_TRUE(polar.contains({105, 85}));
  EXPECT_FALSE(polar.contains({300, 85}));
  const RaDecRange everything;
  EXPECT_TRUE(everything.contains({0, -90}));
  EXPECT_TRUE(everything.contains({271, 33}));
  EXPECT_FALSE((RaDecRange{0, 10, 5, 4}).contains({5, 4.5}));  // empty dec interval
  EXPECT_FALSE((RaDecRange{0, 10, 0, NAN}).contains({5, 4.5}));
}

TEST(SkyShape, ContainsDispatch) {
  const Shape c = Circle{{10, 10}, 1};
  const Shape p = Polygon({{0, 0}, {1, 0}, {1, 1}, {0, 1}});
  const Shape r = RaDecRange{350, 10, -5, 5};
  EXPECT_TRUE(contains(c, {10.5, 10}));
  EXPECT_FALSE(contains(c, {12, 10}));
  EXPECT_TRUE(contains(p, {0.5, 0.5}));
  EXPECT_FALSE(contains(p, {1.5, 0.5}));
  EXPECT_TRUE(contains(r, {359, 0}));
  EXPECT_FALSE(contains(r, {11, 0}));
}

// ----------------------------------------------------------- intersections

TEST(SkyIntersects, HandPickedCases) {
  const Polygon a({{0, 0}, {2, 0}, {2, 2}, {0, 2}});
  // Overlap, containment both ways, touching at a vertex and along an edge,
  // crossing without any vertex inside (a plus sign), disjoint.
  EXPECT_TRUE(intersects(a, Polygon({{1, 1}, {3, 1}, {3, 3}, {1, 3}})));
  EXPECT_TRUE(intersects(a, Polygon({{0.5, 0.5}, {1, 0.5}, {1, 1}})));
  EXPECT_TRUE(intersects(Polygon({{0.5, 0.5}, {1, 0.5}, {1, 1}}), a));
  EXPECT_TRUE(intersects(a, Polygon({{2, 2}, {3, 2}, {3, 3}})));
  EXPECT_TRUE(intersects(a, Polygon({{2, 0}, {3, 0}, {3, 2}, {2, 2}})));
  EXPECT_TRUE(intersects(a, Polygon({{-1, 0.5}, {3, 0.5}, {3, 1.5}, {-1, 1.5}})));
  EXPECT_FALSE(intersects(a, Polygon({{3, 0}, {4, 0}, {4, 1}})));
  EXPECT_FALSE(intersects(a, Polygon({{180, 0}, {182, 0}, {182, 2}})));

  EXPECT_TRUE(intersects(a, Circle{{1, 1}, 0.1}));
  EXPECT_TRUE(intersects(a, Circle{{1, 1}, 50}));
  EXPECT_TRUE(intersects(a, Circle{{1, -0.5}, 0.51}));  // reaches the bottom edge
  EXPECT_FALSE(intersects(a, Circle{{1, -0.5}, 0.49}));
  EXPECT_TRUE(intersects(a, Circle{{2, 2}, 0}));  // a point on a vertex
  EXPECT_FALSE(intersects(a, Circle{{181, -1}, 10}));

  EXPECT_TRUE(intersects(a, RaDecRange{1, 1.5, 1, 1.5}));      // range inside
  EXPECT_TRUE(intersects(a, RaDecRange{359, 3, -1, 3}));       // polygon inside, wrapping range
  EXPECT_TRUE(intersects(a, RaDecRange{0.5, 1.5, -1, 3}));     // a band across, no corner inside either
  EXPECT_FALSE(intersects(a, RaDecRange{3, 4, 0, 2}));
  EXPECT_FALSE(intersects(a, RaDecRange{0, 2, 2.5, 3}));
  // The top edge bulges north of dec 2 between its ends.
  const double bulge = testing::arc_points({0, 2}, {2, 2}, 2)[1].dec;
  EXPECT_TRUE(intersects(a, RaDecRange{0.9, 1.1, 2.0001, bulge}));
  EXPECT_FALSE(intersects(a, RaDecRange{0.9, 1.1, bulge + 1e-6, 3}));
  // Pole ranges: a polar cap, and a polar wedge.
  const Polygon polar({{0, 85}, {120, 85}, {240, 85}});
  EXPECT_TRUE(intersects(polar, RaDecRange{0, 360, 89.9, 90}));
  EXPECT_TRUE(intersects(polar, RaDecRange{200, 210, 89, 90}));
  EXPECT_FALSE(intersects(polar, RaDecRange{0, 360, -90, 80}));
  // An edge passing over the pole: the pole is on the boundary, so every
  // range holding the pole meets it.
  const Polygon over({{0, 80}, {180, 80}, {90, 70}});
  EXPECT_TRUE(intersects(over, RaDecRange{90, 100, 89.99, 90}));
  EXPECT_TRUE(intersects(over, RaDecRange{260, 270, 89.99, 90}));
  EXPECT_FALSE(intersects(over, RaDecRange{260, 270, 85, 89.9}));
  EXPECT_TRUE(intersects(over, RaDecRange{80, 100, 85, 89.9}));

  // Near misses and near hits by 1e-9 deg (3.6 micro-arcsec).
  const double e = 1e-9;
  EXPECT_FALSE(intersects(a, Polygon({{2 + e, 0}, {3, 0}, {3, 1}})));
  EXPECT_TRUE(intersects(a, Polygon({{2 - e, 0.5}, {3, 0}, {3, 1}})));
  // From (3, 1) the meridian RA=2 is asin(cos 1 sin 1) away (foot inside the edge).
  const double to_edge = std::asin(std::cos(kDeg) * std::sin(kDeg)) / kDeg;
  EXPECT_FALSE(intersects(a, Circle{{3, 1}, to_edge - e}));
  EXPECT_TRUE(intersects(a, Circle{{3, 1}, to_edge + e}));
  EXPECT_FALSE(intersects(a, RaDecRange{2 + e, 3, 0, 2}));
  EXPECT_TRUE(intersects(a, RaDecRange{2 - e, 3, 0, 2}));
  EXPECT_FALSE(intersects(a, RaDecRange{0, 2, -1, -e}));
  EXPECT_TRUE(intersects(a, RaDecRange{0, 2, -1, 0}));

  EXPECT_TRUE(intersects(a, Shape{RaDecRange{}}));
  EXPECT_TRUE(intersects(a, Shape{Circle{{1, 1}, 1}}));
  EXPECT_FALSE(intersects(a, Shape{Polygon({{3, 0}, {4, 0}, {4, 1}})}));
  EXPECT_FALSE(intersects(Polygon(), Shape{RaDecRange{}}));
}

// Brute-force oracle: two closed connected regions meet iff a point of one's
// boundary is in the other (dense sampling of both boundaries).
bool sampled_intersects(const Polygon& a, const Shape& b, int density) {
  for (const auto& x : testing::boundary_points(a, density)) {
    if (contains(b, x)) return true;
  }
  for (const auto& x : testing::boundary_points(b, density * 4)) {
    if (a.contains(x)) return true;
  }
  return false;
}

TEST(SkyIntersects, MatchesSamplingOracleForRandomShapes) {
  ShapeMaker mk(12345);
  int meeting = 0, apart = 0, refined = 0;
  for (int i = 0; i < 400; ++i) {
    const SkyPoint c = mk.centre();
    const double size = std::pow(10.0, mk.uniform(-3, 1.3));
    const Polygon a = mk.polygon(c, size, i % 2 == 0);
    const SkyPoint c2 = offset(c, mk.uniform(0, 360), size * mk.uniform(0, 2.5));
    const Shape b = mk.shape(c2, size * mk.uniform(0.2, 1.5));
    const bool got = intersects(a, b);
    bool want = sampled_intersects(a, b, 30);
    if (got && !want) {
      // Maybe a sliver thinner than the sampling: look much closer.
      ++refined;
      want = sampled_intersects(a, b, 4000);
    }
    ASSERT_EQ(got, want) << "case " << i << ": " << to_stcs(a) << " vs shape kind " << b.index();
    (got ? meeting : apart)++;
  }
  // The generator must exercise both outcomes.
  EXPECT_GT(meeting, 100);
  EXPECT_GT(apart, 100);
  EXPECT_LT(refined, 30);
  RecordProperty("refined", refined);
}

// ------------------------------------------------------------ serialisation

std::vector<double> parse_stcs(const std::string& s) {
  std::istringstream in(s);
  std::string word, frame;
  in >> word >> frame;
  EXPECT_EQ(word, "POLYGON");
  EXPECT_EQ(frame, "ICRS");
  std::vector<double> out;
  std::string tok;
  while (in >> tok) out.push_back(std::strtod(tok.c_str(), nullptr));
  return out;
}

TEST(SkySerialise, StcsRoundTrip) {
  const Polygon p({{10, 10}, {12, 10}, {12, 12}});
  EXPECT_EQ(to_stcs(p), "POLYGON ICRS 10 10 12 10 12 12");
  EXPECT_EQ(to_dali_array(p), (std::vector<double>{10, 10, 12, 10, 12, 12}));
  ShapeMaker mk(99);
  for (int i = 0; i < 200; ++i) {
    const Polygon q = mk.polygon(mk.centre(), std::pow(10.0, mk.uniform(-6, 1)), i % 2);
    const std::string s = to_stcs(q);
    const auto values = parse_stcs(s);
    ASSERT_EQ(values.size(), 2 * q.vertices().size()) << s;
    for (std::size_t k = 0; k < q.vertices().size(); ++k) {
      EXPECT_NEAR(values[2 * k], q.vertices()[k].ra, 1e-12) << s;
      EXPECT_NEAR(values[2 * k + 1], q.vertices()[k].dec, 1e-12) << s;
    }
    // And a polygon rebuilt from the string is the same polygon.
    std::vector<SkyPoint> v;
    for (std::size_t k = 0; k < values.size(); k += 2) v.push_back({values[k], values[k + 1]});
    const Polygon back(v);
    EXPECT_EQ(to_stcs(back), s);
    EXPECT_EQ(to_dali_array(back), values);
  }
}

}  // namespace
}  // namespace pixserve::sky
