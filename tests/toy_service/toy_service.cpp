// A toy asynchronous service for the protocol tests: one declaration and one
// function (uws/job_service.hpp) served as /api/toy/sync and as UWS jobs at
// /api/toy/async, with the same framework the real services use.
//
//   pixserve-toy-service --dir DIR [--host 127.0.0.1] [--port 0]
//
// The function echoes TEXT, REPEAT times, one line each, after a line naming
// the caller (header X-Toy-User; none: anonymous). It first waits DELAY
// seconds, reporting progress and honouring cancellation; TEXT=fail makes it
// fail with a usage error. RESULT=file writes the result as a file,
// RESULT=stream (default) as a result produced on demand.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "dali/errors.hpp"
#include "dali/service.hpp"
#include "http/server.hpp"
#include "uws/engine.hpp"
#include "uws/job_service.hpp"
#include "uws/spool.hpp"

namespace {

using namespace pixserve;
namespace fs = std::filesystem;

std::vector<dali::ParamSpec> toy_params() {
  return {
      {.name = "TEXT", .type = dali::ParamType::text, .description = "the text to echo", .required = true,
       .example = "hello"},
      {.name = "REPEAT", .type = dali::ParamType::integer, .description = "how many times", .min = 1, .max = 1000,
       .default_value = "1", .example = "3"},
      {.name = "DELAY", .type = dali::ParamType::real, .description = "seconds to wait first", .unit = "s", .min = 0,
       .max = 3600, .default_value = "0", .example = "0"},
      {.name = "RESULT", .type = dali::ParamType::enumerated, .description = "how the result is made",
       .options = {"stream", "file"}, .default_value = "stream", .example = "stream"},
  };
}

void echo(uws::JobRun& run) {
  const auto& params = run.params();
  const auto text = params.first<std::string>("TEXT").value_or("");
  if (text == "fail") throw dali::UsageError("TEXT: 'fail' asks for a failure");
  const auto repeat = params.first<std::int64_t>("REPEAT").value_or(1);
  const double delay = params.first<double>("DELAY").value_or(0.0);
  const auto start = std::chrono::steady_clock::now();
  const auto wait = std::chrono::duration<double>(delay);
  for (auto elapsed = std::chrono::steady_clock::now() - start; elapsed < wait;
       elapsed = std::chrono::steady_clock::now() - start) {
    run.cancel().throw_if_cancelled();
    run.progress().report(std::chrono::duration<double>(elapsed) / wait, "waiting");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::string body = fmt::format("caller: {}\n", run.caller().anonymous() ? "anonymous" : run.caller().user);
  for (std::int64_t i = 0; i < repeat; ++i) body += text + "\n";
  if (params.first<std::string>("RESULT").value_or("stream") == "file") {
    run.results().write("echo", "echo.txt", "text/plain; charset=utf-8", body);
  } else {
    run.results().add_stream({.id = "echo",
                              .file_name = "echo.txt",
                              .mime_type = "text/plain; charset=utf-8",
                              .size = body.size(),
                              .produce = [body](const http::ByteSink& sink) { return sink(body); },
                              .consumed_files = {},
                              .attachment = false});
  }
  run.progress().report(1.0, "done");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli("toy asynchronous service (protocol tests)");
  fs::path dir;
  std::string host = "127.0.0.1";
  int port = 0;
  cli.add_option("--dir", dir, "folder for the job database, results and spool")->required();
  cli.add_option("--host", host);
  cli.add_option("--port", port)->check(CLI::Range(0, 65535));
  CLI11_PARSE(cli, argc, argv);

  fs::create_directories(dir);
  uws::JobSettings settings;
  settings.threads = 2;
  // Expired jobs are looked for every second, so that a test sees DESTRUCTION work.
  auto engine = std::make_shared<uws::JobEngine>(db::open_sqlite(dir / "jobs.sqlite", true), dir / "jobs", settings, std::chrono::seconds(1));

  dali::Service toy{.name = "toy", .title = "Toy job service", .description = "Echoes its TEXT (tests only)."};
  uws::add_job_endpoints(toy, engine,
                         {.kind = "toy",
                          .sync = {.path = "sync", .summary = "Echo now", .params = toy_params(),
                                   .result_types = {"text/plain"}},
                          .async = {.path = "async", .summary = "Echo as a UWS job", .params = toy_params(),
                                    .methods = {"POST"}, .result_types = {"text/plain"}},
                          .run = echo,
                          .check_on_create = true,
                          .spool = uws::SpoolArea::open({.root = dir / "spool"})});
  auto catalog = std::make_shared<dali::ServiceCatalog>(dali::CatalogOptions{
      .title = "toy",
      .identify = [](const http::Request& request) {
        auth::Identity who;
        if (auto user = request.header("X-Toy-User")) who.user = std::string(*user);
        return who;
      }});
  catalog->add(std::move(toy));
  http::Router router;
  dali::install(router, catalog);

  http::ServerSettings config;
  config.host = host;
  config.port = static_cast<std::uint16_t>(port);
  http::Server server(config, std::move(router));
  server.run();  // until SIGTERM/SIGINT
  return 0;
}
