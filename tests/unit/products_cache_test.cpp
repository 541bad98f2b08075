// The product cache's refusals and its recovery from a crash: an input that
// is missing or changed since the recipe was written is named in the error
// and leaves no entry; partial files of a dead process are removed when the
// cache is opened. (Re-creation itself is checked byte for byte against the
// simulator's files in sim_survey_test and over HTTP in the protocol tests.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include <fmt/format.h>

#include "image/isr.hpp"
#include "products/product_cache.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;

namespace pixserve::products {
namespace {

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

struct Fixture {
  pixserve::testing::ScratchDir scratch;
  std::map<std::string, repo::DatasetRecord> registered;
  repo::DatasetRecord product;

  Fixture() {
    repo::Recipe recipe;
    recipe.product = "calexp";
    recipe.software_version = "pixserve-test";
    recipe.algorithm_version = std::string(image::kIsrVersion);
    recipe.parameters = repo::calexp_parameters_to_json({});
    for (const char* role : {"raw", "bias", "flat"}) {
      repo::DatasetRecord input;
      input.dataset_id = std::string("DR1.") + role;
      input.file_path = std::string(role) + ".fits";
      write_text(scratch.dir / input.file_path, role);
      input.checksum = repo::sha256_file(scratch.dir / input.file_path);
      registered[input.dataset_id] = input;
      recipe.inputs.push_back({role, input.dataset_id, input.checksum});
    }
    product.dataset_id = "DR1.calexp.v1.d001";
    product.type = repo::DatasetType::calexp;
    product.storage = repo::Storage::virtual_;
    product.recipe = recipe.to_json();
    product.checksum = repo::recipe_hash(product.recipe);
  }

  InputResolver resolver() {
    return {[this](const std::string& id) -> std::optional<repo::DatasetRecord> {
              const auto it = registered.find(id);
              if (it == registered.end()) return std::nullopt;
              return it->second;
            },
            [this](const repo::DatasetRecord& r) { return scratch.dir / r.file_path; }};
  }

  std::string error_of(ProductCache& cache) {
    try {
      cache.file_for(product, resolver());
    } catch (const RecreationError& e) {
      return e.what();
    }
    return "no error";
  }
};

bool has_files(const fs::path& dir) {
  if (!fs::exists(dir)) return false;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) return true;
  }
  return false;
}

TEST(ProductCache, AChangedInputIsNamedAndNothingIsCached) {
  Fixture f;
  ProductCache cache(f.scratch.dir / "cache", std::uint64_t{1} << 30);
  write_text(f.scratch.dir / "flat.fits", "a different flat");
  const std::string error = f.error_of(cache);
  EXPECT_NE(error.find("DR1.calexp.v1.d001"), std::string::npos) << error;
  EXPECT_NE(error.find("flat input DR1.flat no longer matches the recipe"), std::string::npos) << error;
  EXPECT_FALSE(has_files(f.scratch.dir / "cache"));
  EXPECT_EQ(cache.stats().recreated, 0U);
}

TEST(ProductCache, AMissingInputIsNamed) {
  Fixture f;
  f.registered.erase("DR1.bias");
  ProductCache cache(f.scratch.dir / "cache", std::uint64_t{1} << 30);
  EXPECT_NE(f.error_of(cache).find("its bias input DR1.bias is not registered"), std::string::npos);
}

TEST(ProductCache, AnUnreadableRawFailsWithoutPathsOrPartialFiles) {
  Fixture f;  // the inputs match their checksums but are not FITS files
  ProductCache cache(f.scratch.dir / "cache", std::uint64_t{1} << 30);
  const std::string error = f.error_of(cache);
  EXPECT_NE(error.find("re-creation from its raw DR1.raw failed"), std::string::npos) << error;
  EXPECT_EQ(error.find(f.scratch.dir.string()), std::string::npos) << error;
  EXPECT_FALSE(has_files(f.scratch.dir / "cache"));
}

TEST(ProductCache, RecipesItCannotFollowAreRefused) {
  Fixture f;
  ProductCache cache(f.scratch.dir / "cache", std::uint64_t{1} << 30);
  auto recipe = repo::Recipe::from_json(f.product.recipe);
  recipe.algorithm_version = "pixserve-isr-0.9";
  f.product.recipe = recipe.to_json();
  EXPECT_NE(f.error_of(cache).find("needs ISR pixserve-isr-0.9"), std::string::npos);
  f.product.recipe = "{not json";
  EXPECT_NE(f.error_of(cache).find("malformed recipe"), std::string::npos);
  f.product.storage = repo::Storage::file;
  EXPECT_NE(f.error_of(cache).find("is not a virtual dataset"), std::string::npos);
}

TEST(ProductCache, PartialFilesOfACrashedWriterAreRemovedOnOpen) {
  Fixture f;
  const fs::path dir = f.scratch.dir / "cache";
  const std::string hash = f.product.checksum;
  // 99999999 is above any pid_max: that writer is gone.
  const fs::path dead = dir / hash.substr(0, 2) / (hash + ".partial-99999999-0");
  write_text(dead, "half a file");
  write_text(dir / "parts" / (hash + ".partial-99999999-3.fits"), "a part's header frame");
  // A running process's (this test's parent) temporary files are being written: kept.
  const fs::path live = dir / hash.substr(0, 2) / fmt::format("{}.partial-{}-0", hash, ::getppid());
  write_text(live, "being written");
  write_text(dir / "ab" / "kept.fits", "a finished entry");
  ProductCache cache(dir, std::uint64_t{1} << 30);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(dir / "parts" / (hash + ".partial-99999999-3.fits")));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(dir / "ab" / "kept.fits"));
}

TEST(ProductCache, TemporaryFilesOfAnotherHostAreLeftUnlessADayOld) {
  // Replicas on several hosts share the cache: a pid from elsewhere says
  // nothing about whether its writer runs.
  Fixture f;
  const fs::path dir = f.scratch.dir / "cache";
  const std::string hash = f.product.checksum;
  const fs::path fresh = dir / hash.substr(0, 2) / (hash + ".partial-99999999-0-otherhost7");
  const fs::path stale = dir / hash.substr(0, 2) / (hash + ".partial-99999999-1-otherhost7");
  const fs::path fresh_part = dir / "parts" / (hash + ".partial-99999999-2-otherhost7.fits");
  for (const auto& p : {fresh, stale, fresh_part}) write_text(p, "being written elsewhere");
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(25));
  ProductCache cache(dir, std::uint64_t{1} << 30);
  EXPECT_TRUE(fs::exists(fresh));
  EXPECT_TRUE(fs::exists(fresh_part));
  EXPECT_FALSE(fs::exists(stale));
  // This process's own names say which host wrote them, and differ.
  const std::string a = cache.temporary_name(hash), b = cache.temporary_name(hash, ".fits");
  EXPECT_NE(a, b.substr(0, b.size() - 5));
  EXPECT_TRUE(a.starts_with(hash + ".partial-" + std::to_string(::getpid()) + "-"));
  EXPECT_TRUE(b.ends_with(".fits"));
  // A dead local writer's name in the new form goes on the next open.
  const fs::path dead_here = dir / hash.substr(0, 2) / (hash + ".partial-99999999-5" + a.substr(a.rfind('-')));
  write_text(dead_here, "half a file");
  ProductCache reopened(dir, std::uint64_t{1} << 30);
  EXPECT_FALSE(fs::exists(dead_here));
}

TEST(ProductCache, PruneRemovesTheLeastRecentlyUsedFilesFirst) {
  pixserve::testing::ScratchDir s;
  const fs::path dir = s.dir / "cache";
  const auto now = fs::file_time_type::clock::now();
  for (int i = 0; i < 4; ++i) {
    const fs::path p = dir / "0" / fmt::format("{}.fits", i);
    write_text(p, std::string(1000, 'x'));
    fs::last_write_time(p, now - std::chrono::hours(10 - i));  // 0 is the oldest
  }
  ProductCache cache(dir, 10'000);
  EXPECT_EQ(cache.usage().files, 4U);
  EXPECT_EQ(cache.usage().bytes, 4000U);
  const auto removed = cache.prune(2500);
  EXPECT_EQ(removed.files, 2U);
  EXPECT_FALSE(fs::exists(dir / "0" / "0.fits"));
  EXPECT_FALSE(fs::exists(dir / "0" / "1.fits"));
  EXPECT_TRUE(fs::exists(dir / "0" / "3.fits"));
  EXPECT_EQ(cache.prune(2500).files, 0U);
}

}  // namespace
}  // namespace pixserve::products
