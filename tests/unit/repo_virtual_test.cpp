// Virtual datasets in the registry: the recipe document, the storage column,
// the upgrade of a version-1 registry that has neither, and of a version-2
// registry that has no index of centres.
#include <gtest/gtest.h>

#include "image/calexp.hpp"
#include "repo/recipe.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"
#include "sky/healpix.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

Recipe a_recipe() {
  Recipe r;
  r.product = "calexp";
  r.inputs = {{"raw", "DR1.raw.v1.d004", "aa"}, {"bias", "DR1.bias.d004", "bb"}, {"flat", "DR1.flat.r.d004", "cc"}};
  r.software_version = "pixserve-0.1.0";
  r.algorithm_version = std::string(image::kIsrVersion);
  r.parameters = calexp_parameters_to_json({});
  return r;
}

TEST(Recipe, RoundTripsAndHashesTheSameDocumentTheSameWay) {
  const Recipe r = a_recipe();
  const std::string text = r.to_json();
  EXPECT_EQ(Recipe::from_json(text), r);
  EXPECT_EQ(Recipe::from_json(text).to_json(), text);
  EXPECT_EQ(recipe_hash(text), recipe_hash(a_recipe().to_json()));
  EXPECT_EQ(recipe_hash(text).size(), 64U);
  Recipe other = r;
  other.inputs[1].checksum = "bd";
  EXPECT_NE(recipe_hash(other.to_json()), recipe_hash(text));
  EXPECT_EQ(r.input("flat").dataset_id, "DR1.flat.r.d004");
  EXPECT_THROW(r.input("template"), std::invalid_argument);
}

TEST(Recipe, MalformedDocumentsAreRefused) {
  for (const char* bad : {"", "[]", "{\"recipe\": 2}", "{\"recipe\": 1, \"product\": \"calexp\"}",
                          "{\"recipe\": 1, \"product\": \"calexp\", \"inputs\": [{\"role\": \"raw\"}]}"}) {
    EXPECT_THROW(Recipe::from_json(bad), std::invalid_argument) << bad;
  }
}

TEST(Recipe, CalexpParametersRoundTripExactly) {
  image::CalexpParameters p;
  p.isr.overscan.statistic = image::OverscanStatistic::median;
  p.isr.overscan.smoothing_rows = 3;
  p.isr.edge_width = 7;
  p.isr.bad_flat_threshold = 0.25F;
  p.isr.subtract_background = false;
  p.isr.detection_sigma = 4.5F;
  p.psf_sigma_guess = 1.75;
  const auto back = calexp_parameters_from_json(calexp_parameters_to_json(p), "v9");
  EXPECT_EQ(back.isr.overscan.statistic, image::OverscanStatistic::median);
  EXPECT_EQ(back.isr.overscan.smoothing_rows, 3);
  EXPECT_EQ(back.isr.edge_width, 7);
  EXPECT_EQ(back.isr.bad_flat_threshold, 0.25F);
  EXPECT_FALSE(back.isr.subtract_background);
  EXPECT_EQ(back.isr.detection_sigma, 4.5F);
  EXPECT_EQ(back.psf_sigma_guess, 1.75);
  EXPECT_EQ(back.software_version, "v9");
  EXPECT_THROW(calexp_parameters_from_json(nlohmann::json::object(), "v9"), std::invalid_argument);
}

TEST(Recipe, EstimatedCalexpSizeCountsPaddedPlanes) {
  // 128 x 128 x 4 bytes = 65536 -> 23 blocks of 2880 per plane, 4 header blocks.
  EXPECT_EQ(estimated_calexp_bytes(128, 128), 3 * 23 * 2880 + 4 * 2880);
}

// A stored bias frame of detector 1: a dataset without a sky position.
DatasetRecord a_bias() {
  DatasetRecord r;
  r.dataset_id = "DR1.bias.d001";
  r.type = DatasetType::bias;
  r.collection = "DR1";
  r.data_id.detector = 1;
  r.file_path = "data/bias.fits";
  r.checksum = "00";
  return r;
}

// What schema version 4 added to the dataset table (the coadds' provenance).
constexpr const char* kDropVersion4Columns =
    "ALTER TABLE dataset DROP COLUMN n_inputs; ALTER TABLE dataset DROP COLUMN coverage_fraction; "
    "ALTER TABLE dataset DROP COLUMN depth_5sigma";

DatasetRecord a_coadd_patch() {
  DatasetRecord r;
  r.dataset_id = "DR1.deepCoadd.r.t0.p1_2";
  r.type = DatasetType::deepCoadd;
  r.collection = "DR1";
  r.data_id.band = "r";
  r.data_id.skymap = "pixserve-tract";
  r.data_id.tract = 0;
  r.data_id.patch = "1,2";
  r.file_path = "data/" + r.dataset_id + ".fits";
  r.checksum = "00";
  r.t_min = 61000.1;
  r.t_max = 61003.2;
  r.n_inputs = 17;
  r.coverage_fraction = 0.625;
  r.depth_5sigma = 25.375;
  return r;
}

TEST(RegistrySchema, AVersionOneRegistryIsUpgradedInPlace) {
  // Version 1 registries were SQLite files; PostgreSQL registries begin at 2.
  if (!pixserve::testing::test_postgresql_server().empty()) GTEST_SKIP() << "SQLite registries only";
  pixserve::testing::ScratchDir s;
  {
    auto repo = Repository::open_or_create(s.dir / "repo", {});
    repo.registry().insert(a_bias());
    // Back to version 1: no storage and recipe columns.
    auto& c = repo.registry().connection();
    c.exec(
        "DROP TABLE center_cell; ALTER TABLE dataset DROP COLUMN storage; ALTER TABLE dataset DROP COLUMN recipe; "
        "UPDATE registry_meta SET value = '1' WHERE key = 'schema_version'");
    c.exec(kDropVersion4Columns);
  }
  auto repo = Repository::open(s.dir / "repo");
  const auto r = repo.registry().find_by_id("DR1.bias.d001");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->storage, Storage::file);
  EXPECT_TRUE(r->recipe.empty());
  auto version = repo.registry().connection().prepare("SELECT value FROM registry_meta WHERE key = 'schema_version'");
  ASSERT_TRUE(version->step());
  EXPECT_EQ(version->get_text(0), "5");
}

// Version 3 added the index of centres (center_cell): a version-2 registry
// (SQLite or PostgreSQL) gets it filled from s_ra and s_dec when opened;
// a dataset without a centre has no row.
TEST(RegistrySchema, AVersionTwoRegistryGetsItsIndexOfCentres) {
  pixserve::testing::ScratchDir s;
  const std::vector<std::pair<double, double>> centres = {{0.0, -30.0}, {359.999, 12.5}, {150.25, 89.9}};
  {
    auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
    for (std::size_t i = 0; i < centres.size(); ++i) {
      DatasetRecord r;
      r.dataset_id = "DR1.calexp.v" + std::to_string(i) + ".d001";
      r.type = DatasetType::calexp;
      r.collection = "DR1";
      r.data_id.visit = static_cast<std::int64_t>(i);
      r.data_id.detector = 1;
      r.file_path = "data/" + r.dataset_id + ".fits";
      r.checksum = "00";
      r.s_ra = centres[i].first;
      r.s_dec = centres[i].second;
      repo.registry().insert(r);
    }
    repo.registry().insert(a_bias());  // no centre
    auto& c = repo.registry().connection();
    {
      auto rows = c.prepare("SELECT count(*) FROM center_cell");
      ASSERT_TRUE(rows->step());
      EXPECT_EQ(rows->get_int(0), 3);  // written at insert
    }
    c.exec("DROP TABLE center_cell");
    c.exec(kDropVersion4Columns);
    c.exec("UPDATE registry_meta SET value = '2' WHERE key = 'schema_version'");
  }
  auto repo = Repository::open(s.dir / "repo");
  auto& c = repo.registry().connection();
  auto cells = c.prepare(
      "SELECT d.s_ra, d.s_dec, c.cell FROM center_cell AS c JOIN dataset AS d ON d.dataset_key = c.dataset_key "
      "ORDER BY d.visit");
  std::size_t n = 0;
  while (cells->step()) {
    EXPECT_EQ(cells->get_int(2), sky::cell_of({cells->get_double(0), cells->get_double(1)}, kCenterCellOrder));
    ++n;
  }
  EXPECT_EQ(n, centres.size());
  auto version = c.prepare("SELECT value FROM registry_meta WHERE key = 'schema_version'");
  ASSERT_TRUE(version->step());
  EXPECT_EQ(version->get_text(0), "5");
}

// The upgrade reads the centres a slice of 10^4 datasets at a time: a
// registry of several slices (and keys with gaps) gets every centre.
TEST(RegistrySchema, AVersionTwoRegistryOfSeveralSlicesGetsEveryCentre) {
  pixserve::testing::ScratchDir s;
  constexpr int kRows = 20'001;  // three slices, the last of one dataset
  {
    auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
    auto& c = repo.registry().connection();
    const bool pg = c.dialect() == db::Dialect::postgresql;
    // Every seventh dataset has no centre; keys go up in steps of 3.
    const std::string values =
        "SELECT 3 * i, 'DR1.calexp.n' || i, 'calexp', 'DR1', 'data/n.fits', 1, '00', 'application/fits', 2, "
        "'survey', 'public', 0, CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 0.0137) - 360 * floor(i * 0.0137 / 360) END, "
        "CASE WHEN i % 7 = 0 THEN NULL ELSE -80 + (i % 1600) * 0.1 END";
    c.exec(fmt::format(
        "{} INSERT INTO dataset (dataset_key, dataset_id, dataset_type, collection, file_path, file_size, checksum, "
        "content_type, calib_level, owner, read_policy, ingest_mjd, s_ra, s_dec) {}",
        pg ? "" : fmt::format("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})", kRows),
        pg ? values + fmt::format(" FROM generate_series(1, {}) AS i", kRows) : values + " FROM n"));
    c.exec("DROP TABLE center_cell");
    c.exec(kDropVersion4Columns);
    c.exec("UPDATE registry_meta SET value = '2' WHERE key = 'schema_version'");
  }
  auto repo = Repository::open(s.dir / "repo");
  auto& c = repo.registry().connection();
  auto count = c.prepare("SELECT count(*) FROM center_cell");
  ASSERT_TRUE(count->step());
  EXPECT_EQ(count->get_int(0), kRows - kRows / 7);
  auto sample = c.prepare(
      "SELECT d.s_ra, d.s_dec, c.cell FROM dataset AS d JOIN center_cell AS c ON c.dataset_key = d.dataset_key "
      "WHERE d.dataset_key % 97 = 0");
  std::size_t checked = 0;
  while (sample->step()) {
    EXPECT_EQ(sample->get_int(2), sky::cell_of({sample->get_double(0), sample->get_double(1)}, kCenterCellOrder));
    ++checked;
  }
  EXPECT_GT(checked, 150U);
}

// Version 4 added the coadds' provenance columns: a version-3 registry
// (SQLite or PostgreSQL) gets them, empty, when opened, and takes values.
TEST(RegistrySchema, AVersionThreeRegistryGetsTheCoaddProvenanceColumns) {
  pixserve::testing::ScratchDir s;
  const auto config = pixserve::testing::test_repository_config();
  {
    auto repo = Repository::open_or_create(s.dir / "repo", config);
    repo.registry().insert(a_bias());
    auto& c = repo.registry().connection();
    c.exec(kDropVersion4Columns);
    c.exec("UPDATE registry_meta SET value = '3' WHERE key = 'schema_version'");
  }
  auto repo = Repository::open(s.dir / "repo");
  const auto bias = repo.registry().find_by_id("DR1.bias.d001");
  ASSERT_TRUE(bias);
  EXPECT_FALSE(bias->n_inputs);
  EXPECT_FALSE(bias->coverage_fraction);
  EXPECT_FALSE(bias->depth_5sigma);
  repo.registry().insert(a_coadd_patch());
  const auto coadd = repo.registry().find_by_id("DR1.deepCoadd.r.t0.p1_2");
  ASSERT_TRUE(coadd);
  EXPECT_EQ(coadd->n_inputs, 17);
  EXPECT_EQ(coadd->coverage_fraction, 0.625);
  EXPECT_EQ(coadd->depth_5sigma, 25.375);
  auto version = repo.registry().connection().prepare("SELECT value FROM registry_meta WHERE key = 'schema_version'");
  ASSERT_TRUE(version->step());
  EXPECT_EQ(version->get_text(0), "5");
}

TEST(RegistrySchema, StorageAndRecipeAreStoredAndReadBack) {
  pixserve::testing::ScratchDir s;
  auto repo = Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config());
  DatasetRecord r;
  r.dataset_id = "DR1.calexp.v1.d004";
  r.type = DatasetType::calexp;
  r.collection = "DR1";
  r.data_id.visit = 1;
  r.data_id.detector = 4;
  r.storage = Storage::virtual_;
  r.recipe = a_recipe().to_json();
  r.checksum = recipe_hash(r.recipe);
  repo.registry().insert(r);
  const auto back = repo.registry().find_by_id(r.dataset_id);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->storage, Storage::virtual_);
  EXPECT_EQ(back->recipe, r.recipe);
  EXPECT_TRUE(back->file_path.empty());
  EXPECT_EQ(storage_from_string("virtual"), Storage::virtual_);
  EXPECT_EQ(storage_from_string("tape"), std::nullopt);
}

}  // namespace
}  // namespace pixserve::repo
