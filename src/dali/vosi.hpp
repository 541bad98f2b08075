// VOSI 1.1 documents of the services in a catalogue: capabilities (one
// capability per endpoint standardID plus the VOSI ones, with ParamHTTP
// interfaces listing every declared parameter) and availability (from the
// services' real checks).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include "dali/service.hpp"

namespace pixserve::dali {

inline constexpr std::string_view vosi_capabilities_ns = "http://www.ivoa.net/xml/VOSICapabilities/v1.0";
inline constexpr std::string_view vosi_availability_ns = "http://www.ivoa.net/xml/VOSIAvailability/v1.0";
inline constexpr std::string_view vodataservice_ns = "http://www.ivoa.net/xml/VODataService/v1.1";
inline constexpr std::string_view xsi_ns = "http://www.w3.org/2001/XMLSchema-instance";
// The registry's (VOResource and its extensions), for capabilities and the
// publishing registry's records.
inline constexpr std::string_view voresource_ns = "http://www.ivoa.net/xml/VOResource/v1.0";
inline constexpr std::string_view registry_interface_ns = "http://www.ivoa.net/xml/RegistryInterface/v1.0";
inline constexpr std::string_view voregistry_ns = "http://www.ivoa.net/xml/VORegistry/v1.0";
inline constexpr std::string_view tapregext_ns = "http://www.ivoa.net/xml/TAPRegExt/v1.0";
inline constexpr std::string_view sia_ns = "http://www.ivoa.net/xml/SIA/v1.1";

// An XML document as text: UTF-8, indented one space per level (every VOSI
// and TAP document pixserve writes).
std::string to_xml(const pugi::xml_document& doc);
// Appends <name>text</name> to parent.
void text_element(pugi::xml_node parent, const char* name, std::string_view text);

// Appends a capability's <interface> of xsi:type `type` (VODataService's
// ParamHTTP unless said), role="std" when it implements the capability's
// standard, its version when given, and its <accessURL use="..."> (base:
// the endpoint a client adds its parameters to; full: the whole URL).
pugi::xml_node interface_element(pugi::xml_node capability, bool standard, std::string_view version,
                                 std::string_view access_url, std::string_view use,
                                 std::string_view type = "vs:ParamHTTP");

// <vosi:capabilities> for one service. base_url is the server's public URL
// (http::Request::base_url()); every accessURL is absolute.
std::string capabilities_xml(const ServiceCatalog& catalog, const Service& service, std::string_view base_url);

struct CheckOutcome {
  std::string name;
  bool ok = true;
  std::string note;
  double ms = 0.0;  // how long the check took
};

struct ServiceStatus {
  std::string service;
  bool available = true;
  std::vector<CheckOutcome> checks;
};

struct AvailabilityReport {
  bool available = true;  // every check of every service passed
  std::chrono::system_clock::time_point up_since{};
  std::vector<ServiceStatus> services;
};

// Runs the service's checks now. A check that throws counts as failed; its
// message is logged, not published.
AvailabilityReport check_availability(const ServiceCatalog& catalog, const Service& service);
// All services of the catalogue.
AvailabilityReport check_availability(const ServiceCatalog& catalog);

// <avail:availability> with available, upSince and one note per check (and
// per service when the report covers several).
std::string availability_xml(const AvailabilityReport& report);
// The same as JSON, for dashboards:
// {"available": true, "up_since": "...", "services": [{"name", "available", "checks": [{"name", "ok", "note", "ms"}]}]}
nlohmann::json availability_json(const AvailabilityReport& report);

// ISO 8601 UTC with a 'Z', second precision: "2024-05-01T12:00:00Z".
std::string iso_utc(std::chrono::system_clock::time_point t);

}  // namespace pixserve::dali
