// Robust image statistics: the sky background level and noise, adaptive
// Gaussian moments of a source (centroid and size), and the PSF FWHM
// measured from the stars of an image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "fits/fits.hpp"
#include "image/exposure.hpp"

namespace pixserve::image {

struct BackgroundStats {
  double level = 0.0;  // sigma-clipped median
  double rms = 0.0;    // robust standard deviation about it (from the MAD)
  std::size_t samples = 0;
};

// Sigma-clipped median and scatter of the pixels, skipping pixels whose mask
// has any of reject_bits (when a mask is given) and non-finite values. Large
// images are subsampled on a regular grid (about max_samples pixels): the
// sky does not need every pixel, and the result stays deterministic.
BackgroundStats estimate_background(const fits::Image<float>& image, const fits::Image<std::int32_t>* mask = nullptr,
                                    std::int32_t reject_bits = 0, std::size_t max_samples = 60'000);

// Adaptive (Gaussian-weighted, iterated to match the source) second moments:
// for a Gaussian source of width sigma the result is its centre and sigma.
struct Moments {
  double x = 0.0, y = 0.0;  // centroid, 0-based pixel coordinates
  double sigma = 0.0;       // sqrt((Ixx + Iyy) / 2) of the matched Gaussian
  double flux = 0.0;        // sum of weight * pixel (not a total flux)
};

// Starting at (x, y) with a first guess of the width. The image should be
// background-subtracted. nullopt when the iteration leaves the image, the
// weighted flux is not positive, or it does not converge.
std::optional<Moments> adaptive_moments(const fits::Image<float>& image, double x, double y, double sigma_guess);

// The PSF FWHM in pixels: the median adaptive size of the brightest
// unsaturated, isolated point-like peaks (above min_snr times the noise) of a
// background-subtracted exposure. nullopt when no usable star is found.
std::optional<double> measure_psf_fwhm(const Exposure& exposure, double noise_rms, double sigma_guess,
                                       double min_snr = 50.0, int max_stars = 30);

}  // namespace pixserve::image
