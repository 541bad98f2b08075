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
#include "http/router.hpp"
#include "publishing/settings.hpp"
#include "uws/engine.hpp"
#include "uws/settings.hpp"
#include "services/hips.hpp"
#include "auth/authenticator.hpp"
#include "auth/settings.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"
#include "services/user_images.hpp"
#include "services/tap.hpp"
#include "tap/settings.hpp"
#include "services/web.hpp"

namespace pixserve::services {

// The settings of each component (their sections of the configuration
// file, src/config) and what the command line found.
struct AppOptions {
  ServiceSettings service{};  // min_free_disk_bytes (authority and the web folders are the command line's)
  dali::ResultLimits limits{};
  uws::JobSettings jobs{};          // asynchronous jobs (UWS)
  tap::TapSettings tap{};           // TAP query limits
  HipsSettings hips{};              // HiPS maps: root, public order, full-endpoint access
  SodaLimits soda{};                // SODA request and mosaic sizes
  PhotometryLimits photometry{};    // forced photometry request sizes
  auth::AuthSettings auth{};        // realm, role groups, JWT provider (make_app reads its key file)
  UserImageSettings user_images{};  // /api/user/images (Level 3)
  publishing::PublishingSettings publishing{};  // registry records (/api/registry/oai), HiPS maps' hips_status
  WebOptions web{};
  std::string version = "0.1.0";
};

struct App {
  std::shared_ptr<const dali::ServiceCatalog> catalog;
  http::Router router;
  // The job store and threads behind every /async endpoint; the router's
  // handlers hold it too, so it lives as long as whichever goes last.
  std::shared_ptr<uws::JobEngine> jobs;
  // Resolves each request's caller (tokens of the registry, JWTs); the
  // catalogue's identify hook and the file and user-image routes use it.
  std::shared_ptr<const auth::Authenticator> authenticator{};
};

App make_app(std::shared_ptr<SharedRepository> repository, const AppOptions& options);

}  // namespace pixserve::services
