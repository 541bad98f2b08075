// Unit tests of pixserve::image: FITS sections, the ISR steps on synthetic
// amplifiers with known answers, a whole run_isr on a small raw file, mask
// bits, background and moments, exposure files and deterministic
// compression (resampling: image_resample_test.cpp).

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/mask.hpp"
#include "image/section.hpp"
#include "image/statistics.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using namespace pixserve::image;

namespace {

fs::path isr_tmp_path(const std::string& name) { return pixserve::testing::test_scratch_file(name); }

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// --- sections ---

TEST(Section, ParsesForwardSections) {
  const Section s = parse_section("[1:4096,1:4004]");
  EXPECT_EQ(s, (Section{1, 4096, 1, 4004}));
  EXPECT_EQ(s.width(), 4096);
  EXPECT_EQ(s.height(), 4004);
  EXPECT_FALSE(s.x_reversed());
  EXPECT_EQ(s.column(0), 0);
  EXPECT_EQ(s.row(4003), 4003);
  EXPECT_EQ(s.str(), "[1:4096,1:4004]");
  const auto box = s.box();
  EXPECT_EQ(box.x0, 0);
  EXPECT_EQ(box.width, 4096);
  EXPECT_EQ(parse_section(" [ 4:67 , 2:9 ] "), (Section{4, 67, 2, 9}));
}

TEST(Section, ParsesReversedSections) {
  const Section s = parse_section("[512:257,2002:1]");
  EXPECT_TRUE(s.x_reversed());
  EXPECT_TRUE(s.y_reversed());
  EXPECT_EQ(s.width(), 256);
  EXPECT_EQ(s.height(), 2002);
  EXPECT_EQ(s.column(0), 511);  // the first pixel is x1, counted backwards
  EXPECT_EQ(s.column(255), 256);
  EXPECT_EQ(s.row(0), 2001);
  const auto box = s.box();
  EXPECT_EQ(box.x0, 256);
  EXPECT_EQ(box.y0, 0);
  EXPECT_EQ(section_of(box, true, true), s);
  EXPECT_EQ(section_of({3, 0, 64, 128}), (Section{4, 67, 1, 128}));
}

TEST(Section, RejectsMalformedText) {
  for (const char* bad :
       {"", "[]", "1:2,3:4", "[1:2,3:4", "[1:2;3:4]", "[0:2,1:2]", "[1:2,1:2]x", "[a:2,1:2]", "[-1:2,1:2]",
        "[1:2,1:2,1:3]", "[1:2]", "[1.5:2,1:2]", "[+1:2,1:2]", "[1:2,1:99999999999999999999]"}) {
    EXPECT_THROW(parse_section(bad), std::invalid_argument) << bad;
  }
  EXPECT_THROW(section_of({-1, 0, 4, 4}), std::invalid_argument);
}

// --- overscan, assembly ---

// An amplifier 2 prescan + 6 data + 4 overscan columns wide, 10 rows, whose
// bias level grows linearly along the rows.
struct SyntheticAmp {
  Amplifier amp;
  fits::Image<std::int32_t> raw{12, 10, 0};
  double level(long y) const { return 1000.0 + 3.0 * static_cast<double>(y); }
  double signal(long i, long j) const { return 10.0 * static_cast<double>(i) + 100.0 * static_cast<double>(j); }
  SyntheticAmp() {
    amp.name = "SEGMENT00";
    amp.prescan = Section{1, 2, 1, 10};
    amp.datasec = Section{3, 8, 1, 10};
    amp.biassec = Section{9, 12, 1, 10};
    amp.detsec = Section{1, 6, 1, 10};
    for (long y = 0; y < raw.height; ++y) {
      for (long x = 0; x < raw.width; ++x) {
        const bool data = x >= 2 && x < 8;
        raw.at(x, y) = static_cast<std::int32_t>(level(y) + (data ? signal(x - 2, y) : 0.0));
      }
    }
  }
};

TEST(Overscan, PerRowMeanRemovesLevelAndGradient) {
  const SyntheticAmp s;
  const auto out = subtract_overscan(s.raw, s.amp, {OverscanStatistic::mean, 0, 0});
  ASSERT_EQ(out.width, 6);
  ASSERT_EQ(out.height, 10);
  for (long j = 0; j < out.height; ++j) {
    for (long i = 0; i < out.width; ++i) EXPECT_FLOAT_EQ(out.at(i, j), static_cast<float>(s.signal(i, j)));
  }
}

TEST(Overscan, SmoothingKeepsALinearDriftExact) {
  const SyntheticAmp s;
  const auto levels = overscan_levels(s.raw, s.amp.biassec, {OverscanStatistic::mean, 0, 4});
  for (long y = 0; y < 10; ++y) EXPECT_NEAR(levels[static_cast<size_t>(y)], s.level(y), 1e-9) << y;
}

TEST(Overscan, MedianIgnoresAnOutlierColumn) {
  SyntheticAmp s;
  for (long y = 0; y < 10; ++y) s.raw.at(9, y) += 5000;  // a hot overscan column
  const auto median = overscan_levels(s.raw, s.amp.biassec, {OverscanStatistic::median, 0, 0});
  const auto skipped = overscan_levels(s.raw, s.amp.biassec, {OverscanStatistic::mean, 2, 0});
  for (long y = 0; y < 10; ++y) {
    EXPECT_NEAR(median[static_cast<size_t>(y)], s.level(y), 1e-9);
    EXPECT_NEAR(skipped[static_cast<size_t>(y)], s.level(y), 1e-9);
  }
}

TEST(Assembly, PlacesAmplifiersPerDetsecWithFlips) {
  fits::Image<float> det(8, 4, -1.0F);
  fits::Image<float> a(4, 4), b(4, 4);
  for (long j = 0; j < 4; ++j) {
    for (long i = 0; i < 4; ++i) {
      a.at(i, j) = static_cast<float>(10 * j + i);
      b.at(i, j) = static_cast<float>(100 + 10 * j + i);
    }
  }
  assemble_amplifier(det, a, parse_section("[1:4,1:4]"));
  assemble_amplifier(det, b, parse_section("[8:5,4:1]"));  // read out from the far corner
  EXPECT_EQ(det.at(0, 0), 0.0F);
  EXPECT_EQ(det.at(3, 2), 23.0F);
  // b's first pixel lands at DETSEC's first corner (x=8, y=4 in FITS terms).
  EXPECT_EQ(det.at(7, 3), 100.0F);
  EXPECT_EQ(det.at(4, 3), 103.0F);
  EXPECT_EQ(det.at(7, 0), 130.0F);
  EXPECT_EQ(det.at(4, 0), 133.0F);
  for (float v : det.pixels) EXPECT_GE(v, 0.0F);  // every pixel covered
  EXPECT_THROW(assemble_amplifier(det, a, parse_section("[1:5,1:4]")), std::invalid_argument);
  EXPECT_THROW(assemble_amplifier(det, a, parse_section("[6:9,1:4]")), std::invalid_argument);
}

// --- bias, flat, variance, masks ---

TEST(Calibration, BiasAndFlatCorrectionIsExact) {
  Exposure e(4, 2);
  fits::Image<float> bias(4, 2), flat(4, 2), rn2(4, 2, 25.0F);
  const float truth[8] = {100, 200, 300, 400, 500, 600, 700, 800};
  for (size_t k = 0; k < 8; ++k) {
    flat.pixels[k] = 0.5F + 0.125F * static_cast<float>(k % 4);
    bias.pixels[k] = static_cast<float>(k);
    e.image.pixels[k] = truth[k] * flat.pixels[k] + bias.pixels[k];
  }
  subtract_bias(e.image, bias);
  e.variance = poisson_variance(e.image, rn2);
  divide_flat(e, flat, 0.2F);
  for (size_t k = 0; k < 8; ++k) {
    EXPECT_FLOAT_EQ(e.image.pixels[k], truth[k]);
    const float f = flat.pixels[k];
    EXPECT_FLOAT_EQ(e.variance.pixels[k], (truth[k] * f + 25.0F) / (f * f));
    EXPECT_EQ(e.mask.pixels[k], 0);
  }
  EXPECT_THROW(subtract_bias(e.image, fits::Image<float>(3, 2)), std::invalid_argument);
}

TEST(Calibration, DefectiveFlatPixelsAreMasked) {
  Exposure e(3, 1);
  e.image.pixels = {10, 10, 10};
  e.variance.pixels = {1, 1, 1};
  fits::Image<float> flat(3, 1);
  flat.pixels = {1.0F, 0.05F, 0.0F};
  divide_flat(e, flat, 0.2F);
  EXPECT_EQ(e.mask.pixels[0], 0);
  EXPECT_EQ(e.mask.pixels[1], mask_bit(MaskPlane::bad));
  EXPECT_FLOAT_EQ(e.image.pixels[1], 200.0F);
  EXPECT_EQ(e.mask.pixels[2], mask_bit(MaskPlane::bad) | mask_bit(MaskPlane::no_data));
  EXPECT_TRUE(std::isnan(e.image.pixels[2]));
}

TEST(Masks, SaturationEdgesAndDetection) {
  SyntheticAmp s;
  s.amp.saturation = 1500;
  s.raw.at(4, 7) = 1500;   // data pixel (2, 7)
  s.raw.at(10, 3) = 9999;  // overscan: not an image pixel
  const auto sat = saturation_mask(s.raw, s.amp);
  long count = 0;
  for (auto v : sat.pixels) count += v != 0;
  // Data values reach 1000 + 3 y + 10 i + 100 j >= 1500 for large j too.
  for (long j = 0; j < 10; ++j) {
    for (long i = 0; i < 6; ++i) {
      const bool expected = (i == 2 && j == 7) || s.raw.at(i + 2, j) >= 1500;
      EXPECT_EQ(sat.at(i, j) == mask_bit(MaskPlane::saturated), expected) << i << "," << j;
    }
  }
  EXPECT_GT(count, 0);

  fits::Image<std::int32_t> m(6, 5, 0);
  mask_edges(m, 1);
  EXPECT_EQ(m.at(0, 2), mask_bit(MaskPlane::edge));
  EXPECT_EQ(m.at(5, 4), mask_bit(MaskPlane::edge));
  EXPECT_EQ(m.at(2, 2), 0);

  Exposure e(2, 1);
  e.image.pixels = {6.0F, 4.0F};
  e.variance.pixels = {1.0F, 1.0F};
  mask_detected(e, 5.0F);
  EXPECT_EQ(e.mask.pixels[0], mask_bit(MaskPlane::detected));
  EXPECT_EQ(e.mask.pixels[1], 0);
}

// --- a whole raw file through run_isr ---

TEST(RunIsr, ProcessesASyntheticRawExactly) {
  // A 16x8 detector read by two 8x8 amplifiers, the right one flipped in x.
  // Values are chosen so that every raw ADU is an exact integer.
  const long w = 16, h = 8;
  fits::Image<float> bias(w, h), flat(w, h, 1.0F);
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) {
      bias.at(x, y) = static_cast<float>(6 * ((x + y) % 3));  // 0, 6, 12 electrons
      if (x >= 12) flat.at(x, y) = 0.5F;
    }
  }
  const double truth = 600.0;  // electrons per pixel
  struct AmpDef {
    const char* name;
    double gain, level;
    Section detsec;
  };
  const AmpDef defs[2] = {{"SEGMENT00", 2.0, 1000.0, parse_section("[1:8,1:8]")},
                          {"SEGMENT01", 1.5, 1200.0, parse_section("[16:9,1:8]")}};
  const fs::path path = isr_tmp_path("raw_synthetic.fits");
  {
    auto file = fits::File::create(path);
    file.write_string("DETSIZE", "[1:16,1:8]");
    for (const auto& d : defs) {
      fits::Image<std::int32_t> raw(2 + 8 + 4, 8, 0);
      for (long y = 0; y < 8; ++y) {
        for (long x = 0; x < raw.width; ++x) raw.at(x, y) = static_cast<std::int32_t>(d.level);
        for (long i = 0; i < 8; ++i) {
          const long dx = d.detsec.column(i);
          const double e = truth * flat.at(dx, y) + bias.at(dx, y);
          raw.at(2 + i, y) = static_cast<std::int32_t>(std::lround(d.level + e / d.gain));
        }
      }
      if (d.gain == 2.0) raw.at(2 + 5, 6) = 90000;  // saturated: detector (5, 6)
      fits::ImageWriteOptions o;
      o.extname = d.name;
      file.append_image(raw, o);
      file.write_string("DATASEC", "[3:10,1:8]");
      file.write_string("BIASSEC", "[11:14,1:8]");
      file.write_string("PRESCAN", "[1:2,1:8]");
      file.write_string("DETSEC", d.detsec.str());
      file.write_double("GAIN", d.gain);
      file.write_double("RDNOISE", 5.0);
      file.write_double("SATURATE", 60000.0);
    }
    file.close();
  }
  auto raw = fits::File::open(path);
  IsrOptions options;
  options.subtract_background = false;
  options.edge_width = 1;
  options.overscan.smoothing_rows = 0;
  const IsrResult r = run_isr(raw, bias, flat, options);
  ASSERT_EQ(r.exposure.width(), w);
  ASSERT_EQ(r.exposure.height(), h);
  EXPECT_EQ(r.saturated_pixels, 1);
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) {
      const std::int32_t m = r.exposure.mask.at(x, y);
      if (x == 5 && y == 6) {
        EXPECT_NE(m & mask_bit(MaskPlane::saturated), 0);
        continue;
      }
      EXPECT_EQ(m & mask_bit(MaskPlane::saturated), 0);
      EXPECT_EQ((m & mask_bit(MaskPlane::edge)) != 0, x == 0 || y == 0 || x == w - 1 || y == h - 1);
      EXPECT_NEAR(r.exposure.image.at(x, y), truth, 1e-3) << x << "," << y;
      const double f = flat.at(x, y);
      EXPECT_NEAR(r.exposure.variance.at(x, y), (truth * f + 25.0) / (f * f), 1e-2);
    }
  }
  EXPECT_NEAR(r.background.level, truth, 1e-3);
}

// --- statistics ---

TEST(Statistics, BackgroundIgnoresSourcesAndMaskedPixels) {
  std::mt19937_64 rng(3);
  std::normal_distribution<float> noise(0.0F, 10.0F);
  fits::Image<float> img(300, 300);
  fits::Image<std::int32_t> mask(300, 300, 0);
  for (auto& v : img.pixels) v = 500.0F + noise(rng);
  for (long y = 100; y < 110; ++y) {
    for (long x = 100; x < 110; ++x) img.at(x, y) = 50000.0F;  // a bright source
  }
  for (long x = 0; x < 300; ++x) {
    img.at(x, 50) = -1e6F;  // a masked bad row
    mask.at(x, 50) = mask_bit(MaskPlane::bad);
  }
  const auto bg = estimate_background(img, &mask, mask_bit(MaskPlane::bad));
  EXPECT_NEAR(bg.level, 500.0, 0.5);
  EXPECT_NEAR(bg.rms, 10.0, 0.5);
}

TEST(Statistics, AdaptiveMomentsRecoverAGaussian) {
  fits::Image<float> img(64, 64);
  const double cx = 30.3, cy = 33.8, sigma = 2.1;
  for (long y = 0; y < 64; ++y) {
    for (long x = 0; x < 64; ++x) {
      const double r2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
      img.at(x, y) = static_cast<float>(1000.0 * std::exp(-0.5 * r2 / (sigma * sigma)));
    }
  }
  const auto m = adaptive_moments(img, 31.0, 33.0, 1.5);
  ASSERT_TRUE(m);
  EXPECT_NEAR(m->x, cx, 1e-3);
  EXPECT_NEAR(m->y, cy, 1e-3);
  EXPECT_NEAR(m->sigma, sigma, 1e-3);
  Exposure e(64, 64);
  e.image = img;
  const auto fwhm = measure_psf_fwhm(e, 1.0, 1.5);
  ASSERT_TRUE(fwhm);
  EXPECT_NEAR(*fwhm, 2.35482 * sigma, 0.01);
  EXPECT_FALSE(adaptive_moments(fits::Image<float>(64, 64, 0.0F), 32, 32, 2.0));
}

// --- files ---

TEST(ExposureFiles, RoundTripWithMaskKeywordsAndDeterministicCompression) {
  Exposure e(40, 30);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> noise(0.0F, 20.0F);
  for (size_t k = 0; k < e.image.pixels.size(); ++k) {
    e.image.pixels[k] = noise(rng);
    e.variance.pixels[k] = 400.0F + static_cast<float>(k % 7);
    e.mask.pixels[k] = static_cast<std::int32_t>(k % 5 == 0 ? mask_bit(MaskPlane::edge) : 0);
  }
  ExposureHeaders h;
  h.primary.set("DSTYPE", "calexp").set("VISIT", 7).set("BGSUB", true).set("MAGZERO", 28.5);
  h.image.set("BUNIT", "electron");
  wcs::TanParameters p;
  p.crval = {53.0, -28.0};
  p.crpix = {20.0, 15.0};
  p.cd = {-5.5e-5, 0.0, 0.0, 5.5e-5};
  const auto w = wcs::Wcs::tan(p);
  const fs::path path = isr_tmp_path("exposure.fits");
  write_exposure(path, e, h, &w);

  const Exposure back = read_exposure(path);
  EXPECT_EQ(back.image.pixels, e.image.pixels);
  EXPECT_EQ(back.mask.pixels, e.mask.pixels);
  EXPECT_EQ(back.variance.pixels, e.variance.pixels);
  const Exposure part = read_exposure(path, fits::PixelBox{10, 5, 8, 6});
  EXPECT_EQ(part.image.width, 8);
  EXPECT_EQ(part.image.at(0, 0), e.image.at(10, 5));
  {
    auto f = fits::File::open(path);
    EXPECT_EQ(f.read_bool("BGSUB"), true);
    EXPECT_EQ(f.read_int("VISIT"), 7);
    ASSERT_TRUE(f.move_to_named_hdu("MASK"));
    for (const auto& info : kMaskPlanes) {
      EXPECT_EQ(read_mask_bit(f, info.name), static_cast<int>(info.plane)) << info.name;
    }
    ASSERT_TRUE(f.move_to_named_hdu("VARIANCE"));
    EXPECT_EQ(f.read_string("CTYPE1"), "RA---TAN");
  }

  const fs::path a = isr_tmp_path("exposure_a.fits.fz"), b = isr_tmp_path("exposure_b.fits.fz");
  fits::CompressCopyOptions settings;
  settings.quantize_level = 16.0F;
  settings.dither_seed = 42;
  fits::compress_copy(path, a, settings);
  fits::compress_copy(path, b, settings);
  EXPECT_EQ(file_bytes(a), file_bytes(b)) << "compression must not depend on the clock";
  const Exposure c = read_exposure(a);
  EXPECT_EQ(c.mask.pixels, e.mask.pixels);  // lossless
  double worst = 0.0;
  for (size_t k = 0; k < e.image.pixels.size(); ++k)
    worst = std::max(worst, std::abs(double(c.image.pixels[k]) - e.image.pixels[k]));
  EXPECT_LT(worst, 20.0 / 16.0 * 2.0);  // within a couple of quantization steps (noise / q)
  EXPECT_GT(worst, 0.0);                // and lossy indeed
  auto f = fits::File::open(a);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.image_shape(), (std::vector<long>{40, 30}));
  EXPECT_EQ(f.read_string("BUNIT"), "electron");

  const fs::path headers = isr_tmp_path("exposure_headers.fits");
  write_exposure_headers(headers, h, &w);
  auto hf = fits::File::open(headers);
  EXPECT_EQ(hf.hdu_count(), 4);
  ASSERT_TRUE(hf.move_to_named_hdu("IMAGE"));
  EXPECT_TRUE(hf.image_shape().empty());
  EXPECT_EQ(hf.read_string("CTYPE2"), "DEC--TAN");
}

}  // namespace
