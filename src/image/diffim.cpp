#include "image/diffim.hpp"

#include <algorithm>
#include <cmath>

#include "image/difference.hpp"
#include "image/isr.hpp"
#include "image/statistics.hpp"

namespace pixserve::image {

std::string_view to_string(KernelSource source) {
  switch (source) {
    case KernelSource::fit: return "fit";
    case KernelSource::fit_constant: return "fit-constant";
    case KernelSource::model: return "model";
  }
  return "fit";
}

namespace {

constexpr double kDiffimFwhmPerSigma = 2.354820045;

// The model kernel: one normalised Gaussian (degree 0), spatially constant,
// no differential background.
PsfMatchingKernel model_kernel(const KernelBasisSpec& fitted_basis, long width, long height, double science_fwhm_px,
                               double template_fwhm_px, double scale) {
  const double ss = science_fwhm_px / kDiffimFwhmPerSigma, st = template_fwhm_px / kDiffimFwhmPerSigma;
  KernelBasisSpec spec;
  spec.half_size = fitted_basis.half_size;
  spec.gaussians = {{std::sqrt(std::max(ss * ss - st * st, 0.25)), 0}};
  return PsfMatchingKernel(spec, width, height, 0, 0, {scale}, {0.0});
}

// A constant differential background measured on the stamps around a few
// stars is biased by their wings; the difference image's own sky is the
// better measurement. The kernel's constant background term is moved by the
// clipped median of the difference over the pixels with no source and no
// defect (the whole CCD, once). Higher-order backgrounds stay as fitted.
PsfMatchingKernel with_sky_background(PsfMatchingKernel kernel, const Exposure& science, const Exposure& tmpl) {
  if (kernel.background_order() != 0) return kernel;
  const Exposure difference = subtract_template(science, tmpl, kernel);
  const std::int32_t reject = kPsfMatchRejectBits | mask_bit(MaskPlane::detected) |
                              mask_bit(MaskPlane::detected_negative);
  const BackgroundStats sky = estimate_background(difference.image, &difference.mask, reject);
  if (sky.samples == 0 || !std::isfinite(sky.level)) return kernel;
  std::vector<double> coefficients(kernel.coefficients().begin(), kernel.coefficients().end());
  return PsfMatchingKernel(kernel.basis().spec(), kernel.frame_width(), kernel.frame_height(), kernel.spatial_order(),
                           0, std::move(coefficients), {kernel.background().front() + sky.level});
}

}  // namespace

DiffimKernel fit_diffim_kernel(const Exposure& science, const Exposure& warped_template, double science_fwhm_px,
                               double template_fwhm_px, double model_scale, const DiffimParameters& parameters) {
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
  auto used = [](const PsfMatchResult& r) {
    return static_cast<std::size_t>(std::count_if(r.stamps.begin(), r.stamps.end(),
                                                  [](const StampFit& s) { return s.status == StampStatus::used; }));
  };
  try {
    auto r = fit_psf_matching_kernel(science, warped_template, positions, fit);
    return {with_sky_background(std::move(r.kernel), science, warped_template), KernelSource::fit, used(r)};
  } catch (const PsfMatchError&) {
  }
  if (fit.spatial_order > 0 || fit.background_order > 0) {
    fit.spatial_order = 0;
    fit.background_order = 0;
    fit.min_stamps = 1;
    try {
      auto r = fit_psf_matching_kernel(science, warped_template, positions, fit);
      return {with_sky_background(std::move(r.kernel), science, warped_template), KernelSource::fit_constant, used(r)};
    } catch (const PsfMatchError&) {
    }
  }
  if (!(model_scale > 0.0 && std::isfinite(model_scale))) {
    throw PsfMatchError("no usable star to fit the PSF-matching kernel on, and no zero points for a model kernel");
  }
  return {model_kernel(fit.basis, science.width(), science.height(), science_fwhm_px, template_fwhm_px, model_scale),
          KernelSource::model, 0};
}

ExposureHeaders diffim_headers(HeaderCards calexp_primary, const DiffimKernel& kernel, std::size_t template_patches,
                               const std::string& software_version) {
  ExposureHeaders h;
  h.primary = std::move(calexp_primary);
  h.primary.set("DSTYPE", "diffim", "dataset type");
  h.primary.set("KERNSUM", std::round(kernel.kernel.kernel_sum() * 1e8) / 1e8,
                "PSF-matching kernel sum (template to calexp)");
  h.primary.set("KERNSIZE", kernel.kernel.basis().kernel_width(), "[pixel] PSF-matching kernel width");
  h.primary.set("KERNSRC", std::string(to_string(kernel.source)), "kernel: fit, fit-constant or model");
  h.primary.set("KERNSTMP", static_cast<long long>(kernel.stamps), "star stamps the kernel was fitted on");
  h.primary.set("NTMPLATE", static_cast<long long>(template_patches), "number of template patches");
  h.primary.set("SWVER", software_version, "software that made the file");
  h.primary.set("DIFFVER", std::string(kDiffimVersion), "difference imaging version");
  h.image.set("BUNIT", "electron", "pixel unit");
  h.variance.set("BUNIT", "electron**2", "pixel unit");
  return h;
}

void mask_difference_detections(Exposure& difference, float nsigma) {
  mask_detected(difference, nsigma);
  const std::int32_t negative = mask_bit(MaskPlane::detected_negative);
  for (std::size_t k = 0; k < difference.image.pixels.size(); ++k) {
    const float var = difference.variance.pixels[k];
    if (var > 0.0F && difference.image.pixels[k] < -nsigma * std::sqrt(var)) difference.mask.pixels[k] |= negative;
  }
}

double model_kernel_scale(const HeaderCards& calexp_primary) {
  // Template coadds are in nJy: AB magnitude 31.4 is 1 nJy.
  constexpr double kNanojanskyMagnitude = 31.4;
  // MAGZERO is the magnitude of one electron per second.
  const auto zero_point = card_number(calexp_primary, "MAGZERO");
  const auto exposure_time = card_number(calexp_primary, "EXPTIME");
  if (!zero_point || !exposure_time || !(*exposure_time > 0.0)) return 0.0;
  return *exposure_time * std::pow(10.0, 0.4 * (*zero_point - kNanojanskyMagnitude));
}

}  // namespace pixserve::image
