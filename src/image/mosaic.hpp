// Coadd mosaics: the patches of several tracts (each tract its own TAN
// projection, its patches on one pixel grid) resampled onto one output
// grid, strip by strip, through the one resampling engine
// (image/resample.hpp via TractPatches, image/template_warp.hpp).
//
// Which tract a pixel comes from: of the tracts whose patches' bounding box
// holds it, the one whose tangent point (its grid's reference point) is
// nearest to the pixel on the sky, i.e. where the tract projection is least
// distorted; it is the one the sky map's inner regions assign for tracts cut
// as equal cells (rings of declination, sim/skymap.hpp), and a rule that
// needs nothing but the patches' WCSs. When that tract has no data at the
// pixel, the other tracts holding it give it (in a fixed order). Within
// a tract, the patch rule of TractPatches (inner regions, then any patch
// with data). Pixels no tract covers are NaN with NO_DATA in the mask.
//
// Image and variance are propagated per pixel (sum w I, sum w^2 Var) and the
// mask bits OR'ed over the kernel footprint (Resampler).
//
// The inputs of one "tract" need only share a pixel grid: the CCD images of
// one visit, each its own grid (TAN-SIP, all about the boresight), make a
// focal-plane mosaic as single-image tracts, each pixel from the CCD that
// holds it.
//
// Strips: the output mapping is on a lattice anchored at output pixel
// (0, 0), so any box of the output equals, bit for bit, the same pixels of
// the whole; each box reads only the patch pixels it needs, so memory grows
// with the box (a strip), never with the mosaic.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/resample.hpp"
#include "image/template_warp.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

// An output pixel grid: a WCS and the pixels 0 .. width-1 x 0 .. height-1.
struct MosaicGrid {
  wcs::Wcs wcs;
  long width = 0;
  long height = 0;
  std::uint64_t pixels() const noexcept {
    return static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height);
  }
};

// A TAN grid about `center` with square pixels of `pixel_scale_arcsec`,
// its +y axis at position angle `rotation_deg` (from north through east;
// 0: north up, east left), just large enough to hold every point of
// `region`: the region's outline is projected and the grid is the pixel
// box around it. Throws std::invalid_argument when the scale is not
// positive and finite, when part of the region lies 80 degrees or more from
// the centre (a TAN grid cannot hold it sensibly), or when the grid would
// have more than `max_pixels` pixels (the message gives its size).
MosaicGrid tan_grid_covering(const sky::Shape& region, const sky::SkyPoint& center, double pixel_scale_arcsec,
                             double rotation_deg, std::uint64_t max_pixels);

// The pixel box of an existing grid (e.g. a tract's) that holds every point
// of `region`, as a grid of its own (the WCS shifted to the box). The same
// exceptions, with the distance measured from the grid's reference point.
MosaicGrid grid_covering(const sky::Shape& region, const wcs::Wcs& grid, std::uint64_t max_pixels);

// The centre a default grid takes for a region: a circle's centre, a
// polygon's centroid, a range's middle (through RA 0 when it wraps; a pole
// when the range reaches it and spans every RA).
sky::SkyPoint region_center(const sky::Shape& region);

// The patches of several tracts, opened once (headers only).
class CoaddMosaic {
 public:
  // One list of patch files per tract (a tract's patches share one pixel
  // grid; TractPatches' checks and exceptions). Throws
  // std::invalid_argument when no tract is given.
  CoaddMosaic(const std::vector<std::vector<std::filesystem::path>>& tracts, Kernel kernel);

  // The mosaic's pixels over `box` of `grid` (non-empty, inside the grid;
  // else std::invalid_argument), as an exposure of the box's size.
  Exposure warp(const MosaicGrid& grid, const fits::PixelBox& box) const;

  Kernel kernel() const noexcept { return kernel_; }
  std::size_t tracts() const noexcept { return tracts_.size(); }
  // False when `grid` is the one tract's grid shifted by whole pixels: the
  // pixels are then copied, not resampled.
  bool resamples(const MosaicGrid& grid) const;

 private:
  std::vector<TractPatches> tracts_;
  Kernel kernel_;
};

}  // namespace pixserve::image
