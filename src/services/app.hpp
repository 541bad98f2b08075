// Everything `pixserve serve` puts on its router: the DALI services of the
// repository (with VOSI, availability and OpenAPI through dali::install) and
// the web pages. Kept out of the CLI so tests can dispatch requests to the
// very same router without a socket.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "http/config.hpp"
#include "http/router.hpp"
#include "services/repository_access.hpp"
#include "services/web.hpp"

namespace pixserve::services {

struct AppOptions {
  dali::ResultLimits limits{};
  std::uint64_t min_free_disk_bytes = std::uint64_t{1} << 30;
  WebOptions web{};
  std::string version = "0.1.0";
};

// The options a server configuration gives (service section).
AppOptions app_options(const http::ServerConfig& config, const WebOptions& web);

struct App {
  std::shared_ptr<const dali::ServiceCatalog> catalog;
  http::Router router;
};

App make_app(std::shared_ptr<SharedRepository> repository, const AppOptions& options);

}  // namespace pixserve::services
