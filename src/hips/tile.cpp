#include "hips/tile.hpp"

#include <fmt/format.h>
#include <healpix_cxx/healpix_base.h>

#include <cmath>
#include <stdexcept>

namespace pixserve::hips {
namespace {

const T_Healpix_Base<std::int64_t>& base_at(int order) {
  // One immutable base per order, built on first use (thread-safe statics).
  static const auto bases = [] {
    std::vector<T_Healpix_Base<std::int64_t>> v;
    for (int o = 0; o <= 29; ++o) v.emplace_back(o, NEST);
    return v;
  }();
  return bases.at(static_cast<std::size_t>(order));
}

}  // namespace

std::int64_t tiles_at(int order) { return std::int64_t{12} << (2 * order); }

bool valid_tile(int order, std::int64_t npix) {
  return order >= 0 && order <= kMaxHipsOrder && npix >= 0 && npix < tiles_at(order);
}

std::string tile_path(const TileId& t, std::string_view ext) {
  return fmt::format("Norder{}/Dir{}/Npix{}.{}", t.order, (t.npix / 10000) * 10000, t.npix, ext);
}

TileGeometry::TileGeometry(const TileId& t) : id_(t) {
  if (!valid_tile(t.order, t.npix)) throw std::invalid_argument(fmt::format("no HiPS tile {}/{}", t.order, t.npix));
  int ix = 0, iy = 0;
  base_at(t.order).pix2xyf(t.npix, ix, iy, face_);
  ix0_ = std::int64_t{ix} << kTileOrderShift;
  iy0_ = std::int64_t{iy} << kTileOrderShift;
}

std::int64_t TileGeometry::cell(long x, long y) const {
  return base_at(id_.order + kTileOrderShift)
      .xyf2pix(static_cast<int>(ix0_ + (kTileWidth - 1 - y)), static_cast<int>(iy0_ + x), face_);
}

sky::SkyPoint TileGeometry::center(long x, long y) const {
  const vec3 v = base_at(id_.order + kTileOrderShift).pix2vec(cell(x, y));
  return sky::to_sky({v.x, v.y, v.z});
}

std::int64_t pixel_cell(const TileId& t, long x, long y) { return TileGeometry(t).cell(x, y); }
sky::SkyPoint pixel_center(const TileId& t, long x, long y) { return TileGeometry(t).center(x, y); }

std::vector<WcsKeyword> tile_wcs(const TileId& t) {
  if (!valid_tile(t.order, t.npix)) throw std::invalid_argument(fmt::format("no HiPS tile {}/{}", t.order, t.npix));
  int ix = 0, iy = 0, face = 0;
  base_at(t.order).pix2xyf(t.npix, ix, iy, face);
  const int k = t.order + kTileOrderShift;
  const double n = std::ldexp(1.0, k);
  const double d = 45.0 / n;  // plane degrees per cell step along a face axis
  // The face's south corner in the HPX plane (H = 4, K = 3): every base
  // cell is a square of diagonal 90 degrees standing on that corner.
  double xs = 0.0, ys = 0.0;
  if (face < 4) {
    xs = 45.0 + 90.0 * face;
    ys = 0.0;
  } else if (face < 8) {
    xs = 90.0 * (face - 4);
    ys = -45.0;
  } else {
    xs = 45.0 + 90.0 * (face - 8);
    ys = -90.0;
  }
  // Keep the tile's own centre within [-180, 180) on the plane (wcslib's
  // HPX range): shift the face by 360 degrees when needed.
  const double centre_x = xs + 45.0 / std::ldexp(1.0, t.order) * (ix - iy);
  if (centre_x >= 180.0) xs -= 360.0;
  if (centre_x < -180.0) xs += 360.0;
  // Plane coordinates of tile pixel (X, Y) (cell ix0 + 511 - Y, iy0 + X):
  //   x = xs + d (ix0 + 511 - Y - iy0 - X),  y = ys + d (ix0 + 511 - Y + iy0 + X + 1)
  const double ix0 = std::ldexp(static_cast<double>(ix), kTileOrderShift);
  const double iy0 = std::ldexp(static_cast<double>(iy), kTileOrderShift);
  const double a = -xs / d - ix0 + iy0;        // (511 - Y) - X at the plane origin
  const double b = -ys / d - ix0 - iy0 - 1.0;  // (511 - Y) + X at the plane origin
  const double y_star = static_cast<double>(kTileWidth - 1) - (a + b) / 2.0, x_star = (b - a) / 2.0;
  std::vector<WcsKeyword> out;
  auto str = [&](std::string key, std::string v) { out.push_back({std::move(key), std::move(v), 0.0, true}); };
  auto num = [&](std::string key, double v) { out.push_back({std::move(key), {}, v, false}); };
  num("WCSAXES", 2);
  str("CTYPE1", "RA---HPX");
  str("CTYPE2", "DEC--HPX");
  num("CRPIX1", x_star + 1.0);
  num("CRPIX2", y_star + 1.0);
  num("CRVAL1", 0.0);
  num("CRVAL2", 0.0);
  num("CD1_1", -d);
  num("CD1_2", -d);
  num("CD2_1", d);
  num("CD2_2", -d);
  num("PV2_1", 4.0);
  num("PV2_2", 3.0);
  num("LONPOLE", 0.0);
  str("RADESYS", "ICRS");
  str("CUNIT1", "deg");
  str("CUNIT2", "deg");
  return out;
}

TileId parent(const TileId& t) {
  if (t.order <= 0) throw std::invalid_argument("an order-0 tile has no parent");
  return {t.order - 1, t.npix >> 2};
}

std::array<long, 2> child_offset(int quadrant) {
  return {static_cast<long>((quadrant >> 1) & 1) * (kTileWidth / 2),
          static_cast<long>(1 - (quadrant & 1)) * (kTileWidth / 2)};
}

}  // namespace pixserve::hips

namespace pixserve::hips {

sky::Polygon cell_polygon(int order, std::int64_t npix, int per_side) {
  if (order < 0 || order > 29 || npix < 0 || npix >= (std::int64_t{12} << (2 * order))) {
    throw std::invalid_argument(fmt::format("no HEALPix cell {} at order {}", npix, order));
  }
  std::vector<vec3> boundary;
  base_at(order).boundaries(npix, static_cast<tsize>(std::max(1, per_side)), boundary);
  std::vector<sky::SkyPoint> pts;
  pts.reserve(boundary.size());
  for (const auto& v : boundary) pts.push_back(sky::to_sky({v.x, v.y, v.z}));
  return sky::Polygon(std::move(pts));
}

}  // namespace pixserve::hips
