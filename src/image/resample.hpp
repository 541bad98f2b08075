// Resampling helpers: bilinear interpolation of image planes, and a smooth
// pixel-to-pixel mapping (e.g. coadd patch pixel -> input image pixel through
// two WCSs) evaluated exactly on a coarse grid and bilinearly in between, so
// warping costs a few WCS calls per grid node instead of two per pixel.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "fits/fits.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

// Where a bilinear sample reads: the pixel (x0, y0), its right/upper
// neighbours (x1, y1) (the same pixel at the border) and the weights of the
// neighbours.
struct BilinearSample {
  long x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  float fx = 0.0F, fy = 0.0F;
};

// The sample at (x, y) (0-based pixel centres) of a width x height plane.
// Defined over the whole area of the pixels, [-0.5, width - 0.5) x
// [-0.5, height - 0.5): within half a pixel of the border the edge pixel's
// value extends outwards. nullopt outside.
inline std::optional<BilinearSample> bilinear_at(long width, long height, double x, double y) {
  if (!(x >= -0.5 && x < static_cast<double>(width) - 0.5 && y >= -0.5 && y < static_cast<double>(height) - 0.5)) {
    return std::nullopt;
  }
  const double cx = std::clamp(x, 0.0, static_cast<double>(width - 1));
  const double cy = std::clamp(y, 0.0, static_cast<double>(height - 1));
  BilinearSample s;
  s.x0 = std::min(static_cast<long>(cx), width - 1);
  s.y0 = std::min(static_cast<long>(cy), height - 1);
  s.x1 = std::min(s.x0 + 1, width - 1);
  s.y1 = std::min(s.y0 + 1, height - 1);
  s.fx = static_cast<float>(cx - static_cast<double>(s.x0));
  s.fy = static_cast<float>(cy - static_cast<double>(s.y0));
  return s;
}

template <typename T>
float interpolate(const fits::Image<T>& plane, const BilinearSample& s) {
  const float a = static_cast<float>(plane.at(s.x0, s.y0)), b = static_cast<float>(plane.at(s.x1, s.y0));
  const float c = static_cast<float>(plane.at(s.x0, s.y1)), d = static_cast<float>(plane.at(s.x1, s.y1));
  return (1.0F - s.fy) * ((1.0F - s.fx) * a + s.fx * b) + s.fy * ((1.0F - s.fx) * c + s.fx * d);
}

// The OR of the mask values the sample reads (all four neighbours).
inline std::int32_t mask_under(const fits::Image<std::int32_t>& mask, const BilinearSample& s) {
  return mask.at(s.x0, s.y0) | mask.at(s.x1, s.y0) | mask.at(s.x0, s.y1) | mask.at(s.x1, s.y1);
}

// A mapping from the pixels of an output box to input pixel coordinates,
// exact at grid nodes every `step` pixels (and on the box's last row and
// column) and bilinear between them. Accurate to well below a pixel for
// smooth mappings such as TAN -> TAN-SIP over tens of pixels.
class GridMapping {
 public:
  // f(x, y) returns the input position of output pixel (x, y), or nullopt
  // where it has none; cells touching such a node map nowhere.
  template <typename F>
  GridMapping(const fits::PixelBox& box, long step, F&& f) : box_(box), step_(std::max(1L, step)) {
    for (long x = box.x0;; x += step_) {
      xs_.push_back(std::min(x, box.x0 + box.width - 1));
      if (xs_.back() == box.x0 + box.width - 1) break;
    }
    for (long y = box.y0;; y += step_) {
      ys_.push_back(std::min(y, box.y0 + box.height - 1));
      if (ys_.back() == box.y0 + box.height - 1) break;
    }
    nodes_.resize(xs_.size() * ys_.size());
    for (size_t j = 0; j < ys_.size(); ++j) {
      for (size_t i = 0; i < xs_.size(); ++i) {
        nodes_[j * xs_.size() + i] = f(static_cast<double>(xs_[i]), static_cast<double>(ys_[j]));
      }
    }
  }

  const fits::PixelBox& box() const noexcept { return box_; }

  // The input position of output pixel (x, y) (inside box()).
  std::optional<wcs::PixelPoint> operator()(long x, long y) const {
    const size_t i = cell(x - box_.x0, xs_.size());
    const size_t j = cell(y - box_.y0, ys_.size());
    const size_t nx = xs_.size();
    const auto& a = nodes_[j * nx + i];
    if (xs_.size() == 1 || ys_.size() == 1) {
      // A one-row or one-column box: interpolate along the other axis only.
      if (xs_.size() == 1 && ys_.size() == 1) return a;
      if (xs_.size() == 1) return lerp(a, nodes_[(j + 1) * nx + i], frac(y, ys_, j));
      return lerp(a, nodes_[j * nx + i + 1], frac(x, xs_, i));
    }
    const auto& b = nodes_[j * nx + i + 1];
    const auto& c = nodes_[(j + 1) * nx + i];
    const auto& d = nodes_[(j + 1) * nx + i + 1];
    if (!a || !b || !c || !d) return std::nullopt;
    const double fx = frac(x, xs_, i), fy = frac(y, ys_, j);
    return wcs::PixelPoint{(1 - fy) * ((1 - fx) * a->x + fx * b->x) + fy * ((1 - fx) * c->x + fx * d->x),
                           (1 - fy) * ((1 - fx) * a->y + fx * b->y) + fy * ((1 - fx) * c->y + fx * d->y)};
  }

  // The bounding box of all mapped nodes, as [min, max] per axis.
  struct Extent {
    double x_min, x_max, y_min, y_max;
  };
  std::optional<Extent> extent() const {
    std::optional<Extent> e;
    for (const auto& n : nodes_) {
      if (!n) continue;
      if (!e) e = Extent{n->x, n->x, n->y, n->y};
      e->x_min = std::min(e->x_min, n->x);
      e->x_max = std::max(e->x_max, n->x);
      e->y_min = std::min(e->y_min, n->y);
      e->y_max = std::max(e->y_max, n->y);
    }
    return e;
  }

 private:
  // The grid cell (index of its lower node) holding offset d along an axis of n nodes.
  size_t cell(long d, size_t n) const {
    if (n < 2) return 0;
    return std::min(static_cast<size_t>(d / step_), n - 2);
  }
  static double frac(long v, const std::vector<long>& nodes, size_t i) {
    const long span = nodes[i + 1] - nodes[i];
    return span > 0 ? static_cast<double>(v - nodes[i]) / static_cast<double>(span) : 0.0;
  }
  static std::optional<wcs::PixelPoint> lerp(const std::optional<wcs::PixelPoint>& a,
                                             const std::optional<wcs::PixelPoint>& b, double t) {
    if (!a || !b) return std::nullopt;
    return wcs::PixelPoint{(1 - t) * a->x + t * b->x, (1 - t) * a->y + t * b->y};
  }

  fits::PixelBox box_;
  long step_ = 1;
  std::vector<long> xs_, ys_;  // node coordinates
  std::vector<std::optional<wcs::PixelPoint>> nodes_;
};

}  // namespace pixserve::image
