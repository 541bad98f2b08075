// Files of virtual datasets, re-created on request from their recipes
// (repo/recipe.hpp) and kept in a cache under the repository.
//
// The cache is content-addressed: a product's file is named by its recipe's
// hash, so a changed recipe can never be answered with an old file. A file
// is written under a temporary name and renamed into place, so a crash (even
// kill -9) leaves no entry that could be served; leftovers of such a crash
// are removed when the cache is opened. Concurrent requests for one product
// compute it once: the first caller re-creates it while the others wait for
// that file. Beyond its size limit the least recently used files are
// removed (a hit marks a file used); a file being sent when it is removed
// stays readable through the open descriptor (POSIX unlink), so eviction
// never cuts a download short.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "repo/dataset.hpp"
#include "products/settings.hpp"
#include "repo/recipe.hpp"

namespace pixserve::products {

// A product cannot be re-created: an input is missing, changed since the
// recipe was written, or unreadable, or the recipe is not one this build can
// follow. The message names the product and the input.
class RecreationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the cache finds a recipe's inputs: the registered record of a dataset
// ID (nullopt when there is none) and the file of a record.
struct InputResolver {
  std::function<std::optional<repo::DatasetRecord>(const std::string& dataset_id)> find;
  std::function<std::filesystem::path(const repo::DatasetRecord&)> file_of;
};

struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t recreated = 0;
};

struct CacheUsage {
  std::uint64_t files = 0;
  std::uint64_t bytes = 0;
};

class ProductCache {
 public:
  // Files live under dir (created when the first one is written), at most
  // max_bytes of them.
  ProductCache(std::filesystem::path dir, std::uint64_t max_bytes);
  ProductCache(const ProductCache&) = delete;
  ProductCache& operator=(const ProductCache&) = delete;

  // The file of a virtual dataset, re-created first when the cache lacks it.
  // Throws RecreationError.
  std::filesystem::path file_for(const repo::DatasetRecord& record, const InputResolver& inputs);

  // True when the file of this virtual dataset is in the cache now.
  bool contains(const repo::DatasetRecord& record) const;
  CacheStats stats() const;
  CacheUsage usage() const;
  // Removes the least recently used files until at most max_bytes remain;
  // returns what was removed.
  CacheUsage prune(std::uint64_t max_bytes);
  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::uint64_t max_bytes() const noexcept { return max_bytes_; }

 private:
  std::filesystem::path entry_path(const std::string& recipe_hash) const;

  std::filesystem::path dir_;
  std::uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::set<std::string> in_progress_;  // recipe hashes being re-created
  CacheStats stats_;
  std::uint64_t next_temporary_ = 0;
  // Bytes in the cache as this process knows them: counted when it opens,
  // added to by each re-creation, recounted by prune(). A re-creation
  // prunes only when this passes the limit, rather than walking the whole
  // cache each time; files another process adds meanwhile are counted at the
  // next prune.
  std::uint64_t known_bytes_ = 0;
};

// Re-creates the product of a recipe into `path` (calexp: ISR of the raw
// with the bias and flat, by image::make_calexp). Inputs are checked against
// the recipe's checksums first. Throws RecreationError.
void recreate(const repo::DatasetRecord& record, const repo::Recipe& recipe, const InputResolver& inputs,
              const std::filesystem::path& path);

}  // namespace pixserve::products
