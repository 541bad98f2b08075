// HEALPix NESTED cells over healpix_cxx.
//
// cover() does its own hierarchical descent instead of calling healpix_cxx's
// query_disc_inclusive / query_polygon_inclusive, because those cannot give
// the superset guarantee for every shape we need: query_polygon_* only takes
// convex polygons (and rejects collinear vertices), there is no RA/Dec box
// query, and query_disc_* compares cosines, which at high orders (cells of a
// few mas) has too little precision near cos = 1 and can drop touching cells.
// The descent uses healpix_cxx for all pixel geometry (pix2vec, max_pixrad)
// and the exact distance predicates of geometry.cpp for the shape side.
#include "sky/healpix.hpp"

#include <fmt/format.h>
#include <healpix_cxx/healpix_base.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <variant>
#include <vector>

#include "sky/spherical_internal.hpp"

namespace pixserve::sky {

using detail::angle_between;
using detail::kDegToRad;
using detail::kPi;
using detail::kRadToDeg;
using detail::PreparedPolygon;
using detail::PreparedRange;

namespace {

// Extra angle (radians) granted to every shape in the descent, so that
// rounding in the distance predicates can only add cells, never drop one.
constexpr double kCoverSlack = 1e-12;

// Oversampling: cells are accepted by testing their descendants this many
// orders deeper, which trims the cover to about one cell of margin.
constexpr int kOversampleOrders = 2;

void check_order(int order) {
  if (order < 0 || order > kMaxHealpixOrder) {
    throw std::invalid_argument(fmt::format("HEALPix order {} outside [0, {}]", order, kMaxHealpixOrder));
  }
}

std::int64_t cells_at(int order) { return std::int64_t{12} << (2 * order); }

Vec3 to_vec(const vec3& v) { return {v.x, v.y, v.z}; }

// Result of testing a cell's bounding cap (centre, radius) against a shape:
// `touches` must be true whenever they share a point; `inside` may only be
// true when the whole cap is inside the shape.
struct CapTest {
  bool touches = false;
  bool inside = false;
};

class CircleRegion {
 public:
  explicit CircleRegion(const Circle& c) : centre_(to_vector(c.center)), radius_(c.radius_deg * kDegToRad) {}
  CapTest test(const Vec3& x, double cap) const {
    const double d = angle_between(centre_, x);
    return {d <= radius_ + cap + kCoverSlack, d + cap < radius_ - kCoverSlack};
  }

 private:
  Vec3 centre_;
  double radius_;
};

class PolygonRegion {
 public:
  explicit PolygonRegion(const Polygon& p) : poly_(p) {
    const Circle bc = p.bounding_circle();
    bound_centre_ = to_vector(bc.center);
    bound_radius_ = bc.radius_deg * kDegToRad;
  }
  CapTest test(const Vec3& x, double cap) const {
    // Cheap rejection before the per-edge work.
    if (angle_between(bound_centre_, x) > bound_radius_ + cap + kCoverSlack) return {};
    // Near the boundary the cap touches whatever side its centre is on;
    // away from it the cap is wholly inside or wholly outside.
    if (poly_.boundary_within(x, cap + kCoverSlack)) return {true, false};
    const bool in = poly_.contains(x);
    return {in, in};
  }

 private:
  PreparedPolygon poly_;
  Vec3 bound_centre_;
  double bound_radius_ = 0.0;
};

class RangeRegion {
 public:
  explicit RangeRegion(const RaDecRange& r) : range_(r) {}
  CapTest test(const Vec3& x, double cap) const {
    if (range_.boundary_distance(x) <= cap + kCoverSlack) return {true, false};
    const bool in = range_.contains(x);
    return {in, in};
  }

 private:
  PreparedRange range_;
};

// Depth-first walk of the NESTED tree in increasing cell order, so that the
// output comes out sorted and can be merged as it is produced.
template <class Region>
std::vector<CellRange> descend(const Region& region, int order) {
  const int omax = std::min(order + kOversampleOrders, kMaxHealpixOrder);
  std::vector<Healpix_Base2> bases;
  std::vector<double> cap;
  bases.reserve(omax + 1);
  for (int o = 0; o <= omax; ++o) {
    bases.emplace_back(o, NEST);
    // max_pixrad() is healpix_cxx's bound on the centre-to-corner distance;
    // the margin covers the slight bulge of curved cell edges and rounding.
    cap.push_back(bases.back().max_pixrad() * 1.05 + 1e-15);
  }

  std::vector<CellRange> out;
  auto add = [&out](std::int64_t first, std::int64_t last) {
    if (!out.empty() && first <= out.back().last + 1) {
      out.back().last = std::max(out.back().last, last);
    } else {
      out.push_back({first, last});
    }
  };

  std::vector<std::pair<std::int64_t, int>> stack;
  stack.reserve(12 + 4 * (omax + 1));
  for (std::int64_t base = 11; base >= 0; --base) stack.emplace_back(base, 0);
  while (!stack.empty()) {
    const auto [pix, o] = stack.back();
    stack.pop_back();
    if (o > order) {
      // A sibling already put this descendant's target cell in the cover.
      const std::int64_t target = pix >> (2 * (o - order));
      if (!out.empty() && target <= out.back().last) continue;
    }
    const CapTest t = region.test(to_vec(bases[o].pix2vec(pix)), cap[o]);
    if (!t.touches) continue;
    if (t.inside || o == omax) {
      if (o <= order) {
        const int shift = 2 * (order - o);
        add(pix << shift, ((pix + 1) << shift) - 1);
      } else {
        const std::int64_t target = pix >> (2 * (o - order));
        add(target, target);
      }
      continue;
    }
    for (std::int64_t child = 3; child >= 0; --child) stack.emplace_back((pix << 2) + child, o + 1);
  }
  return out;
}

}  // namespace

std::int64_t cell_of(const SkyPoint& p, int order) {
  check_order(order);
  if (!std::isfinite(p.ra) || !std::isfinite(p.dec) || p.dec < -90.0 || p.dec > 90.0) {
    throw std::invalid_argument(fmt::format("invalid sky point ({}, {})", p.ra, p.dec));
  }
  const Vec3 v = to_vector(p);
  return Healpix_Base2(order, NEST).vec2pix(vec3(v.x, v.y, v.z));
}

SkyPoint cell_center(std::int64_t cell, int order) {
  check_order(order);
  if (cell < 0 || cell >= cells_at(order)) {
    throw std::invalid_argument(fmt::format("cell {} outside [0, {}) at order {}", cell, cells_at(order), order));
  }
  return to_sky(to_vec(Healpix_Base2(order, NEST).pix2vec(cell)));
}

double cell_size_deg(int order) {
  check_order(order);
  // sqrt(4 pi / (12 * 4^order)) = sqrt(pi / 3) / 2^order
  return std::sqrt(kPi / 3.0) / std::ldexp(1.0, order) * kRadToDeg;
}

std::vector<CellRange> cover(const Circle& c, int order) {
  check_order(order);
  if (!std::isfinite(c.center.ra) || !std::isfinite(c.center.dec) || !std::isfinite(c.radius_deg) ||
      c.radius_deg < 0.0) {
    throw std::invalid_argument("cover: invalid circle");
  }
  if (c.radius_deg >= 180.0) return {{0, cells_at(order) - 1}};
  return descend(CircleRegion(c), order);
}

std::vector<CellRange> cover(const Polygon& p, int order) {
  check_order(order);
  if (p.vertices().empty()) return {};
  return descend(PolygonRegion(p), order);
}

std::vector<CellRange> cover(const RaDecRange& r, int order) {
  check_order(order);
  if (std::isnan(r.ra_min) || std::isnan(r.ra_max) || std::isnan(r.dec_min) || std::isnan(r.dec_max)) {
    throw std::invalid_argument("cover: invalid RA/Dec range");
  }
  const PreparedRange prepared(r);
  if (prepared.empty) return {};
  if (prepared.full_ra && prepared.dec_min <= -90.0 && prepared.dec_max >= 90.0) return {{0, cells_at(order) - 1}};
  return descend(RangeRegion(r), order);
}

std::vector<CellRange> cover(const Shape& s, int order) {
  return std::visit([order](const auto& shape) { return cover(shape, order); }, s);
}

std::vector<std::int64_t> expand(const std::vector<CellRange>& ranges) {
  std::int64_t total = 0;
  for (const auto& r : ranges) {
    if (r.last < r.first) {
      throw std::invalid_argument(fmt::format("expand: empty cell range [{}, {}]", r.first, r.last));
    }
    total += r.last - r.first + 1;
  }
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(total));
  for (const auto& r : ranges) {
    for (std::int64_t c = r.first; c <= r.last; ++c) out.push_back(c);
  }
  return out;
}

}  // namespace pixserve::sky
