// Ingest: metadata from headers and WCS, atomicity, idempotence, spatial
// queries against brute force.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "repo/repository.hpp"
#include "sky/healpix.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

using Scratch = pixserve::testing::ScratchDir;

// A small calexp-like file: metadata in the primary HDU, an IMAGE HDU with a TAN WCS.
void write_calexp(const fs::path& file, std::int64_t visit, std::int64_t detector, double ra, double dec,
                  const std::string& band = "r", long size = 64, double mjd = 61000.25) {
  auto f = fits::File::create(file);
  f.write_string("DSTYPE", "calexp");
  f.write_string("INSTRUME", "LSSTSim");
  f.write_string("TELESCOP", "pixserve simulated 8.4m");
  f.write_int("VISIT", visit);
  f.write_int("DETECTOR", detector);
  f.write_string("DETNAME", "S11");
  f.write_string("RAFT", "R22");
  f.write_string("BAND", band);
  f.write_string("FILTER", band + "_57");
  f.write_double("MJD-OBS", mjd);
  f.write_double("EXPTIME", 30.0);
  f.write_double("PSFFWHM", 0.8);
  f.write_double("MAGZERO", 31.2);
  fits::Image<float> img(size, size, 1.0F);
  f.append_image(img, {.extname = "IMAGE"});
  wcs::TanParameters tan;
  tan.crval = {ra, dec};
  tan.crpix = {0.5 * static_cast<double>(size - 1), 0.5 * static_cast<double>(size - 1)};
  const double scale = 0.2 / 3600.0 * 20;  // 4"/px: a 64 px image spans ~4'
  tan.cd = {-scale, 0.0, 0.0, scale};
  wcs::Wcs::tan(tan).write_to(f);
  f.close();
}

TEST(Ingest, RegistersMetadataFromHeaders) {
  Scratch s("ingest_metadata");
  fs::create_directories(s.dir / "in");
  write_calexp(s.dir / "in" / "a.fits", 42, 7, 53.0, -28.0);
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  const auto report = ingest(repo, {s.dir / "in"}, {});
  EXPECT_EQ(report.registered, 1U);
  const auto rec = repo.registry().find_by_id("DR1.calexp.v42.d007");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->type, DatasetType::calexp);
  EXPECT_EQ(rec->data_id.band, "r");
  EXPECT_EQ(rec->width, 64);
  ASSERT_TRUE(rec->s_ra && rec->s_dec);
  EXPECT_NEAR(*rec->s_ra, 53.0, 1e-6);
  EXPECT_NEAR(*rec->s_dec, -28.0, 1e-6);
  ASSERT_TRUE(rec->t_min && rec->t_max);
  EXPECT_NEAR(*rec->t_max - *rec->t_min, 30.0 / 86400.0, 1e-9);
  ASSERT_TRUE(rec->em_min);
  EXPECT_NEAR(*rec->em_min, 552e-9, 1e-12);
  // Embargo: released 6 h after the end of the exposure.
  ASSERT_TRUE(rec->rights.release_mjd);
  EXPECT_NEAR(*rec->rights.release_mjd, *rec->t_max + 0.25, 1e-9);
  // Provenance from the data ID.
  ASSERT_EQ(rec->inputs.size(), 3U);
  EXPECT_EQ(rec->inputs[0].input_id, "DR1.bias.d007");
  EXPECT_EQ(rec->inputs[1].input_id, "DR1.flat.r.d007");
  EXPECT_EQ(rec->inputs[2].input_id, "DR1.raw.v42.d007");
  // The file is in the repository layout and byte-identical.
  const auto stored = repo.file_of(*rec);
  EXPECT_TRUE(fs::exists(stored));
  EXPECT_EQ(sha256_file(stored), sha256_file(s.dir / "in" / "a.fits"));
  EXPECT_EQ(rec->file_path, "data/DR1/calexp/v42/DR1.calexp.v42.d007.fits");
  // The footprint contains the pixel centres at the corners.
  ASSERT_TRUE(rec->footprint);
  EXPECT_NEAR(*rec->s_fov, std::sqrt(2.0) * 64 * 4.0 / 3600.0, 1e-3);
  EXPECT_EQ(repo.publisher_did(rec->dataset_id), "ivo://pixserve.example/repo?DR1.calexp.v42.d007");
  EXPECT_EQ(repo.dataset_id_from("ivo://PIXSERVE.example/repo?DR1.calexp.v42.d007").value_or(""), rec->dataset_id);
  EXPECT_FALSE(repo.dataset_id_from("ivo://other/repo?DR1.calexp.v42.d007"));
  EXPECT_FALSE(repo.dataset_id_from("../../etc/passwd"));
}

TEST(Ingest, ReingestIsANoOp) {
  Scratch s("ingest_idempotent");
  fs::create_directories(s.dir / "in");
  write_calexp(s.dir / "in" / "a.fits", 1, 1, 10.0, 0.0);
  write_calexp(s.dir / "in" / "b.fits", 2, 1, 10.0, 0.0);
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  EXPECT_EQ(ingest(repo, {s.dir / "in"}, {}).registered, 2U);
  const auto again = ingest(repo, {s.dir / "in"}, {});
  EXPECT_EQ(again.registered, 0U);
  EXPECT_EQ(again.unchanged, 2U);
  EXPECT_EQ(repo.registry().stats().datasets, 2);
}

TEST(Ingest, CorruptFileLeavesRepositoryUnchanged) {
  Scratch s("ingest_atomic");
  fs::create_directories(s.dir / "in");
  for (int v = 1; v <= 5; ++v) write_calexp(s.dir / "in" / fmt::format("c{}.fits", v), v, 3, 20.0, 10.0);
  // A truncated FITS file in the middle of the run, and a file without WCS.
  {
    std::ofstream bad(s.dir / "in" / "c3b.fits", std::ios::binary);
    bad << "SIMPLE  =                    T / truncated";
  }
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  try {
    ingest(repo, {s.dir / "in"}, {});
    FAIL() << "ingest of a corrupt file must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("c3b.fits"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo.registry().stats().datasets, 0);
  EXPECT_EQ(repo.registry().stats().index_cells, 0);
  EXPECT_FALSE(fs::exists(repo.root() / "data"));
  for (const auto& entry : fs::directory_iterator(repo.root())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".staging")) << entry.path();
  }
  // With skip_bad the good files go in and the bad one is reported.
  IngestOptions skip;
  skip.skip_bad = true;
  const auto report = ingest(repo, {s.dir / "in"}, skip);
  EXPECT_EQ(report.registered, 5U);
  ASSERT_EQ(report.skipped.size(), 1U);
  EXPECT_NE(report.skipped[0].find("c3b.fits"), std::string::npos);
}

TEST(Ingest, FileWithoutWcsIsRefused) {
  Scratch s("ingest_nowcs");
  {
    auto f = fits::File::create(s.dir / "nowcs.fits");
    f.write_string("DSTYPE", "calexp");
    f.write_int("VISIT", 5);
    f.write_int("DETECTOR", 1);
    f.write_double("MJD-OBS", 61000.0);
    f.append_image(fits::Image<float>(8, 8), {.extname = "IMAGE"});
    f.close();
  }
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  try {
    ingest(repo, {s.dir / "nowcs.fits"}, {});
    FAIL() << "a science image without WCS must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("WCS"), std::string::npos) << e.what();
  }
  EXPECT_EQ(repo.registry().stats().datasets, 0);
}

TEST(Ingest, ConflictingDuplicateIsRefused) {
  Scratch s("ingest_duplicate");
  fs::create_directories(s.dir / "a");
  fs::create_directories(s.dir / "b");
  write_calexp(s.dir / "a" / "x.fits", 9, 9, 30.0, 5.0);
  write_calexp(s.dir / "b" / "x.fits", 9, 9, 30.1, 5.0);  // same data ID, other content
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  EXPECT_EQ(ingest(repo, {s.dir / "a"}, {}).registered, 1U);
  EXPECT_THROW(ingest(repo, {s.dir / "b"}, {}), std::runtime_error);
  EXPECT_THROW(ingest(repo, {s.dir / "missing"}, {}), std::runtime_error);
  EXPECT_EQ(repo.registry().stats().datasets, 1);
  EXPECT_NEAR(*repo.registry().find_by_id("DR1.calexp.v9.d009")->s_ra, 30.0, 1e-6);
}

TEST(Ingest, UserImageNeedsOwner) {
  Scratch s("ingest_user");
  {
    auto f = fits::File::create(s.dir / "my image.fits");
    f.append_image(fits::Image<float>(16, 16), {.extname = "IMAGE"});
    wcs::TanParameters tan;
    tan.crval = {150.0, 2.0};
    tan.cd = {-1e-4, 0, 0, 1e-4};
    wcs::Wcs::tan(tan).write_to(f);
    f.close();
  }
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  EXPECT_THROW(ingest(repo, {s.dir / "my image.fits"}, {}), std::runtime_error);
  IngestOptions opts;
  opts.owner = "alice";
  opts.policy = ReadPolicy::owner;
  opts.collection = "user-alice";
  EXPECT_EQ(ingest(repo, {s.dir / "my image.fits"}, opts).registered, 1U);
  const auto rec = repo.registry().find_by_id("user-alice.user.alice.my_image");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->rights.owner, "alice");
  EXPECT_EQ(rec->rights.policy, ReadPolicy::owner);
  EXPECT_FALSE(rec->rights.release_mjd);
}

// The index never misses: every dataset whose footprint intersects a cone is
// returned, compared with a brute-force test over all footprints.
TEST(Ingest, ConeSearchMatchesBruteForce) {
  Scratch s("ingest_cone");
  fs::create_directories(s.dir / "in");
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> ra(359.0, 361.0), dec(-1.0, 1.0);
  for (int v = 0; v < 60; ++v) {
    write_calexp(s.dir / "in" / fmt::format("c{}.fits", v), v, 1, sky::normalize_ra(ra(rng)), dec(rng));
  }
  auto repo = Repository::open_or_create(s.dir / "repo", {});
  ingest(repo, {s.dir / "in"}, {});
  const auto all = repo.registry().find({});
  ASSERT_EQ(all.size(), 60U);
  std::uniform_real_distribution<double> radius(0.001, 0.5);
  for (int trial = 0; trial < 40; ++trial) {
    const sky::Circle cone{{sky::normalize_ra(ra(rng)), dec(rng)}, radius(rng)};
    DatasetQuery q;
    q.regions.push_back(cone);
    std::vector<std::string> got;
    for (const auto& r : repo.registry().find(q)) got.push_back(r.dataset_id);
    std::vector<std::string> expected;
    for (const auto& r : all) {
      if (sky::intersects(*r.footprint, cone)) expected.push_back(r.dataset_id);
    }
    EXPECT_EQ(got, expected) << "cone " << cone.center.ra << " " << cone.center.dec << " r=" << cone.radius_deg;
  }
}

}  // namespace
}  // namespace pixserve::repo
