// Forced photometry at a known position of an exposure: the flux in a
// circular aperture (each pixel weighted by the exact area of its overlap
// with the circle, as photutils' method='exact') or fitted with a Gaussian
// PSF of known width, with its error from the variance plane and flags for
// what spoils a measurement (the aperture off the image, masked or
// saturated pixels in it).
#pragma once

#include <cstdint>

#include "image/exposure.hpp"

namespace pixserve::image {

// The exact area of the intersection of the circle of radius r centred at
// the origin and the rectangle [x0, x1] x [y0, y1] (x0 <= x1, y0 <= y1).
double circle_rectangle_overlap(double x0, double y0, double x1, double y1, double r);

struct ForcedMeasurement {
  double flux = 0.0;      // in the image's pixel unit (summed, or the PSF's total)
  double flux_err = 0.0;  // 1 sigma, from the variance plane
  double area = 0.0;      // pixels the measurement used (overlap weights summed)
  bool edge = false;      // part of the aperture (or PSF footprint) falls off the image
  bool masked = false;    // pixels with a rejecting mask bit were left out
  bool saturated = false; // a saturated pixel lies in the aperture
  bool valid() const noexcept { return area > 0.0; }
};

// Mask bits whose pixels are left out of a measurement (and flag it):
// bad, no data, cosmic rays, saturated.
std::int32_t photometry_reject_bits();

// Aperture photometry at pixel position (x, y) (0-based, the centre of the
// first pixel at 0.0) with radius r pixels: sum of image x overlap and of
// variance x overlap over the pixels the circle touches; rejected pixels
// count as zero, as photutils counts a masked pixel. Throws
// std::invalid_argument for a radius that is not positive and finite.
ForcedMeasurement aperture_photometry(const Exposure& exposure, double x, double y, double radius);

// PSF photometry at (x, y): the amplitude of a circular Gaussian of the
// given FWHM (pixels), normalised to unit total flux, fitted by weighted
// least squares (weights 1/variance) over the pixels within 3 FWHM, the
// position held fixed: flux = sum(P d / v) / sum(P^2 / v), error
// 1 / sqrt(sum(P^2 / v)). Throws std::invalid_argument for a FWHM that is
// not positive and finite.
ForcedMeasurement psf_photometry(const Exposure& exposure, double x, double y, double fwhm);

}  // namespace pixserve::image
