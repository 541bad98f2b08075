// An ingest mapping: how a survey's own FITS files become registry records,
// declared in a YAML file instead of code (docs/ingest-mapping.md describes
// every key; docs/mappings/ has examples, and docs/mappings/pixserve-sim.yaml
// is compiled in as the built-in mapping that reads the simulator's own
// convention).
//
//   mapping: 1
//   rules:
//     - name: science
//       match: {path: "**/*.fits", header: {IMAGETYP: [object, science]}}
//       dataset_type: calexp
//       dataset_id: "{OBJECT}.{path.stem}"
//       data_id: {instrument: "{INSTRUME}", visit: "{EXPNUM}", detector: "{CCDNUM?}"}
//       band: {keyword: FILTER, values: {r_SDSS: r, Ha: {name: Ha, em_min: 6.54e-7, em_max: 6.59e-7}}}
//       time: {start: [MJD-OBS, DATE-OBS], scale: utc, exptime: EXPTIME?}
//       planes: {image: 1, mask: MASK, variance: VARIANCE}
//       target: "{OBJECT}"
//       columns: {airmass: "{AIRMASS?}", s_resolution: ["{PSFFWHM?}", "{SEEING?}"]}
//       inputs: [{dataset_type: raw, role: raw}]
//       rights: {policy: public, embargo_hours: 0}
//
// Each file must match exactly one rule (by a glob on its path relative to
// the ingest argument it was found under, and header conditions), or else
// the one `otherwise` rule; a mistake in the mapping names the mapping file
// and line, a file that does not fit it names the file, the keyword and the
// mapping line.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "repo/dataset.hpp"

namespace pixserve::repo {

// A mistake in the mapping file itself: "FILE:LINE: what".
class MappingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One piece of a template: literal text, or a {placeholder} (a header
// keyword, or one of path.stem path.name path.parent band collection type).
struct TemplatePart {
  std::string text;  // the literal, or the placeholder's name (without braces and '?')
  bool placeholder = false;
  bool optional = false;  // {NAME?}: when NAME is absent the alternative has no value
};

// Text with {PLACEHOLDER}s, or a list of such texts tried in order: the
// first whose optional placeholders are all present gives the value. Split
// into parts when the mapping is read, so files only substitute.
struct Template {
  std::string text;  // as written (alternatives joined with " | "), for messages
  int line = 0;
  std::vector<std::vector<TemplatePart>> alternatives;

  // Splits `text` at its braces; throws std::invalid_argument when they do
  // not pair up or a placeholder is empty.
  static std::vector<TemplatePart> split(const std::string& text);
  static Template of(const std::string& text, int line) { return {text, line, {split(text)}}; }
};

// A header keyword (or HDU name) that the file may lack when written with a
// trailing '?': `EXPTIME?`.
struct KeywordRef {
  std::string name;
  bool optional = false;
};

struct MappedBand {
  std::string name;  // the registry's band (a pixserve letter, or the mapping's own name)
  double em_min = 0.0, em_max = 0.0;  // m
};

enum class TimeScale { tai, utc, tt };

struct TimeMapping {
  // Keywords of the start, tried in order: ISO 8601 text (DATE-OBS) or a
  // number (MJD-OBS). Optional only when every one is marked '?'.
  std::vector<std::string> start;
  bool start_optional = false;
  KeywordRef end;      // keyword of the end (optional; else start + exptime)
  KeywordRef exptime;  // keyword of the exposure time in seconds (optional)
  TimeScale scale = TimeScale::utc;
  int line = 0;
};

// An HDU: its 1-based number or its EXTNAME.
struct HduRef {
  int number = 0;
  std::string extname;
  int line = 0;
  bool given() const noexcept { return number > 0 || !extname.empty(); }
};

// A header condition of match.header: the keyword has one of the values,
// or (absent) it is not in the header at all.
struct HeaderCondition {
  std::string keyword;
  std::vector<std::string> values;
  bool absent = false;
};

// A provenance link derived from the record's own data ID: the input is the
// dataset of `type` whose registry ID (make_dataset_id) this data ID gives.
struct MappedInput {
  DatasetType type = DatasetType::raw;
  std::string role;
  std::string when;  // a data-ID key (or "band") that must be set, else no link; empty: always
  int line = 0;
};

// Provenance links listed in a binary table of the file: one input of
// `type` per row, its data ID from integer columns.
struct MappedInputsTable {
  HduRef hdu;
  bool optional = false;  // a file without the HDU has no such links
  DatasetType type = DatasetType::calexp;
  std::string role;
  std::vector<std::pair<std::string, std::string>> columns;  // data-ID key (visit, exposure, detector, tract) -> column
  int line = 0;
};

struct MappingRule {
  std::string name;
  int line = 0;
  // match
  std::string glob;  // '*' within a path element, '**' any number of elements; empty: any path
  std::vector<HeaderCondition> header;  // all must hold
  bool otherwise = false;  // matches only files no other rule matches
  // A rule that refuses the files it matches, with this message.
  std::optional<Template> reject;
  // what it is
  DatasetType type = DatasetType::calexp;
  std::optional<int> calib_level;  // ObsCore calib_level; absent: the type's
  std::optional<std::string> collection;
  std::optional<Template> dataset_id;
  bool standard_id = false;  // the registry's own ID for the type and data ID (make_dataset_id)
  std::map<std::string, Template> data_id;  // instrument, visit, exposure, detector, detector_name, raft,
                                            // physical_filter, skymap, tract, patch
  // band: a fixed one, or a keyword looked up in a table (an empty table:
  // the keyword holds a pixserve band letter)
  std::optional<MappedBand> band;
  std::string band_keyword;
  bool band_optional = false;
  std::map<std::string, MappedBand> band_values;
  int band_line = 0;
  std::optional<TimeMapping> time;
  HduRef image, mask, variance;
  // A keyword "[x0:x1,y0:y1]" giving the size of the pixel grid the WCS
  // refers to when the image HDU holds no 2-D image (raw amplifier files).
  std::string detector_size;
  int detector_size_line = 0;
  std::optional<Template> target, facility, instrument;
  // Observation columns from templates: seeing, airmass, sky_background,
  // zero_point, psf_fwhm, s_resolution, telescope_ra, telescope_dec
  // (numbers) and software_version (text).
  std::map<std::string, Template> columns;
  // provenance
  std::vector<MappedInput> inputs;
  std::optional<MappedInputsTable> inputs_table;
  // rights (absent: the ingest command's options)
  std::optional<ReadPolicy> policy;
  std::vector<std::string> groups;
  std::optional<std::string> owner;
  std::optional<double> embargo_hours;
  int rights_line = 0;
};

class Mapping {
 public:
  // Reads and checks a mapping file. Throws MappingError (unknown keys,
  // wrong types, unknown dataset types or bands, bad globs).
  static Mapping load(const std::filesystem::path& file);
  static Mapping parse(const std::string& yaml, const std::string& source_name);

  // The mapping of the simulator's own convention (docs/mappings/pixserve-sim.yaml,
  // compiled in): what ingest without --mapping and user uploads read with.
  static const Mapping& builtin();

  const std::string& source() const noexcept { return source_; }
  const std::vector<MappingRule>& rules() const noexcept { return rules_; }

  // The one rule for a file, given its path relative to the ingest argument
  // and a way to read a header keyword's value as text (nullopt: absent).
  // nullptr when no rule matches; throws std::runtime_error when several do.
  const MappingRule* match(const std::string& relative_path,
                           const std::function<std::optional<std::string>(const std::string&)>& keyword) const;

  // "FILE:LINE" of a mapping element, for messages.
  std::string where(int line) const { return source_ + ":" + std::to_string(line); }

 private:
  std::string source_;
  std::vector<MappingRule> rules_;
};

// Whether a '/'-separated path matches a glob ('*' and '?' within one
// element, '**' for any number of elements, [abc] classes).
bool glob_match(std::string_view glob, std::string_view path);

// MJD in TAI from an MJD in another scale (UTC uses the leap-second table
// since 1972; earlier UTC dates get 10 s).
double mjd_to_tai(double mjd, TimeScale scale);

}  // namespace pixserve::repo
