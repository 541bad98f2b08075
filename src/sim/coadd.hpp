// deepCoadd patches: per band and patch, the inverse-variance weighted mean
// of the background-subtracted calexps warped onto the patch grid and scaled
// to a common flux unit (nJy), with mask, variance and the list of inputs.
#pragma once

#include <cstddef>
#include <filesystem>
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

// Builds every patch (of every band) that some calexp overlaps, in parallel
// over patches; writes deepCoadd/<band>/t<tract>/deepCoadd_<band>_t<tract>_p<x>_<y>.fits
// under out. Progress stage "coadd".
CoaddResult build_coadds(const SkyMap& skymap, const std::vector<CalexpInfo>& calexps, const std::filesystem::path& out,
                         unsigned threads, const ProgressCallback& progress);

}  // namespace pixserve::sim
