#include "dali/descriptor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "http/headers.hpp"

namespace pixserve::dali {
namespace {

const std::string* lookup(const std::vector<std::pair<std::string, std::string>>& pairs, std::string_view name) {
  for (const auto& [k, v] : pairs) {
    if (http::iequals(k, name)) return &v;
  }
  return nullptr;
}

votable::Value bound(const ParamSpec& spec, double v) {
  if (spec.type == ParamType::integer) return static_cast<std::int64_t>(std::llround(v));
  return v;
}

}  // namespace

votable::Param descriptor_param(const ParamSpec& spec) {
  const auto [datatype, arraysize] = votable_type_of(spec);
  votable::Param p;
  p.name = spec.name;
  p.datatype = votable::parse_datatype(datatype).value_or(votable::Datatype::char_);
  p.arraysize = std::string(arraysize);
  // An optional scalar number is written with arraysize="*": its empty
  // value then reads as an empty array, which clients leave out of the
  // request (as POLYGON's). A null scalar (value="" on a plain double)
  // makes pyvo's processed() fail: it calls .all() on the None that astropy
  // gives for it. ("1" would do too, but VOTable 1.3 deprecates it.)
  if ((spec.type == ParamType::integer || spec.type == ParamType::real) && !spec.required && p.arraysize.empty()) {
    p.arraysize = "*";
  }
  p.xtype = std::string(xtype_of(spec));
  p.unit = spec.unit;
  p.ucd = spec.ucd;
  p.ref = spec.ref;
  p.description = spec.description;
  const bool numeric_bounds =
      spec.type == ParamType::integer || spec.type == ParamType::real || spec.type == ParamType::interval;
  if (numeric_bounds && spec.min) p.values.min = bound(spec, *spec.min);
  if (numeric_bounds && spec.max) p.values.max = bound(spec, *spec.max);
  for (const auto& o : spec.options) p.values.options.push_back({.value = o, .name = {}});
  // An empty value: the client fills it in. A char PARAM's empty value is
  // the empty string; a numeric one stays null (written value="").
  return p;
}

void write_service_descriptor(votable::VotableWriter& w, const Endpoint& endpoint, const DescriptorOptions& options) {
  if (options.id.empty()) throw std::invalid_argument("service descriptor: no RESOURCE ID");
  if (options.access_url.empty()) throw std::invalid_argument("service descriptor: no accessURL");
  w.begin_resource({.type = votable::ResourceType::meta,
                    .name = options.name.empty() ? options.id : options.name,
                    .id = options.id,
                    .utype = "adhoc:service",
                    .description = options.description.empty() ? endpoint.summary : options.description});
  const auto text_param = [&](std::string_view name, std::string_view value) {
    w.param(votable::Param{votable::Field{.name = std::string(name), .datatype = votable::Datatype::char_, .arraysize = "*"},
                           votable::Value(value)});
  };
  if (!endpoint.standard_id.empty()) text_param("standardID", endpoint.standard_id);
  text_param("accessURL", options.access_url);
  w.begin_group({.name = "inputParams"});
  for (const auto& spec : endpoint.params) {
    const bool omitted = std::any_of(options.omit.begin(), options.omit.end(),
                                     [&](const std::string& o) { return http::iequals(o, spec.name); });
    if (omitted) continue;
    votable::Param p = descriptor_param(spec);
    if (const auto* ref = lookup(options.refs, spec.name)) p.ref = *ref;
    if (const auto* value = lookup(options.values, spec.name)) {
      // A fixed value replaces the reference.
      p.ref.clear();
      if (p.datatype == votable::Datatype::char_) {
        p.value = *value;
      } else {
        // Numeric fixed values arrive as DALI text: parse them with the
        // declaration (which also validates them) into the PARAM's type.
        const ParsedParams parsed = parse_params(std::span(&spec, 1), {{spec.name, *value}});
        const auto& v = parsed.all(spec.name).front();
        if (const auto* i = std::get_if<std::int64_t>(&v)) p.value = *i;
        else if (const auto* d = std::get_if<double>(&v)) p.value = *d;
        else if (const auto* b = std::get_if<bool>(&v)) p.value = *b;
        else if (const auto* iv = std::get_if<Interval>(&v)) p.value = std::vector<double>{iv->lo, iv->hi};
        else if (const auto* pt = std::get_if<sky::SkyPoint>(&v)) p.value = std::vector<double>{pt->ra, pt->dec};
        else if (const auto* c = std::get_if<sky::Circle>(&v))
          p.value = std::vector<double>{c->center.ra, c->center.dec, c->radius_deg};
        else if (const auto* pg = std::get_if<sky::Polygon>(&v)) p.value = sky::to_dali_array(*pg);
      }
    } else if (p.datatype == votable::Datatype::char_) {
      p.value = std::string();
    }
    w.param(p);
  }
  w.end_group();
  w.end_resource();
}

}  // namespace pixserve::dali
