// Unit tests of pixserve::image cutouts on synthetic calexp-like files
// (primary metadata + IMAGE float / MASK int32 / VARIANCE float, TAN-SIP
// WCS): pixels equal the source subarray in every plane, the cutout WCS maps
// each pixel where the source did, boxes are the exact pixel cover of the
// shape (checked by brute force), edges clip, errors are typed, compressed
// inputs give the same pixels, and coadd patches assemble into what a single
// big image would give.

#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "image/cutout.hpp"
#include "image/exposure.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using namespace pixserve::image;

namespace {

fs::path tmp_path(const std::string& name) { return pixserve::testing::test_scratch_file(name); }

constexpr double kScale = 0.2 / 3600.0;  // deg/pixel

// A rotated TAN-SIP WCS with noticeable distortion, reference pixel at (cx, cy).
wcs::TanParameters tan_params(double cx, double cy) {
  wcs::TanParameters t;
  t.crval = {150.1, 2.2};
  t.crpix = {cx, cy};
  const double a = 0.3;  // rotation, radians
  t.cd = {-kScale * std::cos(a), kScale * std::sin(a), kScale * std::sin(a), kScale * std::cos(a)};
  wcs::Sip sip;
  sip.order = 2;
  sip.a = {{0, 0, 3e-6}, {0, 2e-6, 0}, {-2e-6, 0, 0}};
  sip.b = {{0, 0, -1e-6}, {0, 3e-6, 0}, {2e-6, 0, 0}};
  t.sip = sip;
  return t;
}

// Deterministic, distinct values per pixel and plane.
float image_value(long x, long y) { return static_cast<float>(x) * 0.25F + static_cast<float>(y) * 1000.0F + 0.125F; }
std::int32_t mask_value(long x, long y) { return static_cast<std::int32_t>((x * 7 + y * 13) % 512); }
float variance_value(long x, long y) { return 10.0F + static_cast<float>((x * 31 + y * 17) % 1000) * 0.5F; }

struct Planes {
  fits::Image<float> image;
  fits::Image<std::int32_t> mask;
  fits::Image<float> variance;
};

Planes make_planes(long w, long h, long x_offset = 0, long y_offset = 0) {
  Planes p{fits::Image<float>(w, h), fits::Image<std::int32_t>(w, h), fits::Image<float>(w, h)};
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) {
      p.image.at(x, y) = image_value(x + x_offset, y + y_offset);
      p.mask.at(x, y) = mask_value(x + x_offset, y + y_offset);
      p.variance.at(x, y) = variance_value(x + x_offset, y + y_offset);
    }
  }
  return p;
}

const std::string kLongText =
    "a header value longer than one card so that it needs the CONTINUE convention to be stored, and must survive";

void write_exposure_file(const fs::path& path, const Planes& p, const wcs::Wcs& w, const char* dstype = "calexp",
                         fits::Compression compression = fits::Compression::none, const char* patch = nullptr) {
  auto f = fits::File::create(path);
  f.write_string("DSTYPE", dstype, "dataset type");
  f.write_int("VISIT", 1234, "visit number");
  f.write_double("MJD-OBS", 60000.123456789, "start of exposure");
  f.write_bool("BGSUB", true, "background subtracted");
  f.write_string("LONGTXT", kLongText);
  if (patch != nullptr) f.write_string("PATCH", patch, "patch x,y");
  f.write_history("made by the cutout test");
  auto opts = [&](const char* name) {
    fits::ImageWriteOptions o;
    o.extname = name;
    o.compression = compression;
    return o;
  };
  f.append_image(p.image, opts("IMAGE"));
  w.write_to(f);
  f.write_string("BUNIT", "electron", "pixel unit");
  f.append_image(p.mask, opts("MASK"));
  w.write_to(f);
  f.write_int("MP_BAD", 0);
  f.write_int("MP_SAT", 1);
  f.write_int("MP_NO_DATA", 8);
  f.append_image(p.variance, opts("VARIANCE"));
  w.write_to(f);
  f.write_string("BUNIT", "electron**2", "pixel unit");
  f.close();
}

template <typename T>
fits::Image<T> subarray(const fits::Image<T>& img, const fits::PixelBox& b) {
  fits::Image<T> out(b.width, b.height);
  for (long y = 0; y < b.height; ++y) {
    for (long x = 0; x < b.width; ++x) out.at(x, y) = img.at(b.x0 + x, b.y0 + y);
  }
  return out;
}

double separation(const sky::SkyPoint& a, const sky::SkyPoint& b) { return sky::angular_distance_deg(a, b); }

// The pixels whose square overlaps (shape ∩ image), by brute-force sampling
// of each pixel's area on a fine grid: the reference the box must equal
// (up to sampling resolution, so only pixels clearly in or out are judged).
struct BruteForce {
  long x_min = LONG_MAX, x_max = LONG_MIN, y_min = LONG_MAX, y_max = LONG_MIN;
};
BruteForce brute_force(const wcs::Wcs& w, long width, long height, const sky::Shape& s, long x_lo, long x_hi, long y_lo,
                       long y_hi) {
  BruteForce b;
  constexpr int kSub = 4;
  for (long y = std::max(0L, y_lo); y <= std::min(height - 1, y_hi); ++y) {
    for (long x = std::max(0L, x_lo); x <= std::min(width - 1, x_hi); ++x) {
      bool in = false;
      for (int j = 0; j < kSub && !in; ++j) {
        for (int i = 0; i < kSub && !in; ++i) {
          const double px = static_cast<double>(x) - 0.5 + (i + 0.5) / kSub;
          const double py = static_cast<double>(y) - 0.5 + (j + 0.5) / kSub;
          in = sky::contains(s, w.pixel_to_sky({px, py}));
        }
      }
      if (in) {
        b.x_min = std::min(b.x_min, x);
        b.x_max = std::max(b.x_max, x);
        b.y_min = std::min(b.y_min, y);
        b.y_max = std::max(b.y_max, y);
      }
    }
  }
  return b;
}

// Box equals the brute-force cover; a sub-pixel sample may miss a sliver of
// at most 1/4 pixel, so allow the box to be one larger only on such edges.
void expect_cover(const fits::PixelBox& box, const BruteForce& b) {
  EXPECT_LE(box.x0, b.x_min);
  EXPECT_GE(box.x0, b.x_min - 1);
  EXPECT_GE(box.x0 + box.width - 1, b.x_max);
  EXPECT_LE(box.x0 + box.width - 1, b.x_max + 1);
  EXPECT_LE(box.y0, b.y_min);
  EXPECT_GE(box.y0, b.y_min - 1);
  EXPECT_GE(box.y0 + box.height - 1, b.y_max);
  EXPECT_LE(box.y0 + box.height - 1, b.y_max + 1);
}

class CutoutTest : public ::testing::Test {
 protected:
  static constexpr long kW = 400, kH = 300;
  void SetUp() override {
    src_ = tmp_path("calexp.fits");
    write_exposure_file(src_, planes_, wcs_);
  }
  wcs::Wcs wcs_ = wcs::Wcs::tan(tan_params(200.0, 150.0));
  Planes planes_ = make_planes(kW, kH);
  fs::path src_;

  sky::SkyPoint sky_at(double x, double y) const { return wcs_.pixel_to_sky({x, y}); }

  // Checks every plane of piece against the source and the WCS of each.
  void check_piece(const fs::path& out, const CutoutPiece& piece) {
    auto f = fits::File::open(out);
    ASSERT_EQ(piece.planes.size(), 3U);
    const auto& b = piece.box;
    f.move_to_hdu(piece.planes[0].hdu);
    EXPECT_EQ(f.read_string("EXTNAME"), "IMAGE");
    EXPECT_EQ(f.read_int("EXTVER"), piece.extver);
    EXPECT_EQ(f.read_image<float>().pixels, subarray(planes_.image, b).pixels);
    f.move_to_hdu(piece.planes[1].hdu);
    EXPECT_EQ(f.read_string("EXTNAME"), "MASK");
    EXPECT_EQ(f.read_image<std::int32_t>().pixels, subarray(planes_.mask, b).pixels);
    f.move_to_hdu(piece.planes[2].hdu);
    EXPECT_EQ(f.read_string("EXTNAME"), "VARIANCE");
    EXPECT_EQ(f.read_image<float>().pixels, subarray(planes_.variance, b).pixels);
    for (const auto& plane : piece.planes) {
      f.move_to_hdu(plane.hdu);
      const auto cw = wcs::Wcs::from_fits(f);
      for (long y : {0L, b.height / 2, b.height - 1}) {
        for (long x : {0L, b.width / 3, b.width - 1}) {
          const auto a = cw.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
          const auto s = wcs_.pixel_to_sky({static_cast<double>(x + b.x0), static_cast<double>(y + b.y0)});
          EXPECT_LT(separation(a, s), 1e-9) << "pixel " << x << "," << y;
        }
      }
    }
  }
};

TEST_F(CutoutTest, CircleCutsEveryPlaneExactly) {
  const sky::Circle c{sky_at(120.0, 80.0), 25.0 * kScale};
  const auto out = tmp_path("circle.fits");
  const auto pieces = write_cutout(src_, {{c}, std::nullopt}, out, "calexp-1234-10");
  ASSERT_EQ(pieces.size(), 1U);
  const auto& b = pieces[0].box;
  // About 51 x 51 pixels around (120, 80): radius 25 px plus the SIP stretch.
  EXPECT_NEAR(static_cast<double>(b.width), 51.0, 2.0);
  EXPECT_NEAR(static_cast<double>(b.height), 51.0, 2.0);
  EXPECT_NEAR(box_center(b).x, 120.0, 1.0);
  EXPECT_NEAR(box_center(b).y, 80.0, 1.0);
  expect_cover(b, brute_force(wcs_, kW, kH, c, 80, 160, 40, 120));
  check_piece(out, pieces[0]);
  auto f = fits::File::open(out);
  EXPECT_EQ(f.hdu_count(), 4);
}

TEST_F(CutoutTest, OnlyThePlanesAskedAreCutInTheImagesOrder) {
  const sky::Circle c{sky_at(120.0, 80.0), 25.0 * kScale};
  const auto out = tmp_path("planes.fits");
  CutoutRequest request{{c}, std::nullopt, {"VARIANCE", "IMAGE"}};
  const auto pieces = write_cutout(src_, request, out, "calexp-1234-10");
  ASSERT_EQ(pieces.size(), 1U);
  ASSERT_EQ(pieces[0].planes.size(), 2U);
  const auto& b = pieces[0].box;
  auto f = fits::File::open(out);
  EXPECT_EQ(f.hdu_count(), 3);
  f.move_to_hdu(2);
  EXPECT_EQ(f.read_string("EXTNAME"), "IMAGE");
  EXPECT_EQ(f.read_image<float>().pixels, subarray(planes_.image, b).pixels);
  f.move_to_hdu(3);
  EXPECT_EQ(f.read_string("EXTNAME"), "VARIANCE");
  EXPECT_EQ(f.read_image<float>().pixels, subarray(planes_.variance, b).pixels);
  EXPECT_EQ(f.read_int("EXTVER"), 1);

  request.planes = {"MASK"};
  const auto mask_only = write_cutout(src_, request, out, "calexp-1234-10");
  ASSERT_EQ(mask_only.size(), 1U);
  auto m = fits::File::open(out);
  EXPECT_EQ(m.hdu_count(), 2);
  m.move_to_hdu(2);
  EXPECT_EQ(m.read_string("EXTNAME"), "MASK");
  EXPECT_EQ(m.read_image<std::int32_t>().pixels, subarray(planes_.mask, b).pixels);
  EXPECT_TRUE(m.has_key("MP_SAT") || m.has_key("MP_BAD") || m.has_key("MP_NO_DATA"));
}

TEST_F(CutoutTest, PlanesTheImageDoesNotHaveAreRefusedByName) {
  const sky::Circle c{sky_at(120.0, 80.0), 25.0 * kScale};
  const auto out = tmp_path("no_plane.fits");
  try {
    write_cutout(src_, {{c}, std::nullopt, {"FLUX"}}, out, "calexp-1234-10");
    FAIL() << "no NoWantedPlane";
  } catch (const NoWantedPlane& e) {
    EXPECT_NE(std::string(e.what()).find("IMAGE, MASK, VARIANCE"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("FLUX"), std::string::npos) << e.what();
  }
  CutoutRequest r;
  EXPECT_TRUE(r.wants("MASK"));
  r.planes = {"IMAGE"};
  EXPECT_TRUE(r.wants(""));  // an unnamed plane is the image
  EXPECT_FALSE(r.wants("MASK"));
}

TEST_F(CutoutTest, HeadersCarryMetadataMaskBitsAndProvenance) {
  const sky::Circle c{sky_at(50.0, 60.0), 10.0 * kScale};
  const auto out = tmp_path("headers.fits");
  const auto pieces = write_cutout(src_, {{c}, std::nullopt}, out, "calexp-1234-10");
  const auto& b = pieces[0].box;
  auto f = fits::File::open(out);
  EXPECT_EQ(f.read_string("DSTYPE"), "calexp");
  EXPECT_EQ(f.read_string("PSDSID"), "calexp-1234-10");
  EXPECT_EQ(f.read_int("VISIT"), 1234);
  ASSERT_TRUE(f.move_to_named_hdu("MASK"));
  EXPECT_EQ(f.read_int("MP_SAT"), 1);
  EXPECT_EQ(f.read_int("MP_NO_DATA"), 8);
  EXPECT_EQ(f.read_int("VISIT"), 1234);
  EXPECT_DOUBLE_EQ(*f.read_double("MJD-OBS"), 60000.123456789);
  EXPECT_EQ(f.read_bool("BGSUB"), true);
  EXPECT_EQ(f.read_string("LONGTXT"), kLongText);
  EXPECT_EQ(f.read_string("PSDSID"), "calexp-1234-10");
  EXPECT_EQ(f.read_string("PSREGION"), region_text(c));
  EXPECT_EQ(f.read_string("PSBOX"), "[" + std::to_string(b.x0 + 1) + ":" + std::to_string(b.x0 + b.width) + "," +
                                        std::to_string(b.y0 + 1) + ":" + std::to_string(b.y0 + b.height) + "]");
  EXPECT_DOUBLE_EQ(*f.read_double("LTV1"), -static_cast<double>(b.x0));
  EXPECT_DOUBLE_EQ(*f.read_double("LTV2"), -static_cast<double>(b.y0));
  EXPECT_FALSE(f.has_key("PSPIXEL"));
  ASSERT_TRUE(f.move_to_named_hdu("VARIANCE"));
  EXPECT_EQ(f.read_string("BUNIT"), "electron**2");
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.read_string("BUNIT"), "electron");
  EXPECT_TRUE(f.read_string("CTYPE1")->ends_with("-SIP"));
  EXPECT_TRUE(f.has_key("A_0_2"));
  EXPECT_FALSE(f.has_key("MP_SAT"));
}

TEST_F(CutoutTest, BoxesAtTheEdgesAreClipped) {
  // Circle centred just outside the lower-left corner: only its part inside
  // the image is cut.
  const sky::Circle c{sky_at(-5.0, -8.0), 30.0 * kScale};
  const auto box = pixel_bounds(wcs_, kW, kH, c);
  ASSERT_TRUE(box);
  EXPECT_EQ(box->x0, 0);
  EXPECT_EQ(box->y0, 0);
  expect_cover(*box, brute_force(wcs_, kW, kH, c, 0, 60, 0, 60));
  const auto out = tmp_path("edge.fits");
  check_piece(out, write_cutout(src_, {{c}, std::nullopt}, out, "x")[0]);

  // A circle larger than the image gives the whole image.
  const sky::Circle big{sky_at(200.0, 150.0), 600.0 * kScale};
  const auto all = pixel_bounds(wcs_, kW, kH, big);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->x0, 0);
  EXPECT_EQ(all->y0, 0);
  EXPECT_EQ(all->width, kW);
  EXPECT_EQ(all->height, kH);

  // Circle crossing the right edge only.
  const sky::Circle right{sky_at(kW + 3.0, 150.0), 12.0 * kScale};
  const auto rb = pixel_bounds(wcs_, kW, kH, right);
  ASSERT_TRUE(rb);
  EXPECT_EQ(rb->x0 + rb->width, kW);
  expect_cover(*rb, brute_force(wcs_, kW, kH, right, kW - 20, kW, 130, 170));
}

TEST_F(CutoutTest, NoOverlapThrowsAndWritesNothing) {
  const sky::Circle far{sky_at(-300.0, 150.0), 20.0 * kScale};
  EXPECT_FALSE(pixel_bounds(wcs_, kW, kH, far));
  const auto out = tmp_path("none.fits");
  fs::remove(out);
  EXPECT_THROW(write_cutout(src_, {{far}, std::nullopt}, out, "x"), NoOverlap);
  EXPECT_FALSE(fs::exists(out));
  // On the other side of the sky (not even projectable near the image).
  const sky::Circle antipode{{330.1, -2.2}, 1.0};
  EXPECT_THROW(write_cutout(src_, {{antipode}, std::nullopt}, out, "x"), NoOverlap);
  // Pixel ranges beyond the image.
  PixelRanges beyond{PixelRange{kW + 1, kW + 10}, std::nullopt};
  EXPECT_THROW(write_cutout(src_, {{}, beyond}, out, "x"), NoOverlap);
  // NoOverlap is a CutoutError.
  EXPECT_THROW(write_cutout(src_, {{far}, std::nullopt}, out, "x"), CutoutError);
}

TEST_F(CutoutTest, BadShapesAreInvalidArguments) {
  const auto out = tmp_path("bad.fits");
  EXPECT_THROW(write_cutout(src_, {{sky::Circle{sky_at(10, 10), -1.0}}, std::nullopt}, out, "x"),
               std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{sky::Circle{{NAN, 2.0}, 0.01}}, std::nullopt}, out, "x"), std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{sky::Circle{{150.0, 95.0}, 0.01}}, std::nullopt}, out, "x"), std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{sky::Polygon{}}, std::nullopt}, out, "x"), std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{sky::RaDecRange{150.0, 150.1, 3.0, 2.0}}, std::nullopt}, out, "x"),
               std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{sky::RaDecRange{150.0, 150.0, 2.0, 3.0}}, std::nullopt}, out, "x"),
               std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{}, PixelRanges{PixelRange{0, 5}, std::nullopt}}, out, "x"), std::invalid_argument);
  EXPECT_THROW(write_cutout(src_, {{}, PixelRanges{PixelRange{9, 5}, std::nullopt}}, out, "x"), std::invalid_argument);
}

TEST_F(CutoutTest, PolygonAndRangeShapes) {
  const sky::Polygon poly({sky_at(100.0, 100.0), sky_at(160.0, 110.0), sky_at(150.0, 170.0), sky_at(95.0, 140.0)});
  const auto pb = pixel_bounds(wcs_, kW, kH, poly);
  ASSERT_TRUE(pb);
  expect_cover(*pb, brute_force(wcs_, kW, kH, poly, 90, 165, 95, 175));
  // The vertices are pixel centres: the box runs from their min to max pixel.
  EXPECT_EQ(pb->x0, 95);
  EXPECT_EQ(pb->x0 + pb->width - 1, 160);
  EXPECT_EQ(pb->y0, 100);
  EXPECT_EQ(pb->y0 + pb->height - 1, 170);

  const auto centre = sky_at(300.0, 200.0);
  const sky::RaDecRange range{centre.ra - 0.001, centre.ra + 0.001, centre.dec - 0.0015, centre.dec + 0.0005};
  const auto rb = pixel_bounds(wcs_, kW, kH, range);
  ASSERT_TRUE(rb);
  expect_cover(*rb, brute_force(wcs_, kW, kH, range, 240, 360, 150, 260));

  const auto out = tmp_path("poly_range.fits");
  const auto pieces = write_cutout(src_, {{poly, range}, std::nullopt}, out, "x");
  ASSERT_EQ(pieces.size(), 2U);
  check_piece(out, pieces[0]);
  check_piece(out, pieces[1]);
  EXPECT_EQ(pieces[1].region.rfind("RANGE ", 0), 0U);
}

TEST_F(CutoutTest, SeveralShapesGiveSeveralCutoutsAndMissesAreSkipped) {
  const sky::Circle a{sky_at(50.0, 50.0), 5.0 * kScale};
  const sky::Circle miss{sky_at(-500.0, 50.0), 5.0 * kScale};
  const sky::Circle b{sky_at(350.0, 250.0), 8.0 * kScale};
  const auto out = tmp_path("multi.fits");
  const auto pieces = write_cutout(src_, {{a, miss, b}, std::nullopt}, out, "x");
  ASSERT_EQ(pieces.size(), 2U);
  EXPECT_EQ(pieces[0].shape_index, 0U);
  EXPECT_EQ(pieces[1].shape_index, 2U);
  EXPECT_EQ(pieces[0].extver, 1);
  EXPECT_EQ(pieces[1].extver, 2);
  check_piece(out, pieces[0]);
  check_piece(out, pieces[1]);
  auto f = fits::File::open(out);
  EXPECT_EQ(f.hdu_count(), 7);

  // Appending a second source's cutouts continues the EXTVER numbering.
  auto g = fits::File::create(tmp_path("multi_id.fits"));
  const auto first = append_cutouts(src_, {{a}, std::nullopt}, g, "one");
  const auto second = append_cutouts(src_, {{b}, std::nullopt}, g, "two", first.back().extver + 1);
  EXPECT_EQ(second[0].extver, 2);
  EXPECT_EQ(second[0].planes[0].hdu, 5);
  g.close();
}

TEST_F(CutoutTest, PixelRangesAloneAndWithShapes) {
  const auto out = tmp_path("pixels.fits");
  PixelRanges r{PixelRange{11, 30}, PixelRange{5, 5}};
  auto pieces = write_cutout(src_, {{}, r}, out, "x");
  ASSERT_EQ(pieces.size(), 1U);
  EXPECT_EQ(pieces[0].box.x0, 10);
  EXPECT_EQ(pieces[0].box.width, 20);
  EXPECT_EQ(pieces[0].box.y0, 4);
  EXPECT_EQ(pieces[0].box.height, 1);
  check_piece(out, pieces[0]);
  {
    auto f = fits::File::open(out);
    f.move_to_hdu(2);
    EXPECT_EQ(f.read_string("PSPIXEL"), "11 30 5 5");
    EXPECT_FALSE(f.has_key("PSREGION"));
  }
  // Only x given, running past the edge: clipped, y whole.
  pieces = write_cutout(src_, {{}, PixelRanges{PixelRange{390, 1000}, std::nullopt}}, out, "x");
  EXPECT_EQ(pieces[0].box.x0, 389);
  EXPECT_EQ(pieces[0].box.width, 11);
  EXPECT_EQ(pieces[0].box.height, kH);
  // Ranges restrict a shape's box.
  const sky::Circle c{sky_at(120.0, 80.0), 25.0 * kScale};
  const auto full = *pixel_bounds(wcs_, kW, kH, c);
  pieces = write_cutout(src_, {{c}, PixelRanges{PixelRange{121, 500}, std::nullopt}}, out, "x");
  EXPECT_EQ(pieces[0].box.x0, 120);
  EXPECT_EQ(pieces[0].box.x0 + pieces[0].box.width, full.x0 + full.width);
  EXPECT_EQ(pieces[0].box.y0, full.y0);
  check_piece(out, pieces[0]);
  // No shape, no ranges: the whole image.
  pieces = write_cutout(src_, {}, out, "x");
  EXPECT_EQ(pieces[0].box.width, kW);
  EXPECT_EQ(pieces[0].box.height, kH);
}

TEST_F(CutoutTest, CutoutOfACutoutComposesOffsets) {
  const auto first = tmp_path("cut1.fits");
  const auto second = tmp_path("cut2.fits");
  const auto p1 = write_cutout(src_, {{}, PixelRanges{PixelRange{101, 200}, PixelRange{51, 150}}}, first, "a");
  const auto p2 = write_cutout(first, {{}, PixelRanges{PixelRange{11, 20}, PixelRange{21, 30}}}, second, "b");
  auto f = fits::File::open(second);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_DOUBLE_EQ(*f.read_double("LTV1"), -110.0);
  EXPECT_DOUBLE_EQ(*f.read_double("LTV2"), -70.0);
  EXPECT_EQ(f.read_image<float>().pixels, subarray(planes_.image, {110, 70, 10, 10}).pixels);
  const auto cw = wcs::Wcs::from_fits(f);
  EXPECT_LT(separation(cw.pixel_to_sky({0, 0}), wcs_.pixel_to_sky({110, 70})), 1e-9);
}

TEST_F(CutoutTest, BoxesRoundTripThroughCutout2DRules) {
  // astropy's overlap_slices: edges = ceil(pos -+ size / 2). With pos the
  // centre of the first and last pixels this gives back [x0, x0 + w) for
  // every size, odd or even.
  for (long x0 : {0L, 1L, 7L, 100L}) {
    for (long w : {1L, 2L, 3L, 50L, 51L}) {
      const fits::PixelBox b{x0, x0 + 3, w, w + 1};
      const auto c = box_center(b);
      EXPECT_EQ(static_cast<long>(std::ceil(c.x - static_cast<double>(b.width) / 2.0)), b.x0);
      EXPECT_EQ(static_cast<long>(std::ceil(c.x + static_cast<double>(b.width) / 2.0)), b.x0 + b.width);
      EXPECT_EQ(static_cast<long>(std::ceil(c.y - static_cast<double>(b.height) / 2.0)), b.y0);
      EXPECT_EQ(static_cast<long>(std::ceil(c.y + static_cast<double>(b.height) / 2.0)), b.y0 + b.height);
    }
  }
}

TEST_F(CutoutTest, TileCompressedInputGivesTheSamePixels) {
  const auto comp = tmp_path("calexp_comp.fits.fz");
  // Lossless compression (floats: shuffled GZIP; ints: RICE), row-by-row tiles.
  write_exposure_file(comp, planes_, wcs_, "calexp_comp", fits::Compression::rice);
  {
    auto f = fits::File::open(comp);
    f.move_to_hdu(2);
    EXPECT_TRUE(f.has_key("ZIMAGE"));
  }
  const sky::Circle c{sky_at(220.0, 140.0), 25.0 * kScale};
  const auto out_plain = tmp_path("plain_cut.fits");
  const auto out_comp = tmp_path("comp_cut.fits");
  const auto pp = write_cutout(src_, {{c}, std::nullopt}, out_plain, "x");
  const auto pc = write_cutout(comp, {{c}, std::nullopt}, out_comp, "x");
  ASSERT_EQ(pc.size(), 1U);
  EXPECT_EQ(pc[0].box.x0, pp[0].box.x0);
  EXPECT_EQ(pc[0].box.width, pp[0].box.width);
  EXPECT_EQ(pc[0].box.y0, pp[0].box.y0);
  EXPECT_EQ(pc[0].box.height, pp[0].box.height);
  check_piece(out_comp, pc[0]);
  auto f = fits::File::open(out_comp);
  ASSERT_TRUE(f.move_to_named_hdu("MASK"));
  EXPECT_FALSE(f.has_key("ZIMAGE"));  // the output is a plain image
  EXPECT_EQ(f.read_int("MP_SAT"), 1);
}

TEST_F(CutoutTest, QuantizedCompressedInputMatchesItsOwnPixels) {
  // Lossy (quantized) planes: the cutout equals the decompressed subarray.
  const auto comp = tmp_path("calexp_lossy.fits.fz");
  {
    auto f = fits::File::create(comp);
    f.write_string("DSTYPE", "calexp_comp");
    fits::ImageWriteOptions o;
    o.extname = "IMAGE";
    o.compression = fits::Compression::rice;
    o.quantize_level = 4.0F;
    f.append_image(planes_.image, o);
    wcs_.write_to(f);
    f.close();
  }
  auto in = fits::File::open(comp);
  in.move_to_hdu(2);
  const auto decoded = in.read_image<float>();
  const sky::Circle c{sky_at(10.0, 290.0), 20.0 * kScale};
  const auto out = tmp_path("lossy_cut.fits");
  const auto pieces = write_cutout(comp, {{c}, std::nullopt}, out, "x");
  auto f = fits::File::open(out);
  f.move_to_hdu(2);
  EXPECT_EQ(f.read_image<float>().pixels, subarray(decoded, pieces[0].box).pixels);
}

TEST_F(CutoutTest, RawFilesAreRefusedWithAClearMessage) {
  const auto raw = tmp_path("raw.fits");
  {
    auto f = fits::File::create(raw);
    f.write_string("DSTYPE", "raw");
    fits::ImageWriteOptions o;
    o.extname = "SEGMENT00";
    f.append_image(fits::Image<std::int32_t>(40, 30, 5), o);
    f.write_string("DATASEC", "[1:32,1:30]");
    f.close();
  }
  try {
    write_cutout(raw, {{}, PixelRanges{PixelRange{1, 5}, std::nullopt}}, tmp_path("raw_cut.fits"), "raw-1");
    FAIL() << "raw cutout accepted";
  } catch (const UnsupportedDataset& e) {
    EXPECT_NE(std::string(e.what()).find("cut the calexp"), std::string::npos) << e.what();
  }
}

// --- coadds across patches ---

class CoaddCutoutTest : public ::testing::Test {
 protected:
  // A 300 x 200 "tract" cut into two patches side by side: inner width 150,
  // border 10, so the patches overlap in tract columns 140..159.
  static constexpr long kW = 300, kH = 200, kInner = 150, kBorder = 10;
  wcs::Wcs tract_ = wcs::Wcs::tan(tan_params(150.0, 100.0));
  Planes tract_planes_ = make_planes(kW, kH);
  fs::path big_ = tmp_path("tract.fits");
  std::vector<fs::path> patches_;

  void SetUp() override {
    write_exposure_file(big_, tract_planes_, tract_, "deepCoadd");
    // Patch 0: tract columns 0..159; patch 1: 140..299. Border pixels (those
    // nearer the other patch's inner region) get a poisoned value, so using
    // them instead of the other patch's inner pixels shows up.
    for (int k = 0; k < 2; ++k) {
      const long x0 = k == 0 ? 0 : kInner - kBorder;
      const long w = k == 0 ? kInner + kBorder : kW - (kInner - kBorder);
      Planes p = make_planes(w, kH, x0, 0);
      for (long y = 0; y < kH; ++y) {
        for (long x = 0; x < w; ++x) {
          const long tx = x + x0;
          const bool border = k == 0 ? tx >= kInner : tx < kInner;
          if (border) {
            p.image.at(x, y) += 1.0e6F;
            p.mask.at(x, y) |= 1 << 20;
            p.variance.at(x, y) = -1.0F;
          }
        }
      }
      const auto path = tmp_path("patch_" + std::to_string(k) + ".fits");
      write_exposure_file(path, p, tract_.shifted(static_cast<double>(x0), 0.0), "deepCoadd",
                          fits::Compression::none, k == 0 ? "0,0" : "1,0");
      patches_.push_back(path);
    }
  }
};

TEST_F(CoaddCutoutTest, AssemblyAcrossThePatchBoundaryEqualsTheBigImage) {
  const sky::Circle c{tract_.pixel_to_sky({kInner - 3.0, 90.0}), 30.0 * kScale};
  const auto out_big = tmp_path("coadd_big_cut.fits");
  const auto out_mosaic = tmp_path("coadd_mosaic_cut.fits");
  const auto direct = write_cutout(big_, {{c}, std::nullopt}, out_big, "tract");
  // Reverse order on purpose: the result must not depend on it.
  const auto mosaic = write_coadd_cutout({patches_[1], patches_[0]}, {{c}, std::nullopt}, out_mosaic, "tract");
  ASSERT_EQ(mosaic.size(), 1U);
  // The union grid starts at the tract origin here.
  EXPECT_EQ(mosaic[0].box.x0, direct[0].box.x0);
  EXPECT_EQ(mosaic[0].box.y0, direct[0].box.y0);
  EXPECT_EQ(mosaic[0].box.width, direct[0].box.width);
  EXPECT_EQ(mosaic[0].box.height, direct[0].box.height);
  EXPECT_LT(mosaic[0].box.x0, kInner - kBorder);  // really spans both patches
  EXPECT_GT(mosaic[0].box.x0 + mosaic[0].box.width, kInner + kBorder);
  auto a = fits::File::open(out_big);
  auto b = fits::File::open(out_mosaic);
  for (int h = 2; h <= 4; ++h) {
    a.move_to_hdu(h);
    b.move_to_hdu(h);
    EXPECT_EQ(a.read_string("EXTNAME"), b.read_string("EXTNAME"));
    if (h == 3) {
      EXPECT_EQ(a.read_image<std::int32_t>().pixels, b.read_image<std::int32_t>().pixels);
    } else {
      EXPECT_EQ(a.read_image<float>().pixels, b.read_image<float>().pixels);
    }
    const auto wa = wcs::Wcs::from_fits(a), wb = wcs::Wcs::from_fits(b);
    for (const wcs::PixelPoint p : {wcs::PixelPoint{0, 0}, wcs::PixelPoint{40, 50}, wcs::PixelPoint{60, 5}}) {
      EXPECT_LT(separation(wa.pixel_to_sky(p), wb.pixel_to_sky(p)), 1e-9);
    }
  }
  b.move_to_hdu(2);
  EXPECT_EQ(b.read_string("PSPATCHS"), "0,0 1,0");
  EXPECT_FALSE(b.has_key("PATCH"));
  b.move_to_hdu(1);
  EXPECT_FALSE(b.has_key("PATCH"));
  EXPECT_EQ(b.read_string("DSTYPE"), "deepCoadd");
}

TEST_F(CoaddCutoutTest, AnAssemblyCutsOnlyThePlanesAsked) {
  const sky::Circle c{tract_.pixel_to_sky({kInner - 3.0, 90.0}), 30.0 * kScale};
  const auto out_big = tmp_path("coadd_big_mask.fits");
  const auto out_mosaic = tmp_path("coadd_mosaic_mask.fits");
  write_cutout(big_, {{c}, std::nullopt, {"MASK"}}, out_big, "tract");
  const auto pieces = write_coadd_cutout(patches_, {{c}, std::nullopt, {"MASK"}}, out_mosaic, "tract");
  ASSERT_EQ(pieces.size(), 1U);
  ASSERT_EQ(pieces[0].planes.size(), 1U);
  auto a = fits::File::open(out_big);
  auto b = fits::File::open(out_mosaic);
  ASSERT_EQ(b.hdu_count(), 2);
  a.move_to_hdu(2);
  b.move_to_hdu(2);
  EXPECT_EQ(b.read_string("EXTNAME"), "MASK");
  EXPECT_EQ(a.read_image<std::int32_t>().pixels, b.read_image<std::int32_t>().pixels);
  EXPECT_THROW(write_coadd_cutout(patches_, {{c}, std::nullopt, {"FLUX"}}, out_mosaic, "tract"), NoWantedPlane);
}

TEST_F(CoaddCutoutTest, CutoutInsideOnePatchUsesOnlyIt) {
  const sky::Circle c{tract_.pixel_to_sky({40.0, 60.0}), 10.0 * kScale};
  const auto out = tmp_path("coadd_one.fits");
  const auto pieces = write_coadd_cutout(patches_, {{c}, std::nullopt}, out, "tract");
  auto f = fits::File::open(out);
  f.move_to_hdu(2);
  EXPECT_EQ(f.read_image<float>().pixels, subarray(tract_planes_.image, pieces[0].box).pixels);
  EXPECT_EQ(f.read_string("PATCH"), "0,0");
  EXPECT_FALSE(f.has_key("PSPATCHS"));
}

TEST_F(CoaddCutoutTest, UncoveredPixelsAreNoData) {
  // Only patch 1 given: the union grid starts at its origin; cut by pixels.
  const auto out = tmp_path("coadd_single.fits");
  const auto pieces = write_coadd_cutout({patches_[1]}, {{}, PixelRanges{PixelRange{1, 5}, PixelRange{1, 2}}}, out, "t");
  auto f = fits::File::open(out);
  f.move_to_hdu(2);
  // Patch 1's first columns are its (poisoned) border: nothing else covers them.
  EXPECT_FLOAT_EQ(f.read_image<float>().at(0, 0), image_value(kInner - kBorder, 0) + 1.0e6F);
  (void)pieces;

  // An L-shaped union leaves a corner uncovered: NaN / NO_DATA there.
  const auto lower = tmp_path("patch_low.fits");
  const auto upper = tmp_path("patch_up.fits");
  Planes lp = make_planes(100, 50, 0, 0), up = make_planes(50, 50, 0, 50);
  write_exposure_file(lower, lp, tract_, "deepCoadd");
  write_exposure_file(upper, up, tract_.shifted(0.0, 50.0), "deepCoadd");
  const auto out2 = tmp_path("coadd_l.fits");
  const auto p2 = write_coadd_cutout({lower, upper}, {}, out2, "t");
  EXPECT_EQ(p2[0].box.width, 100);
  EXPECT_EQ(p2[0].box.height, 100);
  auto g = fits::File::open(out2);
  g.move_to_hdu(2);
  const auto img = g.read_image<float>();
  EXPECT_TRUE(std::isnan(img.at(99, 99)));
  EXPECT_FLOAT_EQ(img.at(10, 70), image_value(10, 70));
  EXPECT_FLOAT_EQ(img.at(90, 10), image_value(90, 10));
  g.move_to_hdu(3);
  EXPECT_EQ(g.read_image<std::int32_t>().at(99, 99), 1 << 8);
}

// Four patches of a 2 x 2 block overlapping by 10 pixels, one of them
// taller (leaving a hole beside it): every pixel comes from the patch in which it lies farthest from
// the edge (ties: the first patch by path), checked against that rule
// pixel by pixel, corners included.
TEST_F(CoaddCutoutTest, EachPixelComesFromThePatchWhereItIsFarthestFromTheEdge) {
  struct P {
    long x0, y0, w, h;
  };
  const std::vector<P> layout = {{0, 0, 60, 50}, {50, 0, 60, 50}, {0, 40, 60, 50}, {50, 40, 60, 70}};
  std::vector<fs::path> paths;
  for (size_t k = 0; k < layout.size(); ++k) {
    const auto& q = layout[k];
    Planes planes = make_planes(q.w, q.h, q.x0, q.y0);
    std::fill(planes.image.pixels.begin(), planes.image.pixels.end(), static_cast<float>(k + 1));
    paths.push_back(tmp_path("block_" + std::to_string(k) + ".fits"));
    write_exposure_file(paths.back(), planes, tract_.shifted(static_cast<double>(q.x0), static_cast<double>(q.y0)),
                        "deepCoadd");
  }
  const auto out = tmp_path("block.fits");
  const auto pieces = write_coadd_cutout(paths, {}, out, "t");
  ASSERT_EQ(pieces.size(), 1U);
  ASSERT_EQ(pieces[0].box.width, 110);
  ASSERT_EQ(pieces[0].box.height, 110);
  auto f = fits::File::open(out);
  f.move_to_hdu(2);
  const auto img = f.read_image<float>();
  long mismatches = 0, holes = 0;
  for (long y = 0; y < 110; ++y) {
    for (long x = 0; x < 110; ++x) {
      int owner = -1;
      long best = -1;
      for (size_t k = 0; k < layout.size(); ++k) {
        const auto& q = layout[k];
        if (x < q.x0 || x >= q.x0 + q.w || y < q.y0 || y >= q.y0 + q.h) continue;
        const long score = std::min({x - q.x0, q.x0 + q.w - 1 - x, y - q.y0, q.y0 + q.h - 1 - y});
        if (score > best) {
          best = score;
          owner = static_cast<int>(k);
        }
      }
      const float v = img.at(x, y);
      if (owner < 0) {
        holes += std::isnan(v) ? 1 : 0;
        mismatches += std::isnan(v) ? 0 : 1;
      } else {
        mismatches += v == static_cast<float>(owner + 1) ? 0 : 1;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(holes, 50 * 20);  // below the lower left patch, beside the tall one: NaN
}

TEST_F(CoaddCutoutTest, PatchesOnDifferentGridsAreRefused) {
  const auto odd = tmp_path("patch_odd.fits");
  write_exposure_file(odd, make_planes(50, 50), tract_.shifted(0.5, 0.0), "deepCoadd");
  EXPECT_THROW(write_coadd_cutout({patches_[0], odd}, {}, tmp_path("refused.fits"), "t"), std::invalid_argument);
  auto params = tan_params(150.0, 100.0);
  params.crval.dec += 0.01;
  const auto other = tmp_path("patch_other.fits");
  write_exposure_file(other, make_planes(50, 50), wcs::Wcs::tan(params), "deepCoadd");
  EXPECT_THROW(write_coadd_cutout({patches_[0], other}, {}, tmp_path("refused.fits"), "t"), std::invalid_argument);
}

// --- computed exposures (virtual products) ---

std::string cutout_file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The same exposure written fully (write_exposure, with DATASUM) and as
// headers only (write_exposure_headers), under one file name in two
// directories (error messages name the file), plus a pixel function over
// its planes that counts its calls.
class ComputedCutoutTest : public ::testing::Test {
 protected:
  // Over 1 MB per float plane, so whole-image cutouts reserve header room.
  static constexpr long kW = 600, kH = 450;
  wcs::Wcs wcs_ = wcs::Wcs::tan(tan_params(300.0, 225.0));
  Exposure exposure_;
  ExposureHeaders headers_;
  fs::path full_, header_only_;
  int calls_ = 0;

  void SetUp() override {
    const Planes p = make_planes(kW, kH);
    exposure_.image = p.image;
    exposure_.mask = p.mask;
    exposure_.variance = p.variance;
    headers_.primary.set("DSTYPE", "calexp", "dataset type");
    headers_.primary.set("VISIT", 1234, "visit number");
    headers_.primary.set("MJD-OBS", 60000.123456789, "start of exposure");
    headers_.primary.set("LONGTXT", kLongText);
    headers_.primary.set("DETSIZE", "[1:600,1:450]", "detector size");
    headers_.image.set("BUNIT", "electron", "pixel unit");
    headers_.variance.set("BUNIT", "electron**2", "pixel unit");
    full_ = pixserve::testing::test_scratch_dir("full") / "calexp.fits";
    header_only_ = pixserve::testing::test_scratch_dir("headers") / "calexp.fits";
    write_exposure(full_, exposure_, headers_, &wcs_);
    write_exposure_headers(header_only_, headers_, &wcs_);
  }

  ComputedExposure computed() {
    return {header_only_, [this](const fits::PixelBox& b) {
              ++calls_;
              Exposure e;
              e.image = subarray(exposure_.image, b);
              e.mask = subarray(exposure_.mask, b);
              e.variance = subarray(exposure_.variance, b);
              return e;
            }};
  }

  sky::SkyPoint sky_at(double x, double y) const { return wcs_.pixel_to_sky({x, y}); }
};

TEST_F(ComputedCutoutTest, FullFileHasChecksumsTheCutoutsDoNotCopy) {
  auto f = fits::File::open(full_);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_TRUE(f.has_key("DATASUM"));
  const auto out = tmp_path("computed_whole.fits");
  write_cutout(full_, {}, out, "c-1");
  auto c = fits::File::open(out);
  for (int h = 1; h <= c.hdu_count(); ++h) {
    c.move_to_hdu(h);
    EXPECT_FALSE(c.has_key("DATASUM")) << "HDU " << h;
    EXPECT_FALSE(c.has_key("CHECKSUM")) << "HDU " << h;
  }
}

TEST_F(ComputedCutoutTest, OutputIsByteIdenticalToCuttingTheFullFile) {
  const std::vector<std::pair<std::string, CutoutRequest>> requests = {
      {"whole image", {}},
      {"circle", {{sky::Circle{sky_at(120.0, 80.0), 25.0 * kScale}}, std::nullopt}},
      {"circle at the corner", {{sky::Circle{sky_at(2.0, 448.0), 30.0 * kScale}}, std::nullopt}},
      {"polygon",
       {{sky::Polygon{{sky_at(300.0, 200.0), sky_at(340.0, 210.0), sky_at(320.0, 260.0)}}}, std::nullopt}},
      {"range",
       {{sky::RaDecRange{sky_at(400.0, 300.0).ra - 0.001, sky_at(400.0, 300.0).ra + 0.001,
                    sky_at(400.0, 300.0).dec - 0.001, sky_at(400.0, 300.0).dec + 0.001}},
        std::nullopt}},
      {"pixels alone", {{}, PixelRanges{PixelRange{11, 560}, PixelRange{3, 3}}}},
      {"variance and mask", {{sky::Circle{sky_at(120.0, 80.0), 25.0 * kScale}}, std::nullopt, {"VARIANCE", "MASK"}}},
      {"pixels x only", {{}, PixelRanges{PixelRange{590, 700}, std::nullopt}}},
      {"shapes and pixels",
       {{sky::Circle{sky_at(100.0, 100.0), 40.0 * kScale}, sky::Circle{sky_at(500.0, 400.0), 10.0 * kScale},
         sky::Circle{sky_at(-500.0, -500.0), 10.0 * kScale}},
        PixelRanges{PixelRange{80, 520}, std::nullopt}}},
  };
  for (const auto& [what, request] : requests) {
    SCOPED_TRACE(what);
    const auto a = tmp_path("from_file.fits"), b = tmp_path("from_pixels.fits");
    calls_ = 0;
    const auto pa = write_cutout(full_, request, a, "calexp-1");
    const auto pb = write_cutout(computed(), request, b, "calexp-1");
    ASSERT_EQ(pa.size(), pb.size());
    EXPECT_EQ(calls_, static_cast<int>(pb.size()));  // once per box, not per plane
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_EQ(pa[i].box.x0, pb[i].box.x0);
      EXPECT_EQ(pa[i].box.width, pb[i].box.width);
      EXPECT_EQ(pa[i].planes.size(), pb[i].planes.size());
    }
    const auto bytes = cutout_file_bytes(a);
    EXPECT_GT(bytes.size(), 2880U);
    EXPECT_TRUE(bytes == cutout_file_bytes(b));
  }
}

TEST_F(ComputedCutoutTest, AppendedCutoutsAreByteIdenticalToo) {
  const CutoutRequest request{{sky::Circle{sky_at(200.0, 300.0), 20.0 * kScale}}, std::nullopt};
  const auto a = tmp_path("append_file.fits"), b = tmp_path("append_pixels.fits");
  for (const auto& path : {a, b}) {
    auto out = fits::File::create(path);
    out.write_string("ORIGIN", "test");
    if (path == a) {
      append_cutouts(full_, request, out, "calexp-2", 3);
    } else {
      append_cutouts(computed(), request, out, "calexp-2", 3);
    }
    out.close();
  }
  EXPECT_EQ(calls_, 1);
  EXPECT_TRUE(cutout_file_bytes(a) == cutout_file_bytes(b));
}

TEST_F(ComputedCutoutTest, NoOverlapIsTheSameAndComputesNothing) {
  const CutoutRequest far{{sky::Circle{sky_at(-2000.0, 100.0), 10.0 * kScale}}, std::nullopt};
  const CutoutRequest outside{{}, PixelRanges{PixelRange{700, 800}, std::nullopt}};
  for (const auto& request : {far, outside}) {
    std::string from_file, from_pixels;
    const auto a = tmp_path("none_file.fits"), b = tmp_path("none_pixels.fits");
    try {
      write_cutout(full_, request, a, "x");
    } catch (const NoOverlap& e) {
      from_file = e.what();
    }
    try {
      write_cutout(computed(), request, b, "x");
    } catch (const NoOverlap& e) {
      from_pixels = e.what();
    }
    EXPECT_FALSE(from_file.empty());
    EXPECT_EQ(from_file, from_pixels);
    EXPECT_FALSE(fs::exists(b));
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ComputedCutoutTest, RawHeadersAndMissingDetsizeAreRefused) {
  ExposureHeaders raw = headers_;
  raw.primary.set("DSTYPE", "raw", "dataset type");
  const auto raw_path = tmp_path("raw_headers.fits");
  write_exposure_headers(raw_path, raw, &wcs_);
  ComputedExposure c = computed();
  c.headers = raw_path;
  EXPECT_THROW(write_cutout(c, {}, tmp_path("raw_cut.fits"), "r"), UnsupportedDataset);

  ExposureHeaders no_size;
  no_size.primary.set("DSTYPE", "calexp");
  const auto no_size_path = tmp_path("no_detsize.fits");
  write_exposure_headers(no_size_path, no_size, &wcs_);
  c.headers = no_size_path;
  EXPECT_THROW(write_cutout(c, {}, tmp_path("no_size_cut.fits"), "n"), UnsupportedDataset);
  EXPECT_EQ(calls_, 0);

  // A file path to header-only data is still refused: it has no pixels.
  EXPECT_THROW(write_cutout(header_only_, {}, tmp_path("hdr_cut.fits"), "h"), UnsupportedDataset);
}

TEST_F(ComputedCutoutTest, PixelsOfTheWrongSizeAreALogicError) {
  ComputedExposure c = computed();
  c.pixels = [](const fits::PixelBox&) { return Exposure(3, 3); };
  EXPECT_THROW(write_cutout(c, {{}, PixelRanges{PixelRange{1, 10}, PixelRange{1, 10}}}, tmp_path("bad.fits"), "b"),
               std::logic_error);
}

// A light-curve sized stamp from a larger image, timed (informative only:
// debug/sanitizer builds are much slower than release).
TEST(CutoutTiming, StampFromLargeImage) {
  const long w = 2048, h = 2048;
  const auto path = tmp_path("large.fits");
  const auto wcs = wcs::Wcs::tan(tan_params(1024.0, 1024.0));
  write_exposure_file(path, make_planes(w, h), wcs);
  const sky::Circle c{wcs.pixel_to_sky({1000.0, 900.0}), 25.4 * kScale};
  const auto out = tmp_path("large_stamp.fits");
  constexpr int kRuns = 20;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<CutoutPiece> pieces;
  for (int i = 0; i < kRuns; ++i) pieces = write_cutout(path, {{c}, std::nullopt}, out, "x");
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / kRuns;
  RecordProperty("stamp_ms", std::to_string(ms));
  std::printf("51x51-ish stamp (%ldx%ld) from %ldx%ld, 3 planes: %.3f ms per cutout\n", pieces[0].box.width,
              pieces[0].box.height, w, h, ms);
  EXPECT_LT(ms, 200.0);
}

}  // namespace
