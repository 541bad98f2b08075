// The survey simulator: a fixed synthetic sky observed by an LSST-like
// camera (one 3x3 raft), written as the files a survey produces (raw,
// bias, flat, calexp, calexp_comp, deepCoadd, goodSeeingCoadd; see
// docs/fits-conventions.md)
// plus truth.csv and the engineering tables efd/weather.csv and
// efd/visit_summary.csv (sim/efd.hpp). Deterministic for a seed: the same configuration writes the
// same bytes whatever the thread count.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "parallel/progress.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {

struct SurveyConfig {
  unsigned long long seed = 42;
  int visits = 12;
  int detectors = 9;          // 1..9 of the 3x3 raft, centre first
  std::string bands = "gri";  // letters of ugrizy, cycled over visits
  long detector_width = 512;
  long detector_height = 512;
  bool headers_only = false;  // full headers and WCS, header-only image HDUs, no coadds
  bool write_coadds = true;   // deepCoadd and goodSeeingCoadd patches
  // Difference-imaging templates: per band, the goodSeeingCoadd patches are
  // built from this many visits of the band, those with the best seeing
  // (smallest measured PSF FWHM, the mean over the visit's calexps; ties:
  // lower visit number). 0: no templates.
  int template_visits = 2;
  bool write_calexp_comp = true;
  // false: calexps are made (coadds need them) but not written; ingest then
  // registers virtual calexps, re-created from raw, bias and flat.
  bool write_calexps = true;
  int threads = 0;  // 0: one per core

  // Sky and survey geometry.
  sky::SkyPoint field_center{53.0, -28.0};
  double pixel_scale_arcsec = 0.2;
  double field_radius_deg = 1.0;          // the synthetic sky covers this disc
  double star_density_per_deg2 = 8000.0;  // stars of 16-24.5 mag
  double galaxy_density_per_deg2 = 1000.0;
  double variable_fraction = 0.01;   // of the stars
  double dither_fraction = 0.35;     // pointing offsets up to this fraction of the raft width
  // 0: every visit points at the field centre (plus its dither). Otherwise
  // the pointings tile a disc of this radius (degrees) around the field
  // centre: a square grid of positions one raft width apart, visited in
  // turn (consecutive visits at one position cycle through the bands),
  // each visit dithered around its position as above. The sky disc
  // (field_radius_deg) grows to hold every pointing.
  double pointing_radius_deg = 0.0;
  double exposure_time = 30.0;       // seconds
  double first_night_mjd = 61000.0;  // TAI
  int visits_per_night = 6;
  double visit_spacing_minutes = 10.0;
  long long first_visit = 1000001;  // visit numbers count up from here

  // Sky map of the coadds (sim/skymap.hpp): TAN tracts at the pixel scale,
  // cut into patches of patch_size (outer, including patch_border on each
  // side) pixels. "pixserve-tract": one tract (0) tract_size_deg wide
  // centred on the field (grown to hold every pointing).
  // "pixserve-rings": tracts tiling the sphere in rings of declination at
  // most tract_size_deg apart, each grown by tract_overlap_deg on every
  // side beyond its own cell.
  std::string skymap = "pixserve-tract";
  double tract_size_deg = 2.0;
  double tract_overlap_deg = 0.05;
  long patch_size = 2000;
  long patch_border = 100;

  float compression_q = 16.0F;  // calexp_comp quantization (noise / q)
};

struct SurveySummary {
  std::size_t files_written = 0;
  std::size_t raws = 0, calibrations = 0, calexps = 0, compressed = 0, coadds = 0;
  std::size_t templates = 0;  // goodSeeingCoadd patches
  std::size_t bytes_written = 0;
  double seconds = 0.0;
};

// Writes the survey under out (created if needed; existing files of the same
// names are replaced):
//   truth.csv                          the sky model
//   efd/weather.csv                    site weather every 30 s through each night (R-EFD, sim/efd.hpp)
//   efd/visit_summary.csv              the weather during each visit's exposure, and its airmass
//   calib/bias/bias_<raft>_<det>.fits  per detector
//   calib/flat/<band>/flat_<band>_<raft>_<det>.fits
//   raw/v<visit>/raw_<visit>_<raft>_<det>.fits
//   calexp/v<visit>/calexp_<visit>_<raft>_<det>.fits
//   calexp_comp/v<visit>/calexp_comp_<visit>_<raft>_<det>.fits.fz
//   deepCoadd/<band>/t<tract>/deepCoadd_<band>_t<tract>_p<x>_<y>.fits
//   goodSeeingCoadd/<band>/t<tract>/goodSeeingCoadd_<band>_t<tract>_p<x>_<y>.fits
// The goodSeeingCoadd patches (difference-imaging templates) are built as
// the deepCoadd ones, from the calexps of the template_visits best-seeing
// visits of each band only. Without write_coadds, or with headers_only,
// neither coadd is written. Progress stages: "efd", "calib", "exposures" (raw +
// calexp + calexp_comp per visit and detector), "coadd", "template". Throws
// std::invalid_argument for an unusable configuration.
SurveySummary simulate(const SurveyConfig& config, const std::filesystem::path& out,
                       const ProgressCallback& progress = {});

}  // namespace pixserve::sim
