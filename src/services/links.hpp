// Where each service lives, in one place: the catalogue routes a service
// named N at <kApiPrefix>/N and its endpoint E at <kApiPrefix>/N/E
// (dali::ServiceCatalog::path_of), and every link a service writes to
// another (DataLink access URLs, the SODA descriptor, HiPS service URLs, MOC
// IDs, TAP's capabilities, user-image documents) is built here from the same
// names. Renaming a service, or the prefix, moves its routes and every link
// to it together (tests/unit/services_app_test.cpp checks that each link
// path is one the application routes).
#pragma once

#include <string>
#include <string_view>

namespace pixserve::services::links {

inline constexpr std::string_view kApiPrefix = "/api";

// The catalogue's service names.
inline constexpr std::string_view kDatasets = "datasets";
inline constexpr std::string_view kSia = "sia";
inline constexpr std::string_view kDatalink = "datalink";
inline constexpr std::string_view kTap = "tap";
inline constexpr std::string_view kSoda = "soda";
inline constexpr std::string_view kHips = "hips";
inline constexpr std::string_view kMoc = "moc";
inline constexpr std::string_view kPhotometry = "photometry";

// "/api/sia"
inline std::string service(std::string_view name) { return std::string(kApiPrefix) + "/" + std::string(name); }
// "/api/datalink/links"
inline std::string endpoint(std::string_view name, std::string_view path) {
  return service(name) + "/" + std::string(path);
}

// Routes outside the catalogue: dataset files (with /header and
// /preview.png), the user-image API, the publishing registry, the
// full-resolution HiPS trees.
inline std::string files() { return std::string(kApiPrefix) + "/files"; }
inline std::string user_images() { return std::string(kApiPrefix) + "/user/images"; }
// The publishing registry's OAI-PMH endpoint (services/registry.hpp).
inline std::string registry_oai() { return std::string(kApiPrefix) + "/registry/oai"; }
inline std::string hips_map(std::string_view map, bool full) {
  return service(kHips) + (full ? "/full/" : "/") + std::string(map);
}

}  // namespace pixserve::services::links
