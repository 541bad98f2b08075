// `pixserve rights`: who may read stored datasets, changed after ingest; the
// virtual products made from a raw follow its rights.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

class RightsCommands {
 public:
  void add_to(CLI::App& app);
  // The exit status when `rights` was selected.
  std::optional<int> run();

 private:
  CLI::App* rights_ = nullptr;
  struct Args {
    std::string repo;
    std::vector<std::string> ids;
    std::vector<std::int64_t> visits;
    std::vector<std::string> types;
    std::string policy;
    std::vector<std::string> groups;
    std::optional<double> release_mjd;
    bool released = false;
  } args_;
};

}  // namespace pixserve::cli
