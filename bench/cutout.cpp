// bench/cutout: the cutout engine alone (no HTTP): 51x51 postage-stamp
// latency (p50/p95) from a 4k x 4k calexp, plain and tile-compressed, side by
// side with astropy's Cutout2D doing the same job (open + cut + write, run by
// /usr/bin/python3 in one process so interpreter start-up is not counted);
// and a CCD-sized cutout's bytes/s against a plain read of the file's bytes
// from the page cache. The concurrent-client figures of the SODA service
// belong to the HTTP benchmark.
//
//   build/bench_cutout [--stamps N] [--size N] [--dir DIR] [--no-astropy]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "image/cutout.hpp"
#include "wcs/wcs.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(static_cast<double>(v.size() - 1), p * static_cast<double>(v.size())))];
}

constexpr double kScale = 0.2 / 3600.0;

wcs::Wcs make_wcs(long size) {
  wcs::TanParameters t;
  t.crval = {150.1, 2.2};
  t.crpix = {static_cast<double>(size) / 2.0, static_cast<double>(size) / 2.0};
  t.cd = {-kScale, 0.0, 0.0, kScale};
  wcs::Sip sip;
  sip.order = 2;
  sip.a = {{0, 0, 1e-7}, {0, 2e-7, 0}, {-1e-7, 0, 0}};
  sip.b = {{0, 0, -1e-7}, {0, 1e-7, 0}, {2e-7, 0, 0}};
  t.sip = sip;
  return wcs::Wcs::tan(t);
}

// A calexp-like file: noise-like image and variance, sparse mask bits.
void write_calexp(const fs::path& path, long size, const wcs::Wcs& w, bool compressed) {
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(100.0F, 10.0F);
  fits::Image<float> image(size, size), variance(size, size);
  fits::Image<std::int32_t> mask(size, size, 0);
  for (auto& v : image.pixels) v = noise(rng);
  for (auto& v : variance.pixels) v = 100.0F + 0.01F * noise(rng);
  for (size_t i = 0; i < mask.pixels.size(); i += 97) mask.pixels[i] = 1 << (i % 9);
  auto f = fits::File::create(path);
  f.write_string("DSTYPE", compressed ? "calexp_comp" : "calexp");
  f.write_int("VISIT", 1);
  auto opts = [&](const char* name, float q) {
    fits::ImageWriteOptions o;
    o.extname = name;
    if (compressed) {
      o.compression = fits::Compression::rice;
      o.quantize_level = q;  // as calexp_comp: quantized floats, lossless mask
    }
    return o;
  };
  f.append_image(image, opts("IMAGE", 16.0F));
  w.write_to(f);
  f.append_image(mask, opts("MASK", 0.0F));
  w.write_to(f);
  f.write_int("MP_BAD", 0);
  f.append_image(variance, opts("VARIANCE", 16.0F));
  w.write_to(f);
  f.close();
}

struct Stamp {
  double ra, dec, x, y;
};

std::vector<double> time_pixserve(const fs::path& src, const std::vector<Stamp>& stamps, const fs::path& out) {
  std::vector<double> ms;
  for (const auto& s : stamps) {
    const auto t = Clock::now();
    image::write_cutout(src, {{sky::Circle{{s.ra, s.dec}, 25.4 * kScale}}, std::nullopt}, out, "bench");
    ms.push_back(ms_since(t));
  }
  return ms;
}

// The same stamps with astropy, timed inside Python; returns per-stamp ms.
std::vector<double> time_astropy(const fs::path& src, const std::vector<Stamp>& stamps, const fs::path& dir) {
  const fs::path script = dir / "astropy_stamps.py", input = dir / "stamps.txt", output = dir / "astropy_ms.txt";
  {
    std::ofstream in(input);
    for (const auto& s : stamps) in << fmt::format("{:.12f} {:.12f}\n", s.ra, s.dec);
    std::ofstream py(script);
    py << R"(import sys, time
import warnings
from astropy.io import fits
from astropy.wcs import WCS
from astropy.nddata import Cutout2D
from astropy.coordinates import SkyCoord
import astropy.units as u
warnings.simplefilter('ignore')
src, stamps, out, res = sys.argv[1:5]
times = []
for line in open(stamps):
    ra, dec = map(float, line.split())
    t = time.perf_counter()
    with fits.open(src) as h:
        hdus = [fits.PrimaryHDU(header=h[0].header)]
        pos = SkyCoord(ra * u.deg, dec * u.deg)
        for name in ('IMAGE', 'MASK', 'VARIANCE'):
            w = WCS(h[name].header)
            # astropy 5.2's CompImageHDU has no .section: it decompresses the whole plane.
            data = h[name].section if hasattr(h[name], 'section') else h[name].data
            c = Cutout2D(data, pos, (51, 51), wcs=w, mode='trim')
            hdr = h[name].header.copy(); hdr.update(c.wcs.to_header(relax=True))
            hdus.append(fits.ImageHDU(c.data, header=hdr, name=name))
        fits.HDUList(hdus).writeto(out, overwrite=True)
    times.append((time.perf_counter() - t) * 1000)
open(res, 'w').write('\n'.join(map(str, times)))
)";
  }
  const std::string cmd = fmt::format("/usr/bin/python3 {} {} {} {} {}", script.string(), src.string(), input.string(),
                                      (dir / "astropy_stamp.fits").string(), output.string());
  if (std::system(cmd.c_str()) != 0) return {};
  std::vector<double> ms;
  std::ifstream in(output);
  for (double v; in >> v;) ms.push_back(v);
  return ms;
}

void row(const char* what, const std::vector<double>& ms) {
  if (ms.empty()) {
    fmt::print("  {:<44} (not run)\n", what);
    return;
  }
  fmt::print("  {:<44} p50 {:8.3f} ms   p95 {:8.3f} ms\n", what, percentile(ms, 0.5), percentile(ms, 0.95));
}

}  // namespace

int main(int argc, char** argv) {
  int n_stamps = 200;
  long size = 4096;
  bool astropy = true;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-cutout";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--stamps" && i + 1 < argc) n_stamps = std::atoi(argv[++i]);
    else if (a == "--size" && i + 1 < argc) size = std::atol(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--no-astropy") astropy = false;
    else {
      fmt::print(stderr, "usage: bench_cutout [--stamps N] [--size N] [--dir DIR] [--no-astropy]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  const auto w = make_wcs(size);
  const fs::path plain = dir / "calexp.fits", comp = dir / "calexp_comp.fits.fz";
  auto t = Clock::now();
  write_calexp(plain, size, w, false);
  write_calexp(comp, size, w, true);
  fmt::print("wrote {}x{} calexp ({:.0f} MB) and calexp_comp ({:.0f} MB) in {:.1f} s\n", size, size,
             static_cast<double>(fs::file_size(plain)) / 1e6, static_cast<double>(fs::file_size(comp)) / 1e6,
             ms_since(t) / 1000.0);

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pos(60.0, static_cast<double>(size) - 60.0);
  std::vector<Stamp> stamps;
  for (int i = 0; i < n_stamps; ++i) {
    const double x = pos(rng), y = pos(rng);
    const auto s = w.pixel_to_sky({x, y});
    stamps.push_back({s.ra, s.dec, x, y});
  }
  // Warm the page cache (the comparison is CPU and I/O-call cost, not disk).
  time_pixserve(plain, {stamps.front()}, dir / "warm.fits");
  time_pixserve(comp, {stamps.front()}, dir / "warm.fits");

  fmt::print("\n51x51 stamps (CIRCLE r = 25.4 px), {} random positions, 3 planes, open + cut + write:\n", n_stamps);
  const auto p_plain = time_pixserve(plain, stamps, dir / "stamp.fits");
  const auto p_comp = time_pixserve(comp, stamps, dir / "stamp_comp.fits");
  row("pixserve, calexp", p_plain);
  row("pixserve, calexp_comp (tile-compressed)", p_comp);
  if (astropy) {
    const auto a_plain = time_astropy(plain, stamps, dir);
    // Decompressing whole planes makes astropy slow here: fewer stamps.
    const auto a_comp = time_astropy(comp, std::vector<Stamp>(stamps.begin(), stamps.begin() + std::min<size_t>(stamps.size(), 10)), dir);
    row("astropy Cutout2D, calexp", a_plain);
    row("astropy Cutout2D, calexp_comp (10 stamps)", a_comp);
    if (!a_plain.empty()) fmt::print("  speed-up (p50), calexp:      x{:.1f}\n", percentile(a_plain, 0.5) / percentile(p_plain, 0.5));
    if (!a_comp.empty()) fmt::print("  speed-up (p50), calexp_comp: x{:.1f}\n", percentile(a_comp, 0.5) / percentile(p_comp, 0.5));
  }

  // CCD-sized cutout: the whole image through the engine vs reading the bytes.
  fmt::print("\nCCD-sized cutout ({}x{}, 3 planes):\n", size, size);
  std::vector<double> big, raw;
  const double bytes = static_cast<double>(size) * static_cast<double>(size) * 12.0;
  for (int i = 0; i < 3; ++i) {
    t = Clock::now();
    image::write_cutout(plain, {{}, image::PixelRanges{}}, dir / "ccd.fits", "bench");
    big.push_back(ms_since(t));
    t = Clock::now();
    std::ifstream in(plain, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    }
    raw.push_back(ms_since(t));
  }
  const double b = percentile(big, 0.5), r = percentile(raw, 0.5);
  fmt::print("  pixserve cutout   {:8.1f} ms  {:7.1f} MB/s\n", b, bytes / 1e6 / (b / 1000.0));
  fmt::print("  plain read        {:8.1f} ms  {:7.1f} MB/s   (ratio x{:.2f})\n", r, bytes / 1e6 / (r / 1000.0), b / r);
  return 0;
}
