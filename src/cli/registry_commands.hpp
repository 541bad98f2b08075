// `pixserve registry migrate`: moves a repository's registry database
// (datasets, footprint index, provenance, tokens, UWS jobs) from its SQLite
// file to PostgreSQL.
#pragma once

#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

class RegistryCommands {
 public:
  void add_to(CLI::App& app);
  // The exit status when `registry` was selected.
  std::optional<int> run();

 private:
  int run_migrate();

  CLI::App* registry_ = nullptr;
  CLI::App* migrate_ = nullptr;
  struct Args {
    std::string repo;
    std::string from;
    std::string to;
    bool keep_config = false;
  } args_;
};

}  // namespace pixserve::cli
