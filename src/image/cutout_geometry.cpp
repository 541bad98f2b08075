// The geometry of cutouts: a sky shape's pixel box on an image, found by
// walking the shape's boundary through the WCS (cutout.hpp: validate_shape,
// region_text, pixel_bounds, intersect, box_center). Reading and writing the
// planes is in cutout.cpp.
#include "image/cutout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <variant>

namespace pixserve::image {

namespace {

// ---------------------------------------------------------------------------
// Shapes: validation and text
// ---------------------------------------------------------------------------

bool finite_point(const sky::SkyPoint& p) { return std::isfinite(p.ra) && std::isfinite(p.dec); }

// Shortest text that reads back as the same double ("10", "10.25", "1e-05").
std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// ---------------------------------------------------------------------------
// Shape boundaries as parametric curves on the sky
// ---------------------------------------------------------------------------

// One piece of a shape's boundary: t in [0, 1] -> sky position, plus how many
// equal steps to start from before adaptive refinement.
struct Curve {
  std::function<sky::SkyPoint(double)> at;
  int initial_steps = 16;
};

sky::Vec3 normalized(const sky::Vec3& v) {
  const double n = std::sqrt(v.x * v.x + v.y * v.y + v.z * v.z);
  return {v.x / n, v.y / n, v.z / n};
}

sky::Vec3 cross(const sky::Vec3& a, const sky::Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

std::vector<Curve> boundary(const sky::Shape& shape) {
  std::vector<Curve> curves;
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    // The small circle at angular distance r around the centre, built from
    // the local north/east unit vectors so it is exact at any declination.
    const sky::Vec3 centre = sky::to_vector(c->center);
    const double ra = c->center.ra * std::numbers::pi / 180.0, dec = c->center.dec * std::numbers::pi / 180.0;
    const sky::Vec3 east{-std::sin(ra), std::cos(ra), 0.0};
    const sky::Vec3 north{-std::sin(dec) * std::cos(ra), -std::sin(dec) * std::sin(ra), std::cos(dec)};
    const double r = c->radius_deg * std::numbers::pi / 180.0;
    const double cr = std::cos(r), sr = std::sin(r);
    curves.push_back({[=](double t) {
                        const double a = 2.0 * std::numbers::pi * t;
                        const double ca = std::cos(a), sa = std::sin(a);
                        return sky::to_sky({cr * centre.x + sr * (ca * north.x + sa * east.x),
                                            cr * centre.y + sr * (ca * north.y + sa * east.y),
                                            cr * centre.z + sr * (ca * north.z + sa * east.z)});
                      },
                      64});
  } else if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    // Great-circle edges: rotate from a towards b in their common plane.
    const auto& v = p->vertices();
    for (size_t i = 0; i < v.size(); ++i) {
      const sky::Vec3 a = sky::to_vector(v[i]), b = sky::to_vector(v[(i + 1) % v.size()]);
      const sky::Vec3 axis = normalized(cross(a, b));
      const sky::Vec3 perp = cross(axis, a);  // unit, a rotated by 90 degrees towards b
      const double angle = std::atan2(std::sqrt(std::max(0.0, 1.0 - std::pow(a.x * b.x + a.y * b.y + a.z * b.z, 2))),
                                      a.x * b.x + a.y * b.y + a.z * b.z);
      curves.push_back({[=](double t) {
                          const double s = angle * t;
                          const double cs = std::cos(s), ss = std::sin(s);
                          return sky::to_sky({cs * a.x + ss * perp.x, cs * a.y + ss * perp.y, cs * a.z + ss * perp.z});
                        },
                        8});
    }
  } else {
    const auto& r = std::get<sky::RaDecRange>(shape);
    const double span = r.ra_min <= r.ra_max ? r.ra_max - r.ra_min : r.ra_max + 360.0 - r.ra_min;
    const double ra0 = r.ra_min, d0 = r.dec_min, d1 = r.dec_max;
    // Parallels are small circles (curved on the image); meridians are great
    // circles. Seams of a full-circle range lie inside the shape, so
    // sampling them is harmless.
    const int steps = 16 + static_cast<int>(span * 2.0);
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span * t), d0}; }, steps});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span * t), d1}; }, steps});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0), d0 + (d1 - d0) * t}; }, 8});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span), d0 + (d1 - d0) * t}; }, 8});
  }
  return curves;
}

// ---------------------------------------------------------------------------
// Extent of (shape ∩ image) in pixel coordinates
// ---------------------------------------------------------------------------

struct Rect {
  double x0, y0, x1, y1;  // closed
  bool contains(const wcs::PixelPoint& p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
};

struct Extent {
  double xmin = std::numeric_limits<double>::infinity();
  double xmax = -std::numeric_limits<double>::infinity();
  double ymin = std::numeric_limits<double>::infinity();
  double ymax = -std::numeric_limits<double>::infinity();
  void add(const wcs::PixelPoint& p) {
    xmin = std::min(xmin, p.x);
    xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y);
    ymax = std::max(ymax, p.y);
  }
  bool empty() const { return xmin > xmax; }
};

// Liang-Barsky: adds the part of segment a-b inside r (its end points) to e.
void add_clipped(const Rect& r, const wcs::PixelPoint& a, const wcs::PixelPoint& b, Extent& e) {
  double t0 = 0.0, t1 = 1.0;
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {a.x - r.x0, r.x1 - a.x, a.y - r.y0, r.y1 - a.y};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0.0) {
      if (q[i] < 0.0) return;  // parallel to and outside this edge
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0.0) {
      t0 = std::max(t0, t);
    } else {
      t1 = std::min(t1, t);
    }
    if (t0 > t1) return;
  }
  e.add({a.x + t0 * dx, a.y + t0 * dy});
  e.add({a.x + t1 * dx, a.y + t1 * dy});
}

// Walks the boundary curves, refining adaptively where they are near the
// image: a segment is split until its chord is within kChordTolerance pixels
// of the curve (checked at the midpoint) and short; far from the image
// nothing is refined, so a huge shape costs little more than a small one.
// The clipped chords bound the part of the boundary inside the image to that
// tolerance; then each of the four extremes that lies on the curve itself
// (not on an image edge) is polished by a golden-section search along the
// curve, so the box is exact to ~1e-9 pixel and not just to the tolerance,
// while a 51x51 stamp needs only a few hundred projections.
class CurveWalker {
 public:
  CurveWalker(const wcs::Wcs& wcs, const Rect& rect, Extent& extent) : wcs_(wcs), rect_(rect), extent_(extent) {}

  void walk(const Curve& c) {
    double t_prev = 0.0;
    auto p_prev = project(c, 0.0);
    for (int i = 1; i <= c.initial_steps; ++i) {
      const double t = static_cast<double>(i) / c.initial_steps;
      auto p = project(c, t);
      segment(c, t_prev, p_prev, t, p, 0);
      t_prev = t;
      p_prev = p;
    }
  }

  // Refines the extremes found by walk(); call once after all curves.
  void polish() {
    for (int axis = 0; axis < 4; ++axis) {
      const auto& w = witness_[axis];
      if (!w.curve) continue;
      // Extreme of sign * coordinate near w.t (within one leaf either side).
      const double sign = axis % 2 == 0 ? -1.0 : 1.0;  // min x, max x, min y, max y
      const bool use_x = axis < 2;
      auto f = [&](double t) -> double {
        const auto p = project(*w.curve, t);
        if (!p || !rect_.contains(*p)) return -std::numeric_limits<double>::infinity();
        return sign * (use_x ? p->x : p->y);
      };
      double lo = std::max(0.0, w.t - w.dt), hi = std::min(1.0, w.t + w.dt);
      constexpr double g = 0.6180339887498949;
      double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
      double f1 = f(m1), f2 = f(m2);
      for (int i = 0; i < 40 && hi - lo > 1e-13; ++i) {
        if (f1 < f2) {
          lo = m1, m1 = m2, f1 = f2, m2 = lo + g * (hi - lo), f2 = f(m2);
        } else {
          hi = m2, m2 = m1, f2 = f1, m1 = hi - g * (hi - lo), f1 = f(m1);
        }
      }
      if (const auto p = project(*w.curve, 0.5 * (lo + hi)); p && rect_.contains(*p)) extent_.add(*p);
    }
  }

 private:
  static constexpr double kChordTolerance = 0.02;  // pixels
  static constexpr double kMaxLeafLength = 4.0;    // pixels, near the image
  static constexpr int kMaxDepth = 40;

  // Where an extreme of the walked chords sits on its curve.
  struct Witness {
    const Curve* curve = nullptr;
    double t = 0.0, dt = 0.0;
    double value = 0.0;
  };

  std::optional<wcs::PixelPoint> project(const Curve& c, double t) const {
    try {
      return wcs_.sky_to_pixel(c.at(t));
    } catch (const wcs::WcsError&) {
      return std::nullopt;  // e.g. more than 90 degrees from a TAN tangent point
    }
  }

  bool near_image(const wcs::PixelPoint& a, const wcs::PixelPoint& b) const {
    const double len = std::hypot(b.x - a.x, b.y - a.y);
    // The arc may bulge beyond its chord; allow a generous margin.
    const double margin = 0.25 * len + 2.0;
    return std::max(a.x, b.x) + margin >= rect_.x0 && std::min(a.x, b.x) - margin <= rect_.x1 &&
           std::max(a.y, b.y) + margin >= rect_.y0 && std::min(a.y, b.y) - margin <= rect_.y1;
  }

  // A curve point inside the image: a candidate for the extremes.
  void vertex(const Curve& c, double t, double dt, const wcs::PixelPoint& p) {
    if (!rect_.contains(p)) return;
    const double v[4] = {-p.x, p.x, -p.y, p.y};
    for (int i = 0; i < 4; ++i) {
      if (!witness_[i].curve || v[i] > witness_[i].value) witness_[i] = {&c, t, dt, v[i]};
    }
  }

  void leaf(const Curve& c, double ta, const wcs::PixelPoint& pa, double tb, const wcs::PixelPoint& pb) {
    add_clipped(rect_, pa, pb, extent_);
    vertex(c, ta, tb - ta, pa);
    vertex(c, tb, tb - ta, pb);
  }

  void segment(const Curve& c, double ta, const std::optional<wcs::PixelPoint>& pa, double tb,
               const std::optional<wcs::PixelPoint>& pb, int depth) {
    if (!pa && !pb) return;  // unprojectable: cannot be on the image
    if (pa && pb && !near_image(*pa, *pb)) return;
    const double tm = 0.5 * (ta + tb);
    if (depth >= kMaxDepth) {
      if (pa && pb) leaf(c, ta, *pa, tb, *pb);
      return;
    }
    const auto pm = project(c, tm);
    if (pa && pb && pm) {
      const double len = std::hypot(pb->x - pa->x, pb->y - pa->y);
      const double dev = std::hypot(pm->x - 0.5 * (pa->x + pb->x), pm->y - 0.5 * (pa->y + pb->y));
      if (dev <= kChordTolerance && len <= kMaxLeafLength) {
        leaf(c, ta, *pa, tm, *pm);
        leaf(c, tm, *pm, tb, *pb);
        return;
      }
    }
    segment(c, ta, pa, tm, pm, depth + 1);
    segment(c, tm, pm, tb, pb, depth + 1);
  }

  const wcs::Wcs& wcs_;
  const Rect& rect_;
  Extent& extent_;
  Witness witness_[4];
};

// Pixels whose square [i - 0.5, i + 0.5] overlaps [lo, hi] with positive
// length, clipped to [0, n). Half-open convention: a region ending exactly
// on a pixel edge does not take the next pixel.
std::optional<std::pair<long, long>> pixel_span(double lo, double hi, long n) {
  const long first = std::max(0L, static_cast<long>(std::floor(lo - 0.5)) + 1);
  const long last = std::min(n - 1, static_cast<long>(std::ceil(hi + 0.5)) - 1);
  if (first > last) return std::nullopt;
  return std::pair{first, last};
}

}  // namespace

// ---------------------------------------------------------------------------
// Public: shapes and boxes
// ---------------------------------------------------------------------------

void validate_shape(const sky::Shape& shape) {
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    if (!finite_point(c->center) || c->center.dec < -90.0 || c->center.dec > 90.0) {
      throw std::invalid_argument("CIRCLE: centre must be finite with declination in [-90, 90]");
    }
    if (!std::isfinite(c->radius_deg) || c->radius_deg <= 0.0 || c->radius_deg > 180.0) {
      throw std::invalid_argument(fmt::format("CIRCLE: radius {} is not in (0, 180] degrees", c->radius_deg));
    }
  } else if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    // A constructed Polygon is already checked; only a default one can be empty.
    if (p->vertices().size() < 3) throw std::invalid_argument("POLYGON: needs at least 3 vertices");
    for (const auto& v : p->vertices()) {
      if (!finite_point(v) || v.dec < -90.0 || v.dec > 90.0) {
        throw std::invalid_argument("POLYGON: vertices must be finite with declination in [-90, 90]");
      }
    }
  } else {
    const auto& r = std::get<sky::RaDecRange>(shape);
    const double v[] = {r.ra_min, r.ra_max, r.dec_min, r.dec_max};
    for (double x : v) {
      if (!std::isfinite(x)) throw std::invalid_argument("RANGE: values must be finite");
    }
    if (r.dec_min < -90.0 || r.dec_max > 90.0 || r.dec_min >= r.dec_max) {
      throw std::invalid_argument(
          fmt::format("RANGE: declinations {} .. {} must satisfy -90 <= min < max <= 90", r.dec_min, r.dec_max));
    }
    if (r.ra_min < 0.0 || r.ra_min > 360.0 || r.ra_max < 0.0 || r.ra_max > 360.0 || r.ra_min == r.ra_max) {
      throw std::invalid_argument(
          fmt::format("RANGE: right ascensions {} .. {} must be distinct and within [0, 360]", r.ra_min, r.ra_max));
    }
  }
}

std::string region_text(const sky::Shape& shape) {
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    return fmt::format("CIRCLE {} {} {}", number_text(c->center.ra), number_text(c->center.dec),
                       number_text(c->radius_deg));
  }
  if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    std::string s = "POLYGON";
    for (const auto& v : p->vertices()) s += " " + number_text(v.ra) + " " + number_text(v.dec);
    return s;
  }
  const auto& r = std::get<sky::RaDecRange>(shape);
  return fmt::format("RANGE {} {} {} {}", number_text(r.ra_min), number_text(r.ra_max), number_text(r.dec_min),
                     number_text(r.dec_max));
}

std::optional<fits::PixelBox> pixel_bounds(const wcs::Wcs& wcs, long width, long height, const sky::Shape& shape) {
  validate_shape(shape);
  if (width <= 0 || height <= 0) return std::nullopt;
  // The image's area in pixel coordinates: outer pixel edges.
  const Rect rect{-0.5, -0.5, static_cast<double>(width) - 0.5, static_cast<double>(height) - 0.5};
  Extent extent;
  // The region (shape ∩ image) is bounded by the shape's boundary inside the
  // image and the image's edges inside the shape; the extremes of the latter
  // are image corners inside the shape or crossings with the shape boundary,
  // which the clipped boundary chords already provide.
  CurveWalker walker(wcs, rect, extent);
  const auto curves = boundary(shape);
  for (const auto& c : curves) walker.walk(c);
  walker.polish();
  for (const wcs::PixelPoint corner : {wcs::PixelPoint{rect.x0, rect.y0}, wcs::PixelPoint{rect.x1, rect.y0},
                                       wcs::PixelPoint{rect.x1, rect.y1}, wcs::PixelPoint{rect.x0, rect.y1}}) {
    if (sky::contains(shape, wcs.pixel_to_sky(corner))) extent.add(corner);
  }
  if (extent.empty()) return std::nullopt;
  const auto xs = pixel_span(extent.xmin, extent.xmax, width);
  const auto ys = pixel_span(extent.ymin, extent.ymax, height);
  if (!xs || !ys) return std::nullopt;
  return fits::PixelBox{xs->first, ys->first, xs->second - xs->first + 1, ys->second - ys->first + 1};
}

std::optional<fits::PixelBox> pixel_bounds(long width, long height, const PixelRanges& ranges) {
  auto axis = [](const std::optional<PixelRange>& r, long n, const char* name) -> std::optional<std::pair<long, long>> {
    if (!r) return std::pair{0L, n - 1};
    if (r->first < 1 || r->first > r->last) {
      throw std::invalid_argument(
          fmt::format("PIXEL: range {} {} along {} must satisfy 1 <= first <= last", r->first, r->last, name));
    }
    if (r->first > n) return std::nullopt;
    return std::pair{r->first - 1, std::min(r->last, n) - 1};
  };
  const auto x = axis(ranges.x, width, "x (NAXIS1)");
  const auto y = axis(ranges.y, height, "y (NAXIS2)");
  if (!x || !y) return std::nullopt;
  return fits::PixelBox{x->first, y->first, x->second - x->first + 1, y->second - y->first + 1};
}

std::optional<fits::PixelBox> intersect(const fits::PixelBox& a, const fits::PixelBox& b) {
  const long x0 = std::max(a.x0, b.x0), y0 = std::max(a.y0, b.y0);
  const long x1 = std::min(a.x0 + a.width, b.x0 + b.width), y1 = std::min(a.y0 + a.height, b.y0 + b.height);
  if (x0 >= x1 || y0 >= y1) return std::nullopt;
  return fits::PixelBox{x0, y0, x1 - x0, y1 - y0};
}

wcs::PixelPoint box_center(const fits::PixelBox& box) {
  return {static_cast<double>(2 * box.x0 + box.width - 1) / 2.0, static_cast<double>(2 * box.y0 + box.height - 1) / 2.0};
}

}  // namespace pixserve::image
