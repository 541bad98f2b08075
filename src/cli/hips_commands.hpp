// The `pixserve hips` and `pixserve moc` subcommands (all-sky maps and
// coverage), kept beside the other subcommands so that adding them touches
// main.cpp by three lines only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

class HipsCommands {
 public:
  void add_to(CLI::App& app);
  // The exit status when one of these subcommands was selected.
  std::optional<int> run();

 private:
  int run_hips();
  int run_moc();

  CLI::App* hips_ = nullptr;
  CLI::App* moc_ = nullptr;

  struct HipsArgs {
    std::string repo;
    std::string band;
    std::vector<std::string> color;
    std::string out;
    int order = -1;
    std::vector<std::string> formats;
    std::string type = "deepCoadd";
    std::vector<std::string> collections;
    unsigned threads = 0;
    bool force = false;
    std::string audience = "both";  // public, data-rights or both
  } hips_args_;

  struct MocArgs {
    std::string repo;
    std::vector<std::string> types;
    std::vector<std::string> bands;
    std::vector<std::string> collections;
    int order = 12;
    std::string format = "fits";
    bool stmoc = false;
    int time_order = 31;
    std::string out;
    unsigned threads = 0;
    std::string audience = "public";  // public, data-rights or all (no rights filter)
  } moc_args_;
};

}  // namespace pixserve::cli
