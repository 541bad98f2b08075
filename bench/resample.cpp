// bench/resample: the resampling engine's cost per output pixel.
//
//   - a large warp (rotated TAN -> TAN between two WCSs, the mapping on a
//     grid of 16 pixels) for each kernel: ns per output pixel, image only and
//     with variance and mask;
//   - the same output made in strips of 256 rows, each reading only its
//     source box: time and peak size of the source region;
//   - a 51 x 51 Lanczos-3 stamp through two WCSs, mapping included: the
//     latency a difference-image cutout pays for warping its template.
//
//   build/bench/bench_resample [--size N] [--repeat N]
//
// Times are the thread's CPU time.
#include "image/resample.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <time.h>

#include "image/exposure.hpp"
#include "wcs/wcs.hpp"

using namespace pixserve;

namespace {

// The thread's CPU time: the machine is shared, and waiting for a core is
// not the engine's cost.
struct CpuClock {
  using time_point = double;
  static double now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
};
using Clock = CpuClock;

double seconds_since(Clock::time_point t) { return Clock::now() - t; }

wcs::Wcs tan_wcs(sky::SkyPoint crval, wcs::PixelPoint crpix, double arcsec, double degrees) {
  wcs::TanParameters t;
  t.crval = crval;
  t.crpix = crpix;
  const double s = arcsec / 3600.0, a = degrees * std::numbers::pi / 180.0;
  t.cd = {-s * std::cos(a), s * std::sin(a), s * std::sin(a), s * std::cos(a)};
  return wcs::Wcs::tan(t);
}

image::Exposure noise_exposure(long width, long height) {
  image::Exposure e(width, height);
  std::mt19937 random(1);
  std::normal_distribution<float> noise(100.0F, 10.0F);
  for (auto& v : e.image.pixels) v = noise(random);
  std::fill(e.variance.pixels.begin(), e.variance.pixels.end(), 100.0F);
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  long size = 2048;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--size")) size = std::stol(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::stoi(argv[i + 1]);
  }
  // The source is larger than the output so that a 20 degree rotation keeps
  // (nearly) every output pixel on it.
  const long source_size = size + size / 2;
  const auto source_wcs = tan_wcs({150.0, 2.2}, {source_size / 2.0, source_size / 2.0}, 0.2, 0.0);
  const auto output_wcs = tan_wcs({150.0, 2.2}, {size / 2.0, size / 2.0}, 0.2, 20.0);
  const image::Exposure source = noise_exposure(source_size, source_size);
  auto to_source = [&](double x, double y) -> std::optional<wcs::PixelPoint> {
    return source_wcs.sky_to_pixel(output_wcs.pixel_to_sky({x, y}));
  };
  const fits::PixelBox out{0, 0, size, size};
  const double pixels = static_cast<double>(size) * static_cast<double>(size);

  auto t = Clock::now();
  const image::GridMapping map(out, 16, image::GridMapping::Lattice{}, to_source);
  fmt::print("mapping {} x {} on a 16-pixel grid: {:.1f} ms\n", size, size, seconds_since(t) * 1e3);

  for (const auto kernel : {image::Kernel::nearest, image::Kernel::bilinear, image::Kernel::lanczos3}) {
    const image::Resampler r(kernel, source);
    double best_image = 1e9, best_full = 1e9;
    for (int k = 0; k < repeat; ++k) {
      t = Clock::now();
      const auto img = r.warp_image(map, out);
      best_image = std::min(best_image, seconds_since(t));
      t = Clock::now();
      const auto e = r.warp(map, out);
      best_full = std::min(best_full, seconds_since(t));
    }
    fmt::print("{:>9}: image only {:6.1f} ns/pixel, image + variance + mask {:6.1f} ns/pixel\n",
               image::kernel_name(kernel), best_image / pixels * 1e9, best_full / pixels * 1e9);
  }

  // Strips: each with its own mapping and only its source pixels.
  {
    const long rows = 256;
    const image::GridMapping::Lattice lattice{};
    t = Clock::now();
    long largest_region = 0;
    for (long y0 = 0; y0 < size; y0 += rows) {
      const fits::PixelBox strip{0, y0, size, std::min(rows, size - y0)};
      const image::GridMapping strip_map(strip, 16, lattice, to_source);
      const auto region = image::source_box(strip_map, image::Kernel::lanczos3, source_size, source_size);
      if (!region) continue;
      largest_region = std::max(largest_region, region->width * region->height);
      // A real caller reads the region from disk; here it is copied.
      image::Exposure planes(region->width, region->height);
      for (long y = 0; y < region->height; ++y) {
        std::copy_n(&source.image.at(region->x0, region->y0 + y), region->width, &planes.image.at(0, y));
        std::copy_n(&source.variance.at(region->x0, region->y0 + y), region->width, &planes.variance.at(0, y));
        std::copy_n(&source.mask.at(region->x0, region->y0 + y), region->width, &planes.mask.at(0, y));
      }
      const auto part =
          image::Resampler(image::Kernel::lanczos3, planes, *region, source_size, source_size).warp(strip_map, strip);
      (void)part;
    }
    fmt::print(
        "lanczos3 in strips of {} rows (mapping and copies included): {:.1f} ns/pixel, largest source "
        "region {:.1f} MB of {:.1f} MB\n",
        rows, seconds_since(t) / pixels * 1e9, static_cast<double>(largest_region) * 12.0 / 1e6,
        static_cast<double>(source_size * source_size) * 12.0 / 1e6);
  }

  // A 51 x 51 stamp, mapping through both WCSs included.
  {
    const int n = 200;
    const fits::PixelBox stamp{size / 2 - 25, size / 2 - 25, 51, 51};
    std::vector<double> us;
    for (int k = 0; k < n; ++k) {
      t = Clock::now();
      const image::GridMapping stamp_map(stamp, 8, to_source);
      const auto e = image::Resampler(image::Kernel::lanczos3, source).warp(stamp_map, stamp);
      us.push_back(seconds_since(t) * 1e6);
    }
    std::sort(us.begin(), us.end());
    fmt::print("51 x 51 lanczos3 stamp through two WCSs: p50 {:.0f} us, p95 {:.0f} us\n", us[us.size() / 2],
               us[us.size() * 95 / 100]);
  }
  return 0;
}
