// The pixserve subcommands: each registers its options on the CLI11 app and
// runs when selected.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

inline constexpr std::string_view kVersion = "0.1.0";

class Commands {
 public:
  void add_to(CLI::App& app);
  int run();  // runs the selected subcommand; returns the exit status

 private:
  int run_simulate();
  int run_ingest();
  int run_query();
  int run_serve();
  int run_config();

  CLI::App* simulate_ = nullptr;
  CLI::App* ingest_ = nullptr;
  CLI::App* query_ = nullptr;
  CLI::App* serve_ = nullptr;
  CLI::App* config_ = nullptr;

  struct SimulateArgs {
    std::string out;
    int visits = 0;
    int detectors = 0;
    unsigned long long seed = 0;
    std::string bands;
    long detector_size = 0;
    bool headers_only = false;
    bool no_coadds = false;
    bool no_comp = false;
    bool virtual_calexps = false;
    unsigned threads = 0;
  } sim_;

  struct IngestArgs {
    std::string repo;
    std::vector<std::string> paths;
    std::string collection = "DR1";
    std::string transfer = "copy";
    bool skip_bad = false;
    std::string owner;
    std::string policy = "public";
    std::vector<std::string> groups;
    double embargo_hours = -1.0;
    unsigned threads = 0;
    std::string name;
    std::string authority;
    int index_order = -1;
    std::string registry;
    std::string mapping;
    bool dry_run = false;
    bool no_virtual = false;
    std::string format = "table";
  } ingest_args_;

  struct QueryArgs {
    std::string repo;
    std::string pos;
    std::vector<std::string> bands;
    std::vector<std::string> types;
    std::vector<std::string> collections;
    std::vector<long long> visits;
    std::vector<long long> detectors;
    std::string format = "table";
    std::size_t limit = 0;
  } query_args_;

  struct ServeArgs {
    std::string repo;
    std::string config;
    // The values of the flags that set a key of the configuration file
    // (--host: server.host, ...), by key.
    std::map<std::string, std::string> keys;
  } serve_args_;

  bool config_example_ = false;
};

}  // namespace pixserve::cli
