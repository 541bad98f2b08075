#include "hips/stretch.hpp"

#include <algorithm>
#include <stdexcept>

namespace pixserve::hips {

Cut cut_from_background(double sky, double noise) {
  if (!(noise > 0.0) || !std::isfinite(noise)) noise = 1.0;
  if (!std::isfinite(sky)) sky = 0.0;
  return Cut{.lo = sky - 2.0 * noise, .hi = sky + 500.0 * noise, .soft = 3.0 * noise, .sky = sky, .noise = noise};
}

std::uint8_t grey_level(float value, const Cut& cut) {
  if (!std::isfinite(value)) return 0;
  const double top = std::asinh((cut.hi - cut.lo) / cut.soft);
  double t = std::asinh(std::max(0.0, static_cast<double>(value) - cut.lo) / cut.soft) / top;
  t = std::clamp(t, 0.0, 1.0);
  return static_cast<std::uint8_t>(std::lround(t * 255.0));
}

Raster grey_raster(const fits::Image<float>& tile, const Cut& cut) {
  Raster out{.width = tile.width, .height = tile.height, .channels = 2, .pixels = {}};
  out.pixels.resize(static_cast<std::size_t>(tile.width * tile.height * 2));
  for (long y = 0; y < tile.height; ++y) {
    const long row = tile.height - 1 - y;  // PNG rows run top-down
    for (long x = 0; x < tile.width; ++x) {
      const float v = tile.at(x, y);
      const auto i = static_cast<std::size_t>((row * tile.width + x) * 2);
      out.pixels[i] = grey_level(v, cut);
      out.pixels[i + 1] = std::isfinite(v) ? 255 : 0;
    }
  }
  return out;
}

Raster color_raster(const fits::Image<float>& red, const fits::Image<float>& green, const fits::Image<float>& blue,
                    const std::array<Cut, 3>& cuts) {
  if (red.width != green.width || red.width != blue.width || red.height != green.height || red.height != blue.height) {
    throw std::invalid_argument("colour bands of different sizes");
  }
  const std::array<const fits::Image<float>*, 3> bands{&red, &green, &blue};
  Raster out{.width = red.width, .height = red.height, .channels = 4, .pixels = {}};
  out.pixels.resize(static_cast<std::size_t>(red.width * red.height * 4));
  // Softening and white point in noise units, as the grey stretch.
  const double q = 3.0, white = std::asinh(500.0 / q);
  for (long y = 0; y < red.height; ++y) {
    const long row = red.height - 1 - y;
    for (long x = 0; x < red.width; ++x) {
      std::array<double, 3> v{};
      int finite = 0;
      for (int c = 0; c < 3; ++c) {
        const float p = bands[static_cast<std::size_t>(c)]->at(x, y);
        if (std::isfinite(p)) {
          ++finite;
          v[static_cast<std::size_t>(c)] =
              std::max(0.0, (p - cuts[static_cast<std::size_t>(c)].sky) / cuts[static_cast<std::size_t>(c)].noise);
        }
      }
      const auto i = static_cast<std::size_t>((row * red.width + x) * 4);
      if (finite == 0) {
        out.pixels[i] = out.pixels[i + 1] = out.pixels[i + 2] = out.pixels[i + 3] = 0;
        continue;
      }
      const double mean = (v[0] + v[1] + v[2]) / 3.0;
      const double f = mean > 0.0 ? std::asinh(mean / q) / white / mean : 0.0;
      double m = 0.0;
      for (auto& c : v) {
        c *= f;
        m = std::max(m, c);
      }
      const double scale = m > 1.0 ? 1.0 / m : 1.0;
      for (int c = 0; c < 3; ++c) {
        out.pixels[i + static_cast<std::size_t>(c)] =
            static_cast<std::uint8_t>(std::lround(std::clamp(v[static_cast<std::size_t>(c)] * scale, 0.0, 1.0) * 255.0));
      }
      out.pixels[i + 3] = 255;
    }
  }
  return out;
}

}  // namespace pixserve::hips
