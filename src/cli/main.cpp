// pixserve: one binary, one subcommand per operation.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pixserve: IVOA image services for a survey (ObsCore/TAP, SIAv2, DataLink, SODA, HiPS, MOC)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(pixserve::cli::kVersion));
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  pixserve::cli::Commands commands;
  commands.add_to(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  try {
    return commands.run();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
