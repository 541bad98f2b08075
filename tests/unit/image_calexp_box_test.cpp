// Unit tests of re-creating a box of a calexp (image/calexp.hpp
// make_calexp_box, image/isr.hpp run_isr_box) from its raw and calibrations
// and the measurements of its whole-detector run: on a realistic raw (four
// amplifiers read from different corners, one with a reversed DATASEC, one
// with parallel overscan rows, a row gap no amplifier reads, drifting noisy
// overscan, saturated stars, defective flat regions), every box gives the
// whole calexp's pixels bit for bit, and the header from the measurements is
// make_calexp's.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "image/calexp.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/mask.hpp"
#include "image/section.hpp"
#include "test_scratch.hpp"
#include "wcs/wcs.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using namespace pixserve::image;

namespace {

struct CbxInputs {
  fs::path raw, bias, flat;
  long width = 0, height = 0;
};

struct CbxAmpDef {
  const char* name;
  double gain, read_noise, level, drift_slope;
  const char* datasec;
  const char* biassec;
  const char* detsec;
  long raw_height;
};

// A 512x516 detector read by four 256x256 amplifiers, one from each corner;
// detector rows 256..259 are read by none. Sky with a gradient, stars (some
// saturating, one across an amplifier boundary), a fixed-pattern bias, a
// flat with a gradient, a low-response region, a dead region and single bad
// pixels; overscan levels drift along the rows and carry read noise.
CbxInputs cbx_write_inputs(const fs::path& dir, std::uint64_t seed) {
  const long w = 512, h = 516;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);

  fits::Image<float> bias(w, h), flat(w, h);
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) {
      bias.at(x, y) = static_cast<float>(3.0 * std::sin(0.05 * static_cast<double>(x)) +
                                         2.0 * std::cos(0.03 * static_cast<double>(y)) + 1.5 * normal(rng));
      flat.at(x, y) = static_cast<float>(1.0 + 0.05 * (static_cast<double>(x) - w / 2.0) / w +
                                         0.03 * (static_cast<double>(y) - h / 2.0) / h + 0.01 * normal(rng));
    }
  }
  for (long y = 400; y < 420; ++y)
    for (long x = 100; x < 130; ++x) flat.at(x, y) = 0.3F;  // BAD
  for (long y = 50; y < 53; ++y)
    for (long x = 300; x < 305; ++x) flat.at(x, y) = 0.0F;  // dead: NO_DATA
  flat.at(7, 300) = std::numeric_limits<float>::quiet_NaN();
  flat.at(400, 10) = -1.0F;
  for (long y = 0; y < h; ++y) bias.at(77, y) += 40.0F;  // a warm column

  // Sky in electrons before the flat: a gradient plus stars.
  fits::Image<double> sky(w, h);
  for (long y = 0; y < h; ++y)
    for (long x = 0; x < w; ++x) sky.at(x, y) = 800.0 + 0.2 * static_cast<double>(x);
  struct Star {
    double x, y, flux;
  };
  std::vector<Star> stars = {{255.6, 128.3, 4e6}, {300.2, 262.7, 3e7}, {40.0, 470.0, 8e7}, {490.5, 20.5, 2e6}};
  for (int k = 0; k < 60; ++k) stars.push_back({uniform(rng) * w, uniform(rng) * h, std::exp(7.0 + 7.0 * uniform(rng))});
  const double sigma = 2.0;
  for (const auto& s : stars) {
    const long x0 = std::max(0L, static_cast<long>(s.x) - 12), x1 = std::min(w, static_cast<long>(s.x) + 13);
    const long y0 = std::max(0L, static_cast<long>(s.y) - 12), y1 = std::min(h, static_cast<long>(s.y) + 13);
    for (long y = y0; y < y1; ++y) {
      for (long x = x0; x < x1; ++x) {
        const double r2 = (x - s.x) * (x - s.x) + (y - s.y) * (y - s.y);
        sky.at(x, y) += s.flux / (2.0 * std::numbers::pi * sigma * sigma) * std::exp(-0.5 * r2 / (sigma * sigma));
      }
    }
  }

  const CbxAmpDef amps[4] = {
      {"SEGMENT00", 1.7, 5.0, 1000.0, 6.0, "[5:260,1:256]", "[261:292,1:256]", "[1:256,1:256]", 256},
      {"SEGMENT01", 1.5, 4.5, 1210.0, -4.0, "[260:5,1:256]", "[261:292,1:256]", "[512:257,1:256]", 256},
      {"SEGMENT10", 2.1, 6.0, 990.0, 2.5, "[5:260,1:256]", "[261:292,1:256]", "[1:256,516:261]", 256},
      {"SEGMENT11", 1.9, 5.5, 1105.0, -1.0, "[5:260,1:256]", "[261:292,1:258]", "[512:257,516:261]", 260},
  };
  const double saturate = 60000.0;
  CbxInputs in{dir / "raw.fits", dir / "bias.fits", dir / "flat.fits", w, h};
  {
    auto file = fits::File::create(in.raw);
    file.write_string("DETSIZE", "[1:512,1:516]");
    file.write_double("SEEING", 0.9);
    file.write_double("MAGZERO", 27.1);
    file.write_double("EXPTIME", 30.0);
    file.write_string("FILTER", "r");
    wcs::Wcs::tan({.crval = {150.0, 2.0}, .crpix = {256.0, 258.0}, .cd = {-0.2 / 3600.0, 0.0, 0.0, 0.2 / 3600.0}, .sip = std::nullopt})
        .write_to(file);
    for (const auto& a : amps) {
      const Section datasec = parse_section(a.datasec), biassec = parse_section(a.biassec),
                    detsec = parse_section(a.detsec);
      fits::Image<std::int32_t> raw(292, a.raw_height, 0);
      auto level = [&](long y) {
        return a.level + 3.0 * std::sin(2.0 * std::numbers::pi * static_cast<double>(y) / 97.0) +
               a.drift_slope * static_cast<double>(y) / static_cast<double>(a.raw_height);
      };
      auto digitize = [&](double adu) {
        return static_cast<std::int32_t>(std::clamp(std::lround(adu), 0L, 65535L));
      };
      for (long y = 0; y < raw.height; ++y)
        for (long x = 0; x < raw.width; ++x) raw.at(x, y) = digitize(level(y) + a.read_noise / a.gain * normal(rng));
      for (long j = 0; j < datasec.height(); ++j) {
        for (long i = 0; i < datasec.width(); ++i) {
          const long dx = detsec.column(i), dy = detsec.row(j);
          const double expected = std::max(0.0, static_cast<double>(flat.at(dx, dy)) * sky.at(dx, dy));
          const double electrons = expected + std::sqrt(expected + a.read_noise * a.read_noise) * normal(rng);
          const double b = std::isfinite(bias.at(dx, dy)) ? bias.at(dx, dy) : 0.0;
          raw.at(datasec.column(i), datasec.row(j)) = digitize(level(datasec.row(j)) + (b + electrons) / a.gain);
        }
      }
      fits::ImageWriteOptions o;
      o.extname = a.name;
      file.append_image(raw, o);
      file.write_string("DATASEC", datasec.str());
      file.write_string("BIASSEC", biassec.str());
      file.write_string("PRESCAN", parse_section("[1:4,1:256]").str());
      file.write_string("DETSEC", detsec.str());
      file.write_double("GAIN", a.gain);
      file.write_double("RDNOISE", a.read_noise);
      file.write_double("SATURATE", saturate);
    }
    file.close();
  }
  for (const auto& [path, plane] : {std::pair{in.bias, &bias}, std::pair{in.flat, &flat}}) {
    auto file = fits::File::create(path);
    fits::ImageWriteOptions o;
    o.extname = "IMAGE";
    file.append_image(*plane, o);
    file.close();
  }
  return in;
}

template <typename T>
bool cbx_same_bits(const fits::Image<T>& whole, const fits::Image<T>& part, const fits::PixelBox& box) {
  if (part.width != box.width || part.height != box.height) return false;
  for (long y = 0; y < box.height; ++y) {
    if (std::memcmp(&whole.at(box.x0, box.y0 + y), &part.at(0, y), sizeof(T) * static_cast<size_t>(box.width)) != 0)
      return false;
  }
  return true;
}

::testing::AssertionResult cbx_box_matches(const Exposure& whole, const Exposure& part, const fits::PixelBox& box) {
  const char* plane = !cbx_same_bits(whole.image, part.image, box)      ? "IMAGE"
                      : !cbx_same_bits(whole.mask, part.mask, box)      ? "MASK"
                      : !cbx_same_bits(whole.variance, part.variance, box) ? "VARIANCE"
                                                                         : nullptr;
  if (plane == nullptr) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << plane << " differs over box x0=" << box.x0 << " y0=" << box.y0
                                       << " width=" << box.width << " height=" << box.height;
}

// Boxes of every kind: single pixels at the corners and next to amplifier
// boundaries and the gap, strips across boundaries, the whole detector, and
// random boxes (mostly stamp-sized, some large).
std::vector<fits::PixelBox> cbx_boxes(long w, long h, int random_count, std::uint64_t seed) {
  std::vector<fits::PixelBox> boxes = {
      {0, 0, 1, 1},         {w - 1, h - 1, 1, 1},  {0, h - 1, 1, 1},     {w - 1, 0, 1, 1},     {255, 255, 1, 1},
      {256, 256, 1, 1},     {255, 259, 2, 2},      {256, 260, 1, 1},     {0, 0, w, h},         {230, 230, 51, 51},
      {231, 240, 51, 51},   {0, 0, 51, 51},        {w - 51, h - 51, 51, 51}, {0, 250, w, 12},  {250, 0, 12, h},
      {1, 1, 3, 3},         {w - 5, 100, 5, 51},   {100, 400, 51, 51},   {280, 30, 51, 51},    {0, 256, w, 4},
  };
  std::mt19937_64 rng(seed);
  auto pick = [&](long lo, long hi) { return std::uniform_int_distribution<long>(lo, hi)(rng); };
  for (int k = 0; k < random_count; ++k) {
    const int kind = static_cast<int>(pick(0, 9));
    const long bw = kind < 6 ? 51 : kind < 8 ? pick(1, 20) : pick(1, w);
    const long bh = kind < 6 ? 51 : kind < 8 ? pick(1, 20) : pick(1, h);
    boxes.push_back({pick(0, w - bw), pick(0, h - bh), bw, bh});
  }
  return boxes;
}

std::string cbx_file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void cbx_check_boxes(const CbxInputs& in, const CalexpParameters& parameters, int random_count, std::uint64_t seed) {
  const Calexp whole =
      make_calexp(in.raw, read_calibration(in.bias), read_calibration(in.flat), parameters);
  ASSERT_EQ(whole.exposure.width(), in.width);
  ASSERT_EQ(whole.exposure.height(), in.height);
  for (const auto& box : cbx_boxes(in.width, in.height, random_count, seed)) {
    const Exposure part = make_calexp_box(in.raw, in.bias, in.flat, parameters, whole.measurements(), box);
    ASSERT_TRUE(cbx_box_matches(whole.exposure, part, box));
  }
}

TEST(CalexpBox, TheFixtureIsRealistic) {
  const auto in = cbx_write_inputs(pixserve::testing::test_scratch_dir(), 11);
  const Calexp c = make_calexp(in.raw, read_calibration(in.bias), read_calibration(in.flat), {});
  long counts[5] = {};
  const MaskPlane planes[5] = {MaskPlane::saturated, MaskPlane::bad, MaskPlane::no_data, MaskPlane::edge,
                               MaskPlane::detected};
  for (auto m : c.exposure.mask.pixels) {
    for (int p = 0; p < 5; ++p) counts[p] += (m & mask_bit(planes[p])) != 0 ? 1 : 0;
  }
  EXPECT_GT(counts[0], 10);                 // saturated stars
  EXPECT_GE(counts[1], 600 + 15 + 2);       // low flat, dead flat, NaN and negative flat pixels
  EXPECT_GE(counts[2], 4 * 512 + 15 + 2);   // the gap rows and the dead flat
  EXPECT_GT(counts[3], 4 * 512);
  EXPECT_GT(counts[4], 100);
  ASSERT_TRUE(c.psf_fwhm.has_value());
  EXPECT_NEAR(*c.psf_fwhm, 2.3548 * 2.0 * 0.2, 0.15);
  EXPECT_NEAR(c.background.level, 851.0, 20.0);  // the sky, 800 + 0.2 x electrons
}

TEST(CalexpBox, EveryBoxEqualsTheWholeCalexpBitForBit) {
  const auto in = cbx_write_inputs(pixserve::testing::test_scratch_dir(), 12);
  cbx_check_boxes(in, {.software_version = "test-1"}, 300, 1);
}

TEST(CalexpBox, EveryBoxEqualsTheWholeCalexpWithOtherIsrOptions) {
  const auto in = cbx_write_inputs(pixserve::testing::test_scratch_dir(), 13);
  CalexpParameters keep_sky;
  keep_sky.isr.subtract_background = false;
  keep_sky.isr.detection_sigma = 3.0F;
  cbx_check_boxes(in, keep_sky, 40, 2);
  CalexpParameters median;
  median.isr.overscan = {OverscanStatistic::median, 3, 0};
  median.isr.edge_width = 0;
  median.isr.bad_flat_threshold = 0.8F;
  cbx_check_boxes(in, median, 40, 3);
  CalexpParameters wide;
  wide.isr.overscan = {OverscanStatistic::mean, 1, 40};
  wide.isr.edge_width = 20;
  cbx_check_boxes(in, wide, 40, 4);
}

TEST(CalexpBox, HeaderFromStoredMeasurementsIsMakeCalexps) {
  const fs::path dir = pixserve::testing::test_scratch_dir();
  const auto in = cbx_write_inputs(dir, 14);
  const CalexpParameters parameters{.software_version = "test-2"};
  const Calexp whole = make_calexp(in.raw, read_calibration(in.bias), read_calibration(in.flat), parameters);
  ASSERT_TRUE(whole.psf_fwhm.has_value());

  // The measurements as the caller stores them: JSON numbers.
  const CalexpMeasurements m = whole.measurements();
  const nlohmann::json stored = {{"bg_level", m.background.level},
                                 {"bg_rms", m.background.rms},
                                 {"bg_samples", m.background.samples},
                                 {"psf_fwhm_arcsec", *m.psf_fwhm_arcsec}};
  const auto parsed = nlohmann::json::parse(stored.dump());
  CalexpMeasurements restored;
  restored.background.level = parsed.at("bg_level").get<double>();
  restored.background.rms = parsed.at("bg_rms").get<double>();
  restored.background.samples = parsed.at("bg_samples").get<std::size_t>();
  restored.psf_fwhm_arcsec = parsed.at("psf_fwhm_arcsec").get<double>();
  EXPECT_EQ(std::memcmp(&restored.background.level, &m.background.level, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&restored.background.rms, &m.background.rms, sizeof(double)), 0);

  const CalexpHeader header = calexp_header(in.raw, parameters, restored);
  EXPECT_EQ(header.width, in.width);
  EXPECT_EQ(header.height, in.height);
  write_calexp(dir / "whole.fits", whole);
  write_exposure(dir / "again.fits", whole.exposure, header.headers, &header.wcs);
  EXPECT_EQ(cbx_file_bytes(dir / "whole.fits"), cbx_file_bytes(dir / "again.fits"));

  // A full-detector box with the restored measurements writes the same file too.
  const Exposure box = make_calexp_box(in.raw, in.bias, in.flat, parameters, restored, {0, 0, in.width, in.height});
  write_exposure(dir / "boxed.fits", box, header.headers, &header.wcs);
  EXPECT_EQ(cbx_file_bytes(dir / "whole.fits"), cbx_file_bytes(dir / "boxed.fits"));

  // Without a PSF measurement the header carries the seeing, as make_calexp's would.
  restored.psf_fwhm_arcsec.reset();
  const auto seeing_header = calexp_header(in.raw, parameters, restored);
  const auto* psf = seeing_header.headers.primary.find("PSFFWHM");
  ASSERT_NE(psf, nullptr);
  EXPECT_EQ(std::get<double>(*psf), 0.9);
}

TEST(CalexpBox, RejectsBoxesOutsideTheDetectorAndWrongCalibrations) {
  const fs::path dir = pixserve::testing::test_scratch_dir();
  const auto in = cbx_write_inputs(dir, 15);
  const CalexpMeasurements m{};
  for (const fits::PixelBox box : {fits::PixelBox{-1, 0, 5, 5}, fits::PixelBox{510, 0, 5, 5},
                                   fits::PixelBox{0, 512, 5, 5}, fits::PixelBox{0, 0, 0, 5}}) {
    EXPECT_THROW(make_calexp_box(in.raw, in.bias, in.flat, {}, m, box), std::invalid_argument);
  }
  {
    auto file = fits::File::create(dir / "small.fits");
    fits::ImageWriteOptions o;
    o.extname = "IMAGE";
    file.append_image(fits::Image<float>(100, 100, 1.0F), o);
    file.close();
  }
  EXPECT_THROW(make_calexp_box(in.raw, dir / "small.fits", in.flat, {}, m, {0, 0, 5, 5}), std::invalid_argument);
  auto raw = fits::File::open(in.raw);
  EXPECT_THROW(run_isr_box(raw, fits::Image<float>(4, 4), fits::Image<float>(5, 5), {0, 0, 5, 5}),
               std::invalid_argument);
}

TEST(CalexpBox, EdgeMaskOfARegionIsTheDetectorsOverIt) {
  fits::Image<std::int32_t> whole(40, 30, 0);
  mask_edges(whole, 3);
  for (const fits::PixelBox box : {fits::PixelBox{0, 0, 40, 30}, fits::PixelBox{2, 2, 5, 5},
                                   fits::PixelBox{10, 10, 10, 10}, fits::PixelBox{35, 26, 5, 4}}) {
    fits::Image<std::int32_t> part(box.width, box.height, 0);
    mask_edges(part, 3, box, 40, 30);
    EXPECT_TRUE(cbx_same_bits(whole, part, box));
  }
  fits::Image<std::int32_t> wrong(4, 4, 0);
  EXPECT_THROW(mask_edges(wrong, 3, {0, 0, 5, 5}, 40, 30), std::invalid_argument);
}

// Not a pass/fail benchmark: prints what a whole calexp and a 51x51 stamp
// of one cost on this 512x516 raw (and checks the stamp is cheaper).
TEST(CalexpBox, StampCostsAFractionOfTheWholeCalexp) {
  const auto in = cbx_write_inputs(pixserve::testing::test_scratch_dir(), 16);
  using clock = std::chrono::steady_clock;
  const CalexpParameters parameters{};
  const int whole_runs = 3;
  auto t0 = clock::now();
  CalexpMeasurements m;
  for (int k = 0; k < whole_runs; ++k) {
    m = make_calexp(in.raw, read_calibration(in.bias), read_calibration(in.flat), parameters).measurements();
  }
  const double whole_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / whole_runs;
  std::mt19937_64 rng(5);
  const int stamp_runs = 200;
  t0 = clock::now();
  for (int k = 0; k < stamp_runs; ++k) {
    const long x0 = std::uniform_int_distribution<long>(0, in.width - 51)(rng);
    const long y0 = std::uniform_int_distribution<long>(0, in.height - 51)(rng);
    const auto e = make_calexp_box(in.raw, in.bias, in.flat, parameters, m, {x0, y0, 51, 51});
    ASSERT_EQ(e.width(), 51);
  }
  const double stamp_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / stamp_runs;
  t0 = clock::now();
  for (int k = 0; k < stamp_runs; ++k) calexp_header(in.raw, parameters, m);
  const double header_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count() / stamp_runs;
  std::printf("make_calexp 512x516: %.2f ms; make_calexp_box 51x51: %.3f ms; calexp_header: %.3f ms\n", whole_ms,
              stamp_ms, header_ms);
  EXPECT_LT(stamp_ms, whole_ms);
}

}  // namespace
