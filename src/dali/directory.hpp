// The directory of a catalogue's services, GET <api>/services.json: for each
// service its name, title, description and path, the standardIDs of its
// VOSI capabilities, its endpoints with an example query, its availability
// and what it has to look at (Service::resources). The landing page (/) is
// drawn from it, so the page lists whatever the catalogue routes.
//
//   {"title", "version", "description", "available", "up_since", "checked_at",
//    "services": [{"name", "title", "description", "path", "standard_ids": [...],
//                  "capabilities_url", "availability_url", ["tables_url"],
//                  "endpoints": [{"path", "summary", "methods", "binding", ["standard_id"], ["example"]}],
//                  ["example"], "available", "checks": [{"name", "ok", "note", "ms"}],
//                  "resources": [{"name", "title", "href"}]}]}
//
// Paths and links are relative to the server root ("/api/sia/query?POS=..."),
// so that a page behind a path prefix can make them relative to itself.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dali/service.hpp"
#include "dali/vosi.hpp"
#include "http/request.hpp"

namespace pixserve::dali {

// The standardIDs of the capabilities of a VOSI capabilities document, in
// document order; empty when it does not parse.
std::vector<std::string> capability_standard_ids(std::string_view capabilities_xml);

// The body of a response as text (a streamed body is produced here, while
// the request it answers is alive).
std::string response_text(const http::Response& response);

// The service's VOSI capabilities document as /api/<name>/capabilities
// serves it for `request` (the service's own handler when it has one).
std::string service_capabilities(const ServiceCatalog& catalog, const Service& service, const http::Request& request);

// The example query of an endpoint: its path with the required parameters
// and Endpoint::example_params, each with its value in `live` (a
// Service::live_examples result; names are case-insensitive) or else its
// declared example. nullopt for an endpoint that is not a GET of its own
// route (UWS job lists, POST-only endpoints), and when `live` gives one of
// its parameters an empty value: the data has none now (an empty
// repository), and the declared example would only lead to an error.
std::optional<std::string> example_query(const ServiceCatalog& catalog, const Service& service,
                                         const Endpoint& endpoint, const RawParams& live = {});

// The document. `report` gives the availability (check_availability of the
// whole catalogue, run once by the caller); `request` the capabilities of
// services that write their own.
nlohmann::json services_json(const ServiceCatalog& catalog, const AvailabilityReport& report,
                             const http::Request& request);

}  // namespace pixserve::dali
