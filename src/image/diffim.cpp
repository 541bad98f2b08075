#include "image/diffim.hpp"

#include <cmath>

namespace pixserve::image {

PsfMatchingKernel fit_diffim_kernel(const Exposure& science, const Exposure& warped_template, double science_fwhm_px,
                                    double template_fwhm_px, const DiffimParameters& parameters) {
  PsfMatchOptions fit;
  fit.basis = basis_spec_for_psfs(template_fwhm_px, science_fwhm_px);
  fit.spatial_order = parameters.spatial_order;
  fit.background_order = parameters.background_order;
  fit.clip_sigma = parameters.clip_sigma;
  fit.max_iterations = parameters.max_iterations;
  // A star's stamp and the kernel's reach around it must be clean: the
  // footprint follows the basis chosen for these PSFs.
  StarSelectionOptions stars = parameters.stars;
  stars.footprint_half_size = 2L * fit.basis.half_size;
  const auto positions = find_psf_match_stars(science, stars);
  return fit_psf_matching_kernel(science, warped_template, positions, fit).kernel;
}

ExposureHeaders diffim_headers(HeaderCards calexp_primary, const PsfMatchingKernel& kernel,
                               std::size_t template_patches, const std::string& software_version) {
  ExposureHeaders h;
  h.primary = std::move(calexp_primary);
  h.primary.set("DSTYPE", "diffim", "dataset type");
  h.primary.set("KERNSUM", std::round(kernel.kernel_sum() * 1e8) / 1e8, "PSF-matching kernel sum (template to calexp)");
  h.primary.set("KERNSIZE", kernel.basis().kernel_width(), "[pixel] PSF-matching kernel width");
  h.primary.set("NTMPLATE", static_cast<long long>(template_patches), "number of template patches");
  h.primary.set("SWVER", software_version, "software that made the file");
  h.primary.set("DIFFVER", std::string(kDiffimVersion), "difference imaging version");
  h.image.set("BUNIT", "electron", "pixel unit");
  h.variance.set("BUNIT", "electron**2", "pixel unit");
  return h;
}

}  // namespace pixserve::image
