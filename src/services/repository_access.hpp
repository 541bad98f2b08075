// The repository as the request handlers share it.
//
// repo::Registry wraps one database connection and is not thread-safe, while
// handlers run on many worker threads at once. SharedRepository keeps one
// Repository and serialises registry access with a mutex, held only for the
// duration of a registry call (a query returns its records, and the response
// is then written without the lock). One repository per worker thread was
// the alternative: it would multiply SQLite connections and their page
// caches by the worker count (64 by default on 16 cores) for registry calls
// that take milliseconds; the mutex keeps one connection and one cache and
// costs nothing measurable at these query times. A connection pool is the
// path when PostgreSQL arrives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/identity.hpp"
#include "dali/service.hpp"
#include "products/parts.hpp"
#include "products/product_cache.hpp"
#include "repo/repository.hpp"

namespace pixserve::services {

class SharedRepository {
 public:
  explicit SharedRepository(repo::Repository repository, const products::ProductCacheSettings& products = {});
  SharedRepository(const SharedRepository&) = delete;
  SharedRepository& operator=(const SharedRepository&) = delete;

  // Runs fn(repo::Repository&) with the registry lock held and returns its
  // result. Keep fn short: every other request waits for it.
  template <typename F>
  decltype(auto) with(F&& fn) {
    std::lock_guard lock(mutex_);
    return std::forward<F>(fn)(repository_);
  }

  // Immutable after opening: no lock needed.
  const std::filesystem::path& root() const noexcept { return repository_.root(); }
  const repo::RepositoryConfig& config() const noexcept { return repository_.config(); }
  repo::RegistryDatabase registry_database() const { return repository_.registry_database(); }
  std::string publisher_did(std::string_view dataset_id) const { return repository_.publisher_did(dataset_id); }
  std::optional<std::string> dataset_id_from(std::string_view did_or_id) const {
    return repository_.dataset_id_from(did_or_id);
  }

  // The one place where what a caller may see is decided: every service
  // finds datasets through these, which apply auth::may_read's SQL twin
  // inside the registry query (before its limit). The overloads without an
  // identity are the anonymous caller: public datasets whose embargo has
  // ended.
  std::vector<repo::DatasetRecord> find_visible(repo::DatasetQuery query);
  std::vector<repo::DatasetRecord> find_visible(repo::DatasetQuery query, const auth::Identity& caller);
  // One visible dataset with its provenance inputs; nullopt when unknown or
  // invisible (the two must look the same to the caller).
  std::optional<repo::DatasetRecord> find_visible_by_id(const std::string& dataset_id);
  std::optional<repo::DatasetRecord> find_visible_by_id(const std::string& dataset_id, const auth::Identity& caller);
  // Its file on disk (checked to stay inside the repository). For a virtual
  // dataset, the re-created file in the product cache, made first when the
  // cache lacks it (products::RecreationError when it cannot be made): the
  // caller has already decided, through find_visible*, that the dataset may
  // be read, so everything that serves pixels gets them through here.
  std::filesystem::path file_of(const repo::DatasetRecord& record);
  products::CacheStats product_cache_stats() const { return products_.stats(); }
  products::CacheUsage product_cache_usage() const { return products_.usage(); }
  products::CacheUsage prune_product_cache(std::uint64_t max_bytes) { return products_.prune(max_bytes); }
  const std::filesystem::path& product_cache_dir() const noexcept { return products_.dir(); }
  std::uint64_t product_cache_max_bytes() const noexcept { return products_.max_bytes(); }
  // A stored dataset, or a virtual one whose file is cached: reading it
  // costs no re-creation.
  bool has_file_now(const repo::DatasetRecord& record) const {
    return record.storage == repo::Storage::file || products_.contains(record);
  }
  // The part source of a virtual product that is not cached but whose
  // measurements are kept (products/parts.hpp), nullopt otherwise; a
  // dali::ServerFault when an input is missing or changed. Like file_of, for
  // a record the caller has found visible.
  std::optional<products::ProductPart> part_of(const repo::DatasetRecord& record);
  // What the last re-creation of a virtual product measured (recreate.hpp).
  std::optional<nlohmann::json> product_measurements(const repo::DatasetRecord& record) const {
    return products_.measurements(record);
  }
  // A virtual product, not cached, whose parts can be computed now.
  bool has_part_now(const repo::DatasetRecord& record) const {
    return record.storage == repo::Storage::virtual_ && products_.measurements(record).has_value();
  }
  std::size_t sync_max_recreations() const noexcept { return sync_max_recreations_; }
  // The records of the inputs of virtual products, for re-creation (no
  // rights check: see file_of).
  products::InputResolver product_inputs();

 private:
  std::mutex mutex_;
  repo::Repository repository_;
  products::ProductCache products_;
  std::size_t sync_max_recreations_;
};

// Runs fn, turning a products::RecreationError (a virtual product whose
// inputs are missing, changed or unreadable) into the server fault a client
// sees: HTTP 500 with the message naming the input.
template <typename F>
decltype(auto) recreation_faults_to_server(F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const products::RecreationError& e) {
    throw dali::ServerFault(e.what());
  }
}

// The real checks behind VOSI availability of services that read the
// repository: the registry database answers a trivial query, the repository
// directory is readable, and the file system holding it has at least
// min_free_bytes available.
std::vector<dali::AvailabilityCheck> repository_checks(std::shared_ptr<SharedRepository> repository,
                                                       std::uint64_t min_free_bytes);

// A dataset every caller may read, for the example queries of services that
// take an ID (Service::live_examples): the first public calexp; nullopt
// when there is none.
std::optional<repo::DatasetRecord> example_dataset(SharedRepository& repository);

// The individual checks (exposed for tests).
dali::CheckResult check_registry(SharedRepository& repository);
dali::CheckResult check_readable(const std::filesystem::path& root);
dali::CheckResult check_free_space(const std::filesystem::path& root, std::uint64_t min_free_bytes);

}  // namespace pixserve::services
