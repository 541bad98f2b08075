#include "sim/skymap.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace pixserve::sim {
namespace {

using sky::kDeg;

wcs::Wcs make_tract_wcs(const sky::SkyPoint& center, double pixel_scale_arcsec, long width, long height) {
  wcs::TanParameters p;
  p.crval = center;
  // The tract's pixels run 0..size-1; its centre is the reference point.
  p.crpix = {0.5 * static_cast<double>(width) - 0.5, 0.5 * static_cast<double>(height) - 0.5};
  const double s = pixel_scale_arcsec / 3600.0;
  p.cd = {-s, 0.0, 0.0, s};  // north up, east left
  return wcs::Wcs::tan(p);
}

const SurveyConfig& checked(const SurveyConfig& config) {
  if (config.patch_border < 0 || config.patch_size - 2 * config.patch_border < 16) {
    throw std::invalid_argument("patch_size must exceed twice patch_border by at least 16 pixels");
  }
  if (!(config.tract_size_deg > 0.0) || config.tract_size_deg > 20.0) {
    throw std::invalid_argument("tract_size_deg must be within (0, 20]");
  }
  if (!(config.pixel_scale_arcsec > 0.0)) throw std::invalid_argument("pixel scale must be positive");
  if (config.skymap == kRingsSkyMap) {
    if (config.tract_size_deg < 0.1) throw std::invalid_argument("the rings sky map needs tract_size_deg >= 0.1");
    if (!(config.tract_overlap_deg >= 0.0) || config.tract_overlap_deg >= config.tract_size_deg) {
      throw std::invalid_argument("tract_overlap_deg must be within [0, tract_size_deg)");
    }
  } else if (config.skymap != kSingleTractSkyMap) {
    throw std::invalid_argument(
        fmt::format("unknown sky map '{}' (known: {}, {})", config.skymap, kSingleTractSkyMap, kRingsSkyMap));
  }
  return config;
}

// Patches of the single tract along each axis.
int single_tract_patches(const SurveyConfig& config) {
  const long inner = config.patch_size - 2 * config.patch_border;
  auto patches = static_cast<long>(
      std::ceil(config.tract_size_deg * 3600.0 / config.pixel_scale_arcsec / static_cast<double>(inner)));
  // An even count puts the field centre on the corner shared by the four
  // central patches: a dithered raft's footprint then splits over those
  // four (each overlapping its neighbours by the borders) instead of
  // spilling from one central patch into eight thin neighbours.
  if (patches % 2 == 1) ++patches;
  return static_cast<int>(patches);
}

// Gnomonic (TAN) standard coordinates of p about c, in degrees.
struct Tangent {
  double xi = 0.0, eta = 0.0;
};
Tangent tangent_of(const sky::SkyPoint& c, const sky::SkyPoint& p) {
  const double d0 = c.dec * kDeg, d = p.dec * kDeg, da = (p.ra - c.ra) * kDeg;
  const double cos_c = std::sin(d0) * std::sin(d) + std::cos(d0) * std::cos(d) * std::cos(da);
  return {std::cos(d) * std::sin(da) / cos_c / kDeg,
          (std::cos(d0) * std::sin(d) - std::sin(d0) * std::cos(d) * std::cos(da)) / cos_c / kDeg};
}

// Bounding box, in a tract's pixel coordinates, of an image's outline;
// empty (min > max) when no outline point projects.
struct PixelBounds {
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  bool empty() const { return !(x_min <= x_max); }
  // Whether it meets the pixel box (pixel centres x0 .. x0 + width - 1,
  // their area half a pixel more).
  bool meets(const fits::PixelBox& b) const {
    return !(empty() || x_max < static_cast<double>(b.x0) - 0.5 || x_min > static_cast<double>(b.x0 + b.width) - 0.5 ||
             y_max < static_cast<double>(b.y0) - 0.5 || y_min > static_cast<double>(b.y0 + b.height) - 0.5);
  }
};

PixelBounds bounds_in(const wcs::Wcs& tract_wcs, const wcs::Wcs& image_wcs, long width, long height) {
  // One Wcs must not serve two threads at once: work on copies.
  const wcs::Wcs t = tract_wcs, im = image_wcs;
  PixelBounds b;
  for (const auto& p : image_outline(width, height)) {
    wcs::PixelPoint q;
    try {
      q = t.sky_to_pixel(im.pixel_to_sky(p));
    } catch (const wcs::WcsError&) {
      continue;  // a point beyond the tract's hemisphere cannot touch it
    }
    b.x_min = std::min(b.x_min, q.x);
    b.x_max = std::max(b.x_max, q.x);
    b.y_min = std::min(b.y_min, q.y);
    b.y_max = std::max(b.y_max, q.y);
  }
  return b;
}

}  // namespace

std::string PatchId::str() const { return fmt::format("{},{}", x, y); }
std::string PatchId::file_token() const { return fmt::format("{}_{}", x, y); }

// --- Tract ---------------------------------------------------------------

Tract::Tract(int id, const sky::SkyPoint& center, double pixel_scale_arcsec, int patches_x, int patches_y, long inner,
             long border)
    : id_(id),
      center_(center),
      patches_x_(patches_x),
      patches_y_(patches_y),
      inner_(inner),
      border_(border),
      wcs_(make_tract_wcs(center, pixel_scale_arcsec, patches_x * inner, patches_y * inner)) {}

fits::PixelBox Tract::patch_box(const PatchId& patch) const {
  return {patch.x * inner_ - border_, patch.y * inner_ - border_, inner_ + 2 * border_, inner_ + 2 * border_};
}

wcs::Wcs Tract::patch_wcs(const PatchId& patch) const {
  const auto box = patch_box(patch);
  return wcs_.shifted(static_cast<double>(box.x0), static_cast<double>(box.y0));
}

std::vector<PatchId> Tract::patches_overlapping(const wcs::Wcs& image_wcs, long width, long height) const {
  const PixelBounds b = bounds_in(wcs_, image_wcs, width, height);
  std::vector<PatchId> out;
  if (b.empty()) return out;
  for (int py = 0; py < patches_y_; ++py) {
    for (int px = 0; px < patches_x_; ++px) {
      if (b.meets(patch_box({px, py}))) out.push_back({px, py});
    }
  }
  return out;
}

bool Tract::contains(const sky::SkyPoint& p) const {
  const wcs::Wcs w = wcs_;
  try {
    const auto q = w.sky_to_pixel(p);
    return q.x >= -0.5 && q.x <= static_cast<double>(width()) - 0.5 && q.y >= -0.5 &&
           q.y <= static_cast<double>(height()) - 0.5;
  } catch (const wcs::WcsError&) {
    return false;
  }
}

// --- SkyMap --------------------------------------------------------------

SkyMap::SkyMap(const SurveyConfig& config)
    : name_(checked(config).skymap),
      rings_(config.skymap == kRingsSkyMap),
      pixel_scale_arcsec_(config.pixel_scale_arcsec),
      inner_(config.patch_size - 2 * config.patch_border),
      border_(config.patch_border),
      field_center_(config.field_center) {
  const double pixel_deg = pixel_scale_arcsec_ / 3600.0;
  const double inner_deg = static_cast<double>(inner_) * pixel_deg;
  // Angular radius from the centre of a TAN tract holding all its pixels
  // and patch borders.
  auto reach = [&](int px, int py) {
    const double half_x = (0.5 * static_cast<double>(px * inner_) + static_cast<double>(border_) + 1.0) * pixel_deg;
    const double half_y = (0.5 * static_cast<double>(py * inner_) + static_cast<double>(border_) + 1.0) * pixel_deg;
    return std::atan(std::hypot(half_x, half_y) * kDeg) / kDeg;
  };
  if (!rings_) {
    const int n = single_tract_patches(config);
    single_ = {n, n, reach(n, n)};
    max_reach_deg_ = single_.reach_deg;
    return;
  }

  // The rings: R rings and two caps, all of height h <= tract_size_deg.
  const int n_rings = std::max(1, static_cast<int>(std::ceil(180.0 / config.tract_size_deg - 1e-9)) - 1);
  ring_height_ = 180.0 / (n_rings + 1);
  const double h = ring_height_, overlap = config.tract_overlap_deg;
  auto patches_for = [&](double half_deg) {
    return std::max(1, static_cast<int>(std::ceil(2.0 * half_deg / inner_deg - 1e-9)));
  };
  int next = 1;  // 0 is the south cap
  for (int k = 0; k < n_rings; ++k) {
    const double dec = -90.0 + (k + 1) * h;
    const double lo = dec - 0.5 * h, hi = dec + 0.5 * h;
    const double edge = (lo <= 0.0 && hi >= 0.0) ? 0.0 : std::min(std::abs(lo), std::abs(hi));
    const int n = std::max(1, static_cast<int>(std::ceil(360.0 * std::cos(edge * kDeg) / h - 1e-9)));
    ring_dec_.push_back(dec);
    ring_count_.push_back(n);
    ring_first_.push_back(next);
    next += n;
    // The cell's extent in the tract's tangent plane, from its outline
    // (all the ring's tracts alike: only RA differs).
    const double half_ra = 180.0 / n;
    const sky::SkyPoint c{0.0, dec};
    double max_xi = 0.0, max_eta = 0.0;
    constexpr int kSamples = 64;
    for (int i = 0; i <= kSamples; ++i) {
      const double t = static_cast<double>(i) / kSamples;
      for (const sky::SkyPoint& p : {sky::SkyPoint{sky::normalize_ra(-half_ra + 2.0 * half_ra * t), lo},
                                     sky::SkyPoint{sky::normalize_ra(-half_ra + 2.0 * half_ra * t), hi},
                                     sky::SkyPoint{sky::normalize_ra(-half_ra), lo + t * h},
                                     sky::SkyPoint{sky::normalize_ra(half_ra), lo + t * h}}) {
        const auto tp = tangent_of(c, p);
        max_xi = std::max(max_xi, std::abs(tp.xi));
        max_eta = std::max(max_eta, std::abs(tp.eta));
      }
    }
    const int px = patches_for(max_xi + overlap), py = patches_for(max_eta + overlap);
    ring_shape_.push_back({px, py, reach(px, py)});
    max_reach_deg_ = std::max(max_reach_deg_, ring_shape_.back().reach_deg);
  }
  const int cap = patches_for(std::tan(0.5 * h * kDeg) / kDeg + overlap);
  cap_shape_ = {cap, cap, reach(cap, cap)};
  max_reach_deg_ = std::max(max_reach_deg_, cap_shape_.reach_deg);
}

SkyMap::~SkyMap() = default;

int SkyMap::tract_count() const noexcept {
  if (!rings_) return 1;
  return ring_first_.back() + ring_count_.back() + 1;
}

std::vector<int> SkyMap::tract_ids() const {
  std::vector<int> ids(static_cast<std::size_t>(tract_count()));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>(i);
  return ids;
}

int SkyMap::ring_of(int id) const {
  if (id < 0 || id >= tract_count()) throw std::out_of_range(fmt::format("sky map {} has no tract {}", name_, id));
  if (id == 0) return -1;
  if (id == tract_count() - 1) return rings();
  const auto it = std::upper_bound(ring_first_.begin(), ring_first_.end(), id);
  return static_cast<int>(it - ring_first_.begin()) - 1;
}

sky::SkyPoint SkyMap::tract_center(int id) const {
  if (!rings_) {
    ring_of(id);  // range check
    return field_center_;
  }
  const int k = ring_of(id);
  if (k < 0) return {0.0, -90.0};
  if (k >= rings()) return {0.0, 90.0};
  const auto kk = static_cast<std::size_t>(k);
  return {360.0 * (id - ring_first_[kk]) / ring_count_[kk], ring_dec_[kk]};
}

SkyMap::Shape SkyMap::shape_of(int id) const {
  if (!rings_) return single_;
  const int k = ring_of(id);
  return (k < 0 || k >= rings()) ? cap_shape_ : ring_shape_[static_cast<std::size_t>(k)];
}

const Tract& SkyMap::tract(int id) const {
  const std::lock_guard lock(mutex_);
  auto& slot = tracts_[id];
  if (!slot) {
    try {
      const Shape s = shape_of(id);
      slot = std::make_unique<Tract>(id, tract_center(id), pixel_scale_arcsec_, s.patches_x, s.patches_y, inner_,
                                     border_);
    } catch (...) {
      tracts_.erase(id);
      throw;
    }
  }
  return *slot;
}

int SkyMap::owning_tract(const sky::SkyPoint& p) const {
  if (!rings_) return 0;
  const double h = ring_height_;
  if (p.dec < -90.0 + 0.5 * h) return 0;
  const auto k = static_cast<int>(std::floor((p.dec + 90.0 - 0.5 * h) / h));
  if (k >= rings()) return tract_count() - 1;
  const auto kk = static_cast<std::size_t>(k);
  const int n = ring_count_[kk];
  const double slice = 360.0 / n;
  const int j = static_cast<int>(std::floor(sky::normalize_ra(p.ra + 0.5 * slice) / slice)) % n;
  return ring_first_[kk] + j;
}

std::vector<int> SkyMap::tracts_overlapping(const wcs::Wcs& image_wcs, long width, long height) const {
  std::vector<int> candidates;
  if (!rings_) {
    candidates.push_back(0);
  } else {
    // The image as a circle: its centre and the farthest outline point.
    const wcs::Wcs im = image_wcs;
    const sky::SkyPoint c = im.pixel_to_sky({0.5 * static_cast<double>(width) - 0.5, 0.5 * static_cast<double>(height) - 0.5});
    double radius = 0.0;
    for (const auto& p : image_outline(width, height)) {
      radius = std::max(radius, sky::angular_distance_deg(c, im.pixel_to_sky(p)));
    }
    auto near = [&](int id, double reach) {
      if (sky::angular_distance_deg(c, tract_center(id)) <= radius + reach) candidates.push_back(id);
    };
    near(0, cap_shape_.reach_deg);
    for (int k = 0; k < rings(); ++k) {
      const auto kk = static_cast<std::size_t>(k);
      const double reach = ring_shape_[kk].reach_deg;
      if (std::abs(ring_dec_[kk] - c.dec) > radius + reach) continue;
      for (int j = 0; j < ring_count_[kk]; ++j) near(ring_first_[kk] + j, reach);
    }
    near(tract_count() - 1, cap_shape_.reach_deg);
  }
  std::vector<int> out;
  for (const int id : candidates) {
    const Tract& t = tract(id);
    const fits::PixelBox all{-border_, -border_, t.width() + 2 * border_, t.height() + 2 * border_};
    if (bounds_in(t.wcs(), image_wcs, width, height).meets(all)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<wcs::PixelPoint> image_outline(long width, long height, int n_per_side) {
  const double x0 = -0.5, y0 = -0.5, x1 = static_cast<double>(width) - 0.5, y1 = static_cast<double>(height) - 0.5;
  std::vector<wcs::PixelPoint> pts;
  for (int i = 0; i < n_per_side; ++i) {
    const double t = static_cast<double>(i) / n_per_side;
    pts.push_back({x0 + t * (x1 - x0), y0});
    pts.push_back({x1, y0 + t * (y1 - y0)});
    pts.push_back({x1 - t * (x1 - x0), y1});
    pts.push_back({x0, y1 - t * (y1 - y0)});
  }
  return pts;
}

}  // namespace pixserve::sim
