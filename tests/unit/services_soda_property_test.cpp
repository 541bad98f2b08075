// A property test of the SODA engine behind /api/soda/sync and /async: random
// IDs, shapes (circles, polygons, ranges near and far, tiny and huge,
// degenerate), PIXEL ranges, BAND/TIME and response formats against every
// kind of dataset a repository can hold (calexp, compressed calexp, raw
// amplifiers, bias and flat without WCS, coadd patches, Level-3 images:
// one HDU with CDELT only, several HDUs, SIP distortion, rotated PC +
// CDELT, scaled 16-bit integers, no WCS at all), and embargoed or unknown
// IDs. Whatever the request, the answer is 200 (a FITS file, tar or zip that
// parses), 204 (no overlap) or a DALI 400/404, never 5xx and never a crash;
// under the ASan/UBSan build (make asan-test) also no memory error.
//
// The run is deterministic (seeded); PIXSERVE_SODA_PROPERTY_RUNS sets the
// number of random requests (default 1000) for longer local runs.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fits/fits.hpp"
#include "repo/astro_units.hpp"
#include "services/app.hpp"
#include "service_test_support.hpp"
#include "soda_test_images.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace pixserve::services {
namespace {

using testing::call;
constexpr long kSmall = 64;

std::string url_encode(std::string_view text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

wcs::Wcs user_wcs(double ra, double dec, double crpix, std::array<double, 4> cd = {-kScale, 0.0, 0.0, kScale}) {
  wcs::TanParameters t;
  t.crval = {ra, dec};
  t.crpix = {crpix, crpix};
  t.cd = cd;
  return wcs::Wcs::tan(t);
}

// A single image HDU carrying the given header cards as its WCS.
template <typename T>
void write_single(const fs::path& path, const fits::Image<T>& image, const std::function<void(fits::File&)>& cards) {
  fs::create_directories(path.parent_path());
  auto f = fits::File::create(path);
  f.append_image(image);
  cards(f);
  f.close();
}

struct Kind {
  std::string id;
  std::optional<sky::SkyPoint> centre;  // where shapes should land; none: no WCS
};

struct SodaPropertyTest : ::testing::Test {
  pixserve::testing::ScratchDir scratch{"soda-property"};
  std::shared_ptr<SharedRepository> repository;
  std::unique_ptr<App> app;
  std::vector<Kind> kinds;

  void add(repo::Registry& reg, repo::DatasetRecord r, std::optional<sky::SkyPoint> centre) {
    kinds.push_back({r.dataset_id, centre});
    reg.insert(r);
  }

  void SetUp() override {
    auto repo = repo::Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "prop", .authority = "example.org"}));
    const auto root = scratch.dir / "repo";
    auto& reg = repo.registry();
    const auto cw = grid_wcs(32.0, 32.0);
    const auto centre = cw.pixel_to_sky({32.0, 32.0});
    const auto fp = footprint(cw, kSmall);

    // calexp (IMAGE, MASK, VARIANCE with a CD matrix) and an embargoed copy.
    write_image(root / "data/calexp.fits", cw, kSmall, 0, 0, "calexp");
    auto calexp = record_for(repo::DatasetType::calexp, "DR1.calexp.v1.d001", "data/calexp.fits", fp, kSmall);
    add(reg, calexp, centre);
    auto embargoed = calexp;
    embargoed.dataset_id = "DR1.calexp.v2.d001";
    embargoed.rights.release_mjd = repo::mjd_now() + 10.0;
    add(reg, embargoed, centre);

    // calexp_comp: the same planes tile-compressed (lossy).
    {
      fits::Image<float> image(kSmall, kSmall, 1.0F), variance(kSmall, kSmall, 2.0F);
      fits::Image<std::int32_t> mask(kSmall, kSmall, 0);
      for (long y = 0; y < kSmall; ++y)
        for (long x = 0; x < kSmall; ++x) image.at(x, y) = grid_value(x, y);
      auto f = fits::File::create(root / "data/calexp_comp.fits");
      f.write_string("DSTYPE", "calexp_comp");
      const fits::ImageWriteOptions lossy{.extname = "IMAGE", .compression = fits::Compression::rice,
                                          .quantize_level = 4.0F, .tile_shape = {}, .dither_seed = 7, .header_reserve = 0};
      f.append_image(image, lossy);
      cw.write_to(f);
      f.append_image(mask, {.extname = "MASK", .compression = fits::Compression::rice, .quantize_level = 0.0F,
                            .tile_shape = {}, .dither_seed = 0, .header_reserve = 0});
      cw.write_to(f);
      auto v = lossy;
      v.extname = "VARIANCE";
      f.append_image(variance, v);
      cw.write_to(f);
      f.close();
    }
    add(reg, record_for(repo::DatasetType::calexp_comp, "DR1.calexp_comp.v1.d001", "data/calexp_comp.fits", fp, kSmall),
        centre);

    // raw: a header-only primary and two amplifier HDUs with DATASEC.
    {
      auto f = fits::File::create(root / "data/raw.fits");
      f.write_string("DSTYPE", "raw");
      for (int amp = 0; amp < 2; ++amp) {
        f.append_image(fits::Image<std::uint16_t>(40, kSmall, 1000));
        f.write_string("DATASEC", "[1:32,1:64]");
        f.write_string("BIASSEC", "[33:40,1:64]");
      }
      f.close();
    }
    add(reg, record_for(repo::DatasetType::raw, "DR1.raw.v1.d001", "data/raw.fits", fp, kSmall), centre);

    // bias and flat: detector-frame images without WCS.
    for (const auto& [type, name] : {std::pair{repo::DatasetType::bias, "bias"}, std::pair{repo::DatasetType::flat, "flat"}}) {
      write_single(root / fmt::format("data/{}.fits", name), fits::Image<float>(kSmall, kSmall, 1.0F),
                   [label = name](fits::File& f) { f.write_string("DSTYPE", label); });
      auto r = record_for(type, fmt::format("DR1.{}.d001", name), fmt::format("data/{}.fits", name), fp, kSmall);
      r.footprint.reset();
      add(reg, r, std::nullopt);
    }

    // Two coadd patches of one tract, side by side and overlapping.
    for (int p = 0; p < 2; ++p) {
      const long gx0 = p * 48;
      const auto w = grid_wcs(32.0 - static_cast<double>(gx0), 32.0);
      const std::string rel = fmt::format("data/coadd_{}.fits", p);
      write_image(root / rel, w, kSmall, gx0, 0, "deepCoadd");
      auto c = record_for(repo::DatasetType::deepCoadd, fmt::format("DR1.deepCoadd.r.t0.p{}_0", p), rel,
                          footprint(w, kSmall), kSmall);
      c.data_id.skymap = "sky";
      c.data_id.tract = 0;
      c.data_id.patch = fmt::format("{},0", p);
      add(reg, c, centre);
    }

    // Level-3 images, each a different way of writing a header.
    const sky::SkyPoint user_centre{150.0, 2.0};
    auto user = [&](const std::string& name, const wcs::Wcs* w, long size) {
      auto r = record_for(repo::DatasetType::user, "user.user.bob." + name, "data/user/" + name + ".fits",
                          w ? footprint(*w, size) : fp, size);
      r.collection = "user";
      r.rights.owner = "bob";
      if (w == nullptr) r.footprint.reset();
      add(reg, r, w ? std::optional(w->pixel_to_sky({size / 2.0, size / 2.0})) : std::nullopt);
    };
    fits::Image<float> noise(kSmall, kSmall);
    std::mt19937 fill(3);
    std::normal_distribution<float> gauss;
    for (auto& v : noise.pixels) v = gauss(fill);
    // One HDU, CDELT only (astropy's plain TAN header): the crash of the audit.
    const auto cdelt_cards = [&](fits::File& f) {
      f.write_string("CTYPE1", "RA---TAN");
      f.write_string("CTYPE2", "DEC--TAN");
      f.write_double("CRVAL1", user_centre.ra);
      f.write_double("CRVAL2", user_centre.dec);
      f.write_double("CRPIX1", 32.0);
      f.write_double("CRPIX2", 32.0);
      f.write_double("CDELT1", -kScale);
      f.write_double("CDELT2", kScale);
    };
    write_single(root / "data/user/cdelt.fits", noise, cdelt_cards);
    const auto cdelt_wcs = user_wcs(user_centre.ra, user_centre.dec, 31.0);
    user("cdelt", &cdelt_wcs, kSmall);
    // Rotated PC + CDELT, FK5.
    write_single(root / "data/user/pc.fits", noise, [&](fits::File& f) {
      cdelt_cards(f);
      f.write_double("PC1_1", std::cos(0.4));
      f.write_double("PC1_2", -std::sin(0.4));
      f.write_double("PC2_1", std::sin(0.4));
      f.write_double("PC2_2", std::cos(0.4));
      f.write_string("RADESYS", "FK5");
      f.write_double("EQUINOX", 2000.0);
    });
    user("pc", &cdelt_wcs, kSmall);
    // Several HDUs with a SIP distortion.
    {
      wcs::TanParameters t;
      t.crval = user_centre;
      t.crpix = {32.0, 32.0};
      t.cd = {-kScale, 0.0, 0.0, kScale};
      t.sip = wcs::Sip{.order = 2, .a = {{0, 0, 1e-5}, {0, 2e-5, 0}, {3e-6, 0, 0}},
                       .b = {{0, 0, -1e-5}, {0, 1e-5, 0}, {2e-6, 0, 0}}, .inverse_order = 0, .ap = {}, .bp = {}};
      const auto sip = wcs::Wcs::tan(t);
      write_image(root / "data/user/sip.fits", sip, kSmall, 0, 0, "user");
      user("sip", &sip, kSmall);
    }
    // Scaled 16-bit integers.
    {
      fits::Image<std::int16_t> ints(kSmall, kSmall, 10);
      write_single(root / "data/user/int16.fits", ints, [&](fits::File& f) {
        f.write_double("BSCALE", 0.5);
        f.write_double("BZERO", 100.0);
        cdelt_wcs.write_to(f);
      });
      user("int16", &cdelt_wcs, kSmall);
    }
    // No WCS at all: pixel cutouts only.
    write_single(root / "data/user/nowcs.fits", noise, [](fits::File&) {});
    user("nowcs", nullptr, kSmall);

    repository = std::make_shared<SharedRepository>(std::move(repo));
    AppOptions options;
    options.jobs.threads = 1;
    options.jobs.dir = scratch.dir / "jobs";
    app = std::make_unique<App>(make_app(repository, options));
  }
};

std::string random_shape(std::mt19937_64& rng, const std::optional<sky::SkyPoint>& near) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double far = unit(rng);
  sky::SkyPoint c{unit(rng) * 360.0, unit(rng) * 180.0 - 90.0};
  if (near && far < 0.8) {
    c = *near;
    c.ra += (unit(rng) - 0.5) * 0.02;
    c.dec = std::clamp(c.dec + (unit(rng) - 0.5) * 0.02, -90.0, 90.0);
  }
  const double size = std::pow(10.0, -7.0 + 8.5 * unit(rng));  // 1e-7 .. 30 deg
  switch (rng() % 6) {
    case 0: return fmt::format("CIRCLE={} {} {}", c.ra, c.dec, size);
    case 1: return fmt::format("POS=CIRCLE {} {} {}", c.ra, c.dec, rng() % 50 == 0 ? 180.0 : size);
    case 2: return fmt::format("POS=RANGE {} {} {} {}", c.ra - size, c.ra + size, c.dec - size, c.dec + size);
    case 3: {
      const int n = 3 + static_cast<int>(rng() % 5);
      std::string text = "POLYGON=";
      for (int i = 0; i < n; ++i) {
        text += fmt::format("{}{} {}", i ? " " : "", c.ra + (unit(rng) - 0.5) * size,
                            std::clamp(c.dec + (unit(rng) - 0.5) * size, -90.0, 90.0));
      }
      return text;
    }
    case 4: return fmt::format("POS=POLYGON {} {} {} {} {} {}", c.ra, c.dec, c.ra + size, c.dec, c.ra, c.dec);  // degenerate
    default: {
      static const char* kHostile[] = {"CIRCLE=nan 0 1", "CIRCLE=10 95 1", "CIRCLE=10 20 -1", "POS=RANGE 0 0 0 0",
                                       "POS=CIRCLE 1e308 1e308 1e308", "POLYGON=1 2 3", "POS=BOX 1 2 3 4", "CIRCLE=",
                                       "POS=RANGE -Inf +Inf -90 90", "POS=CIRCLE 0 -90 0.001"};
      return kHostile[rng() % std::size(kHostile)];
    }
  }
}

std::string random_pixels(std::mt19937_64& rng) {
  auto axis = [&]() -> std::string {
    switch (rng() % 5) {
      case 0: return "*";
      case 1: return fmt::format("{}:{}", 1 + rng() % 80, 1 + rng() % 80);
      case 2: return fmt::format("{}:{}", 1 + rng() % 3, 60 + rng() % 10);
      case 3: return fmt::format("{}:{}", rng() % 2 ? 0 : 9223372036854775807LL, 9223372036854775807LL);
      default: return fmt::format("{}:{}", 1 + rng() % 64, 1 + rng() % 64 + rng() % 64);
    }
  };
  return fmt::format("PIXEL=[{},{}]", axis(), axis());
}

TEST_F(SodaPropertyTest, RandomRequestsNeverFailTheServer) {
  const char* env = std::getenv("PIXSERVE_SODA_PROPERTY_RUNS");
  const int runs = env ? std::max(1, std::atoi(env)) : 1000;
  std::mt19937_64 rng(20261205);
  std::map<int, int> statuses;
  for (int run = 0; run < runs; ++run) {
    std::vector<std::string> params;
    const std::size_t n_ids = 1 + rng() % 3;
    std::optional<sky::SkyPoint> near;
    for (std::size_t i = 0; i < n_ids; ++i) {
      const auto& k = kinds[rng() % kinds.size()];
      near = near ? near : k.centre;
      std::string id = rng() % 2 ? "ivo://example.org/prop?" + k.id : k.id;
      if (rng() % 40 == 0) id = "ivo://example.org/prop?DR1.calexp.v9.d999";  // unknown
      if (rng() % 60 == 0) id = "../../registry.sqlite3";
      params.push_back("ID=" + url_encode(id));
    }
    const std::size_t n_shapes = rng() % 4;
    for (std::size_t i = 0; i < n_shapes; ++i) {
      const auto shape = random_shape(rng, near);
      const auto eq = shape.find('=');
      params.push_back(shape.substr(0, eq + 1) + url_encode(shape.substr(eq + 1)));
    }
    if (rng() % 3 == 0) params.push_back(url_encode(random_pixels(rng)).replace(5, 3, "="));
    if (rng() % 8 == 0) params.push_back("BAND=" + url_encode(rng() % 2 ? "5e-7 7e-7" : "1e-3 2e-3"));
    if (rng() % 8 == 0) params.push_back("TIME=" + url_encode(rng() % 2 ? "60999 61001" : "1 2"));
    if (rng() % 10 == 0) params.push_back("POL=" + std::string(rng() % 2 ? "I" : "Q"));
    switch (rng() % 4) {
      case 0: params.emplace_back("RESPONSEFORMAT=application%2Fx-tar"); break;
      case 1: params.emplace_back("RESPONSEFORMAT=zip"); break;
      default: break;
    }
    std::string query;
    for (const auto& p : params) query += (query.empty() ? "" : "&") + p;
    const auto r = call(app->router, "GET", "/api/soda/sync?" + query);
    ++statuses[r.status];
    ASSERT_TRUE(r.status == 200 || r.status == 204 || r.status == 400 || r.status == 404)
        << r.status << " for " << query << "\n" << r.body.substr(0, 500);
    if (r.status == 200 && r.content_type == "application/fits") {
      const auto file = scratch.dir / "out.fits";
      std::ofstream(file, std::ios::binary) << r.body;
      auto f = fits::File::open(file);
      EXPECT_GE(f.hdu_count(), 2) << query;
      f.move_to_hdu(1);
      EXPECT_GE(f.read_int("PSNCUT").value_or(0), 1) << query;
    } else if (r.status == 200) {
      EXPECT_FALSE(r.body.empty()) << query;
    } else if (r.status >= 400) {
      EXPECT_NE(r.body.find("QUERY_STATUS"), std::string::npos) << query;
      EXPECT_NE(r.body.find("UsageError"), std::string::npos) << query << "\n" << r.body.substr(0, 500);
    }
  }
  // The run reached every kind of answer, so it tested what it claims.
  EXPECT_GT(statuses[200], runs / 10);
  EXPECT_GT(statuses[400], 0);
  EXPECT_GT(statuses[404], 0);
}

TEST_F(SodaPropertyTest, EveryKindAsAnAsyncJobEndsCompletedOrWithAUsageError) {
  std::mt19937_64 rng(7);
  for (const auto& k : kinds) {
    std::string body = "PHASE=RUN&ID=" + url_encode(k.id);
    if (k.centre && rng() % 2) {
      body += "&CIRCLE=" + url_encode(fmt::format("{} {} 0.001", k.centre->ra, k.centre->dec));
    } else {
      body += "&PIXEL=" + url_encode("[2:20,3:30]");
    }
    const auto created = call(app->router, "POST", "/api/soda/async", body, "application/x-www-form-urlencoded");
    ASSERT_EQ(created.status, 303) << k.id << " " << created.body;
    const std::string job(created.headers.get("Location").value_or(""));
    const std::string path = job.substr(job.find("/api/"));
    std::string phase;
    for (int i = 0; i < 600 && phase != "COMPLETED" && phase != "ERROR"; ++i) {
      phase = call(app->router, "GET", path + "/phase").body;
      while (!phase.empty() && std::isspace(static_cast<unsigned char>(phase.back()))) phase.pop_back();
      if (phase != "COMPLETED" && phase != "ERROR") std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (phase == "ERROR") {
      const auto error = call(app->router, "GET", path + "/error").body;
      EXPECT_EQ(error.find("internal error"), std::string::npos) << k.id << ": " << error;
    } else {
      EXPECT_EQ(phase, "COMPLETED") << k.id;
    }
  }
}

}  // namespace
}  // namespace pixserve::services
