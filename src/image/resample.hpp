// The resampling engine: an image (or exposure) warped onto another pixel
// grid with an interpolation kernel (nearest, bilinear, Lanczos-3), image,
// variance and mask propagated. Every user that samples pixels between
// pixel centres (coadds, HiPS tiles, templates, mosaics) goes through it, so
// interpolation weights are computed in one place (axis_weights).
//
// The pieces:
//   - GridMapping: output pixel -> source pixel position, exact on a coarse
//     grid of nodes and bilinear in between (a few WCS calls per node
//     instead of two per pixel);
//   - Resampler: a kernel over a source's planes; sample() one position, or
//     warp() a box of output pixels through a GridMapping;
//   - source_box(): the source pixels a warp reads, so callers read only
//     those from disk.
//
// Large outputs are made strip by strip with bounded memory: for each strip,
// a GridMapping on a lattice common to all strips (GridMapping::Lattice), the
// source_box() of that mapping read from disk, a Resampler over it, warp().
// The result is bit-identical to warping the whole output at once.
//
// Conventions: pixel coordinates are 0-based pixel centres (wcs.hpp); a
// source of width x height pixels covers [-0.5, width - 0.5) x
// [-0.5, height - 0.5).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

enum class Kernel {
  nearest,   // the value of the pixel containing the position
  bilinear,  // the 2 x 2 pixel centres around it
  lanczos3,  // windowed sinc over 6 x 6 pixels (a = 3)
};

// "nearest", "bilinear" or "lanczos3" (any case), e.g. from a request
// parameter; nullopt for anything else.
std::optional<Kernel> parse_kernel(std::string_view name);
std::string_view kernel_name(Kernel kernel);

// Where a kernel reads along one axis: the source pixels first ..
// first + count - 1 with their weights w[0 .. count - 1], all non-zero,
// summing to 1.
struct AxisWeights {
  static constexpr int kMaxCount = 6;
  long first = 0;
  int count = 0;
  std::array<float, kMaxCount> w{};
};

// The weights of `kernel` at position p on an axis of `size` source pixels,
// or nullopt where the source does not support a sample there:
//   - p outside [-0.5, size - 0.5) (beyond the outer pixel edge), any kernel;
//   - bilinear: within half a pixel of the border the edge pixel's value
//     extends outwards (position clamped to the outer pixel centres), so an
//     edge pixel's whole area is covered; that is the value the pixel
//     measured, not an extrapolation;
//   - lanczos3: any pixel with a non-zero weight beyond the border. A kernel
//     truncated at the border and renormalized is lopsided: on a linear ramp
//     it errs by 0.13 of the per-pixel gradient half a pixel from the edge
//     (0.06 at 1.5 pixels), against at most 0.02 inside, so such positions
//     get no value (as in the survey pipeline's warper). Within 1e-6 pixel of a pixel centre
//     the weights are exactly 1 on that pixel (sinc's zeros are not exact in
//     floating point, and integer shifts must copy pixels unchanged); that
//     also keeps the outermost pixel centres usable.
// Lanczos weights are normalized to sum 1 so that flat fields stay flat
// (tabulated finely: within 5e-7 of the exact ones).
std::optional<AxisWeights> axis_weights(Kernel kernel, double p, long size);

// A mapping from the pixels of an output box to source pixel positions,
// exact at grid nodes and bilinear between them. Accurate to well below a
// pixel for smooth mappings such as TAN -> TAN-SIP over tens of pixels.
class GridMapping {
 public:
  // Nodes on the lattice origin + k * step (k any integer): the mapping of
  // a pixel depends only on the lattice, not on the box, so strips of an
  // output mapped with the same lattice agree bit for bit with the whole.
  struct Lattice {
    long origin_x = 0;
    long origin_y = 0;
  };

  // f(x, y) returns the source position of output pixel (x, y), or nullopt
  // where it has none; cells touching such a node map nowhere.
  //
  // Nodes every `step` pixels from the box's first pixel and on its last row
  // and column.
  template <typename F>
  GridMapping(const fits::PixelBox& box, long step, F&& f)
      : box_(box),
        step_(std::max(1L, step)),
        xs_(edge_nodes(box.x0, box.width, step_)),
        ys_(edge_nodes(box.y0, box.height, step_)) {
    evaluate(f);
  }
  // Nodes on a lattice, from the last node at or before the box's first
  // pixel to the first node after its last pixel (nodes may lie outside the
  // box; f must answer there too).
  template <typename F>
  GridMapping(const fits::PixelBox& box, long step, Lattice lattice, F&& f)
      : box_(box),
        step_(std::max(1L, step)),
        xs_(lattice_nodes(box.x0, box.width, lattice.origin_x, step_)),
        ys_(lattice_nodes(box.y0, box.height, lattice.origin_y, step_)) {
    evaluate(f);
  }

  const fits::PixelBox& box() const noexcept { return box_; }

  // The source position of output pixel (x, y) (inside box()).
  std::optional<wcs::PixelPoint> operator()(long x, long y) const {
    const size_t i = cell(x - xs_.front(), xs_.size());
    const size_t j = cell(y - ys_.front(), ys_.size());
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

  // The bounding box of all mapped nodes, as [min, max] per axis. Every
  // position operator() returns lies inside it (they are weighted means of
  // nodes). nullopt when no node maps.
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
  static std::vector<long> edge_nodes(long first, long length, long step) {
    std::vector<long> nodes;
    const long last = first + length - 1;
    for (long v = first;; v += step) {
      nodes.push_back(std::min(v, last));
      if (nodes.back() == last) break;
    }
    return nodes;
  }
  static std::vector<long> lattice_nodes(long first, long length, long origin, long step) {
    // Floor division: the lattice extends to negative offsets too.
    auto node_at_or_before = [&](long v) {
      const long d = v - origin;
      return origin + (d >= 0 ? d / step : -((-d + step - 1) / step)) * step;
    };
    std::vector<long> nodes;
    const long end = node_at_or_before(first + length - 1) + step;
    for (long v = node_at_or_before(first); v <= end; v += step) nodes.push_back(v);
    return nodes;
  }
  template <typename F>
  void evaluate(F& f) {
    nodes_.resize(xs_.size() * ys_.size());
    for (size_t j = 0; j < ys_.size(); ++j) {
      for (size_t i = 0; i < xs_.size(); ++i) {
        nodes_[j * xs_.size() + i] = f(static_cast<double>(xs_[i]), static_cast<double>(ys_[j]));
      }
    }
  }
  // The grid cell (index of its lower node) holding offset d from the first
  // node along an axis of n nodes.
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

// The source pixels that warping map.box() with `kernel` reads, clipped to
// the source's width x height: the extent of the mapped positions widened by
// the kernel's reach. nullopt when nothing is read.
std::optional<fits::PixelBox> source_box(const GridMapping& map, Kernel kernel, long source_width, long source_height);

// A kernel over the planes of a source. The planes may hold only a part of
// the source, `region` (e.g. the source_box() of a mapping, read from
// disk), of a source of width x height pixels: which positions have a value
// follows from the whole source's size, and the region must hold every
// pixel a sample reads (pixels outside it count as missing).
//
// What a sample is: image = sum w I; variance = sum w^2 Var over the kernel
// footprint (weights w, summing to 1). That is the variance of each output
// pixel on its own; the covariance the interpolation introduces between
// neighbouring output pixels is ignored, as the survey pipeline does. mask =
// OR of the mask bits of every pixel with a non-zero weight.
//
// Where a sample has no value (axis_weights() says no, the mapping has no
// position, or a pixel with a non-zero weight has a non-finite image or
// variance), image and variance are NaN and the mask has NO_DATA. Non-finite
// pixels are not renormalized away: they would silently change the kernel
// (see axis_weights() on lopsided kernels), so they make a hole as wide as
// the kernel instead; such a sample's mask also has the bits of the pixels
// it read. A sample without NO_DATA always has a finite image and variance.
//
// The Resampler refers to the planes; they must outlive it.
class Resampler {
 public:
  Resampler(Kernel kernel, const Exposure& source);
  Resampler(Kernel kernel, const Exposure& region_planes, const fits::PixelBox& region, long width, long height);
  // A single plane (HiPS tiles, previews): only images are sampled.
  Resampler(Kernel kernel, const fits::Image<float>& source);
  Resampler(Kernel kernel, const fits::Image<float>& region_plane, const fits::PixelBox& region, long width,
            long height);

  struct Sample {
    float image = 0.0F;
    float variance = 0.0F;
    std::int32_t mask = 0;
  };
  // Throws std::logic_error on a Resampler over a single plane.
  Sample sample(const wcs::PixelPoint& p) const;
  // NaN where the sample has no value.
  float sample_image(const wcs::PixelPoint& p) const;

  // The output pixels of out_box (inside map.box()), as an exposure of
  // out_box's size. Throws std::logic_error on a Resampler over a single
  // plane.
  Exposure warp(const GridMapping& map, const fits::PixelBox& out_box) const;
  fits::Image<float> warp_image(const GridMapping& map, const fits::PixelBox& out_box) const;

  Kernel kernel() const noexcept { return kernel_; }

 private:
  Kernel kernel_;
  const fits::Image<float>* image_;
  const fits::Image<float>* variance_ = nullptr;
  const fits::Image<std::int32_t>* mask_ = nullptr;
  fits::PixelBox region_;
  long width_, height_;
};

}  // namespace pixserve::image
