#include "sim/observing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <utility>

#include "sim/random.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {
namespace {

using sky::kDeg;
constexpr double kSiderealRate = 360.98564736629;     // GMST degrees per day
constexpr double kSiderealDay = 1.0 / 1.00273790935;  // days

// LSST throughputs (SMTN-002): zero points for 1 e-/s, extinction, dark sky.
constexpr std::array<BandInfo, 6> kBands{{
    {'u', 0, "u_24", 26.52, 0.47, 22.96, 367.0},
    {'g', 1, "g_6", 28.51, 0.21, 22.26, 482.0},
    {'r', 2, "r_57", 28.36, 0.13, 21.20, 622.0},
    {'i', 3, "i_39", 28.17, 0.10, 20.48, 754.0},
    {'z', 4, "z_20", 27.78, 0.07, 19.60, 869.0},
    {'y', 5, "y_10", 26.82, 0.17, 18.61, 971.0},
}};

// Kasten & Young (1989): finite airmass down to the horizon.
double airmass_at_altitude(double alt_deg) {
  alt_deg = std::max(alt_deg, 5.0);
  return 1.0 / (std::sin(alt_deg * kDeg) + 0.50572 * std::pow(alt_deg + 6.07995, -1.6364));
}

std::vector<std::pair<double, double>> pointing_grid(double radius, double spacing) {
  if (!(radius > 0.0)) return {{0.0, 0.0}};
  const int n = static_cast<int>(std::floor(radius / spacing + 1e-9));
  std::vector<std::pair<double, double>> out;
  for (int iy = -n; iy <= n; ++iy) {
    for (int ix = -n; ix <= n; ++ix) {
      const double e = ix * spacing, nn = iy * spacing;
      if (std::hypot(e, nn) <= radius + 1e-9) out.emplace_back(e, nn);
    }
  }
  return out;
}

}  // namespace

const BandInfo& band_info(char band) {
  for (const auto& b : kBands) {
    if (b.band == band) return b;
  }
  throw std::invalid_argument(fmt::format("band '{}' is not one of ugrizy", band));
}

double local_sidereal_time_deg(double mjd) {
  const double gmst = 280.46061837 + kSiderealRate * (mjd - 51544.5);
  return sky::normalize_ra(gmst + Site::longitude_deg);
}

sky::SkyPoint offset_tangent(const sky::SkyPoint& center, double east_deg, double north_deg) {
  const double xi = east_deg * kDeg, eta = north_deg * kDeg;
  const double d0 = center.dec * kDeg;
  const double dec = std::asin((std::sin(d0) + eta * std::cos(d0)) / std::sqrt(1.0 + xi * xi + eta * eta));
  const double dra = std::atan2(xi, std::cos(d0) - eta * std::sin(d0));
  return {sky::normalize_ra(center.ra + dra / kDeg), dec / kDeg};
}

std::vector<std::pair<double, double>> pointing_grid_positions(const SurveyConfig& config, double raft_width_deg) {
  // The spacing is the diameter of the circle inscribed in a raft over
  // sqrt(2): whatever its rotation, a raft covers its grid square.
  return pointing_grid(config.pointing_radius_deg, raft_width_deg / std::sqrt(2.0));
}

std::vector<Visit> plan_visits(const SurveyConfig& config, double raft_width_deg) {
  if (config.bands.empty()) throw std::invalid_argument("no bands to observe");
  if (config.visits_per_night < 1) throw std::invalid_argument("visits_per_night must be at least 1");
  // Each night starts when the field is 1.5 h east of the meridian, so the
  // visits run through transit at low airmass.
  const double target_lst = config.field_center.ra - 22.5;
  const double wait = std::fmod(target_lst - local_sidereal_time_deg(config.first_night_mjd) + 720.0, 360.0);
  const double first_start = config.first_night_mjd + wait / kSiderealRate;

  // Where the visits point: the field centre, or in turn the positions of
  // a grid over the pointing disc, each for one visit per band.
  const auto grid = pointing_grid_positions(config, raft_width_deg);
  const std::size_t per_position = config.pointing_radius_deg > 0.0 ? config.bands.size() : 1;

  std::vector<Visit> visits;
  visits.reserve(static_cast<size_t>(config.visits));
  for (int i = 0; i < config.visits; ++i) {
    Rng rng(config.seed, Stream::visit, {static_cast<std::uint64_t>(i)});
    Visit v;
    v.index = i;
    v.id = config.first_visit + i;
    v.band = &band_info(config.bands[static_cast<size_t>(i) % config.bands.size()]);
    const int night = i / config.visits_per_night;
    const int slot = i % config.visits_per_night;
    v.mjd_start = first_start + night * kSiderealDay + slot * config.visit_spacing_minutes / 1440.0;
    // Round to whole milliseconds: DATE-OBS and MJD-OBS then agree exactly.
    v.mjd_start = std::round(v.mjd_start * 86400000.0) / 86400000.0;
    v.exposure_time = config.exposure_time;

    // Dithered pointing: uniform within a disc, and a random rotation.
    const double r = config.dither_fraction * raft_width_deg * std::sqrt(rng.uniform());
    const double theta = 2.0 * std::numbers::pi * rng.uniform();
    const auto& [grid_east, grid_north] = grid[(static_cast<std::size_t>(i) / per_position) % grid.size()];
    const sky::SkyPoint position =
        grid.size() == 1 ? config.field_center : offset_tangent(config.field_center, grid_east, grid_north);
    v.pointing = offset_tangent(position, r * std::cos(theta), r * std::sin(theta));
    v.rotation_deg = rng.uniform(-45.0, 45.0);

    double ha = local_sidereal_time_deg(v.mjd_mid()) - v.pointing.ra;
    ha = std::fmod(ha + 540.0, 360.0) - 180.0;
    v.hour_angle_deg = ha;
    const double lat = Site::latitude_deg * kDeg, dec = v.pointing.dec * kDeg;
    const double sin_alt = std::sin(lat) * std::sin(dec) + std::cos(lat) * std::cos(dec) * std::cos(ha * kDeg);
    v.airmass = airmass_at_altitude(std::asin(std::clamp(sin_alt, -1.0, 1.0)) / kDeg);

    // Seeing: a log-normal atmosphere at 500 nm, zenith, scaled by airmass^0.6
    // and wavelength^-0.2, plus the instrument's 0.3" in quadrature.
    const double atmosphere = std::clamp(0.65 * std::exp(0.2 * rng.normal()), 0.45, 1.0);
    const double seeing_atm = atmosphere * std::pow(v.airmass, 0.6) * std::pow(v.band->wavelength_nm / 500.0, -0.2);
    v.seeing_arcsec = std::clamp(std::hypot(seeing_atm, 0.3), 0.6, 1.2);

    const double clouds = rng.uniform() < 0.3 ? std::abs(0.05 * rng.normal()) : 0.0;
    v.zero_point = v.band->zero_point - v.band->extinction * (v.airmass - 1.0) - clouds;
    const double sky_mag = v.band->sky_mag + 0.15 * rng.normal();
    const double pixel_area = config.pixel_scale_arcsec * config.pixel_scale_arcsec;
    v.sky_electrons = v.exposure_time * std::pow(10.0, -0.4 * (sky_mag - v.band->zero_point)) * pixel_area;

    v.humidity = rng.uniform(8.0, 60.0);
    v.pressure = 743.0 + 2.0 * rng.normal();
    v.air_temperature = rng.uniform(6.0, 15.0);
    v.wind_speed = rng.uniform(0.0, 12.0);
    visits.push_back(v);
  }
  return visits;
}

}  // namespace pixserve::sim
