// The simulated R-EFD: the site's weather telemetry through each night and
// its summary per visit (repo/efd.hpp describes the tables), consistent
// with what the raw headers say of each visit (SEEING, AIRMASS, HUMIDITY,
// PRESSURE, AIRTEMP, WINDSPD).
#pragma once

#include <filesystem>
#include <vector>

#include "sim/observing.hpp"

namespace pixserve::sim {

struct WeatherSample {
  double time_mjd = 0.0;  // TAI
  double dimm_seeing = 0.0;  // arcsec
  double air_temperature = 0.0, dome_temperature = 0.0;  // K
  double wind_speed = 0.0;  // m/s
  double wind_direction = 0.0;  // deg, azimuth the wind comes from
  double relative_humidity = 0.0;  // %
  double pressure = 0.0;  // hPa
};

// One sample every 30 s (on whole milliseconds) from 30 minutes before each
// night's first visit to 30 minutes after its last exposure ends, in time
// order. Each quantity runs through the header values of the visits of the
// night at their mid-exposure times (linear in between, constant before
// the first and after the last), plus a small deterministic noise that
// vanishes at those times; dome temperature and wind direction are drawn
// likewise. Values are rounded as written to the CSV file.
std::vector<WeatherSample> weather_samples(const SurveyConfig& config, const std::vector<Visit>& visits);

struct VisitSummary {
  long long visit = 0;
  double t_start = 0.0, t_end = 0.0;  // MJD TAI: the exposure
  double airmass = 0.0;               // the header's AIRMASS
  WeatherSample mean;                 // time_mjd unused
};

// Per visit: the mean of the samples inside [t_start, t_end] (wind
// direction as a circular mean), or the weather at mid-exposure when no
// sample falls inside.
std::vector<VisitSummary> visit_summaries(const SurveyConfig& config, const std::vector<Visit>& visits,
                                          const std::vector<WeatherSample>& samples);

// Writes efd/weather.csv and efd/visit_summary.csv under out (the header
// row names the columns of repo/efd.hpp's tables). Returns the bytes written.
std::size_t write_efd(const SurveyConfig& config, const std::vector<Visit>& visits, const std::filesystem::path& out);

}  // namespace pixserve::sim
