#include "dali/service.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "dali/directory.hpp"
#include "dali/openapi.hpp"
#include "dali/vosi.hpp"
#include "db/database.hpp"
#include "http/headers.hpp"
#include "votable/writer.hpp"

namespace pixserve::dali {
namespace {

// Paths the catalogue itself uses under the API prefix.
constexpr std::array<std::string_view, 3> kReservedNames{"availability", "availability.json", "services.json"};
// Endpoint paths the catalogue adds to every service.
constexpr std::array<std::string_view, 3> kVosiPaths{"capabilities", "availability", "tables"};

bool valid_service_name(std::string_view name) {
  return !name.empty() && name.size() <= 40 && std::isalpha(static_cast<unsigned char>(name.front())) &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
         });
}

bool valid_endpoint_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/') return false;
  if (path.find("//") != std::string_view::npos) return false;
  return std::all_of(path.begin(), path.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '/';
  });
}

void check_endpoint(const Service& service, const Endpoint& e) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument(fmt::format("service {}: endpoint '{}': {}", service.name, e.path, why));
  };
  if (!valid_endpoint_path(e.path)) throw bad("invalid path (letters, digits, - _ . and inner '/')");
  if (std::find(kVosiPaths.begin(), kVosiPaths.end(), e.path) != kVosiPaths.end()) throw bad("path reserved for VOSI");
  if (!e.handler && e.binding == Binding::sync) throw bad("no handler");
  if (e.methods.empty()) throw bad("no HTTP method");
  if (e.result_types.empty()) throw bad("no result MIME type");
  std::set<std::string> names;
  for (const auto& p : e.params) {
    if (p.name.empty()) throw bad("a parameter without a name");
    if (!names.insert(http::ascii_lower(p.name)).second) throw bad("parameter " + p.name + " declared twice");
    if (p.type == ParamType::enumerated && p.options.empty()) throw bad("enumerated parameter " + p.name + " without options");
    try {
      if (p.default_value) parse_value(p, *p.default_value);
      if (!p.example.empty()) parse_value(p, p.example);
    } catch (const DaliError& err) {
      throw bad(std::string("default or example does not parse: ") + err.what());
    }
  }
  for (const auto& name : e.example_params) {
    if (!names.contains(http::ascii_lower(name))) throw bad("example parameter " + name + " is not declared");
  }
}

http::Response xml_response(std::string body) {
  return http::Response::text(200, std::move(body), "text/xml; charset=utf-8");
}

}  // namespace

RawParams raw_params(const http::Request& request) {
  return RawParams(request.params().begin(), request.params().end());
}

http::Response error_response(int status, std::string_view message) {
  std::string body;
  votable::write_error_document([&body](std::string_view chunk) { body.append(chunk); }, message);
  return http::Response::text(status, std::move(body), std::string(votable_mime));
}

http::Response auth_error_response(const auth::AuthError& error) {
  auto res = error_response(error.status(), error.what());
  res.headers.set("WWW-Authenticate", error.challenge());
  res.headers.set("Cache-Control", "no-store");
  return res;
}

namespace {

http::Response unavailable_response(const ServiceUnavailable& error, ErrorVocabulary errors) {
  auto res = error_response(503, error_text(error, errors));
  res.headers.set("Retry-After", std::to_string(error.retry_after_s()));
  return res;
}

}  // namespace

// The answer to the exception being handled, for every DALI endpoint: the
// one place where a typed error becomes its status and document.
http::Response current_error_response(const http::Request& request, ErrorVocabulary errors) {
  try {
    throw;
  } catch (const auth::AuthError& e) {
    return auth_error_response(e);
  } catch (const ServiceUnavailable& e) {
    spdlog::warn("request id={} service unavailable: {}", request.request_id(), e.what());
    return unavailable_response(e, errors);
  } catch (const db::Unavailable& e) {
    // Wherever it met the database (the registry, the token of the caller):
    // the client is told without the internals, the log says where.
    spdlog::warn("request id={} {}", request.request_id(), e.what());
    return unavailable_response(database_unavailable(), errors);
  } catch (const ServerFault& e) {
    spdlog::error("request id={} server fault: {}", request.request_id(), e.what());
    return error_response(500, fmt::format("{} (request id {})", error_text(e, errors), request.request_id()));
  } catch (const DaliError& e) {
    const int status = e.status() >= 400 && e.status() <= 599 ? e.status() : 500;
    if (status >= 500) spdlog::error("request id={} service error: {}", request.request_id(), e.what());
    return error_response(status, status >= 500 ? "internal error, request id " + request.request_id()
                                                : error_text(e, errors));
  } catch (const http::HttpError& e) {
    const int status = e.status() >= 400 && e.status() <= 499 ? e.status() : 500;
    if (status >= 500) spdlog::error("request id={} failed: {}", request.request_id(), e.what());
    return error_response(status, status >= 500 ? "internal error, request id " + request.request_id()
                                                : error_text(DaliError(status, e.what()), errors));
  } catch (const std::exception& e) {
    // Never shown to the client: it may hold paths, SQL or other internals.
    spdlog::error("request id={} failed: {}", request.request_id(), e.what());
    return error_response(500, "internal error, request id " + request.request_id());
  }
}

http::Handler with_identity(IdentifyHook identify, IdentifiedHandler handler, ErrorVocabulary errors) {
  return [identify = std::move(identify), handler = std::move(handler), errors](const http::Request& request) {
    try {
      const auth::Identity who = identify ? identify(request) : auth::Identity{};
      return handler(request, who);
    } catch (...) {
      return current_error_response(request, errors);
    }
  };
}

http::Response call_endpoint(const Endpoint& endpoint, const http::Request& request) {
  return call_endpoint(endpoint, request, IdentifyHook{});
}

http::Response call_endpoint(const Endpoint& endpoint, const http::Request& request, const IdentifyHook& identify) {
  try {
    auth::Identity caller = identify ? identify(request) : auth::Identity{};
    ParsedParams params = parse_params(endpoint.params, raw_params(request), endpoint.parse_options);
    params.set_caller(std::move(caller));
    return endpoint.handler(request, params);
  } catch (...) {
    return current_error_response(request, endpoint.errors);
  }
}

ServiceCatalog::ServiceCatalog(CatalogOptions options) : options_(std::move(options)) {
  while (!options_.api_prefix.empty() && options_.api_prefix.back() == '/') options_.api_prefix.pop_back();
  if (options_.api_prefix.empty() || options_.api_prefix.front() != '/') {
    throw std::invalid_argument("service catalogue: api_prefix must be a path like /api");
  }
}

void ServiceCatalog::add(Service service) {
  if (!valid_service_name(service.name)) {
    throw std::invalid_argument(fmt::format("service '{}': names are lower-case letters, digits, - and _", service.name));
  }
  if (std::find(kReservedNames.begin(), kReservedNames.end(), service.name) != kReservedNames.end()) {
    throw std::invalid_argument(fmt::format("service '{}': the name is reserved", service.name));
  }
  if (find(service.name)) throw std::invalid_argument(fmt::format("service '{}' added twice", service.name));
  std::set<std::string> paths;
  for (const auto& e : service.endpoints) {
    check_endpoint(service, e);
    if (!paths.insert(e.path).second) {
      throw std::invalid_argument(fmt::format("service {}: endpoint '{}' declared twice", service.name, e.path));
    }
  }
  for (const auto& c : service.checks) {
    if (c.name.empty() || !c.run) throw std::invalid_argument(fmt::format("service {}: availability check without name or function", service.name));
  }
  services_.push_back(std::move(service));
}

const Service* ServiceCatalog::find(std::string_view name) const noexcept {
  for (const auto& s : services_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string ServiceCatalog::path_of(const Service& service) const { return options_.api_prefix + "/" + service.name; }

std::string ServiceCatalog::path_of(const Service& service, const Endpoint& endpoint) const {
  return path_of(service) + "/" + endpoint.path;
}

void install(http::Router& router, std::shared_ptr<const ServiceCatalog> catalog) {
  if (!catalog) throw std::invalid_argument("dali::install: no catalogue");
  // Handlers refer to services and endpoints inside the catalogue, which
  // every handler keeps alive through its shared_ptr and which is never
  // modified after install().
  for (const Service& service : catalog->services()) {
    const Service* s = &service;
    for (const Endpoint& endpoint : service.endpoints) {
      if (endpoint.binding != Binding::sync) {
        if (endpoint.install_binding) {
          // The binding (UWS) answers its own errors, but not a database
          // that is away: that answer is the same for every endpoint.
          http::Router binding;
          endpoint.install_binding(binding, catalog->path_of(service, endpoint), catalog->options().identify);
          router.include(binding, [errors = endpoint.errors](http::Handler handler) -> http::Handler {
            return [handler = std::move(handler), errors](const http::Request& request) {
              try {
                return handler(request);
              } catch (const db::Unavailable& e) {
                spdlog::warn("request id={} {}", request.request_id(), e.what());
                return unavailable_response(database_unavailable(), errors);
              }
            };
          });
        }
        continue;
      }
      const Endpoint* e = &endpoint;
      router.add(endpoint.methods, catalog->path_of(service, endpoint),
                 [catalog, e](const http::Request& request) {
                   return call_endpoint(*e, request, catalog->options().identify);
                 });
    }
    if (service.capabilities) {
      router.get(catalog->path_of(service) + "/capabilities", service.capabilities);
    } else {
      router.get(catalog->path_of(service) + "/capabilities", [catalog, s](const http::Request& request) {
        return xml_response(capabilities_xml(*catalog, *s, request.base_url()));
      });
    }
    router.get(catalog->path_of(service) + "/availability", [catalog, s](const http::Request&) {
      // VOSI: the document says whether the service is up; the HTTP status
      // stays 200 either way.
      return xml_response(availability_xml(check_availability(*catalog, *s)));
    });
    if (service.tables) {
      router.get(catalog->path_of(service) + "/tables", [catalog, s](const http::Request& request) {
        try {
          return s->tables(request);
        } catch (const DaliError& e) {
          return error_response(e.status() >= 400 && e.status() <= 499 ? e.status() : 500, e.what());
        }
      });
    }
  }
  const std::string api = catalog->options().api_prefix;
  router.get(api + "/availability", [catalog](const http::Request&) {
    return xml_response(availability_xml(check_availability(*catalog)));
  });
  router.get(api + "/availability.json", [catalog](const http::Request&) {
    auto res = http::Response::text(200, availability_json(check_availability(*catalog)).dump(1) + "\n",
                                    "application/json");
    res.headers.set("Cache-Control", "no-store");
    return res;
  });
  router.get(api + "/services.json", [catalog](const http::Request& request) {
    auto res = http::Response::text(200, services_json(*catalog, check_availability(*catalog), request).dump(1) + "\n",
                                    "application/json");
    // It carries the availability, which is checked anew each time.
    res.headers.set("Cache-Control", "no-store");
    return res;
  });
  router.get("/openapi.json", [catalog](const http::Request& request) {
    return http::Response::text(200, openapi_document(*catalog, request.base_url()).dump(1) + "\n", "application/json");
  });
  // Anything else under the API: a DALI error document rather than the
  // router's plain-text 404, so VO clients can show the message. This route
  // also catches GET/POST on an endpoint that takes only the other method:
  // those get a 405 with Allow.
  std::vector<std::pair<std::string, std::vector<std::string>>> known;
  for (const Service& service : catalog->services()) {
    for (const Endpoint& endpoint : service.endpoints) {
      if (endpoint.binding == Binding::sync) known.emplace_back(catalog->path_of(service, endpoint), endpoint.methods);
    }
  }
  router.add({"GET", "POST"}, api + "/{rest...}", [known = std::move(known)](const http::Request& request) {
    for (const auto& [path, methods] : known) {
      if (path != request.path()) continue;
      std::string allow;
      for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
      auto res = error_response(405, fmt::format("{} does not accept {}; use {}", path, request.method(), allow));
      res.headers.set("Allow", allow);
      return res;
    }
    return error_response(404, fmt::format("no such endpoint: {}", request.path().substr(0, 200)));
  });
}

}  // namespace pixserve::dali
