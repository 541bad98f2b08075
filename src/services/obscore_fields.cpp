#include "services/obscore_fields.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include "http/params.hpp"
#include "repo/astro_units.hpp"
#include "services/links.hpp"

namespace pixserve::services {
namespace {

using votable::Value;
using CellFill = ObscoreColumns::CellFill;

// Cell setters that keep the storage of the string a reused cell holds.
void fill_text(Value& cell, std::string_view s) { cell.make_text().assign(s); }

// An empty string as a null cell (votable::text_or_null, in place).
void fill_text_or_null(Value& cell, std::string_view s) {
  if (s.empty())
    cell = Value();
  else
    fill_text(cell, s);
}

template <typename T>
void fill_optional(Value& cell, const std::optional<T>& v) {
  cell = v ? Value(*v) : Value();
}

// The value of each ObsCore column for one record: the C++ twin of the
// registry's ivoa_obscore view (registry.cpp), which TAP reads. Plain
// function pointers: a row calls one per column.
const std::vector<std::pair<std::string_view, CellFill>>& obscore_fills() {
  static const std::vector<std::pair<std::string_view, CellFill>> kFills = {
      {"dataproduct_type", [](const ObscoreRecord&, Value& v) { fill_text(v, "image"); }},
      {"dataproduct_subtype", [](const ObscoreRecord& c, Value& v) { fill_text(v, repo::to_string(c.record.type)); }},
      {"calib_level", [](const ObscoreRecord& c, Value& v) { v = Value(repo::calib_level(c.record)); }},
      {"obs_collection", [](const ObscoreRecord& c, Value& v) { fill_text(v, c.record.collection); }},
      {"obs_id", [](const ObscoreRecord& c, Value& v) { fill_text(v, c.record.dataset_id); }},
      {"obs_publisher_did", [](const ObscoreRecord& c, Value& v) { fill_text(v, c.publisher_did); }},
      {"access_url",
       [](const ObscoreRecord& c, Value& v) {
         if (c.access_url.empty())
           v = Value(datalink_url(c.base_url, c.publisher_did));
         else
           fill_text(v, c.access_url);
       }},
      {"access_format", [](const ObscoreRecord&, Value& v) { fill_text(v, kDatalinkFormat); }},
      {"access_estsize", [](const ObscoreRecord& c, Value& v) { v = Value((c.record.file_size + 1023) / 1024); }},
      {"target_name", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.target_name); }},
      {"s_ra", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.s_ra); }},
      {"s_dec", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.s_dec); }},
      {"s_fov", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.s_fov); }},
      {"s_region",
       [](const ObscoreRecord& c, Value& v) {
         v = c.record.footprint ? Value(sky::to_dali_array(*c.record.footprint)) : Value();
       }},
      {"s_resolution", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.s_resolution); }},
      {"s_xel1", [](const ObscoreRecord& c, Value& v) { v = Value(c.record.width); }},
      {"s_xel2", [](const ObscoreRecord& c, Value& v) { v = Value(c.record.height); }},
      {"t_min", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.t_min); }},
      {"t_max", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.t_max); }},
      {"t_exptime", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.t_exptime); }},
      {"t_resolution", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.t_exptime); }},
      {"t_xel", [](const ObscoreRecord&, Value& v) { v = Value(1); }},
      {"em_min", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.em_min); }},
      {"em_max", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.em_max); }},
      {"em_res_power", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.em_res_power); }},
      {"em_xel", [](const ObscoreRecord&, Value& v) { v = Value(1); }},
      {"o_ucd", [](const ObscoreRecord&, Value& v) { fill_text(v, "phot.count"); }},
      {"pol_states", [](const ObscoreRecord&, Value& v) { v = Value(); }},
      {"pol_xel", [](const ObscoreRecord&, Value& v) { v = Value(0); }},
      {"facility_name", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.facility_name); }},
      {"instrument_name", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.instrument_name); }},
      {"s_pixel_scale", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.pixel_scale_arcsec); }},
      {"obs_release_date",
       [](const ObscoreRecord& c, Value& v) {
         const auto& mjd = c.record.rights.release_mjd;
         if (!mjd) {
           v = Value();
           return;
         }
         std::string& text = v.make_text();
         text.append(repo::iso_from_mjd(*mjd));
         text.push_back('Z');
       }},
      {"data_rights",
       [](const ObscoreRecord& c, Value& v) {
         fill_text(v, c.record.rights.policy == repo::ReadPolicy::public_ ? "public" : "proprietary");
       }},
      {"visit", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.data_id.visit); }},
      {"exposure", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.data_id.exposure); }},
      {"detector", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.data_id.detector); }},
      {"detector_name", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.detector_name); }},
      {"raft", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.raft); }},
      {"band", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.band); }},
      {"physical_filter",
       [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.physical_filter); }},
      {"skymap", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.skymap); }},
      {"tract", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.data_id.tract); }},
      {"patch", [](const ObscoreRecord& c, Value& v) { fill_text_or_null(v, c.record.data_id.patch); }},
      {"seeing", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.seeing); }},
      {"airmass", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.airmass); }},
      {"sky_background", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.sky_background); }},
      {"zero_point", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.zero_point); }},
      {"psf_fwhm", [](const ObscoreRecord& c, Value& v) { fill_optional(v, c.record.psf_fwhm); }},
  };
  return kFills;
}

// Characters http::percent_encode leaves as they are (RFC 3986 unreserved).
bool url_unreserved(char c) {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace


votable::Field obscore_field(std::string_view name) {
  for (const auto& c : repo::obscore_columns()) {
    if (c.name != name) continue;
    const auto datatype = votable::parse_datatype(c.datatype);
    if (!datatype) throw std::invalid_argument("ObsCore column " + std::string(name) + ": unknown datatype");
    votable::Field f;
    f.name = std::string(c.name);
    f.id = std::string(c.name);
    f.datatype = *datatype;
    f.arraysize = std::string(c.arraysize);
    f.unit = std::string(c.unit);
    f.ucd = std::string(c.ucd);
    f.utype = std::string(c.utype);
    f.xtype = std::string(c.xtype);
    f.description = std::string(c.description);
    return f;
  }
  throw std::invalid_argument("no ObsCore column named " + std::string(name));
}

votable::Field obscore_polygon_field(std::string_view name) {
  votable::Field f = obscore_field(name);
  f.datatype = votable::Datatype::double_;
  f.arraysize = "*";
  f.xtype = "polygon";
  f.description = "Footprint of the image on the sky from its WCS, as a DALI polygon (ra1 dec1 ra2 dec2 ... in degrees)";
  return f;
}

std::string datalink_url(const std::string& base_url, const std::string& publisher_did) {
  return base_url + links::endpoint(links::kDatalink, "links") + "?ID=" + http::percent_encode(publisher_did);
}

ObscoreColumns::ObscoreColumns(const std::vector<std::string_view>& names) {
  const auto& fills = obscore_fills();
  for (const auto name : names) {
    const auto it = std::find_if(fills.begin(), fills.end(), [&](const auto& f) { return f.first == name; });
    if (it == fills.end()) throw std::invalid_argument("no ObsCore column named " + std::string(name));
    fields_.push_back(name == "s_region" ? obscore_polygon_field(name) : obscore_field(name));
    fills_.push_back(it->second);
  }
}

ObscoreColumns ObscoreColumns::all() {
  std::vector<std::string_view> names;
  for (const auto& [name, fill] : obscore_fills()) names.push_back(name);
  return ObscoreColumns(names);
}

std::vector<votable::Value> ObscoreColumns::row(const ObscoreRecord& record) const {
  std::vector<votable::Value> out(fills_.size());
  fill(record, out);
  return out;
}

void ObscoreColumns::fill(const ObscoreRecord& record, std::span<votable::Value> cells) const {
  if (cells.size() != fills_.size()) throw std::invalid_argument("ObscoreColumns::fill: one cell per column expected");
  for (std::size_t k = 0; k < fills_.size(); ++k) fills_[k](record, cells[k]);
}

ObscoreRows::ObscoreRows(const ObscoreColumns& columns, std::string did_prefix, std::string base_url)
    : columns_(columns),
      did_prefix_(std::move(did_prefix)),
      base_url_(std::move(base_url)),
      // Percent-encoding works character by character, so the URL of
      // prefix + ID is the encoded prefix followed by the encoded ID.
      url_prefix_(datalink_url(base_url_, did_prefix_)),
      cells_(columns.fields().size()) {}

std::span<const votable::Value> ObscoreRows::row(const repo::DatasetRecord& record) {
  const std::string& id = record.dataset_id;
  did_.assign(did_prefix_).append(id);
  url_.assign(url_prefix_);
  // Dataset IDs are safe identifiers, which percent-encoding leaves as they
  // are: the encoder (and its string) is only needed for anything else.
  if (std::all_of(id.begin(), id.end(), url_unreserved))
    url_.append(id);
  else
    url_.append(http::percent_encode(id));
  columns_.fill({record, did_, base_url_, url_}, cells_);
  return cells_;
}

}  // namespace pixserve::services
