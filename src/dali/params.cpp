#include "dali/params.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "repo/astro_units.hpp"

namespace pixserve::dali {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
         });
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

// A value quoted in error messages: short, printable, so that hostile input
// cannot fill or garble the error document.
std::string quoted_for_message(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 60)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  if (text.size() > 60) out += "...";
  return "'" + out + "'";
}

// DALI numbers: decimal or exponent notation; for intervals also -Inf/+Inf.
// NaN is never a valid parameter value.
double parse_number(const ParamSpec& spec, std::string_view word, bool infinity_allowed) {
  if (infinity_allowed) {
    if (word == "-Inf" || word == "-inf") return -std::numeric_limits<double>::infinity();
    if (word == "+Inf" || word == "Inf" || word == "+inf" || word == "inf") return std::numeric_limits<double>::infinity();
  }
  double v = 0.0;
  const char* begin = word.data();
  const char* end = begin + word.size();
  if (!word.empty() && *begin == '+') ++begin;  // from_chars refuses a leading '+'
  const auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) {
    throw usage_error(fmt::format("{}: {} is not a number", spec.name, quoted_for_message(word)));
  }
  return v;
}

void check_bounds(const ParamSpec& spec, double v, std::string_view what) {
  if (spec.min && v < *spec.min) {
    throw usage_error(fmt::format("{}: {} {} is below the minimum {}", spec.name, what, v, *spec.min));
  }
  if (spec.max && v > *spec.max) {
    throw usage_error(fmt::format("{}: {} {} is above the maximum {}", spec.name, what, v, *spec.max));
  }
}

void check_dec(const ParamSpec& spec, double dec) {
  if (dec < -90.0 || dec > 90.0) throw usage_error(fmt::format("{}: declination {} is outside [-90, 90]", spec.name, dec));
}

sky::SkyPoint parse_point(const ParamSpec& spec, std::span<const std::string_view> w) {
  const double ra = parse_number(spec, w[0], false);
  const double dec = parse_number(spec, w[1], false);
  check_dec(spec, dec);
  return {sky::normalize_ra(ra), dec};
}

sky::Circle parse_circle(const ParamSpec& spec, std::span<const std::string_view> w) {
  if (w.size() != 3) throw usage_error(fmt::format("{}: a circle is 'ra dec radius' (3 numbers in degrees), got {}", spec.name, w.size()));
  const auto center = parse_point(spec, w.first(2));
  const double r = parse_number(spec, w[2], false);
  if (!(r > 0.0) || r > 180.0) throw usage_error(fmt::format("{}: circle radius {} must be in (0, 180] degrees", spec.name, r));
  return {center, r};
}

sky::Polygon parse_polygon(const ParamSpec& spec, std::span<const std::string_view> w) {
  if (w.size() < 6 || w.size() % 2 != 0) {
    throw usage_error(fmt::format("{}: a polygon is at least 3 'ra dec' pairs (an even count of 6 or more numbers), got {}",
                                  spec.name, w.size()));
  }
  if (spec.max_vertices && w.size() / 2 > *spec.max_vertices) {
    throw usage_error(fmt::format("{}: a polygon of {} vertices; at most {} are accepted", spec.name, w.size() / 2,
                                  *spec.max_vertices));
  }
  std::vector<sky::SkyPoint> vertices;
  for (size_t i = 0; i < w.size(); i += 2) vertices.push_back(parse_point(spec, w.subspan(i, 2)));
  try {
    return sky::Polygon(std::move(vertices));
  } catch (const std::invalid_argument& e) {
    throw usage_error(fmt::format("{}: invalid polygon: {}", spec.name, e.what()));
  }
}

sky::RaDecRange parse_range(const ParamSpec& spec, std::span<const std::string_view> w) {
  if (w.size() != 4) throw usage_error(fmt::format("{}: a range is 'ra1 ra2 dec1 dec2' (4 numbers), got {}", spec.name, w.size()));
  double v[4];
  for (int i = 0; i < 4; ++i) v[i] = parse_number(spec, w[static_cast<size_t>(i)], true);
  sky::RaDecRange r;
  // SIA 2.0: -Inf/+Inf mean unbounded; a full RA interval is 0..360.
  const bool full_ra = std::isinf(v[0]) || std::isinf(v[1]) || (v[1] - v[0]) >= 360.0;
  if (!full_ra) {
    if (v[0] < 0.0 || v[0] > 360.0 || v[1] < 0.0 || v[1] > 360.0) {
      throw usage_error(fmt::format("{}: RA limits must be within [0, 360]", spec.name));
    }
    r.ra_min = v[0];
    r.ra_max = v[1];  // ra_min > ra_max: the interval wraps through 0
  }
  r.dec_min = std::isinf(v[2]) ? -90.0 : v[2];
  r.dec_max = std::isinf(v[3]) ? 90.0 : v[3];
  check_dec(spec, r.dec_min);
  check_dec(spec, r.dec_max);
  if (r.dec_min > r.dec_max) throw usage_error(fmt::format("{}: range has dec1 {} > dec2 {}", spec.name, r.dec_min, r.dec_max));
  return r;
}

}  // namespace

std::string_view to_string(ParamType t) {
  switch (t) {
    case ParamType::boolean: return "boolean";
    case ParamType::integer: return "integer";
    case ParamType::real: return "double";
    case ParamType::text: return "string";
    case ParamType::enumerated: return "enum";
    case ParamType::timestamp: return "timestamp";
    case ParamType::interval: return "interval";
    case ParamType::point: return "point";
    case ParamType::circle: return "circle";
    case ParamType::polygon: return "polygon";
    case ParamType::shape: return "shape";
  }
  return "string";
}

std::string_view xtype_of(const ParamSpec& spec) {
  if (!spec.xtype.empty()) return spec.xtype;
  switch (spec.type) {
    case ParamType::timestamp: return "timestamp";
    case ParamType::interval: return "interval";
    case ParamType::point: return "point";
    case ParamType::circle: return "circle";
    case ParamType::polygon: return "polygon";
    default: return "";
  }
}

std::pair<std::string_view, std::string_view> votable_type_of(const ParamSpec& spec) {
  switch (spec.type) {
    case ParamType::boolean: return {"boolean", ""};
    case ParamType::integer: return {"long", ""};
    case ParamType::real: return {"double", ""};
    case ParamType::interval: return {"double", "2"};
    case ParamType::point: return {"double", "2"};
    case ParamType::circle: return {"double", "3"};
    case ParamType::polygon: return {"double", "*"};
    case ParamType::text:
    case ParamType::enumerated:
    case ParamType::timestamp:
    case ParamType::shape: return {"char", "*"};
  }
  return {"char", "*"};
}

Value parse_value(const ParamSpec& spec, std::string_view text) {
  const auto w = words(text);
  switch (spec.type) {
    case ParamType::boolean:
      if (iequals(text, "true") || text == "1") return true;
      if (iequals(text, "false") || text == "0") return false;
      throw usage_error(fmt::format("{}: {} is not a boolean (true or false)", spec.name, quoted_for_message(text)));
    case ParamType::integer: {
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || ptr != text.data() + text.size()) {
        throw usage_error(fmt::format("{}: {} is not an integer", spec.name, quoted_for_message(text)));
      }
      check_bounds(spec, static_cast<double>(v), "value");
      return v;
    }
    case ParamType::real: {
      if (w.size() != 1) throw usage_error(fmt::format("{}: {} is not a number", spec.name, quoted_for_message(text)));
      const double v = parse_number(spec, w[0], false);
      check_bounds(spec, v, "value");
      return v;
    }
    case ParamType::text:
      if (text.find('\0') != std::string_view::npos) throw usage_error(fmt::format("{}: value contains a NUL character", spec.name));
      return std::string(text);
    case ParamType::enumerated:
      if (std::find(spec.options.begin(), spec.options.end(), text) == spec.options.end()) {
        std::string allowed;
        for (const auto& o : spec.options) allowed += (allowed.empty() ? "" : ", ") + o;
        throw usage_error(fmt::format("{}: {} is not one of: {}", spec.name, quoted_for_message(text), allowed));
      }
      return std::string(text);
    case ParamType::timestamp:
      try {
        return repo::mjd_from_iso(text);
      } catch (const std::invalid_argument& e) {
        throw usage_error(fmt::format("{}: {} is not a DALI timestamp (YYYY-MM-DD['T'hh:mm:ss[.sss]]['Z']): {}", spec.name,
                                      quoted_for_message(text), e.what()));
      }
    case ParamType::interval: {
      // DALI interval: two numbers; SIA 2.0 also accepts a single number
      // for a point-like constraint (lo = hi).
      if (w.size() == 1) {
        const double v = parse_number(spec, w[0], false);
        check_bounds(spec, v, "value");
        return Interval{v, v};
      }
      if (w.size() != 2) throw usage_error(fmt::format("{}: an interval is 'lo hi' (2 numbers, -Inf/+Inf allowed), got {}", spec.name, quoted_for_message(text)));
      const Interval iv{parse_number(spec, w[0], true), parse_number(spec, w[1], true)};
      if (iv.lo > iv.hi) throw usage_error(fmt::format("{}: interval lower bound {} exceeds upper bound {}", spec.name, iv.lo, iv.hi));
      if (std::isfinite(iv.lo)) check_bounds(spec, iv.lo, "lower bound");
      if (std::isfinite(iv.hi)) check_bounds(spec, iv.hi, "upper bound");
      return iv;
    }
    case ParamType::point:
      if (w.size() != 2) throw usage_error(fmt::format("{}: a point is 'ra dec' (2 numbers in degrees)", spec.name));
      return parse_point(spec, w);
    case ParamType::circle:
      return parse_circle(spec, w);
    case ParamType::polygon:
      return parse_polygon(spec, w);
    case ParamType::shape: {
      if (w.empty()) throw usage_error(fmt::format("{}: empty value; expected CIRCLE, RANGE or POLYGON", spec.name));
      const std::span rest(w.data() + 1, w.size() - 1);
      if (iequals(w[0], "CIRCLE")) return parse_circle(spec, rest);
      if (iequals(w[0], "RANGE")) return parse_range(spec, rest);
      if (iequals(w[0], "POLYGON")) return parse_polygon(spec, rest);
      throw usage_error(fmt::format("{}: shape {} is not CIRCLE, RANGE or POLYGON", spec.name, quoted_for_message(w[0])));
    }
  }
  throw usage_error(fmt::format("{}: unsupported parameter type", spec.name));
}

bool ParsedParams::has(std::string_view name) const { return !all(name).empty(); }

const std::vector<Value>& ParsedParams::all(std::string_view name) const {
  static const std::vector<Value> kNone;  // immutable: shared safely
  for (const auto& [n, v] : values_) {
    if (iequals(n, name)) return v;
  }
  return kNone;
}

void ParsedParams::add(const std::string& name, Value v) {
  for (auto& [n, values] : values_) {
    if (iequals(n, name)) {
      values.push_back(std::move(v));
      return;
    }
  }
  values_.push_back({name, {std::move(v)}});
}

ParsedParams parse_params(std::span<const ParamSpec> specs, const RawParams& raw, const ParseOptions& options) {
  ParsedParams out;
  for (const auto& entry : raw) {
    // Not a structured binding: clang (the fuzz build) cannot capture one in a lambda.
    const std::string& name = entry.first;
    const std::string& value = entry.second;
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return iequals(s.name, name); });
    if (spec == specs.end()) {
      if (options.reject_unknown) throw usage_error(fmt::format("unknown parameter {}", quoted_for_message(name)));
      continue;
    }
    if (!spec->multiple && out.has(spec->name)) {
      throw usage_error(fmt::format("{}: only one value is allowed", spec->name));
    }
    out.add(spec->name, parse_value(*spec, value));
  }
  for (const auto& spec : specs) {
    if (out.has(spec.name)) continue;
    if (spec.default_value) {
      out.add(spec.name, parse_value(spec, *spec.default_value));
    } else if (spec.required) {
      throw usage_error(fmt::format("{}: missing required parameter", spec.name));
    }
  }
  return out;
}

}  // namespace pixserve::dali
