// `pixserve materialize` and `pixserve cache status|prune`: the files of
// virtual datasets (src/products), made ahead of requests and kept within
// the cache's limit.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

class ProductCommands {
 public:
  void add_to(CLI::App& app);
  // The exit status when one of these was selected.
  std::optional<int> run();

 private:
  int run_materialize();
  int run_status();
  int run_prune();

  CLI::App* materialize_ = nullptr;
  CLI::App* cache_ = nullptr;
  CLI::App* status_ = nullptr;
  CLI::App* prune_ = nullptr;

  struct Args {
    std::string repo;
    std::string config;
    std::vector<std::int64_t> visits;
    std::vector<std::string> ids;
    unsigned jobs = 0;
    std::int64_t max_mb = -1;
  } args_;
};

}  // namespace pixserve::cli
