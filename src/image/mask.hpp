// Mask planes of calexp and coadd MASK HDUs: one bit per condition, named in
// the header as MP_<NAME> = bit (the LSST convention, same bit numbers), so
// readers decode masks from the file alone.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fits/fits.hpp"

namespace pixserve::image {

enum class MaskPlane : int {
  bad = 0,                // defective pixel (e.g. a dead column in the flat)
  saturated = 1,          // at or above the amplifier's saturation level
  interpolated = 2,       // value interpolated from neighbours
  cosmic_ray = 3,         // cosmic ray hit
  edge = 4,               // near the detector edge
  detected = 5,           // part of a source above the detection threshold
  detected_negative = 6,  // part of a negative source (difference images)
  suspect = 7,            // value of doubtful quality (e.g. near saturation)
  no_data = 8,            // no input data (coadds)
};

struct MaskPlaneInfo {
  MaskPlane plane;
  std::string_view name;  // keyword is MP_<name>
  std::string_view description;
};

inline constexpr std::array<MaskPlaneInfo, 9> kMaskPlanes{{
    {MaskPlane::bad, "BAD", "defective pixel"},
    {MaskPlane::saturated, "SAT", "saturated pixel"},
    {MaskPlane::interpolated, "INTRP", "interpolated value"},
    {MaskPlane::cosmic_ray, "CR", "cosmic ray"},
    {MaskPlane::edge, "EDGE", "near the detector edge"},
    {MaskPlane::detected, "DETECTED", "source pixel above threshold"},
    {MaskPlane::detected_negative, "DETECTED_NEGATIVE", "negative source pixel"},
    {MaskPlane::suspect, "SUSPECT", "doubtful value"},
    {MaskPlane::no_data, "NO_DATA", "no input data"},
}};

constexpr std::int32_t mask_bit(MaskPlane p) noexcept { return std::int32_t{1} << static_cast<int>(p); }

// Writes MP_<NAME> = bit for every plane into the current HDU.
void write_mask_keywords(fits::File& file);

// The bit of a plane named in the current HDU's MP_ keywords, if present.
std::optional<int> read_mask_bit(fits::File& file, std::string_view name);

}  // namespace pixserve::image
