// Unit tests of pixserve::wcs: TAN and TAN-SIP mappings checked against
// formulas computed independently here (gnomonic deprojection, SIP
// polynomials), header round trips, shifted(), footprints, RA = 0, poles.

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numbers>
#include <random>
#include <string>
#include <utility>

#include "fits/fits.hpp"
#include "fits/header_text.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using pixserve::fits::File;
using pixserve::sky::SkyPoint;
using namespace pixserve::wcs;

namespace {

constexpr double kDeg = std::numbers::pi / 180.0;
constexpr double kArcsec = 1.0 / 3600.0;

fs::path tmp_path(const std::string& name) { return pixserve::testing::test_scratch_file(name); }

// Angular distance in degrees (haversine: accurate for tiny separations).
double separation_deg(const SkyPoint& a, const SkyPoint& b) {
  const double s1 = std::sin((b.dec - a.dec) * kDeg / 2), s2 = std::sin((b.ra - a.ra) * kDeg / 2);
  const double h = s1 * s1 + std::cos(a.dec * kDeg) * std::cos(b.dec * kDeg) * s2 * s2;
  return 2 * std::asin(std::sqrt(std::min(1.0, h))) / kDeg;
}

// Gnomonic (TAN) deprojection of intermediate world coordinates (x, y) in
// degrees about crval: the textbook formulas, independent of wcslib.
SkyPoint tan_deproject(double x_deg, double y_deg, const SkyPoint& crval) {
  const double xi = x_deg * kDeg, eta = y_deg * kDeg;
  const double d0 = crval.dec * kDeg;
  const double denom = std::cos(d0) - eta * std::sin(d0);
  double ra = crval.ra + std::atan2(xi, denom) / kDeg;
  const double dec = std::atan2(eta * std::cos(d0) + std::sin(d0), std::hypot(xi, denom)) / kDeg;
  ra = std::fmod(ra, 360.0);
  if (ra < 0) ra += 360.0;
  return {ra, dec};
}

double poly(const std::vector<std::vector<double>>& c, double u, double v) {
  double s = 0;
  for (size_t p = 0; p < c.size(); ++p)
    for (size_t q = 0; q < c[p].size(); ++q) s += c[p][q] * std::pow(u, p) * std::pow(v, q);
  return s;
}

// The SIP convention by hand: 0-based pixel -> u, v relative to CRPIX ->
// distortion -> CD -> TAN.
SkyPoint sip_by_hand(const TanParameters& t, double x, double y) {
  const double u = x - t.crpix.x, v = y - t.crpix.y;
  double uu = u, vv = v;
  if (t.sip) {
    uu += poly(t.sip->a, u, v);
    vv += poly(t.sip->b, u, v);
  }
  const double ix = t.cd[0] * uu + t.cd[1] * vv;
  const double iy = t.cd[2] * uu + t.cd[3] * vv;
  return tan_deproject(ix, iy, t.crval);
}

TanParameters simple_tan(SkyPoint crval, double scale_arcsec = 1.0, double rotation_deg = 0.0) {
  TanParameters t;
  t.crval = crval;
  t.crpix = {1999.5, 1023.25};
  const double s = scale_arcsec * kArcsec, c = std::cos(rotation_deg * kDeg), n = std::sin(rotation_deg * kDeg);
  // East to the left (CD1_1 < 0), north up, then rotated.
  t.cd = {-s * c, s * n, s * n, s * c};
  return t;
}

// A realistic SIP: 3rd order forward, with a 3rd order inverse as a fit
// would deliver (only the first term here; wcslib inverts iteratively anyway).
Sip test_sip() {
  Sip sip;
  sip.order = 3;
  sip.a = {{0, 0, 2.1e-6, -3.0e-10}, {0, 1.5e-6, 4.0e-10, 0}, {-1.2e-6, 2.0e-10, 0, 0}, {5.0e-10, 0, 0, 0}};
  sip.b = {{0, 0, -1.8e-6, 6.0e-10}, {0, 2.2e-6, -1.0e-10, 0}, {0.9e-6, 3.0e-10, 0, 0}, {-2.5e-10, 0, 0, 0}};
  sip.inverse_order = 2;
  sip.ap = {{0, 0, -2.1e-6}, {0, -1.5e-6, 0}, {1.2e-6, 0, 0}};
  sip.bp = {{0, 0, 1.8e-6}, {0, -2.2e-6, 0}, {-0.9e-6, 0, 0}};
  return sip;
}

TanParameters sip_tan() {
  TanParameters t = simple_tan({150.1, 2.2}, 0.2, 12.0);
  t.crpix = {2036.0, 2000.5};
  t.sip = test_sip();
  return t;
}

std::vector<PixelPoint> grid(double w, double h, int n) {
  std::vector<PixelPoint> pts;
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) pts.push_back({-0.5 + w * i / n, -0.5 + h * j / n});
  return pts;
}

void expect_same_mapping(const Wcs& a, const Wcs& b, double w, double h, double tol_deg) {
  for (const auto& p : grid(w, h, 8)) {
    const auto sa = a.pixel_to_sky(p), sb = b.pixel_to_sky(p);
    EXPECT_LT(separation_deg(sa, sb), tol_deg) << "pixel " << p.x << "," << p.y;
  }
}

}  // namespace

TEST(WcsTransform, CrpixMapsToCrval) {
  const auto t = simple_tan({83.5, -5.25});
  const auto w = Wcs::tan(t);
  const auto s = w.pixel_to_sky(t.crpix);
  EXPECT_NEAR(s.ra, 83.5, 1e-12);
  EXPECT_NEAR(s.dec, -5.25, 1e-12);
  const auto p = w.sky_to_pixel({83.5, -5.25});
  EXPECT_NEAR(p.x, t.crpix.x, 1e-9);
  EXPECT_NEAR(p.y, t.crpix.y, 1e-9);
}

TEST(WcsTransform, KnownOffsetsAtOneArcsecPerPixel) {
  const auto t = simple_tan({10.0, 0.0});
  const auto w = Wcs::tan(t);
  // 3600 px to the left (-x) is 1 degree of tangent-plane offset to the east.
  const auto east = w.pixel_to_sky({t.crpix.x - 3600.0, t.crpix.y});
  EXPECT_NEAR(east.ra, 10.0 + std::atan(1.0 * kDeg) / kDeg, 1e-12);
  EXPECT_NEAR(east.dec, 0.0, 1e-12);
  const auto north = w.pixel_to_sky({t.crpix.x, t.crpix.y + 3600.0});
  EXPECT_NEAR(north.ra, 10.0, 1e-12);
  EXPECT_NEAR(north.dec, std::atan(1.0 * kDeg) / kDeg, 1e-12);
  // Numerical Jacobian: relative accuracy ~1e-10.
  EXPECT_NEAR(w.pixel_scale_deg(), kArcsec, 1e-9 * kArcsec);
  EXPECT_NEAR(Wcs::tan(simple_tan({10, 40}, 0.7, 33.0)).pixel_scale_deg(), 0.7 * kArcsec, 1e-9 * kArcsec);
}

TEST(WcsTransform, TanMatchesIndependentFormulaAndRoundTrips) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> px(-0.5, 4095.5);
  // Round trips hold to 1e-9 px at 1"/px. (At finer scales the floor is set
  // by doubles in degrees: one ulp of RA near 360 is 5.7e-14 deg, i.e.
  // 1e-9 px at 0.2"/px.)
  for (const auto& crval : {SkyPoint{0.0, 0.0}, SkyPoint{201.3, -43.0}, SkyPoint{359.99, 60.0}}) {
    const auto t = simple_tan(crval, 1.0, 25.0);
    const auto w = Wcs::tan(t);
    for (int i = 0; i < 200; ++i) {
      const PixelPoint p{px(rng), px(rng)};
      const auto s = w.pixel_to_sky(p);
      EXPECT_LT(separation_deg(s, sip_by_hand(t, p.x, p.y)), 1e-11);
      EXPECT_GE(s.ra, 0.0);
      EXPECT_LT(s.ra, 360.0);
      const auto back = w.sky_to_pixel(s);
      EXPECT_NEAR(back.x, p.x, 1e-9);
      EXPECT_NEAR(back.y, p.y, 1e-9);
    }
  }
}

TEST(WcsTransform, BatchEqualsSingle) {
  const auto w = Wcs::tan(sip_tan());
  const auto pts = grid(4072, 4000, 5);
  const auto batch = w.pixel_to_sky(pts);
  ASSERT_EQ(batch.size(), pts.size());
  for (size_t i = 0; i < pts.size(); ++i) {
    const auto s = w.pixel_to_sky(pts[i]);
    EXPECT_EQ(s.ra, batch[i].ra);
    EXPECT_EQ(s.dec, batch[i].dec);
  }
  EXPECT_TRUE(w.pixel_to_sky(std::vector<PixelPoint>{}).empty());
}

TEST(WcsTransform, SipMatchesAnalyticFormula) {
  const auto t = sip_tan();
  const auto w = Wcs::tan(t);
  double max_sip_effect = 0;
  for (const auto& p : grid(4072, 4000, 10)) {
    const auto s = w.pixel_to_sky(p);
    EXPECT_LT(separation_deg(s, sip_by_hand(t, p.x, p.y)), 1e-11) << p.x << "," << p.y;
    TanParameters plain = t;
    plain.sip.reset();
    max_sip_effect = std::max(max_sip_effect, separation_deg(s, sip_by_hand(plain, p.x, p.y)));
    // Inverse: wcslib inverts the distortion iteratively.
    const auto back = w.sky_to_pixel(s);
    EXPECT_NEAR(back.x, p.x, 1e-7);
    EXPECT_NEAR(back.y, p.y, 1e-7);
  }
  // The distortion is not negligible (the test would be vacuous otherwise).
  EXPECT_GT(max_sip_effect * 3600.0, 1.0);
}

TEST(WcsTransform, SipHeaderRecordsAndFitsRoundTrip) {
  const auto t = sip_tan();
  const auto w = Wcs::tan(t);
  const std::string rec = w.header_records();
  ASSERT_EQ(rec.size() % 80, 0U);
  for (const char* key : {"CTYPE1  = 'RA---TAN-SIP'", "CTYPE2  = 'DEC--TAN-SIP'", "A_ORDER =", "B_ORDER =",
                          "AP_ORDER=", "BP_ORDER=", "A_0_2   =", "B_3_0   =", "RADESYS = 'ICRS    '",
                          "CRPIX1  =               2037.0"}) {
    EXPECT_NE(rec.find(key), std::string::npos) << key << "\n" << rec;
  }
  // Re-parsing the records gives the same mapping.
  expect_same_mapping(w, Wcs::from_header(rec, static_cast<int>(rec.size() / 80)), 4072, 4000, 1e-13);

  // write_to -> FITS file -> from_fits, in an image HDU and in a compressed one.
  const auto path = tmp_path("sip.fits");
  {
    auto f = File::create(path);
    f.append_image(pixserve::fits::Image<float>(64, 64, 1.0F));
    w.write_to(f);
    pixserve::fits::ImageWriteOptions o;
    o.extname = "COMP";
    o.compression = pixserve::fits::Compression::rice;
    o.quantize_level = 16.0F;
    f.append_image(pixserve::fits::Image<float>(64, 64, 1.0F), o);
    w.write_to(f);
    f.close();
  }
  auto f = File::open(path);
  f.move_to_hdu(2);
  EXPECT_EQ(f.read_int("A_ORDER"), 3);
  EXPECT_EQ(f.read_double("A_0_2"), 2.1e-6);  // coefficients exact
  EXPECT_EQ(f.read_double("CRPIX1"), 2037.0);
  const auto back = Wcs::from_fits(f);
  expect_same_mapping(w, back, 4072, 4000, 1e-13);
  EXPECT_EQ(back.header_records(), rec);  // SIP and all reproduced exactly
  ASSERT_TRUE(f.move_to_named_hdu("COMP"));
  expect_same_mapping(w, Wcs::from_fits(f), 4072, 4000, 1e-13);
}

TEST(WcsTransform, ShiftedMapsSubimagePixelsToSameSky) {
  for (const auto& t : {simple_tan({12.0, 34.0}, 0.3, 10.0), sip_tan()}) {
    const auto w = Wcs::tan(t);
    const double x0 = 1000, y0 = 517.5;
    const auto s = w.shifted(x0, y0);
    for (const auto& p : grid(4000, 4000, 6)) {
      const auto a = w.pixel_to_sky(p);
      const auto b = s.pixel_to_sky({p.x - x0, p.y - y0});
      EXPECT_LT(separation_deg(a, b), 1e-12) << p.x << "," << p.y;
    }
    // Shifting twice composes; the SIP terms survive.
    const auto s2 = s.shifted(-x0, -y0);
    expect_same_mapping(w, s2, 4072, 4000, 1e-12);
    EXPECT_EQ(s2.header_records().find("A_ORDER") != std::string::npos, t.sip.has_value());
  }
}

TEST(WcsTransform, WriteShiftedWritesTheShiftedWcsKeywords) {
  for (const auto& t : {simple_tan({12.0, 34.0}, 0.3, 10.0), sip_tan()}) {
    const auto w = Wcs::tan(t);
    for (const auto& [x0, y0] : {std::pair{0.0, 0.0}, std::pair{1000.0, 517.5}, std::pair{-3.0, 2e6}, std::pair{0.1, 0.7}}) {
      auto by_copy = pixserve::fits::HeaderText::image(-32, 4, 4, "IMAGE");
      auto direct = pixserve::fits::HeaderText::image(-32, 4, 4, "IMAGE");
      w.shifted(x0, y0).write_to(by_copy);
      w.write_shifted_to(direct, x0, y0);
      EXPECT_EQ(direct.bytes(), by_copy.bytes()) << x0 << "," << y0;
    }
  }
}

TEST(WcsTransform, FootprintCornersAtOuterPixelEdges) {
  const auto w = Wcs::tan(sip_tan());
  const long width = 4072, height = 4000;
  const std::vector<PixelPoint> corners{{-0.5, -0.5}, {width - 0.5, -0.5}, {width - 0.5, height - 0.5}, {-0.5, height - 0.5}};
  for (int per_side : {1, 4}) {
    const auto fp = w.footprint(width, height, per_side);
    const auto& v = fp.vertices();
    ASSERT_EQ(v.size(), static_cast<size_t>(4 * per_side));
    // Every corner is a vertex.
    for (const auto& c : corners) {
      const auto sc = w.pixel_to_sky(c);
      double best = 1e9;
      for (const auto& x : v) best = std::min(best, separation_deg(sc, x));
      EXPECT_LT(best, 1e-12) << c.x << "," << c.y;
    }
    // Every vertex lies on the image border, and every pixel centre is inside.
    for (const auto& x : v) {
      const auto p = w.sky_to_pixel(x);
      const bool on_edge = std::abs(p.x + 0.5) < 1e-6 || std::abs(p.x - (width - 0.5)) < 1e-6 ||
                           std::abs(p.y + 0.5) < 1e-6 || std::abs(p.y - (height - 0.5)) < 1e-6;
      EXPECT_TRUE(on_edge) << p.x << "," << p.y;
    }
    for (const auto& p : std::vector<PixelPoint>{{0, 0}, {width - 1.0, height - 1.0}, {2000, 2000}, {0, height - 1.0}}) {
      EXPECT_TRUE(fp.contains(w.pixel_to_sky(p))) << p.x << "," << p.y;
    }
    EXPECT_FALSE(fp.contains(w.pixel_to_sky({-20, 2000})));
  }
}

TEST(WcsTransform, AcrossRaZero) {
  const auto t = simple_tan({0.05, -30.0}, 1.0, 0.0);
  const auto w = Wcs::tan(t);
  // Pixels on either side of the meridian RA = 0.
  const auto west = w.pixel_to_sky({t.crpix.x + 600, t.crpix.y});  // RA decreases to the right
  const auto east = w.pixel_to_sky({t.crpix.x - 600, t.crpix.y});
  EXPECT_GT(west.ra, 359.0);
  EXPECT_LT(west.ra, 360.0);
  EXPECT_GT(east.ra, 0.05);
  EXPECT_LT(east.ra, 1.0);
  for (const auto& s : {west, east}) {
    const auto p = w.sky_to_pixel(s);
    const auto q = w.pixel_to_sky(p);
    EXPECT_LT(separation_deg(s, q), 1e-12);
  }
  // Negative RA input is the same place as RA + 360.
  const auto p1 = w.sky_to_pixel({-0.1, -30.0});
  const auto p2 = w.sky_to_pixel({359.9, -30.0});
  EXPECT_NEAR(p1.x, p2.x, 1e-9);
  EXPECT_NEAR(p1.y, p2.y, 1e-9);
  const auto fp = w.footprint(4000, 2048);
  bool low = false, high = false;
  for (const auto& v : fp.vertices()) {
    low = low || v.ra < 1.0;
    high = high || v.ra > 359.0;
  }
  EXPECT_TRUE(low && high);
  EXPECT_TRUE(fp.contains({0.0, -30.0}));
  EXPECT_TRUE(fp.contains(w.pixel_to_sky(t.crpix)));
}

TEST(WcsTransform, NearThePole) {
  auto t = simple_tan({45.0, 89.99}, 0.5, 30.0);
  const auto w = Wcs::tan(t);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> px(-0.5, 4095.5);
  for (int i = 0; i < 100; ++i) {
    const PixelPoint p{px(rng), px(rng)};
    const auto s = w.pixel_to_sky(p);
    EXPECT_LT(separation_deg(s, sip_by_hand(t, p.x, p.y)), 1e-11);
    const auto back = w.sky_to_pixel(s);
    EXPECT_NEAR(back.x, p.x, 1e-8);
    EXPECT_NEAR(back.y, p.y, 1e-8);
  }
  EXPECT_NEAR(w.pixel_scale_deg(), 0.5 * kArcsec, 1e-9 * kArcsec);
  // The image (4096 px * 0.5" = 34') covers the pole.
  const auto fp = w.footprint(4096, 4096, 2);
  EXPECT_TRUE(fp.contains({0.0, 90.0}));
}

TEST(WcsTransform, UnprojectableThrows) {
  const auto w = Wcs::tan(simple_tan({10.0, 20.0}));
  EXPECT_THROW(w.sky_to_pixel({190.0, -20.0}), WcsError);  // antipode of the tangent point
}

TEST(WcsTransform, FromFitsWithoutWcsThrows) {
  const auto path = tmp_path("nowcs.fits");
  {
    auto f = File::create(path);
    f.append_image(pixserve::fits::Image<float>(10, 10));
    f.write_string("OBJECT", "nothing");
    f.append_image(pixserve::fits::Image<float>(10, 10));
    f.write_string("CTYPE1", "PIXEL");  // a linear WCS is not celestial
    f.write_string("CTYPE2", "PIXEL");
    f.write_double("CRVAL1", 0.0);
  }
  auto f = File::open(path);
  f.move_to_hdu(1);
  EXPECT_THROW(Wcs::from_fits(f), WcsError);
  f.move_to_hdu(2);
  EXPECT_THROW(Wcs::from_fits(f), WcsError);
  f.move_to_hdu(3);
  EXPECT_THROW(Wcs::from_fits(f), WcsError);
  EXPECT_THROW(Wcs::from_header("", 0), WcsError);
  EXPECT_THROW(Wcs::from_header("short", 1), WcsError);
}

TEST(WcsTransform, GenericHeaderWithPcCdeltAndHeaderOnlyPrimary) {
  // A header-only primary (NAXIS = 0) carrying a PC/CDELT WCS, as raw files do.
  const auto path = tmp_path("pc.fits");
  {
    auto f = File::create(path);
    f.write_string("CTYPE1", "RA---TAN");
    f.write_string("CTYPE2", "DEC--TAN");
    f.write_double("CRVAL1", 120.0);
    f.write_double("CRVAL2", -10.0);
    f.write_double("CRPIX1", 100.0);
    f.write_double("CRPIX2", 200.0);
    f.write_double("CDELT1", -2.0 * kArcsec);
    f.write_double("CDELT2", 2.0 * kArcsec);
    f.write_double("PC1_1", std::cos(0.3));
    f.write_double("PC1_2", -std::sin(0.3));
    f.write_double("PC2_1", std::sin(0.3));
    f.write_double("PC2_2", std::cos(0.3));
    f.write_string("RADESYS", "ICRS");
  }
  auto f = File::open(path);
  const auto w = Wcs::from_fits(f);
  TanParameters t;
  t.crval = {120.0, -10.0};
  t.crpix = {99.0, 199.0};
  const double c = std::cos(0.3), s = std::sin(0.3), d = 2.0 * kArcsec;
  t.cd = {-d * c, d * s, d * s, d * c};  // CDELT_i * PC_ij
  for (const auto& p : grid(2000, 2000, 5)) {
    EXPECT_LT(separation_deg(w.pixel_to_sky(p), sip_by_hand(t, p.x, p.y)), 1e-11);
  }
  EXPECT_NEAR(w.pixel_scale_deg(), d, 1e-9 * d);
  // The canonical records (CD form) describe the same mapping.
  const auto rec = w.header_records();
  expect_same_mapping(w, Wcs::from_header(rec, static_cast<int>(rec.size() / 80)), 2000, 2000, 1e-13);
  EXPECT_EQ(rec.find("A_ORDER"), std::string::npos);
}

TEST(WcsTransform, CdeltOnlyHeaderIsWrittenBackAsCd) {
  // CDELT without PC or CD (astropy's plain TAN header): wcslib's unit PC
  // leaves lin.piximg null, and reading it there crashed every cutout of
  // such an image (a Level-3 upload), shifted or not.
  const auto path = tmp_path("cdelt.fits");
  {
    auto f = File::create(path);
    f.write_string("CTYPE1", "RA---TAN");
    f.write_string("CTYPE2", "DEC--TAN");
    f.write_double("CRVAL1", 53.1);
    f.write_double("CRVAL2", -28.1);
    f.write_double("CRPIX1", 32.0);
    f.write_double("CRPIX2", 32.0);
    f.write_double("CDELT1", -0.2 * kArcsec);
    f.write_double("CDELT2", 0.2 * kArcsec);
  }
  auto f = File::open(path);
  const auto w = Wcs::from_fits(f);
  for (const auto& shifted : {w, w.shifted(0, 0), w.shifted(3, 5)}) {
    const auto rec = shifted.header_records();
    EXPECT_NE(rec.find("CD1_1"), std::string::npos);
    EXPECT_NE(rec.find("CD2_2"), std::string::npos);
    EXPECT_EQ(rec.find("CD1_2"), std::string::npos);  // zero off-diagonal terms are left out
    expect_same_mapping(shifted, Wcs::from_header(rec, static_cast<int>(rec.size() / 80)), 64, 64, 1e-13);
  }
  EXPECT_NEAR(w.pixel_scale_deg(), 0.2 * kArcsec, 1e-9 * kArcsec);
}

TEST(WcsTransform, CopyAndMoveSemantics) {
  auto original = std::make_unique<Wcs>(Wcs::tan(sip_tan()));
  Wcs copy(*original);
  Wcs assigned = Wcs::tan(simple_tan({1, 2}));
  assigned = copy;
  const auto expected = original->pixel_to_sky({10, 20});
  original.reset();  // copies own their own wcslib structures
  EXPECT_EQ(copy.pixel_to_sky({10, 20}).ra, expected.ra);
  EXPECT_EQ(assigned.pixel_to_sky({10, 20}).dec, expected.dec);
  Wcs moved(std::move(copy));
  EXPECT_EQ(moved.pixel_to_sky({10, 20}).ra, expected.ra);
  Wcs move_assigned = Wcs::tan(simple_tan({1, 2}));
  move_assigned = std::move(moved);
  EXPECT_EQ(move_assigned.pixel_to_sky({10, 20}).ra, expected.ra);
  const Wcs& alias = assigned;
  assigned = alias;  // self-assignment is harmless
  EXPECT_EQ(assigned.pixel_to_sky({10, 20}).ra, expected.ra);
}

TEST(WcsTransform, InvalidParametersThrow) {
  auto t = simple_tan({10, 10});
  t.cd = {0, 0, 0, 0};
  EXPECT_THROW(Wcs::tan(t), WcsError);
  t = simple_tan({10, 10});
  t.crval.ra = std::nan("");
  EXPECT_THROW(Wcs::tan(t), WcsError);
  t = sip_tan();
  t.sip->order = 12;
  EXPECT_THROW(Wcs::tan(t), WcsError);
}
