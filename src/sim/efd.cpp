#include "sim/efd.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <numbers>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "repo/efd.hpp"
#include "sim/random.hpp"

namespace pixserve::sim {
namespace {

constexpr long long kMsPerDay = 86'400'000;
constexpr long long kSampleMs = 30'000;         // one sample every 30 s
constexpr long long kMarginMs = 30 * 60'000;    // 30 minutes either side of a night's exposures
constexpr double kKelvin = 273.15;              // the headers' AIRTEMP is in degrees Celsius
constexpr double kNoiseTaperDays = 10.0 / 1440.0;  // before the first and after the last visit

double efd_round(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

// The quantities that pass through the header values of each visit.
enum Quantity : std::size_t { kSeeing, kAirTemperature, kWindSpeed, kHumidity, kPressure, kQuantities };
constexpr std::array<double, kQuantities> kNoise{0.03, 0.1, 0.4, 1.0, 0.1};
constexpr std::array<int, kQuantities> kSampleDecimals{3, 2, 2, 2, 2};

// The header values of a visit (sim/products.cpp writes them rounded so).
std::array<double, kQuantities> header_values(const Visit& v) {
  return {efd_round(v.seeing_arcsec, 3), efd_round(v.air_temperature, 1) + kKelvin, efd_round(v.wind_speed, 1),
          efd_round(v.humidity, 1), efd_round(v.pressure, 1)};
}

double exposure_end(const Visit& v) { return v.mjd_start + v.exposure_time / 86400.0; }

// The weather of one night as a function of time.
class NightWeather {
 public:
  NightWeather(const SurveyConfig& config, int night, std::vector<const Visit*> visits)
      : night_(night), seed_(config.seed), visits_(std::move(visits)) {
    for (const Visit* v : visits_) {
      mids_.push_back(v->mjd_mid());
      values_.push_back(header_values(*v));
    }
    Rng rng(config.seed, Stream::efd, {static_cast<std::uint64_t>(night), 0});
    wind_base_deg_ = rng.uniform(0.0, 360.0);
    start_ = visits_.front()->mjd_start;
  }

  long long first_ms() const { return std::llround(visits_.front()->mjd_start * kMsPerDay) - kMarginMs; }
  long long last_ms() const { return std::llround(exposure_end(*visits_.back()) * kMsPerDay) + kMarginMs; }

  // The weather at t; `noise` draws the sample's deviations (none: the
  // smooth curve itself).
  WeatherSample at(double t, Rng* noise) const {
    // Interpolation between the mid-exposures around t, and how far the
    // noise may stray there: not at all at a mid-exposure.
    std::array<double, kQuantities> value{};
    double taper = 0.0;
    const auto after = std::upper_bound(mids_.begin(), mids_.end(), t);
    if (after == mids_.begin()) {
      value = values_.front();
      taper = std::min(1.0, (mids_.front() - t) / kNoiseTaperDays);
    } else if (after == mids_.end()) {
      value = values_.back();
      taper = std::min(1.0, (t - mids_.back()) / kNoiseTaperDays);
    } else {
      const auto i = static_cast<std::size_t>(after - mids_.begin());
      const double f = (t - mids_[i - 1]) / (mids_[i] - mids_[i - 1]);
      for (std::size_t q = 0; q < kQuantities; ++q) {
        value[q] = values_[i - 1][q] + f * (values_[i][q] - values_[i - 1][q]);
      }
      taper = std::sin(std::numbers::pi * f);
    }
    std::array<double, kQuantities + 2> deviation{};
    if (noise != nullptr) {
      for (auto& d : deviation) d = noise->normal();
    }
    for (std::size_t q = 0; q < kQuantities; ++q) value[q] += taper * kNoise[q] * deviation[q];
    WeatherSample s;
    s.time_mjd = t;
    s.dimm_seeing = std::max(0.3, value[kSeeing]);
    s.air_temperature = value[kAirTemperature];
    s.wind_speed = std::max(0.0, value[kWindSpeed]);
    s.relative_humidity = std::clamp(value[kHumidity], 0.0, 100.0);
    s.pressure = value[kPressure];
    // The dome starts the night warmer than the air and cools towards it.
    const double hours = (t - start_) * 24.0;
    s.dome_temperature =
        s.air_temperature + 1.5 * std::exp(-std::max(0.0, hours) / 3.0) + 0.05 * deviation[kQuantities];
    // The wind veers slowly through the night.
    s.wind_direction = std::fmod(wind_base_deg_ + 25.0 * std::sin(2.0 * std::numbers::pi * hours / 6.0) +
                                     4.0 * deviation[kQuantities + 1] + 720.0,
                                 360.0);
    return s;
  }

  std::vector<WeatherSample> samples() const {
    std::vector<WeatherSample> out;
    const long long first = first_ms(), last = last_ms();
    for (long long ms = first, k = 0; ms <= last; ms += kSampleMs, ++k) {
      Rng noise(seed_, Stream::efd, {static_cast<std::uint64_t>(night_), static_cast<std::uint64_t>(k) + 1});
      WeatherSample s = at(static_cast<double>(ms) / kMsPerDay, &noise);
      s.dimm_seeing = efd_round(s.dimm_seeing, kSampleDecimals[kSeeing]);
      s.air_temperature = efd_round(s.air_temperature, kSampleDecimals[kAirTemperature]);
      s.wind_speed = efd_round(s.wind_speed, kSampleDecimals[kWindSpeed]);
      s.relative_humidity = efd_round(s.relative_humidity, kSampleDecimals[kHumidity]);
      s.pressure = efd_round(s.pressure, kSampleDecimals[kPressure]);
      s.dome_temperature = efd_round(s.dome_temperature, 2);
      s.wind_direction = efd_round(s.wind_direction, 1);
      if (s.wind_direction >= 360.0) s.wind_direction -= 360.0;
      out.push_back(s);
    }
    return out;
  }

 private:
  int night_;
  unsigned long long seed_;
  std::vector<const Visit*> visits_;
  std::vector<double> mids_;
  std::vector<std::array<double, kQuantities>> values_;
  double wind_base_deg_ = 0.0;
  double start_ = 0.0;
};

std::vector<NightWeather> nights_of(const SurveyConfig& config, const std::vector<Visit>& visits) {
  std::vector<NightWeather> out;
  std::vector<const Visit*> night;
  int current = -1;
  for (const auto& v : visits) {
    const int n = v.index / std::max(1, config.visits_per_night);
    if (n != current && !night.empty()) {
      out.emplace_back(config, current, std::move(night));
      night.clear();
    }
    current = n;
    night.push_back(&v);
  }
  if (!night.empty()) out.emplace_back(config, current, std::move(night));
  return out;
}

std::string number_text(double v) { return fmt::format("{}", v); }

}  // namespace

std::vector<WeatherSample> weather_samples(const SurveyConfig& config, const std::vector<Visit>& visits) {
  std::vector<WeatherSample> out;
  for (const auto& night : nights_of(config, visits)) {
    auto samples = night.samples();
    out.insert(out.end(), samples.begin(), samples.end());
  }
  return out;
}

std::vector<VisitSummary> visit_summaries(const SurveyConfig& config, const std::vector<Visit>& visits,
                                          const std::vector<WeatherSample>& samples) {
  const auto nights = nights_of(config, visits);
  std::vector<VisitSummary> out;
  for (const auto& v : visits) {
    VisitSummary s;
    s.visit = v.id;
    s.t_start = v.mjd_start;
    s.t_end = exposure_end(v);
    s.airmass = efd_round(v.airmass, 4);
    const auto first = std::lower_bound(samples.begin(), samples.end(), s.t_start,
                                        [](const WeatherSample& w, double t) { return w.time_mjd < t; });
    const auto last = std::upper_bound(first, samples.end(), s.t_end,
                                       [](double t, const WeatherSample& w) { return t < w.time_mjd; });
    WeatherSample& m = s.mean;
    if (first == last) {
      // Visits are numbered from 0 in the plan, so night n is nights[n].
      const auto night = static_cast<std::size_t>(v.index / std::max(1, config.visits_per_night));
      m = nights.at(night).at(v.mjd_mid(), nullptr);
    } else {
      double east = 0.0, north = 0.0;
      for (auto it = first; it != last; ++it) {
        m.dimm_seeing += it->dimm_seeing;
        m.air_temperature += it->air_temperature;
        m.dome_temperature += it->dome_temperature;
        m.wind_speed += it->wind_speed;
        m.relative_humidity += it->relative_humidity;
        m.pressure += it->pressure;
        east += std::sin(it->wind_direction * std::numbers::pi / 180.0);
        north += std::cos(it->wind_direction * std::numbers::pi / 180.0);
      }
      const double n = static_cast<double>(last - first);
      m.dimm_seeing /= n;
      m.air_temperature /= n;
      m.dome_temperature /= n;
      m.wind_speed /= n;
      m.relative_humidity /= n;
      m.pressure /= n;
      m.wind_direction = std::fmod(std::atan2(east, north) * 180.0 / std::numbers::pi + 360.0, 360.0);
    }
    m.time_mjd = 0.5 * (s.t_start + s.t_end);
    m.dimm_seeing = efd_round(m.dimm_seeing, 4);
    m.air_temperature = efd_round(m.air_temperature, 3);
    m.dome_temperature = efd_round(m.dome_temperature, 3);
    m.wind_speed = efd_round(m.wind_speed, 3);
    m.relative_humidity = efd_round(m.relative_humidity, 3);
    m.pressure = efd_round(m.pressure, 3);
    m.wind_direction = efd_round(m.wind_direction, 2);
    if (m.wind_direction >= 360.0) m.wind_direction -= 360.0;
    out.push_back(s);
  }
  return out;
}

std::size_t write_efd(const SurveyConfig& config, const std::vector<Visit>& visits, const std::filesystem::path& out) {
  const auto samples = weather_samples(config, visits);
  const auto summaries = visit_summaries(config, visits, samples);
  std::filesystem::create_directories(out / "efd");
  std::size_t bytes = 0;
  // Each row gives its values by column name; the file's columns are the
  // table's, in its order (repo/efd.cpp).
  using Fields = std::vector<std::pair<std::string_view, std::string>>;
  const auto write = [&](const repo::efd::Table& table, const auto& rows, const auto& fields_of) {
    const auto path = out / "efd" / (std::string(table.name) + ".csv");
    std::string text;
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      text += fmt::format("{}{}", c ? "," : "", table.columns[c].name);
    }
    text += '\n';
    for (const auto& row : rows) {
      const Fields fields = fields_of(row);
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        const auto it = std::find_if(fields.begin(), fields.end(),
                                     [&](const auto& f) { return f.first == table.columns[c].name; });
        if (it == fields.end()) throw std::logic_error(fmt::format("efd: no value for {}", table.columns[c].name));
        text += fmt::format("{}{}", c ? "," : "", it->second);
      }
      text += '\n';
    }
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << text;
    if (!file) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
    bytes += text.size();
  };
  const auto weather_fields = [](const WeatherSample& s) {
    return Fields{{"dimm_seeing", number_text(s.dimm_seeing)},
                  {"air_temperature", number_text(s.air_temperature)},
                  {"dome_temperature", number_text(s.dome_temperature)},
                  {"wind_speed", number_text(s.wind_speed)},
                  {"wind_direction", number_text(s.wind_direction)},
                  {"relative_humidity", number_text(s.relative_humidity)},
                  {"pressure", number_text(s.pressure)}};
  };
  write(*repo::efd::table_named("weather"), samples, [&](const WeatherSample& s) {
    Fields f = weather_fields(s);
    f.emplace_back("time_mjd", number_text(s.time_mjd));
    return f;
  });
  write(*repo::efd::table_named("visit_summary"), summaries, [&](const VisitSummary& s) {
    Fields f = weather_fields(s.mean);
    f.emplace_back("visit", fmt::format("{}", s.visit));
    f.emplace_back("exposure", fmt::format("{}", s.visit));  // one exposure per visit
    f.emplace_back("t_start", number_text(s.t_start));
    f.emplace_back("t_end", number_text(s.t_end));
    f.emplace_back("airmass", number_text(s.airmass));
    return f;
  });
  return bytes;
}

}  // namespace pixserve::sim
