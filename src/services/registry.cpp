#include "services/registry.hpp"

#include <filesystem>
#include <system_error>

#include <spdlog/spdlog.h>

#include "publishing/oai.hpp"
#include "publishing/voresource.hpp"
#include "repo/repository.hpp"
#include "services/links.hpp"

namespace pixserve::services {

void add_registry_routes(http::Router& router, std::shared_ptr<const dali::ServiceCatalog> catalog,
                         std::shared_ptr<SharedRepository> repository, const HipsOptions& hips,
                         const publishing::PublishingSettings& settings, std::uint64_t max_records) {
  auto publisher = std::make_shared<publishing::Publisher>();
  publisher->settings = settings;
  publisher->authority = repository->config().authority;
  publisher->repository_name = repository->config().name;
  std::error_code ec;
  const auto made = std::filesystem::last_write_time(repo::config_file(repository->root()), ec);
  publisher->created = ec ? catalog->options().up_since
                          : std::chrono::time_point_cast<std::chrono::system_clock::duration>(
                                std::chrono::file_clock::to_sys(made));
  publisher->endpoint_path = links::registry_oai();
  publisher->hips_service = std::string(links::kHips);
  publisher->coverage_service = std::string(links::kMoc);
  publisher->coverage_path = links::endpoint(links::kMoc, "query") + "?FORMAT=fits";
  publisher->max_records = max_records;

  auto handler = [catalog, repository, hips, publisher](const http::Request& request) {
    try {
      const auto list = publishing::registry_records(*catalog, request, *publisher,
                                                     hips_maps(*repository, hips, request.base_url()));
      const publishing::Arguments arguments(request.params().begin(), request.params().end());
      auto res = http::Response::text(200, publishing::respond(list, arguments), "text/xml; charset=utf-8");
      // Records follow the services and maps of this moment.
      res.headers.set("Cache-Control", "no-cache");
      return res;
    } catch (const std::exception& e) {
      // A service whose description failed (its tables, its capabilities):
      // a harvester retries later rather than storing half a list.
      spdlog::error("request {}: OAI-PMH: {}", request.request_id(), e.what());
      return http::Response::text(503, "the registry records cannot be made now; try again later\n");
    }
  };
  router.get_post(links::registry_oai(), handler);
}

}  // namespace pixserve::services
