// The OpenAPI 3.0 document of every service in a catalogue (served at
// /openapi.json, shown by Swagger UI at /docs/). Each endpoint becomes a path
// with GET (query parameters) and POST (application/x-www-form-urlencoded and
// multipart/form-data bodies); each declared parameter gets a schema from its
// DALI type (number/integer/string, enum, minimum/maximum, arrays with
// explode for repeatable parameters), a description with the exact DALI
// serialisation and an example; responses are the endpoint's result types
// (200) and the DALI error document (400/404/500). The VOSI endpoints and the
// availability summary are listed too.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "dali/params.hpp"
#include "dali/service.hpp"

namespace pixserve::dali {

inline constexpr std::string_view openapi_version = "3.0.3";

// base_url becomes the document's only server (http::Request::base_url()).
nlohmann::json openapi_document(const ServiceCatalog& catalog, std::string_view base_url);

// The schema of one value of the parameter (without the array wrapper used
// for repeatable parameters).
nlohmann::json value_schema(const ParamSpec& spec);
// How one value of a DALI type is written, for descriptions.
std::string_view dali_format_description(ParamType type);
// A valid example value: the declared one, else one made for the type.
std::string example_value(const ParamSpec& spec);

}  // namespace pixserve::dali
