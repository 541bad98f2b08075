#include "repo/mapping.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "repo/astro_units.hpp"
#include "repo/builtin_mapping.hpp"

namespace pixserve::repo {
namespace {

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    throw MappingError(fmt::format("{}:{}: {}", source_, line(node), what));
  }
  static int line(const YAML::Node& node) { return node.Mark().line >= 0 ? node.Mark().line + 1 : 0; }

  // Only these keys, each at most once (yaml-cpp keeps the last duplicate).
  void keys(const YAML::Node& map, const std::string& what, std::initializer_list<std::string_view> allowed) const {
    if (!map.IsMap()) fail(map, what + ": expected a mapping of keys to values");
    for (const auto& kv : map) {
      const auto key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail(kv.first, fmt::format("{}: unknown key '{}' (known: {})", what, key, list));
      }
    }
  }
  std::string text(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + ": expected a single value");
    return node.Scalar();
  }
  double number(const YAML::Node& node, const std::string& what) const {
    const auto s = text(node, what);
    try {
      std::size_t used = 0;
      const double v = std::stod(s, &used);
      if (used == s.size() && std::isfinite(v)) return v;
    } catch (const std::exception&) {
    }
    fail(node, fmt::format("{}: '{}' is not a number", what, s));
  }
  // A template, or a list of templates tried in order.
  Template templ(const YAML::Node& node, const std::string& what) const {
    Template t;
    t.line = line(node);
    const auto add = [&](const YAML::Node& item) {
      const auto text = this->text(item, what);
      try {
        t.alternatives.push_back(Template::split(text));
      } catch (const std::invalid_argument& e) {
        fail(item, fmt::format("{}: {} in '{}'", what, e.what(), text));
      }
      t.text += (t.text.empty() ? "" : " | ") + text;
    };
    if (node.IsSequence()) {
      if (node.size() == 0) fail(node, what + ": an empty list of templates");
      for (const auto& item : node) add(item);
    } else {
      add(node);
    }
    return t;
  }
  // A keyword name; a trailing '?' lets the file lack it.
  KeywordRef keyword(const YAML::Node& node, const std::string& what) const {
    KeywordRef k{text(node, what), false};
    if (k.name.ends_with('?')) {
      k.name.pop_back();
      k.optional = true;
    }
    if (k.name.empty() || k.name.find_first_of(" {}?") != std::string::npos) {
      fail(node, fmt::format("{}: '{}' is not a keyword name", what, node.Scalar()));
    }
    return k;
  }
  DatasetType dataset_type(const YAML::Node& node, const std::string& what) const {
    const auto t = text(node, what);
    const auto type = dataset_type_from_string(t);
    if (!type) {
      fail(node, fmt::format("{}: '{}' is not one of raw, bias, flat, calexp, calexp_comp, diffim, deepCoadd, "
                             "goodSeeingCoadd, user",
                             what, t));
    }
    return *type;
  }
  std::vector<std::string> list(const YAML::Node& node, const std::string& what) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
    } else if (node.IsSequence()) {
      for (const auto& v : node) out.push_back(text(v, what));
    } else {
      fail(node, what + ": expected a value or a list of values");
    }
    return out;
  }
  HduRef hdu(const YAML::Node& node, const std::string& what) const { return hdu(text(node, what), node, what); }
  // An HDU named by `s` (a number or an EXTNAME) written at `node`.
  HduRef hdu(const std::string& s, const YAML::Node& node, const std::string& what) const {
    HduRef ref{.number = 0, .extname = {}, .line = line(node)};
    if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      ref.number = std::stoi(s);
      if (ref.number < 1) fail(node, what + ": HDU numbers start at 1 (the primary HDU)");
    } else {
      ref.extname = s;
    }
    return ref;
  }
  MappedBand band_value(const YAML::Node& node, const std::string& what) const {
    if (node.IsScalar()) {
      const auto name = node.Scalar();
      const auto limits = band_limits(name);
      if (!limits) {
        fail(node, fmt::format("{}: '{}' is not a band letter (u g r i z y); give {{name, em_min, em_max}} for "
                               "another band",
                               what, name));
      }
      return {name, limits->em_min, limits->em_max};
    }
    keys(node, what, {"name", "em_min", "em_max"});
    if (!node["name"] || !node["em_min"] || !node["em_max"]) fail(node, what + ": needs name, em_min and em_max");
    MappedBand b{text(node["name"], what + ".name"), number(node["em_min"], what + ".em_min"),
                 number(node["em_max"], what + ".em_max")};
    if (!(b.em_min > 0.0) || !(b.em_max > b.em_min) || b.em_max > 1.0) {
      fail(node, what + ": em_min and em_max are wavelengths in metres with 0 < em_min < em_max");
    }
    if (b.name.empty() || !is_safe_identifier(b.name)) fail(node, what + ".name: letters, digits, '.', '_', '-'");
    return b;
  }

 private:
  std::string source_;
};

const std::set<std::string, std::less<>> kDataIdKeys = {"instrument",      "visit",  "exposure", "detector",
                                                         "detector_name",   "raft",   "physical_filter",
                                                         "skymap",          "tract",  "patch"};
// Data-ID keys an input table's integer columns may fill.
const std::set<std::string, std::less<>> kIntegerDataIdKeys = {"visit", "exposure", "detector", "tract"};

void read_match(const Reader& r, const YAML::Node& m, const std::string& what, MappingRule& rule) {
  r.keys(m, what, {"path", "header", "otherwise"});
  if (m["path"]) {
    rule.glob = r.text(m["path"], what + ".path");
    if (rule.glob.empty()) r.fail(m["path"], what + ".path: empty glob");
  }
  if (const auto h = m["header"]) {
    if (!h.IsMap()) r.fail(h, what + ".header: expected KEYWORD: value (or [values], or null for absent)");
    for (const auto& kv : h) {
      HeaderCondition c{kv.first.Scalar(), {}, kv.second.IsNull()};
      if (!c.absent) {
        c.values = r.list(kv.second, what + ".header." + c.keyword);
        if (c.values.empty()) r.fail(kv.second, what + ".header." + c.keyword + ": an empty list matches nothing");
      }
      rule.header.push_back(std::move(c));
    }
  }
  if (m["otherwise"]) {
    const auto v = r.text(m["otherwise"], what + ".otherwise");
    if (v != "true" && v != "false") r.fail(m["otherwise"], what + ".otherwise: true or false");
    rule.otherwise = v == "true";
    if (rule.otherwise && (m["path"] || m["header"])) {
      r.fail(m, what + ": an otherwise rule takes the files no other rule matches, with no path or header of its own");
    }
  }
}

void read_time(const Reader& r, const YAML::Node& t, const std::string& what, MappingRule& rule) {
  r.keys(t, what, {"start", "end", "exptime", "scale"});
  if (!t["start"]) r.fail(t, what + ": start is required (a keyword such as DATE-OBS or MJD-OBS)");
  TimeMapping tm;
  tm.line = Reader::line(t);
  std::size_t optional = 0;
  const auto add_start = [&](const YAML::Node& node) {
    const auto k = r.keyword(node, what + ".start");
    tm.start.push_back(k.name);
    optional += k.optional ? 1 : 0;
  };
  if (t["start"].IsSequence()) {
    if (t["start"].size() == 0) r.fail(t["start"], what + ".start: an empty list");
    for (const auto& k : t["start"]) add_start(k);
  } else {
    add_start(t["start"]);
  }
  if (optional != 0 && optional != tm.start.size()) {
    r.fail(t["start"], what + ".start: mark every keyword of the list with '?' (the start may be absent) or none");
  }
  tm.start_optional = optional != 0;
  if (tm.start_optional && is_visit_based(rule.type)) {
    r.fail(t["start"], fmt::format("{}.start: a {} needs its start time ('?' is not allowed)", what, to_string(rule.type)));
  }
  if (t["end"]) tm.end = r.keyword(t["end"], what + ".end");
  if (t["exptime"]) tm.exptime = r.keyword(t["exptime"], what + ".exptime");
  if (t["scale"]) {
    const auto s = r.text(t["scale"], what + ".scale");
    if (s == "utc" || s == "UTC") {
      tm.scale = TimeScale::utc;
    } else if (s == "tai" || s == "TAI") {
      tm.scale = TimeScale::tai;
    } else if (s == "tt" || s == "TT") {
      tm.scale = TimeScale::tt;
    } else {
      r.fail(t["scale"], fmt::format("{}.scale: '{}' is not utc, tai or tt", what, s));
    }
  }
  rule.time = tm;
}

void read_band(const Reader& r, const YAML::Node& b, const std::string& what, MappingRule& rule) {
  rule.band_line = Reader::line(b);
  if (b.IsScalar()) {
    rule.band = r.band_value(b, what);
    return;
  }
  r.keys(b, what, {"keyword", "values"});
  if (!b["keyword"]) r.fail(b, what + ": needs keyword (and values, unless it holds a band letter), or a single band");
  const auto k = r.keyword(b["keyword"], what + ".keyword");
  rule.band_keyword = k.name;
  rule.band_optional = k.optional;
  if (!b["values"]) return;  // the keyword holds u g r i z y
  if (!b["values"].IsMap() || b["values"].size() == 0) r.fail(b["values"], what + ".values: expected HEADER VALUE: band");
  for (const auto& kv : b["values"]) {
    rule.band_values.emplace(kv.first.Scalar(), r.band_value(kv.second, what + ".values." + kv.first.Scalar()));
  }
}

void read_inputs(const Reader& r, const YAML::Node& node, const std::string& what, MappingRule& rule) {
  if (!node.IsSequence()) r.fail(node, what + ": expected a list of {dataset_type, role, when}");
  std::size_t i = 0;
  for (const auto& item : node) {
    const auto at = fmt::format("{}[{}]", what, i++);
    r.keys(item, at, {"dataset_type", "role", "when"});
    if (!item["dataset_type"] || !item["role"]) r.fail(item, at + ": needs dataset_type and role");
    MappedInput in;
    in.line = Reader::line(item);
    in.type = r.dataset_type(item["dataset_type"], at + ".dataset_type");
    if (in.type == DatasetType::user) r.fail(item["dataset_type"], at + ".dataset_type: user images have no data-ID name");
    in.role = r.text(item["role"], at + ".role");
    if (!is_safe_identifier(in.role)) r.fail(item["role"], at + ".role: letters, digits, '.', '_', '-'");
    if (item["when"]) {
      in.when = r.text(item["when"], at + ".when");
      if (in.when != "band" && !kDataIdKeys.contains(in.when)) {
        r.fail(item["when"], fmt::format("{}.when: '{}' is not a data-ID key (band, visit, detector, ...)", at, in.when));
      }
    }
    rule.inputs.push_back(std::move(in));
  }
}

void read_inputs_table(const Reader& r, const YAML::Node& node, const std::string& what, MappingRule& rule) {
  r.keys(node, what, {"hdu", "dataset_type", "role", "columns"});
  if (!node["hdu"] || !node["dataset_type"] || !node["role"] || !node["columns"]) {
    r.fail(node, what + ": needs hdu, dataset_type, role and columns");
  }
  MappedInputsTable table;
  table.line = Reader::line(node);
  const auto hdu = r.keyword(node["hdu"], what + ".hdu");
  table.optional = hdu.optional;
  table.hdu = r.hdu(hdu.name, node["hdu"], what + ".hdu");
  table.type = r.dataset_type(node["dataset_type"], what + ".dataset_type");
  if (table.type == DatasetType::user) r.fail(node["dataset_type"], what + ".dataset_type: user images have no data-ID name");
  table.role = r.text(node["role"], what + ".role");
  if (!is_safe_identifier(table.role)) r.fail(node["role"], what + ".role: letters, digits, '.', '_', '-'");
  const auto c = node["columns"];
  if (!c.IsMap() || c.size() == 0) r.fail(c, what + ".columns: expected data-ID key: COLUMN (visit, exposure, detector, tract)");
  for (const auto& kv : c) {
    const auto key = kv.first.Scalar();
    if (!kIntegerDataIdKeys.contains(key)) {
      r.fail(kv.first, fmt::format("{}.columns: unknown key '{}' (known: visit, exposure, detector, tract)", what, key));
    }
    table.columns.emplace_back(key, r.text(kv.second, what + ".columns." + key));
  }
  rule.inputs_table = std::move(table);
}

void read_rights(const Reader& r, const YAML::Node& rights, const std::string& what, MappingRule& rule) {
  r.keys(rights, what, {"policy", "groups", "owner", "embargo_hours"});
  rule.rights_line = Reader::line(rights);
  if (rights["policy"]) {
    const auto p = r.text(rights["policy"], what + ".policy");
    rule.policy = read_policy_from_string(p);
    if (!rule.policy) r.fail(rights["policy"], fmt::format("{}.policy: '{}' is not public, data-rights, groups or owner", what, p));
  }
  if (rights["groups"]) rule.groups = r.list(rights["groups"], what + ".groups");
  for (const auto& g : rule.groups) {
    if (!is_safe_identifier(g)) r.fail(rights["groups"], fmt::format("{}.groups: '{}' is not a group name", what, g));
  }
  if (rule.policy == ReadPolicy::groups && rule.groups.empty()) r.fail(rights, what + ": policy groups needs groups");
  if (rights["owner"]) {
    rule.owner = r.text(rights["owner"], what + ".owner");
    if (!is_safe_identifier(*rule.owner)) r.fail(rights["owner"], what + ".owner: not a user name");
  }
  if (rights["embargo_hours"]) {
    rule.embargo_hours = r.number(rights["embargo_hours"], what + ".embargo_hours");
    if (*rule.embargo_hours < 0) r.fail(rights["embargo_hours"], what + ".embargo_hours: must be >= 0");
  }
}

MappingRule read_rule(const Reader& r, const YAML::Node& node, std::size_t index) {
  const std::string what = fmt::format("rules[{}]", index);
  MappingRule rule;
  rule.line = Reader::line(node);
  if (node.IsMap() && node["reject"]) {
    // A rule that only refuses files: nothing else to say about them.
    r.keys(node, what + " (a reject rule)", {"name", "match", "reject"});
  } else {
    r.keys(node, what,
           {"name", "match", "dataset_type", "calib_level", "collection", "dataset_id", "standard_id", "data_id", "band",
            "time", "planes", "detector_size", "target", "facility", "instrument", "columns", "inputs", "inputs_table",
            "rights"});
  }
  rule.name = node["name"] ? r.text(node["name"], what + ".name") : fmt::format("rule {}", index + 1);
  if (const auto m = node["match"]) read_match(r, m, what + ".match", rule);
  if (node["reject"]) {
    rule.reject = r.templ(node["reject"], what + ".reject");
    return rule;
  }
  if (!node["dataset_type"]) r.fail(node, what + ": dataset_type is required");
  rule.type = r.dataset_type(node["dataset_type"], what + ".dataset_type");
  if (node["calib_level"]) {
    const auto level = r.number(node["calib_level"], what + ".calib_level");
    if (level != std::floor(level) || level < 0 || level > 4) {
      r.fail(node["calib_level"], what + ".calib_level: an ObsCore calibration level, 0 to 4");
    }
    rule.calib_level = static_cast<int>(level);
  }
  if (node["collection"]) {
    rule.collection = r.text(node["collection"], what + ".collection");
    if (!is_safe_identifier(*rule.collection)) r.fail(node["collection"], what + ".collection: letters, digits, '.', '_', '-'");
  }
  if (node["dataset_id"]) rule.dataset_id = r.templ(node["dataset_id"], what + ".dataset_id");
  if (node["standard_id"]) {
    const auto v = r.text(node["standard_id"], what + ".standard_id");
    if (v != "true" && v != "false") r.fail(node["standard_id"], what + ".standard_id: true or false");
    rule.standard_id = v == "true";
    if (rule.standard_id && rule.dataset_id) {
      r.fail(node["standard_id"], what + ": dataset_id and standard_id both name the dataset; give one");
    }
  }
  if (const auto d = node["data_id"]) {
    if (!d.IsMap()) r.fail(d, what + ".data_id: expected a mapping");
    for (const auto& kv : d) {
      const auto key = kv.first.Scalar();
      if (!kDataIdKeys.contains(key)) {
        r.fail(kv.first, fmt::format("{}.data_id: unknown key '{}' (known: instrument, visit, exposure, detector, "
                                     "detector_name, raft, physical_filter, skymap, tract, patch; the band has its "
                                     "own section)",
                                     what, key));
      }
      rule.data_id.emplace(key, r.templ(kv.second, what + ".data_id." + key));
    }
  }
  if (const auto b = node["band"]) read_band(r, b, what + ".band", rule);
  if (const auto t = node["time"]) read_time(r, t, what + ".time", rule);
  if (const auto p = node["planes"]) {
    r.keys(p, what + ".planes", {"image", "mask", "variance"});
    if (!p["image"]) r.fail(p, what + ".planes: image is required (an HDU number or EXTNAME)");
    rule.image = r.hdu(p["image"], what + ".planes.image");
    if (p["mask"]) rule.mask = r.hdu(p["mask"], what + ".planes.mask");
    if (p["variance"]) rule.variance = r.hdu(p["variance"], what + ".planes.variance");
  }
  if (node["detector_size"]) {
    const auto k = r.keyword(node["detector_size"], what + ".detector_size");
    if (k.optional) r.fail(node["detector_size"], what + ".detector_size: the keyword is only read when needed; no '?'");
    rule.detector_size = k.name;
    rule.detector_size_line = Reader::line(node["detector_size"]);
  }
  if (const auto c = node["columns"]) {
    r.keys(c, what + ".columns",
           {"seeing", "airmass", "sky_background", "zero_point", "psf_fwhm", "s_resolution", "telescope_ra",
            "telescope_dec", "software_version", "n_inputs", "coverage_fraction", "depth_5sigma"});
    for (const auto& kv : c) {
      rule.columns.emplace(kv.first.Scalar(), r.templ(kv.second, what + ".columns." + kv.first.Scalar()));
    }
  }
  if (node["target"]) rule.target = r.templ(node["target"], what + ".target");
  if (node["facility"]) rule.facility = r.templ(node["facility"], what + ".facility");
  if (node["instrument"]) rule.instrument = r.templ(node["instrument"], what + ".instrument");
  if (const auto in = node["inputs"]) read_inputs(r, in, what + ".inputs", rule);
  if (const auto t = node["inputs_table"]) read_inputs_table(r, t, what + ".inputs_table", rule);
  if (const auto rights = node["rights"]) read_rights(r, rights, what + ".rights", rule);
  if (!is_calibration(rule.type) && !rule.time && is_visit_based(rule.type)) {
    r.fail(node, fmt::format("{}: a {} needs a time section (its start, e.g. DATE-OBS)", what, to_string(rule.type)));
  }
  return rule;
}

bool match_element(std::string_view glob, std::string_view name) {
  // '*' and '?' within one element, [abc] / [a-z] classes.
  std::size_t g = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (g < glob.size() && glob[g] == '[') {
      const auto close = glob.find(']', g + 1);
      if (close != std::string_view::npos) {
        bool hit = false;
        for (std::size_t k = g + 1; k < close; ++k) {
          if (k + 2 < close && glob[k + 1] == '-') {
            hit = hit || (name[n] >= glob[k] && name[n] <= glob[k + 2]);
            k += 2;
          } else {
            hit = hit || name[n] == glob[k];
          }
        }
        if (hit) {
          g = close + 1;
          ++n;
          continue;
        }
      }
    } else if (g < glob.size() && (glob[g] == '?' || glob[g] == name[n])) {
      ++g;
      ++n;
      continue;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = n;
      continue;
    }
    if (star == std::string_view::npos) return false;
    g = star + 1;
    n = ++mark;
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto slash = s.find('/', start);
    const auto end = slash == std::string_view::npos ? s.size() : slash;
    if (end > start) out.push_back(s.substr(start, end - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool match_elements(const std::vector<std::string_view>& g, std::size_t gi, const std::vector<std::string_view>& p,
                    std::size_t pi) {
  if (gi == g.size()) return pi == p.size();
  if (g[gi] == "**") {
    for (std::size_t k = pi; k <= p.size(); ++k) {
      if (match_elements(g, gi + 1, p, k)) return true;
    }
    return false;
  }
  return pi < p.size() && match_element(g[gi], p[pi]) && match_elements(g, gi + 1, p, pi + 1);
}

}  // namespace

bool glob_match(std::string_view glob, std::string_view path) {
  const auto g = split(glob);
  const auto p = split(path);
  // A glob without '/' matches the file name anywhere (like a shell's
  // pattern applied to the name): "*.fits".
  if (g.size() == 1 && g[0] != "**") return !p.empty() && match_element(g[0], p.back());
  return match_elements(g, 0, p, 0);
}

Mapping Mapping::load(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw MappingError(fmt::format("{}: cannot read the mapping file", file.string()));
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), file.string());
}

const Mapping& Mapping::builtin() {
  // Parsed once, on first use, and never changed: every thread reads the
  // same rules. A mistake in the embedded text is a build defect, caught by
  // the unit tests, so throwing from here is acceptable.
  static const Mapping mapping = parse(std::string(builtin_mapping_text()), std::string(kBuiltinMappingSource));
  return mapping;
}

Mapping Mapping::parse(const std::string& yaml, const std::string& source_name) {
  Reader r(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw MappingError(fmt::format("{}:{}: not valid YAML: {}", source_name, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw MappingError(source_name + ": expected a mapping with 'mapping: 1' and 'rules'");
  r.keys(root, "mapping file", {"mapping", "rules"});
  if (!root["mapping"] || r.text(root["mapping"], "mapping") != "1") {
    r.fail(root, "the file must say 'mapping: 1' (the version of this format)");
  }
  if (!root["rules"] || !root["rules"].IsSequence() || root["rules"].size() == 0) {
    r.fail(root, "rules: expected a list of at least one rule");
  }
  Mapping m;
  m.source_ = source_name;
  std::size_t i = 0;
  std::optional<std::size_t> otherwise;  // an index: the vector may still grow
  for (const auto& node : root["rules"]) {
    m.rules_.push_back(read_rule(r, node, i++));
    if (!m.rules_.back().otherwise) continue;
    // Which of two would take an unmatched file is not for the order of the list to decide.
    if (otherwise) {
      const auto& first = m.rules_[*otherwise];
      r.fail(node, fmt::format("rules[{}]: a second otherwise rule ('{}' at line {} is one)", i - 1, first.name, first.line));
    }
    otherwise = m.rules_.size() - 1;
  }
  return m;
}

const MappingRule* Mapping::match(const std::string& relative_path,
                                  const std::function<std::optional<std::string>(const std::string&)>& keyword) const {
  const MappingRule* found = nullptr;
  const MappingRule* otherwise = nullptr;
  for (const auto& rule : rules_) {
    if (rule.otherwise) {
      otherwise = &rule;
      continue;
    }
    if (!rule.glob.empty() && !glob_match(rule.glob, relative_path)) continue;
    bool ok = true;
    for (const auto& condition : rule.header) {
      if (!ok) break;
      const auto v = keyword(condition.keyword);
      ok = condition.absent ? !v : v && std::find(condition.values.begin(), condition.values.end(), *v) != condition.values.end();
    }
    if (!ok) continue;
    if (found != nullptr) {
      throw std::runtime_error(fmt::format("two rules match it: '{}' ({}) and '{}' ({})", found->name,
                                           where(found->line), rule.name, where(rule.line)));
    }
    found = &rule;
  }
  return found != nullptr ? found : otherwise;
}

std::vector<TemplatePart> Template::split(const std::string& text) {
  std::vector<TemplatePart> parts;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto open = text.find_first_of("{}", i);
    if (open == std::string::npos) {
      parts.push_back({text.substr(i), false, false});
      break;
    }
    if (text[open] == '}') throw std::invalid_argument("unbalanced braces");
    if (open > i) parts.push_back({text.substr(i, open - i), false, false});
    const auto close = text.find_first_of("{}", open + 1);
    if (close == std::string::npos || text[close] == '{') throw std::invalid_argument("unbalanced braces");
    TemplatePart p{text.substr(open + 1, close - open - 1), true, false};
    if (p.text.ends_with('?')) {
      p.text.pop_back();
      p.optional = true;
    }
    if (p.text.empty()) throw std::invalid_argument("an empty placeholder");
    parts.push_back(std::move(p));
    i = close + 1;
  }
  return parts;
}

double mjd_to_tai(double mjd, TimeScale scale) {
  constexpr double kDay = 86400.0;
  switch (scale) {
    case TimeScale::tai: return mjd;
    case TimeScale::tt: return mjd - 32.184 / kDay;
    case TimeScale::utc: break;
  }
  // TAI - UTC from 1972-01-01 (MJD 41317): 10 s, then one more second at
  // each of these dates (the IERS leap seconds, the last at 2017-01-01).
  static constexpr std::array<double, 27> kLeaps = {
      41499, 41683, 42048, 42413, 42778, 43144, 43509, 43874, 44239, 44786, 45151, 45516, 46247, 47161,
      47892, 48257, 48804, 49169, 49534, 50083, 50630, 51179, 53736, 54832, 56109, 57204, 57754};
  const double seconds = 10.0 + static_cast<double>(std::upper_bound(kLeaps.begin(), kLeaps.end(), mjd) - kLeaps.begin());
  return mjd + seconds / kDay;
}

}  // namespace pixserve::repo
