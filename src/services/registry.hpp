// The publishing registry: OAI-PMH 2.0 at /api/registry/oai (GET and POST),
// serving the VOResource records of the authority, the organisation, the
// registry itself, every service of the catalogue and every HiPS map
// (publishing/voresource.hpp), so that the IVOA registries can harvest them
// and TOPCAT's and pyvo's registry searches find the services.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dali/service.hpp"
#include "http/router.hpp"
#include "publishing/settings.hpp"
#include "services/hips.hpp"
#include "services/repository_access.hpp"

namespace pixserve::services {

// Install after dali::install (the route sits beside the catalogue's own).
void add_registry_routes(http::Router& router, std::shared_ptr<const dali::ServiceCatalog> catalog,
                         std::shared_ptr<SharedRepository> repository, const HipsOptions& hips,
                         const publishing::PublishingSettings& settings, std::uint64_t max_records);

}  // namespace pixserve::services
