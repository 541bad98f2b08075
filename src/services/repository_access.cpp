#include "services/repository_access.hpp"

#include <unistd.h>

#include <algorithm>
#include <span>

#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "auth/policy.hpp"
#include "dali/errors.hpp"
#include "repo/astro_units.hpp"
#include "repo/coadd_mosaics.hpp"
#include "settings/settings.hpp"

namespace pixserve::services {
namespace {

std::string human_bytes(std::uint64_t bytes) {
  if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1 << 30));
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

SharedRepository::SharedRepository(repo::Repository repository, const products::ProductCacheSettings& products,
                                   const RegistrySettings& registry)
    : repository_(std::move(repository)),
      products_(products.dir.empty() ? repository_.root() / "cache" / "products" : products.dir, products.max_bytes),
      sync_max_recreations_(products.sync_max_recreations),
      read_time_limit_(registry.read_time_limit) {
  const auto database = repository_.registry_database();
  if (database.is_postgresql()) {
    for (std::size_t i = 0; i < registry.read_sessions; ++i) primary_readers_.push_back(std::make_unique<ReadRegistry>());
  }
  if (registry.standbys.empty()) return;
  if (!database.is_postgresql()) {
    throw settings::ConfigError("registry.standbys: the repository's registry is an SQLite file; standbys are "
                                "those of a PostgreSQL registry");
  }
  standbys_ = std::make_shared<db::Standbys>(db::StandbyOptions{
      .primary_url = database.postgresql_url, .standby_urls = registry.standbys, .max_lag = registry.standby_max_lag});
  for (std::size_t i = 0; i < registry.standbys.size(); ++i) {
    standby_registries_.push_back(std::make_unique<ReadRegistry>());
  }
}

repo::Registry& SharedRepository::open_standby(std::size_t standby) {
  auto& slot = standby_registries_[standby]->registry;
  if (!slot) {
    try {
      // Read-only twice over: every transaction of the session, and the
      // registry never creates or alters anything. Each statement has the
      // read limit (kept when the session reconnects).
      auto session = db::open_postgresql(standbys_->url(standby),
                                         {.read_only = true, .statement_timeout = read_time_limit_});
      slot = std::make_unique<repo::Registry>(std::move(session), repository_.config().index_order,
                                              repo::Registry::Access::read_only);
    } catch (const db::Unavailable&) {
      throw;
    } catch (const db::DbError& e) {
      throw db::Unavailable(fmt::format("standby {}: {}", standby + 1, e.what()), std::string(db::kUnavailableReason));
    }
  }
  return *slot;
}

std::pair<std::size_t, std::unique_lock<std::mutex>> SharedRepository::free_primary_reader() {
  // The first free one: a server with one search at a time keeps using one
  // session, whose backend has its caches warm (in turn, the searches of a
  // single client took ~20% longer at 10^6 rows).
  for (std::size_t i = 0; i < primary_readers_.size(); ++i) {
    std::unique_lock lock(primary_readers_[i]->mutex, std::try_to_lock);
    if (lock.owns_lock()) return {i, std::move(lock)};
  }
  const std::size_t next = next_primary_reader_.fetch_add(1, std::memory_order_relaxed) % primary_readers_.size();
  return {next, std::unique_lock(primary_readers_[next]->mutex)};
}

repo::Registry& SharedRepository::open_primary_reader(std::size_t reader) {
  auto& slot = primary_readers_[reader]->registry;
  if (!slot) {
    // As a standby's session: read-only, each statement with the read limit.
    auto session = db::open_postgresql(repository_.registry_database().postgresql_url,
                                       {.read_only = true, .statement_timeout = read_time_limit_});
    slot = std::make_unique<repo::Registry>(std::move(session), repository_.config().index_order,
                                            repo::Registry::Access::read_only);
  }
  return *slot;
}

dali::UsageError SharedRepository::read_timed_out() const {
  return dali::usage_error(fmt::format(
      "the search of the registry ran past its time limit ({} s); narrow it (a smaller region, BAND, TIME, "
      "COLLECTION or another constraint)",
      std::chrono::duration<double>(read_time_limit_).count()));
}

void SharedRepository::standby_failed(std::size_t standby, const db::Unavailable& error) {
  spdlog::warn("registry standby {}: {}; its reads go elsewhere", standby + 1, error.what());
  standbys_->failed(standby, error.reason());
}

products::InputResolver SharedRepository::product_inputs() {
  return {[this](const std::string& id) { return read([&](repo::Registry& r) { return r.find_by_id(id); }); },
          [this](const repo::DatasetRecord& input) {
            // A virtual input (the calexp of a difference image) is re-created too.
            return input.storage == repo::Storage::file ? repository_.file_of(input)
                                                        : products_.file_for(input, product_inputs());
          }};
}

std::filesystem::path SharedRepository::file_of(const repo::DatasetRecord& record) {
  if (record.storage == repo::Storage::file) return repository_.file_of(record);
  if (repo::is_coadd_mosaic(record)) {
    throw dali::UsageError(fmt::format("{} is the logical coadd of band {} across every patch and tract: it has no file "
                                       "of its own; cut a region of it with SODA (ID and POS, CIRCLE or POLYGON)",
                                       record.dataset_id, record.data_id.band));
  }
  // Inputs are found without a rights check: a product's visibility is its
  // own (the raw's), decided by the caller; its inputs are only read here.
  return recreation_faults_to_server([&] { return products_.file_for(record, product_inputs()); });
}

std::optional<products::ProductPart> SharedRepository::part_of(const repo::DatasetRecord& record) {
  if (repo::is_coadd_mosaic(record)) return std::nullopt;
  return recreation_faults_to_server([&] { return products::product_part(products_, record, product_inputs()); });
}

std::vector<repo::DatasetRecord> SharedRepository::find_visible(repo::DatasetQuery query) {
  return find_visible(std::move(query), auth::Identity{});
}

std::vector<repo::DatasetRecord> SharedRepository::find_visible(repo::DatasetQuery query, const auth::Identity& caller,
                                                               ReadFrom from) {
  const double now = repo::mjd_now();
  if (from == ReadFrom::primary) {
    return with([&](repo::Repository& r) { return auth::find_readable(r.registry(), std::move(query), caller, now); });
  }
  // A copy per attempt: the read may run again on another server.
  return read([&](repo::Registry& registry) { return auth::find_readable(registry, query, caller, now); });
}

VisibleDatasets::VisibleDatasets(std::shared_ptr<SharedRepository> repository, repo::DatasetQuery query,
                                 const auth::Identity& caller)
    : repository_(std::move(repository)) {
  const double now = repo::mjd_now();
  // Every server of one registry speaks the same dialect.
  const db::Dialect dialect =
      repository_->registry_database().is_postgresql() ? db::Dialect::postgresql : db::Dialect::sqlite;
  query_ = auth::readable_query(std::move(query), caller, now, dialect);
  keys_ = repository_->read([&](repo::Registry& registry) { return registry.find_keys(query_); });
  const auto first = std::span<const std::int64_t>(keys_).first(std::min(kFirstChunk, keys_.size()));
  repository_->read([&](repo::Registry& registry) {
    first_.clear();  // a read that failed on a standby runs again on the next server
    registry.for_each_of(query_, first, [this](repo::DatasetRecord&& r) {
      first_.push_back(std::move(r));
      return true;
    });
  });
}

void VisibleDatasets::for_each(const repo::Registry::RecordVisitor& visit) {
  for (auto& record : first_) {
    if (!visit(std::move(record))) return;
  }
  first_.clear();
  std::vector<repo::DatasetRecord> chunk;
  for (std::size_t at = kFirstChunk, size = 2 * kFirstChunk; at < keys_.size();
       at += size, size = std::min(2 * size, kLastChunk)) {
    const auto keys = std::span<const std::int64_t>(keys_).subspan(at, std::min(size, keys_.size() - at));
    chunk.clear();
    repository_->read([&](repo::Registry& registry) {
      chunk.clear();  // a read that failed on a standby runs again on the next server
      registry.for_each_of(query_, keys, [&chunk](repo::DatasetRecord&& r) {
        chunk.push_back(std::move(r));
        return true;
      });
    });
    for (auto& record : chunk) {
      if (!visit(std::move(record))) return;
    }
  }
}

std::optional<repo::DatasetRecord> SharedRepository::find_visible_by_id(const std::string& dataset_id) {
  return find_visible_by_id(dataset_id, auth::Identity{});
}

std::optional<repo::DatasetRecord> SharedRepository::find_visible_by_id(const std::string& dataset_id,
                                                                        const auth::Identity& caller) {
  if (!repo::is_safe_identifier(dataset_id)) return std::nullopt;
  repo::DatasetQuery query;
  query.dataset_ids = {dataset_id};
  const double now = repo::mjd_now();
  return read([&](repo::Registry& registry) -> std::optional<repo::DatasetRecord> {
    auto found = auth::find_readable(registry, query, caller, now);
    if (found.empty()) return std::nullopt;
    auto record = std::move(found.front());
    record.inputs = registry.inputs_of(dataset_id);
    return record;
  });
}

dali::CheckResult check_registry(SharedRepository& repository) {
  try {
    repository.with([](repo::Repository& r) {
      auto statement = r.registry().connection().prepare("SELECT 1 FROM dataset LIMIT 1");
      statement->step();
    });
    return {true, "answers queries"};
  } catch (const db::Unavailable& e) {
    spdlog::warn("availability: {}", e.what());
    return {false, "the registry database is unavailable (restarting or unreachable)"};
  } catch (const std::exception& e) {
    // The database's message may name files or hosts: log it, publish less.
    spdlog::warn("availability: registry query failed: {}", e.what());
    return {false, "the registry database does not answer queries"};
  }
}

dali::CheckResult check_readable(const std::filesystem::path& root) {
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return {false, "the repository directory is missing"};
  if (::access(root.c_str(), R_OK | X_OK) != 0) return {false, "the repository directory is not readable"};
  const auto data = root / "data";
  if (std::filesystem::exists(data, ec) && ::access(data.c_str(), R_OK | X_OK) != 0) {
    return {false, "the repository's data directory is not readable"};
  }
  return {true, "readable"};
}

dali::CheckResult check_free_space(const std::filesystem::path& root, std::uint64_t min_free_bytes) {
  std::error_code ec;
  const auto space = std::filesystem::space(root, ec);
  if (ec) return {false, "cannot read the free space of the repository's file system"};
  const std::string free = human_bytes(space.available);
  if (space.available < min_free_bytes) {
    return {false, fmt::format("{} free, below the {} threshold", free, human_bytes(min_free_bytes))};
  }
  return {true, fmt::format("{} free (threshold {})", free, human_bytes(min_free_bytes))};
}

// The cache of re-created virtual products: its size against its limit and
// how often it answered; unavailable when its folder cannot be written.
dali::CheckResult check_product_cache(const SharedRepository& repository) {
  const auto& dir = repository.product_cache_dir();
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && ::access(dir.c_str(), W_OK | X_OK) != 0) {
    return {false, "the product cache folder is not writable: virtual datasets cannot be re-created"};
  }
  const auto usage = repository.product_cache_usage();
  const auto stats = repository.product_cache_stats();
  const auto asked = stats.hits + stats.recreated;
  return {true, fmt::format("{} files, {} of {}; since start {} re-created, {} served from the cache{}", usage.files,
                            human_bytes(usage.bytes), human_bytes(repository.product_cache_max_bytes()),
                            stats.recreated, stats.hits,
                            asked > 0 ? fmt::format(" (hit rate {:.0f}%)", 100.0 * static_cast<double>(stats.hits) /
                                                                             static_cast<double>(asked))
                                      : std::string())};
}

std::optional<repo::DatasetRecord> example_dataset(SharedRepository& repository) {
  repo::DatasetQuery q;
  q.dataset_types = {std::string(repo::to_string(repo::DatasetType::calexp))};
  q.limit = 1;
  auto found = repository.find_visible(std::move(q));  // anonymous: what everyone may read
  if (found.empty()) return std::nullopt;
  return std::move(found.front());
}

dali::CheckResult check_standbys(const db::Standbys& standbys) {
  // Never unavailable: reads go to the primary while no standby serves.
  std::string note;
  std::size_t serving = 0;
  for (std::size_t i = 0; const auto& state : standbys.states()) {
    // By number: their addresses are the operator's business, not the public's.
    note += fmt::format("{}standby {}: {}", note.empty() ? "" : "; ", ++i,
                        state.qualifies ? fmt::format("serving reads (replay lag {:.1f} s)", state.lag_s.value_or(0.0))
                                        : "not serving reads: " + state.note);
    if (state.qualifies) ++serving;
  }
  return {true, fmt::format("{} of {} serving reads; {}", serving, standbys.size(), note)};
}

std::vector<dali::AvailabilityCheck> repository_checks(std::shared_ptr<SharedRepository> repository,
                                                       std::uint64_t min_free_bytes) {
  std::vector<dali::AvailabilityCheck> checks{
      {"registry database", [repository] { return check_registry(*repository); }},
      {"repository files", [repository] { return check_readable(repository->root()); }},
      {"disk space", [repository, min_free_bytes] { return check_free_space(repository->root(), min_free_bytes); }},
      {"product cache", [repository] { return check_product_cache(*repository); }},
  };
  if (auto standbys = repository->standbys()) {
    checks.push_back({"registry standbys", [standbys] { return check_standbys(*standbys); }});
  }
  return checks;
}

}  // namespace pixserve::services
