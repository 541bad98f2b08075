#include "services/app.hpp"

#include <fstream>
#include <sstream>
#include <utility>

#include "services/datalink.hpp"
#include "services/datasets.hpp"
#include "services/hips.hpp"
#include "services/links.hpp"
#include "services/moc.hpp"
#include "services/sia.hpp"
#include "services/soda.hpp"
#include "services/status.hpp"
#include "services/user_images.hpp"
#include "services/tap.hpp"

namespace pixserve::services {

AppOptions app_options(const http::ServerConfig& config, const WebOptions& web) {
  AppOptions o;
  o.limits.default_maxrec = config.maxrec_default;
  o.limits.max_maxrec = config.maxrec_limit;
  o.min_free_disk_bytes = config.min_free_disk_bytes;
  o.web = web;
  o.jobs = config.jobs;
  o.tap = config.tap;
  o.hips.root = config.hips.root;
  o.hips.public_max_order = config.hips.public_max_order;
  // The full HiPS endpoint is open to everyone only by the operator's
  // explicit choice (hips.full_access: open); otherwise make_app lets in the
  // callers with data rights (it has the authenticator).
  if (config.hips.full_access == "open") o.hips.authorize_full = [](const http::Request&) {};
  if (!web.web_root.empty()) {
    if (auto dir = find_aladin_lite(web.web_root)) o.hips.aladin_lite_dir = *dir;
  }
  o.auth.realm = config.auth.realm;
  o.auth.data_rights_groups = config.auth.data_rights_groups;
  o.auth.embargo_exempt_groups = config.auth.embargo_exempt_groups;
  if (!config.auth.jwt_public_key.empty()) {
    std::ifstream in(config.auth.jwt_public_key, std::ios::binary);
    if (!in) throw http::ConfigError("auth.jwt_public_key: cannot read " + config.auth.jwt_public_key.string());
    std::ostringstream pem;
    pem << in.rdbuf();
    try {
      o.jwt = std::make_shared<const auth::JwtVerifier>(auth::JwtOptions{.public_key_pem = pem.str(),
                                                                         .issuer = config.auth.jwt_issuer,
                                                                         .audience = config.auth.jwt_audience,
                                                                         .user_claim = config.auth.jwt_user_claim,
                                                                         .groups_claim = config.auth.jwt_groups_claim,
                                                                         .leeway_s = config.auth.jwt_leeway_s});
    } catch (const std::invalid_argument& e) {
      throw http::ConfigError(std::string("auth.jwt_public_key: ") + e.what());
    }
  }
  o.user_images_enabled = config.user_images.enabled;
  o.user_images = {.collection = config.user_images.collection,
                   .max_file_bytes = config.user_images.max_file_bytes,
                   .quota_bytes = config.user_images.quota_bytes};
  return o;
}

App make_app(std::shared_ptr<SharedRepository> repository, const AppOptions& options) {
  // Tokens live in the registry database (their own connection, as jobs do).
  std::shared_ptr<auth::TokenStore> tokens = auth::TokenStore::open(repository->root() / repository->config().registry);
  auto authenticator = std::make_shared<const auth::Authenticator>(options.auth, tokens, options.jwt);
  dali::IdentifyHook identify = [authenticator](const http::Request& request) {
    return authenticator->resolve(request, auth::kScopeRead);
  };
  auto catalog = std::make_shared<dali::ServiceCatalog>(dali::CatalogOptions{
      .api_prefix = std::string(links::kApiPrefix),
      .title = "pixserve",
      .version = options.version,
      .description = "IVOA image services of the survey repository '" + repository->config().name + "'",
      .identify = identify,
  });
  const auto checks = repository_checks(repository, options.min_free_disk_bytes);
  // The jobs of every async service: tables in the registry database,
  // files in jobs.dir or <repository>/jobs.
  auto jobs = std::make_shared<uws::JobEngine>(repository->root() / repository->config().registry,
                                               options.jobs.dir.empty() ? repository->root() / "jobs" : options.jobs.dir,
                                               options.jobs);
  catalog->add(datasets_service(repository, options.limits, checks));
  catalog->add(sia_service(repository, options.limits, checks));
  catalog->add(datalink_service(repository, options.limits, checks));
  auto tap_engine = make_tap_engine(*repository, options.tap);
  catalog->add(tap_service(tap_engine, jobs, options.limits, options.tap, options.jobs, checks));
  catalog->add(soda_service(repository, jobs, checks));
  HipsOptions hips = options.hips;
  if (!hips.authorize_full) {
    hips.authorize_full = [authenticator](const http::Request& request) {
      const auth::Identity who = authenticator->resolve(request, auth::kScopeRead);
      if (who.anonymous()) {
        throw auth::AuthError::authentication_required(authenticator->options().realm,
                                                       "the full-resolution HiPS maps are for data-rights holders: "
                                                       "authentication required");
      }
      if (!who.data_rights) {
        throw dali::Forbidden("the full-resolution HiPS maps are for data-rights holders");
      }
    };
  }
  catalog->add(hips_service(repository, hips, options.limits, checks));
  catalog->add(moc_service(repository, checks));

  App app{.catalog = catalog, .router = {}, .jobs = jobs, .authenticator = authenticator};
  dali::install(app.router, catalog);
  add_file_routes(app.router, repository, identify);
  if (options.user_images_enabled) add_user_image_routes(app.router, repository, authenticator, options.user_images);
  add_status_routes(app.router, catalog);
  add_hips_routes(app.router, repository, hips);
  if (!options.web.web_root.empty()) add_web_routes(app.router, options.web);
  return app;
}

}  // namespace pixserve::services
