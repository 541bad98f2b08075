#include "image/template_warp.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "image/cutout.hpp"
#include "image/mask.hpp"

namespace pixserve::image {
namespace {

constexpr std::int32_t kWarpNoDataBit = mask_bit(MaskPlane::no_data);

// "x,y" of a PATCH keyword.
std::optional<std::pair<long, long>> parse_patch_index(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  const auto comma = text->find(',');
  if (comma == std::string::npos) return std::nullopt;
  const std::string a = text->substr(0, comma), b = text->substr(comma + 1);
  char* end = nullptr;
  const long x = std::strtol(a.c_str(), &end, 10);
  if (a.empty() || *end != '\0') return std::nullopt;
  const long y = std::strtol(b.c_str(), &end, 10);
  if (b.empty() || *end != '\0') return std::nullopt;
  return std::pair{x, y};
}

// The inner patch size along one axis from the patches' indices and grid
// offsets (nullopt when no two patches differ in index along it).
std::optional<long> inner_size(const std::vector<std::pair<long, long>>& index_offset, const std::string& axis) {
  std::optional<long> inner;
  for (size_t a = 0; a < index_offset.size(); ++a) {
    for (size_t b = a + 1; b < index_offset.size(); ++b) {
      const long di = index_offset[a].first - index_offset[b].first;
      const long d = index_offset[a].second - index_offset[b].second;
      if (di == 0) {
        if (d != 0) throw std::invalid_argument("patches: patches with the same " + axis + " index at different " + axis + " offsets");
        continue;
      }
      if (d % di != 0 || d / di <= 0 || (inner && *inner != d / di)) {
        throw std::invalid_argument("patches: the patches' PATCH indices do not match their offsets on the grid (" +
                                    axis + ")");
      }
      inner = d / di;
    }
  }
  return inner;
}

// Where one output pixel's sample comes from.
struct WarpPixel {
  std::optional<wcs::PixelPoint> q;  // position on the common grid
  int owner = -1;                    // patch whose inner region holds q
  bool done = false;
};

}  // namespace

TractPatches::TractPatches(std::span<const std::filesystem::path> patch_files, Kernel kernel)
    : kernel_(kernel) {
  std::vector<std::filesystem::path> sorted(patch_files.begin(), patch_files.end());
  if (sorted.empty()) throw std::invalid_argument("patches: no patch files given");
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string ref_sig;
  std::pair<double, double> ref_crpix;
  std::vector<std::optional<std::pair<long, long>>> indices;
  for (const auto& f : sorted) {
    auto file = fits::File::open(f);
    Patch p;
    p.file = f;
    p.psf_fwhm = file.read_double("PSFFWHM");
    indices.push_back(parse_patch_index(file.read_string("PATCH")));
    if (!file.move_to_named_hdu("IMAGE")) throw fits::FitsError(f, "no HDU named IMAGE");
    const auto shape = file.image_shape();
    if (shape.size() < 2 || shape[0] <= 0 || shape[1] <= 0) {
      throw std::invalid_argument(fmt::format("patches: {} has no IMAGE pixels", f.filename().string()));
    }
    p.width = shape[0];
    p.height = shape[1];
    wcs::Wcs w = wcs::Wcs::from_fits(file);
    const auto [sig, crpix] = pixel_grid_signature(w);
    if (!grid_wcs_) {
      grid_wcs_ = std::move(w);
      ref_sig = sig;
      ref_crpix = crpix;
    } else {
      const double dx = ref_crpix.first - crpix.first, dy = ref_crpix.second - crpix.second;
      if (sig != ref_sig || std::abs(dx - std::round(dx)) > 1e-6 || std::abs(dy - std::round(dy)) > 1e-6) {
        throw std::invalid_argument(fmt::format(
            "patches: {} and {} are not on one pixel grid (their WCSs differ by more than an integer CRPIX shift)",
            f.filename().string(), sorted.front().filename().string()));
      }
      p.ox = std::lround(dx);
      p.oy = std::lround(dy);
    }
    patches_.push_back(std::move(p));
  }
  // The border from the patch grid: outer = inner + 2 border.
  if (std::all_of(indices.begin(), indices.end(), [](const auto& i) { return i.has_value(); })) {
    std::vector<std::pair<long, long>> xs, ys;
    for (size_t k = 0; k < patches_.size(); ++k) {
      xs.emplace_back(indices[k]->first, patches_[k].ox);
      ys.emplace_back(indices[k]->second, patches_[k].oy);
    }
    std::optional<long> border;
    auto axis_border = [&](const std::optional<long>& inner, const std::string& axis) {
      if (!inner) return;
      for (const auto& p : patches_) {
        const long outer = axis == "x" ? p.width : p.height;
        const long b2 = outer - *inner;
        if (b2 < 0 || b2 % 2 != 0 || (border && *border != b2 / 2)) {
          throw std::invalid_argument(fmt::format(
              "patches: {} is {} pixels along {} for patches {} apart: not a border on each side",
              p.file.filename().string(), outer, axis, *inner));
        }
        border = b2 / 2;
      }
    };
    axis_border(inner_size(xs, "x"), "x");
    axis_border(inner_size(ys, "y"), "y");
    border_ = border.value_or(0);
  }
}

fits::PixelBox TractPatches::bounds() const {
  long x0 = patches_.front().ox, y0 = patches_.front().oy, x1 = x0, y1 = y0;
  for (const auto& p : patches_) {
    x0 = std::min(x0, p.ox), y0 = std::min(y0, p.oy);
    x1 = std::max(x1, p.ox + p.width), y1 = std::max(y1, p.oy + p.height);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

std::optional<std::pair<long, long>> TractPatches::whole_pixel_shift(const wcs::Wcs& target) const {
  const auto [sig, crpix] = pixel_grid_signature(*grid_wcs_);
  const auto [target_sig, target_crpix] = pixel_grid_signature(target);
  const double dx = crpix.first - target_crpix.first, dy = crpix.second - target_crpix.second;
  if (sig != target_sig || std::abs(dx - std::round(dx)) > 1e-9 || std::abs(dy - std::round(dy)) > 1e-9) {
    return std::nullopt;
  }
  return std::pair{std::lround(dx), std::lround(dy)};
}

void TractPatches::copy_into(std::pair<long, long> shift, const fits::PixelBox& box, Exposure& out,
                             std::span<std::uint8_t> given) const {
  const auto n = static_cast<size_t>(box.width) * static_cast<size_t>(box.height);
  if (out.image.width != box.width || out.image.height != box.height || given.size() != n) {
    throw std::logic_error("patch copy: output planes and flags must have the box's size");
  }
  // Grid coordinates of the box.
  const long gx0 = box.x0 + shift.first, gy0 = box.y0 + shift.second;
  std::vector<std::uint8_t> decided(n, 0);  // a patch whose inner region holds the pixel has set it
  // inner: each pixel from the patch whose inner region holds it (kept
  // even without data, as warp_into keeps the owner's sample); then the
  // first patch with data.
  auto copy = [&](const Patch& p, long margin, bool inner) {
    const long x0 = std::max(gx0, p.ox + margin), x1 = std::min(gx0 + box.width, p.ox + p.width - margin);
    const long y0 = std::max(gy0, p.oy + margin), y1 = std::min(gy0 + box.height, p.oy + p.height - margin);
    if (x0 >= x1 || y0 >= y1) return;
    bool wanted = inner;
    for (long y = y0; y < y1 && !wanted; ++y) {
      for (long x = x0; x < x1 && !wanted; ++x) wanted = given[static_cast<size_t>((y - gy0) * box.width + (x - gx0))] == 0;
    }
    if (!wanted) return;
    const Exposure e = read_exposure(p.file, fits::PixelBox{x0 - p.ox, y0 - p.oy, x1 - x0, y1 - y0});
    for (long y = y0; y < y1; ++y) {
      for (long x = x0; x < x1; ++x) {
        const auto i = static_cast<size_t>((y - gy0) * box.width + (x - gx0));
        if (given[i] != 0 || (inner && decided[i] != 0)) continue;
        const float img = e.image.at(x - x0, y - y0), var = e.variance.at(x - x0, y - y0);
        const bool has_data = std::isfinite(img) && std::isfinite(var);
        if (!inner && !has_data) continue;
        if (inner) decided[i] = 1;
        out.image.pixels[i] = has_data ? img : std::numeric_limits<float>::quiet_NaN();
        out.variance.pixels[i] = has_data ? var : std::numeric_limits<float>::quiet_NaN();
        out.mask.pixels[i] = e.mask.at(x - x0, y - y0) | (has_data ? 0 : kWarpNoDataBit);
        if (has_data) given[i] = 1;
      }
    }
  };
  for (const auto& p : patches_) copy(p, border_, true);
  for (const auto& p : patches_) copy(p, 0, false);
}

double TractPatches::psf_fwhm_arcsec() const {
  double sum = 0.0;
  for (const auto& p : patches_) {
    if (!p.psf_fwhm || !std::isfinite(*p.psf_fwhm)) {
      throw std::invalid_argument(fmt::format("patches: {} has no PSFFWHM", p.file.filename().string()));
    }
    sum += *p.psf_fwhm;
  }
  return sum / static_cast<double>(patches_.size());
}

Exposure TractPatches::warp(const wcs::Wcs& target, long target_width, long target_height,
                               const fits::PixelBox& box) const {
  if (box.width <= 0 || box.height <= 0 || box.x0 < 0 || box.y0 < 0 || box.x0 + box.width > target_width ||
      box.y0 + box.height > target_height) {
    throw std::invalid_argument(fmt::format("template warp: box [{}:{},{}:{}] is empty or outside the {}x{} target",
                                            box.x0 + 1, box.x0 + box.width, box.y0 + 1, box.y0 + box.height,
                                            target_width, target_height));
  }
  Exposure out = no_data_exposure(box.width, box.height);
  std::vector<std::uint8_t> given(static_cast<size_t>(box.width) * static_cast<size_t>(box.height), 0);
  warp_into(target, box, {}, out, given);
  return out;
}

Exposure no_data_exposure(long width, long height) {
  Exposure out(width, height);
  std::fill(out.image.pixels.begin(), out.image.pixels.end(), std::numeric_limits<float>::quiet_NaN());
  std::fill(out.variance.pixels.begin(), out.variance.pixels.end(), std::numeric_limits<float>::quiet_NaN());
  std::fill(out.mask.pixels.begin(), out.mask.pixels.end(), kWarpNoDataBit);
  return out;
}

void TractPatches::warp_into(const wcs::Wcs& target, const fits::PixelBox& box,
                                std::span<const std::uint8_t> select, Exposure& out,
                                std::span<std::uint8_t> given) const {
  const auto n = static_cast<size_t>(box.width) * static_cast<size_t>(box.height);
  if (out.image.width != box.width || out.image.height != box.height || given.size() != n ||
      (!select.empty() && select.size() != n)) {
    throw std::logic_error("patch warp: output planes, selection and flags must have the box's size");
  }
  // Own copies: a Wcs must not be used by two threads at once.
  const wcs::Wcs target_wcs = target;
  const wcs::Wcs grid_wcs = *grid_wcs_;
  // Target pixel -> common grid at the lattice nodes, kept for the
  // per-patch mappings below (same nodes, shifted by integers: exact).
  std::map<std::pair<long, long>, std::optional<wcs::PixelPoint>> nodes;
  const GridMapping::Lattice lattice{0, 0};
  const GridMapping map(box, kTemplateWarpStep, lattice, [&](double x, double y) -> std::optional<wcs::PixelPoint> {
    std::optional<wcs::PixelPoint> q;
    try {
      q = grid_wcs.sky_to_pixel(target_wcs.pixel_to_sky({x, y}));
    } catch (const wcs::WcsError&) {
    }
    if (q && !(std::isfinite(q->x) && std::isfinite(q->y))) q.reset();
    nodes[{std::lround(x), std::lround(y)}] = q;
    return q;
  });

  std::vector<WarpPixel> px(n);
  const auto b = static_cast<double>(border_);
  auto local = [&](const wcs::PixelPoint& q, const Patch& p) {
    return wcs::PixelPoint{q.x - static_cast<double>(p.ox), q.y - static_cast<double>(p.oy)};
  };
  // Inner region: the areas of pixels border .. size - border - 1; the
  // inner regions of neighbouring patches tile the grid without overlap.
  auto in_inner = [&](const wcs::PixelPoint& l, const Patch& p) {
    return l.x >= b - 0.5 && l.x < static_cast<double>(p.width) - b - 0.5 && l.y >= b - 0.5 &&
           l.y < static_cast<double>(p.height) - b - 0.5;
  };
  auto in_outer = [](const wcs::PixelPoint& l, const Patch& p) {
    return l.x >= -0.5 && l.x < static_cast<double>(p.width) - 0.5 && l.y >= -0.5 &&
           l.y < static_cast<double>(p.height) - 0.5;
  };
  // The pixels each patch is to sample, in one pass: by owner first.
  std::vector<std::vector<std::uint32_t>> owned(patches_.size());
  int last_owner = 0;
  for (long y = 0; y < box.height; ++y) {
    for (long x = 0; x < box.width; ++x) {
      const auto i = static_cast<size_t>(y * box.width + x);
      if (!select.empty() && select[i] == 0) continue;
      WarpPixel& w = px[i];
      w.q = map(box.x0 + x, box.y0 + y);
      if (!w.q) continue;
      // Neighbouring pixels mostly share their patch: try the last one first.
      if (in_inner(local(*w.q, patches_[static_cast<size_t>(last_owner)]), patches_[static_cast<size_t>(last_owner)])) {
        w.owner = last_owner;
      } else {
        for (size_t k = 0; k < patches_.size(); ++k) {
          if (in_inner(local(*w.q, patches_[k]), patches_[k])) {
            w.owner = static_cast<int>(k);
            break;
          }
        }
      }
      if (w.owner >= 0) {
        last_owner = w.owner;
        owned[static_cast<size_t>(w.owner)].push_back(static_cast<std::uint32_t>(i));
      }
    }
  }

  // Samples patch k at the pixels listed (ascending): reads the source_box
  // of the mapping over their bounding box; stores samples with data (and,
  // with keep_no_data, the others too) and marks them done.
  auto sample_patch = [&](size_t k, const std::vector<std::uint32_t>& pixels, bool keep_no_data) {
    if (pixels.empty()) return;
    const Patch& p = patches_[k];
    long x0 = box.width, y0 = box.height, x1 = -1, y1 = -1;
    for (const auto i : pixels) {
      const long x = static_cast<long>(i) % box.width, y = static_cast<long>(i) / box.width;
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
    }
    const fits::PixelBox sub{box.x0 + x0, box.y0 + y0, x1 - x0 + 1, y1 - y0 + 1};
    const GridMapping patch_map(sub, kTemplateWarpStep, lattice,
                                [&](double x, double y) -> std::optional<wcs::PixelPoint> {
                                  const auto it = nodes.find({std::lround(x), std::lround(y)});
                                  if (it == nodes.end() || !it->second) return std::nullopt;
                                  return local(*it->second, p);
                                });
    const auto read_box = source_box(patch_map, kernel_, p.width, p.height);
    if (!read_box) return;
    const Exposure region = read_exposure(p.file, *read_box);
    const Resampler resampler(kernel_, region, *read_box, p.width, p.height);
    for (const auto i : pixels) {
      WarpPixel& w = px[i];
      const auto s = resampler.sample(local(*w.q, p));
      const bool has_data = (s.mask & kWarpNoDataBit) == 0;
      if (has_data || keep_no_data) {
        out.image.pixels[i] = s.image;
        out.variance.pixels[i] = s.variance;
        out.mask.pixels[i] = s.mask;
      }
      if (has_data) {
        w.done = true;
        given[i] = 1;
      }
    }
  };
  // Each pixel from the patch whose inner region holds it...
  for (size_t k = 0; k < patches_.size(); ++k) sample_patch(k, owned[k], true);
  // ... else from the first patch with data there.
  std::vector<std::uint32_t> left;
  for (size_t i = 0; i < n; ++i) {
    if (px[i].q && !px[i].done) left.push_back(static_cast<std::uint32_t>(i));
  }
  std::vector<std::uint32_t> candidates;
  for (size_t k = 0; k < patches_.size() && !left.empty(); ++k) {
    candidates.clear();
    for (const auto i : left) {
      const WarpPixel& w = px[i];
      if (w.owner != static_cast<int>(k) && in_outer(local(*w.q, patches_[k]), patches_[k])) candidates.push_back(i);
    }
    sample_patch(k, candidates, false);
    std::erase_if(left, [&](std::uint32_t i) { return px[i].done; });
  }
}

Exposure warp_template(std::span<const std::filesystem::path> patch_files, const wcs::Wcs& target,
                       long target_width, long target_height, const fits::PixelBox& box) {
  return TractPatches(patch_files).warp(target, target_width, target_height, box);
}

double template_psf_fwhm(std::span<const std::filesystem::path> patch_files) {
  return TractPatches(patch_files).psf_fwhm_arcsec();
}

}  // namespace pixserve::image
