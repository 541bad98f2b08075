#include "dali/directory.hpp"

#include <algorithm>

#include <pugixml.hpp>
#include <spdlog/spdlog.h>

#include "dali/openapi.hpp"
#include "http/headers.hpp"
#include "http/params.hpp"

namespace pixserve::dali {
namespace {

using json = nlohmann::json;

// Collects a streamed body (a service's own capabilities handler may
// stream); the producer runs here, while the request is alive.
class StringWriter final : public http::BodyWriter {
 public:
  bool write(std::string_view bytes) override {
    text.append(bytes);
    return true;
  }
  bool flush() override { return true; }
  std::string text;
};

const std::string* live_value(const RawParams& live, std::string_view name) {
  for (const auto& [k, v] : live) {
    if (http::iequals(k, name)) return &v;
  }
  return nullptr;
}

bool routed_get(const Endpoint& e) {
  return e.binding == Binding::sync && std::find(e.methods.begin(), e.methods.end(), "GET") != e.methods.end();
}

}  // namespace

std::string response_text(const http::Response& response) {
  if (const auto* s = std::get_if<std::string>(&response.body)) return *s;
  StringWriter writer;
  std::get<http::StreamBody>(response.body).producer(writer);
  return std::move(writer.text);
}

std::vector<std::string> capability_standard_ids(std::string_view capabilities_xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(capabilities_xml.data(), capabilities_xml.size())) return {};
  std::vector<std::string> out;
  // Capabilities are children of the root whatever its prefix (vosi:, cap:).
  for (const auto& cap : doc.document_element().children("capability")) {
    if (const auto id = cap.attribute("standardID"); id) out.emplace_back(id.value());
  }
  return out;
}

std::string service_capabilities(const ServiceCatalog& catalog, const Service& service, const http::Request& request) {
  if (!service.capabilities) return capabilities_xml(catalog, service, request.base_url());
  return response_text(service.capabilities(request));
}

std::optional<std::string> example_query(const ServiceCatalog& catalog, const Service& service,
                                         const Endpoint& endpoint, const RawParams& live) {
  if (!routed_get(endpoint)) return std::nullopt;
  std::string query;
  for (const auto& spec : endpoint.params) {
    const auto* value = live_value(live, spec.name);
    const bool wanted = spec.required || value ||
                        std::any_of(endpoint.example_params.begin(), endpoint.example_params.end(),
                                    [&spec](const std::string& n) { return http::iequals(n, spec.name); });
    if (!wanted) continue;
    // An empty live value: the data has none now (an empty repository), and
    // a declared example would only lead to an error.
    if (value && value->empty()) return std::nullopt;
    query += (query.empty() ? "?" : "&") + spec.name + "=" + http::percent_encode(value ? *value : example_value(spec));
  }
  return catalog.path_of(service, endpoint) + query;
}

nlohmann::json services_json(const ServiceCatalog& catalog, const AvailabilityReport& report,
                             const http::Request& request) {
  // The availability in the shape of /api/availability.json, by service.
  const json availability = availability_json(report);
  const auto status_of = [&availability](const std::string& name) -> const json* {
    for (const auto& s : availability["services"]) {
      if (s["name"] == name) return &s;
    }
    return nullptr;
  };
  json services = json::array();
  for (const Service& service : catalog.services()) {
    RawParams live;
    if (service.live_examples) {
      try {
        live = service.live_examples();
      } catch (const std::exception& e) {
        // The declared examples then; the document itself must not fail.
        spdlog::warn("live examples of service {}: {}", service.name, e.what());
      }
    }
    const std::string base = catalog.path_of(service);
    std::vector<std::string> standard_ids;
    try {
      standard_ids = capability_standard_ids(service_capabilities(catalog, service, request));
    } catch (const std::exception& e) {
      spdlog::warn("capabilities of service {}: {}", service.name, e.what());
    }
    json s = {{"name", service.name},
              {"title", service.title},
              {"description", service.description},
              {"path", base},
              {"standard_ids", std::move(standard_ids)},
              {"capabilities_url", base + "/capabilities"},
              {"availability_url", base + "/availability"}};
    if (service.tables) s["tables_url"] = base + "/tables";
    json endpoints = json::array();
    for (const Endpoint& e : service.endpoints) {
      json item = {{"path", catalog.path_of(service, e)},
                   {"summary", e.summary},
                   {"methods", e.methods},
                   {"binding", e.binding == Binding::uws ? "uws" : "sync"}};
      if (!e.standard_id.empty()) item["standard_id"] = e.standard_id;
      if (auto example = example_query(catalog, service, e, live)) {
        if (!s.contains("example")) s["example"] = *example;  // the service's: its first endpoint's
        item["example"] = std::move(*example);
      }
      endpoints.push_back(std::move(item));
    }
    s["endpoints"] = std::move(endpoints);
    if (const json* status = status_of(service.name)) {
      s["available"] = (*status)["available"];
      s["checks"] = (*status)["checks"];
    }
    json resources = json::array();
    if (service.resources) {
      try {
        for (const auto& r : service.resources()) {
          resources.push_back({{"name", r.name}, {"title", r.title}, {"href", r.href}});
        }
      } catch (const std::exception& e) {
        spdlog::warn("resources of service {}: {}", service.name, e.what());
      }
    }
    s["resources"] = std::move(resources);
    services.push_back(std::move(s));
  }
  const auto& opt = catalog.options();
  return {{"title", opt.title},
          {"version", opt.version},
          {"description", opt.description},
          {"available", availability["available"]},
          {"up_since", availability["up_since"]},
          {"checked_at", availability["checked_at"]},
          {"services", std::move(services)}};
}

}  // namespace pixserve::dali
