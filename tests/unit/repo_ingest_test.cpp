// Ingest: metadata from headers and WCS (the built-in mapping, field by
// field), atomicity, idempotence, spatial queries against brute force.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "db/copy.hpp"
#include "fits/fits.hpp"
#include "repo/astro_units.hpp"
#include "repo/metadata.hpp"
#include "repo/repository.hpp"
#include "sky/healpix.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
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

// A limit keeps the first matches in the order of registration, also when
// many more candidates of the index than the limit fail the exact test
// before them (the search reads its candidates in growing chunks).
TEST(Ingest, ConeSearchWithALimitKeepsTheFirstRegisteredMatches) {
  Scratch s("ingest_cone_limit");
  fs::create_directories(s.dir / "in");
  // Coarse index cells (order 4, ~3.7 degrees): every image is a candidate
  // of the cone, and the 150 registered first are ~0.3-0.6 degrees away.
  for (int i = 0; i < 150; ++i) write_calexp(s.dir / "in" / fmt::format("a{:03}.fits", i), i, 1, 20.3 + 0.002 * i, -5.0);
  for (int i = 0; i < 30; ++i) write_calexp(s.dir / "in" / fmt::format("b{:03}.fits", i), 200 + i, 1, 20.0, -5.0 + 0.0005 * i);
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config({.index_order = 4}));
  ingest(repo, {s.dir / "in"}, {});
  const auto all = repo.registry().find({});
  ASSERT_EQ(all.size(), 180U);
  const sky::Circle cone{{20.0, -5.0}, 0.02};
  std::vector<std::string> expected;
  for (const auto& r : all) {
    if (sky::intersects(*r.footprint, cone)) expected.push_back(r.dataset_id);
  }
  ASSERT_EQ(expected.size(), 30U);
  for (const std::size_t limit : {1, 5, 29, 30, 31, 1000}) {
    DatasetQuery q;
    q.regions.push_back(cone);
    q.limit = limit;
    std::vector<std::string> got;
    for (const auto& r : repo.registry().find(q)) got.push_back(r.dataset_id);
    const std::vector<std::string> first(expected.begin(),
                                         expected.begin() + static_cast<std::ptrdiff_t>(std::min(limit, expected.size())));
    EXPECT_EQ(got, first) << "limit " << limit;
  }
}

// A registry opened read-only (as on a hot standby) reads what the primary
// wrote through a connection that cannot write, and never makes a schema.
TEST(Ingest, ARegistryOpenedReadOnlyReadsAndNeverCreates) {
  Scratch s("ingest_read_only");
  fs::create_directories(s.dir / "in");
  for (int v = 0; v < 3; ++v) write_calexp(s.dir / "in" / fmt::format("c{}.fits", v), v, 1, 10.0 + 0.01 * v, -5.0);
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config({.index_order = 11}));
  ingest(repo, {s.dir / "in"}, {});
  const auto database = repo.registry_database();
  const auto read_only_connection = [&] {
    return database.is_postgresql() ? db::open_postgresql(database.postgresql_url, {.read_only = true})
                                    : db::open_sqlite(database.sqlite_file, {.read_only = true});
  };
  Registry reader(read_only_connection(), 9, Registry::Access::read_only);
  EXPECT_EQ(reader.index_order(), 11);  // the primary's, not the "if new" one
  DatasetQuery q;
  q.regions.push_back(sky::Circle{{10.0, -5.0}, 0.05});
  std::vector<std::string> on_primary, read;
  for (const auto& r : repo.registry().find(q)) on_primary.push_back(r.dataset_id);
  for (const auto& r : reader.find(q)) read.push_back(r.dataset_id);
  EXPECT_FALSE(read.empty());
  EXPECT_EQ(read, on_primary);
  EXPECT_EQ(reader.inputs_of(read.front()).size(), repo.registry().inputs_of(read.front()).size());

  // An empty database is refused, and left empty.
  const auto empty_config = pixserve::testing::test_repository_config();
  const auto empty = RegistryDatabase::of(s.dir / "empty", empty_config);
  fs::create_directories(s.dir / "empty");
  if (!empty.is_postgresql()) db::open_sqlite(empty.sqlite_file, true).reset();
  const auto open_empty = [&] {
    return empty.is_postgresql() ? db::open_postgresql(empty.postgresql_url, {.read_only = true})
                                 : db::open_sqlite(empty.sqlite_file, {.read_only = true});
  };
  EXPECT_THROW(Registry(open_empty(), 9, Registry::Access::read_only), db::DbError);
  auto check = open_empty();
  EXPECT_FALSE(db::table_exists(*check, "dataset"));
}

// --- The simulator's convention (docs/fits-conventions.md), field by field ---

wcs::TanParameters small_tan(double ra, double dec, long width, long height) {
  wcs::TanParameters tan;
  tan.crval = {ra, dec};
  tan.crpix = {0.5 * static_cast<double>(width - 1), 0.5 * static_cast<double>(height - 1)};
  tan.cd = {-4.0 / 3600.0, 0.0, 0.0, 4.0 / 3600.0};
  return tan;
}

IngestError read_error(const fs::path& file, const MetadataOptions& options = {}) {
  try {
    read_dataset_metadata(file, options);
  } catch (const IngestError& e) {
    return e;
  }
  ADD_FAILURE() << file << " was read without an error";
  return IngestError(file, "");
}

TEST(SimConvention, CalexpFieldByField) {
  Scratch s("builtin_calexp");
  write_calexp(s.dir / "a.fits", 42, 7, 53.0, -28.0);
  const auto rec = read_dataset_metadata(s.dir / "a.fits", {});
  EXPECT_EQ(rec.dataset_id, "DR1.calexp.v42.d007");
  EXPECT_EQ(rec.type, DatasetType::calexp);
  EXPECT_EQ(rec.collection, "DR1");
  EXPECT_EQ(rec.data_id.instrument, "LSSTSim");
  EXPECT_EQ(rec.data_id.visit, 42);
  EXPECT_EQ(rec.data_id.exposure, 42);  // no EXPOSURE: the visit
  EXPECT_EQ(rec.data_id.detector, 7);
  EXPECT_EQ(rec.data_id.detector_name, "S11");
  EXPECT_EQ(rec.data_id.raft, "R22");
  EXPECT_EQ(rec.data_id.band, "r");
  EXPECT_EQ(rec.data_id.physical_filter, "r_57");
  EXPECT_EQ(rec.data_id.skymap, "");
  EXPECT_FALSE(rec.data_id.tract);
  EXPECT_EQ(rec.data_id.patch, "");
  EXPECT_EQ(rec.width, 64);
  EXPECT_EQ(rec.height, 64);
  ASSERT_TRUE(rec.pixel_scale_arcsec && rec.s_ra && rec.s_dec && rec.s_fov && rec.footprint);
  EXPECT_NEAR(*rec.pixel_scale_arcsec, 4.0, 1e-9);
  EXPECT_NEAR(*rec.s_ra, 53.0, 1e-6);
  EXPECT_NEAR(*rec.s_dec, -28.0, 1e-6);
  EXPECT_EQ(rec.t_min, 61000.25);
  EXPECT_EQ(rec.t_max, 61000.25 + 30.0 / 86400.0);
  EXPECT_EQ(rec.t_exptime, 30.0);
  const auto r = *band_limits("r");
  EXPECT_EQ(rec.em_min, r.em_min);
  EXPECT_EQ(rec.em_max, r.em_max);
  EXPECT_EQ(rec.em_res_power, r.resolving_power());
  EXPECT_EQ(rec.facility_name, "pixserve simulated 8.4m");
  EXPECT_EQ(rec.instrument_name, "LSSTSim");
  EXPECT_EQ(rec.target_name, "");  // no OBJECT
  EXPECT_EQ(rec.psf_fwhm, 0.8);
  EXPECT_EQ(rec.zero_point, 31.2);
  EXPECT_EQ(rec.s_resolution, 0.8);  // the PSF, not the pixel scale
  // Optional keywords the file lacks: null columns, no error.
  EXPECT_FALSE(rec.seeing);
  EXPECT_FALSE(rec.airmass);
  EXPECT_FALSE(rec.sky_background);
  EXPECT_FALSE(rec.telescope_ra);
  EXPECT_FALSE(rec.telescope_dec);
  EXPECT_EQ(rec.software_version, "");
  ASSERT_EQ(rec.inputs.size(), 3U);
  EXPECT_EQ(rec.inputs[0].input_id, "DR1.raw.v42.d007");
  EXPECT_EQ(rec.inputs[0].role, "raw");
  EXPECT_EQ(rec.inputs[1].input_id, "DR1.bias.d007");
  EXPECT_EQ(rec.inputs[1].role, "bias");
  EXPECT_EQ(rec.inputs[2].input_id, "DR1.flat.r.d007");
  EXPECT_EQ(rec.inputs[2].role, "flat");
  EXPECT_EQ(rec.rights.owner, "survey");
  EXPECT_FALSE(rec.calib_level);
  EXPECT_EQ(calib_level(rec), 2);
}

TEST(SimConvention, OptionalKeywordsAndFallbacks) {
  Scratch s("builtin_optional");
  write_calexp(s.dir / "a.fits", 3, 12, 10.0, 1.0, "g", 32);
  {
    auto f = fits::File::open(s.dir / "a.fits", fits::OpenMode::read_write);
    f.delete_key("BAND");     // no band: no flat input, no wavelengths
    f.delete_key("PSFFWHM");  // s_resolution falls back to SEEING
    f.delete_key("MJD-OBS");  // the start falls back to DATE-OBS
    f.delete_key("EXPTIME");  // no end
    f.write_double("SEEING", 0.65);
    f.write_string("DATE-OBS", "2026-02-03T12:00:00");
    f.write_double("AIRMASS", 1.2);
    f.write_string("OBJECT", "field 7");
    f.write_int("EXPOSURE", 300);
    f.close();
  }
  const auto rec = read_dataset_metadata(s.dir / "a.fits", {});
  EXPECT_EQ(rec.dataset_id, "DR1.calexp.v3.d012");
  EXPECT_EQ(rec.data_id.band, "");
  EXPECT_EQ(rec.data_id.exposure, 300);
  EXPECT_FALSE(rec.em_min || rec.em_max || rec.em_res_power);
  EXPECT_EQ(rec.s_resolution, 0.65);
  EXPECT_EQ(rec.seeing, 0.65);
  EXPECT_FALSE(rec.psf_fwhm);
  EXPECT_EQ(rec.airmass, 1.2);
  EXPECT_EQ(rec.target_name, "field 7");
  EXPECT_EQ(rec.t_min, mjd_from_iso("2026-02-03T12:00:00"));
  EXPECT_FALSE(rec.t_max);
  EXPECT_FALSE(rec.t_exptime);
  ASSERT_EQ(rec.inputs.size(), 2U);
  EXPECT_EQ(rec.inputs[0].input_id, "DR1.raw.v3.d012");
  EXPECT_EQ(rec.inputs[1].input_id, "DR1.bias.d012");

  // Without either time keyword a visit image is refused.
  {
    auto f = fits::File::open(s.dir / "a.fits", fits::OpenMode::read_write);
    f.delete_key("DATE-OBS");
    f.close();
  }
  EXPECT_NE(std::string(read_error(s.dir / "a.fits").what()).find("no MJD-OBS or DATE-OBS"), std::string::npos);
}

TEST(SimConvention, RawAmplifierFileTakesTheDetectorSize) {
  Scratch s("builtin_raw");
  const auto write_raw = [&](const fs::path& file, bool detsize) {
    auto f = fits::File::create(file);
    f.write_string("DSTYPE", "raw");
    f.write_string("INSTRUME", "LSSTSim");
    f.write_int("VISIT", 5);
    f.write_int("DETECTOR", 3);
    f.write_string("BAND", "i");
    f.write_double("MJD-OBS", 61001.5);
    f.write_double("EXPTIME", 15.0);
    f.write_double("SEEING", 0.9);
    if (detsize) f.write_string("DETSIZE", "[1:96,1:80]");
    wcs::Wcs::tan(small_tan(120.0, 5.0, 96, 80)).write_to(f);  // the assembled detector's WCS
    for (const char* amp : {"SEGMENT00", "SEGMENT10"}) {
      f.append_image(fits::Image<std::int32_t>(52, 84, 1000), {.extname = amp});
    }
    f.close();
  };
  write_raw(s.dir / "raw.fits", true);
  const auto rec = read_dataset_metadata(s.dir / "raw.fits", {});
  EXPECT_EQ(rec.dataset_id, "DR1.raw.v5.d003");
  EXPECT_EQ(rec.type, DatasetType::raw);
  EXPECT_EQ(rec.width, 96);
  EXPECT_EQ(rec.height, 80);
  ASSERT_TRUE(rec.s_ra && rec.s_dec && rec.footprint);
  EXPECT_NEAR(*rec.s_ra, 120.0, 1e-6);
  EXPECT_NEAR(*rec.s_dec, 5.0, 1e-6);
  EXPECT_EQ(rec.s_resolution, 0.9);
  EXPECT_EQ(rec.t_max, 61001.5 + 15.0 / 86400.0);
  EXPECT_TRUE(rec.inputs.empty());
  EXPECT_EQ(calib_level(rec), 1);
  write_raw(s.dir / "nodetsize.fits", false);
  EXPECT_NE(std::string(read_error(s.dir / "nodetsize.fits").what()).find("DETSIZE"), std::string::npos);
}

TEST(SimConvention, CoaddInputsAndCompressedCalexps) {
  Scratch s("builtin_coadd");
  {
    auto f = fits::File::create(s.dir / "coadd.fits");
    f.write_string("DSTYPE", "deepCoadd");
    f.write_string("BAND", "g");
    f.write_string("SKYMAP", "pixserve-rings");
    f.write_int("TRACT", 9813);
    f.write_string("PATCH", "3,10");
    f.write_double("MJD-BEG", 61000.1);
    f.write_double("MJD-END", 61002.2);
    f.write_double("EXPTIME", 90.0);
    f.write_string("SWVER", "pixserve-sim 1.0");
    f.append_image(fits::Image<float>(40, 30, 0.0F), {.extname = "IMAGE"});
    wcs::Wcs::tan(small_tan(150.0, 2.0, 40, 30)).write_to(f);
    f.append_int_table("INPUTS", {"VISIT", "DETECTOR"}, {{1, 3, 3}, {2, 4, 105}});
    f.close();
  }
  const auto rec = read_dataset_metadata(s.dir / "coadd.fits", {});
  EXPECT_EQ(rec.dataset_id, "DR1.deepCoadd.g.t9813.p3_10");
  EXPECT_EQ(rec.data_id.skymap, "pixserve-rings");
  EXPECT_EQ(rec.data_id.tract, 9813);
  EXPECT_EQ(rec.data_id.patch, "3,10");
  EXPECT_EQ(rec.t_min, 61000.1);
  EXPECT_EQ(rec.t_max, 61002.2);
  EXPECT_EQ(rec.t_exptime, 90.0);
  EXPECT_EQ(rec.software_version, "pixserve-sim 1.0");
  EXPECT_EQ(rec.width, 40);
  EXPECT_EQ(rec.height, 30);
  EXPECT_EQ(rec.s_resolution, std::nullopt);  // no PSFFWHM or SEEING
  ASSERT_EQ(rec.inputs.size(), 3U);
  EXPECT_EQ(rec.inputs[0].input_id, "DR1.calexp.v1.d002");
  EXPECT_EQ(rec.inputs[1].input_id, "DR1.calexp.v3.d004");
  EXPECT_EQ(rec.inputs[2].input_id, "DR1.calexp.v3.d105");
  for (const auto& in : rec.inputs) EXPECT_EQ(in.role, "input");
  EXPECT_EQ(calib_level(rec), 3);

  write_calexp(s.dir / "comp.fits", 8, 1, 10.0, 0.0);
  {
    auto f = fits::File::open(s.dir / "comp.fits", fits::OpenMode::read_write);
    f.write_string("DSTYPE", "calexp_comp");
    f.close();
  }
  const auto comp = read_dataset_metadata(s.dir / "comp.fits", {.collection = "DR2", .owner = {}});
  EXPECT_EQ(comp.dataset_id, "DR2.calexp_comp.v8.d001");
  ASSERT_EQ(comp.inputs.size(), 1U);
  EXPECT_EQ(comp.inputs[0].input_id, "DR2.calexp.v8.d001");
  EXPECT_EQ(comp.inputs[0].role, "compressed-from");
}

TEST(SimConvention, UserImagesAndRefusals) {
  Scratch s("builtin_user");
  {
    auto f = fits::File::create(s.dir / "my image.v2.fits");
    f.write_string("OBJECT", "M31");
    f.append_image(fits::Image<float>(16, 12), {.extname = "IMAGE"});
    wcs::Wcs::tan(small_tan(10.68, 41.27, 16, 12)).write_to(f);
    f.close();
  }
  const auto rec = read_dataset_metadata(s.dir / "my image.v2.fits", {.collection = "user", .owner = "alice"});
  EXPECT_EQ(rec.dataset_id, "user.user.alice.my_image_v2");
  EXPECT_EQ(rec.type, DatasetType::user);
  EXPECT_EQ(rec.rights.owner, "alice");
  EXPECT_EQ(rec.target_name, "M31");
  EXPECT_EQ(rec.width, 16);
  EXPECT_EQ(rec.height, 12);
  EXPECT_FALSE(rec.t_min);
  EXPECT_TRUE(rec.inputs.empty());
  EXPECT_NE(std::string(read_error(s.dir / "my image.v2.fits").what()).find("a user image needs an owner (--owner)"),
            std::string::npos);
  EXPECT_NE(std::string(read_error(s.dir / "my image.v2.fits", {.collection = "DR1", .owner = "Survey"}).what()).find("is reserved"),
            std::string::npos);

  for (const char* type : {"picture", "user"}) {
    write_calexp(s.dir / "odd.fits", 1, 1, 10.0, 0.0);
    auto f = fits::File::open(s.dir / "odd.fits", fits::OpenMode::read_write);
    f.write_string("DSTYPE", type);
    f.close();
    EXPECT_NE(std::string(read_error(s.dir / "odd.fits").what()).find(fmt::format("unknown dataset type DSTYPE='{}'", type)),
              std::string::npos);
  }
  write_calexp(s.dir / "q.fits", 1, 1, 10.0, 0.0, "q");
  EXPECT_NE(std::string(read_error(s.dir / "q.fits").what()).find("unknown band BAND='q' (expected one of u g r i z y)"),
            std::string::npos);
  {
    write_calexp(s.dir / "novisit.fits", 1, 1, 10.0, 0.0);
    auto f = fits::File::open(s.dir / "novisit.fits", fits::OpenMode::read_write);
    f.delete_key("VISIT");
    f.close();
  }
  EXPECT_NE(std::string(read_error(s.dir / "novisit.fits").what()).find("a calexp dataset needs visit in its data ID"),
            std::string::npos);
}

TEST(SimConvention, HeadersOnlyFilesTakeTheirSizeFromDetsize) {
  Scratch s("builtin_headers_only");
  auto f = fits::File::create(s.dir / "h.fits");
  f.write_string("DSTYPE", "calexp");
  f.write_int("VISIT", 1);
  f.write_int("DETECTOR", 2);
  f.write_double("MJD-OBS", 61000.0);
  f.write_string("DETSIZE", "[1:4096,1:4004]");
  f.append_header_hdu("IMAGE");
  wcs::Wcs::tan(small_tan(30.0, -10.0, 4096, 4004)).write_to(f);
  f.close();
  const auto rec = read_dataset_metadata(s.dir / "h.fits", {});
  EXPECT_EQ(rec.width, 4096);
  EXPECT_EQ(rec.height, 4004);
}

// A mapping's calib_level is stored and read back; without one the type's.
TEST(IngestMapping, CalibLevelIsKept) {
  Scratch s("mapping_calib_level");
  fs::create_directories(s.dir / "in");
  write_calexp(s.dir / "in" / "a.fits", 1, 1, 10.0, 0.0);
  write_calexp(s.dir / "in" / "b.fits", 2, 1, 10.0, 0.0);
  const std::string yaml = R"(mapping: 1
rules:
  - match: {path: a.fits}
    dataset_type: calexp
    calib_level: 4
    time: {start: MJD-OBS, exptime: EXPTIME, scale: tai}
    columns: {seeing: "{SEEING?}", airmass: ["{AIRMASS?}", "1.5"], zero_point: "{MAGZERO}"}
  - match: {path: b.fits}
    dataset_type: calexp
    time: {start: MJD-OBS, scale: tai}
    columns: {seeing: "{SEEING}"}
)";
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
  IngestOptions options;
  options.mapping = std::make_shared<const Mapping>(Mapping::parse(yaml, "levels.yaml"));
  options.skip_bad = true;
  const auto report = ingest(repo, {s.dir / "in"}, options);
  EXPECT_EQ(report.registered, 1U);
  // b.fits names SEEING without '?': its absence is an error naming the line.
  ASSERT_EQ(report.skipped.size(), 1U);
  EXPECT_NE(report.skipped[0].find("keyword SEEING is missing (named by rule 'rule 2' at levels.yaml:11)"),
            std::string::npos)
      << report.skipped[0];
  const auto rec = repo.registry().find_by_id("DR1.calexp.a");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->calib_level, 4);
  EXPECT_EQ(calib_level(*rec), 4);
  EXPECT_FALSE(rec->seeing);         // {SEEING?}: absent, null
  EXPECT_EQ(rec->airmass, 1.5);      // the second alternative
  EXPECT_EQ(rec->zero_point, 31.2);
  ASSERT_TRUE(rec->s_resolution);
  EXPECT_NEAR(*rec->s_resolution, 4.0, 1e-9);  // the pixel scale, as the rule does not say
  EXPECT_EQ(rec->t_max, rec->t_min.value_or(0) + 30.0 / 86400.0);
  // The built-in mapping leaves the level to the type, and the registry keeps it.
  auto plain = Repository::open_or_create(s.dir / "plain", pixserve::testing::test_repository_config());
  ingest(plain, {s.dir / "in" / "b.fits"}, {});
  const auto calexp = plain.registry().find_by_id("DR1.calexp.v2.d001");
  ASSERT_TRUE(calexp);
  EXPECT_EQ(calib_level(*calexp), 2);
}

}  // namespace
}  // namespace pixserve::repo
