// The availability dashboard:
//   GET /status        an HTML page: one red/green line per service from its
//                      VOSI availability checks, each opening (<details>, no
//                      script) to its checks with notes and timings; inline
//                      CSS only, no external assets; refreshes every 30 s.
//   GET /status.json   the same report as JSON (dali::availability_json)
//   GET /status.xml    the VOSI availability aggregate (as /api/availability)
// HTTP status 200 whether up or not (the documents say so), as VOSI does.
#pragma once

#include <memory>
#include <string>

#include "dali/service.hpp"
#include "dali/vosi.hpp"
#include "http/router.hpp"

namespace pixserve::services {

// The page for a report (exposed for tests).
std::string status_html(const dali::ServiceCatalog& catalog, const dali::AvailabilityReport& report);

void add_status_routes(http::Router& router, std::shared_ptr<const dali::ServiceCatalog> catalog);

}  // namespace pixserve::services
