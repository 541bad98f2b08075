// Virtual difference images at ingest: which raws get one (a template patch
// of their band, made without their visit, overlapping them), what their
// recipe and provenance hold; and the rights of virtual products following
// their raw's later changes.
#include <gtest/gtest.h>

#include "repo/recipe.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

sky::Polygon square_at(double ra, double dec, double half) {
  return sky::Polygon({{ra - half, dec - half}, {ra + half, dec - half}, {ra + half, dec + half}, {ra - half, dec + half}});
}

DatasetRecord raw_record(std::int64_t visit, const std::string& band, double ra) {
  DatasetRecord r;
  r.type = DatasetType::raw;
  r.collection = "DR1";
  r.data_id.visit = visit;
  r.data_id.detector = 4;
  r.data_id.band = band;
  r.dataset_id = make_dataset_id(r.collection, r.type, r.data_id);
  r.checksum = std::string(64, 'a');
  r.footprint = square_at(ra, -28.0, 0.02);
  r.width = r.height = 512;
  return r;
}

TemplatePatch template_at(const std::string& id, const std::string& band, double ra, std::set<std::int64_t> visits) {
  return {id, std::string(64, 'b'), band, square_at(ra, -28.0, 0.1), std::move(visits), "pixserve-tract", 0};
}

struct DiffimFixture {
  pixserve::testing::ScratchDir scratch;
  Repository repo = Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config());
  std::map<std::string, KnownDataset> known;

  // The raw's calexp is known (stored or virtual, this run).
  void know_calexp(const DatasetRecord& raw) {
    known[make_dataset_id(raw.collection, DatasetType::calexp, raw.data_id)] = {std::string(64, 'c')};
  }
};

TEST(VirtualDiffim, OnlyTemplatesOfItsBandMadeWithoutItsVisitAndOverlappingIt) {
  DiffimFixture f;
  const auto raw = raw_record(7, "r", 53.0);
  f.know_calexp(raw);
  const std::vector<TemplatePatch> templates{
      template_at("DR1.goodSeeingCoadd.r.t0.p1_1", "r", 53.0, {1, 2}),
      template_at("DR1.goodSeeingCoadd.r.t0.p1_2", "r", 53.05, {7, 8}),  // made with this visit
      template_at("DR1.goodSeeingCoadd.g.t0.p1_1", "g", 53.0, {1, 2}),   // another band
      template_at("DR1.goodSeeingCoadd.r.t0.p9_9", "r", 60.0, {1, 2}),   // elsewhere
  };
  const auto diffim = virtual_diffim_of(raw, f.known, templates, f.repo.registry());
  ASSERT_TRUE(diffim);
  EXPECT_EQ(diffim->dataset_id, "DR1.diffim.v7.d004");
  EXPECT_EQ(diffim->type, DatasetType::diffim);
  EXPECT_EQ(diffim->storage, Storage::virtual_);
  EXPECT_EQ(diffim->checksum, recipe_hash(diffim->recipe));
  const auto recipe = Recipe::from_json(diffim->recipe);
  EXPECT_EQ(recipe.product, "diffim");
  EXPECT_EQ(recipe.algorithm_version, image::kDiffimVersion);
  ASSERT_EQ(recipe.inputs.size(), 2U);
  EXPECT_EQ(recipe.inputs[0].role, "calexp");
  EXPECT_EQ(recipe.inputs[0].dataset_id, "DR1.calexp.v7.d004");
  EXPECT_EQ(recipe.inputs[1].dataset_id, "DR1.goodSeeingCoadd.r.t0.p1_1");
  // The parameters read back to what wrote them.
  const auto parameters = diffim_parameters_from_json(recipe.parameters, recipe.software_version);
  EXPECT_EQ(diffim_parameters_to_json(parameters), recipe.parameters);
  std::vector<std::string> roles;
  for (const auto& link : diffim->inputs) roles.push_back(link.role);
  EXPECT_EQ(roles, (std::vector<std::string>{"calexp", "template", "raw"}));  // bias and flat unknown here
  EXPECT_EQ(diffim->rights.policy, raw.rights.policy);
}

TEST(VirtualDiffim, NoneWithoutACalexpOrAUsableTemplate) {
  DiffimFixture f;
  const auto raw = raw_record(7, "r", 53.0);
  const std::vector<TemplatePatch> own_visit{template_at("DR1.goodSeeingCoadd.r.t0.p1_1", "r", 53.0, {7})};
  EXPECT_FALSE(virtual_diffim_of(raw, f.known, own_visit, f.repo.registry()));  // no calexp either
  f.know_calexp(raw);
  EXPECT_FALSE(virtual_diffim_of(raw, f.known, own_visit, f.repo.registry()));
  EXPECT_FALSE(virtual_diffim_of(raw, f.known, {}, f.repo.registry()));
  // Already known: not made twice.
  f.known["DR1.diffim.v7.d004"] = {std::string(64, 'd')};
  const std::vector<TemplatePatch> usable{template_at("DR1.goodSeeingCoadd.r.t0.p1_1", "r", 53.0, {1})};
  EXPECT_FALSE(virtual_diffim_of(raw, f.known, usable, f.repo.registry()));
}

TEST(VirtualDiffim, TemplatesComeFromOneTract) {
  DiffimFixture f;
  auto raw = raw_record(7, "r", 53.0);
  raw.s_ra = 53.0;
  raw.s_dec = -28.0;
  f.know_calexp(raw);
  // Tract 5 has more patches over the raw, tract 9 one holding its centre.
  // (The raw spans RA 52.98..53.02; patches are 0.2 deg wide.)
  auto a = template_at("DR1.goodSeeingCoadd.r.t5.p0_0", "r", 52.89, {1});
  auto b = template_at("DR1.goodSeeingCoadd.r.t5.p0_1", "r", 52.885, {1});
  auto c = template_at("DR1.goodSeeingCoadd.r.t9.p3_3", "r", 53.0, {1});
  a.tract = b.tract = 5;
  c.tract = 9;
  const auto diffim = virtual_diffim_of(raw, f.known, std::vector<TemplatePatch>{a, b, c}, f.repo.registry());
  ASSERT_TRUE(diffim);
  const auto recipe = Recipe::from_json(diffim->recipe);
  ASSERT_EQ(recipe.inputs.size(), 2U);
  EXPECT_EQ(recipe.inputs[1].dataset_id, "DR1.goodSeeingCoadd.r.t9.p3_3");
  // Without a patch on the centre: the tract with most patches.
  c.footprint = square_at(53.105, -28.0, 0.1);
  const auto other = virtual_diffim_of(raw, f.known, std::vector<TemplatePatch>{a, b, c}, f.repo.registry());
  ASSERT_TRUE(other);
  EXPECT_EQ(Recipe::from_json(other->recipe).inputs.size(), 3U);
}

TEST(VirtualDiffim, MalformedParametersAreRefused) {
  auto j = diffim_parameters_to_json({});
  j["warp"] = "bicubic";
  EXPECT_THROW(diffim_parameters_from_json(j, "v"), std::invalid_argument);
  j = diffim_parameters_to_json({});
  j.erase("stars");
  EXPECT_THROW(diffim_parameters_from_json(j, "v"), std::invalid_argument);
  j = diffim_parameters_to_json({});
  j["spatial_order"] = 7;
  EXPECT_THROW(diffim_parameters_from_json(j, "v"), std::invalid_argument);
}

TEST(VirtualProductRights, FollowTheirRawsLaterChanges) {
  DiffimFixture f;
  auto& registry = f.repo.registry();
  auto raw = raw_record(7, "r", 53.0);
  raw.file_path = "raw.fits";
  registry.insert(raw);
  auto other_raw = raw_record(8, "r", 53.0);
  other_raw.file_path = "raw8.fits";
  registry.insert(other_raw);
  // Its virtual calexp and difference image; a stored coadd made from it too.
  DatasetRecord calexp = raw;
  calexp.type = DatasetType::calexp;
  calexp.dataset_id = "DR1.calexp.v7.d004";
  calexp.storage = Storage::virtual_;
  calexp.recipe = "{}";
  calexp.inputs = {{raw.dataset_id, "raw"}};
  registry.insert(calexp);
  DatasetRecord diffim = calexp;
  diffim.type = DatasetType::diffim;
  diffim.dataset_id = "DR1.diffim.v7.d004";
  diffim.inputs = {{calexp.dataset_id, "calexp"}, {raw.dataset_id, "raw"}};
  registry.insert(diffim);
  DatasetRecord other_calexp = calexp;
  other_calexp.dataset_id = "DR1.calexp.v8.d004";
  other_calexp.inputs = {{other_raw.dataset_id, "raw"}};
  registry.insert(other_calexp);

  Rights restricted;
  restricted.policy = ReadPolicy::groups;
  restricted.groups = {"team"};
  restricted.release_mjd = 62000.0;
  EXPECT_EQ(set_rights_with_products(registry, raw, restricted), 2U);
  for (const char* id : {"DR1.raw.v7.d004", "DR1.calexp.v7.d004", "DR1.diffim.v7.d004"}) {
    const auto r = registry.find_by_id(id);
    ASSERT_TRUE(r) << id;
    EXPECT_EQ(r->rights.policy, ReadPolicy::groups) << id;
    EXPECT_EQ(r->rights.groups, std::vector<std::string>{"team"}) << id;
    EXPECT_EQ(r->rights.release_mjd, 62000.0) << id;
  }
  EXPECT_EQ(registry.find_by_id("DR1.calexp.v8.d004")->rights.policy, ReadPolicy::public_);
  EXPECT_THROW(set_rights_with_products(registry, diffim, restricted), std::invalid_argument);
}

}  // namespace
}  // namespace pixserve::repo
