// Template subtraction over a box (image/difference.hpp). The box is worked
// through in tiles whose columns start at multiples of the lane count in CCD
// coordinates, so each pixel lands in the same lane of a block whatever the
// box; every per-pixel computation reads only that pixel's neighbourhood.

#include "image/difference.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>
#include <vector>

#include "image/lane_block.hpp"

namespace pixserve::image {
namespace {

constexpr long kTileColumns = 256;  // multiple of KernelBasis::kLanes
constexpr long kTileRows = 64;
constexpr long kDiffLanes = KernelBasis::kLanes;
constexpr auto kDiffLaneCount = static_cast<std::size_t>(kDiffLanes);
static_assert(kTileColumns % kDiffLanes == 0 && kVarianceCell % kDiffLanes == 0);

// out[i * out_step] = OR of in[(i + k) * in_step] over k < window, for
// i < n. A running count of nonzero values skips the windows holding none,
// the common case of masks.
template <typename T>
void or_over_window(const T* in, long in_step, long n, long window, T* out, long out_step) {
  long nonzero = 0;
  for (long k = 0; k < window - 1; ++k) nonzero += in[k * in_step] != 0 ? 1 : 0;
  for (long i = 0; i < n; ++i) {
    nonzero += in[(i + window - 1) * in_step] != 0 ? 1 : 0;
    T v = 0;
    if (nonzero > 0) {
      for (long k = 0; k < window; ++k) v = static_cast<T>(v | in[(i + k) * in_step]);
    }
    out[i * out_step] = v;
    nonzero -= in[i * in_step] != 0 ? 1 : 0;
  }
}

// The part of the squared kernel's sum that the variance may leave out: K^2
// falls off twice as fast as K, and its outer rows carry almost nothing.
constexpr double kSquaredKernelTail = 1e-5;

struct SquaredKernel {
  long radius = 0;            // half-size of the square kept
  std::vector<float> values;  // (2 radius + 1)^2, row-major
};

bool plane_sizes_agree(const Exposure& e) {
  return e.mask.width == e.image.width && e.mask.height == e.image.height && e.variance.width == e.image.width &&
         e.variance.height == e.image.height;
}

// Works through the tiles of one subtraction; holds the buffers they reuse
// and the K^2 images of the variance cells met so far.
class TileSubtractor {
 public:
  TileSubtractor(const ExposurePiece& science, const ExposurePiece& tmpl, const PsfMatchingKernel& kernel,
                 const fits::PixelBox& box, Exposure& out)
      : science_(science), tmpl_(tmpl), kernel_(kernel), box_(box), out_(out), h_(kernel.half_size()) {}

  // The tile of columns tx0 .. tx0 + tw - 1 (tx0 a multiple of the lanes),
  // rows ty0 .. ty0 + th - 1.
  void run(long tx0, long ty0, long tw, long th) {
    load_template(tx0, ty0, tw, th);
    convolve_image(tx0, ty0, th);
    convolve_variance(tx0, ty0, th);
    spread_masks(th);
    write_output(tx0, ty0, th);
  }

  // Drops the K^2 of cells above row y (tiles move down the box).
  void forget_cells_above(long y) {
    const long cy = y / kVarianceCell;
    std::erase_if(squared_kernels_, [cy](const auto& entry) { return entry.first.second < cy; });
  }

 private:
  // The template around the tile: rows ty0 - h .. ty0 + th + h - 1, columns
  // tx0 - h .. tx0 + wp + h - 1; unusable pixels read as 0 and are flagged.
  void load_template(long tx0, long ty0, long tw, long th) {
    wp_ = KernelBasis::padded_width(tw);
    stride_ = wp_ + 2 * h_;
    const long rows = th + 2 * h_;
    const auto n = static_cast<std::size_t>(stride_ * rows);
    value_.assign(n, 0.0F);
    variance_.assign(n, 0.0F);
    invalid_.assign(n, 1);
    bits_.assign(n, 0);
    const Exposure& t = tmpl_.pixels;
    for (long r = 0; r < rows; ++r) {
      const long y = ty0 - h_ + r;
      const long ty = y - tmpl_.y0;
      if (y < 0 || y >= kernel_.frame_height() || ty < 0 || ty >= t.height()) continue;
      for (long c = 0; c < stride_; ++c) {
        const long x = tx0 - h_ + c;
        const long tx = x - tmpl_.x0;
        if (x < 0 || x >= kernel_.frame_width() || tx < 0 || tx >= t.width()) continue;
        const auto k = static_cast<std::size_t>(r * stride_ + c);
        const float v = t.image.at(tx, ty), var = t.variance.at(tx, ty);
        const std::int32_t m = t.mask.at(tx, ty);
        bits_[k] = m & ~kTemplateSpreadExcluded;
        if ((m & mask_bit(MaskPlane::no_data)) != 0 || !std::isfinite(v) || !std::isfinite(var) || !(var >= 0.0F)) {
          continue;
        }
        value_[k] = v;
        variance_[k] = var;
        invalid_[k] = 0;
      }
    }
  }

  // model_ = sum over raw kernels l of c_l(x, y) (raw_l * T)(x, y). The
  // coefficient polynomial is evaluated by Horner's rule in X with
  // per-row coefficients (Horner in Y): the same operations for a pixel
  // whatever tile it is in.
  void convolve_image(long tx0, long ty0, long th) {
    const int order = kernel_.spatial_order();
    std::vector<double> terms(polynomial_terms(1));
    x_norm_.resize(static_cast<std::size_t>(wp_));
    for (long xi = 0; xi < wp_; ++xi) {
      polynomial_terms_at(static_cast<double>(tx0 + xi), 0.0, kernel_.frame_width(), kernel_.frame_height(), 1, terms);
      x_norm_[static_cast<std::size_t>(xi)] = terms[1];
    }
    y_norm_.resize(static_cast<std::size_t>(th));
    for (long yi = 0; yi < th; ++yi) {
      polynomial_terms_at(0.0, static_cast<double>(ty0 + yi), kernel_.frame_width(), kernel_.frame_height(), 1, terms);
      y_norm_[static_cast<std::size_t>(yi)] = terms[2];
    }
    model_.assign(static_cast<std::size_t>(wp_ * th), 0.0);
    kernel_.basis().convolve_raw(value_, wp_, th, [&](std::size_t l, std::span<const float> plane) {
      const auto p = kernel_.raw_polynomial(l);
      for (long yi = 0; yi < th; ++yi) {
        // beta[a] = sum_b p[m(a, b)] Y^b; term m(a, b) of x^a y^b is at
        // (a + b)(a + b + 1) / 2 + b.
        const double y = y_norm_[static_cast<std::size_t>(yi)];
        std::array<double, 4> beta{};
        for (int a = 0; a <= order; ++a) {
          double v = 0.0;
          for (int b = order - a; b >= 0; --b) {
            v = v * y + p[static_cast<std::size_t>((a + b) * (a + b + 1) / 2 + b)];
          }
          beta[static_cast<std::size_t>(a)] = v;
        }
        const auto coefficient_at = [&](double x) {
          double c = beta[static_cast<std::size_t>(order)];
          for (int a = order - 1; a >= 0; --a) c = c * x + beta[static_cast<std::size_t>(a)];
          return c;
        };
        double* model = model_.data() + yi * wp_;
        const float* conv = plane.data() + yi * wp_;
        for (long xb = 0; xb < wp_; xb += kDiffLanes) {
          [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((model[xb + static_cast<long>(I)] +=
              coefficient_at(x_norm_[static_cast<std::size_t>(xb) + I]) * conv[xb + static_cast<long>(I)]),
             ...);
          }
          (std::make_index_sequence<kDiffLaneCount>{});
        }
      }
    });
  }

  // K^2 of the variance cell (cx, cy), kernel layout, cut to the square
  // holding all but kSquaredKernelTail of its sum.
  const SquaredKernel& squared_kernel(long cx, long cy) {
    const auto key = std::make_pair(cx, cy);
    auto it = squared_kernels_.find(key);
    if (it != squared_kernels_.end()) return it->second;
    const double centre = 0.5 * static_cast<double>(kVarianceCell - 1);
    const auto k = kernel_.image_at(static_cast<double>(cx * kVarianceCell) + centre,
                                    static_cast<double>(cy * kVarianceCell) + centre);
    const long kw = 2 * h_ + 1;
    std::vector<double> k2(k.size());
    double total = 0.0;
    for (std::size_t i = 0; i < k.size(); ++i) total += k2[i] = k[i] * k[i];
    // Sum of K^2 within |u|, |v| <= r for each r, growing outwards.
    long radius = h_;
    for (long r = 0; r < h_; ++r) {
      double inside = 0.0;
      for (long v = h_ - r; v <= h_ + r; ++v) {
        for (long u = h_ - r; u <= h_ + r; ++u) inside += k2[static_cast<std::size_t>(v * kw + u)];
      }
      if (inside >= (1.0 - kSquaredKernelTail) * total) {
        radius = r;
        break;
      }
    }
    SquaredKernel out;
    out.radius = radius;
    for (long v = h_ - radius; v <= h_ + radius; ++v) {
      for (long u = h_ - radius; u <= h_ + radius; ++u) {
        out.values.push_back(static_cast<float>(k2[static_cast<std::size_t>(v * kw + u)]));
      }
    }
    return squared_kernels_.emplace(key, std::move(out)).first->second;
  }

  // model_variance_ = K^2 * Var(T), one block of lanes at a time; a block
  // never straddles two cells since cells are whole blocks in CCD columns.
  void convolve_variance(long tx0, long ty0, long th) {
    model_variance_.assign(static_cast<std::size_t>(wp_ * th), 0.0F);
    // Offsets of the taps of a square of each radius within the template
    // window (row vv, column uu of K^2 reads row -vv, column -uu).
    std::vector<std::vector<long>> offsets(static_cast<std::size_t>(h_ + 1));
    for (long r = 0; r <= h_; ++r) {
      for (long vv = 0; vv <= 2 * r; ++vv) {
        for (long uu = 0; uu <= 2 * r; ++uu) offsets[static_cast<std::size_t>(r)].push_back(-vv * stride_ - uu);
      }
    }
    for (long yi = 0; yi < th; ++yi) {
      const long cy = (ty0 + yi) / kVarianceCell;
      for (long xb = 0; xb < wp_; xb += kDiffLanes) {
        const auto& k2 = squared_kernel((tx0 + xb) / kVarianceCell, cy);
        const long r = k2.radius;
        // Var(T)(x - u, y - v) sits at row yi + h - v, column xi + h - u;
        // tap (vv, uu) = (v + r, u + r).
        const float* base = variance_.data() + (yi + h_ + r) * stride_ + xb + h_ + r;
        convolve_lanes_at<kDiffLaneCount>(k2.values.data(), offsets[static_cast<std::size_t>(r)].data(),
                                          static_cast<int>(k2.values.size()), base,
                                          model_variance_.data() + yi * wp_ + xb);
      }
    }
  }

  // OR of the template bits and of the no-data flags over each pixel's
  // footprint: along rows, then along columns.
  void spread_masks(long th) {
    const long rows = th + 2 * h_, kw = 2 * h_ + 1;
    row_bits_.resize(static_cast<std::size_t>(rows * wp_));
    row_invalid_.resize(static_cast<std::size_t>(rows * wp_));
    for (long r = 0; r < rows; ++r) {
      or_over_window(bits_.data() + r * stride_, 1, wp_, kw, row_bits_.data() + r * wp_, 1);
      or_over_window(invalid_.data() + r * stride_, 1, wp_, kw, row_invalid_.data() + r * wp_, 1);
    }
    footprint_bits_.resize(static_cast<std::size_t>(th * wp_));
    footprint_invalid_.resize(static_cast<std::size_t>(th * wp_));
    for (long xi = 0; xi < wp_; ++xi) {
      or_over_window(row_bits_.data() + xi, wp_, th, kw, footprint_bits_.data() + xi, wp_);
      or_over_window(row_invalid_.data() + xi, wp_, th, kw, footprint_invalid_.data() + xi, wp_);
    }
  }

  void write_output(long tx0, long ty0, long th) {
    const Exposure& s = science_.pixels;
    const std::int32_t edge = mask_bit(MaskPlane::edge), no_data = mask_bit(MaskPlane::no_data);
    constexpr float nan = std::numeric_limits<float>::quiet_NaN();
    const long x_begin = std::max(tx0, box_.x0), x_end = std::min(tx0 + wp_, box_.x0 + box_.width);
    for (long yi = 0; yi < th; ++yi) {
      const long y = ty0 + yi;
      for (long x = x_begin; x < x_end; ++x) {
        const long xi = x - tx0;
        const auto p = static_cast<std::size_t>(yi * wp_ + xi);
        const long sx = x - science_.x0, sy = y - science_.y0;
        const long ox = x - box_.x0, oy = y - box_.y0;
        std::int32_t m = s.mask.at(sx, sy) | footprint_bits_[p];
        if (footprint_invalid_[p] != 0) {
          m |= edge;
          if (invalid_[static_cast<std::size_t>((yi + h_) * stride_ + xi + h_)] != 0) m |= no_data;
          out_.image.at(ox, oy) = nan;
          out_.variance.at(ox, oy) = nan;
        } else {
          const double bg = kernel_.background_at(static_cast<double>(x), static_cast<double>(y));
          out_.image.at(ox, oy) = static_cast<float>(static_cast<double>(s.image.at(sx, sy)) - model_[p] - bg);
          out_.variance.at(ox, oy) =
              static_cast<float>(static_cast<double>(s.variance.at(sx, sy)) + static_cast<double>(model_variance_[p]));
        }
        out_.mask.at(ox, oy) = m;
      }
    }
  }

  const ExposurePiece& science_;
  const ExposurePiece& tmpl_;
  const PsfMatchingKernel& kernel_;
  fits::PixelBox box_;
  Exposure& out_;
  long h_ = 0, wp_ = 0, stride_ = 0;
  // Template around the tile (stride_ per row).
  std::vector<float> value_, variance_;
  std::vector<std::uint8_t> invalid_;
  std::vector<std::int32_t> bits_;
  // Per tile pixel (wp_ per row).
  std::vector<double> x_norm_, y_norm_, model_;
  std::vector<float> model_variance_;
  std::vector<std::int32_t> row_bits_, footprint_bits_;
  std::vector<std::uint8_t> row_invalid_, footprint_invalid_;
  std::map<std::pair<long, long>, SquaredKernel> squared_kernels_;
};

}  // namespace

fits::PixelBox difference_template_box(const PsfMatchingKernel& kernel, const fits::PixelBox& box) {
  const long h = kernel.half_size();
  const long x0 = std::max(0L, box.x0 - h), y0 = std::max(0L, box.y0 - h);
  const long x1 = std::min(kernel.frame_width(), box.x0 + box.width + h);
  const long y1 = std::min(kernel.frame_height(), box.y0 + box.height + h);
  return {x0, y0, std::max(0L, x1 - x0), std::max(0L, y1 - y0)};
}

Exposure subtract_template(ExposurePiece science, ExposurePiece tmpl, const PsfMatchingKernel& kernel,
                           const fits::PixelBox& box) {
  if (box.width <= 0 || box.height <= 0) throw std::invalid_argument("subtract_template: empty box");
  if (box.x0 < 0 || box.y0 < 0 || box.x0 + box.width > kernel.frame_width() ||
      box.y0 + box.height > kernel.frame_height()) {
    throw std::invalid_argument("subtract_template: box leaves the CCD frame of the kernel");
  }
  if (!plane_sizes_agree(science.pixels) || !plane_sizes_agree(tmpl.pixels)) {
    throw std::invalid_argument("subtract_template: image, mask and variance planes differ in size");
  }
  if (box.x0 < science.x0 || box.y0 < science.y0 || box.x0 + box.width > science.x0 + science.pixels.width() ||
      box.y0 + box.height > science.y0 + science.pixels.height()) {
    throw std::invalid_argument("subtract_template: the science pixels given do not cover the box");
  }
  Exposure out(box.width, box.height);
  TileSubtractor tiles(science, tmpl, kernel, box, out);
  const long x_first = box.x0 / kDiffLanes * kDiffLanes;
  const long x_end = box.x0 + box.width;
  for (long ty0 = box.y0; ty0 < box.y0 + box.height; ty0 += kTileRows) {
    tiles.forget_cells_above(ty0);
    const long th = std::min(kTileRows, box.y0 + box.height - ty0);
    for (long tx0 = x_first; tx0 < x_end; tx0 += kTileColumns)
      tiles.run(tx0, ty0, std::min(kTileColumns, x_end - tx0), th);
  }
  return out;
}

Exposure subtract_template(const Exposure& science, const Exposure& tmpl, const PsfMatchingKernel& kernel) {
  return subtract_template(ExposurePiece{science, 0, 0}, ExposurePiece{tmpl, 0, 0}, kernel,
                           fits::PixelBox{0, 0, science.width(), science.height()});
}

}  // namespace pixserve::image
