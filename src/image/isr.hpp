// Instrument signature removal: from a raw file (one integer HDU per
// amplifier with prescan and serial overscan columns) and the detector's bias
// and flat to a processed exposure in electrons with mask and variance.
//
// Units: raw pixels in ADU; GAIN in electrons per ADU; RDNOISE in electrons;
// SATURATE in raw ADU; bias frames in electrons (overscan-subtracted fixed
// pattern); flats dimensionless (near 1); results in electrons.
//
// The steps are separate functions so other code (re-creating a calexp on
// demand, tests) can run or check each on its own; run_isr strings them
// together in the standard order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/section.hpp"
#include "image/statistics.hpp"

namespace pixserve::image {

// Version of the ISR algorithm, written as ISRVER into processed files.
inline constexpr std::string_view kIsrVersion = "pixserve-isr-1.0";

// One amplifier's geometry and electronics as its raw HDU header states them.
struct Amplifier {
  std::string name;  // EXTNAME
  Section datasec;   // image pixels within the raw amplifier HDU
  Section biassec;   // serial overscan columns
  std::optional<Section> prescan;
  Section detsec;           // where DATASEC lands in the assembled detector; reversed axes flip
  double gain = 1.0;        // electrons per ADU
  double read_noise = 0.0;  // electrons
  double saturation = std::numeric_limits<double>::infinity();  // ADU
};

// Reads DATASEC, BIASSEC, PRESCAN, DETSEC, GAIN, RDNOISE, SATURATE of the
// current HDU. Throws std::invalid_argument when a needed keyword is missing
// or DATASEC and DETSEC differ in size.
Amplifier read_amplifier(fits::File& file);

enum class OverscanStatistic { mean, median };

struct OverscanOptions {
  OverscanStatistic statistic = OverscanStatistic::mean;
  // Leading overscan columns to skip (charge trailing from the last image column).
  long skip_columns = 0;
  // Half-width (rows) of a running mean over the per-row levels: the bias
  // drifts slowly along the readout, while each row's level carries read
  // noise / sqrt(columns). 0: use each row's own level.
  long smoothing_rows = 0;
};

// The overscan level of every raw row (index = 0-based raw row).
std::vector<double> overscan_levels(const fits::Image<std::int32_t>& raw, const Section& biassec,
                                    const OverscanOptions& options);

// The DATASEC pixels minus their row's overscan level, in DATASEC order: pixel
// (i, j) is raw pixel (datasec.column(i), datasec.row(j)). Still in ADU.
fits::Image<float> subtract_overscan(const fits::Image<std::int32_t>& raw, const Amplifier& amp,
                                     const OverscanOptions& options);

// Copies amplifier pixels given in DATASEC order into the detector image at
// DETSEC: pixel (i, j) goes to (detsec.column(i), detsec.row(j)), which
// applies the readout flips. Throws std::invalid_argument when the sizes
// disagree or DETSEC leaves the detector.
template <typename T>
void assemble_amplifier(fits::Image<T>& detector, const fits::Image<T>& amp_pixels, const Section& detsec);

// A mask (in DATASEC order) with the SAT bit where the raw value reaches
// the amplifier's saturation level.
fits::Image<std::int32_t> saturation_mask(const fits::Image<std::int32_t>& raw, const Amplifier& amp);

// image -= bias (same size, else std::invalid_argument).
void subtract_bias(fits::Image<float>& image, const fits::Image<float>& bias);

// Variance in electrons^2 of a bias-subtracted image in electrons before
// flat-fielding: Poisson (the signal itself, floored at 0) plus read noise^2.
fits::Image<float> poisson_variance(const fits::Image<float>& electrons, const fits::Image<float>& read_noise_sq);

// Flat-fields image and variance (image / flat, variance / flat^2). Pixels
// whose flat is below bad_threshold are marked BAD; where the flat is not
// positive and finite there is no measurement: NaN, BAD and NO_DATA.
void divide_flat(Exposure& exposure, const fits::Image<float>& flat, float bad_threshold);

// EDGE for the pixels within width of the detector border.
void mask_edges(fits::Image<std::int32_t>& mask, long width);

// The same for a mask covering only region of a detector of
// detector_width x detector_height (mask pixel (0, 0) is detector pixel
// (region.x0, region.y0)): exactly the EDGE bits of that region of the whole
// detector's mask. Throws std::invalid_argument when the mask is not
// region-sized.
void mask_edges(fits::Image<std::int32_t>& mask, long width, const fits::PixelBox& region, long detector_width,
                long detector_height);

// DETECTED where image > nsigma * sqrt(variance) (a background-subtracted image).
void mask_detected(Exposure& exposure, float nsigma);

struct IsrOptions {
  OverscanOptions overscan{OverscanStatistic::mean, 0, 8};
  long edge_width = 4;              // pixels marked EDGE
  float bad_flat_threshold = 0.5F;  // flat response below this is a defect
  bool subtract_background = true;  // subtract the measured sky level
  float detection_sigma = 5.0F;     // DETECTED threshold
  double psf_sigma_guess = 2.0;     // pixels, first guess for the PSF measurement
};

struct IsrResult {
  Exposure exposure;               // electrons (background subtracted if asked)
  BackgroundStats background;      // the sky measured after flat-fielding
  std::optional<double> psf_fwhm;  // pixels, measured from stars
  long saturated_pixels = 0;
};

// DETSIZE of the raw file's primary HDU (the detector's size). Throws
// std::invalid_argument when there is none.
Section read_detsize(fits::File& raw);

// The per-pixel part of ISR over a box of the detector.
struct IsrBoxResult {
  Exposure exposure;  // box-sized, electrons, background NOT subtracted, no DETECTED
  // SAT pixels within the box (over the whole detector: run_isr's count).
  long saturated_pixels = 0;
};

// Overscan, assembly, gain, bias, variance, flat, SAT, BAD, NO_DATA (pixels
// no amplifier reads) and EDGE for the pixels of box (0-based, inside
// DETSIZE) only: bias_box and flat_box are the calibrations' pixels over box.
// Reads the pixels of just the amplifier HDUs whose DETSEC overlaps the box:
// their overscan columns over the amplifier's full height (so the row levels
// and their smoothing are those of the whole detector) and the DATASEC pixels
// that land in the box. Every amplifier header is still checked as run_isr
// checks it. The result equals, bit for bit, run_isr's pixels over box before
// its background subtraction (run_isr runs this over the whole detector).
// Throws std::invalid_argument for a box outside DETSIZE or calibrations of
// another size than the box.
IsrBoxResult run_isr_box(fits::File& raw, const fits::Image<float>& bias_box, const fits::Image<float>& flat_box,
                         const fits::PixelBox& box, const IsrOptions& options = {});

// What ISR does to the pixels once the background is known (measured over
// the whole detector, perhaps earlier): DETECTED where the image minus
// background.level exceeds options.detection_sigma sigma, and the image left
// background-subtracted when options.subtract_background. Per pixel, so it
// gives the same pixels on a box as on the whole detector.
void apply_background(Exposure& exposure, const BackgroundStats& background, const IsrOptions& options);

// Reads DETSIZE from the primary HDU and every amplifier HDU (those with
// DATASEC) of the raw file, then: overscan, assembly, gain, bias, variance,
// flat, masks (run_isr_box over the whole detector), background, PSF. bias
// and flat must have the DETSIZE shape.
IsrResult run_isr(fits::File& raw, const fits::Image<float>& bias, const fits::Image<float>& flat,
                  const IsrOptions& options = {});

// The float plane of a calibration file (HDU IMAGE, else the first image with pixels).
fits::Image<float> read_calibration(const std::filesystem::path& path);

// The pixels over box of that plane, which must be detector_width x
// detector_height (else std::invalid_argument); reads only the box.
fits::Image<float> read_calibration(const std::filesystem::path& path, const fits::PixelBox& box,
                                    long detector_width, long detector_height);

}  // namespace pixserve::image
