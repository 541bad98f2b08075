// Difference images: the science exposure minus the PSF-matched template,
//   D = S - K * T - background,  Var = Var(S) + K^2 * Var(T),
// on any box of the CCD, with a PsfMatchingKernel fitted once for the whole
// CCD (image/psf_match.hpp). T must already be on the science pixel grid
// (warped by the caller).
//
// Box independence: every output pixel is computed from its own
// neighbourhood by the same operations in the same order whatever box,
// tile or piece of the inputs it is computed in, so a cutout of the
// difference equals the same pixels of the whole difference image bit for
// bit (with the same build and the same kernel data).
//
// K * T is computed exactly for the kernel of each pixel: the template is
// convolved once with each raw basis kernel and the results are combined
// with the coefficients at that pixel (Alard & Lupton's classic trick).
// The variance uses K^2 evaluated at the centre of the pixel's cell of
// kVarianceCell x kVarianceCell pixels (cells aligned to the CCD's pixel
// (0, 0)): the kernel changes little over a cell when its coefficients are
// low-order polynomials over the CCD (a first-order term changes by
// cell / width of its range across a cell, under 1% on a 4k CCD).
//
// Masks: the science mask, OR the template mask bits over each pixel's
// kernel footprint (all bits but DETECTED, DETECTED_NEGATIVE and NO_DATA:
// the template's detections and coverage are not properties of the
// difference). A pixel whose footprint reaches a template pixel without data
// (outside the CCD or the template given, NO_DATA, or non-finite value or
// variance) gets EDGE; a pixel whose own template pixel has no data also gets
// NO_DATA. Both have NaN image and variance.
#pragma once

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/psf_match.hpp"

namespace pixserve::image {

// Side of the cells over which the variance uses one K^2.
inline constexpr long kVarianceCell = 32;

// Template mask bits spread over the kernel footprint into the difference.
inline constexpr std::int32_t kTemplateSpreadExcluded =
    mask_bit(MaskPlane::detected) | mask_bit(MaskPlane::detected_negative) | mask_bit(MaskPlane::no_data);

// Pixels of a CCD-sized exposure held in a smaller one: pixels' (0, 0) is
// CCD pixel (x0, y0). A whole CCD is the piece at (0, 0).
struct ExposurePiece {
  const Exposure& pixels;
  long x0 = 0;
  long y0 = 0;
};

// The template pixels a difference over box reads: box grown by the
// kernel's half size, clipped to the kernel's frame (the CCD). Reading these
// (or more) gives the same difference pixels as the whole template.
fits::PixelBox difference_template_box(const PsfMatchingKernel& kernel, const fits::PixelBox& box);

// The difference image over box (CCD pixel coordinates, inside the kernel's
// frame), as an exposure of box's size. science must cover box; template
// pixels outside tmpl count as no data. Throws std::invalid_argument for an
// empty box, a box outside the frame, a science piece not covering it, or
// planes of unequal sizes.
Exposure subtract_template(ExposurePiece science, ExposurePiece tmpl, const PsfMatchingKernel& kernel,
                           const fits::PixelBox& box);

// The whole difference image of two CCD-sized exposures.
Exposure subtract_template(const Exposure& science, const Exposure& tmpl, const PsfMatchingKernel& kernel);

}  // namespace pixserve::image
