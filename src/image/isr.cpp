#include "image/isr.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "image/mask.hpp"

namespace pixserve::image {
namespace {

Section required_section(fits::File& file, std::string_view key) {
  const auto text = file.read_string(key);
  if (!text) throw std::invalid_argument(fmt::format("{}: amplifier HDU has no {}", file.path().string(), key));
  return parse_section(*text);
}

void require_inside(const Section& s, long width, long height, std::string_view what) {
  const auto b = s.box();
  if (b.x0 + b.width > width || b.y0 + b.height > height) {
    throw std::invalid_argument(fmt::format("{} {} lies outside the {}x{} image", what, s.str(), width, height));
  }
}

template <typename A, typename B>
void require_same_shape(const fits::Image<A>& a, const fits::Image<B>& b, std::string_view what) {
  if (a.width != b.width || a.height != b.height) {
    throw std::invalid_argument(
        fmt::format("{} is {}x{} but the image is {}x{}", what, b.width, b.height, a.width, a.height));
  }
}

// The datasec pixels of raw (in DATASEC order) minus their row's level:
// row_level[y] is the level of raw row y.
fits::Image<float> isr_subtract_row_levels(const fits::Image<std::int32_t>& raw, const Section& datasec,
                                           const double* row_level) {
  fits::Image<float> out(datasec.width(), datasec.height());
  for (long j = 0; j < out.height; ++j) {
    const long ry = datasec.row(j);
    const double level = row_level[ry];
    for (long i = 0; i < out.width; ++i) out.at(i, j) = static_cast<float>(raw.at(datasec.column(i), ry) - level);
  }
  return out;
}

// The part of an amplifier that lands in a box of the detector: the pixels
// (i, j) of DATASEC order with i in [i0, i0 + width), j in [j0, j0 + height).
struct IsrAmpPart {
  long i0 = 0, j0 = 0, width = 0, height = 0;
};

// Along one axis of a section starting at 0-based first and running forward
// or backward: the index range [begin, begin + count) whose pixels lie in
// [lo, hi). count is 0 when none does.
void isr_axis_overlap(long first, long length, bool reversed, long lo, long hi, long& begin, long& count) {
  const long a = reversed ? first - length + 1 : first;  // lowest pixel
  const long from = std::max(a, lo), to = std::min(a + length, hi);
  count = std::max(0L, to - from);
  begin = reversed ? first - (to - 1) : from - first;
}

std::optional<IsrAmpPart> isr_amp_part(const Section& detsec, const fits::PixelBox& box) {
  IsrAmpPart p;
  isr_axis_overlap(detsec.column(0), detsec.width(), detsec.x_reversed(), box.x0, box.x0 + box.width, p.i0, p.width);
  isr_axis_overlap(detsec.row(0), detsec.height(), detsec.y_reversed(), box.y0, box.y0 + box.height, p.j0, p.height);
  if (p.width <= 0 || p.height <= 0) return std::nullopt;
  return p;
}

// The pixels of section s with indices in the part, as a section of their
// own (same directions), moved by (-dx, -dy).
Section isr_part_section(const Section& s, const IsrAmpPart& p, long dx, long dy) {
  return Section{s.column(p.i0) + 1 - dx, s.column(p.i0 + p.width - 1) + 1 - dx, s.row(p.j0) + 1 - dy,
                 s.row(p.j0 + p.height - 1) + 1 - dy};
}

}  // namespace

Amplifier read_amplifier(fits::File& file) {
  Amplifier amp;
  amp.name = file.read_string("EXTNAME").value_or("");
  amp.datasec = required_section(file, "DATASEC");
  amp.biassec = required_section(file, "BIASSEC");
  amp.detsec = required_section(file, "DETSEC");
  if (auto p = file.read_string("PRESCAN")) amp.prescan = parse_section(*p);
  const auto gain = file.read_double("GAIN");
  if (!gain || !(*gain > 0.0))
    throw std::invalid_argument(fmt::format("{}: amplifier {} has no positive GAIN", file.path().string(), amp.name));
  amp.gain = *gain;
  amp.read_noise = file.read_double("RDNOISE").value_or(0.0);
  if (auto sat = file.read_double("SATURATE")) amp.saturation = *sat;
  if (amp.datasec.width() != amp.detsec.width() || amp.datasec.height() != amp.detsec.height()) {
    throw std::invalid_argument(fmt::format("{}: amplifier {} DATASEC {} and DETSEC {} differ in size",
                                            file.path().string(), amp.name, amp.datasec.str(), amp.detsec.str()));
  }
  return amp;
}

std::vector<double> overscan_levels(const fits::Image<std::int32_t>& raw, const Section& biassec,
                                    const OverscanOptions& options) {
  require_inside(biassec, raw.width, raw.height, "BIASSEC");
  const auto box = biassec.box();
  const long first = box.x0 + std::clamp<long>(options.skip_columns, 0, box.width - 1);
  const long last = box.x0 + box.width;  // exclusive
  // Rows outside BIASSEC (none in the usual layout) get the nearest row's level.
  std::vector<double> row_level(static_cast<size_t>(raw.height), 0.0);
  std::vector<double> values;
  for (long y = box.y0; y < box.y0 + box.height; ++y) {
    values.clear();
    for (long x = first; x < last; ++x) values.push_back(raw.at(x, y));
    double level = 0.0;
    if (options.statistic == OverscanStatistic::mean) {
      for (double v : values) level += v;
      level /= static_cast<double>(values.size());
    } else {
      const auto mid = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
      std::nth_element(values.begin(), mid, values.end());
      level = *mid;
      if (values.size() % 2 == 0) level = 0.5 * (level + *std::max_element(values.begin(), mid));
    }
    row_level[static_cast<size_t>(y)] = level;
  }
  for (long y = 0; y < box.y0; ++y) row_level[static_cast<size_t>(y)] = row_level[static_cast<size_t>(box.y0)];
  for (long y = box.y0 + box.height; y < raw.height; ++y) {
    row_level[static_cast<size_t>(y)] = row_level[static_cast<size_t>(box.y0 + box.height - 1)];
  }
  if (options.smoothing_rows <= 0) return row_level;
  // A running mean whose window shrinks symmetrically near the ends, so a
  // linear drift is reproduced exactly everywhere.
  const long n = raw.height;
  std::vector<double> prefix(static_cast<size_t>(n) + 1, 0.0);
  for (long y = 0; y < n; ++y)
    prefix[static_cast<size_t>(y) + 1] = prefix[static_cast<size_t>(y)] + row_level[static_cast<size_t>(y)];
  std::vector<double> smoothed(static_cast<size_t>(n));
  for (long y = 0; y < n; ++y) {
    const long h = std::min({options.smoothing_rows, y, n - 1 - y});
    smoothed[static_cast<size_t>(y)] =
        (prefix[static_cast<size_t>(y + h + 1)] - prefix[static_cast<size_t>(y - h)]) / static_cast<double>(2 * h + 1);
  }
  return smoothed;
}

fits::Image<float> subtract_overscan(const fits::Image<std::int32_t>& raw, const Amplifier& amp,
                                     const OverscanOptions& options) {
  require_inside(amp.datasec, raw.width, raw.height, "DATASEC");
  const auto levels = overscan_levels(raw, amp.biassec, options);
  return isr_subtract_row_levels(raw, amp.datasec, levels.data());
}

template <typename T>
void assemble_amplifier(fits::Image<T>& detector, const fits::Image<T>& amp_pixels, const Section& detsec) {
  if (amp_pixels.width != detsec.width() || amp_pixels.height != detsec.height()) {
    throw std::invalid_argument(
        fmt::format("amplifier pixels {}x{} do not fit DETSEC {}", amp_pixels.width, amp_pixels.height, detsec.str()));
  }
  require_inside(detsec, detector.width, detector.height, "DETSEC");
  for (long j = 0; j < amp_pixels.height; ++j) {
    const long dy = detsec.row(j);
    for (long i = 0; i < amp_pixels.width; ++i) detector.at(detsec.column(i), dy) = amp_pixels.at(i, j);
  }
}

template void assemble_amplifier<float>(fits::Image<float>&, const fits::Image<float>&, const Section&);
template void assemble_amplifier<std::int32_t>(fits::Image<std::int32_t>&, const fits::Image<std::int32_t>&,
                                               const Section&);

fits::Image<std::int32_t> saturation_mask(const fits::Image<std::int32_t>& raw, const Amplifier& amp) {
  require_inside(amp.datasec, raw.width, raw.height, "DATASEC");
  fits::Image<std::int32_t> out(amp.datasec.width(), amp.datasec.height(), 0);
  for (long j = 0; j < out.height; ++j) {
    for (long i = 0; i < out.width; ++i) {
      if (raw.at(amp.datasec.column(i), amp.datasec.row(j)) >= amp.saturation) {
        out.at(i, j) = mask_bit(MaskPlane::saturated);
      }
    }
  }
  return out;
}

void subtract_bias(fits::Image<float>& image, const fits::Image<float>& bias) {
  require_same_shape(image, bias, "the bias");
  for (size_t k = 0; k < image.pixels.size(); ++k) image.pixels[k] -= bias.pixels[k];
}

fits::Image<float> poisson_variance(const fits::Image<float>& electrons, const fits::Image<float>& read_noise_sq) {
  require_same_shape(electrons, read_noise_sq, "the read-noise map");
  fits::Image<float> var(electrons.width, electrons.height);
  for (size_t k = 0; k < var.pixels.size(); ++k) {
    var.pixels[k] = std::max(electrons.pixels[k], 0.0F) + read_noise_sq.pixels[k];
  }
  return var;
}

void divide_flat(Exposure& exposure, const fits::Image<float>& flat, float bad_threshold) {
  require_same_shape(exposure.image, flat, "the flat");
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t k = 0; k < flat.pixels.size(); ++k) {
    const float f = flat.pixels[k];
    if (!(f > 0.0F) || !std::isfinite(f)) {
      exposure.image.pixels[k] = nan;
      exposure.variance.pixels[k] = nan;
      exposure.mask.pixels[k] |= mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::no_data);
      continue;
    }
    exposure.image.pixels[k] /= f;
    exposure.variance.pixels[k] /= f * f;
    if (f < bad_threshold) exposure.mask.pixels[k] |= mask_bit(MaskPlane::bad);
  }
}

void mask_edges(fits::Image<std::int32_t>& mask, long width) {
  mask_edges(mask, width, fits::PixelBox{0, 0, mask.width, mask.height}, mask.width, mask.height);
}

void mask_edges(fits::Image<std::int32_t>& mask, long width, const fits::PixelBox& region, long detector_width,
                long detector_height) {
  if (mask.width != region.width || mask.height != region.height) {
    throw std::invalid_argument(fmt::format("mask_edges: a {}x{} mask for a {}x{} region", mask.width, mask.height,
                                            region.width, region.height));
  }
  if (width <= 0) return;
  const std::int32_t edge = mask_bit(MaskPlane::edge);
  for (long y = 0; y < mask.height; ++y) {
    const long dy = region.y0 + y;
    const bool edge_row = dy < width || dy >= detector_height - width;
    for (long x = 0; x < mask.width; ++x) {
      const long dx = region.x0 + x;
      if (edge_row || dx < width || dx >= detector_width - width) mask.at(x, y) |= edge;
    }
  }
}

void mask_detected(Exposure& exposure, float nsigma) {
  const std::int32_t detected = mask_bit(MaskPlane::detected);
  for (size_t k = 0; k < exposure.image.pixels.size(); ++k) {
    const float v = exposure.image.pixels[k];
    const float var = exposure.variance.pixels[k];
    if (var > 0.0F && v > nsigma * std::sqrt(var)) exposure.mask.pixels[k] |= detected;
  }
}

Section read_detsize(fits::File& raw) {
  raw.move_to_hdu(1);
  const auto detsize_text = raw.read_string("DETSIZE");
  if (!detsize_text) throw std::invalid_argument(fmt::format("{}: raw file without DETSIZE", raw.path().string()));
  return parse_section(*detsize_text);
}

IsrBoxResult run_isr_box(fits::File& raw, const fits::Image<float>& bias, const fits::Image<float>& flat,
                         const fits::PixelBox& box, const IsrOptions& options) {
  const Section detsize = read_detsize(raw);
  const long width = detsize.width(), height = detsize.height();
  if (box.x0 < 0 || box.y0 < 0 || box.width <= 0 || box.height <= 0 || box.x0 + box.width > width ||
      box.y0 + box.height > height) {
    throw std::invalid_argument(fmt::format("{}: pixel box [{}+{}, {}+{}] outside the {}x{} detector",
                                            raw.path().string(), box.x0, box.width, box.y0, box.height, width,
                                            height));
  }

  IsrBoxResult result;
  Exposure& e = result.exposure;
  e = Exposure(box.width, box.height);
  require_same_shape(e.image, bias, "the bias");
  require_same_shape(e.image, flat, "the flat");
  fits::Image<float> read_noise_sq(box.width, box.height, 0.0F);
  fits::Image<std::int32_t> covered(box.width, box.height, 0);
  const int hdus = raw.hdu_count();
  int amplifiers = 0;
  for (int hdu = 2; hdu <= hdus; ++hdu) {
    raw.move_to_hdu(hdu);
    if (!raw.has_key("DATASEC")) continue;
    ++amplifiers;
    const Amplifier amp = read_amplifier(raw);
    const auto shape = raw.image_shape();
    if (shape.size() < 2) {
      throw std::invalid_argument(
          fmt::format("{}: amplifier {} HDU is not a 2-D image", raw.path().string(), amp.name));
    }
    const long raw_width = shape[0], raw_height = shape[1];
    require_inside(amp.datasec, raw_width, raw_height, "DATASEC");
    require_inside(amp.biassec, raw_width, raw_height, "BIASSEC");
    require_inside(amp.detsec, width, height, "DETSEC");
    const auto part = isr_amp_part(amp.detsec, box);
    if (!part) continue;

    // The overscan columns over every row, so the levels and their running
    // mean are those of the whole amplifier.
    const auto bias_cols = amp.biassec.box();
    const auto overscan = raw.read_subset<std::int32_t>(fits::PixelBox{bias_cols.x0, 0, bias_cols.width, raw_height});
    const Section overscan_sec{1, bias_cols.width, bias_cols.y0 + 1, bias_cols.y0 + bias_cols.height};
    const auto levels = overscan_levels(overscan, overscan_sec, options.overscan);

    // The DATASEC pixels that land in the box; sections relative to what is read.
    const auto raw_box = isr_part_section(amp.datasec, *part, 0, 0).box();
    const auto pixels = raw.read_subset<std::int32_t>(raw_box);
    Amplifier local = amp;
    local.datasec = isr_part_section(amp.datasec, *part, raw_box.x0, raw_box.y0);
    const Section place = isr_part_section(amp.detsec, *part, box.x0, box.y0);

    // Overscan-subtracted ADU -> electrons with this amplifier's gain.
    auto trimmed = isr_subtract_row_levels(pixels, local.datasec, levels.data() + raw_box.y0);
    for (float& v : trimmed.pixels) v = static_cast<float>(v * amp.gain);
    assemble_amplifier(e.image, trimmed, place);
    auto sat = saturation_mask(pixels, local);
    for (auto v : sat.pixels) result.saturated_pixels += v != 0 ? 1 : 0;
    assemble_amplifier(e.mask, sat, place);
    const float rn2 = static_cast<float>(amp.read_noise * amp.read_noise);
    assemble_amplifier(read_noise_sq, fits::Image<float>(place.width(), place.height(), rn2), place);
    assemble_amplifier(covered, fits::Image<std::int32_t>(place.width(), place.height(), 1), place);
  }
  if (amplifiers == 0) {
    throw std::invalid_argument(fmt::format("{}: raw file without amplifier HDUs (DATASEC)", raw.path().string()));
  }

  subtract_bias(e.image, bias);
  e.variance = poisson_variance(e.image, read_noise_sq);
  divide_flat(e, flat, options.bad_flat_threshold);
  // Detector pixels no amplifier reads have no data.
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  for (size_t k = 0; k < covered.pixels.size(); ++k) {
    if (covered.pixels[k] == 0) {
      e.image.pixels[k] = nan;
      e.variance.pixels[k] = nan;
      e.mask.pixels[k] |= mask_bit(MaskPlane::no_data);
    }
  }
  mask_edges(e.mask, options.edge_width, box, width, height);
  return result;
}

namespace {

void isr_subtract_level(fits::Image<float>& image, double level) {
  const auto l = static_cast<float>(level);
  for (float& v : image.pixels) v -= l;
}

}  // namespace

void apply_background(Exposure& e, const BackgroundStats& background, const IsrOptions& options) {
  if (options.subtract_background) {
    isr_subtract_level(e.image, background.level);
    mask_detected(e, options.detection_sigma);
    return;
  }
  // Detection needs the sky removed: work on a subtracted copy.
  Exposure work = e;
  isr_subtract_level(work.image, background.level);
  mask_detected(work, options.detection_sigma);
  e.mask = std::move(work.mask);
}

IsrResult run_isr(fits::File& raw, const fits::Image<float>& bias, const fits::Image<float>& flat,
                  const IsrOptions& options) {
  const Section detsize = read_detsize(raw);
  auto pixels = run_isr_box(raw, bias, flat, fits::PixelBox{0, 0, detsize.width(), detsize.height()}, options);
  IsrResult result;
  result.exposure = std::move(pixels.exposure);
  result.saturated_pixels = pixels.saturated_pixels;
  Exposure& e = result.exposure;

  const std::int32_t reject = mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::saturated) | mask_bit(MaskPlane::no_data) |
                              mask_bit(MaskPlane::edge);
  result.background = estimate_background(e.image, &e.mask, reject);
  apply_background(e, result.background, options);
  if (options.subtract_background) {
    result.psf_fwhm = measure_psf_fwhm(e, result.background.rms, options.psf_sigma_guess);
  } else {
    // The PSF needs the sky removed too.
    Exposure work = e;
    isr_subtract_level(work.image, result.background.level);
    result.psf_fwhm = measure_psf_fwhm(work, result.background.rms, options.psf_sigma_guess);
  }
  return result;
}

namespace {

// Moves to the calibration plane: HDU IMAGE, else the first image with pixels.
void isr_move_to_calibration_plane(fits::File& file, const std::filesystem::path& path) {
  if (file.move_to_named_hdu("IMAGE")) return;
  const int hdus = file.hdu_count();
  for (int hdu = 1; hdu <= hdus; ++hdu) {
    file.move_to_hdu(hdu);
    if (file.current_is_image() && file.image_shape().size() >= 2) return;
  }
  throw fits::FitsError(path, "no image plane in the calibration file");
}

}  // namespace

fits::Image<float> read_calibration(const std::filesystem::path& path) {
  auto file = fits::File::open(path);
  isr_move_to_calibration_plane(file, path);
  return file.read_image<float>();
}

fits::Image<float> read_calibration(const std::filesystem::path& path, const fits::PixelBox& box,
                                    long detector_width, long detector_height) {
  auto file = fits::File::open(path);
  isr_move_to_calibration_plane(file, path);
  const auto shape = file.image_shape();
  if (shape.size() < 2 || shape[0] != detector_width || shape[1] != detector_height) {
    throw std::invalid_argument(fmt::format("{}: calibration is not the {}x{} detector's size", path.string(),
                                            detector_width, detector_height));
  }
  return file.read_subset<float>(box);
}

}  // namespace pixserve::image
