// The VOResource 1.1 records of a server, made from the same service
// catalogue that routes the services: each record's capabilities are the
// service's VOSI capabilities document and a TAP service's tableset its
// VOSI tables, so a record cannot disagree with what the service says of
// itself. Besides the services: the authority (vg:Authority), the
// organisation (vr:Organisation), the publishing registry itself
// (vg:Registry, with its OAI-PMH harvest capability) and one record per
// HiPS map (HiPS 1.0 capability, with the map's hips_status).
//
// Identifiers: ivo://<authority> (the authority), ivo://<authority>/org,
// ivo://<authority>/registry, ivo://<authority>/<service name>,
// ivo://<authority>/hips/<map> (public tree), ivo://<authority>/hips/full/<map>
// (data-rights tree).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dali/service.hpp"
#include "http/request.hpp"
#include "publishing/oai.hpp"
#include "publishing/settings.hpp"

namespace pixserve::publishing {

inline constexpr std::string_view kSiaQueryStandardId = "ivo://ivoa.net/std/SIA#query-2.0";
inline constexpr std::string_view kHipsStandardId = "ivo://ivoa.net/std/HiPS#hips-1.0";
inline constexpr std::string_view kRegistryStandardId = "ivo://ivoa.net/std/Registry";

// One HiPS tree as it is served.
struct HipsMap {
  std::string name{};        // "deepCoadd-r"
  bool data_rights = false;  // the /api/hips/full/ tree
  std::string title{};       // obs_title
  std::string description{};
  std::string url{};         // absolute URL of the tree (its hips_service_url)
  std::string status{};      // hips_status, as its properties say
  Clock::time_point updated{};
};

// Who publishes, and what the records say of everything.
struct Publisher {
  PublishingSettings settings{};
  std::string authority{};        // the repository's IVOA authority
  std::string repository_name{};  // short names and titles
  Clock::time_point created{};    // when the repository was made
  std::string endpoint_path{};    // of the OAI-PMH endpoint: "/api/registry/oai"
  std::string landing_path = "/";  // referenceURL when reference_url is not set
  std::string hips_service{};      // the catalogue service that serves the HiPS maps ("hips")
  std::string coverage_service{};  // the catalogue service whose record gives the footprint ("moc")
  std::string coverage_path{};     // its footprint URL below the server root ("/api/moc/query?FORMAT=fits")
  std::uint64_t max_records = 0;   // MAXREC's limit, the SIA capability's maxRecords
};

// The records for a request (its base URL makes the access URLs; the TAP
// tables and the capabilities of services that write their own are asked
// of the services with it). The list refers to `catalog` and `request`:
// use it while they and `publisher` live.
RecordList registry_records(const dali::ServiceCatalog& catalog, const http::Request& request,
                            const Publisher& publisher, std::vector<HipsMap> maps);

}  // namespace pixserve::publishing
