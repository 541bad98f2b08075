// `pixserve token create|list|revoke`: the bearer tokens of a repository's
// token store (src/auth/token_store.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace pixserve::cli {

class TokenCommands {
 public:
  void add_to(CLI::App& app);
  // The exit status when `token` was selected.
  std::optional<int> run();

 private:
  int run_create();
  int run_list();
  int run_revoke();

  CLI::App* token_ = nullptr;
  CLI::App* create_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* revoke_ = nullptr;

  struct Args {
    std::string repo;
    std::string user;
    std::vector<std::string> groups;
    std::vector<std::string> scopes;
    std::string expires;
    std::string note;
    std::string format = "table";
    std::vector<std::string> ids;
  } args_;
};

}  // namespace pixserve::cli
