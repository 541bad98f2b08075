// Coadd patches: per band and patch, the inverse-variance weighted mean of
// the background-subtracted calexps warped onto the patch grid and scaled to
// a common flux unit (nJy), with mask, variance and the list of inputs.
// deepCoadd takes every calexp; goodSeeingCoadd (the difference-imaging
// templates) only those of the best-seeing visits of each band.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

#include "parallel/progress.hpp"
#include "sim/simulator.hpp"
#include "sim/skymap.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

// What the coadd needs to know of a calexp without reopening its header.
struct CalexpInfo {
  long long visit = 0;
  int detector = 0;
  char band = 'r';
  std::filesystem::path file;
  wcs::Wcs wcs;
  long width = 0, height = 0;
  double zero_point = 0.0;  // MAGZERO (electrons)
  double exposure_time = 0.0;
  double mjd_start = 0.0;
  double psf_fwhm_arcsec = 0.0;
  double variance_level = 0.0;  // typical (median) variance, electrons^2
};

struct CoaddResult {
  std::size_t patches = 0;
  std::size_t bytes = 0;
};

// AB magnitude of 1 nJy: coadd pixels are in nJy, so the flux of a source of
// magnitude m is 10^(-0.4 (m - kNanojanskyZeroPoint)).
inline constexpr double kNanojanskyZeroPoint = 31.4;

// A kind of coadd: its dataset type (DSTYPE, folder and file names) and
// the progress stage that builds it.
struct CoaddKind {
  std::string_view dataset_type;
  std::string_view stage;
};
inline constexpr CoaddKind kDeepCoadd{"deepCoadd", "coadd"};
inline constexpr CoaddKind kGoodSeeingCoadd{"goodSeeingCoadd", "template"};

// Builds every patch (of every band, in every tract) that one of calexps
// overlaps, from those calexps only, in parallel over patches; where
// tracts overlap, a calexp feeds the patches of each. Writes
// <type>/<band>/t<tract>/<type>_<band>_t<tract>_p<x>_<y>.fits under out
// (<type> = kind.dataset_type). Progress stage kind.stage.
CoaddResult build_coadds(const SkyMap& skymap, const std::vector<CalexpInfo>& calexps, const CoaddKind& kind,
                         const std::filesystem::path& out, unsigned threads, const ProgressCallback& progress);

// The calexps of the template set: per band, the visits_per_band visits
// with the best seeing (smallest PSF FWHM, the mean over the visit's
// calexps; ties: lower visit number), all of a band's visits when it has
// no more. In the order of calexps; none for visits_per_band <= 0.
std::vector<CalexpInfo> template_calexps(const std::vector<CalexpInfo>& calexps, int visits_per_band);

}  // namespace pixserve::sim
