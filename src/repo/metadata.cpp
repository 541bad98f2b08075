#include "repo/metadata.hpp"

#include <algorithm>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "repo/astro_units.hpp"
#include "repo/hdu_parts.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::repo {
namespace {

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

namespace {

// What a mapping's templates and keywords read: header values as text,
// from the primary HDU first, then the image HDU. Each keyword is looked up
// once per file: rule matching asks for the same ones again and again
// (DSTYPE once per rule), and cfitsio scans the header on every lookup.
class MappedHeader {
 public:
  MappedHeader(fits::File& file, int image_hdu) : file_(file), image_hdu_(image_hdu) {}
  const std::optional<std::string>& text(const std::string& key) {
    auto [it, inserted] = cache_.try_emplace(key);
    if (inserted) it->second = lookup(key);
    return it->second;
  }

 private:
  std::optional<std::string> lookup(const std::string& key) {
    file_.move_to_hdu(1);
    if (file_.has_key(key)) return file_.read_value_text(key);
    if (image_hdu_ > 1) {
      file_.move_to_hdu(image_hdu_);
      if (file_.has_key(key)) return file_.read_value_text(key);
    }
    return std::nullopt;
  }

  fits::File& file_;
  int image_hdu_;
  std::map<std::string, std::optional<std::string>, std::less<>> cache_;
};

std::string safe_text(std::string_view text) {
  std::string out;
  for (const char c : text) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ? c : '_';
  return out;
}

// A user image's name in the registry's own IDs: the file's stem with
// anything but [A-Za-z0-9_-] as '_' (so "my image.fits" is my_image).
std::string user_image_name(const std::filesystem::path& path) {
  std::string out;
  for (const char c : path.stem().string()) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') ? c : '_';
  return out;
}

bool data_id_has(const DataId& id, std::string_view key) {
  if (key == "visit") return id.visit.has_value();
  if (key == "exposure") return id.exposure.has_value();
  if (key == "detector") return id.detector.has_value();
  if (key == "tract") return id.tract.has_value();
  if (key == "instrument") return !id.instrument.empty();
  if (key == "detector_name") return !id.detector_name.empty();
  if (key == "raft") return !id.raft.empty();
  if (key == "band") return !id.band.empty();
  if (key == "physical_filter") return !id.physical_filter.empty();
  if (key == "skymap") return !id.skymap.empty();
  return !id.patch.empty();  // patch: the keys are checked when the mapping is read
}

// "a", "a or b", "a, b or c"
std::string one_of(const std::vector<std::string>& keys) {
  std::string out;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    out += (i == 0 ? "" : i + 1 == keys.size() ? " or " : ", ") + keys[i];
  }
  return out;
}

// Reads one file through the rule that matched it: the state every step
// shares (the file, its header, the record being filled).
class RuleReader {
 public:
  RuleReader(const std::filesystem::path& path, const Mapping& mapping, const MappingRule& rule, MappedHeader& header,
             DatasetRecord& rec)
      : path_(path), mapping_(mapping), rule_(rule), header_(header), rec_(rec) {}

  IngestError missing(const std::string& key, int line) const {
    return IngestError(path_, fmt::format("keyword {} is missing (named by rule '{}' at {})", key, rule_.name,
                                          mapping_.where(line)));
  }
  std::string where(int line) const { return mapping_.where(line); }

  // The template's value; nullopt when, in every alternative, an optional
  // placeholder has no value. A required one that has none is an error.
  std::optional<std::string> expand(const Template& t) const {
    for (const auto& parts : t.alternatives) {
      std::string result;
      bool complete = true;
      for (const auto& part : parts) {
        if (!part.placeholder) {
          result += part.text;
          continue;
        }
        const auto value = placeholder(part, t.line);
        if (!value) {
          if (!part.optional) throw missing(part.text, t.line);
          complete = false;
          break;
        }
        result += *value;
      }
      if (complete) return result;
    }
    return std::nullopt;
  }

  std::optional<std::int64_t> integer(const std::string& key) const {
    const auto it = rule_.data_id.find(key);
    if (it == rule_.data_id.end()) return std::nullopt;
    const auto text = expand(it->second);
    if (!text) return std::nullopt;
    std::int64_t v = 0;
    const auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || ptr != text->data() + text->size()) {
      throw IngestError(path_, fmt::format("data_id.{} is '{}', not a whole number ({})", key, *text,
                                           where(it->second.line)));
    }
    return v;
  }
  std::string textual(const std::string& key) const {
    const auto it = rule_.data_id.find(key);
    return it == rule_.data_id.end() ? std::string() : expand(it->second).value_or("");
  }

  void read_band() {
    band_ = rule_.band;
    if (rule_.band_keyword.empty()) return;
    const auto& value = header_.text(rule_.band_keyword);
    if (rule_.band_values.empty()) {
      // The keyword holds a pixserve band letter; blank is no band.
      if (!value || value->empty()) {
        if (!rule_.band_optional) throw missing(rule_.band_keyword, rule_.band_line);
        return;
      }
      const auto limits = band_limits(*value);
      if (!limits) {
        throw IngestError(path_, fmt::format("unknown band {}='{}' (expected one of u g r i z y) ({})",
                                             rule_.band_keyword, *value, where(rule_.band_line)));
      }
      band_ = MappedBand{*value, limits->em_min, limits->em_max};
      return;
    }
    if (!value) {
      if (!rule_.band_optional) throw missing(rule_.band_keyword, rule_.band_line);
      return;
    }
    const auto it = rule_.band_values.find(*value);
    if (it == rule_.band_values.end()) {
      throw IngestError(path_, fmt::format("{}='{}' is not in the band table of rule '{}' ({})", rule_.band_keyword,
                                           *value, rule_.name, where(rule_.band_line)));
    }
    band_ = it->second;
  }

  void read_data_id() {
    DataId& id = rec_.data_id;
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
    if (band_) {
      id.band = band_->name;
      rec_.em_min = band_->em_min;
      rec_.em_max = band_->em_max;
      rec_.em_res_power = BandLimits{band_->em_min, band_->em_max}.resolving_power();
    }
    if (rule_.target) rec_.target_name = expand(*rule_.target).value_or("");
    if (rule_.facility) rec_.facility_name = expand(*rule_.facility).value_or("");
    rec_.instrument_name = rule_.instrument ? expand(*rule_.instrument).value_or("") : id.instrument;
    if (id.instrument.empty()) id.instrument = rec_.instrument_name;
  }

  void read_time() {
    if (!rule_.time) return;
    const auto& tm = *rule_.time;
    const auto mjd = [&](const std::string& key, const std::string& value) -> double {
      char* end = nullptr;
      const double number = std::strtod(value.c_str(), &end);
      double result = 0.0;
      if (end != value.c_str() && *end == '\0') {
        result = number;
      } else {
        try {
          result = mjd_from_iso(value);
        } catch (const std::invalid_argument& e) {
          throw IngestError(path_, fmt::format("{}='{}' is not a date: {} ({})", key, value, e.what(), where(tm.line)));
        }
      }
      return mjd_to_tai(result, tm.scale);
    };
    for (const auto& key : tm.start) {
      if (const auto& value = header_.text(key)) {
        rec_.t_min = mjd(key, *value);
        break;
      }
    }
    if (!rec_.t_min && !tm.start_optional) {
      if (tm.start.size() == 1) throw missing(tm.start.front(), tm.line);
      throw IngestError(path_, fmt::format("no {} (named by rule '{}' at {})", one_of(tm.start), rule_.name, where(tm.line)));
    }
    if (!tm.exptime.name.empty()) {
      const auto& value = header_.text(tm.exptime.name);
      if (value) {
        char* end = nullptr;
        const double seconds = std::strtod(value->c_str(), &end);
        if (end == value->c_str() || *end != '\0' || !(seconds >= 0.0)) {
          throw IngestError(path_, fmt::format("{}='{}' is not an exposure time in seconds ({})", tm.exptime.name,
                                               *value, where(tm.line)));
        }
        rec_.t_exptime = seconds;
      } else if (!tm.exptime.optional) {
        throw missing(tm.exptime.name, tm.line);
      }
    }
    if (!tm.end.name.empty()) {
      if (const auto& value = header_.text(tm.end.name)) {
        rec_.t_max = mjd(tm.end.name, *value);
      } else if (!tm.end.optional) {
        throw missing(tm.end.name, tm.line);
      }
    } else if (rec_.t_min && rec_.t_exptime) {
      rec_.t_max = *rec_.t_min + *rec_.t_exptime / 86400.0;
    } else if (tm.exptime.name.empty()) {
      rec_.t_max = rec_.t_min;  // no exposure time in this survey's files: an instant
    }  // else an optional exposure time the file lacks: the end is unknown
    if (rec_.t_min && rec_.t_max && *rec_.t_max < *rec_.t_min) {
      throw IngestError(path_, fmt::format("it ends before it starts ({})", where(tm.line)));
    }
  }

  // The size of the pixel grid the WCS refers to: the image's, or (an image
  // HDU without 2-D pixels, as in raw amplifier files) the detector's.
  std::pair<long, long> sky_grid(const std::vector<long>& image_shape, int image_hdu) {
    if (image_shape.size() >= 2) return {image_shape[0], image_shape[1]};
    if (rule_.detector_size.empty()) throw IngestError(path_, fmt::format("HDU {} holds no 2-D image", image_hdu));
    const auto& value = header_.text(rule_.detector_size);
    const auto size = value ? parse_detsize(*value) : std::nullopt;
    if (!size) {
      throw IngestError(path_, fmt::format("{} file without a valid {} keyword: HDU {} holds no 2-D image, so the "
                                           "size of the detector its WCS refers to must be given as [x0:x1,y0:y1]{} "
                                           "(rule '{}' at {})",
                                           to_string(rec_.type), rule_.detector_size, image_hdu,
                                           value ? fmt::format(", not '{}'", *value) : "", rule_.name,
                                           where(rule_.detector_size_line)));
    }
    return *size;
  }

  void read_columns() {
    for (const auto& [column, templ] : rule_.columns) {
      const auto text = expand(templ);
      if (column == "software_version") {
        rec_.software_version = text.value_or("");
        continue;
      }
      if (column == "n_inputs") {
        rec_.n_inputs.reset();
        if (!text) continue;
        const double value = column_number(column, *text, templ.line);
        if (value != std::floor(value) || value < 0 || value > 1e15) {
          throw IngestError(path_, fmt::format("columns.n_inputs is '{}', not a count of images ({})", *text,
                                               where(templ.line)));
        }
        rec_.n_inputs = static_cast<std::int64_t>(value);
        continue;
      }
      std::optional<double>* target = column == "seeing"              ? &rec_.seeing
                                      : column == "airmass"           ? &rec_.airmass
                                      : column == "sky_background"    ? &rec_.sky_background
                                      : column == "zero_point"        ? &rec_.zero_point
                                      : column == "psf_fwhm"          ? &rec_.psf_fwhm
                                      : column == "s_resolution"      ? &rec_.s_resolution
                                      : column == "telescope_ra"      ? &rec_.telescope_ra
                                      : column == "coverage_fraction" ? &rec_.coverage_fraction
                                      : column == "depth_5sigma"      ? &rec_.depth_5sigma
                                                                      : &rec_.telescope_dec;
      if (!text) {
        *target = std::nullopt;  // an optional keyword the file lacks: no value, not the default
        continue;
      }
      const double value = column_number(column, *text, templ.line);
      if (column == "coverage_fraction" && !(value >= 0.0 && value <= 1.0)) {
        throw IngestError(path_, fmt::format("columns.coverage_fraction is '{}', not a fraction from 0 to 1 ({})",
                                             *text, where(templ.line)));
      }
      *target = value;
    }
  }

  double column_number(const std::string& column, const std::string& text, int line) const {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value)) {
      throw IngestError(path_, fmt::format("columns.{} is '{}', not a number ({})", column, text, where(line)));
    }
    return value;
  }

  void read_identity(const MetadataOptions& options) {
    const bool user = rec_.type == DatasetType::user;
    const std::string owner = rule_.owner.value_or(user ? options.owner : std::string(kSurveyOwner));
    if (user && owner.empty()) {
      // The rule's name says why the file is a user image ("no DSTYPE keyword").
      throw IngestError(path_, fmt::format("{}: a user image needs an owner (--owner) ({})", rule_.name, where(rule_.line)));
    }
    if (user && is_reserved_owner(owner)) {
      throw IngestError(path_, fmt::format("owner '{}' is reserved (it owns the survey's own data): a user image needs "
                                           "the name of a user",
                                           owner));
    }
    if (rule_.standard_id) {
      try {
        rec_.dataset_id = make_dataset_id(rec_.collection, rec_.type, rec_.data_id, owner, user_image_name(path_));
      } catch (const std::invalid_argument& e) {
        throw IngestError(path_, e.what());
      }
    } else {
      const auto local = rule_.dataset_id ? expand(*rule_.dataset_id) : expand(Template::of("{path.stem}", rule_.line));
      if (!local) {
        throw IngestError(path_, fmt::format("dataset_id has no value: an optional keyword is missing ({})",
                                             where(rule_.dataset_id->line)));
      }
      rec_.dataset_id = fmt::format("{}.{}.{}", rec_.collection, to_string(rec_.type), safe_text(*local));
      if (!is_safe_identifier(rec_.dataset_id)) {
        throw IngestError(path_, fmt::format("dataset ID '{}' is not usable (at most 200 characters of [A-Za-z0-9._-]){}",
                                             rec_.dataset_id,
                                             rule_.dataset_id ? " (" + where(rule_.dataset_id->line) + ")" : ""));
      }
    }
    rec_.rights.owner = owner;
    if (rule_.policy) rec_.rights.policy = *rule_.policy;
    rec_.rights.groups = rule_.groups;
  }

  void read_provenance(fits::File& file) {
    for (const auto& input : rule_.inputs) {
      if (!input.when.empty() && !data_id_has(rec_.data_id, input.when)) continue;
      try {
        rec_.inputs.push_back({make_dataset_id(rec_.collection, input.type, rec_.data_id), input.role});
      } catch (const std::invalid_argument& e) {
        throw IngestError(path_, fmt::format("input '{}': {} ({})", input.role, e.what(), where(input.line)));
      }
    }
    if (!rule_.inputs_table) return;
    const auto& table = *rule_.inputs_table;
    const std::string name = table.hdu.number > 0 ? std::to_string(table.hdu.number) : table.hdu.extname;
    const bool found = table.hdu.number > 0 ? table.hdu.number <= file.hdu_count() : file.move_to_named_hdu(table.hdu.extname);
    if (!found) {
      if (table.optional) return;
      throw IngestError(path_, fmt::format("the inputs table HDU {} is missing ({})", name, where(table.hdu.line)));
    }
    if (table.hdu.number > 0) file.move_to_hdu(table.hdu.number);
    std::vector<std::vector<long long>> columns;
    for (const auto& [key, column] : table.columns) columns.push_back(file.read_int_column(column));
    for (const auto& c : columns) {
      if (c.size() != columns.front().size()) {
        throw IngestError(path_, fmt::format("{} table columns differ in length ({})", name, where(table.line)));
      }
    }
    const std::size_t rows = columns.empty() ? 0 : columns.front().size();
    for (std::size_t row = 0; row < rows; ++row) {
      DataId id;
      for (std::size_t c = 0; c < columns.size(); ++c) {
        const auto& key = table.columns[c].first;
        auto& field = key == "visit" ? id.visit : key == "exposure" ? id.exposure : key == "detector" ? id.detector : id.tract;
        field = columns[c][row];
      }
      try {
        rec_.inputs.push_back({make_dataset_id(rec_.collection, table.type, id), table.role});
      } catch (const std::invalid_argument& e) {
        throw IngestError(path_, fmt::format("{} row {}: {} ({})", name, row + 1, e.what(), where(table.line)));
      }
    }
  }

 private:
  // Path, band and record placeholders; header keywords otherwise.
  std::optional<std::string> placeholder(const TemplatePart& part, int line) const {
    const std::string& name = part.text;
    if (name == "path.stem") {
      auto stem = path_.filename().string();
      for (const char* ext : {".fits.fz", ".fits", ".fit", ".fz"}) {
        if (stem.size() > std::strlen(ext) && stem.ends_with(ext)) {
          stem.resize(stem.size() - std::strlen(ext));
          break;
        }
      }
      return stem;
    }
    if (name == "path.name") return path_.filename().string();
    if (name == "path.parent") return path_.parent_path().filename().string();
    if (name == "band") {
      if (!band_ && !part.optional) {
        throw IngestError(path_, fmt::format("{{band}} used but rule '{}' gives no band ({})", rule_.name, where(line)));
      }
      return band_ ? std::optional(band_->name) : std::nullopt;
    }
    if (name == "collection") return rec_.collection;
    if (name == "type") return std::string(to_string(rec_.type));
    return header_.text(name);
  }

  const std::filesystem::path& path_;
  const Mapping& mapping_;
  const MappingRule& rule_;
  MappedHeader& header_;
  DatasetRecord& rec_;
  std::optional<MappedBand> band_;
};

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
    MappedRecord out;
    out.rule = rule;
    DatasetRecord& rec = out.record;
    rec.collection = rule->collection.value_or(options.collection);
    if (rule->reject) {
      const auto message = RuleReader(path, mapping, *rule, probe, rec).expand(*rule->reject);
      throw IngestError(path, message.value_or(fmt::format("refused by rule '{}' ({})", rule->name, mapping.where(rule->line))));
    }
    rec.type = rule->type;
    rec.calib_level = rule->calib_level;

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
      if (file.current_is_image()) image_shape = file.image_shape();
    }
    // A named image plane must hold the pixels, unless the rule says the
    // WCS refers to a detector assembled from other HDUs.
    if (rule->image.given() && image_shape.size() < 2 && rule->detector_size.empty()) {
      throw IngestError(path, fmt::format("HDU {} holds no 2-D image ({})", image_hdu, mapping.where(rule->image.line)));
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
    // The probe already holds what matching read, when it reads the same HDUs.
    std::optional<MappedHeader> own;
    MappedHeader& header = image_hdu == default_hdu ? probe : own.emplace(file, image_hdu);
    RuleReader reader(path, mapping, *rule, header, rec);

    reader.read_band();  // first: templates may name it
    reader.read_data_id();
    reader.read_time();
    // The sky: every science image needs a celestial WCS; calibrations have none.
    if (!is_calibration(rec.type)) {
      const auto w = image_wcs(file, image_hdu, path);
      const auto [width, height] = reader.sky_grid(image_shape, image_hdu);
      fill_sky(rec, w, width, height, path);
      rec.s_resolution = rec.pixel_scale_arcsec;
    }
    reader.read_columns();
    reader.read_identity(options);
    reader.read_provenance(file);
    rec.parts = read_hdu_parts(file);
    return out;
  } catch (const fits::FitsError& e) {
    throw IngestError(path, fmt::format("not a readable FITS file: {}", e.what()));
  } catch (const TooManyHdus& e) {
    throw IngestError(path, e.what());
  }
}

DatasetRecord read_dataset_metadata(const std::filesystem::path& path, const MetadataOptions& options) {
  // The built-in mapping's rules match by header alone: the path they are
  // shown does not matter.
  return read_mapped_metadata(path, path.filename().generic_string(), Mapping::builtin(), options).record;
}

}  // namespace pixserve::repo
