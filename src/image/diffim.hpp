// A difference image of a calexp (processed visit image) against a template
// (coadd patches warped onto the calexp's pixel grid): the PSF-matching
// kernel fitted on the calexp's bright isolated stars, and the header that
// the difference image carries. The pixels are image::subtract_template's;
// the warp is image/template_warp.hpp's. Re-creating a difference image with
// the same inputs, parameters and kernel gives the same bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "image/exposure.hpp"
#include "image/header.hpp"
#include "image/psf_match.hpp"

namespace pixserve::image {

// What a difference image is made with besides its inputs, as its recipe
// records it. The kernel's basis is not a parameter: it follows from the two
// PSFs (basis_spec_for_psfs).
struct DiffimParameters {
  StarSelectionOptions stars{};
  int spatial_order = 1;     // of the kernel's basis coefficients over the CCD
  int background_order = 0;  // of the differential background
  double clip_sigma = 3.0;
  int max_iterations = 5;
  float detection_sigma = 5.0F;  // DETECTED / DETECTED_NEGATIVE on the difference
  std::string software_version{};  // written as SWVER (re-creation writes the recorded one)
};

// How a kernel was found.
enum class KernelSource {
  fit,    // fitted with the recipe's spatial order
  fit_constant,  // too few stars for that order: a spatially constant kernel fitted
  model,  // no usable star: the Gaussian that widens the template's PSF to the
          // science's, scaled by the photometric zero points
};
std::string_view to_string(KernelSource source);

struct DiffimKernel {
  PsfMatchingKernel kernel;
  KernelSource source = KernelSource::fit;
  std::size_t stamps = 0;  // star stamps used by the fit
};

// The PSF-matching kernel taking the warped template (on the science grid,
// the same size) to the science calexp: fitted on the calexp's bright
// isolated stars with the basis suited to the two PSFs (FWHM in science
// pixels). A CCD with too few stars for the recipe's spatial order gets a
// spatially constant kernel fitted on the stars it has (the survey's
// pipeline also lowers the kernel's freedom before it gives up); one without
// a single usable star gets the model kernel, a normalised Gaussian of width
// sqrt(sigma_s^2 - sigma_t^2) (at least 0.5 pixel) times model_scale, the
// template-to-science flux ratio its zero points give (template pixels in
// nJy, science in electrons: 10^(0.4 (MAGZERO - 31.4))). Deterministic: the
// same pixels give the same kernel.
DiffimKernel fit_diffim_kernel(const Exposure& science, const Exposure& warped_template, double science_fwhm_px,
                               double template_fwhm_px, double model_scale, const DiffimParameters& parameters);

// Marks the difference's own detections: DETECTED where D > nsigma
// sqrt(Var), DETECTED_NEGATIVE where D < -nsigma sqrt(Var) (pixel by pixel,
// so any box gets the bits of the whole). DETECTED also keeps the calexp's
// detections, which the difference mask inherits.
void mask_difference_detections(Exposure& difference, float nsigma);

// The difference image's headers: the calexp's primary metadata (its
// observation, PSF and background cards) with DSTYPE = diffim, the kernel's
// sum, size, source and stamps, the number of template patches, SWVER and DIFFVER; BUNIT
// electron (the template is scaled to the calexp by the kernel's sum).
ExposureHeaders diffim_headers(HeaderCards calexp_primary, const DiffimKernel& kernel, std::size_t template_patches,
                               const std::string& software_version);

// The template-to-science flux ratio of the model kernel from the calexp's
// MAGZERO (electrons); 0 when the header has none.
double model_kernel_scale(const HeaderCards& calexp_primary);

}  // namespace pixserve::image
