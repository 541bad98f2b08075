#include "services/obscore_fields.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>

#include "http/params.hpp"
#include "repo/astro_units.hpp"
#include "services/links.hpp"

namespace pixserve::services {
namespace {

using ColumnValue = std::function<votable::Value(const ObscoreRecord&)>;

template <typename T>
votable::Value optional_value(const std::optional<T>& v) {
  return v ? votable::Value(*v) : votable::Value();
}

// The value of each ObsCore column for one record: the C++ twin of the
// registry's ivoa_obscore view (registry.cpp), which TAP reads.
const std::vector<std::pair<std::string_view, ColumnValue>>& column_values() {
  static const std::vector<std::pair<std::string_view, ColumnValue>> kValues = {
      {"dataproduct_type", [](const ObscoreRecord&) { return votable::Value("image"); }},
      {"dataproduct_subtype", [](const ObscoreRecord& c) { return votable::Value(repo::to_string(c.record.type)); }},
      {"calib_level", [](const ObscoreRecord& c) { return votable::Value(repo::calib_level(c.record)); }},
      {"obs_collection", [](const ObscoreRecord& c) { return votable::Value(c.record.collection); }},
      {"obs_id", [](const ObscoreRecord& c) { return votable::Value(c.record.dataset_id); }},
      {"obs_publisher_did", [](const ObscoreRecord& c) { return votable::Value(c.publisher_did); }},
      {"access_url", [](const ObscoreRecord& c) { return votable::Value(datalink_url(c.base_url, c.publisher_did)); }},
      {"access_format", [](const ObscoreRecord&) { return votable::Value(kDatalinkFormat); }},
      {"access_estsize", [](const ObscoreRecord& c) { return votable::Value((c.record.file_size + 1023) / 1024); }},
      {"target_name", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.target_name); }},
      {"s_ra", [](const ObscoreRecord& c) { return optional_value(c.record.s_ra); }},
      {"s_dec", [](const ObscoreRecord& c) { return optional_value(c.record.s_dec); }},
      {"s_fov", [](const ObscoreRecord& c) { return optional_value(c.record.s_fov); }},
      {"s_region",
       [](const ObscoreRecord& c) {
         return c.record.footprint ? votable::Value(sky::to_dali_array(*c.record.footprint)) : votable::Value();
       }},
      {"s_resolution", [](const ObscoreRecord& c) { return optional_value(c.record.s_resolution); }},
      {"s_xel1", [](const ObscoreRecord& c) { return votable::Value(c.record.width); }},
      {"s_xel2", [](const ObscoreRecord& c) { return votable::Value(c.record.height); }},
      {"t_min", [](const ObscoreRecord& c) { return optional_value(c.record.t_min); }},
      {"t_max", [](const ObscoreRecord& c) { return optional_value(c.record.t_max); }},
      {"t_exptime", [](const ObscoreRecord& c) { return optional_value(c.record.t_exptime); }},
      {"t_resolution", [](const ObscoreRecord& c) { return optional_value(c.record.t_exptime); }},
      {"t_xel", [](const ObscoreRecord&) { return votable::Value(1); }},
      {"em_min", [](const ObscoreRecord& c) { return optional_value(c.record.em_min); }},
      {"em_max", [](const ObscoreRecord& c) { return optional_value(c.record.em_max); }},
      {"em_res_power", [](const ObscoreRecord& c) { return optional_value(c.record.em_res_power); }},
      {"em_xel", [](const ObscoreRecord&) { return votable::Value(1); }},
      {"o_ucd", [](const ObscoreRecord&) { return votable::Value("phot.count"); }},
      {"pol_states", [](const ObscoreRecord&) { return votable::Value(); }},
      {"pol_xel", [](const ObscoreRecord&) { return votable::Value(0); }},
      {"facility_name", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.facility_name); }},
      {"instrument_name", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.instrument_name); }},
      {"s_pixel_scale", [](const ObscoreRecord& c) { return optional_value(c.record.pixel_scale_arcsec); }},
      {"obs_release_date",
       [](const ObscoreRecord& c) {
         const auto& mjd = c.record.rights.release_mjd;
         return mjd ? votable::Value(repo::iso_from_mjd(*mjd) + "Z") : votable::Value();
       }},
      {"data_rights",
       [](const ObscoreRecord& c) {
         return votable::Value(c.record.rights.policy == repo::ReadPolicy::public_ ? "public" : "proprietary");
       }},
      {"visit", [](const ObscoreRecord& c) { return optional_value(c.record.data_id.visit); }},
      {"exposure", [](const ObscoreRecord& c) { return optional_value(c.record.data_id.exposure); }},
      {"detector", [](const ObscoreRecord& c) { return optional_value(c.record.data_id.detector); }},
      {"detector_name", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.detector_name); }},
      {"raft", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.raft); }},
      {"band", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.band); }},
      {"physical_filter", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.physical_filter); }},
      {"skymap", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.skymap); }},
      {"tract", [](const ObscoreRecord& c) { return optional_value(c.record.data_id.tract); }},
      {"patch", [](const ObscoreRecord& c) { return votable::text_or_null(c.record.data_id.patch); }},
      {"seeing", [](const ObscoreRecord& c) { return optional_value(c.record.seeing); }},
      {"airmass", [](const ObscoreRecord& c) { return optional_value(c.record.airmass); }},
      {"sky_background", [](const ObscoreRecord& c) { return optional_value(c.record.sky_background); }},
      {"zero_point", [](const ObscoreRecord& c) { return optional_value(c.record.zero_point); }},
      {"psf_fwhm", [](const ObscoreRecord& c) { return optional_value(c.record.psf_fwhm); }},
  };
  return kValues;
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
  for (const auto name : names) {
    const auto& values = column_values();
    const auto it = std::find_if(values.begin(), values.end(), [&](const auto& v) { return v.first == name; });
    if (it == values.end()) throw std::invalid_argument("no ObsCore column named " + std::string(name));
    fields_.push_back(name == "s_region" ? obscore_polygon_field(name) : obscore_field(name));
    getters_.push_back(static_cast<std::size_t>(it - values.begin()));
  }
}

ObscoreColumns ObscoreColumns::all() {
  std::vector<std::string_view> names;
  for (const auto& [name, value] : column_values()) names.push_back(name);
  return ObscoreColumns(names);
}

std::vector<votable::Value> ObscoreColumns::row(const ObscoreRecord& record) const {
  std::vector<votable::Value> out;
  out.reserve(getters_.size());
  for (const auto i : getters_) out.push_back(column_values()[i].second(record));
  return out;
}

}  // namespace pixserve::services
