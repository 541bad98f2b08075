#include "repo/astro_units.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>

namespace pixserve::repo {
namespace {

struct BandEntry {
  std::string_view name;
  BandLimits limits;
};

// Half-maximum points of the LSST total system throughput curves, in metres.
constexpr std::array<BandEntry, 6> kBands{{
    {"u", {320.0e-9, 400.0e-9}},
    {"g", {400.0e-9, 552.0e-9}},
    {"r", {552.0e-9, 691.0e-9}},
    {"i", {691.0e-9, 818.0e-9}},
    {"z", {818.0e-9, 922.0e-9}},
    {"y", {948.0e-9, 1060.0e-9}},
}};

// Days from 1858-11-17 (MJD 0) to the given civil date, proleptic Gregorian.
long days_from_civil(long y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const long unix_days = era * 146097 + static_cast<long>(doe) - 719468;
  return unix_days + 40587;  // MJD of 1970-01-01
}

bool is_leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(long y, unsigned m) {
  constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at pos; -1 if they are not all digits.
long read_digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  long v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<BandLimits> band_limits(std::string_view band) {
  for (const auto& entry : kBands) {
    if (entry.name == band) return entry.limits;
  }
  return std::nullopt;
}

std::optional<std::string> band_at_wavelength(double metres) {
  for (const auto& entry : kBands) {
    if (metres >= entry.limits.em_min && metres <= entry.limits.em_max) return std::string(entry.name);
  }
  return std::nullopt;
}

double mjd_from_iso(std::string_view iso) {
  auto bad = [&](std::string_view why) {
    return std::invalid_argument(fmt::format("invalid ISO 8601 time '{}': {}", iso, why));
  };
  if (!iso.empty() && iso.back() == 'Z') iso.remove_suffix(1);
  const long year = read_digits(iso, 0, 4);
  if (year < 0 || iso.size() < 10 || iso[4] != '-' || iso[7] != '-') throw bad("expected YYYY-MM-DD");
  const long month = read_digits(iso, 5, 2);
  const long day = read_digits(iso, 8, 2);
  if (month < 1 || month > 12) throw bad("month out of range");
  if (day < 1 || day > static_cast<long>(days_in_month(year, static_cast<unsigned>(month)))) {
    throw bad("day out of range");
  }
  double seconds_of_day = 0.0;
  if (iso.size() > 10) {
    if (iso[10] != 'T' || iso.size() < 16 || iso[13] != ':') throw bad("expected Thh:mm after the date");
    const long hour = read_digits(iso, 11, 2);
    const long minute = read_digits(iso, 14, 2);
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59) throw bad("hour or minute out of range");
    double second = 0.0;
    if (iso.size() > 16) {
      if (iso[16] != ':' || iso.size() < 19) throw bad("expected :ss after hh:mm");
      const long whole = read_digits(iso, 17, 2);
      if (whole < 0 || whole > 60) throw bad("second out of range");
      second = static_cast<double>(whole);
      if (iso.size() > 19) {
        if (iso[19] != '.' || iso.size() == 20) throw bad("expected fractional seconds after '.'");
        double scale = 0.1;
        for (size_t i = 20; i < iso.size(); ++i) {
          if (iso[i] < '0' || iso[i] > '9') throw bad("unexpected character in fractional seconds");
          second += (iso[i] - '0') * scale;
          scale *= 0.1;
        }
      }
    }
    seconds_of_day = static_cast<double>(hour * 3600 + minute * 60) + second;
  }
  return static_cast<double>(days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day))) +
         seconds_of_day / 86400.0;
}

std::string iso_from_mjd(double mjd) {
  if (!std::isfinite(mjd)) throw std::invalid_argument("iso_from_mjd: non-finite MJD");
  // Work in whole milliseconds so rounding never produces "60.000" seconds.
  const auto total_ms = static_cast<long long>(std::llround(mjd * 86400000.0));
  long long days = total_ms / 86400000;
  long long ms_of_day = total_ms % 86400000;
  if (ms_of_day < 0) {
    ms_of_day += 86400000;
    --days;
  }
  // Civil date from days since 1970-01-01.
  const long long z = days - 40587 + 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long y = static_cast<long long>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}", y, m, d, ms_of_day / 3600000,
                     (ms_of_day / 60000) % 60, (ms_of_day / 1000) % 60, ms_of_day % 1000);
}

double mjd_now() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const double unix_seconds = std::chrono::duration<double>(now).count();
  return 40587.0 + unix_seconds / 86400.0;
}

}  // namespace pixserve::repo
