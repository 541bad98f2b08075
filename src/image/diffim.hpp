// A difference image of a calexp (processed visit image) against a template
// (coadd patches warped onto the calexp's pixel grid): the PSF-matching
// kernel fitted on the calexp's bright isolated stars, and the header that
// the difference image carries. The pixels are image::subtract_template's;
// the warp is image/template_warp.hpp's. Re-creating a difference image with
// the same inputs, parameters and kernel gives the same bytes.
#pragma once

#include <cstddef>
#include <string>

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
  std::string software_version{};  // written as SWVER (re-creation writes the recorded one)
};

// Fits the PSF-matching kernel taking the warped template (on the science
// grid, the same size) to the science calexp, on the calexp's bright
// isolated stars, with the basis suited to the two PSFs (FWHM in science
// pixels). Throws PsfMatchError when there are too few usable stars.
PsfMatchingKernel fit_diffim_kernel(const Exposure& science, const Exposure& warped_template, double science_fwhm_px,
                                    double template_fwhm_px, const DiffimParameters& parameters);

// The difference image's headers: the calexp's primary metadata (its
// observation, PSF and background cards) with DSTYPE = diffim, the kernel's
// sum and size, the number of template patches, SWVER and DIFFVER; BUNIT
// electron (the template is scaled to the calexp by the kernel's sum).
ExposureHeaders diffim_headers(HeaderCards calexp_primary, const PsfMatchingKernel& kernel,
                               std::size_t template_patches, const std::string& software_version);

}  // namespace pixserve::image
