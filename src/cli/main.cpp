// pixserve: one binary, one subcommand per operation.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"
#include "cli/hips_commands.hpp"
#include "cli/product_commands.hpp"
#include "cli/registry_commands.hpp"
#include "cli/rights_commands.hpp"
#include "cli/token_commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pixserve: IVOA image services for a survey (ObsCore/TAP, SIAv2, DataLink, SODA, HiPS, MOC)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(pixserve::cli::kVersion));
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  pixserve::cli::Commands commands;
  commands.add_to(app);
  pixserve::cli::HipsCommands hips_commands;  // hips, moc
  hips_commands.add_to(app);
  pixserve::cli::TokenCommands token_commands;  // token create|list|revoke
  token_commands.add_to(app);
  pixserve::cli::ProductCommands product_commands;  // materialize, cache status|prune
  product_commands.add_to(app);
  pixserve::cli::RightsCommands rights_commands;  // rights
  rights_commands.add_to(app);
  pixserve::cli::RegistryCommands registry_commands;  // registry migrate
  registry_commands.add_to(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Logs (progress, warnings, errors, the server's access log) go to stderr:
  // stdout is for results (`query --format json | ...`).
  spdlog::set_default_logger(spdlog::stderr_color_mt("pixserve"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    if (auto status = hips_commands.run()) return *status;
    if (auto status = token_commands.run()) return *status;
    if (auto status = product_commands.run()) return *status;
    if (auto status = rights_commands.run()) return *status;
    if (auto status = registry_commands.run()) return *status;
    return commands.run();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
