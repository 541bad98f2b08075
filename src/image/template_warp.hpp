// Template warping for difference imaging: the coadd patches of one tract
// (exposure files on one pixel grid, overlapping by a border) resampled
// with Lanczos-3 onto a calexp's pixel grid, over any box of it, through the
// one resampling engine (image/resample.hpp).
//
// Which patch a pixel comes from: each output pixel is mapped to the
// tract's grid; the patch whose inner region (its outer box minus the
// border, i.e. the pixels the sky map assigns to it alone) holds that
// position supplies the pixel when its sample has data; otherwise the first
// patch in sorted file order whose sample has data. Pixels no patch gives
// data for are NaN with NO_DATA in the mask (plus the mask bits the inner
// patch's sample read, if there is one).
//
// The border is derived from the patches: their PATCH keywords ("x,y") and
// their offsets on the common grid give the inner patch size, and border =
// (outer - inner) / 2, as in the sky map (sim/skymap.hpp). Without PATCH
// keywords, or with a single patch index, the border is 0 (inner = outer).
//
// Box independence: the output pixel to tract position mapping is a
// GridMapping on a lattice anchored at target pixel (0, 0) with a fixed
// node step, the patch choice depends only on the pixel's position and on
// the patches' pixels, and every sample reads its whole kernel footprint;
// so the warp over any box equals, bit for bit, the same pixels of the
// warp of the whole target.
//
// Only the pixels a box needs are read: per patch, the source_box() of the
// mapping over the output pixels it supplies.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/resample.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

// The kernel and node step of template warps (fixed: part of the result).
inline constexpr Kernel kTemplateWarpKernel = Kernel::lanczos3;
// TAN-SIP -> TAN is smooth: bilinear interpolation between nodes 32 pixels
// apart errs by far less than a thousandth of a pixel.
inline constexpr long kTemplateWarpStep = 32;

// The patches of one tract, opened once (headers and grid only; pixels are
// read per warp). Templates of difference images and coadd mosaics
// (image/mosaic.hpp) warp through it.
class TractPatches {
 public:
  // Sorts and de-duplicates the files. Throws std::invalid_argument for no
  // files, patches not on one pixel grid (WCSs equal but for integer CRPIX
  // offsets) or PATCH keywords inconsistent with their offsets;
  // fits::FitsError / wcs::WcsError for unreadable files.
  explicit TractPatches(std::span<const std::filesystem::path> patch_files, Kernel kernel = kTemplateWarpKernel);

  // The template warped onto the target grid (a width x height image with
  // WCS target) over box (target pixel coordinates, non-empty, inside the
  // target; else std::invalid_argument), as an exposure of box's size.
  Exposure warp(const wcs::Wcs& target, long target_width, long target_height, const fits::PixelBox& box) const;

  // The warp's pixels of `box` (target pixel coordinates) that `select`
  // marks (non-zero; empty: all of them), written into `out` (planes of the
  // box's size, other pixels untouched); given[i] is set to 1 where the
  // sample has data. A selected pixel without data gets NaN and NO_DATA
  // only where the patch whose inner region holds it says so (as warp()).
  // Throws std::logic_error when the sizes disagree.
  void warp_into(const wcs::Wcs& target, const fits::PixelBox& box, std::span<const std::uint8_t> select,
                 Exposure& out, std::span<std::uint8_t> given) const;

  // The pixels the patches cover on the common grid: their outer boxes'
  // bounding box.
  fits::PixelBox bounds() const;

  // When `target` is the common grid shifted by whole pixels, that shift
  // (target pixel + shift = common grid pixel); else nullopt.
  std::optional<std::pair<long, long>> whole_pixel_shift(const wcs::Wcs& target) const;

  // warp_into() for a target on the common grid (shift from
  // whole_pixel_shift()), without resampling: the pixels are copied, the
  // same choice of patch (inner region, else the first with data), the
  // same values a warp gives there (any kernel copies a pixel at a whole
  // pixel position; a pixel whose image or variance is not finite has no
  // data: NaN and NO_DATA with its own mask bits).
  void copy_into(std::pair<long, long> shift, const fits::PixelBox& box, Exposure& out,
                 std::span<std::uint8_t> given) const;

  // The common pixel grid (the first patch's WCS) and the kernel.
  const wcs::Wcs& grid_wcs() const noexcept { return *grid_wcs_; }
  Kernel kernel() const noexcept { return kernel_; }

  // The template's PSF FWHM in arcsec: the mean of the patches' PSFFWHM.
  // Throws std::invalid_argument naming a patch without it.
  double psf_fwhm_arcsec() const;

  // The patch border used for the inner regions (pixels).
  long border() const noexcept { return border_; }

  struct Patch {
    std::filesystem::path file;
    long width = 0, height = 0;  // outer size
    long ox = 0, oy = 0;         // pixel (0, 0) on the common grid (the first patch's pixels)
    std::optional<double> psf_fwhm;
  };
  const std::vector<Patch>& patches() const noexcept { return patches_; }

 private:
  std::vector<Patch> patches_;  // sorted by file
  std::optional<wcs::Wcs> grid_wcs_;  // the common grid: the first patch's WCS
  long border_ = 0;
  Kernel kernel_ = kTemplateWarpKernel;
};

// An exposure with every pixel NaN and NO_DATA: what warps start from.
Exposure no_data_exposure(long width, long height);

// One-shot forms of the above.
Exposure warp_template(std::span<const std::filesystem::path> patch_files, const wcs::Wcs& target,
                       long target_width, long target_height, const fits::PixelBox& box);
double template_psf_fwhm(std::span<const std::filesystem::path> patch_files);

}  // namespace pixserve::image
