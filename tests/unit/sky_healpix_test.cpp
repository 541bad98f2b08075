// HEALPix NESTED cells and shape covers.
#include <gtest/gtest.h>
#include <healpix_cxx/healpix_base.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

#include "sky/geometry.hpp"
#include "sky/healpix.hpp"
#include "sky_test_shapes.hpp"

namespace pixserve::sky {
namespace {

using testing::kDeg;
using testing::offset;
using testing::ShapeMaker;

constexpr double kHealpixPi = std::numbers::pi;

std::int64_t cells_at(int order) { return std::int64_t{12} << (2 * order); }

bool covered(const std::vector<CellRange>& ranges, std::int64_t cell) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cell,
                             [](std::int64_t c, const CellRange& r) { return c < r.first; });
  return it != ranges.begin() && std::prev(it)->last >= cell;
}

std::int64_t count(const std::vector<CellRange>& ranges) {
  std::int64_t n = 0;
  for (const auto& r : ranges) n += r.last - r.first + 1;
  return n;
}

void expect_sorted_merged(const std::vector<CellRange>& ranges, int order) {
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_LE(ranges[i].first, ranges[i].last);
    EXPECT_GE(ranges[i].first, 0);
    EXPECT_LT(ranges[i].last, cells_at(order));
    if (i > 0) {
      EXPECT_GT(ranges[i].first, ranges[i - 1].last + 1) << "not merged at " << i;
    }
  }
}

double area_sr(const Shape& s) {
  if (const auto* c = std::get_if<Circle>(&s)) return 2 * kHealpixPi * (1 - std::cos(c->radius_deg * kDeg));
  if (const auto* p = std::get_if<Polygon>(&s)) return p->area_sr();
  const auto& r = std::get<RaDecRange>(s);
  return testing::ra_width(r) * kDeg * (std::sin(r.dec_max * kDeg) - std::sin(r.dec_min * kDeg));
}

double extent_deg(const Shape& s) {
  // Smallest dimension, to judge whether a shape is "much bigger than a cell".
  if (const auto* c = std::get_if<Circle>(&s)) return 2 * c->radius_deg;
  if (const auto* p = std::get_if<Polygon>(&s)) return std::sqrt(p->area_sr()) / kDeg;
  const auto& r = std::get<RaDecRange>(s);
  const double mid = std::max(std::abs(r.dec_min), std::abs(r.dec_max));
  return std::min(r.dec_max - r.dec_min, testing::ra_width(r) * std::cos(mid * kDeg));
}

TEST(SkyHealpix, CellOfAndCentre) {
  EXPECT_EQ(cell_of({0, 0}, 0), 4);
  EXPECT_EQ(cell_of({90, 0}, 0), 5);
  EXPECT_EQ(cell_of({45, 60}, 0), 0);
  EXPECT_EQ(cell_of({45, -60}, 0), 8);
  ShapeMaker mk(5);
  for (int i = 0; i < 2000; ++i) {
    const SkyPoint p = mk.centre();
    const int order = mk.integer(0, kMaxHealpixOrder);
    const std::int64_t cell = cell_of(p, order);
    ASSERT_GE(cell, 0);
    ASSERT_LT(cell, cells_at(order));
    // Nested: the parent cell holds the point too.
    if (order > 0) {
      EXPECT_EQ(cell_of(p, order - 1), cell >> 2);
    }
    // The centre is within a cell's reach and maps back to the same cell.
    const SkyPoint c = cell_center(cell, order);
    EXPECT_LE(angular_distance_deg(c, p), Healpix_Base2(order, NEST).max_pixrad() / kDeg * 1.0001);
    EXPECT_EQ(cell_of(c, order), cell);
  }
  // Points at the poles and on RA 0/360.
  EXPECT_EQ(cell_of({0, 90}, 10), cell_of({250, 90}, 10));
  EXPECT_EQ(cell_of({0, 12.5}, 12), cell_of({360, 12.5}, 12));
}

TEST(SkyHealpix, CellSize) {
  EXPECT_NEAR(cell_size_deg(0), std::sqrt(4 * kHealpixPi / 12) / kDeg, 1e-12);
  EXPECT_NEAR(cell_size_deg(10) * 1024, cell_size_deg(0), 1e-12);
  EXPECT_NEAR(cell_size_deg(29) * 3600e3, 0.3932, 1e-3);  // ~0.39 mas
}

TEST(SkyHealpix, RejectsInvalidArguments) {
  for (const int bad : {-1, kMaxHealpixOrder + 1, 64}) {
    EXPECT_THROW(cell_of({0, 0}, bad), std::invalid_argument);
    EXPECT_THROW(cell_center(0, bad), std::invalid_argument);
    EXPECT_THROW(cell_size_deg(bad), std::invalid_argument);
    EXPECT_THROW(cover(Circle{{0, 0}, 1}, bad), std::invalid_argument);
    EXPECT_THROW(cover(RaDecRange{}, bad), std::invalid_argument);
    EXPECT_THROW(cover(Polygon({{0, 0}, {1, 0}, {1, 1}}), bad), std::invalid_argument);
  }
  EXPECT_THROW(cell_center(12, 0), std::invalid_argument);
  EXPECT_THROW(cell_center(-1, 3), std::invalid_argument);
  EXPECT_THROW(cell_of({NAN, 0}, 3), std::invalid_argument);
  EXPECT_THROW(cover(Circle{{0, NAN}, 1}, 3), std::invalid_argument);
  EXPECT_THROW(cover(Circle{{0, 0}, -1}, 3), std::invalid_argument);
  EXPECT_THROW(cover(RaDecRange{0, NAN, 0, 1}, 3), std::invalid_argument);
  EXPECT_THROW(expand({{5, 4}}), std::invalid_argument);
}

TEST(SkyHealpix, Expand) {
  EXPECT_EQ(expand({}), std::vector<std::int64_t>{});
  EXPECT_EQ(expand({{3, 5}, {9, 9}}), (std::vector<std::int64_t>{3, 4, 5, 9}));
  const auto cells = expand(cover(Circle{{10, 10}, 1}, 8));
  EXPECT_TRUE(std::is_sorted(cells.begin(), cells.end()));
  EXPECT_EQ(static_cast<std::int64_t>(cells.size()), count(cover(Circle{{10, 10}, 1}, 8)));
}

TEST(SkyHealpix, WholeSkyAndEmptyShapes) {
  for (const int order : {0, 3, 29}) {
    const std::vector<CellRange> all{{0, cells_at(order) - 1}};
    EXPECT_EQ(cover(RaDecRange{}, order), all);
    EXPECT_EQ(cover(Circle{{1, 2}, 180}, order), all);
  }
  EXPECT_EQ(cover(RaDecRange{}, 0), (std::vector<CellRange>{{0, 11}}));
  EXPECT_TRUE(cover(RaDecRange{0, 10, 5, 4}, 5).empty());
  EXPECT_TRUE(cover(Polygon(), 5).empty());
  // The northern hemisphere at order 1 touches the 16 polar cells and all 16
  // equatorial ones (the southern children touch dec 0 at a corner).
  const auto north = count(cover(RaDecRange{0, 360, 0, 90}, 1));
  EXPECT_GE(north, 32);
  EXPECT_LE(north, 36);
}

TEST(SkyHealpix, PointsAndTinyShapesAtHighOrders) {
  ShapeMaker mk(11);
  for (int i = 0; i < 300; ++i) {
    const SkyPoint p = mk.centre();
    const int order = mk.integer(0, kMaxHealpixOrder);
    const auto cells = cover(Circle{p, 0}, order);
    EXPECT_TRUE(covered(cells, cell_of(p, order))) << order;
    EXPECT_LE(count(cells), 9) << order;  // a point touches at most a few cells
    // A tiny polygon around p at the finest orders.
    const Polygon tiny = mk.polygon(p, 1e-7, i % 2);
    const auto tc = cover(tiny, 29);
    for (const auto& v : tiny.vertices()) EXPECT_TRUE(covered(tc, cell_of(v, 29)));
    EXPECT_TRUE(covered(tc, cell_of(p, 29)));
    EXPECT_LT(count(tc), 20000);
  }
}

// Cover must contain the cell of every point inside or on the shape.
TEST(SkyHealpix, CoverIsSupersetOfRandomShapes) {
  ShapeMaker mk(2024);
  int big_shapes = 0;
  double worst_ratio = 0;
  for (int i = 0; i < 200; ++i) {
    const int order = mk.integer(2, 11);
    const double cell = cell_size_deg(order);
    const SkyPoint c = mk.centre();
    const double size = std::min(40.0, cell * std::pow(10.0, mk.uniform(-1, 1.5)));
    const Shape s = mk.shape(c, size);
    const auto cells = cover(s, order);
    expect_sorted_merged(cells, order);
    if (i % 8 == 0) {
      ASSERT_EQ(cells, std::visit([&](const auto& x) { return cover(x, order); }, s));
    }
    for (const auto& p : testing::interior_points(s, 200, mk)) {
      ASSERT_TRUE(covered(cells, cell_of(p, order))) << "case " << i << " interior " << p.ra << " " << p.dec;
    }
    for (const auto& p : testing::boundary_points(s, 40)) {
      ASSERT_TRUE(covered(cells, cell_of(p, order))) << "case " << i << " boundary " << p.ra << " " << p.dec;
    }
    // Not wildly larger than the shape once it spans many cells.
    if (extent_deg(s) > 8 * cell) {
      ++big_shapes;
      const double ratio = count(cells) * (4 * kHealpixPi / cells_at(order)) / area_sr(s);
      worst_ratio = std::max(worst_ratio, ratio);
      EXPECT_LT(ratio, 4.0) << "case " << i << " kind " << s.index();
    }
  }
  EXPECT_GT(big_shapes, 20);
  RecordProperty("worst_cover_to_area_ratio", std::to_string(worst_ratio));
}

TEST(SkyHealpix, CoverAroundPolesAndRaZero) {
  const int order = 7;
  const std::vector<Shape> shapes{
      Circle{{0, 90}, 3},
      Circle{{359.9, 0}, 1},
      RaDecRange{350, 10, -2, 2},
      RaDecRange{100, 130, 85, 90},
      RaDecRange{0, 360, -90, -88},
      Polygon({{0, 80}, {90, 80}, {180, 80}, {270, 80}}),
      Polygon({{358, -1}, {2, -1}, {2, 1}, {1, 0}, {358, 1}}),  // concave, across RA 0
  };
  ShapeMaker mk(8);
  for (const auto& s : shapes) {
    const auto cells = cover(s, order);
    expect_sorted_merged(cells, order);
    for (const auto& p : testing::interior_points(s, 3000, mk)) EXPECT_TRUE(covered(cells, cell_of(p, order)));
    for (const auto& p : testing::boundary_points(s, 400)) EXPECT_TRUE(covered(cells, cell_of(p, order)));
    EXPECT_LT(count(cells) * (4 * kHealpixPi / cells_at(order)), 4 * area_sr(s));
  }
  // The polar cap covers every cell around the pole.
  const auto cap = cover(Circle{{0, 90}, 3}, order);
  for (int k = 0; k < 360; k += 5) EXPECT_TRUE(covered(cap, cell_of({double(k), 89.99}, order)));
}

// The descent assumes every cell lies within max_pixrad of its centre (with
// a margin); check that against healpix_cxx's own cell boundaries.
TEST(SkyHealpix, CellsLieWithinMaxPixrad) {
  ShapeMaker mk(13);
  for (int order = 0; order <= kMaxHealpixOrder; ++order) {
    const Healpix_Base2 base(order, NEST);
    const double limit = base.max_pixrad();
    for (int k = 0; k < 40; ++k) {
      const std::int64_t pix = cell_of(mk.centre(), order);
      const vec3 c = base.pix2vec(pix);
      std::vector<vec3> edge;
      base.boundaries(pix, 16, edge);
      for (const auto& e : edge) {
        const double d = std::atan2(crossprod(c, e).Length(), dotprod(c, e));
        ASSERT_LE(d, limit * 1.0001) << "order " << order << " pix " << pix;
      }
    }
  }
}

// Cross-check with healpix_cxx's own disc query: every cell whose centre is
// in the disc must be in our cover, and our cover is not larger than
// healpix_cxx's inclusive query by much.
TEST(SkyHealpix, AgreesWithHealpixCxxDiscQuery) {
  ShapeMaker mk(17);
  for (int i = 0; i < 60; ++i) {
    const int order = mk.integer(3, 12);
    const SkyPoint c = mk.centre();
    const double radius = cell_size_deg(order) * std::pow(10.0, mk.uniform(0, 1.3));
    const auto cells = cover(Circle{c, radius}, order);
    const Healpix_Base2 base(order, NEST);
    const pointing ptg((90 - c.dec) * kDeg, c.ra * kDeg);
    const rangeset<int64> centres = base.query_disc(ptg, radius * kDeg);
    for (tsize k = 0; k < centres.nranges(); ++k) {
      for (int64 pix = centres.ivbegin(k); pix < centres.ivend(k); ++pix) ASSERT_TRUE(covered(cells, pix));
    }
    const rangeset<int64> inclusive = base.query_disc_inclusive(ptg, radius * kDeg, 4);
    EXPECT_LE(count(cells), inclusive.nval() * 1.1 + 4) << "order " << order << " radius " << radius;
  }
}

}  // namespace
}  // namespace pixserve::sky
