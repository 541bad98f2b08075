#include "dali/openapi.hpp"

#include <fmt/format.h>


namespace pixserve::dali {
namespace {

using json = nlohmann::json;

std::string operation_id(const Service& service, std::string_view path, std::string_view method) {
  std::string id = service.name + "_";
  for (const char c : path) id += (c == '/' || c == '.' || c == '-') ? '_' : c;
  return id + "_" + std::string(method);
}

// The default as a JSON value of the schema's type.
json typed_default(const ParamSpec& spec, const std::string& text) {
  try {
    const Value v = parse_value(spec, text);
    if (const auto* b = std::get_if<bool>(&v)) return *b;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (const auto* d = std::get_if<double>(&v)) return *d;
  } catch (const DaliError&) {
    // ServiceCatalog::add() checked it; keep the text in any case.
  }
  return text;
}

std::string describe(const ParamSpec& spec) {
  std::string out = spec.description;
  const auto add = [&out](const std::string& s) { out += (out.empty() ? "" : "\n\n") + s; };
  add(fmt::format("DALI type: {} — {}.", to_string(spec.type), dali_format_description(spec.type)));
  if (spec.type == ParamType::enumerated && !spec.options.empty()) {
    std::string list;
    for (const auto& o : spec.options) list += (list.empty() ? "" : ", ") + o;
    add("Allowed values: " + list + ".");
  }
  if (!spec.unit.empty()) add("Unit: " + spec.unit + ".");
  if (spec.min || spec.max) {
    add(fmt::format("Range: {} to {}.", spec.min ? fmt::format("{}", *spec.min) : std::string("-Inf"),
                    spec.max ? fmt::format("{}", *spec.max) : std::string("+Inf")));
  }
  if (spec.multiple) add("Repeatable: give the parameter several times; the values are OR'ed.");
  if (spec.default_value) add("Default: " + *spec.default_value + ".");
  add("Example: `" + example_value(spec) + "`. Parameter names are case-insensitive, values case-sensitive.");
  return out;
}

// Extensions carrying the DALI metadata the schema cannot express.
void add_extensions(json& target, const ParamSpec& spec) {
  target["x-dali-type"] = std::string(to_string(spec.type));
  if (const auto xtype = xtype_of(spec); !xtype.empty()) target["x-dali-xtype"] = std::string(xtype);
  if (!spec.unit.empty()) target["x-unit"] = spec.unit;
  if (!spec.ucd.empty()) target["x-ucd"] = spec.ucd;
  target["x-dali-standard"] = spec.standard;
}

json property_schema(const ParamSpec& spec) {
  json schema = value_schema(spec);
  if (spec.default_value) schema["default"] = typed_default(spec, *spec.default_value);
  if (!spec.multiple) {
    schema["description"] = describe(spec);
    return schema;
  }
  json array = {{"type", "array"}, {"items", schema}, {"description", describe(spec)}};
  return array;
}

json example_of(const ParamSpec& spec) {
  json one = typed_default(spec, example_value(spec));
  if (spec.multiple) return json::array({one});
  return one;
}

json query_parameter(const ParamSpec& spec) {
  json p = {{"name", spec.name},
            {"in", "query"},
            {"description", describe(spec)},
            {"required", spec.required},
            {"schema", spec.multiple ? json{{"type", "array"}, {"items", value_schema(spec)}} : value_schema(spec)}};
  // Swagger UI pre-fills "try it out" with examples: only for required
  // parameters, so that a trial query is not AND'ed down to nothing. Every
  // description shows an example.
  if (spec.required) p["example"] = example_of(spec);
  if (spec.default_value && !spec.multiple) p["schema"]["default"] = typed_default(spec, *spec.default_value);
  if (spec.multiple) {
    p["style"] = "form";
    p["explode"] = true;
  }
  add_extensions(p, spec);
  return p;
}

json form_body(const Endpoint& e) {
  json properties = json::object();
  json required = json::array();
  json encoding = json::object();
  for (const auto& spec : e.params) {
    properties[spec.name] = property_schema(spec);
    if (spec.required) required.push_back(spec.name);
    if (spec.multiple) encoding[spec.name] = {{"style", "form"}, {"explode", true}};
  }
  json schema = {{"type", "object"}, {"properties", properties}};
  if (!required.empty()) schema["required"] = required;
  json urlencoded = {{"schema", schema}};
  if (!encoding.empty()) urlencoded["encoding"] = encoding;
  return {{"description", "The same parameters as the GET query string, as an HTML form (DALI allows both encodings)."},
          {"required", false},
          {"content", {{"application/x-www-form-urlencoded", urlencoded}, {"multipart/form-data", {{"schema", schema}}}}}};
}

json result_responses(const Endpoint& e) {
  json content = json::object();
  for (const auto& type : e.result_types) content[type] = {{"schema", {{"type", "string"}}}};
  return {{"200", {{"description", "The result (the format follows RESPONSEFORMAT where the endpoint has it)."},
                   {"content", content}}},
          {"400", {{"$ref", "#/components/responses/BadRequest"}}},
          {"404", {{"$ref", "#/components/responses/NotFound"}}},
          {"500", {{"$ref", "#/components/responses/InternalError"}}}};
}

// A UWS job list (DALI-async): POST creates a job with the declared
// parameters (303 to the job), GET lists the caller's jobs. The job
// resources below it follow UWS 1.1.
json uws_job_list_item(const Service& service, const Endpoint& e) {
  json post = {{"tags", {service.name}},
               {"summary", e.summary + " (creates an asynchronous UWS 1.1 job)"},
               {"description", (e.description.empty() ? e.summary : e.description) +
                                   "\n\nUWS 1.1: the parameters create a job (PHASE=RUN also starts it) and the "
                                   "response redirects to it; the job's phase, results and error are resources "
                                   "under the job URL."},
               {"operationId", operation_id(service, e.path, "post")},
               {"requestBody", form_body(e)},
               {"responses",
                {{"303", {{"description", "The job was created; Location is its URL."}}},
                 {"400", {{"description", "Invalid parameters (text/plain message)."}}},
                 {"503", {{"description", "The job queue is full; retry later."}}}}}};
  if (!e.standard_id.empty()) post["x-ivoa-standard-id"] = e.standard_id;
  json get = {{"tags", {service.name}},
              {"summary", "The caller's jobs (UWS 1.1 job list; filters PHASE, AFTER, LAST)"},
              {"operationId", operation_id(service, e.path, "get")},
              {"responses",
               {{"200", {{"description", "UWS job list"}, {"content", {{"text/xml", {{"schema", {{"type", "string"}}}}}}}}}}}};
  return {{"post", post}, {"get", get}};
}

json xml_get(const Service& service, std::string_view path, std::string summary, std::string description) {
  return {{"get",
           {{"tags", {service.name}},
            {"summary", std::move(summary)},
            {"description", std::move(description)},
            {"operationId", operation_id(service, path, "get")},
            {"responses", {{"200", {{"description", "VOSI XML document"}, {"content", {{"text/xml", {{"schema", {{"type", "string"}}}}}}}}}}}}}};
}

json error_response_object(std::string description) {
  return {{"description", std::move(description)},
          {"content",
           {{std::string(votable_mime),
             {{"schema", {{"type", "string"}}},
              {"example",
               "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VOTABLE version=\"1.4\" "
               "xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\">\n <RESOURCE type=\"results\">\n  <INFO "
               "name=\"QUERY_STATUS\" value=\"ERROR\">POS: 'CIRCLE 10' ...</INFO>\n </RESOURCE>\n</VOTABLE>\n"}}}}}};
}

}  // namespace

std::string_view dali_format_description(ParamType type) {
  switch (type) {
    case ParamType::boolean: return "true or false";
    case ParamType::integer: return "a decimal integer";
    case ParamType::real: return "a decimal number such as 1.5 or 4.8e-7 (no NaN, no infinities)";
    case ParamType::text: return "text";
    case ParamType::enumerated: return "one of the listed values (case-sensitive)";
    case ParamType::timestamp: return "a DALI timestamp YYYY-MM-DD['T'hh:mm:ss[.SSS]]['Z'], UTC";
    case ParamType::interval:
      return "two numbers 'lo hi' separated by a space, -Inf or +Inf for an open end; one number means lo = hi";
    case ParamType::point: return "'ra dec': two numbers in degrees (ICRS) separated by a space";
    case ParamType::circle: return "'ra dec radius': three numbers in degrees (ICRS) separated by spaces";
    case ParamType::polygon:
      return "'ra1 dec1 ra2 dec2 ra3 dec3 ...': at least 3 vertices in degrees (ICRS), edges are great circles";
    case ParamType::shape:
      return "'CIRCLE ra dec radius', 'RANGE ra1 ra2 dec1 dec2' (-Inf/+Inf allowed) or 'POLYGON ra1 dec1 ra2 dec2 ra3 "
             "dec3 ...', degrees (ICRS)";
  }
  return "text";
}

std::string example_value(const ParamSpec& spec) {
  if (!spec.example.empty()) return spec.example;
  if (!spec.options.empty()) return spec.options.front();
  std::string guess;
  switch (spec.type) {
    case ParamType::boolean: guess = "true"; break;
    case ParamType::integer: guess = spec.min ? fmt::format("{}", static_cast<std::int64_t>(*spec.min)) : "1"; break;
    case ParamType::real: guess = spec.min ? fmt::format("{}", *spec.min) : "1.0"; break;
    case ParamType::text: guess = "text"; break;
    case ParamType::enumerated: guess = ""; break;
    case ParamType::timestamp: guess = "2024-01-01T00:00:00"; break;
    case ParamType::interval: guess = spec.min ? fmt::format("{} +Inf", *spec.min) : "0 1"; break;
    case ParamType::point: guess = "10.0 -30.0"; break;
    case ParamType::circle: guess = "10.0 -30.0 0.5"; break;
    case ParamType::polygon: guess = "10.0 -30.0 11.0 -30.0 11.0 -29.0"; break;
    case ParamType::shape: guess = "CIRCLE 10.0 -30.0 0.5"; break;
  }
  if (spec.default_value) guess = *spec.default_value;
  return guess;
}

nlohmann::json value_schema(const ParamSpec& spec) {
  json s;
  switch (spec.type) {
    case ParamType::boolean: s = {{"type", "boolean"}}; break;
    case ParamType::integer:
      s = {{"type", "integer"}, {"format", "int64"}};
      if (spec.min) s["minimum"] = static_cast<std::int64_t>(*spec.min);
      if (spec.max) s["maximum"] = static_cast<std::int64_t>(*spec.max);
      break;
    case ParamType::real:
      s = {{"type", "number"}, {"format", "double"}};
      if (spec.min) s["minimum"] = *spec.min;
      if (spec.max) s["maximum"] = *spec.max;
      break;
    case ParamType::text:
    case ParamType::enumerated:
      s = {{"type", "string"}};
      if (!spec.options.empty()) s["enum"] = spec.options;
      break;
    case ParamType::timestamp:
      s = {{"type", "string"},
           {"pattern", R"(^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?)?Z?$)"}};
      break;
    case ParamType::interval:
    case ParamType::point:
    case ParamType::circle:
    case ParamType::polygon:
    case ParamType::shape: s = {{"type", "string"}}; break;
  }
  return s;
}

nlohmann::json openapi_document(const ServiceCatalog& catalog, std::string_view base_url) {
  const auto& opt = catalog.options();
  json doc = {{"openapi", std::string(openapi_version)},
              {"info",
               {{"title", opt.title},
                {"version", opt.version},
                {"description",
                 opt.description +
                     "\n\nAll query endpoints follow DALI 1.1: GET and POST (form-urlencoded or multipart) are "
                     "equivalent, parameter names are case-insensitive and values case-sensitive, repeated "
                     "parameters are kept, and errors are VOTable documents with INFO QUERY_STATUS=ERROR."}}},
              {"servers", json::array({{{"url", std::string(base_url)}}})}};
  json tags = json::array();
  json paths = json::object();
  for (const Service& service : catalog.services()) {
    tags.push_back({{"name", service.name}, {"description", service.title + (service.description.empty() ? "" : ". " + service.description)}});
    for (const Endpoint& e : service.endpoints) {
      json item = json::object();
      const auto operation = [&](std::string_view method) {
        json op = {{"tags", {service.name}},
                   {"summary", e.summary},
                   {"description", e.description.empty() ? e.summary : e.description},
                   {"operationId", operation_id(service, e.path, method)},
                   {"responses", result_responses(e)}};
        if (!e.standard_id.empty()) op["x-ivoa-standard-id"] = e.standard_id;
        return op;
      };
      if (e.binding == Binding::uws) {
        paths[catalog.path_of(service, e)] = uws_job_list_item(service, e);
        continue;
      }
      for (const auto& m : e.methods) {
        if (m == "GET") {
          json op = operation("get");
          json params = json::array();
          for (const auto& spec : e.params) params.push_back(query_parameter(spec));
          op["parameters"] = params;
          item["get"] = op;
        } else if (m == "POST") {
          json op = operation("post");
          op["requestBody"] = form_body(e);
          item["post"] = op;
        }
      }
      paths[catalog.path_of(service, e)] = item;
    }
    const std::string base = catalog.path_of(service);
    paths[base + "/capabilities"] = xml_get(service, "capabilities", "VOSI capabilities",
                                            "The service's capabilities (VOSI 1.1): its endpoints with their "
                                            "standardIDs, access URLs and parameters.");
    paths[base + "/availability"] = xml_get(service, "availability", "VOSI availability",
                                            "Whether the service is up (VOSI 1.1), from real checks of what it "
                                            "needs. Always HTTP 200; see avail:available.");
    if (service.tables) {
      paths[base + "/tables"] = xml_get(service, "tables", "VOSI tables", "The tables and columns the service queries.");
    }
  }
  const std::string api = opt.api_prefix;
  tags.push_back({{"name", "server"}, {"description", "Server-wide status"}});
  paths[api + "/availability"] = {
      {"get",
       {{"tags", {"server"}},
        {"summary", "Availability of every service (VOSI XML)"},
        {"operationId", "server_availability_get"},
        {"responses", {{"200", {{"description", "VOSI availability document summarising all services"}, {"content", {{"text/xml", {{"schema", {{"type", "string"}}}}}}}}}}}}}};
  paths[api + "/availability.json"] = {
      {"get",
       {{"tags", {"server"}},
        {"summary", "Availability of every service and each check (JSON, for dashboards)"},
        {"operationId", "server_availability_json_get"},
        {"responses", {{"200", {{"description", "Availability report"}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}}}}}}};
  paths[api + "/services.json"] = {
      {"get",
       {{"tags", {"server"}},
        {"summary", "Every service: standards, endpoints with an example query, availability (JSON)"},
        {"description", "The directory the landing page is drawn from: for each service its name, title, path, the "
                        "standardIDs of its VOSI capabilities, its endpoints (each GET endpoint with an example "
                        "query that answers), its availability checks and what it offers to look at (HiPS maps "
                        "with a viewer link). Paths are relative to the server root."},
        {"operationId", "server_services_json_get"},
        {"responses", {{"200", {{"description", "Service directory"}, {"content", {{"application/json", {{"schema", {{"type", "object"}}}}}}}}}}}}}};
  doc["tags"] = tags;
  doc["paths"] = paths;
  doc["components"] = {
      {"responses",
       {{"BadRequest", error_response_object("Invalid request: a DALI error document (VOTable with INFO "
                                             "QUERY_STATUS=ERROR) naming the parameter and the problem.")},
        {"NotFound", error_response_object("Unknown endpoint or identifier: a DALI error document.")},
        {"InternalError", error_response_object("Server failure: a DALI error document naming only the request id "
                                                "(see the X-Request-Id header and the server log).")}}}};
  return doc;
}

}  // namespace pixserve::dali
