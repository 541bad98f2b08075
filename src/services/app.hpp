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
#include "uws/engine.hpp"
#include "services/hips.hpp"
#include "auth/authenticator.hpp"
#include "auth/jwt.hpp"
#include "services/repository_access.hpp"
#include "services/user_images.hpp"
#include "services/tap.hpp"
#include "services/web.hpp"

namespace pixserve::services {

struct AppOptions {
  dali::ResultLimits limits{};
  std::uint64_t min_free_disk_bytes = std::uint64_t{1} << 30;
  WebOptions web{};
  std::string version = "0.1.0";
  http::ServerConfig::Jobs jobs{};  // asynchronous jobs (UWS)
  TapOptions tap{};                 // TAP query limits
  HipsOptions hips{};               // HiPS maps: root, public order, full-endpoint access
  auth::AuthOptions auth{};                        // realm, data-rights and embargo-exempt groups
  std::shared_ptr<const auth::JwtVerifier> jwt{};  // external identity provider (optional)
  bool user_images_enabled = true;                 // /api/user/images (Level 3)
  UserImageOptions user_images{};
};

// The options a server configuration gives (service section).
AppOptions app_options(const http::ServerConfig& config, const WebOptions& web);

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
