#include "services/app.hpp"

#include <utility>

#include "services/datalink.hpp"
#include "services/datasets.hpp"
#include "services/sia.hpp"

namespace pixserve::services {

AppOptions app_options(const http::ServerConfig& config, const WebOptions& web) {
  AppOptions o;
  o.limits.default_maxrec = config.maxrec_default;
  o.limits.max_maxrec = config.maxrec_limit;
  o.min_free_disk_bytes = config.min_free_disk_bytes;
  o.web = web;
  return o;
}

App make_app(std::shared_ptr<SharedRepository> repository, const AppOptions& options) {
  auto catalog = std::make_shared<dali::ServiceCatalog>(dali::CatalogOptions{
      .api_prefix = "/api",
      .title = "pixserve",
      .version = options.version,
      .description = "IVOA image services of the survey repository '" + repository->config().name + "'",
  });
  const auto checks = repository_checks(repository, options.min_free_disk_bytes);
  catalog->add(datasets_service(repository, options.limits, checks));
  catalog->add(sia_service(repository, options.limits, checks));
  catalog->add(datalink_service(repository, options.limits, checks));

  App app{.catalog = catalog, .router = {}};
  dali::install(app.router, catalog);
  add_file_routes(app.router, repository);
  if (!options.web.web_root.empty()) add_web_routes(app.router, options.web);
  return app;
}

}  // namespace pixserve::services
