// The observing plan: bands and their photometric properties, and the
// visits (time, pointing, rotation, airmass, seeing, weather, zero point,
// sky level), all drawn deterministically from the survey seed.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sim/simulator.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {

// One of ugrizy. Zero points and dark-sky brightness follow the LSST
// system (electrons per second for AB magnitude zp; sky in mag/arcsec^2).
struct BandInfo {
  char band;
  int index;  // 0..5 in ugrizy order
  std::string_view physical_filter;
  double zero_point;     // AB mag giving 1 electron/s at airmass 1
  double extinction;     // mag per airmass
  double sky_mag;        // dark sky, mag/arcsec^2
  double wavelength_nm;  // effective wavelength
};

// Throws std::invalid_argument for a letter outside ugrizy.
const BandInfo& band_info(char band);

// Rubin Observatory's site, for airmass and sidereal time.
struct Site {
  static constexpr double longitude_deg = -70.7494;
  static constexpr double latitude_deg = -30.2444;
  static constexpr double elevation_m = 2663.0;
};

struct Visit {
  int index = 0;     // 0-based position in the plan
  long long id = 0;  // VISIT (= EXPOSURE)
  const BandInfo* band = nullptr;
  double mjd_start = 0.0;  // TAI
  double exposure_time = 0.0;
  sky::SkyPoint pointing;     // boresight (RATEL, DECTEL)
  double rotation_deg = 0.0;  // ROTPA: position angle of the focal plane's +y axis, east of north
  double hour_angle_deg = 0.0;
  double airmass = 1.0;
  double seeing_arcsec = 0.8;  // delivered PSF FWHM
  double zero_point = 0.0;     // AB mag for 1 electron/s this visit (after extinction, clouds)
  double sky_electrons = 0.0;  // sky per pixel over the exposure
  double humidity = 0.0, pressure = 0.0, air_temperature = 0.0, wind_speed = 0.0;

  double mjd_mid() const noexcept { return mjd_start + 0.5 * exposure_time / 86400.0; }
};

// The visits of a survey. raft_width_deg sets the dither amplitude and,
// with a pointing disc (pointing_radius_deg > 0), the spacing of its grid
// of positions (raft_width_deg / sqrt(2), so rafts at any rotation leave
// no hole between positions).
std::vector<Visit> plan_visits(const SurveyConfig& config, double raft_width_deg);

// The pointing positions: (east, north) offsets in degrees from the field
// centre, row by row from the south-west, of the square grid points within
// pointing_radius_deg; just (0, 0) without a pointing disc. Visit i points
// at position (i / number of bands) mod count, dithered around it.
std::vector<std::pair<double, double>> pointing_grid_positions(const SurveyConfig& config, double raft_width_deg);

// Local apparent sidereal time (degrees) at the site; TAI stands in for UT1
// (37 s = 0.15 deg, irrelevant for a simulation's airmass).
double local_sidereal_time_deg(double mjd);

// A point offset from `center` by (east, north) degrees in the tangent plane.
sky::SkyPoint offset_tangent(const sky::SkyPoint& center, double east_deg, double north_deg);

}  // namespace pixserve::sim
