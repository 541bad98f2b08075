// HiPS tile geometry (IVOA HiPS 1.0): a tile of order k and index npix is
// the HEALPix NESTED cell npix at order k, cut into 512 x 512 pixels that are
// the cells of order k + 9 inside it.
//
// Pixel layout inside a tile, as Aladin/Hipsgen write it (checked against
// Hipsgen's own tiles of the same coadds): in FITS pixel coordinates (X
// along NAXIS1, Y along NAXIS2, 0-based, Y = 0 the first row stored), the
// pixel (X, Y) is the cell whose face coordinates are ix = ix0 + 511 - Y,
// iy = iy0 + X (ix0, iy0: the tile's first cell at order k + 9). PNG and
// JPEG tiles store rows top-down, so PNG row r is FITS row 511 - r (ix =
// ix0 + r): the same picture in both.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sky/geometry.hpp"

namespace pixserve::hips {

inline constexpr int kTileOrderShift = 9;  // log2 of the tile width
inline constexpr long kTileWidth = 512;
inline constexpr int kMaxHipsOrder = 29 - kTileOrderShift;  // pixel order <= 29

struct TileId {
  int order = 0;
  std::int64_t npix = 0;
  friend bool operator==(const TileId&, const TileId&) = default;
  friend auto operator<=>(const TileId&, const TileId&) = default;
};

// Number of tiles of an order: 12 * 4^order.
std::int64_t tiles_at(int order);
// True when order is in [0, kMaxHipsOrder] and npix in [0, tiles_at(order)).
bool valid_tile(int order, std::int64_t npix);

// "Norder{k}/Dir{(npix / 10000) * 10000}/Npix{npix}.{ext}".
std::string tile_path(const TileId& t, std::string_view ext);

// The HEALPix NESTED index (at order + 9) of tile pixel (x, y) in FITS
// coordinates.
std::int64_t pixel_cell(const TileId& t, long x, long y);
// Its centre on the sky.
sky::SkyPoint pixel_center(const TileId& t, long x, long y);

// Precomputed per tile: face and first cell, for many pixel lookups.
class TileGeometry {
 public:
  explicit TileGeometry(const TileId& t);
  std::int64_t cell(long x, long y) const;  // NESTED index at order + 9
  sky::SkyPoint center(long x, long y) const;
  const TileId& id() const noexcept { return id_; }

 private:
  TileId id_;
  int face_ = 0;
  std::int64_t ix0_ = 0, iy0_ = 0;
};

// The FITS WCS keywords of a tile: HPX projection (PV2_1 = 4, PV2_2 = 3,
// CRVAL 0 0) with a CD matrix that puts every pixel centre on its HEALPix
// cell centre. Pairs of keyword and value (numbers as double).
struct WcsKeyword {
  std::string key;
  std::string text;    // set for string values
  double number = 0.0; // otherwise
  bool is_string = false;
};
std::vector<WcsKeyword> tile_wcs(const TileId& t);

// The parent tile and the quadrant (0..3) the tile occupies in it.
TileId parent(const TileId& t);
// Where child quadrant q (bit 0: ix, bit 1: iy) lies in its parent, in FITS
// pixels: x0 = (q >> 1) * 256, y0 = (1 - (q & 1)) * 256; child pixels
// (2x .. 2x+1, 2y .. 2y+1) fall in parent pixel (x0 + x, y0 + y).
std::array<long, 2> child_offset(int quadrant);

}  // namespace pixserve::hips

namespace pixserve::hips {

// The outline of a HEALPix NESTED cell (any order 0..29) as a polygon with
// `per_side` points along each (curved) edge. Throws std::invalid_argument
// for a cell that does not exist.
sky::Polygon cell_polygon(int order, std::int64_t npix, int per_side = 4);

}  // namespace pixserve::hips
