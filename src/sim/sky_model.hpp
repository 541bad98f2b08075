// The synthetic sky: a catalogue fixed by the seed over a disc of a few
// square degrees, of stars (power-law magnitudes), galaxies (elliptical
// Gaussian profiles), variable stars (sinusoidal light curves) and one
// moving object (linear motion), with magnitudes in all six bands.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "sim/simulator.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {

enum class ObjectType { star, galaxy, variable_star, moving };
const char* to_string(ObjectType t);

struct SkyObject {
  std::int64_t id = 0;
  ObjectType type = ObjectType::star;
  sky::SkyPoint position;       // at motion_epoch for the moving object
  std::array<double, 6> mag{};  // ugrizy, mean for variables
  // Galaxies: intrinsic elliptical Gaussian.
  double half_light_radius_arcsec = 0.0;
  double axis_ratio = 1.0;
  double position_angle_deg = 0.0;  // of the major axis, east of north
  // Variable stars: mag(t) = mag + amplitude * sin(2 pi (t - epoch) / period).
  double amplitude = 0.0;
  double period_days = 0.0;
  double variability_epoch = 0.0;
  // The moving object: position(t) = position + rate * (t - epoch), with
  // rates in degrees per day on the sky (east, north).
  double motion_epoch = 0.0;
  double rate_east_deg_per_day = 0.0;
  double rate_north_deg_per_day = 0.0;
};

class SkyModel {
 public:
  static SkyModel generate(const SurveyConfig& config);

  const std::vector<SkyObject>& objects() const noexcept { return objects_; }

  static sky::SkyPoint position_at(const SkyObject& o, double mjd);
  static double magnitude_at(const SkyObject& o, int band_index, double mjd);

  // Objects whose position at mjd may lie within radius_deg of center
  // (a cheap superset test on unit vectors; callers project exactly).
  std::vector<const SkyObject*> near(const sky::SkyPoint& center, double radius_deg, double mjd) const;

  // One row per object: id, type, ra, dec, u..y, shape, variability, motion.
  void write_truth_csv(const std::filesystem::path& path) const;

 private:
  std::vector<SkyObject> objects_;
  std::vector<sky::Vec3> vectors_;  // unit vectors of the fixed positions
};

}  // namespace pixserve::sim
