// The coadd sky map "pixserve-tract": a tract is a TAN projection at the
// survey's pixel scale centred on the field, cut into a grid of patches that
// overlap by a border on each side. Every patch's WCS is the tract's with
// CRPIX shifted, so all patches share the tract's pixel grid exactly.
//
// One tract (number 0) covers tract_size_deg around the field centre, which
// holds every pointing of the simulated surveys (the dithers are a fraction
// of a raft); wider surveys would need a tiling of several tracts.
#pragma once

#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "sim/simulator.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

struct PatchId {
  int x = 0;
  int y = 0;
  std::string str() const;         // "x,y" (the PATCH keyword)
  std::string file_token() const;  // "x_y"
  friend bool operator==(const PatchId&, const PatchId&) = default;
  friend auto operator<=>(const PatchId&, const PatchId&) = default;
};

class SkyMap {
 public:
  explicit SkyMap(const SurveyConfig& config);

  const std::string& name() const noexcept { return name_; }
  int tract() const noexcept { return 0; }
  const wcs::Wcs& tract_wcs() const noexcept { return tract_wcs_; }
  int patches_x() const noexcept { return patches_x_; }
  int patches_y() const noexcept { return patches_y_; }

  // A patch's pixels in tract pixel coordinates (outer box, border included).
  fits::PixelBox patch_box(const PatchId& patch) const;
  wcs::Wcs patch_wcs(const PatchId& patch) const;

  // The patches whose outer box an image (its WCS and size) touches.
  std::vector<PatchId> patches_overlapping(const wcs::Wcs& image_wcs, long width, long height) const;

 private:
  std::string name_;
  long inner_ = 0, border_ = 0;
  int patches_x_ = 0, patches_y_ = 0;
  wcs::Wcs tract_wcs_;
};

// Points along the border of a width x height image (pixel-edge outline,
// n_per_side per edge): enough to bound its footprint in another projection.
std::vector<wcs::PixelPoint> image_outline(long width, long height, int n_per_side = 8);

}  // namespace pixserve::sim
