// DALI service parameters declared once: name, DALI type, unit, UCD, range
// or allowed values, multiplicity, default and description. From one
// declaration come the parsing and validation of requests (with DALI errors
// naming the parameter), the DataLink service descriptor, the VOSI
// capability and the OpenAPI document (see service.hpp, vosi.hpp,
// descriptor.hpp and openapi.hpp).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "auth/identity.hpp"
#include "dali/errors.hpp"
#include "sky/geometry.hpp"

namespace pixserve::dali {

// The DALI 1.1 value types a parameter can have, plus the SIA/SODA shape
// syntax ("CIRCLE ra dec r", "RANGE ra1 ra2 dec1 dec2", "POLYGON ...").
enum class ParamType {
  boolean,    // true/false (DALI boolean)
  integer,    // DALI integer (long)
  real,       // DALI double
  text,       // free string
  enumerated, // one of `options` (case-sensitive, as DALI values are)
  timestamp,  // DALI timestamp (ISO 8601), kept as MJD
  interval,   // "lo hi", numbers, -Inf/+Inf allowed: DALI interval
  point,      // "ra dec" deg
  circle,     // "ra dec radius" deg
  polygon,    // "ra1 dec1 ra2 dec2 ra3 dec3 ..." deg
  shape,      // SIA POS / SODA POS: CIRCLE, RANGE or POLYGON with keyword
};

std::string_view to_string(ParamType t);

struct Interval {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool contains(double v) const { return v >= lo && v <= hi; }
  // True when [lo, hi] overlaps [a, b].
  bool overlaps(double a, double b) const { return a <= hi && b >= lo; }
};

// A parsed parameter value.
using Value = std::variant<bool, std::int64_t, double, std::string, Interval, sky::SkyPoint, sky::Circle,
                           sky::Polygon, sky::RaDecRange>;

// Every member has a default initialiser so that designated initialisers
// naming only some members compile cleanly (GCC 12 -Wmissing-field-initializers).
struct ParamSpec {
  std::string name{};        // canonical upper-case name, e.g. "POS"
  ParamType type = ParamType::text;
  std::string description{};
  std::string unit{};        // e.g. "deg", "m", "d" (MJD)
  std::string ucd{};
  std::string xtype{};       // DALI xtype for the descriptor (derived from type when empty)
  std::optional<double> min{}; // numeric bounds (inclusive) for integer/real/interval ends
  std::optional<double> max{};
  std::vector<std::string> options{};  // enumerated values (also advertised as OPTIONs)
  bool multiple = false;     // repeated values allowed (OR'ed by the service)
  bool required = false;
  std::optional<std::string> default_value{};  // applied when absent
  std::string ref{};         // FIELD ID the descriptor links the parameter to (e.g. "obs_publisher_did")
  std::string example{};     // a valid example value for the docs
  bool standard = false;     // defined by the standard the endpoint implements (VOSI param std="true")
  // polygon and shape values: most vertices a polygon may have (checked
  // before the polygon is built, whose validation grows with the square of
  // the count); none: no limit.
  std::optional<std::size_t> max_vertices{};
};

// A request's raw parameters: names as sent (matched case-insensitively),
// values as sent, repeats kept in order.
using RawParams = std::vector<std::pair<std::string, std::string>>;

// The validated parameters of one request.
class ParsedParams {
 public:
  bool has(std::string_view name) const;
  const std::vector<Value>& all(std::string_view name) const;  // empty when absent

  template <typename T>
  std::vector<T> all_as(std::string_view name) const {
    std::vector<T> out;
    for (const auto& v : all(name)) out.push_back(std::get<T>(v));
    return out;
  }
  template <typename T>
  std::optional<T> first(std::string_view name) const {
    const auto& v = all(name);
    if (v.empty()) return std::nullopt;
    return std::get<T>(v.front());
  }

  void add(const std::string& name, Value v);

  // Who sent the request (set by the DALI layer from the catalogue's
  // identify hook before the handler runs; anonymous otherwise). Services
  // pass it to SharedRepository::find_visible(query, params.caller()).
  const auth::Identity& caller() const noexcept { return caller_; }
  void set_caller(auth::Identity caller) { caller_ = std::move(caller); }

 private:
  std::vector<std::pair<std::string, std::vector<Value>>> values_;
  auth::Identity caller_{};
};

struct ParseOptions {
  // Parameters outside the declaration: DALI says services should ignore
  // unknown parameters, so this is the default; a service that must be
  // strict (e.g. a typo'd SODA cutout parameter would silently return the
  // whole image) sets it.
  bool reject_unknown = false;
};

// Validates raw parameters against the declaration. Throws DaliError(400)
// naming the parameter and the problem.
ParsedParams parse_params(std::span<const ParamSpec> specs, const RawParams& raw, const ParseOptions& options = {});

// Parses one value of a given type (exposed for tests and for services that
// parse values found elsewhere, e.g. in ADQL). Throws DaliError(400).
Value parse_value(const ParamSpec& spec, std::string_view text);

// The DALI xtype a type is advertised with ("" for plain types).
std::string_view xtype_of(const ParamSpec& spec);
// The VOTable datatype and arraysize of a parameter in a service descriptor.
std::pair<std::string_view, std::string_view> votable_type_of(const ParamSpec& spec);

}  // namespace pixserve::dali
