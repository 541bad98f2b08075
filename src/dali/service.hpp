// A DALI service declared once. A service (name, title, description) has
// endpoints; an endpoint declares its path, its parameters (ParamSpec), its
// HTTP methods, result MIME types and the capability standardID it
// implements, plus one handler function. From that one declaration come:
//
//   - the routes: /api/<service>/<endpoint>, with parameters parsed and
//     validated before the handler runs and every error answered with a DALI
//     error document (install(), call_endpoint());
//   - the VOSI capabilities and availability documents (vosi.hpp);
//   - DataLink service descriptors (descriptor.hpp);
//   - the OpenAPI document at /openapi.json (openapi.hpp);
//   - its entry in /api/services.json, which the landing page shows, with an
//     example query made from the parameters' examples (directory.hpp);
//   - RESPONSEFORMAT and MAXREC handling for table results (results.hpp).
//
// A new service is a declaration plus one function per endpoint:
//
//   dali::Service sia{.name = "sia", .title = "SIA 2.0 image search", .description = "..."};
//   sia.endpoints.push_back({
//       .path = "query",
//       .summary = "Find images by position, time, band, ...",
//       .params = {pos_spec, band_spec, dali::maxrec_param(limits), dali::responseformat_param()},
//       .standard_id = "ivo://ivoa.net/std/SIA#query-2.0",
//       .interface_version = "2.0",
//       .handler = [](const http::Request& req, const dali::ParsedParams& p) {
//         return dali::table_response(p, limits, {.fields = ..., .rows = ...});
//       }});
//   sia.checks = repository_checks(...);
//   catalog->add(std::move(sia));
//   dali::install(router, catalog);     // after every add()
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "auth/identity.hpp"
#include "dali/params.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "http/router.hpp"

namespace pixserve::dali {

// The parameters have been parsed and validated against the endpoint's
// declaration when the handler runs. A handler reports refusals by throwing
// DaliError (400 bad input, 401/403 rights, 404 unknown ID); anything else it
// throws becomes a 500 whose message only names the request id.
using EndpointHandler = std::function<http::Response(const http::Request&, const ParsedParams&)>;

inline constexpr std::string_view votable_mime = "application/x-votable+xml";

// Resolves the caller of a request (auth::Authenticator::resolve); throws
// auth::AuthError to refuse the credentials. No hook: every caller is
// anonymous.
using IdentifyHook = std::function<auth::Identity(const http::Request&)>;

// How an endpoint is bound to HTTP.
//   sync: install() routes it to its handler (DALI-sync).
//   uws:  an asynchronous job list (DALI-async, UWS 1.1), e.g. SODA's or
//         TAP's /async, whose REST binding (uws/routes.hpp) is installed by
//         the endpoint's install_binding. It is declared in the catalogue so
//         that its capability (accessURL = the job list) and its OpenAPI
//         entry (POST creates a job with the declared parameters) come from
//         the same declaration as its routes; it has no handler.
enum class Binding { sync, uws };

// Installs the routes of a Binding::uws endpoint at `path` (its place in the
// catalogue), with the catalogue's identify hook. uws::add_job_endpoints
// makes it.
using BindingInstaller =
    std::function<void(http::Router& router, const std::string& path, const IdentifyHook& identify)>;

struct Endpoint {
  std::string path{};         // relative to the service ("query"); may contain '/' but no {pattern}
  std::string summary{};      // one line: OpenAPI summary, descriptor and capability description
  std::string description{};  // longer text (OpenAPI description)
  std::vector<ParamSpec> params{};
  std::vector<std::string> methods{"GET", "POST"};
  std::vector<std::string> result_types{std::string(votable_mime)};
  // The capability this endpoint implements, e.g. "ivo://ivoa.net/std/SIA#query-2.0";
  // empty for a pixserve-specific endpoint (its capability then has no
  // standardID and its interface no role="std").
  std::string standard_id{};
  std::string interface_version{};  // the interface's version attribute, e.g. "2.0"
  ParseOptions parse_options{};
  EndpointHandler handler{};  // required for Binding::sync
  Binding binding = Binding::sync;
  BindingInstaller install_binding{};  // Binding::uws: routed by install() when set
  // The standard whose error labels the endpoint's messages carry
  // (dali::error_text), e.g. SODA's "UsageError: ".
  ErrorVocabulary errors = ErrorVocabulary::dali;
  // The parameters of the endpoint's example query (the link the services
  // document and the landing page give) besides the required ones, which it
  // always has: each with its declared example (example_value()), unless the
  // service's live_examples has one from the data.
  std::vector<std::string> example_params{};
};

// One availability check: a real probe of something the service needs
// (database reachable, repository readable, disk space). `note` says what was
// found, for operators; it is published, so it must not leak secrets.
struct CheckResult {
  bool ok = true;
  std::string note{};
};

struct AvailabilityCheck {
  std::string name{};  // e.g. "registry database"
  std::function<CheckResult()> run{};
};

// Something a service offers beyond its endpoints, to be looked at rather
// than queried (a HiPS map in its viewer): listed by the services document.
struct Resource {
  std::string name{};   // e.g. "deepCoadd-gri"
  std::string title{};  // one line for people
  std::string href{};   // relative to the server root: "/web/hips.html?map=deepCoadd-gri"
};

struct Service {
  std::string name{};  // lower-case identifier; the service lives under /api/<name>
  std::string title{};
  std::string description{};
  std::vector<Endpoint> endpoints{};
  std::vector<AvailabilityCheck> checks{};
  // VOSI tables (TAP): when set, /api/<name>/tables is routed to it and the
  // capabilities list VOSI#tables.
  http::Handler tables{};
  // VOSI capabilities written by the service itself, for standards whose
  // capability needs more than the generated one (TAP's TAPRegExt
  // TableAccess): when set, /api/<name>/capabilities is routed to it.
  http::Handler capabilities{};
  // Example values that only the data can give (an ID that exists), asked
  // for when the services document is made: they replace the declared
  // examples in the example queries, and join them when not required, so
  // that every example link answers. Empty: the declared examples.
  std::function<RawParams()> live_examples{};
  // What the service has to look at now (its HiPS maps); empty: nothing.
  std::function<std::vector<Resource>()> resources{};
};

struct CatalogOptions {
  std::string api_prefix = "/api";  // services live under <api_prefix>/<name>
  std::string title = "pixserve";
  std::string version = "0.1.0";
  std::string description = "IVOA image services of a survey";
  std::chrono::system_clock::time_point up_since = std::chrono::system_clock::now();  // VOSI upSince
  // Who is calling, for every endpoint the catalogue routes: the identity
  // reaches handlers as ParsedParams::caller(); refused credentials are
  // answered with 401/403 and a WWW-Authenticate challenge.
  IdentifyHook identify{};
};

// Every service of a server. Built at start-up, then shared read-only by the
// request handlers (install() keeps a shared_ptr to it).
class ServiceCatalog {
 public:
  explicit ServiceCatalog(CatalogOptions options = {});

  // Checks the declaration: a valid, unique service name (not one of the
  // catalogue's own paths), unique endpoint paths, a handler on each
  // endpoint, unique parameter names, and defaults and examples that parse.
  // Throws std::invalid_argument naming the problem.
  void add(Service service);

  const std::vector<Service>& services() const noexcept { return services_; }
  const Service* find(std::string_view name) const noexcept;
  const CatalogOptions& options() const noexcept { return options_; }

  // Paths relative to the server root: "/api/sia", "/api/sia/query".
  std::string path_of(const Service& service) const;
  std::string path_of(const Service& service, const Endpoint& endpoint) const;

 private:
  CatalogOptions options_;
  std::vector<Service> services_;
};

// Registers on `router`, for each service: its endpoints (with their
// methods), GET capabilities and availability (and tables when declared);
// then GET <api>/availability (XML, all services), <api>/availability.json,
// <api>/services.json (services_json()), /openapi.json, and a DALI 404 for
// any other path under <api>.
void install(http::Router& router, std::shared_ptr<const ServiceCatalog> catalog);

// Runs one endpoint as the installed route does: parses the request's
// parameters against the declaration, calls the handler, and turns DaliError
// (and http::HttpError) into a DALI error document with the error's status,
// and any other exception into a 500 naming only the request id.
http::Response call_endpoint(const Endpoint& endpoint, const http::Request& request);
// The same with the caller resolved by `identify` first (empty: anonymous).
http::Response call_endpoint(const Endpoint& endpoint, const http::Request& request, const IdentifyHook& identify);

// The refusal of credentials as a DALI error document with the
// WWW-Authenticate challenge (RFC 6750).
http::Response auth_error_response(const auth::AuthError& error);

// A plain route (not a declared endpoint, e.g. file downloads) that needs
// the caller: resolves it with `identify` (empty: anonymous) and calls
// handler(request, identity); refused credentials become
// auth_error_response, DaliError and http::HttpError their DALI error
// documents (messages labelled in `errors`).
using IdentifiedHandler = std::function<http::Response(const http::Request&, const auth::Identity&)>;
http::Handler with_identity(IdentifyHook identify, IdentifiedHandler handler,
                            ErrorVocabulary errors = ErrorVocabulary::dali);

// A DALI error document (VOTable, QUERY_STATUS=ERROR) as a response with
// Content-Type application/x-votable+xml.
http::Response error_response(int status, std::string_view message);

// The request's parameters as parse_params takes them.
RawParams raw_params(const http::Request& request);

}  // namespace pixserve::dali
