// The files of a simulated survey: where each lives under the output
// directory, and the primary-header metadata each carries (the keywords of
// docs/fits-conventions.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "image/header.hpp"
#include "sim/camera.hpp"
#include "sim/observing.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

inline constexpr std::string_view kInstrument = "PixSimCam";
inline constexpr std::string_view kTelescope = "PixSim Survey Telescope";
inline constexpr std::string_view kFieldName = "PIXSIM-DEEP";


namespace paths {
std::filesystem::path bias(const DetectorInfo& det);
std::filesystem::path flat(const DetectorInfo& det, const BandInfo& band);
std::filesystem::path raw(const Visit& visit, const DetectorInfo& det);
std::filesystem::path calexp(const Visit& visit, const DetectorInfo& det);
std::filesystem::path calexp_comp(const Visit& visit, const DetectorInfo& det);
// <dataset_type>/<band>/t<tract>/<dataset_type>_<band>_t<tract>_p<x>_<y>.fits, for
// deepCoadd and goodSeeingCoadd.
std::filesystem::path coadd(std::string_view dataset_type, char band, int tract, const std::string& patch_token);
}  // namespace paths

// Primary header of a visit's files (raw, calexp): data ID, time (TAI),
// pointing, airmass, seeing, weather, detector size.
image::HeaderCards observation_cards(std::string_view dstype, const Visit& visit, const DetectorInfo& det,
                                     const Camera& camera);

// Primary header of a calibration: type, detector, band (flats).
image::HeaderCards calibration_cards(std::string_view dstype, const DetectorInfo& det, const BandInfo* band);

// Writes a raw file: primary header (cards, WCS, DETSIZE) and one int32 HDU
// per amplifier with its section and electronics keywords. Without pixels
// (empty vector) the amplifier HDUs are header-only.
void write_raw(const std::filesystem::path& path, const image::HeaderCards& primary, const wcs::Wcs& wcs,
               const std::vector<AmplifierSpec>& amps, const std::vector<fits::Image<std::int32_t>>& pixels);

// Writes a calibration: primary header and an IMAGE HDU (float32) with
// plane_cards, or a header-only IMAGE HDU when plane is null.
void write_calibration(const std::filesystem::path& path, const image::HeaderCards& primary,
                       const fits::Image<float>* plane, const image::HeaderCards& plane_cards);

}  // namespace pixserve::sim
