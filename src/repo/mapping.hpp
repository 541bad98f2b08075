// An ingest mapping: how a survey's own FITS files become registry records,
// declared in a YAML file instead of code (docs/ingest-mapping.md describes
// every key; docs/mappings/ has examples).
//
//   mapping: 1
//   rules:
//     - name: science
//       match: {path: "**/*.fits", header: {IMAGETYP: [object, science]}}
//       dataset_type: calexp
//       dataset_id: "{OBJECT}.{path.stem}"
//       data_id: {instrument: "{INSTRUME}", visit: "{EXPNUM}"}
//       band: {keyword: FILTER, values: {r_SDSS: r, Ha: {name: Ha, em_min: 6.54e-7, em_max: 6.59e-7}}}
//       time: {start: DATE-OBS, scale: utc, exptime: EXPTIME}
//       planes: {image: 1, mask: MASK, variance: VARIANCE}
//       target: "{OBJECT}"
//       columns: {airmass: "{AIRMASS}", seeing: "{SEEING}"}
//       rights: {policy: public, embargo_hours: 0}
//
// Each file must match exactly one rule (by a glob on its path relative to
// the ingest argument it was found under, and header conditions); a
// mistake in the mapping names the mapping file and line, a file that does
// not fit it names the file, the keyword and the mapping line.
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

// Text with {PLACEHOLDER}s: a header keyword ({EXPNUM}), or one of
// {path.stem} {path.name} {path.parent} {band} {collection} {type}.
struct Template {
  std::string text;
  int line = 0;
};

struct MappedBand {
  std::string name;  // the registry's band (a pixserve letter, or the mapping's own name)
  double em_min = 0.0, em_max = 0.0;  // m
};

enum class TimeScale { tai, utc, tt };

struct TimeMapping {
  std::string start;    // keyword of the start: ISO 8601 text (DATE-OBS) or a number (MJD-OBS)
  std::string end;      // keyword of the end (optional; else start + exptime)
  std::string exptime;  // keyword of the exposure time in seconds (optional)
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

struct MappingRule {
  std::string name;
  int line = 0;
  // match
  std::string glob;  // '*' within a path element, '**' any number of elements; empty: any path
  std::vector<std::pair<std::string, std::vector<std::string>>> header;  // keyword is one of the values
  // what it is
  DatasetType type = DatasetType::calexp;
  std::optional<std::string> collection;
  std::optional<Template> dataset_id;
  std::map<std::string, Template> data_id;  // instrument, visit, exposure, detector, detector_name, raft,
                                            // physical_filter, skymap, tract, patch
  // band: a fixed one, or a keyword looked up in a table
  std::optional<MappedBand> band;
  std::string band_keyword;
  std::map<std::string, MappedBand> band_values;
  int band_line = 0;
  std::optional<TimeMapping> time;
  HduRef image, mask, variance;
  std::optional<Template> target, facility, instrument;
  // Observation columns from templates: seeing, airmass, sky_background,
  // zero_point, psf_fwhm, s_resolution, telescope_ra, telescope_dec
  // (numbers) and software_version (text).
  std::map<std::string, Template> columns;
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
