// Unit tests of the coadd sky maps (sim/skymap.hpp): the rings layout tiles
// the sphere so every sky point has exactly one owning tract, whose pixels
// hold it with the overlap margin to spare; neighbouring tracts overlap;
// each tract's WCS is centred on its centre; an image's patches are found
// in every tract it touches. The default single-tract map is unchanged. A
// small survey with a pointing disc on the rings map writes coadds in
// several tracts, which ingest registers with their tract numbers.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "fits/fits.hpp"
#include "repo/coadd_mosaics.hpp"
#include "repo/repository.hpp"
#include "sim/observing.hpp"
#include "sim/simulator.hpp"
#include "sim/skymap.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve;

namespace {

sim::SurveyConfig rings_config(double tract_size = 2.0) {
  sim::SurveyConfig c;
  c.skymap = "pixserve-rings";
  c.tract_size_deg = tract_size;
  c.tract_overlap_deg = 0.05;
  c.pixel_scale_arcsec = 1.0;
  c.patch_size = 1000;
  c.patch_border = 50;
  return c;
}

// Points spread over the whole sphere (uniform in area) plus the poles
// and points near them.
std::vector<sky::SkyPoint> sphere_sample(int n) {
  std::mt19937_64 gen(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<sky::SkyPoint> out{{0.0, -90.0}, {0.0, 90.0}, {123.0, -89.5}, {321.0, 89.9}};
  for (int i = 0; i < n; ++i) {
    out.push_back({360.0 * u(gen), std::asin(2.0 * u(gen) - 1.0) / sky::kDeg});
  }
  return out;
}

// RA difference a - b folded into (-180, 180].
double ra_delta(double a, double b) {
  double d = std::fmod(a - b, 360.0);
  if (d > 180.0) d -= 360.0;
  if (d <= -180.0) d += 360.0;
  return d;
}

// A north-up TAN image of size x size pixels at scale (arcsec) centred on c.
wcs::Wcs square_image(const sky::SkyPoint& c, long size, double scale_arcsec) {
  wcs::TanParameters p;
  p.crval = c;
  p.crpix = {0.5 * static_cast<double>(size) - 0.5, 0.5 * static_cast<double>(size) - 0.5};
  const double s = scale_arcsec / 3600.0;
  p.cd = {-s, 0.0, 0.0, s};
  return wcs::Wcs::tan(p);
}

struct RemoveDir {
  fs::path dir;
  ~RemoveDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

TEST(SkyMapSingleTract, IsTheDefaultWithTractZeroOnTheField) {
  const sim::SurveyConfig config;
  EXPECT_EQ(config.skymap, "pixserve-tract");
  const sim::SkyMap map(config);
  EXPECT_EQ(map.name(), "pixserve-tract");
  EXPECT_FALSE(map.is_rings());
  EXPECT_EQ(map.tract_count(), 1);
  EXPECT_EQ(map.tract_ids(), std::vector<int>{0});
  const auto& t = map.tract(0);
  EXPECT_EQ(t.id(), 0);
  EXPECT_DOUBLE_EQ(t.center().ra, config.field_center.ra);
  EXPECT_DOUBLE_EQ(t.center().dec, config.field_center.dec);
  // 2 deg at 0.2"/px in patches of 1800 inner pixels: 20 x 20.
  EXPECT_EQ(t.patches_x(), 20);
  EXPECT_EQ(t.patches_y(), 20);
  EXPECT_EQ(map.owning_tract({200.0, 45.0}), 0);
  EXPECT_THROW(map.tract(1), std::out_of_range);
  // An image on the field centre touches the four central patches.
  const auto image = square_image(config.field_center, 500, 0.2);
  EXPECT_EQ(map.tracts_overlapping(image, 500, 500), std::vector<int>{0});
  const auto patches = t.patches_overlapping(image, 500, 500);
  EXPECT_EQ(patches, (std::vector<sim::PatchId>{{9, 9}, {10, 9}, {9, 10}, {10, 10}}));
  // Far away: no tract.
  const auto far = square_image({200.0, 40.0}, 500, 0.2);
  EXPECT_TRUE(map.tracts_overlapping(far, 500, 500).empty());
}

TEST(SkyMapSingleTract, RejectsAnUnknownLayout) {
  sim::SurveyConfig config;
  config.skymap = "pixserve-spiral";
  EXPECT_THROW(sim::SkyMap{config}, std::invalid_argument);
  config = rings_config();
  config.tract_overlap_deg = -1.0;
  EXPECT_THROW(sim::SkyMap{config}, std::invalid_argument);
}

TEST(SkyMapRings, TractCountAndRingsAreSane) {
  for (const double size : {0.5, 1.0, 2.0, 5.0, 20.0}) {
    const sim::SkyMap map(rings_config(size));
    const double h = map.ring_height_deg();
    EXPECT_LE(h, size + 1e-12) << size;
    EXPECT_GT(h, 0.8 * size) << size;
    // About the sphere's area over h^2, a little more for the rounding up
    // of each ring's count.
    const double ideal = 41252.96 / (h * h);
    EXPECT_GE(map.tract_count(), 0.95 * ideal) << size;
    EXPECT_LE(map.tract_count(), 1.3 * ideal + 20) << size;
    EXPECT_EQ(map.rings() + 1, static_cast<int>(std::lround(180.0 / h)));
    int total = 2;  // the caps
    for (int k = 0; k < map.rings(); ++k) {
      const double dec = map.ring_dec(k);
      EXPECT_NEAR(dec, -90.0 + (k + 1) * h, 1e-9);
      const double lo = dec - 0.5 * h, hi = dec + 0.5 * h;
      const double edge = (lo <= 0.0 && hi >= 0.0) ? 0.0 : std::min(std::abs(lo), std::abs(hi));
      const int n = map.ring_tracts(k);
      // Slices at most h wide on the ring's widest edge, and not needlessly many.
      EXPECT_LE(360.0 / n * std::cos(edge * sky::kDeg), h + 1e-9) << size << " ring " << k;
      if (n > 1) {
        EXPECT_GT(360.0 / (n - 1) * std::cos(edge * sky::kDeg), h - 1e-9) << size << " ring " << k;
      }
      total += n;
    }
    EXPECT_EQ(total, map.tract_count());
  }
  // Numbered ring by ring from the south pole to the north pole.
  const sim::SkyMap map(rings_config(2.0));
  EXPECT_DOUBLE_EQ(map.tract_center(0).dec, -90.0);
  EXPECT_DOUBLE_EQ(map.tract_center(map.tract_count() - 1).dec, 90.0);
  double last_dec = -90.0;
  for (const int id : map.tract_ids()) {
    EXPECT_GE(map.tract_center(id).dec, last_dec);
    last_dec = map.tract_center(id).dec;
  }
  EXPECT_THROW(map.tract(map.tract_count()), std::out_of_range);
  EXPECT_THROW(map.tract(-1), std::out_of_range);
}

TEST(SkyMapRings, EverySkyPointHasExactlyOneOwnerWhosePixelsHoldIt) {
  const auto config = rings_config(2.0);
  const sim::SkyMap map(config);
  const double h = map.ring_height_deg();
  std::set<int> owners;
  for (const auto& p : sphere_sample(3000)) {
    const int owner = map.owning_tract(p);
    ASSERT_GE(owner, 0);
    ASSERT_LT(owner, map.tract_count());
    owners.insert(owner);
    // The owner's cell holds the point: caps by declination, ring tracts by
    // declination band and RA slice.
    const auto c = map.tract_center(owner);
    if (owner == 0) {
      EXPECT_LT(p.dec, -90.0 + 0.5 * h);
    } else if (owner == map.tract_count() - 1) {
      EXPECT_GE(p.dec, 90.0 - 0.5 * h);
    } else {
      EXPECT_LE(std::abs(p.dec - c.dec), 0.5 * h + 1e-9);
      int ring = 0;
      while (std::abs(map.ring_dec(ring) - c.dec) > 1e-9) ++ring;
      EXPECT_LE(std::abs(ra_delta(p.ra, c.ra)), 180.0 / map.ring_tracts(ring) + 1e-9);
    }
    // Exactly one inner region among the tracts near the point.
    int inner = 0;
    for (int id = std::max(0, owner - 400); id < std::min(map.tract_count(), owner + 400); ++id) {
      if (map.in_inner_region(id, p)) ++inner;
    }
    EXPECT_EQ(inner, 1);
    // The owner's pixels hold the point, with the overlap margin around it.
    const auto& t = map.tract(owner);
    EXPECT_TRUE(t.contains(p)) << p.ra << " " << p.dec << " tract " << owner;
    for (const auto& [e, n] : {std::pair{1.0, 0.0}, {-1.0, 0.0}, {0.0, 1.0}, {0.0, -1.0}}) {
      const auto q = sim::offset_tangent(p, 0.9 * config.tract_overlap_deg * e, 0.9 * config.tract_overlap_deg * n);
      EXPECT_TRUE(t.contains(q)) << q.ra << " " << q.dec << " tract " << owner;
    }
  }
  EXPECT_GT(owners.size(), 2000U);  // the sample spreads over the sphere
}

TEST(SkyMapRings, NeighbouringTractsOverlap) {
  const auto config = rings_config(2.0);
  const sim::SkyMap map(config);
  const double h = map.ring_height_deg(), d = 0.04;  // less than the 0.05 overlap
  for (const int k : {0, 10, 44, 60, map.rings() - 1}) {
    const int n = map.ring_tracts(k);
    const double dec = map.ring_dec(k), slice = 360.0 / n;
    // Across the RA boundary between slices 0 and 1, at the ring's centre
    // and near both its edges.
    for (const double dd : {-0.45 * h, 0.0, 0.45 * h}) {
      const sky::SkyPoint b{0.5 * slice, dec + dd};
      const auto west = sim::offset_tangent(b, -d, 0.0), east = sim::offset_tangent(b, d, 0.0);
      const int a = map.owning_tract(west), c = map.owning_tract(east);
      EXPECT_NE(a, c) << "ring " << k;
      for (const int id : {a, c}) {
        EXPECT_TRUE(map.tract(id).contains(west)) << "ring " << k << " tract " << id;
        EXPECT_TRUE(map.tract(id).contains(east)) << "ring " << k << " tract " << id;
      }
    }
    // Across the declination boundary to the ring (or cap) to the north.
    for (const double ra : {0.0, 0.3 * slice, 17.0}) {
      const sky::SkyPoint south{ra, dec + 0.5 * h - d}, north{ra, dec + 0.5 * h + d};
      const int a = map.owning_tract(south), c = map.owning_tract(north);
      EXPECT_NE(a, c) << "ring " << k;
      for (const int id : {a, c}) {
        EXPECT_TRUE(map.tract(id).contains(south)) << "ring " << k << " tract " << id;
        EXPECT_TRUE(map.tract(id).contains(north)) << "ring " << k << " tract " << id;
      }
    }
  }
}

TEST(SkyMapRings, TractWcsIsCentredOnTheTractCentre) {
  const auto config = rings_config(2.0);
  const sim::SkyMap map(config);
  const int last = map.tract_count() - 1;
  for (const int id : {0, 1, 7, 500, 5000, last / 2, last - 3, last}) {
    const auto& t = map.tract(id);
    EXPECT_EQ(t.id(), id);
    const auto c = map.tract_center(id);
    EXPECT_NEAR(sky::angular_distance_deg(t.center(), c), 0.0, 1e-12);
    const wcs::Wcs w = t.wcs();
    const auto mid =
        w.pixel_to_sky({0.5 * static_cast<double>(t.width()) - 0.5, 0.5 * static_cast<double>(t.height()) - 0.5});
    EXPECT_LT(sky::angular_distance_deg(mid, c) * 3600.0, 1e-6) << id;
    EXPECT_NEAR(w.pixel_scale_deg() * 3600.0, config.pixel_scale_arcsec, 1e-9);
    EXPECT_EQ(t.width(), t.patches_x() * (config.patch_size - 2 * config.patch_border));
    EXPECT_EQ(t.height(), t.patches_y() * (config.patch_size - 2 * config.patch_border));
    // The same tract object each time.
    EXPECT_EQ(&map.tract(id), &t);
  }
}

TEST(SkyMapRings, AnImagesPatchesAreFoundInEveryTractItTouches) {
  const auto config = rings_config(2.0);
  const sim::SkyMap map(config);
  // Near the corner of four tracts in the ring nearest dec -28, near a
  // pole, and inside one tract.
  int ring = 0;
  while (map.ring_dec(ring) < -28.0) ++ring;
  const double slice = 360.0 / map.ring_tracts(ring);
  const double h = map.ring_height_deg();
  struct Case {
    sky::SkyPoint center;
    std::size_t min_tracts;
  };
  for (const auto& [center, min_tracts] :
       {Case{{0.5 * slice + 0.01, map.ring_dec(ring) + 0.5 * h - 0.02}, 4},
        Case{{40.0, -90.0 + 0.5 * h + 0.05}, 2},
        Case{{0.0, map.ring_dec(ring)}, 1}}) {
    const long size = 1200;  // 1200" = 0.33 deg
    const auto image = square_image(center, size, 1.0);
    const auto tracts = map.tracts_overlapping(image, size, size);
    EXPECT_GE(tracts.size(), min_tracts) << center.ra << " " << center.dec;
    EXPECT_TRUE(std::is_sorted(tracts.begin(), tracts.end()));
    std::map<int, std::set<sim::PatchId>> patches;
    for (const int id : tracts) {
      const auto found = map.tract(id).patches_overlapping(image, size, size);
      EXPECT_FALSE(found.empty()) << "tract " << id;
      patches[id].insert(found.begin(), found.end());
    }
    // Every pixel of the image (a grid of them) lies on a listed patch of
    // every tract whose pixels hold it, and of its owning tract.
    const wcs::Wcs w = image;
    for (long y = 0; y < size; y += 100) {
      for (long x = 0; x < size; x += 100) {
        const auto p = w.pixel_to_sky({static_cast<double>(x), static_cast<double>(y)});
        EXPECT_TRUE(patches.count(map.owning_tract(p))) << "owner of " << x << "," << y;
        for (const int id : tracts) {
          const auto& t = map.tract(id);
          if (!t.contains(p)) continue;
          const wcs::Wcs tw = t.wcs();
          const auto q = tw.sky_to_pixel(p);
          bool on_listed = false;
          for (const auto& patch : patches[id]) {
            const auto b = t.patch_box(patch);
            on_listed = on_listed || (q.x >= static_cast<double>(b.x0) - 0.5 &&
                                      q.x <= static_cast<double>(b.x0 + b.width) - 0.5 &&
                                      q.y >= static_cast<double>(b.y0) - 0.5 &&
                                      q.y <= static_cast<double>(b.y0 + b.height) - 0.5);
          }
          EXPECT_TRUE(on_listed) << "tract " << id << " pixel " << x << "," << y;
        }
      }
    }
    // Tracts not listed do not hold any of it.
    for (const int id : map.tract_ids()) {
      if (std::binary_search(tracts.begin(), tracts.end(), id)) continue;
      if (sky::angular_distance_deg(map.tract_center(id), center) > 5.0) continue;
      EXPECT_TRUE(map.tract(id).patches_overlapping(image, size, size).empty()) << "tract " << id;
    }
  }
}

TEST(SkyMapPointings, ADiscOfPointingsIsAGridVisitedBandByBand) {
  sim::SurveyConfig config;
  config.bands = "gr";
  config.visits = 20;
  const double raft = 0.1;
  EXPECT_EQ(sim::pointing_grid_positions(config, raft).size(), 1U);  // the default: the field centre
  config.pointing_radius_deg = 0.1;
  const auto grid = sim::pointing_grid_positions(config, raft);
  // Spacing 0.1 / sqrt(2) = 0.0707: offsets (0,0), 4 at 0.0707 and 4 at 0.1.
  EXPECT_EQ(grid.size(), 9U);
  for (const auto& [e, n] : grid) EXPECT_LE(std::hypot(e, n), 0.1 + 1e-9);
  const auto visits = sim::plan_visits(config, raft);
  ASSERT_EQ(visits.size(), 20U);
  for (std::size_t i = 0; i < visits.size(); ++i) {
    const auto& [e, n] = grid[(i / 2) % grid.size()];
    const auto position = sim::offset_tangent(config.field_center, e, n);
    EXPECT_LE(sky::angular_distance_deg(visits[i].pointing, position), config.dither_fraction * raft + 1e-9) << i;
  }
  // Both bands at each position.
  EXPECT_EQ(visits[0].band->band, 'g');
  EXPECT_EQ(visits[1].band->band, 'r');
}

// A small survey over the corner of several tracts: two bands, 1"/px,
// 128-pixel detectors, a pointing disc of 0.1 deg.
TEST(SkyMapSurvey, WritesAndIngestsCoaddsInSeveralTracts) {
  const fs::path base = pixserve::testing::test_scratch_dir("rings");
  RemoveDir cleanup{base};
  sim::SurveyConfig config = rings_config(1.0);
  config.seed = 5;
  config.bands = "gr";
  config.visits = 10;
  config.detectors = 2;
  config.detector_width = config.detector_height = 128;
  config.patch_size = 600;
  config.patch_border = 50;
  config.pointing_radius_deg = 0.1;
  config.star_density_per_deg2 = 20000.0;
  config.field_radius_deg = 0.2;
  config.threads = 2;
  // Centre the field on a corner shared by four tracts.
  const sim::SkyMap map(config);
  int ring = 0;
  while (map.ring_dec(ring) < -28.0) ++ring;
  config.field_center = {0.5 * 360.0 / map.ring_tracts(ring), map.ring_dec(ring) + 0.5 * map.ring_height_deg()};

  const auto summary = sim::simulate(config, base / "survey");
  EXPECT_GT(summary.coadds, 0U);
  EXPECT_GT(summary.templates, 0U);

  // Files per (type, band, tract), each with its tract in the header and the
  // file name, and the tract's WCS.
  std::map<std::string, std::set<long long>> tracts_of;  // "<type>/<band>" -> tracts
  std::size_t files = 0;
  for (const char* type : {"deepCoadd", "goodSeeingCoadd"}) {
    for (const auto& e : fs::recursive_directory_iterator(base / "survey" / type)) {
      if (!e.is_regular_file()) continue;
      ++files;
      auto f = fits::File::open(e.path());
      const auto tract = f.read_int("TRACT");
      ASSERT_TRUE(tract);
      EXPECT_EQ(f.read_string("SKYMAP"), "pixserve-rings");
      const auto band = *f.read_string("BAND");
      const auto patch = *f.read_string("PATCH");
      EXPECT_EQ(e.path().parent_path().filename(), fmt::format("t{}", *tract));
      EXPECT_TRUE(e.path().filename().string().starts_with(fmt::format("{}_{}_t{}_p", type, band, *tract)));
      tracts_of[fmt::format("{}/{}", type, band)].insert(*tract);
      // The patch's WCS is its tract's, shifted to the patch.
      ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
      const auto w = wcs::Wcs::from_fits(f);
      const auto comma = patch.find(',');
      const sim::PatchId id{std::stoi(patch.substr(0, comma)), std::stoi(patch.substr(comma + 1))};
      const auto& t = map.tract(static_cast<int>(*tract));
      const auto box = t.patch_box(id);
      const auto centre = w.pixel_to_sky({0.5 * static_cast<double>(t.width()) - 0.5 - static_cast<double>(box.x0),
                                          0.5 * static_cast<double>(t.height()) - 0.5 - static_cast<double>(box.y0)});
      EXPECT_LT(sky::angular_distance_deg(centre, t.center()) * 3600.0, 1e-3) << e.path();
    }
  }
  EXPECT_EQ(files, summary.coadds + summary.templates);
  for (const char* key : {"deepCoadd/g", "deepCoadd/r"}) {
    EXPECT_GE(tracts_of[key].size(), 2U) << key;
  }

  // Ingest registers every patch with its tract.
  auto repo = repo::Repository::open_or_create(base / "repo", {});
  repo::ingest(repo, {base / "survey"}, {});
  repo::DatasetQuery q;
  q.dataset_types = {"deepCoadd"};
  auto coadds = repo.registry().find(q);
  // Each band's logical coadd (repo/coadd_mosaics.hpp) stands for all its
  // patches of every tract: no tract, no file, a footprint holding them.
  std::vector<repo::DatasetRecord> logical;
  for (const auto& c : coadds) {
    if (repo::is_coadd_mosaic(c)) logical.push_back(c);
  }
  std::erase_if(coadds, [](const repo::DatasetRecord& c) { return repo::is_coadd_mosaic(c); });
  ASSERT_EQ(logical.size(), 2U);
  for (const auto& l : logical) {
    EXPECT_EQ(l.dataset_id, "DR1.deepCoadd." + l.data_id.band);
    EXPECT_EQ(l.storage, repo::Storage::virtual_);
    ASSERT_TRUE(l.footprint);
    for (const auto& c : coadds) {
      if (c.data_id.band == l.data_id.band) {
        EXPECT_TRUE(l.footprint->contains({*c.s_ra, *c.s_dec})) << c.dataset_id;
      }
    }
  }
  EXPECT_EQ(coadds.size(), summary.coadds);
  std::map<std::string, std::set<long long>> registered;
  for (const auto& c : coadds) {
    ASSERT_TRUE(c.data_id.tract);
    EXPECT_EQ(c.data_id.skymap, "pixserve-rings");
    EXPECT_NE(c.dataset_id.find(fmt::format(".t{}.", *c.data_id.tract)), std::string::npos) << c.dataset_id;
    registered[fmt::format("deepCoadd/{}", c.data_id.band)].insert(*c.data_id.tract);
  }
  EXPECT_EQ(registered["deepCoadd/g"], tracts_of["deepCoadd/g"]);
  EXPECT_EQ(registered["deepCoadd/r"], tracts_of["deepCoadd/r"]);
}

// Without a sky map option the survey keeps its one tract, 0.
TEST(SkyMapSurvey, TheDefaultSurveyHasTractZeroOnly) {
  const fs::path base = pixserve::testing::test_scratch_dir("single");
  RemoveDir cleanup{base};
  sim::SurveyConfig config;
  config.visits = 1;
  config.detectors = 1;
  config.bands = "r";
  config.detector_width = config.detector_height = 128;
  config.field_radius_deg = 0.05;
  config.patch_size = 600;
  config.patch_border = 50;
  config.tract_size_deg = 0.2;
  config.threads = 2;
  const auto summary = sim::simulate(config, base);
  EXPECT_GT(summary.coadds, 0U);
  std::set<std::string> folders;
  for (const auto& e : fs::directory_iterator(base / "deepCoadd" / "r")) folders.insert(e.path().filename().string());
  EXPECT_EQ(folders, std::set<std::string>{"t0"});
  for (const auto& e : fs::directory_iterator(base / "deepCoadd" / "r" / "t0")) {
    auto f = fits::File::open(e.path());
    EXPECT_EQ(f.read_int("TRACT"), 0);
    EXPECT_EQ(f.read_string("SKYMAP"), "pixserve-tract");
  }
}
