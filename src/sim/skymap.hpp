// The coadd sky maps. A tract is a TAN projection at the survey's pixel
// scale about its own centre, cut into a grid of patches that overlap by a
// border on each side; every patch's WCS is the tract's with CRPIX shifted,
// so all patches of a tract share its pixel grid exactly.
//
// Two layouts (SurveyConfig::skymap):
//  - "pixserve-tract" (the default): one tract, number 0, centred on the
//    field and tract_size_deg wide; it owns the whole sky.
//  - "pixserve-rings": tracts tiling the whole sphere in rings of
//    declination, as the survey's "rings" sky maps. The sphere is cut into
//    R + 1 bands of equal height h = 180 / (R + 1) <= tract_size_deg: a cap
//    of radius h/2 around each pole and R rings between them. Ring k
//    (0 = southernmost) is centred on dec_k = -90 + (k + 1) h and cut into n_k
//    equal RA slices, n_k the least number making the slices at most h wide
//    on the ring's edge nearest the equator; slice j is centred on RA
//    j 360 / n_k. Tract numbers run ring by ring from south to north: 0 is
//    the south cap, then ring 0's slices by RA, ..., the north cap last.
//    A tract's "inner region" is its cell (cap, or ring x RA slice): every
//    sky point lies in exactly one inner region, its owning tract. The
//    tract's pixels cover its inner region grown by tract_overlap_deg on
//    every side (rounded up to whole patches), so neighbouring tracts
//    overlap by at least twice that.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "sim/simulator.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

inline constexpr const char* kSingleTractSkyMap = "pixserve-tract";
inline constexpr const char* kRingsSkyMap = "pixserve-rings";

struct PatchId {
  int x = 0;
  int y = 0;
  std::string str() const;         // "x,y" (the PATCH keyword)
  std::string file_token() const;  // "x_y"
  friend bool operator==(const PatchId&, const PatchId&) = default;
  friend auto operator<=>(const PatchId&, const PatchId&) = default;
};

// One tract: its WCS (pixels 0..width-1 x 0..height-1, the centre the
// reference point) and its patch grid. Immutable; its methods may be
// called from several threads at once.
class Tract {
 public:
  Tract(int id, const sky::SkyPoint& center, double pixel_scale_arcsec, int patches_x, int patches_y, long inner,
        long border);

  int id() const noexcept { return id_; }
  const sky::SkyPoint& center() const noexcept { return center_; }
  // The tract's WCS; use a copy (or patch_wcs) for projections: one Wcs
  // must not be used by two threads at once.
  const wcs::Wcs& wcs() const noexcept { return wcs_; }
  long width() const noexcept { return patches_x_ * inner_; }
  long height() const noexcept { return patches_y_ * inner_; }
  int patches_x() const noexcept { return patches_x_; }
  int patches_y() const noexcept { return patches_y_; }

  // A patch's pixels in tract pixel coordinates (outer box, border included).
  fits::PixelBox patch_box(const PatchId& patch) const;
  wcs::Wcs patch_wcs(const PatchId& patch) const;

  // The patches whose outer box an image (its WCS and size) touches.
  std::vector<PatchId> patches_overlapping(const wcs::Wcs& image_wcs, long width, long height) const;
  // Whether a sky point falls on the tract's pixels (its inner box, patch
  // borders beyond the edge not included).
  bool contains(const sky::SkyPoint& p) const;

 private:
  int id_;
  sky::SkyPoint center_;
  int patches_x_, patches_y_;
  long inner_, border_;
  wcs::Wcs wcs_;
};

class SkyMap {
 public:
  // Throws std::invalid_argument for an unknown sky map name or unusable
  // sizes.
  explicit SkyMap(const SurveyConfig& config);
  ~SkyMap();
  SkyMap(const SkyMap&) = delete;
  SkyMap& operator=(const SkyMap&) = delete;

  const std::string& name() const noexcept { return name_; }
  bool is_rings() const noexcept { return rings_; }
  double pixel_scale_arcsec() const noexcept { return pixel_scale_arcsec_; }

  int tract_count() const noexcept;
  // 0 .. tract_count() - 1.
  std::vector<int> tract_ids() const;
  // The tract (built on first use and kept); throws std::out_of_range for
  // a number that is not a tract. Thread-safe.
  const Tract& tract(int id) const;
  sky::SkyPoint tract_center(int id) const;

  // The tract whose inner region holds p (exactly one for every point).
  int owning_tract(const sky::SkyPoint& p) const;
  bool in_inner_region(int id, const sky::SkyPoint& p) const { return owning_tract(p) == id; }

  // The tracts whose pixels (patch borders included) an image touches, in
  // increasing order.
  std::vector<int> tracts_overlapping(const wcs::Wcs& image_wcs, long width, long height) const;

  // Rings layout: number of rings (caps excluded), ring height, and a
  // ring's centre declination and tract count. Single tract: 0 rings.
  int rings() const noexcept { return static_cast<int>(ring_dec_.size()); }
  double ring_height_deg() const noexcept { return ring_height_; }
  double ring_dec(int ring) const { return ring_dec_.at(static_cast<std::size_t>(ring)); }
  int ring_tracts(int ring) const { return ring_count_.at(static_cast<std::size_t>(ring)); }

 private:
  struct Shape {
    int patches_x = 0, patches_y = 0;
    double reach_deg = 0.0;  // angular radius from the centre that holds all the tract's pixels
  };
  Shape shape_of(int id) const;
  int ring_of(int id) const;  // -1: south cap, rings(): north cap

  std::string name_;
  bool rings_ = false;
  double pixel_scale_arcsec_ = 0.0;
  long inner_ = 0, border_ = 0;
  // Single tract.
  sky::SkyPoint field_center_;
  Shape single_;
  // Rings.
  double ring_height_ = 0.0;
  std::vector<double> ring_dec_;
  std::vector<int> ring_count_, ring_first_;  // tracts per ring, number of each ring's first tract
  std::vector<Shape> ring_shape_;            // per ring (all its tracts alike)
  Shape cap_shape_;
  double max_reach_deg_ = 0.0;

  mutable std::mutex mutex_;
  mutable std::map<int, std::unique_ptr<Tract>> tracts_;
};

// Points along the border of a width x height image (pixel-edge outline,
// n_per_side per edge): enough to bound its footprint in another projection.
std::vector<wcs::PixelPoint> image_outline(long width, long height, int n_per_side = 8);

}  // namespace pixserve::sim
