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
// costs nothing measurable at these query times.
//
// A PostgreSQL registry may have hot standbys (RegistrySettings): reads that
// may lag a little (ReadFrom::standby, every service's searches and
// lookups) go to one of them in turn, each standby with a read-only
// Registry and a mutex of its own, so they also run in parallel; writes and
// reads of what was just written stay on the primary.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "auth/identity.hpp"
#include "dali/errors.hpp"
#include "dali/service.hpp"
#include "db/database.hpp"
#include "db/standbys.hpp"
#include "products/parts.hpp"
#include "products/product_cache.hpp"
#include "repo/repository.hpp"
#include "services/settings.hpp"

namespace pixserve::services {

// Where a read of the registry may be served.
enum class ReadFrom {
  // A hot standby whose replay lag is within the bound, when one qualifies,
  // else the primary: what every caller may see a few seconds late.
  standby,
  // The primary: what was just written (by this server or another) is there.
  primary,
};

class SharedRepository {
 public:
  // Throws settings::ConfigError for standbys of a registry that is not on
  // PostgreSQL.
  explicit SharedRepository(repo::Repository repository, const products::ProductCacheSettings& products = {},
                            const RegistrySettings& registry = {});
  SharedRepository(const SharedRepository&) = delete;
  SharedRepository& operator=(const SharedRepository&) = delete;

  // Runs fn(repo::Repository&) on the primary with the registry lock held
  // and returns its result: writes, and reads of what was just written.
  // Keep fn short: every other request waits for it.
  template <typename F>
  decltype(auto) with(F&& fn) {
    std::lock_guard lock(mutex_);
    return std::forward<F>(fn)(repository_);
  }

  // Runs fn(repo::Registry&) on a standby that qualifies (in turn), else on
  // the primary (in one of its read sessions, registry.read_sessions, when
  // it is PostgreSQL: searches run side by side), and returns its result.
  // A standby that turns out to be gone (db::Unavailable) is set aside and
  // fn runs again on the next one, then on the primary, so no reader sees a
  // standby go: fn must only read.
  // On PostgreSQL the database stops each statement of fn after
  // registry.read_time_limit_s, and fn cannot write (on the primary it runs
  // in a read-only transaction; a standby's session is read-only): a
  // search that runs past the limit is the caller's error
  // (dali::UsageError, HTTP 400), and no request holds the registry (and
  // its lock) for longer.
  template <typename F>
  decltype(auto) read(F&& fn) {
    try {
      if (standbys_) {
        for (const std::size_t i : standbys_->for_read()) {
          ReadRegistry& standby = *standby_registries_[i];
          std::lock_guard lock(standby.mutex);
          try {
            return fn(open_standby(i));  // a read-only session with the limit as its statement_timeout
          } catch (const db::Unavailable& e) {
            standby_failed(i, e);
          }
        }
      }
      if (!primary_readers_.empty()) {
        auto [reader, lock] = free_primary_reader();
        return fn(open_primary_reader(reader));  // a read-only session with the limit as its statement_timeout
      }
      return with([&](repo::Repository& r) -> decltype(auto) {
        const db::BoundedRead bounded(r.registry().connection(), read_time_limit_);
        return fn(r.registry());
      });
    } catch (const db::TimedOut&) {
      throw read_timed_out();
    }
  }

  // The standbys reads go to; null when none are configured.
  std::shared_ptr<db::Standbys> standbys() const noexcept { return standbys_; }

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
  std::vector<repo::DatasetRecord> find_visible(repo::DatasetQuery query, const auth::Identity& caller,
                                                ReadFrom from = ReadFrom::standby);
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
  // A read-only registry session (on a standby, or a read session on the
  // primary), used by one reader at a time.
  struct ReadRegistry {
    std::mutex mutex;
    std::unique_ptr<repo::Registry> registry{};
  };
  // The first read session of the primary that no one uses, else the next
  // one in turn once it is free; with its lock.
  std::pair<std::size_t, std::unique_lock<std::mutex>> free_primary_reader();
  // With its lock held; throws db::Unavailable when the primary is away.
  repo::Registry& open_primary_reader(std::size_t reader);
  // With the standby's lock held; throws db::Unavailable when it cannot be
  // opened (a standby without the registry counts as one that is away).
  repo::Registry& open_standby(std::size_t standby);
  void standby_failed(std::size_t standby, const db::Unavailable& error);
  // The error of a search stopped by read_time_limit_.
  dali::UsageError read_timed_out() const;

  std::mutex mutex_;
  repo::Repository repository_;
  products::ProductCache products_;
  std::size_t sync_max_recreations_;
  std::shared_ptr<db::Standbys> standbys_;
  std::vector<std::unique_ptr<ReadRegistry>> standby_registries_;
  std::vector<std::unique_ptr<ReadRegistry>> primary_readers_;  // empty: reads use the writer's session
  std::atomic<std::size_t> next_primary_reader_{0};
  std::chrono::milliseconds read_time_limit_;
};

// The datasets of a search that a caller may see, read a chunk of records
// at a time: for a result streamed to a client (SIA), whose memory must not
// grow with MAXREC.
//
// Why chunks and not one statement streamed to the end: the registry is one
// connection behind SharedRepository's lock (a standby's too), and the rows
// go out as fast as the client reads them. Holding the lock for the whole
// stream would let one slow client stop every other search, ingest and job
// of the server; a connection of each stream's own would be a second pool
// beside TAP's, for searches whose records are read in milliseconds. So the
// first pass (the keys of the matching datasets, in order, up to the limit:
// 8 bytes each) runs at once, and the records are then read a chunk of keys
// at a time, each chunk with the lock held for its read only; the caller
// writes them without it. Each chunk applies the search's conditions
// (rights included) again, so a dataset removed or hidden in between is left
// out, as between find()'s own two passes.
class VisibleDatasets {
 public:
  // Records read per chunk: the first chunk's, doubling for each chunk up
  // to the last; what the stream holds at a time. A small first chunk
  // starts the response soon; growing ones read a large result in a few
  // statements (each costs a round trip, its planning and a registry
  // session: 22 chunks of 256 for a 0.1° cone's 5,500 rows, 5 now).
  static constexpr std::size_t kFirstChunk = 256;
  static constexpr std::size_t kLastChunk = 2048;

  // Runs the first pass now (ReadFrom::standby), so that a failure comes
  // out of here, before the response has begun.
  VisibleDatasets(std::shared_ptr<SharedRepository> repository, repo::DatasetQuery query, const auth::Identity& caller);

  // Calls visit for each record, in find()'s order, until it returns false.
  // Throws db::Unavailable when no server can read a chunk.
  void for_each(const repo::Registry::RecordVisitor& visit);

  std::size_t size() const noexcept { return keys_.size(); }  // datasets found by the first pass

 private:
  std::shared_ptr<SharedRepository> repository_;
  repo::DatasetQuery query_;  // with the caller's access filter
  std::vector<std::int64_t> keys_;
  // The first chunk's records, read with the first pass: a registry lost
  // before them is the usual error answer (503), not a response that has
  // begun and ends without rows. (Lost later, the stream ends with its
  // error after the rows written.)
  std::vector<repo::DatasetRecord> first_;
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

// Runs fn, turning a database that cannot be reached (db::Unavailable: a
// restart, the network) into the 503 a client sees
// (dali::database_unavailable()). Requests get that answer from
// dali::current_error_response anyway; job functions need it as a DALI
// error, which the job framework records (a transient error of the job).
template <typename F>
decltype(auto) database_outages_to_unavailable(F&& fn) {
  try {
    return std::forward<F>(fn)();
  } catch (const db::Unavailable& e) {
    spdlog::warn("{}", e.what());
    throw dali::database_unavailable();
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
// Always ok (reads go to the primary while no standby serves): the note says
// which standbys serve reads and why the others do not.
dali::CheckResult check_standbys(const db::Standbys& standbys);
dali::CheckResult check_free_space(const std::filesystem::path& root, std::uint64_t min_free_bytes);

}  // namespace pixserve::services
