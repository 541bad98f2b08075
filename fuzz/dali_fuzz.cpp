// libFuzzer target for the DALI parameter parsers: parse_value for every
// ParamType and parse_params over a small declaration. Any input must either
// parse or raise a DaliError with status 400, never crash, hang or leak; a
// parsed value must have the variant alternative its type promises and be
// finite where DALI requires it. Built by `make fuzz-dali`.
//
// Input layout: byte 0 selects the mode; for mode < 0x80 the rest is one value
// of ParamType (byte 0 % 11) with or without bounds; otherwise the rest is
// "name=value" lines fed to parse_params.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "dali/params.hpp"

using namespace pixserve::dali;

namespace {

constexpr ParamType kTypes[] = {ParamType::boolean,  ParamType::integer,  ParamType::real,
                                ParamType::text,     ParamType::enumerated, ParamType::timestamp,
                                ParamType::interval, ParamType::point,    ParamType::circle,
                                ParamType::polygon,  ParamType::shape};
constexpr std::size_t kTypeCount = sizeof(kTypes) / sizeof(kTypes[0]);

ParamSpec spec_for(ParamType t, bool bounded) {
  ParamSpec s;
  s.name = "P";
  s.type = t;
  s.options = {"image", "cube", "x"};
  if (bounded) {
    s.min = -10.0;
    s.max = 1e6;
  }
  return s;
}

void check_value(const ParamSpec& spec, const Value& v) {
  auto finite = [](double d) { return std::isfinite(d); };
  switch (spec.type) {
    case ParamType::boolean: (void)std::get<bool>(v); break;
    case ParamType::integer: (void)std::get<std::int64_t>(v); break;
    case ParamType::real:
      if (!finite(std::get<double>(v))) std::abort();
      break;
    case ParamType::text:
    case ParamType::enumerated: (void)std::get<std::string>(v); break;
    case ParamType::timestamp:
      if (!finite(std::get<double>(v))) std::abort();
      break;
    case ParamType::interval: {
      const auto& iv = std::get<Interval>(v);
      if (std::isnan(iv.lo) || std::isnan(iv.hi) || iv.lo > iv.hi) std::abort();
      break;
    }
    case ParamType::point: {
      const auto& p = std::get<pixserve::sky::SkyPoint>(v);
      if (!finite(p.ra) || !finite(p.dec)) std::abort();
      break;
    }
    case ParamType::circle: (void)std::get<pixserve::sky::Circle>(v); break;
    case ParamType::polygon: (void)std::get<pixserve::sky::Polygon>(v); break;
    case ParamType::shape:
      if (!std::holds_alternative<pixserve::sky::Circle>(v) && !std::holds_alternative<pixserve::sky::Polygon>(v) &&
          !std::holds_alternative<pixserve::sky::RaDecRange>(v)) {
        std::abort();
      }
      break;
  }
}

void one_value(std::uint8_t selector, std::string_view text) {
  const ParamSpec spec = spec_for(kTypes[selector % kTypeCount], (selector / kTypeCount) % 2 == 1);
  try {
    check_value(spec, parse_value(spec, text));
  } catch (const DaliError& e) {
    if (e.status() != 400) std::abort();
  }
}

void whole_request(std::string_view text, bool strict) {
  static const std::vector<ParamSpec> specs = [] {
    std::vector<ParamSpec> s;
    const char* names[] = {"FLAG", "MAXREC", "BAND", "ID", "FORMAT", "TIME", "CALIB", "POINT", "CIRCLE", "POLYGON", "POS"};
    for (std::size_t i = 0; i < kTypeCount; ++i) {
      ParamSpec p = spec_for(kTypes[i], i == 1 || i == 2);
      p.name = names[i];
      p.multiple = (i % 2 == 0);
      s.push_back(std::move(p));
    }
    s[1].default_value = "1000";
    s[4].default_value = "image";
    return s;
  }();
  RawParams raw;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      raw.emplace_back(std::string(line), "");
    } else {
      raw.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    }
    pos = nl + 1;
  }
  ParseOptions options;
  options.reject_unknown = strict;
  try {
    const ParsedParams parsed = parse_params(specs, raw, options);
    for (const auto& spec : specs) {
      const auto& values = parsed.all(spec.name);
      if (!spec.multiple && values.size() > 1) std::abort();
      for (const auto& v : values) check_value(spec, v);
    }
    if (!parsed.has("MAXREC") || !parsed.has("format")) std::abort();  // defaults applied
  } catch (const DaliError& e) {
    if (e.status() != 400) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] < 0x80) {
    one_value(data[0], text);
  } else {
    whole_request(text, (data[0] & 1) != 0);
  }
  return 0;
}
