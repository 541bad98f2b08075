#include "sim/skymap.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace pixserve::sim {
namespace {

wcs::Wcs make_tract_wcs(const SurveyConfig& config, long size) {
  wcs::TanParameters p;
  p.crval = config.field_center;
  // The tract's pixels run 0..size-1; its centre is the reference point.
  p.crpix = {0.5 * static_cast<double>(size) - 0.5, 0.5 * static_cast<double>(size) - 0.5};
  const double s = config.pixel_scale_arcsec / 3600.0;
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
  return config;
}

long tract_pixels(const SurveyConfig& config) {
  const long inner = config.patch_size - 2 * config.patch_border;
  auto patches = static_cast<long>(
      std::ceil(config.tract_size_deg * 3600.0 / config.pixel_scale_arcsec / static_cast<double>(inner)));
  // An even count puts the field centre on the corner shared by the four
  // central patches: a dithered raft's footprint then splits over those
  // four (each overlapping its neighbours by the borders) instead of
  // spilling from one central patch into eight thin neighbours.
  if (patches % 2 == 1) ++patches;
  return patches * inner;
}

}  // namespace

std::string PatchId::str() const { return fmt::format("{},{}", x, y); }
std::string PatchId::file_token() const { return fmt::format("{}_{}", x, y); }

SkyMap::SkyMap(const SurveyConfig& config)
    : name_(checked(config).skymap),
      inner_(config.patch_size - 2 * config.patch_border),
      border_(config.patch_border),
      tract_wcs_(make_tract_wcs(config, tract_pixels(config))) {
  patches_x_ = patches_y_ = static_cast<int>(tract_pixels(config) / inner_);
}

fits::PixelBox SkyMap::patch_box(const PatchId& patch) const {
  return {patch.x * inner_ - border_, patch.y * inner_ - border_, inner_ + 2 * border_, inner_ + 2 * border_};
}

wcs::Wcs SkyMap::patch_wcs(const PatchId& patch) const {
  const auto box = patch_box(patch);
  return tract_wcs_.shifted(static_cast<double>(box.x0), static_cast<double>(box.y0));
}

std::vector<PatchId> SkyMap::patches_overlapping(const wcs::Wcs& image_wcs, long width, long height) const {
  double x_min = std::numeric_limits<double>::infinity(), x_max = -x_min, y_min = x_min, y_max = -x_min;
  for (const auto& p : image_outline(width, height)) {
    wcs::PixelPoint t;
    try {
      t = tract_wcs_.sky_to_pixel(image_wcs.pixel_to_sky(p));
    } catch (const wcs::WcsError&) {
      continue;  // a point beyond the tract's hemisphere cannot touch it
    }
    x_min = std::min(x_min, t.x);
    x_max = std::max(x_max, t.x);
    y_min = std::min(y_min, t.y);
    y_max = std::max(y_max, t.y);
  }
  std::vector<PatchId> out;
  if (!(x_min <= x_max)) return out;
  for (int py = 0; py < patches_y_; ++py) {
    for (int px = 0; px < patches_x_; ++px) {
      const auto b = patch_box({px, py});
      // Pixel centres of the box span [x0, x0 + width - 1]; their area half a pixel more.
      if (x_max < static_cast<double>(b.x0) - 0.5 || x_min > static_cast<double>(b.x0 + b.width) - 0.5 ||
          y_max < static_cast<double>(b.y0) - 0.5 || y_min > static_cast<double>(b.y0 + b.height) - 0.5) {
        continue;
      }
      out.push_back({px, py});
    }
  }
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
