// The registry backend a unit test's repositories use. ctest runs the tests
// of the libraries that keep a registry twice: as they are (SQLite files in
// the scratch folders) and, under the name prefix "postgresql.", with
// PIXSERVE_TEST_POSTGRESQL naming the file that holds the URL of a private
// PostgreSQL server (started for the whole run by
// scripts/postgresql-test-server.sh as a ctest fixture). There each new
// repository gets a database of its own on that server.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <stdexcept>
#include <string>

#include "db/database.hpp"
#include "repo/repository.hpp"

namespace pixserve::testing {

// The server's URL when this run tests PostgreSQL registries, else empty.
inline std::string test_postgresql_server() {
  const char* file = std::getenv("PIXSERVE_TEST_POSTGRESQL");
  if (file == nullptr || *file == '\0') return {};
  std::ifstream in(file);
  std::string url;
  if (!std::getline(in, url) || url.empty()) {
    throw std::runtime_error(std::string("PIXSERVE_TEST_POSTGRESQL: no server URL in ") + file);
  }
  return url;
}

// `config` with its registry placed on this run's backend: unchanged for
// SQLite, a new empty database on the test server for PostgreSQL.
inline repo::RepositoryConfig test_repository_config(repo::RepositoryConfig config = {}) {
  const std::string server = test_postgresql_server();
  if (server.empty()) return config;
  static std::atomic<int> made{0};
  const std::string name = "registry_" + std::to_string(::getpid()) + "_" + std::to_string(++made);
  db::open_postgresql(server)->exec("CREATE DATABASE " + name);
  config.registry = server.substr(0, server.rfind('/') + 1) + name;
  return config;
}

// A connection to this run's backend standing where the SQLite file
// `sqlite_file` would: that file itself, or a database of its own on the
// test server named after the file's path, created on first use, so that a
// test that opens the same file twice (a restarted server, a second server
// process) reaches the same database.
inline std::unique_ptr<db::Connection> test_database(const std::filesystem::path& sqlite_file) {
  const std::string server = test_postgresql_server();
  if (server.empty()) return db::open_sqlite(sqlite_file, true);
  const std::string name = "t_" + std::to_string(std::hash<std::string>{}(sqlite_file.string()));
  auto admin = db::open_postgresql(server);
  auto exists = admin->prepare("SELECT 1 FROM pg_database WHERE datname = ?");
  exists->bind(1, name);
  if (!exists->step()) admin->exec("CREATE DATABASE " + name);
  return db::open_postgresql(server.substr(0, server.rfind('/') + 1) + name);
}

}  // namespace pixserve::testing
