#include "image/mosaic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <utility>

namespace pixserve::image {
namespace {

// Farthest a region's outline may lie from a TAN grid's centre: beyond, the
// projection stretches a pixel by more than 30 times (1 / cos^2).
constexpr double kMaxGridRadiusDeg = 80.0;
// Outline samples: points around a circle, per polygon edge, per range edge.
constexpr int kCircleSamples = 360;
constexpr int kEdgeSamples = 64;

// The points `distance_deg` from `from` in every direction, as vectors in
// the tangent plane (any orthonormal pair there: at a pole "north" has no
// meaning, and the bearing formula would collapse the circle to a point).
std::vector<sky::SkyPoint> circle_points(const sky::SkyPoint& from, double distance_deg, int count) {
  const sky::Vec3 c = sky::to_vector(from);
  const sky::Vec3 axis = std::abs(c.z) < 0.9 ? sky::Vec3{0, 0, 1} : sky::Vec3{1, 0, 0};
  sky::Vec3 u{axis.y * c.z - axis.z * c.y, axis.z * c.x - axis.x * c.z, axis.x * c.y - axis.y * c.x};
  const double un = std::sqrt(u.x * u.x + u.y * u.y + u.z * u.z);
  u = {u.x / un, u.y / un, u.z / un};
  const sky::Vec3 v{c.y * u.z - c.z * u.y, c.z * u.x - c.x * u.z, c.x * u.y - c.y * u.x};
  const double d = distance_deg * sky::kDeg;
  std::vector<sky::SkyPoint> out;
  for (int i = 0; i < count; ++i) {
    const double b = 2.0 * std::numbers::pi * i / count;
    const double cu = std::sin(d) * std::cos(b), cv = std::sin(d) * std::sin(b), cc = std::cos(d);
    out.push_back(sky::to_sky({cc * c.x + cu * u.x + cv * v.x, cc * c.y + cu * u.y + cv * v.y,
                               cc * c.z + cu * u.z + cv * v.z}));
  }
  return out;
}

// Points along the great circle from a to b (a included, b not).
void great_circle_samples(const sky::SkyPoint& a, const sky::SkyPoint& b, std::vector<sky::SkyPoint>& out) {
  const sky::Vec3 va = sky::to_vector(a), vb = sky::to_vector(b);
  for (int i = 0; i < kEdgeSamples; ++i) {
    const double t = static_cast<double>(i) / kEdgeSamples;
    out.push_back(sky::to_sky({(1 - t) * va.x + t * vb.x, (1 - t) * va.y + t * vb.y, (1 - t) * va.z + t * vb.z}));
  }
}

double ra_span(const sky::RaDecRange& r) {
  const double span = r.ra_max - r.ra_min;
  return span >= 0 ? span : span + 360.0;
}

std::vector<sky::SkyPoint> outline(const sky::Shape& region) {
  std::vector<sky::SkyPoint> pts;
  if (const auto* c = std::get_if<sky::Circle>(&region)) {
    pts = circle_points(c->center, c->radius_deg, kCircleSamples);
    pts.push_back(c->center);
  } else if (const auto* p = std::get_if<sky::Polygon>(&region)) {
    const auto& v = p->vertices();
    for (size_t i = 0; i < v.size(); ++i) great_circle_samples(v[i], v[(i + 1) % v.size()], pts);
  } else {
    const auto& r = std::get<sky::RaDecRange>(region);
    const double span = ra_span(r);
    for (int i = 0; i <= kEdgeSamples; ++i) {
      const double ra = sky::normalize_ra(r.ra_min + span * i / kEdgeSamples);
      const double dec = r.dec_min + (r.dec_max - r.dec_min) * i / kEdgeSamples;
      pts.push_back({ra, r.dec_min});
      pts.push_back({ra, r.dec_max});
      pts.push_back({sky::normalize_ra(r.ra_min), dec});
      pts.push_back({sky::normalize_ra(r.ra_max), dec});
    }
  }
  return pts;
}

// Sky -> pixel on one grid, nullopt where it does not project.
std::optional<wcs::PixelPoint> project(const wcs::Wcs& to, const wcs::Wcs& from, double x, double y) {
  std::optional<wcs::PixelPoint> q;
  try {
    q = to.sky_to_pixel(from.pixel_to_sky({x, y}));
  } catch (const wcs::WcsError&) {
  }
  if (q && !(std::isfinite(q->x) && std::isfinite(q->y))) q.reset();
  return q;
}

}  // namespace

sky::SkyPoint region_center(const sky::Shape& region) {
  if (const auto* c = std::get_if<sky::Circle>(&region)) return c->center;
  if (const auto* p = std::get_if<sky::Polygon>(&region)) return p->centroid();
  const auto& r = std::get<sky::RaDecRange>(region);
  const double span = ra_span(r);
  if (span >= 360.0 || (r.ra_min == 0.0 && r.ra_max == 360.0)) {
    if (r.dec_max >= 90.0) return {0.0, 90.0};
    if (r.dec_min <= -90.0) return {0.0, -90.0};
  }
  return {sky::normalize_ra(r.ra_min + span / 2.0), (r.dec_min + r.dec_max) / 2.0};
}

MosaicGrid grid_covering(const sky::Shape& region, const wcs::Wcs& grid, std::uint64_t max_pixels) {
  const sky::SkyPoint center = grid.reference_sky();
  double x0 = std::numeric_limits<double>::infinity(), y0 = x0, x1 = -x0, y1 = -x0;
  for (const auto& p : outline(region)) {
    const double d = sky::angular_distance_deg(p, center);
    if (d >= kMaxGridRadiusDeg) {
      throw std::invalid_argument(fmt::format(
          "the region reaches {:.1f} degrees from the grid centre ({:.6f}, {:.6f}); one TAN grid holds at most "
          "{} degrees around its centre",
          d, center.ra, center.dec, kMaxGridRadiusDeg));
    }
    const auto q = grid.sky_to_pixel(p);
    x0 = std::min(x0, q.x), x1 = std::max(x1, q.x), y0 = std::min(y0, q.y), y1 = std::max(y1, q.y);
  }
  // The pixels whose areas [i - 0.5, i + 0.5) hold the outline.
  const double ix0 = std::floor(x0 + 0.5), ix1 = std::floor(x1 + 0.5);
  const double iy0 = std::floor(y0 + 0.5), iy1 = std::floor(y1 + 0.5);
  const double w = ix1 - ix0 + 1.0, h = iy1 - iy0 + 1.0;
  if (!(w * h <= static_cast<double>(max_pixels)) || w > 2e9 || h > 2e9) {
    throw std::invalid_argument(fmt::format(
        "the grid would be {:.0f} x {:.0f} pixels ({:.3g} pixels at {:.4g} arcsec); at most {} pixels are allowed", w,
        h, w * h, grid.pixel_scale_deg() * 3600.0, max_pixels));
  }
  return MosaicGrid{grid.shifted(ix0, iy0), static_cast<long>(w), static_cast<long>(h)};
}

MosaicGrid tan_grid_covering(const sky::Shape& region, const sky::SkyPoint& center, double pixel_scale_arcsec,
                             double rotation_deg, std::uint64_t max_pixels) {
  if (!(std::isfinite(pixel_scale_arcsec) && pixel_scale_arcsec > 0.0)) {
    throw std::invalid_argument(fmt::format("the pixel scale must be a positive number of arcsec, not {}",
                                            pixel_scale_arcsec));
  }
  if (!std::isfinite(rotation_deg)) throw std::invalid_argument("the grid rotation must be a finite angle");
  if (!(std::isfinite(center.ra) && std::isfinite(center.dec) && std::abs(center.dec) <= 90.0)) {
    throw std::invalid_argument("the grid centre must be a sky position (dec within -90 .. 90)");
  }
  const double s = pixel_scale_arcsec / 3600.0, a = rotation_deg * sky::kDeg;
  wcs::TanParameters t;
  t.crval = {sky::normalize_ra(center.ra), center.dec};
  t.crpix = {0.0, 0.0};
  t.cd = {-s * std::cos(a), s * std::sin(a), s * std::sin(a), s * std::cos(a)};
  return grid_covering(region, wcs::Wcs::tan(t), max_pixels);
}

CoaddMosaic::CoaddMosaic(const std::vector<std::vector<std::filesystem::path>>& tracts, Kernel kernel)
    : kernel_(kernel) {
  if (tracts.empty()) throw std::invalid_argument("mosaic: no tract given");
  for (const auto& files : tracts) tracts_.emplace_back(files, kernel);
  // A fixed order (the tracts' first files): the fallback order must not
  // depend on how the caller listed them.
  std::sort(tracts_.begin(), tracts_.end(), [](const TractPatches& a, const TractPatches& b) {
    return a.patches().front().file < b.patches().front().file;
  });
}

bool CoaddMosaic::resamples(const MosaicGrid& grid) const {
  return tracts_.size() != 1 || !tracts_.front().whole_pixel_shift(grid.wcs);
}

Exposure CoaddMosaic::warp(const MosaicGrid& grid, const fits::PixelBox& box) const {
  if (box.width <= 0 || box.height <= 0 || box.x0 < 0 || box.y0 < 0 || box.x0 + box.width > grid.width ||
      box.y0 + box.height > grid.height) {
    throw std::invalid_argument(fmt::format("mosaic: box [{}:{},{}:{}] is empty or outside the {}x{} grid",
                                            box.x0 + 1, box.x0 + box.width, box.y0 + 1, box.y0 + box.height,
                                            grid.width, grid.height));
  }
  const auto n = static_cast<size_t>(box.width) * static_cast<size_t>(box.height);
  Exposure out = no_data_exposure(box.width, box.height);
  std::vector<std::uint8_t> given(n, 0);
  if (tracts_.size() == 1) {
    // On the tract's own grid nothing is resampled: the pixels are copied.
    if (const auto shift = tracts_.front().whole_pixel_shift(grid.wcs)) {
      tracts_.front().copy_into(*shift, box, out, given);
    } else {
      tracts_.front().warp_into(grid.wcs, box, {}, out, given);
    }
    return out;
  }
  // Among the tracts whose patches' bounding box holds the pixel, the
  // nearest tangent point: the angle from a tract's tangent point is
  // atan(r * scale), r the distance in its pixels from the reference pixel;
  // positions on a lattice anchored at (0, 0) as the warp's.
  const wcs::Wcs out_wcs = grid.wcs;
  std::vector<int> owner(n, -1);
  std::vector<std::vector<std::uint8_t>> reaches(tracts_.size(), std::vector<std::uint8_t>(n, 0));
  {
    std::vector<double> best(n, std::numeric_limits<double>::infinity());
    for (size_t k = 0; k < tracts_.size(); ++k) {
      const wcs::Wcs tract_wcs = tracts_[k].grid_wcs();
      const auto c = tract_wcs.reference_pixel();
      const fits::PixelBox b = tracts_[k].bounds();
      const double bx0 = static_cast<double>(b.x0) - 0.5, bx1 = static_cast<double>(b.x0 + b.width) - 0.5;
      const double by0 = static_cast<double>(b.y0) - 0.5, by1 = static_cast<double>(b.y0 + b.height) - 0.5;
      const double scale = tract_wcs.pixel_scale_deg() * sky::kDeg;
      const GridMapping map(box, kTemplateWarpStep, GridMapping::Lattice{0, 0},
                            [&](double x, double y) { return project(tract_wcs, out_wcs, x, y); });
      for (long y = 0; y < box.height; ++y) {
        for (long x = 0; x < box.width; ++x) {
          const auto q = map(box.x0 + x, box.y0 + y);
          if (!q || q->x < bx0 || q->x >= bx1 || q->y < by0 || q->y >= by1) continue;
          const auto i = static_cast<size_t>(y * box.width + x);
          reaches[k][i] = 1;
          // atan is monotonic: compare (r * scale)^2 instead of angles.
          const double dx = q->x - c.x, dy = q->y - c.y;
          const double tan2 = (dx * dx + dy * dy) * scale * scale;
          if (tan2 < best[i]) {
            best[i] = tan2;
            owner[i] = static_cast<int>(k);
          }
        }
      }
    }
  }
  std::vector<std::uint8_t> select(n);
  for (size_t k = 0; k < tracts_.size(); ++k) {
    bool any = false;
    for (size_t i = 0; i < n; ++i) any |= (select[i] = owner[i] == static_cast<int>(k) ? 1 : 0) != 0;
    if (any) tracts_[k].warp_into(out_wcs, box, select, out, given);
  }
  for (size_t k = 0; k < tracts_.size(); ++k) {
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      any |= (select[i] = given[i] == 0 && reaches[k][i] != 0 && owner[i] != static_cast<int>(k) ? 1 : 0) != 0;
    }
    if (any) tracts_[k].warp_into(out_wcs, box, select, out, given);
  }
  return out;
}

}  // namespace pixserve::image
