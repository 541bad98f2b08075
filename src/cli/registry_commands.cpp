#include "cli/registry_commands.hpp"

#include <iostream>
#include <map>

#include <fmt/format.h>

#include "auth/token_store.hpp"
#include "cli/progress.hpp"
#include "db/copy.hpp"
#include "repo/efd.hpp"
#include "repo/repository.hpp"
#include "uws/store.hpp"

namespace pixserve::cli {
namespace {

// Every table of a registry database, parents before children (foreign
// keys): the registry's own, its R-EFD tables (as repo/efd.hpp describes
// them), then the token store's and the UWS store's, which keep their
// state beside it.
std::vector<std::string> registry_tables() {
  std::vector<std::string> out = {"registry_meta", "dataset", "footprint_cell", "center_cell", "provenance",
                                   "dataset_part"};
  for (const auto& t : repo::efd::tables()) out.emplace_back(t.registry_name);
  for (const char* t : {"auth_token", "uws_job", "uws_parameter", "uws_result"}) out.emplace_back(t);
  return out;
}

std::int64_t count_rows(db::Connection& connection, const std::string& table) {
  auto s = connection.prepare(fmt::format("SELECT count(*) FROM {}", table));
  return s->step() ? s->get_int(0) : 0;
}

}  // namespace

void RegistryCommands::add_to(CLI::App& app) {
  registry_ = app.add_subcommand("registry", "Administer a repository's registry database");
  registry_->require_subcommand(1);
  migrate_ = registry_->add_subcommand(
      "migrate",
      "Copy a repository's registry (datasets, footprint index, provenance, tokens, jobs) from its SQLite file into "
      "an empty PostgreSQL database, in one transaction, and point the repository at it");
  migrate_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  migrate_->add_option("--from", args_.from,
                       "The SQLite registry to copy: sqlite:FILE or FILE (default: the repository's own)");
  migrate_->add_option("--to", args_.to, "The PostgreSQL database: postgresql://user@host:port/dbname")->required();
  migrate_->add_flag("--keep-config", args_.keep_config,
                     "Copy only: leave the repository's configuration pointing at its current registry");
}

std::optional<int> RegistryCommands::run() {
  if (!registry_ || !registry_->parsed()) return std::nullopt;
  if (migrate_->parsed()) return run_migrate();
  return 2;
}

int RegistryCommands::run_migrate() {
  const auto repository = repo::Repository::open(args_.repo);
  if (!repo::is_postgresql_url(args_.to)) {
    std::cerr << "registry migrate: --to must be a PostgreSQL URL (postgresql://user@host:port/dbname)\n";
    return 2;
  }
  std::filesystem::path source_file;
  if (!args_.from.empty()) {
    source_file = args_.from.starts_with("sqlite:") ? args_.from.substr(7) : args_.from;
  } else {
    const auto current = repository.registry_database();
    if (current.is_postgresql()) {
      std::cerr << "registry migrate: the repository's registry is already on PostgreSQL; give --from FILE\n";
      return 2;
    }
    source_file = current.sqlite_file;
  }
  if (!std::filesystem::is_regular_file(source_file)) {
    std::cerr << fmt::format("registry migrate: no SQLite registry at {}\n", source_file.string());
    return 2;
  }
  auto from = db::open_sqlite(source_file, db::SqliteOptions{.read_only = true});

  // The tables as each store makes them on PostgreSQL (types, keys,
  // indexes, the ObsCore view and the server's ADQL functions).
  repo::Registry(db::open_postgresql(args_.to), repository.config().index_order);
  auth::TokenStore(db::open_postgresql(args_.to));
  uws::JobStore(db::open_postgresql(args_.to), uws::StoreOptions{.jobs_dir = repository.root() / "jobs"});

  auto to = db::open_postgresql(args_.to);
  if (const auto rows = count_rows(*to, "dataset"); rows > 0) {
    std::cerr << fmt::format("registry migrate: {} already holds {} datasets; migrate into an empty database\n",
                             args_.to, rows);
    return 1;
  }
  std::map<std::string, std::int64_t> totals;
  const auto tables = registry_tables();
  for (const auto& table : tables) {
    if (db::table_exists(*from, table)) totals[table] = count_rows(*from, table);
  }
  ProgressPrinter printer;
  std::int64_t copied = 0;
  {
    db::Transaction tx(*to);
    // The new registry's own first rows give way to the copied ones.
    to->exec("DELETE FROM registry_meta");
    for (const auto& table : tables) {
      if (!totals.contains(table)) continue;  // a store that never ran (no tokens, no jobs)
      copied += db::copy_table(*from, *to, table, [&](const std::string& name, std::int64_t rows) {
        printer.report(name, static_cast<std::size_t>(rows), static_cast<std::size_t>(totals[name]));
      });
    }
    // New datasets get keys after the copied ones.
    to->exec("SELECT setval(pg_get_serial_sequence('dataset', 'dataset_key'), "
             "coalesce((SELECT max(dataset_key) FROM dataset), 0) + 1, false)");
    tx.commit();
  }
  printer.finish();
  // The planner's statistics of the new tables (without them PostgreSQL
  // guesses the size of every table) and their visibility map (without it
  // a cone search reads the table of footprint cells besides its index):
  // autovacuum would make them only some time later.
  to->exec("VACUUM (ANALYZE)");
  if (!args_.keep_config) repo::set_registry_location(repository.root(), args_.to);
  std::cout << fmt::format("registry migrate: {} rows of {} tables copied to {}{}\n", copied, totals.size(), args_.to,
                           args_.keep_config ? "" : "; the repository now uses it");
  return 0;
}

}  // namespace pixserve::cli
