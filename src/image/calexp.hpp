// A processed visit image (calexp) made from a raw and its detector's bias
// and flat: the instrument signature removal of image/isr.hpp plus the
// calexp's header. The simulator makes the stored calexps with this code and
// the services re-create unstored (virtual) ones with it, so re-creating a
// calexp from the same inputs and the same software gives the same bytes
// (every header card is derived from the raw's header, the measurements and
// the recipe; no card carries the time of writing).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

// What a calexp is made from besides its input files, as a recipe records
// it: ISR's settings and the version of the software that wrote the file
// (SWVER; re-creation writes the recorded one, since it must reproduce the
// original file).
struct CalexpParameters {
  IsrOptions isr{};
  // PSF first guess in pixels: 0 derives it from the raw's SEEING (arcsec)
  // and its WCS's pixel scale.
  double psf_sigma_guess = 0.0;
  std::string software_version{};
};

// What processing measures over the whole detector and a calexp's pixels
// and header depend on: with these stored (plain numbers; doubles survive a
// JSON round trip), any box of the calexp can be re-created from the raw
// and calibrations over that box alone (make_calexp_box).
struct CalexpMeasurements {
  BackgroundStats background;                  // sky level and noise, over the whole detector
  std::optional<double> psf_fwhm_arcsec;       // nullopt: no stars were measured
};

struct Calexp {
  Exposure exposure;
  ExposureHeaders headers;
  wcs::Wcs wcs;
  BackgroundStats background;      // measured over the whole detector
  std::optional<double> psf_fwhm;  // arcsec, measured from stars

  CalexpMeasurements measurements() const { return {background, psf_fwhm}; }
};

// A calexp's file apart from its pixels.
struct CalexpHeader {
  ExposureHeaders headers;
  wcs::Wcs wcs;
  long width = 0;  // DETSIZE
  long height = 0;
};

// Runs ISR on the raw file and derives the header: the raw's primary cards
// (observation metadata, with DSTYPE = calexp) followed by what processing
// measured (PSFFWHM, BGMEAN, BGRMS), MAGZERO from the raw, SWVER and
// ISRVER. Throws std::invalid_argument for a raw without DETSIZE, SEEING,
// MAGZERO or amplifiers, fits::FitsError / wcs::WcsError for unreadable input.
Calexp make_calexp(const std::filesystem::path& raw, const fits::Image<float>& bias, const fits::Image<float>& flat,
                   const CalexpParameters& parameters);

// The header make_calexp derives (make_calexp uses this function, so the two
// agree card for card) from the raw's header and stored measurements: reads
// only the raw's primary header. Throws as make_calexp does for a raw without
// DETSIZE, SEEING or MAGZERO.
CalexpHeader calexp_header(const std::filesystem::path& raw, const CalexpParameters& parameters,
                           const CalexpMeasurements& measurements);

// The calexp's exposure over box (0-based, inside DETSIZE) from its inputs
// and the measurements of its whole-detector run (Calexp::measurements()):
// run_isr_box on the amplifiers the box overlaps, with bias and flat read
// over the box only, then the stored background applied (apply_background).
// Bit for bit make_calexp(...).exposure restricted to box, given the same
// parameters and measurements. Does not check SEEING or MAGZERO (the
// measurements come from a make_calexp that did).
Exposure make_calexp_box(const std::filesystem::path& raw, const std::filesystem::path& bias,
                         const std::filesystem::path& flat, const CalexpParameters& parameters,
                         const CalexpMeasurements& measurements, const fits::PixelBox& box);

// The calexp header from the observation's cards and what processing
// measured (the part of make_calexp that needs no pixels; a headers-only
// simulation writes it from the values it planned).
ExposureHeaders calexp_headers(HeaderCards observation, double psf_fwhm_arcsec, const BackgroundStats& background,
                               bool background_subtracted, const std::string& software_version);

// Writes the calexp in the exposure layout (image/exposure.hpp) with a
// DATASUM in every HDU.
void write_calexp(const std::filesystem::path& path, const Calexp& calexp);

}  // namespace pixserve::image
