#include "dali/vosi.hpp"

#include <cmath>
#include <ctime>
#include <sstream>

#include <fmt/format.h>
#include <pugixml.hpp>
#include <spdlog/spdlog.h>

namespace pixserve::dali {
namespace {

constexpr std::string_view kVosiCapabilitiesId = "ivo://ivoa.net/std/VOSI#capabilities";
constexpr std::string_view kVosiAvailabilityId = "ivo://ivoa.net/std/VOSI#availability";
constexpr std::string_view kVosiTablesId = "ivo://ivoa.net/std/VOSI#tables";

pugi::xml_document new_document() {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  return doc;
}

// VODataService 1.1 SimpleDataType: integer, real, complex, boolean, char,
// string, with an arraysize.
std::pair<std::string_view, std::string_view> simple_type_of(const ParamSpec& spec) {
  switch (spec.type) {
    case ParamType::boolean: return {"boolean", ""};
    case ParamType::integer: return {"integer", ""};
    case ParamType::real: return {"real", ""};
    case ParamType::interval:
    case ParamType::point: return {"real", "2"};
    case ParamType::circle: return {"real", "3"};
    case ParamType::polygon: return {"real", "*"};
    case ParamType::text:
    case ParamType::enumerated:
    case ParamType::timestamp:
    case ParamType::shape: return {"string", ""};
  }
  return {"string", ""};
}

void param_element(pugi::xml_node interface, const ParamSpec& spec) {
  auto p = interface.append_child("param");
  if (spec.required) p.append_attribute("use") = "required";
  p.append_attribute("std") = spec.standard ? "true" : "false";
  text_element(p, "name", spec.name);
  if (!spec.description.empty()) text_element(p, "description", spec.description);
  if (!spec.unit.empty()) text_element(p, "unit", spec.unit);
  if (!spec.ucd.empty()) text_element(p, "ucd", spec.ucd);
  const auto [type, arraysize] = simple_type_of(spec);
  auto dt = p.append_child("dataType");
  if (!arraysize.empty()) dt.append_attribute("arraysize") = std::string(arraysize).c_str();
  dt.text().set(std::string(type).c_str());
}

void vosi_capability(pugi::xml_node root, std::string_view standard_id, const std::string& url) {
  auto cap = root.append_child("capability");
  cap.append_attribute("standardID") = std::string(standard_id).c_str();
  interface_element(cap, true, "1.1", url, "full");
}

std::string summary_of(const Service& service, const Endpoint& e) {
  return e.summary.empty() ? service.title : e.summary;
}

}  // namespace

pugi::xml_node interface_element(pugi::xml_node capability, bool standard, std::string_view version,
                                 std::string_view access_url, std::string_view use, std::string_view type) {
  auto i = capability.append_child("interface");
  i.append_attribute("xsi:type") = std::string(type).c_str();
  if (standard) i.append_attribute("role") = "std";
  if (!version.empty()) i.append_attribute("version") = std::string(version).c_str();
  auto a = i.append_child("accessURL");
  a.append_attribute("use") = std::string(use).c_str();
  a.text().set(std::string(access_url).c_str());
  return i;
}

std::string to_xml(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, " ", pugi::format_indent, pugi::encoding_utf8);
  return out.str();
}

void text_element(pugi::xml_node parent, const char* name, std::string_view text) {
  parent.append_child(name).text().set(std::string(text).c_str());
}

std::string iso_utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec);
}

std::string capabilities_xml(const ServiceCatalog& catalog, const Service& service, std::string_view base_url) {
  auto doc = new_document();
  auto root = doc.append_child("vosi:capabilities");
  root.append_attribute("xmlns:vosi") = std::string(vosi_capabilities_ns).c_str();
  root.append_attribute("xmlns:vs") = std::string(vodataservice_ns).c_str();
  root.append_attribute("xmlns:xsi") = std::string(xsi_ns).c_str();

  const std::string base = std::string(base_url) + catalog.path_of(service);
  vosi_capability(root, kVosiCapabilitiesId, base + "/capabilities");
  vosi_capability(root, kVosiAvailabilityId, base + "/availability");
  if (service.tables) vosi_capability(root, kVosiTablesId, base + "/tables");

  for (const Endpoint& e : service.endpoints) {
    // Endpoints implementing the same standard share one capability.
    pugi::xml_node cap;
    if (!e.standard_id.empty()) {
      cap = root.find_child_by_attribute("capability", "standardID", e.standard_id.c_str());
    }
    if (!cap) {
      cap = root.append_child("capability");
      if (!e.standard_id.empty()) cap.append_attribute("standardID") = e.standard_id.c_str();
      text_element(cap, "description", summary_of(service, e));
    }
    auto i = interface_element(cap, !e.standard_id.empty(), e.interface_version,
                               std::string(base_url) + catalog.path_of(service, e), "base");
    for (const auto& m : e.methods) {
      if (m == "GET" || m == "POST") text_element(i, "queryType", m);
    }
    // ParamHTTP allows one resultType: the primary (first) one.
    text_element(i, "resultType", e.result_types.front());
    for (const auto& p : e.params) param_element(i, p);
  }
  return to_xml(doc);
}

AvailabilityReport check_availability(const ServiceCatalog& catalog, const Service& service) {
  AvailabilityReport report;
  report.up_since = catalog.options().up_since;
  ServiceStatus status{.service = service.name, .available = true, .checks = {}};
  for (const auto& check : service.checks) {
    CheckOutcome outcome{.name = check.name, .ok = false, .note = {}, .ms = 0.0};
    const auto start = std::chrono::steady_clock::now();
    try {
      const CheckResult r = check.run();
      outcome.ok = r.ok;
      outcome.note = r.note;
    } catch (const std::exception& e) {
      spdlog::warn("availability check '{}' of service {} threw: {}", check.name, service.name, e.what());
      outcome.note = "the check failed unexpectedly (see the server log)";
    } catch (...) {
      spdlog::warn("availability check '{}' of service {} threw a non-standard exception", check.name, service.name);
      outcome.note = "the check failed unexpectedly (see the server log)";
    }
    outcome.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    status.available = status.available && outcome.ok;
    status.checks.push_back(std::move(outcome));
  }
  report.available = status.available;
  report.services.push_back(std::move(status));
  return report;
}

AvailabilityReport check_availability(const ServiceCatalog& catalog) {
  AvailabilityReport report;
  report.up_since = catalog.options().up_since;
  for (const auto& service : catalog.services()) {
    auto one = check_availability(catalog, service);
    report.available = report.available && one.available;
    for (auto& s : one.services) report.services.push_back(std::move(s));
  }
  return report;
}

std::string availability_xml(const AvailabilityReport& report) {
  auto doc = new_document();
  auto root = doc.append_child("avail:availability");
  root.append_attribute("xmlns:avail") = std::string(vosi_availability_ns).c_str();
  text_element(root, "avail:available", report.available ? "true" : "false");
  text_element(root, "avail:upSince", iso_utc(report.up_since));
  const bool several = report.services.size() > 1;
  for (const auto& s : report.services) {
    const std::string prefix = several ? s.service + ": " : "";
    if (s.checks.empty()) text_element(root, "avail:note", prefix + "no checks; serving");
    for (const auto& c : s.checks) {
      text_element(root, "avail:note",
                   fmt::format("{}{}: {}{}{}", prefix, c.name, c.ok ? "ok" : "FAILED", c.note.empty() ? "" : " - ", c.note));
    }
  }
  if (report.services.empty()) text_element(root, "avail:note", "no services declared");
  return to_xml(doc);
}

nlohmann::json availability_json(const AvailabilityReport& report) {
  nlohmann::json services = nlohmann::json::array();
  for (const auto& s : report.services) {
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : s.checks) {
      checks.push_back({{"name", c.name}, {"ok", c.ok}, {"note", c.note}, {"ms", std::round(c.ms * 1000.0) / 1000.0}});
    }
    services.push_back({{"name", s.service}, {"available", s.available}, {"checks", std::move(checks)}});
  }
  return {{"available", report.available},
          {"up_since", iso_utc(report.up_since)},
          {"checked_at", iso_utc(std::chrono::system_clock::now())},
          {"services", std::move(services)}};
}

}  // namespace pixserve::dali
