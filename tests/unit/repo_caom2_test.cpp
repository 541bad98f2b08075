// The HDUs of a dataset's file as CAOM2 parts and chunks: read from the
// headers at ingest, kept in dataset_part with the dataset (deleted with
// it), and filled from the stored files when a version-4 registry is
// upgraded (docs/caom2.md).
#include <gtest/gtest.h>

#include "fits/fits.hpp"
#include "repo/hdu_parts.hpp"
#include "repo/metadata.hpp"
#include "repo/repository.hpp"
#include "wcs/wcs.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

// A calexp of the simulator's convention: a header-only primary HDU, IMAGE
// with a TAN WCS, MASK and VARIANCE of the same size, and a table.
void write_caom2_calexp(const fs::path& file) {
  auto f = fits::File::create(file);
  f.write_string("DSTYPE", "calexp");
  f.write_string("INSTRUME", "LSSTSim");
  f.write_string("TELESCOP", "pixserve simulated 8.4m");
  f.write_int("VISIT", 7);
  f.write_int("DETECTOR", 3);
  f.write_string("BAND", "r");
  f.write_string("FILTER", "r_57");
  f.write_double("MJD-OBS", 61000.25);
  f.write_double("EXPTIME", 30.0);
  wcs::TanParameters tan;
  tan.crval = {150.25, 2.5};
  tan.crpix = {19.5, 14.5};
  tan.cd = {-1e-3, 2e-5, 3e-5, 1e-3};
  f.append_image(fits::Image<float>(40, 30, 1.0F), {.extname = "IMAGE"});
  wcs::Wcs::tan(tan).write_to(f);
  f.append_image(fits::Image<std::int32_t>(40, 30, 0), {.extname = "MASK"});
  f.append_image(fits::Image<float>(40, 30, 1.0F), {.extname = "VARIANCE"});
  // A WCS of PC and CDELT rather than CD.
  f.append_image(fits::Image<float>(8, 6, 0.0F));
  f.write_string("CTYPE1", "RA---TAN");
  f.write_string("CTYPE2", "DEC--TAN");
  f.write_double("CRPIX1", 4.0);
  f.write_double("CRPIX2", 3.0);
  f.write_double("CRVAL1", 10.0);
  f.write_double("CRVAL2", -5.0);
  f.write_double("CDELT1", -2e-4);
  f.write_double("CDELT2", 2e-4);
  f.write_double("PC1_2", 0.5);
  f.write_double("EQUINOX", 2000.0);  // without RADESYS: FK5 (FITS WCS paper II)
  f.append_int_table("INPUTS", {"VISIT"}, {{1, 2}});
  f.close();
}

// Part and chunk IDs hold the HDU number in three digits: a file of more
// HDUs is refused by ingest, naming the file, rather than registered with
// IDs that would be another dataset's.
TEST(Caom2Parts, AFileOfMoreHdusThanPartIdsHoldIsRefused) {
  pixserve::testing::ScratchDir s("caom2_many_hdus");
  const auto path = s.dir / "many.fits";
  write_caom2_calexp(path);  // 6 HDUs
  const auto append = [&path](int n) {
    auto f = fits::File::open(path, fits::OpenMode::read_write);
    for (int i = 0; i < n; ++i) f.append_image(fits::Image<float>(1, 1, 0.0F));
    f.close();
  };
  append(kMaxHdus - 6);
  EXPECT_EQ(read_dataset_metadata(path, {}).parts.size(), static_cast<std::size_t>(kMaxHdus));
  append(1);
  EXPECT_THROW(read_hdu_parts(path), TooManyHdus);
  try {
    read_dataset_metadata(path, {});
    ADD_FAILURE() << "a file of " << kMaxHdus + 1 << " HDUs was read";
  } catch (const IngestError& e) {
    EXPECT_NE(std::string(e.what()).find("1001 HDUs"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("many.fits"), std::string::npos) << e.what();
  }
}

TEST(Caom2Parts, EveryHduIsAPartWithItsArrayAndWcs) {
  pixserve::testing::ScratchDir s("caom2_parts");
  write_caom2_calexp(s.dir / "calexp.fits");
  const auto parts = read_hdu_parts(s.dir / "calexp.fits");
  ASSERT_EQ(parts.size(), 6U);
  const std::vector<std::string> names{"0", "IMAGE", "MASK", "VARIANCE", "4", "INPUTS"};
  const std::vector<std::string> types{"this", "this", "auxiliary", "auxiliary", "this", "auxiliary"};
  const std::vector<int> naxis{0, 2, 2, 2, 2, 0};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].hdu, static_cast<int>(i));
    EXPECT_EQ(parts[i].name, names[i]);
    EXPECT_EQ(parts[i].product_type, types[i]) << names[i];
    EXPECT_EQ(parts[i].naxis, naxis[i]) << names[i];
  }
  const auto& image = parts[1];
  EXPECT_EQ(image.naxis1, 40);
  EXPECT_EQ(image.naxis2, 30);
  EXPECT_EQ(image.ctype1, "RA---TAN");
  EXPECT_EQ(image.ctype2, "DEC--TAN");
  EXPECT_EQ(image.cunit1, "deg");
  EXPECT_DOUBLE_EQ(*image.crpix1, 20.5);  // FITS counts pixels from 1
  EXPECT_DOUBLE_EQ(*image.crpix2, 15.5);
  EXPECT_DOUBLE_EQ(*image.crval1, 150.25);
  EXPECT_DOUBLE_EQ(*image.crval2, 2.5);
  EXPECT_DOUBLE_EQ(*image.cd11, -1e-3);
  EXPECT_DOUBLE_EQ(*image.cd12, 2e-5);
  EXPECT_DOUBLE_EQ(*image.cd21, 3e-5);
  EXPECT_DOUBLE_EQ(*image.cd22, 1e-3);
  // Its frame as the header gives it (RADESYS), or ICRS without EQUINOX.
  EXPECT_FALSE(image.coordsys.empty());
  EXPECT_TRUE(image.coordsys == "ICRS" || image.coordsys == "FK5") << image.coordsys;
  // A plane without a WCS has an array and no position axes.
  EXPECT_EQ(parts[2].naxis1, 40);
  EXPECT_TRUE(parts[2].ctype1.empty());
  EXPECT_FALSE(parts[2].crval1);
  // CD from PC x CDELT, PC the unit matrix where not written.
  const auto& pc = parts[4];
  EXPECT_EQ(pc.naxis1, 8);
  EXPECT_EQ(pc.naxis2, 6);
  EXPECT_DOUBLE_EQ(*pc.cd11, -2e-4);
  EXPECT_DOUBLE_EQ(*pc.cd12, -1e-4);
  EXPECT_DOUBLE_EQ(*pc.cd21, 0.0);
  EXPECT_DOUBLE_EQ(*pc.cd22, 2e-4);
  EXPECT_TRUE(pc.cunit1.empty());
  EXPECT_EQ(pc.coordsys, "FK5");
  EXPECT_EQ(pc.equinox, 2000.0);
  // Ingest reads them with the rest of the metadata.
  const auto rec = read_dataset_metadata(s.dir / "calexp.fits", {});
  ASSERT_EQ(rec.parts.size(), 6U);
  EXPECT_EQ(rec.parts[1].name, "IMAGE");
}

std::int64_t count_parts(Registry& registry) {
  auto s = registry.connection().prepare("SELECT count(*) FROM dataset_part");
  return s->step() ? s->get_int(0) : -1;
}

// A stored dataset of the file at data/calexp.fits under the repository.
DatasetRecord stored_calexp(const Repository& repo) {
  fs::create_directories(repo.root() / "data");
  write_caom2_calexp(repo.root() / "data" / "calexp.fits");
  auto rec = read_dataset_metadata(repo.root() / "data" / "calexp.fits", {});
  rec.file_path = "data/calexp.fits";
  rec.file_size = static_cast<std::int64_t>(fs::file_size(repo.root() / rec.file_path));
  rec.checksum = std::string(64, '0');
  return rec;
}

TEST(Caom2Parts, RemovingADatasetRemovesItsParts) {
  pixserve::testing::ScratchDir s;
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
  const auto rec = stored_calexp(repo);
  repo.registry().insert(rec);
  EXPECT_EQ(count_parts(repo.registry()), 6);
  EXPECT_TRUE(repo.registry().remove(rec.dataset_id));
  EXPECT_EQ(count_parts(repo.registry()), 0);
}

// Version 5 added dataset_part: a version-4 registry gets the table when
// opened, filled from the headers of its stored files, once.
TEST(Caom2Parts, AVersionFourRegistryLearnsItsFilesHdus) {
  pixserve::testing::ScratchDir s;
  const auto config = pixserve::testing::test_repository_config();
  std::string id;
  {
    auto repo = Repository::open_or_create(s.dir / "repo", config);
    auto rec = stored_calexp(repo);
    id = rec.dataset_id;
    rec.parts.clear();  // as a version-4 ingest registered it
    repo.registry().insert(rec);
    auto& c = repo.registry().connection();
    c.exec("DROP TABLE dataset_part");
    c.exec("UPDATE registry_meta SET value = '4' WHERE key = 'schema_version'");
  }
  {
    auto repo = Repository::open(s.dir / "repo");
    auto& c = repo.registry().connection();
    auto parts = c.prepare("SELECT p.hdu, p.name, p.naxis1 FROM dataset_part AS p JOIN dataset AS d ON "
                           "d.dataset_key = p.dataset_key WHERE d.dataset_id = ? ORDER BY p.hdu");
    parts->bind(1, id);
    std::vector<std::string> names;
    while (parts->step()) names.push_back(parts->get_text(1));
    EXPECT_EQ(names, (std::vector<std::string>{"0", "IMAGE", "MASK", "VARIANCE", "4", "INPUTS"}));
    auto version = c.prepare("SELECT value FROM registry_meta WHERE key = 'schema_version'");
    ASSERT_TRUE(version->step());
    EXPECT_EQ(version->get_text(0), "5");
    auto pending = c.prepare("SELECT count(*) FROM registry_meta WHERE key = 'dataset_part_pending'");
    ASSERT_TRUE(pending->step());
    EXPECT_EQ(pending->get_int(0), 0);
  }
  // Opened again: nothing is read or added twice.
  auto repo = Repository::open(s.dir / "repo");
  EXPECT_EQ(count_parts(repo.registry()), 6);
}

}  // namespace
}  // namespace pixserve::repo
