#include "repo/metadata.hpp"

#include <algorithm>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "repo/astro_units.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::repo {
namespace {

// Header keywords are looked up in the primary HDU first and then in the HDU
// that carries the image and WCS, as LSST-style files split them that way.
class HeaderLookup {
 public:
  HeaderLookup(fits::File& file, int image_hdu) : file_(file), image_hdu_(image_hdu) {}

  std::optional<std::string> text(std::string_view key) {
    return find<std::string>(key, [&] { return file_.read_string(key); });
  }
  std::optional<double> number(std::string_view key) {
    return find<double>(key, [&] { return file_.read_double(key); });
  }
  std::optional<std::int64_t> integer(std::string_view key) {
    return find<std::int64_t>(key, [&]() -> std::optional<std::int64_t> {
      if (auto v = file_.read_int(key)) return static_cast<std::int64_t>(*v);
      return std::nullopt;
    });
  }

 private:
  template <typename T, typename Read>
  std::optional<T> find(std::string_view key, Read read) {
    for (const int hdu : {1, image_hdu_}) {
      if (hdu < 1) continue;
      file_.move_to_hdu(hdu);
      if (!file_.has_key(key)) continue;
      try {
        if (auto v = read()) return v;
      } catch (const fits::FitsError&) {
        throw IngestError(file_.path(), fmt::format("keyword {} has a value of the wrong type", key));
      }
    }
    return std::nullopt;
  }

  fits::File& file_;
  int image_hdu_;
};

// The HDU holding the science pixels: EXTNAME IMAGE if present, else the
// first HDU with a celestial WCS, else the first image HDU with data.
int find_image_hdu(fits::File& file) {
  if (file.move_to_named_hdu("IMAGE")) return file.current_hdu();
  const int count = file.hdu_count();
  for (int hdu = 1; hdu <= count; ++hdu) {
    file.move_to_hdu(hdu);
    if (file.has_key("CTYPE1")) return hdu;
  }
  for (int hdu = 1; hdu <= count; ++hdu) {
    file.move_to_hdu(hdu);
    if (file.current_is_image() && !file.image_shape().empty()) return hdu;
  }
  return 0;
}

// "[1:4096,1:4004]" -> (4096, 4004)
std::optional<std::pair<long, long>> parse_detsize(const std::string& s) {
  long x0 = 0, x1 = 0, y0 = 0, y1 = 0;
  if (std::sscanf(s.c_str(), "[%ld:%ld,%ld:%ld]", &x0, &x1, &y0, &y1) != 4) return std::nullopt;
  if (x1 < x0 || y1 < y0 || x0 < 1 || y0 < 1) return std::nullopt;
  return std::pair{x1 - x0 + 1, y1 - y0 + 1};
}

// The largest distance (deg) between where the WCS puts each edge midpoint
// and the great-circle edge between its corners: how far a 4-vertex polygon
// departs from the true (distorted) footprint.
double edge_sag_deg(const wcs::Wcs& w, long width, long height) {
  const double x0 = -0.5, y0 = -0.5, x1 = static_cast<double>(width) - 0.5, y1 = static_cast<double>(height) - 0.5;
  const std::array<wcs::PixelPoint, 4> corners{{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}};
  double worst = 0.0;
  for (size_t i = 0; i < corners.size(); ++i) {
    const auto& a = corners[i];
    const auto& b = corners[(i + 1) % corners.size()];
    const sky::Vec3 va = sky::to_vector(w.pixel_to_sky(a));
    const sky::Vec3 vb = sky::to_vector(w.pixel_to_sky(b));
    const sky::Vec3 vm = sky::to_vector(w.pixel_to_sky({0.5 * (a.x + b.x), 0.5 * (a.y + b.y)}));
    // Distance of the midpoint from the great circle through a and b.
    const sky::Vec3 n{va.y * vb.z - va.z * vb.y, va.z * vb.x - va.x * vb.z, va.x * vb.y - va.y * vb.x};
    const double norm = std::sqrt(n.x * n.x + n.y * n.y + n.z * n.z);
    if (norm == 0.0) continue;
    const double s = (n.x * vm.x + n.y * vm.y + n.z * vm.z) / norm;
    worst = std::max(worst, std::abs(std::asin(std::clamp(s, -1.0, 1.0))) * 180.0 / M_PI);
  }
  return worst;
}

void fill_sky(DatasetRecord& rec, const wcs::Wcs& w, long width, long height, const std::filesystem::path& path) {
  if (width <= 0 || height <= 0) throw IngestError(path, "image has no pixels to place on the sky");
  rec.width = width;
  rec.height = height;
  const double scale_deg = w.pixel_scale_deg();
  if (!(scale_deg > 0.0) || !std::isfinite(scale_deg)) throw IngestError(path, "WCS has a degenerate pixel scale");
  rec.pixel_scale_arcsec = scale_deg * 3600.0;
  // Four corners suffice while the distortion keeps each edge within a tenth
  // of a pixel of a great circle; beyond that, follow the edges.
  const int points_per_side = edge_sag_deg(w, width, height) > 0.1 * scale_deg ? 4 : 1;
  try {
    rec.footprint = w.footprint(width, height, points_per_side);
  } catch (const std::exception& e) {
    throw IngestError(path, fmt::format("footprint from the WCS is not a valid polygon: {}", e.what()));
  }
  const sky::SkyPoint center = w.pixel_to_sky({0.5 * static_cast<double>(width - 1), 0.5 * static_cast<double>(height - 1)});
  rec.s_ra = center.ra;
  rec.s_dec = center.dec;
  double radius = 0.0;
  for (const auto& v : rec.footprint->vertices()) radius = std::max(radius, sky::angular_distance_deg(center, v));
  rec.s_fov = 2.0 * radius;
}

// The celestial WCS of a science image's HDU (left current), or the
// IngestError that says why there is none.
wcs::Wcs image_wcs(fits::File& file, int image_hdu, const std::filesystem::path& path) {
  if (image_hdu == 0) throw IngestError(path, "no image HDU");
  file.move_to_hdu(image_hdu);
  try {
    return wcs::Wcs::from_fits(file);
  } catch (const wcs::WcsError& e) {
    throw IngestError(path, fmt::format("no usable celestial WCS in HDU {}: {}", image_hdu, e.what()));
  }
}

}  // namespace

IngestError::IngestError(const std::filesystem::path& file, const std::string& reason)
    : std::runtime_error(fmt::format("{}: {}", file.string(), reason)), file_(file) {}

DatasetRecord read_dataset_metadata(const std::filesystem::path& path, const MetadataOptions& options) {
  try {
    auto file = fits::File::open(path);
    const int image_hdu = find_image_hdu(file);
    HeaderLookup header(file, image_hdu);

    DatasetRecord rec;
    rec.collection = options.collection;
    const auto type_name = header.text("DSTYPE");
    if (type_name) {
      const auto type = dataset_type_from_string(*type_name);
      if (!type || *type == DatasetType::user) {
        throw IngestError(path, fmt::format("unknown dataset type DSTYPE='{}'", *type_name));
      }
      rec.type = *type;
    } else {
      rec.type = DatasetType::user;
    }

    DataId& id = rec.data_id;
    id.instrument = header.text("INSTRUME").value_or("");
    id.visit = header.integer("VISIT");
    id.exposure = header.integer("EXPOSURE");
    if (!id.exposure) id.exposure = id.visit;
    id.detector = header.integer("DETECTOR");
    id.detector_name = header.text("DETNAME").value_or("");
    id.raft = header.text("RAFT").value_or("");
    id.band = header.text("BAND").value_or("");
    id.physical_filter = header.text("FILTER").value_or("");
    id.skymap = header.text("SKYMAP").value_or("");
    id.tract = header.integer("TRACT");
    id.patch = header.text("PATCH").value_or("");
    if (!id.band.empty() && !band_limits(id.band)) {
      throw IngestError(path, fmt::format("unknown band BAND='{}' (expected one of u g r i z y)", id.band));
    }

    rec.facility_name = header.text("TELESCOP").value_or("");
    rec.instrument_name = id.instrument;
    rec.target_name = header.text("OBJECT").value_or("");
    rec.software_version = header.text("SWVER").value_or("");
    rec.seeing = header.number("SEEING");
    rec.airmass = header.number("AIRMASS");
    rec.sky_background = header.number("BGMEAN");
    rec.zero_point = header.number("MAGZERO");
    rec.psf_fwhm = header.number("PSFFWHM");
    rec.telescope_ra = header.number("RATEL");
    rec.telescope_dec = header.number("DECTEL");

    // Time: MJD-OBS is authoritative, DATE-OBS the fallback; coadds carry
    // the span of their inputs.
    const auto exptime = header.number("EXPTIME");
    rec.t_exptime = exptime;
    if (is_coadd(rec.type)) {
      rec.t_min = header.number("MJD-BEG");
      rec.t_max = header.number("MJD-END");
    } else {
      auto start = header.number("MJD-OBS");
      if (!start) {
        if (auto date = header.text("DATE-OBS")) {
          try {
            start = mjd_from_iso(*date);
          } catch (const std::invalid_argument& e) {
            throw IngestError(path, e.what());
          }
        }
      }
      rec.t_min = start;
      if (start && exptime) rec.t_max = *start + *exptime / 86400.0;
    }
    if (is_visit_based(rec.type) && !rec.t_min) throw IngestError(path, "no MJD-OBS or DATE-OBS");

    if (const auto limits = band_limits(id.band)) {
      rec.em_min = limits->em_min;
      rec.em_max = limits->em_max;
      rec.em_res_power = limits->resolving_power();
    }

    // The sky: every science image needs a celestial WCS; calibrations have none.
    if (!is_calibration(rec.type)) {
      const auto w = image_wcs(file, image_hdu, path);
      long width = 0, height = 0;
      file.move_to_hdu(1);
      const auto detsize = file.read_string("DETSIZE");
      file.move_to_hdu(image_hdu);
      const auto shape = file.image_shape();
      if (rec.type == DatasetType::raw || (shape.size() < 2 && detsize)) {
        // Raw pixels sit in amplifier HDUs; DETSIZE gives the assembled,
        // trimmed detector the WCS refers to.
        const auto size = detsize ? parse_detsize(*detsize) : std::nullopt;
        if (!size) throw IngestError(path, "raw file without a valid DETSIZE keyword");
        std::tie(width, height) = *size;
      } else {
        if (shape.size() < 2) throw IngestError(path, "image HDU is not two-dimensional");
        width = shape[0];
        height = shape[1];
      }
      fill_sky(rec, w, width, height, path);
      rec.s_resolution = rec.psf_fwhm ? rec.psf_fwhm : rec.seeing;
    }

    // Identity and provenance.
    const std::string user_name = path.stem().string();
    std::string safe_name;
    for (const char c : user_name) safe_name += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
    if (rec.type == DatasetType::user && options.owner.empty()) {
      throw IngestError(path, "no DSTYPE keyword: a user image needs an owner (--owner)");
    }
    if (rec.type == DatasetType::user && is_reserved_owner(options.owner)) {
      throw IngestError(path, fmt::format("owner '{}' is reserved (it owns the survey's own data): a user image needs "
                                          "the name of a user",
                                          options.owner));
    }
    try {
      rec.dataset_id = make_dataset_id(options.collection, rec.type, id, options.owner, safe_name);
    } catch (const std::invalid_argument& e) {
      throw IngestError(path, e.what());
    }
    if (rec.type == DatasetType::calexp || rec.type == DatasetType::calexp_comp || rec.type == DatasetType::diffim) {
      auto input = [&](DatasetType t) { return make_dataset_id(options.collection, t, id); };
      if (rec.type == DatasetType::calexp_comp) {
        rec.inputs.push_back({input(DatasetType::calexp), "compressed-from"});
      } else {
        rec.inputs.push_back({input(DatasetType::raw), "raw"});
        rec.inputs.push_back({input(DatasetType::bias), "bias"});
        if (!id.band.empty()) rec.inputs.push_back({input(DatasetType::flat), "flat"});
      }
    }
    if (is_coadd(rec.type) && file.move_to_named_hdu("INPUTS")) {
      const auto visits = file.read_int_column("VISIT");
      const auto detectors = file.read_int_column("DETECTOR");
      if (visits.size() != detectors.size()) throw IngestError(path, "INPUTS table columns differ in length");
      for (size_t i = 0; i < visits.size(); ++i) {
        DataId input_id;
        input_id.visit = visits[i];
        input_id.detector = detectors[i];
        rec.inputs.push_back({make_dataset_id(options.collection, DatasetType::calexp, input_id), "input"});
      }
    }
    rec.rights.owner = rec.type == DatasetType::user ? options.owner : std::string(kSurveyOwner);
    return rec;
  } catch (const fits::FitsError& e) {
    throw IngestError(path, fmt::format("not a readable FITS file: {}", e.what()));
  }
}

namespace {

// What a mapping's templates and keywords read: header values as text,
// from the primary HDU first, then the image HDU.
class MappedHeader {
 public:
  MappedHeader(fits::File& file, int image_hdu) : file_(file), image_hdu_(image_hdu) {}
  std::optional<std::string> text(const std::string& key) {
    for (const int hdu : {1, image_hdu_}) {
      if (hdu < 1) continue;
      file_.move_to_hdu(hdu);
      if (file_.has_key(key)) return file_.read_value_text(key);
    }
    return std::nullopt;
  }

 private:
  fits::File& file_;
  int image_hdu_;
};

std::string safe_text(std::string_view text) {
  std::string out;
  for (const char c : text) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return out;
}

}  // namespace

MappedRecord read_mapped_metadata(const std::filesystem::path& path, const std::string& relative_path,
                                  const Mapping& mapping, const MetadataOptions& options) {
  try {
    auto file = fits::File::open(path);
    const int default_hdu = find_image_hdu(file);
    MappedHeader probe(file, default_hdu);
    const MappingRule* rule = nullptr;
    try {
      rule = mapping.match(relative_path, [&](const std::string& key) { return probe.text(key); });
    } catch (const std::runtime_error& e) {
      throw IngestError(path, e.what());
    }
    if (rule == nullptr) {
      throw IngestError(path, fmt::format("no rule of {} matches it (path '{}')", mapping.source(), relative_path));
    }
    const auto missing = [&](const std::string& key, int line) {
      return IngestError(path, fmt::format("keyword {} is missing (named by rule '{}' at {})", key, rule->name,
                                           mapping.where(line)));
    };
    // The planes.
    const auto locate = [&](const HduRef& ref, const char* what) -> int {
      if (ref.number > 0) {
        if (ref.number > file.hdu_count()) {
          throw IngestError(path, fmt::format("the {} plane is HDU {} but the file has {} HDUs ({})", what, ref.number,
                                              file.hdu_count(), mapping.where(ref.line)));
        }
        return ref.number;
      }
      if (!file.move_to_named_hdu(ref.extname)) {
        throw IngestError(path, fmt::format("the {} plane is EXTNAME {}, which the file lacks ({})", what, ref.extname,
                                            mapping.where(ref.line)));
      }
      return file.current_hdu();
    };
    const int image_hdu = rule->image.given() ? locate(rule->image, "image") : default_hdu;
    std::vector<long> image_shape;
    if (image_hdu > 0) {
      file.move_to_hdu(image_hdu);
      if (!file.current_is_image() || file.image_shape().size() < 2) {
        throw IngestError(path, fmt::format("HDU {} holds no 2-D image{}", image_hdu,
                                            rule->image.given() ? " (" + mapping.where(rule->image.line) + ")" : ""));
      }
      image_shape = file.image_shape();
    }
    for (const auto& [ref, what] : {std::pair{&rule->mask, "mask"}, std::pair{&rule->variance, "variance"}}) {
      if (!ref->given()) continue;
      const int hdu = locate(*ref, what);
      file.move_to_hdu(hdu);
      if (!file.current_is_image() || file.image_shape() != image_shape) {
        throw IngestError(path, fmt::format("the {} plane (HDU {}) is not an image of the image plane's size ({})",
                                            what, hdu, mapping.where(ref->line)));
      }
    }
    MappedHeader header(file, image_hdu);

    MappedRecord out;
    out.rule = rule;
    DatasetRecord& rec = out.record;
    rec.type = rule->type;
    rec.collection = rule->collection.value_or(options.collection);

    // The band first: templates may name it.
    std::optional<MappedBand> band = rule->band;
    if (!rule->band_keyword.empty()) {
      const auto value = header.text(rule->band_keyword);
      if (!value) throw missing(rule->band_keyword, rule->band_line);
      const auto it = rule->band_values.find(*value);
      if (it == rule->band_values.end()) {
        throw IngestError(path, fmt::format("{}='{}' is not in the band table of rule '{}' ({})", rule->band_keyword,
                                            *value, rule->name, mapping.where(rule->band_line)));
      }
      band = it->second;
    }
    const auto expand = [&](const Template& t) {
      std::string result;
      std::size_t i = 0;
      while (i < t.text.size()) {
        const auto open = t.text.find('{', i);
        if (open == std::string::npos) {
          result += t.text.substr(i);
          break;
        }
        result += t.text.substr(i, open - i);
        const auto close = t.text.find('}', open);
        const std::string name = t.text.substr(open + 1, close - open - 1);
        if (name == "path.stem") {
          auto stem = path.filename().string();
          for (const char* ext : {".fits.fz", ".fits", ".fit", ".fz"}) {
            if (stem.size() > std::strlen(ext) && stem.ends_with(ext)) {
              stem.resize(stem.size() - std::strlen(ext));
              break;
            }
          }
          result += stem;
        } else if (name == "path.name") {
          result += path.filename().string();
        } else if (name == "path.parent") {
          result += path.parent_path().filename().string();
        } else if (name == "band") {
          if (!band) throw IngestError(path, fmt::format("{{band}} used but rule '{}' gives no band ({})", rule->name, mapping.where(t.line)));
          result += band->name;
        } else if (name == "collection") {
          result += rec.collection;
        } else if (name == "type") {
          result += std::string(to_string(rec.type));
        } else {
          const auto value = header.text(name);
          if (!value) throw missing(name, t.line);
          result += *value;
        }
        i = close + 1;
      }
      return result;
    };
    const auto integer = [&](const std::string& key) -> std::optional<std::int64_t> {
      const auto it = rule->data_id.find(key);
      if (it == rule->data_id.end()) return std::nullopt;
      const auto text = expand(it->second);
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || ptr != text.data() + text.size()) {
        throw IngestError(path, fmt::format("data_id.{} is '{}', not a whole number ({})", key, text,
                                            mapping.where(it->second.line)));
      }
      return v;
    };
    const auto textual = [&](const std::string& key) {
      const auto it = rule->data_id.find(key);
      return it == rule->data_id.end() ? std::string() : expand(it->second);
    };
    DataId& id = rec.data_id;
    id.instrument = textual("instrument");
    id.visit = integer("visit");
    id.exposure = integer("exposure");
    if (!id.exposure) id.exposure = id.visit;
    id.detector = integer("detector");
    id.detector_name = textual("detector_name");
    id.raft = textual("raft");
    id.physical_filter = textual("physical_filter");
    id.skymap = textual("skymap");
    id.tract = integer("tract");
    id.patch = textual("patch");
    if (band) {
      id.band = band->name;
      rec.em_min = band->em_min;
      rec.em_max = band->em_max;
      rec.em_res_power = 0.5 * (band->em_min + band->em_max) / (band->em_max - band->em_min);
    }
    if (rule->target) rec.target_name = expand(*rule->target);
    if (rule->facility) rec.facility_name = expand(*rule->facility);
    rec.instrument_name = rule->instrument ? expand(*rule->instrument) : id.instrument;
    if (id.instrument.empty()) id.instrument = rec.instrument_name;

    if (rule->time) {
      const auto& tm = *rule->time;
      const auto read_time = [&](const std::string& key) -> double {
        const auto value = header.text(key);
        if (!value) throw missing(key, tm.line);
        char* end = nullptr;
        const double mjd = std::strtod(value->c_str(), &end);
        double result = 0.0;
        if (end != value->c_str() && *end == '\0') {
          result = mjd;
        } else {
          try {
            result = mjd_from_iso(*value);
          } catch (const std::invalid_argument& e) {
            throw IngestError(path, fmt::format("{}='{}' is not a date: {} ({})", key, *value, e.what(), mapping.where(tm.line)));
          }
        }
        return mjd_to_tai(result, tm.scale);
      };
      rec.t_min = read_time(tm.start);
      if (!tm.exptime.empty()) {
        const auto value = header.text(tm.exptime);
        if (!value) throw missing(tm.exptime, tm.line);
        char* end = nullptr;
        const double seconds = std::strtod(value->c_str(), &end);
        if (end == value->c_str() || *end != '\0' || !(seconds >= 0.0)) {
          throw IngestError(path, fmt::format("{}='{}' is not an exposure time in seconds ({})", tm.exptime, *value,
                                              mapping.where(tm.line)));
        }
        rec.t_exptime = seconds;
      }
      if (!tm.end.empty()) {
        rec.t_max = read_time(tm.end);
      } else if (rec.t_exptime) {
        rec.t_max = *rec.t_min + *rec.t_exptime / 86400.0;
      } else {
        rec.t_max = rec.t_min;
      }
      if (*rec.t_max < *rec.t_min) throw IngestError(path, fmt::format("it ends before it starts ({})", mapping.where(tm.line)));
    }

    if (!is_calibration(rec.type)) {
      const auto w = image_wcs(file, image_hdu, path);
      fill_sky(rec, w, image_shape[0], image_shape[1], path);
      rec.s_resolution = rec.pixel_scale_arcsec;
    }

    // Observation columns.
    for (const auto& [column, templ] : rule->columns) {
      const auto text = expand(templ);
      if (column == "software_version") {
        rec.software_version = text;
        continue;
      }
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(value)) {
        throw IngestError(path, fmt::format("columns.{} is '{}', not a number ({})", column, text, mapping.where(templ.line)));
      }
      std::optional<double>* target = column == "seeing"           ? &rec.seeing
                                       : column == "airmass"        ? &rec.airmass
                                       : column == "sky_background" ? &rec.sky_background
                                       : column == "zero_point"     ? &rec.zero_point
                                       : column == "psf_fwhm"       ? &rec.psf_fwhm
                                       : column == "s_resolution"   ? &rec.s_resolution
                                       : column == "telescope_ra"   ? &rec.telescope_ra
                                                                    : &rec.telescope_dec;
      *target = value;
    }

    const std::string local = rule->dataset_id ? expand(*rule->dataset_id) : expand({"{path.stem}", rule->line});
    rec.dataset_id = fmt::format("{}.{}.{}", rec.collection, to_string(rec.type), safe_text(local));
    if (!is_safe_identifier(rec.dataset_id)) {
      throw IngestError(path, fmt::format("dataset ID '{}' is not usable (at most 200 characters of [A-Za-z0-9._-]){}",
                                          rec.dataset_id,
                                          rule->dataset_id ? " (" + mapping.where(rule->dataset_id->line) + ")" : ""));
    }
    rec.rights.owner = rule->owner.value_or(std::string(kSurveyOwner));
    if (rule->policy) rec.rights.policy = *rule->policy;
    rec.rights.groups = rule->groups;
    return out;
  } catch (const fits::FitsError& e) {
    throw IngestError(path, fmt::format("not a readable FITS file: {}", e.what()));
  }
}

}  // namespace pixserve::repo
