// Colour stretches of HiPS PNG/JPEG tiles: one set of cut levels for every
// tile of a map (so that tiles match across borders and orders).
//   grey:   t = asinh((v - lo) / soft) / asinh((hi - lo) / soft), clipped to [0, 1]
//   colour: Lupton et al. (2004) asinh on the mean of the three
//           background-subtracted, noise-scaled bands, which keeps hues of
//           bright objects instead of saturating them to white.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <optional>

#include "fits/fits.hpp"
#include "hips/image_io.hpp"

namespace pixserve::hips {

struct Cut {
  double lo = 0.0;    // black (the sky level minus a little)
  double hi = 1.0;    // white
  double soft = 1.0;  // asinh softening (about the sky noise)
  double sky = 0.0;   // sky level
  double noise = 1.0; // sky noise
};

// lo = sky - 2 noise, soft = 3 noise, hi = sky + 500 noise (the preview's
// stretch), from the sky level and noise of the survey's coadds.
Cut cut_from_background(double sky, double noise);

std::uint8_t grey_level(float value, const Cut& cut);

// A grey tile (grey + alpha: NaN pixels transparent) from a FITS-layout tile.
Raster grey_raster(const fits::Image<float>& tile, const Cut& cut);
// An RGBA tile from the three bands (red, green, blue order), each with its
// own sky and noise; a pixel blank in all three is transparent.
Raster color_raster(const fits::Image<float>& red, const fits::Image<float>& green, const fits::Image<float>& blue,
                    const std::array<Cut, 3>& cuts);

}  // namespace pixserve::hips
