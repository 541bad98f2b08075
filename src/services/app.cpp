#include "services/app.hpp"

#include <utility>

#include "services/datalink.hpp"
#include "services/datasets.hpp"
#include "services/hips.hpp"
#include "services/links.hpp"
#include "services/moc.hpp"
#include "services/photometry.hpp"
#include "services/registry.hpp"
#include "services/sia.hpp"
#include "services/soda.hpp"
#include "services/status.hpp"
#include "services/user_images.hpp"
#include "services/tap.hpp"

namespace pixserve::services {

App make_app(std::shared_ptr<SharedRepository> repository, const AppOptions& options) {
  // Tokens live in the registry database (their own connection, as jobs do).
  const auto database = repository->registry_database();
  auto tokens = std::make_shared<auth::TokenStore>(database.connect());
  auto authenticator =
      std::make_shared<const auth::Authenticator>(options.auth, tokens, auth::load_jwt_verifier(options.auth));
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
  const auto checks = repository_checks(repository, options.service.min_free_disk_bytes);
  // The jobs of every async service: tables in the registry database,
  // files in jobs.dir or <repository>/jobs.
  auto jobs = std::make_shared<uws::JobEngine>(database.connect(),
                                               options.jobs.dir.empty() ? repository->root() / "jobs" : options.jobs.dir,
                                               options.jobs);
  catalog->add(datasets_service(repository, options.limits, checks));
  catalog->add(sia_service(repository, options.limits, checks));
  catalog->add(datalink_service(repository, options.limits, options.photometry, checks));
  auto tap_engine = make_tap_engine(*repository, options.tap);
  catalog->add(tap_service(tap_engine, jobs, options.limits, options.tap, options.jobs, checks));
  catalog->add(soda_service(repository, jobs, checks, SodaOptions{.limits = options.soda}));
  catalog->add(photometry_service(repository, jobs, options.limits, options.photometry, checks));
  HipsOptions hips{.settings = options.hips,
                   .authorize_full = {},
                   .aladin_lite_dir = {},
                   .status_public = options.publishing.hips_status_public,
                   .status_rights = options.publishing.hips_status_rights};
  if (!options.web.web_root.empty()) {
    if (auto dir = find_aladin_lite(options.web.web_root)) hips.aladin_lite_dir = *dir;
  }
  // The full HiPS endpoint is open to everyone only by the operator's
  // explicit choice (hips.full_access: open); otherwise only to the callers
  // with data rights.
  if (options.hips.full_access == "open") {
    hips.authorize_full = [](const http::Request&) {};
  } else {
    hips.authorize_full = [authenticator](const http::Request& request) {
      const auth::Identity who = authenticator->resolve(request, auth::kScopeRead);
      if (who.anonymous()) {
        throw auth::AuthError::authentication_required(authenticator->settings().realm,
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
  if (options.user_images.enabled) add_user_image_routes(app.router, repository, authenticator, options.user_images);
  add_status_routes(app.router, catalog);
  add_hips_routes(app.router, repository, hips);
  add_registry_routes(app.router, catalog, repository, hips, options.publishing,
                      static_cast<std::uint64_t>(options.limits.max_maxrec));
  if (!options.web.web_root.empty()) add_web_routes(app.router, options.web);
  return app;
}

}  // namespace pixserve::services
