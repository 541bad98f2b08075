// The survey registries of bench_sia and bench_tap on either backend, made
// once per size by make_survey_repository (the same rows on both). When an
// SQLite registry of the size is at hand (both backends asked for, or one
// kept), PostgreSQL's is copied from it with the product's own `pixserve
// registry migrate`, timed; otherwise it is made there directly. PostgreSQL is a private
// server the bench starts and stops (scripts/postgresql-test-server.sh), or
// one given by its URL, where each size gets a database of its own
// (pixserve_bench_<rows>) that --keep keeps for later runs.
#pragma once

#include <chrono>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "db/database.hpp"
#include "repo/repository.hpp"
#include "synthetic_registry.hpp"

namespace pixserve::bench {

enum class Backend { sqlite, postgresql };

inline std::string_view name_of(Backend b) { return b == Backend::sqlite ? "SQLite" : "PostgreSQL"; }

// "sqlite,postgresql" -> both, in that order (a --backend argument).
inline std::vector<Backend> parse_backends(const std::string& text) {
  std::vector<Backend> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item == "sqlite") {
      out.push_back(Backend::sqlite);
    } else if (item == "postgresql") {
      out.push_back(Backend::postgresql);
    } else {
      throw std::invalid_argument("--backend takes sqlite, postgresql or both, comma-separated");
    }
  }
  return out;
}

// The command-line options bench_sia and bench_tap share, with each bench's
// defaults: --rows, --backend, --queries, --dir, --keep, --postgresql-url.
struct SurveyBenchOptions {
  std::vector<std::int64_t> sizes;
  int queries = 100;
  std::filesystem::path dir;
  std::vector<Backend> backends{Backend::sqlite};
  std::string postgresql_url{};
  bool keep = false;

  // Takes argv[i] (and its value, moving i on to it) when it is one of
  // these options; false leaves it to the bench's own.
  bool take(int argc, char** argv, int& i) {
    const std::string_view arg = argv[i];
    if (arg == "--keep") {
      keep = true;
      return true;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[i + 1];
    if (arg == "--rows") {
      sizes = parse_sizes(value);
    } else if (arg == "--backend") {
      backends = parse_backends(value);
    } else if (arg == "--postgresql-url") {
      postgresql_url = value;
    } else if (arg == "--queries") {
      queries = std::stoi(value);
    } else if (arg == "--dir") {
      dir = value;
    } else {
      return false;
    }
    ++i;
    return true;
  }
};

// Runs a shell command; throws when it fails.
inline void run_command(const std::string& command) {
  if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
}

// A PostgreSQL server of this run only, on a random loopback port, stopped
// (and its data removed) when this goes away.
class PrivatePostgresql {
 public:
  explicit PrivatePostgresql(std::filesystem::path state) : state_(std::move(state)) {
    run_command(fmt::format("sh '{}' start '{}' >/dev/null", script(), state_.string()));
    std::ifstream in(state_ / "url");
    if (!std::getline(in, url_)) throw std::runtime_error("the PostgreSQL test server gave no URL");
  }
  PrivatePostgresql(const PrivatePostgresql&) = delete;
  PrivatePostgresql& operator=(const PrivatePostgresql&) = delete;
  ~PrivatePostgresql() { std::system(fmt::format("sh '{}' stop '{}'", script(), state_.string()).c_str()); }
  const std::string& url() const { return url_; }

 private:
  static std::string script() { return std::string(PIXSERVE_SOURCE_DIR) + "/scripts/postgresql-test-server.sh"; }
  std::filesystem::path state_;
  std::string url_;
};

// The URL of database `database` on the server of `url`
// (postgresql://user@host:port/db?options).
inline std::string with_database(const std::string& url, const std::string& database) {
  const auto authority = url.find("://");
  const auto slash = url.find('/', authority == std::string::npos ? 0 : authority + 3);
  const auto query = url.find('?');
  const std::string options = query == std::string::npos ? "" : url.substr(query);
  return (slash == std::string::npos ? url.substr(0, query) : url.substr(0, slash)) + "/" + database + options;
}

// Bytes of a table's rows and of its indexes, as the database stores them.
struct TableSize {
  std::int64_t table = 0, indexes = 0;
};

// The registry's big tables (dataset and its two spatial indexes,
// footprint_cell and center_cell): SQLite's pages
// of each B-tree (the dbstat table), PostgreSQL's relation sizes (heap with
// its TOAST and free-space maps, and all indexes).
inline std::map<std::string, TableSize> registry_sizes(db::Connection& c) {
  std::map<std::string, TableSize> out;
  for (const std::string table : {"dataset", "footprint_cell", "center_cell"}) {
    auto& size = out[table];
    if (c.dialect() == db::Dialect::postgresql) {
      auto s = c.prepare("SELECT pg_table_size(CAST(? AS regclass)), pg_indexes_size(CAST(? AS regclass))");
      s->bind(1, table).bind(2, table);
      if (s->step()) size = {s->get_int(0), s->get_int(1)};
    } else {
      // A WITHOUT ROWID table (footprint_cell, center_cell) is the B-tree
      // of its primary key: its rows and that index at once, counted as
      // the table.
      auto s = c.prepare(
          "SELECT coalesce(sum(CASE WHEN name = ?1 THEN pgsize END), 0), "
          "coalesce(sum(CASE WHEN name <> ?1 THEN pgsize END), 0) FROM dbstat "
          "WHERE name = ?1 OR name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1)");
      s->bind(1, table);
      if (s->step()) size = {s->get_int(0), s->get_int(1)};
    }
  }
  return out;
}

// The 1-minute load average (/proc/loadavg), printed with each figure: the
// cores may be shared, and a disturbed figure should be measured again.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string first;
  return in >> first ? first : "?";
}

inline void print_registry_sizes(repo::Repository& repository, std::int64_t rows) {
  auto& c = repository.registry().connection();
  for (const auto& [table, size] : registry_sizes(c)) {
    fmt::print("{} {} rows: {} {:.0f} MB ({:.0f} B/dataset), its indexes {:.0f} MB ({:.0f} B/dataset)\n",
               name_of(c.dialect() == db::Dialect::postgresql ? Backend::postgresql : Backend::sqlite), rows, table,
               static_cast<double>(size.table) / 1e6, static_cast<double>(size.table) / static_cast<double>(rows),
               static_cast<double>(size.indexes) / 1e6, static_cast<double>(size.indexes) / static_cast<double>(rows));
  }
}

// The p50 of each search of a benchmark, by backend and registry size.
using P50s = std::map<std::pair<Backend, std::int64_t>, std::vector<double>>;

// Each search's p50 at the largest size over the smallest, per backend,
// and PostgreSQL's over SQLite's, per size.
inline void print_ratios(const P50s& p50s, const std::vector<std::string>& searches) {
  std::map<Backend, std::pair<std::int64_t, std::int64_t>> extent;  // smallest, largest size
  for (const auto& [key, values] : p50s) {
    auto [it, fresh] = extent.try_emplace(key.first, key.second, key.second);
    it->second = {std::min(it->second.first, key.second), std::max(it->second.second, key.second)};
  }
  const auto ratios = [&](const std::vector<double>& a, const std::vector<double>& b) {
    std::string out;
    for (std::size_t i = 0; i < searches.size() && i < a.size() && i < b.size(); ++i) {
      out += fmt::format("{}{} {:.2f}x", i ? ", " : "", searches[i], a[i] / b[i]);
    }
    return out;
  };
  for (const auto& [backend, sizes] : extent) {
    if (sizes.first == sizes.second) continue;
    fmt::print("{}: p50 at {} rows / at {} rows: {}\n", name_of(backend), sizes.second, sizes.first,
               ratios(p50s.at({backend, sizes.second}), p50s.at({backend, sizes.first})));
  }
  for (const auto& [key, values] : p50s) {
    if (key.first != Backend::postgresql) continue;
    const auto sqlite = p50s.find({Backend::sqlite, key.second});
    if (sqlite == p50s.end()) continue;
    fmt::print("PostgreSQL / SQLite p50 at {} rows: {}\n", key.second, ratios(values, sqlite->second));
  }
}

// Survey repositories of the benchmark in `dir`: repo-<rows> (SQLite) and
// repo-<rows>-postgresql (the same rows on PostgreSQL).
class SurveyRegistries {
 public:
  // postgresql_url: a server to use; empty: a private one, started when a
  // PostgreSQL registry is first asked for.
  SurveyRegistries(std::filesystem::path dir, bool keep, std::string postgresql_url)
      : dir_(std::move(dir)), keep_(keep), postgresql_url_(std::move(postgresql_url)) {}
  SurveyRegistries(const SurveyRegistries&) = delete;
  SurveyRegistries& operator=(const SurveyRegistries&) = delete;
  ~SurveyRegistries() {
    if (keep_) return;
    for (const auto& root : made_) std::filesystem::remove_all(root);
    if (!server_ && !postgresql_url_.empty()) {
      for (const auto& database : databases_) {
        try {
          db::open_postgresql(postgresql_url_)->exec(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", database));
        } catch (const std::exception& e) {
          fmt::print(stderr, "could not drop {}: {}\n", database, e.what());
        }
      }
    }
  }

  repo::Repository open(std::int64_t rows, Backend backend) {
    const auto root = dir_ / fmt::format("repo-{}", rows);
    const bool sqlite_ready = std::find(made_.begin(), made_.end(), root) != made_.end() ||
                              (keep_ && is_complete_survey_repository(root, rows));
    if (backend == Backend::postgresql) {
      // A PostgreSQL registry kept from an earlier run needs no SQLite one,
      // and without an SQLite one at hand the rows go straight onto
      // PostgreSQL (no 10 GB file beside the database at 10^7 rows).
      if (auto kept = kept_postgresql(rows)) return std::move(*kept);
      return sqlite_ready ? migrate_to_postgresql(root, rows) : make_postgresql(rows);
    }
    if (!sqlite_ready) {
      std::filesystem::remove_all(root);
      made_.push_back(root);
      make_survey_repository(root, rows);
    }
    return repo::Repository::open(root);
  }

 private:
  std::string server_url() {
    if (postgresql_url_.empty() && !server_) server_.emplace(dir_ / "postgresql");
    return server_ ? server_->url() : postgresql_url_;
  }

  // The PostgreSQL registry of `rows` a run with --keep left on the same
  // server (a private server's is gone with it).
  std::optional<repo::Repository> kept_postgresql(std::int64_t rows) {
    const auto root = dir_ / fmt::format("repo-{}-postgresql", rows);
    if (!keep_ || postgresql_url_.empty() || !is_complete_survey_repository(root, rows)) return std::nullopt;
    auto repository = repo::Repository::open(root);
    if (repository.config().registry != with_database(postgresql_url_, fmt::format("pixserve_bench_{}", rows))) {
      return std::nullopt;
    }
    return repository;
  }

  // An empty database pixserve_bench_<rows> and the repository
  // repo-<rows>-postgresql whose registry it is.
  std::pair<std::filesystem::path, std::string> new_postgresql_database(std::int64_t rows) {
    const std::string server_url = this->server_url();
    const std::string database = fmt::format("pixserve_bench_{}", rows);
    const auto root = dir_ / fmt::format("repo-{}-postgresql", rows);
    std::filesystem::remove_all(root);
    made_.push_back(root);
    auto admin = db::open_postgresql(server_url);
    admin->exec(fmt::format("DROP DATABASE IF EXISTS {} WITH (FORCE)", database));
    admin->exec(fmt::format("CREATE DATABASE {} ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0", database));
    databases_.push_back(database);
    return {root, with_database(server_url, database)};
  }

  // The survey's rows made onto PostgreSQL directly.
  repo::Repository make_postgresql(std::int64_t rows) {
    const auto [root, url] = new_postgresql_database(rows);
    repo::RepositoryConfig config;
    config.registry = url;
    return make_survey_repository(root, rows, config);
  }

  // The SQLite registry at sqlite_root copied onto PostgreSQL.
  repo::Repository migrate_to_postgresql(const std::filesystem::path& sqlite_root, std::int64_t rows) {
    const auto [root, url] = new_postgresql_database(rows);
    repo::RepositoryConfig config;
    config.registry = url;
    repo::Repository::open_or_create(root, config);
    // The product's copy, as a data centre moving its registry runs it.
    const auto t0 = std::chrono::steady_clock::now();
    const auto log = dir_ / "migrate.log";
    try {
      run_command(fmt::format("'{}' registry migrate --repo '{}' --from '{}' --to '{}' >'{}' 2>&1", PIXSERVE_EXECUTABLE,
                              root.string(), (sqlite_root / "registry.sqlite3").string(), url, log.string()));
    } catch (const std::exception&) {
      std::ifstream in(log);
      fmt::print(stderr, "{}\n", std::string(std::istreambuf_iterator<char>(in), {}));
      throw;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("registry: {} datasets copied onto PostgreSQL by `pixserve registry migrate` in {:.1f} s "
               "({:.0f} datasets/s)\n",
               rows, seconds, static_cast<double>(rows) / seconds);
    std::ofstream(survey_marker(root)) << rows << '\n';
    return repo::Repository::open(root);
  }

  std::filesystem::path dir_;
  bool keep_ = false;
  std::string postgresql_url_;
  std::optional<PrivatePostgresql> server_;
  std::vector<std::filesystem::path> made_;
  std::vector<std::string> databases_;
};

}  // namespace pixserve::bench
