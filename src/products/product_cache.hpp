// Files of virtual datasets, re-created on request from their recipes
// (repo/recipe.hpp) and kept in a cache under the repository.
//
// The cache is content-addressed: a product's file is named by its recipe's
// hash, so a changed recipe can never be answered with an old file. A file
// is written under a temporary name and renamed into place, so a crash (even
// kill -9) leaves no entry that could be served; leftovers of such a crash
// are removed when the cache is opened (those of a process that still runs,
// e.g. a server while `pixserve materialize` opens the same cache, are not). Concurrent requests for one product
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
#include <string_view>

#include "repo/dataset.hpp"
#include "products/settings.hpp"
#include "repo/recipe.hpp"
#include "products/recreate.hpp"

namespace pixserve::products {

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

  // The measurements kept of this virtual dataset's last re-creation
  // (products/recreate.hpp), or nullopt.
  std::optional<nlohmann::json> measurements(const repo::DatasetRecord& record) const;
  InputChecksums& checksums() noexcept { return checksums_; }

  // Files whose names hold this marker are unfinished (a temporary name
  // before the rename, a part's scratch header): the cache removes them when
  // it opens and never serves them.
  static constexpr std::string_view kTemporaryMarker = ".partial-";
  // A name no other writer uses, in any process on any host sharing the
  // cache: <stem>.partial-<pid>-<serial>-<host><extension>. Opening the
  // cache removes those of processes of this host that are gone, and those
  // of other hosts a day old (a process elsewhere cannot be asked).
  std::string temporary_name(std::string_view stem, std::string_view extension = {});

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
  std::filesystem::path measurements_path(const std::string& recipe_hash) const;
  void keep_measurements(const std::string& recipe_hash, const nlohmann::json& measurements);

  std::filesystem::path dir_;
  std::uint64_t max_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable finished_;
  std::set<std::string> in_progress_;  // recipe hashes being re-created
  CacheStats stats_;
  std::uint64_t next_temporary_ = 0;
  std::string host_tag_;  // this host in temporary names
  // Bytes in the cache as this process knows them: counted when it opens,
  // added to by each re-creation, recounted by prune(). A re-creation
  // prunes only when this passes the limit, rather than walking the whole
  // cache each time; files another process adds meanwhile are counted at the
  // next prune.
  std::uint64_t known_bytes_ = 0;
  InputChecksums checksums_;
};

}  // namespace pixserve::products
