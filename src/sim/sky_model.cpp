#include "sim/sky_model.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <numbers>
#include <stdexcept>

#include "sim/observing.hpp"
#include "sim/random.hpp"
#include "sky/geometry.hpp"

namespace pixserve::sim {
namespace {

using sky::kDeg;

// A magnitude drawn from N(<m) ~ 10^(slope m) between bright and faint.
double power_law_magnitude(Rng& rng, double bright, double faint, double slope) {
  const double a = std::pow(10.0, slope * bright), b = std::pow(10.0, slope * faint);
  return std::log10(a + rng.uniform() * (b - a)) / slope;
}

// A uniformly distributed point within radius_deg of center.
sky::SkyPoint point_in_disc(Rng& rng, const sky::SkyPoint& center, double radius_deg) {
  // Uniform on the sphere's cap: cos(distance) uniform in [cos r, 1].
  const double cos_r = std::cos(radius_deg * kDeg);
  const double d = std::acos(1.0 - rng.uniform() * (1.0 - cos_r));
  const double pa = 2.0 * std::numbers::pi * rng.uniform();
  // Along a great circle from center at position angle pa.
  const double d0 = center.dec * kDeg;
  const double dec = std::asin(std::sin(d0) * std::cos(d) + std::cos(d0) * std::sin(d) * std::cos(pa));
  const double dra = std::atan2(std::sin(pa) * std::sin(d) * std::cos(d0), std::cos(d) - std::sin(d0) * std::sin(dec));
  return {sky::normalize_ra(center.ra + dra / kDeg), dec / kDeg};
}

// ugrizy magnitudes from r and a g-r colour: a smooth stellar-locus-like
// sequence (redder objects are brighter in the red).
std::array<double, 6> colours(double r, double g_r) {
  return {r + g_r + 0.9 + 1.1 * g_r,  // u
          r + g_r,                    // g
          r,                          // r
          r - 0.38 * g_r,             // i
          r - 0.55 * g_r,             // z
          r - 0.65 * g_r};            // y
}

}  // namespace

const char* to_string(ObjectType t) {
  switch (t) {
    case ObjectType::star:
      return "star";
    case ObjectType::galaxy:
      return "galaxy";
    case ObjectType::variable_star:
      return "variable";
    case ObjectType::moving:
      return "moving";
  }
  return "?";
}

SkyModel SkyModel::generate(const SurveyConfig& config) {
  if (!(config.field_radius_deg > 0.0) || config.field_radius_deg > 30.0) {
    throw std::invalid_argument("field_radius_deg must be within (0, 30]");
  }
  Rng rng(config.seed, Stream::catalogue);
  const double area = 2.0 * std::numbers::pi * (1.0 - std::cos(config.field_radius_deg * kDeg)) / (kDeg * kDeg);
  const auto n_stars = static_cast<std::int64_t>(std::llround(config.star_density_per_deg2 * area));
  const auto n_galaxies = static_cast<std::int64_t>(std::llround(config.galaxy_density_per_deg2 * area));

  SkyModel model;
  auto& objects = model.objects_;
  objects.reserve(static_cast<size_t>(n_stars + n_galaxies + 1));
  std::int64_t next_id = 1;
  for (std::int64_t i = 0; i < n_stars; ++i) {
    SkyObject o;
    o.id = next_id++;
    o.position = point_in_disc(rng, config.field_center, config.field_radius_deg);
    // The colour is drawn before the magnitude, each in a statement of its
    // own: the order of a call's arguments is the compiler's choice, and the
    // sky of a seed must be the same whichever compiler built the simulator.
    const double colour = rng.uniform(0.2, 1.4);
    const double magnitude = power_law_magnitude(rng, 16.0, 24.5, 0.25);
    o.mag = colours(magnitude, colour);
    if (rng.uniform() < config.variable_fraction) {
      o.type = ObjectType::variable_star;
      o.amplitude = rng.uniform(0.1, 1.0);
      // Log-uniform periods from about an hour to five days.
      o.period_days = std::exp(rng.uniform(std::log(0.04), std::log(5.0)));
      o.variability_epoch = config.first_night_mjd + rng.uniform(0.0, o.period_days);
    }
    objects.push_back(o);
  }
  for (std::int64_t i = 0; i < n_galaxies; ++i) {
    SkyObject o;
    o.id = next_id++;
    o.type = ObjectType::galaxy;
    o.position = point_in_disc(rng, config.field_center, config.field_radius_deg);
    const double r = power_law_magnitude(rng, 17.5, 23.5, 0.35);
    o.mag = colours(r, rng.uniform(0.3, 1.2));
    // Brighter galaxies are larger.
    o.half_light_radius_arcsec =
        std::clamp(2.2 * std::pow(10.0, -0.2 * (r - 18.0)) * std::exp(0.3 * rng.normal()), 0.3, 4.0);
    o.axis_ratio = rng.uniform(0.3, 1.0);
    o.position_angle_deg = rng.uniform(0.0, 180.0);
    objects.push_back(o);
  }
  {
    // One slow solar-system body near the field centre at the first night,
    // moving ~1.2 arcmin a day so it stays in view over a few nights.
    SkyObject o;
    o.id = next_id++;
    o.type = ObjectType::moving;
    o.position = point_in_disc(rng, config.field_center, 1.0 / 60.0);
    o.mag = colours(rng.uniform(18.5, 19.5), 0.6);
    o.motion_epoch = config.first_night_mjd;
    const double rate = rng.uniform(0.015, 0.03);
    const double direction = 2.0 * std::numbers::pi * rng.uniform();
    o.rate_east_deg_per_day = rate * std::sin(direction);
    o.rate_north_deg_per_day = rate * std::cos(direction);
    objects.push_back(o);
  }
  model.vectors_.reserve(objects.size());
  for (const auto& o : objects) model.vectors_.push_back(sky::to_vector(o.position));
  return model;
}

sky::SkyPoint SkyModel::position_at(const SkyObject& o, double mjd) {
  if (o.type != ObjectType::moving) return o.position;
  const double dt = mjd - o.motion_epoch;
  return offset_tangent(o.position, o.rate_east_deg_per_day * dt, o.rate_north_deg_per_day * dt);
}

double SkyModel::magnitude_at(const SkyObject& o, int band_index, double mjd) {
  double m = o.mag[static_cast<size_t>(band_index)];
  if (o.type == ObjectType::variable_star) {
    m += o.amplitude * std::sin(2.0 * std::numbers::pi * (mjd - o.variability_epoch) / o.period_days);
  }
  return m;
}

std::vector<const SkyObject*> SkyModel::near(const sky::SkyPoint& center, double radius_deg, double mjd) const {
  std::vector<const SkyObject*> out;
  const sky::Vec3 c = sky::to_vector(center);
  const double min_dot = std::cos(std::min(radius_deg, 180.0) * kDeg);
  for (size_t i = 0; i < objects_.size(); ++i) {
    const auto& o = objects_[i];
    if (o.type == ObjectType::moving) {
      const sky::Vec3 v = sky::to_vector(position_at(o, mjd));
      if (v.x * c.x + v.y * c.y + v.z * c.z >= min_dot) out.push_back(&o);
      continue;
    }
    const auto& v = vectors_[i];
    if (v.x * c.x + v.y * c.y + v.z * c.z >= min_dot) out.push_back(&o);
  }
  return out;
}

void SkyModel::write_truth_csv(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", path.string()));
  out << "id,type,ra,dec,u,g,r,i,z,y,half_light_radius_arcsec,axis_ratio,position_angle_deg,"
         "var_amplitude,var_period_days,var_epoch_mjd,motion_epoch_mjd,rate_east_deg_per_day,rate_north_deg_per_day\n";
  for (const auto& o : objects_) {
    out << fmt::format(
        "{},{},{:.8f},{:.8f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.4f},{:.3f},{:.3f},{:.2f},{:.3f},{:.6f},{:.6f},{:.6f}"
        ",{:.6f},{:.6f}\n",
        o.id, to_string(o.type), o.position.ra, o.position.dec, o.mag[0], o.mag[1], o.mag[2], o.mag[3], o.mag[4],
        o.mag[5], o.half_light_radius_arcsec, o.axis_ratio, o.position_angle_deg, o.amplitude, o.period_days,
        o.variability_epoch, o.motion_epoch, o.rate_east_deg_per_day, o.rate_north_deg_per_day);
  }
  if (!out) throw std::runtime_error(fmt::format("error writing {}", path.string()));
}

}  // namespace pixserve::sim
