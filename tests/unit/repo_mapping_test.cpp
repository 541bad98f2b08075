// Ingest mappings: the YAML format and its errors (file and line named),
// path globs, rule matching, time scales, and the built-in mapping.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include "repo/builtin_mapping.hpp"
#include "repo/mapping.hpp"

namespace pixserve::repo {
namespace {

constexpr const char* kGood = R"(mapping: 1
rules:
  - name: science
    match:
      path: "sci/**/*.fits"
      header: {IMAGETYP: [object, science]}
    dataset_type: calexp
    dataset_id: "{OBJECT}.{path.stem}"
    data_id: {visit: "{EXPNUM}", instrument: "{INSTRUME}"}
    band:
      keyword: FILTER
      values:
        r_SDSS: r
        Ha: {name: Ha, em_min: 6.54e-7, em_max: 6.59e-7}
    time: {start: DATE-OBS, scale: tai, exptime: EXPTIME}
    planes: {image: IMAGE, mask: 2}
    columns: {airmass: "{AIRMASS}", software_version: "pipe {VERSION}"}
    rights: {policy: groups, groups: [team1], embargo_hours: 12}
  - name: flats
    match: {path: "cal/flat*.fits"}
    dataset_type: flat
    band: g
)";

TEST(IngestMapping, ReadsEveryKey) {
  const auto m = Mapping::parse(kGood, "m.yaml");
  ASSERT_EQ(m.rules().size(), 2u);
  const auto& r = m.rules()[0];
  EXPECT_EQ(r.name, "science");
  EXPECT_EQ(r.line, 3);
  EXPECT_EQ(r.type, DatasetType::calexp);
  EXPECT_EQ(r.glob, "sci/**/*.fits");
  ASSERT_EQ(r.header.size(), 1u);
  EXPECT_EQ(r.header[0].values, (std::vector<std::string>{"object", "science"}));
  ASSERT_TRUE(r.dataset_id);
  EXPECT_EQ(r.dataset_id->text, "{OBJECT}.{path.stem}");
  EXPECT_EQ(r.data_id.at("visit").text, "{EXPNUM}");
  EXPECT_EQ(r.band_keyword, "FILTER");
  EXPECT_EQ(r.band_values.at("r_SDSS").name, "r");
  EXPECT_NEAR(r.band_values.at("r_SDSS").em_min, 5.52e-7, 1e-12);
  EXPECT_EQ(r.band_values.at("Ha").name, "Ha");
  ASSERT_TRUE(r.time);
  EXPECT_EQ(r.time->scale, TimeScale::tai);
  EXPECT_EQ(r.image.extname, "IMAGE");
  EXPECT_EQ(r.mask.number, 2);
  EXPECT_EQ(r.policy, ReadPolicy::groups);
  EXPECT_EQ(r.groups, std::vector<std::string>{"team1"});
  EXPECT_EQ(r.embargo_hours, 12.0);
  EXPECT_EQ(r.columns.at("airmass").text, "{AIRMASS}");
  EXPECT_EQ(r.columns.at("software_version").text, "pipe {VERSION}");
  EXPECT_EQ(m.rules()[1].band->name, "g");
}

namespace {

// Parsing `text` as m.yaml must fail with a MappingError whose message holds `needle`.
void fails(const std::string& text, const std::string& needle) {
  try {
    Mapping::parse(text, "m.yaml");
    ADD_FAILURE() << "accepted: " << text;
  } catch (const MappingError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// One rule's first lines; a test appends the key under test (line 6).
const std::string kRuleHead = "mapping: 1\nrules:\n  - name: a\n    dataset_type: calexp\n    time: {start: DATE-OBS}\n";

}  // namespace

TEST(IngestMapping, MistakesNameTheFileAndLine) {
  fails(kRuleHead + "    colour: red\n", "m.yaml:6: rules[0]: unknown key 'colour'");
  fails(kRuleHead + "    band: q\n", "m.yaml:6: rules[0].band: 'q' is not a band letter");
  fails(kRuleHead + "    band: {name: X, em_min: 7e-7, em_max: 6e-7}\n", "m.yaml:6");
  fails(kRuleHead + "    data_id: {visitt: \"{V}\"}\n", "unknown key 'visitt'");
  fails(kRuleHead + "    dataset_id: \"{OBJECT\"\n", "unbalanced braces");
  fails(kRuleHead + "    columns: {humidity: \"{HUMID}\"}\n", "unknown key 'humidity'");
  fails(kRuleHead + "    planes: {image: 0}\n", "HDU numbers start at 1");
  fails(kRuleHead + "    rights: {policy: everyone}\n", "'everyone' is not public");
  fails(kRuleHead + "    rights: {policy: groups}\n", "needs groups");
  fails("mapping: 1\nrules:\n  - name: a\n    dataset_type: calexp\n", "needs a time section");
  fails("mapping: 2\nrules: []\n", "mapping: 1");
  fails("mapping: 1\nrules: []\n", "at least one rule");
  fails("mapping: 1\nrules:\n  - dataset_type: picture\n", "'picture' is not one of");
  fails("mapping: 1\nrules: [\n", "not valid YAML");
  fails("- a\n- b\n", "expected a mapping");
}

TEST(IngestMapping, MatchingNeedsExactlyOneRule) {
  const auto m = Mapping::parse(kGood, "m.yaml");
  const auto header = [](std::map<std::string, std::string> values) {
    return [values](const std::string& key) -> std::optional<std::string> {
      const auto it = values.find(key);
      return it == values.end() ? std::nullopt : std::optional(it->second);
    };
  };
  EXPECT_EQ(m.match("sci/n1/a.fits", header({{"IMAGETYP", "object"}})), &m.rules()[0]);
  EXPECT_EQ(m.match("sci/a.fits", header({{"IMAGETYP", "science"}})), &m.rules()[0]);
  EXPECT_EQ(m.match("sci/n1/a.fits", header({{"IMAGETYP", "dark"}})), nullptr);
  EXPECT_EQ(m.match("sci/n1/a.fits", header({})), nullptr);
  EXPECT_EQ(m.match("cal/flat_g.fits", header({})), &m.rules()[1]);
  const auto twice = Mapping::parse(
      "mapping: 1\nrules:\n  - name: one\n    dataset_type: flat\n  - name: two\n    match: {path: '*.fits'}\n"
      "    dataset_type: bias\n",
      "m.yaml");
  try {
    twice.match("x.fits", header({}));
    ADD_FAILURE() << "two rules matched silently";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'one' (m.yaml:3) and 'two' (m.yaml:5)"), std::string::npos) << e.what();
  }
}

TEST(IngestMapping, Globs) {
  EXPECT_TRUE(glob_match("*.fits", "a/b/c.fits"));  // no '/': the file name anywhere
  EXPECT_FALSE(glob_match("*.fits", "a/b/c.fit"));
  EXPECT_TRUE(glob_match("a/*/c.fits", "a/b/c.fits"));
  EXPECT_FALSE(glob_match("a/*/c.fits", "a/b/x/c.fits"));
  EXPECT_TRUE(glob_match("a/**/c.fits", "a/c.fits"));
  EXPECT_TRUE(glob_match("a/**/c.fits", "a/b/x/c.fits"));
  EXPECT_TRUE(glob_match("**/img[0-9][0-9].fits", "n1/img07.fits"));
  EXPECT_FALSE(glob_match("**/img[0-9][0-9].fits", "n1/imgx7.fits"));
  EXPECT_TRUE(glob_match("night?/*", "night3/a.fits"));
  EXPECT_FALSE(glob_match("night?/*", "night33/a.fits"));
  EXPECT_TRUE(glob_match("**", "any/thing.fits"));
}

TEST(IngestMapping, TimeScales) {
  // 2017-01-01 and later: TAI - UTC = 37 s; 1999 (after 1999-01-01): 32 s; 1972-01-01: 10 s.
  EXPECT_NEAR((mjd_to_tai(60000.0, TimeScale::utc) - 60000.0) * 86400.0, 37.0, 1e-6);
  EXPECT_NEAR((mjd_to_tai(51200.0, TimeScale::utc) - 51200.0) * 86400.0, 32.0, 1e-6);
  EXPECT_NEAR((mjd_to_tai(41320.0, TimeScale::utc) - 41320.0) * 86400.0, 10.0, 1e-6);
  EXPECT_NEAR((mjd_to_tai(60000.0, TimeScale::tt) - 60000.0) * 86400.0, -32.184, 1e-6);
  EXPECT_EQ(mjd_to_tai(60000.0, TimeScale::tai), 60000.0);
}

TEST(IngestMapping, ReadsTheBuiltinConventionKeys) {
  const auto m = Mapping::parse(R"(mapping: 1
rules:
  - name: calexp
    match: {header: {DSTYPE: calexp}}
    dataset_type: calexp
    calib_level: 3
    standard_id: true
    data_id: {visit: "{VISIT?}", detector: ["{DETECTOR?}", "{CCDNUM}"]}
    band: {keyword: "BAND?"}
    time: {start: [MJD-OBS, DATE-OBS], exptime: "EXPTIME?", scale: tai}
    detector_size: DETSIZE
    inputs:
      - {dataset_type: raw, role: raw}
      - {dataset_type: flat, role: flat, when: band}
    inputs_table: {hdu: "INPUTS?", dataset_type: calexp, role: input, columns: {visit: VISIT, detector: DETECTOR}}
  - name: user
    match: {header: {DSTYPE: ~}}
    dataset_type: user
    time: {start: ["MJD-OBS?", "DATE-OBS?"], end: "MJD-END?"}
  - name: rest
    match: {otherwise: true}
    reject: "unknown DSTYPE='{DSTYPE}'"
)",
                                "m.yaml");
  ASSERT_EQ(m.rules().size(), 3u);
  const auto& r = m.rules()[0];
  EXPECT_EQ(r.calib_level, 3);
  EXPECT_TRUE(r.standard_id);
  EXPECT_EQ(r.header[0].keyword, "DSTYPE");
  EXPECT_EQ(r.header[0].values, std::vector<std::string>{"calexp"});
  EXPECT_FALSE(r.header[0].absent);
  ASSERT_EQ(r.data_id.at("visit").alternatives.size(), 1u);
  const auto& visit = r.data_id.at("visit").alternatives[0];
  ASSERT_EQ(visit.size(), 1u);
  EXPECT_EQ(visit[0].text, "VISIT");
  EXPECT_TRUE(visit[0].placeholder && visit[0].optional);
  EXPECT_EQ(r.data_id.at("detector").alternatives.size(), 2u);
  EXPECT_EQ(r.data_id.at("detector").text, "{DETECTOR?} | {CCDNUM}");
  EXPECT_EQ(r.band_keyword, "BAND");
  EXPECT_TRUE(r.band_optional);
  EXPECT_TRUE(r.band_values.empty());
  ASSERT_TRUE(r.time);
  EXPECT_EQ(r.time->start, (std::vector<std::string>{"MJD-OBS", "DATE-OBS"}));
  EXPECT_FALSE(r.time->start_optional);
  EXPECT_EQ(r.time->exptime.name, "EXPTIME");
  EXPECT_TRUE(r.time->exptime.optional);
  EXPECT_EQ(r.detector_size, "DETSIZE");
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_EQ(r.inputs[0].type, DatasetType::raw);
  EXPECT_EQ(r.inputs[0].role, "raw");
  EXPECT_EQ(r.inputs[0].when, "");
  EXPECT_EQ(r.inputs[1].when, "band");
  EXPECT_EQ(r.inputs[1].line, 14);
  ASSERT_TRUE(r.inputs_table);
  EXPECT_EQ(r.inputs_table->hdu.extname, "INPUTS");
  EXPECT_TRUE(r.inputs_table->optional);
  EXPECT_EQ(r.inputs_table->type, DatasetType::calexp);
  EXPECT_EQ(r.inputs_table->columns,
            (std::vector<std::pair<std::string, std::string>>{{"visit", "VISIT"}, {"detector", "DETECTOR"}}));
  const auto& user = m.rules()[1];
  EXPECT_EQ(user.type, DatasetType::user);
  EXPECT_TRUE(user.header[0].absent);
  EXPECT_TRUE(user.time->start_optional);
  EXPECT_TRUE(user.time->end.optional);
  EXPECT_FALSE(user.calib_level);
  const auto& rest = m.rules()[2];
  EXPECT_TRUE(rest.otherwise);
  ASSERT_TRUE(rest.reject);
  EXPECT_EQ(rest.reject->text, "unknown DSTYPE='{DSTYPE}'");

  // Matching: the header decides, an absent DSTYPE is the user rule, the
  // otherwise rule takes the rest.
  const auto header = [](std::map<std::string, std::string> values) {
    return [values](const std::string& key) -> std::optional<std::string> {
      const auto it = values.find(key);
      return it == values.end() ? std::nullopt : std::optional(it->second);
    };
  };
  EXPECT_EQ(m.match("a.fits", header({{"DSTYPE", "calexp"}})), &m.rules()[0]);
  EXPECT_EQ(m.match("a.fits", header({})), &m.rules()[1]);
  EXPECT_EQ(m.match("a.fits", header({{"DSTYPE", "picture"}})), &m.rules()[2]);
}

TEST(IngestMapping, TemplatesSplitIntoParts) {
  const auto parts = Template::split("v{VISIT}.d{DETECTOR?}-x");
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0].text, "v");
  EXPECT_FALSE(parts[0].placeholder);
  EXPECT_EQ(parts[1].text, "VISIT");
  EXPECT_TRUE(parts[1].placeholder);
  EXPECT_FALSE(parts[1].optional);
  EXPECT_EQ(parts[2].text, ".d");
  EXPECT_EQ(parts[3].text, "DETECTOR");
  EXPECT_TRUE(parts[3].optional);
  EXPECT_EQ(parts[4].text, "-x");
  EXPECT_TRUE(Template::split("").empty());
  for (const char* bad : {"{A", "A}", "{{A}}", "{}", "{?}", "{A}{"}) {
    EXPECT_THROW(Template::split(bad), std::invalid_argument) << bad;
  }
}

TEST(IngestMapping, NewKeysAreChecked) {
  fails(kRuleHead + "    calib_level: 7\n", "m.yaml:6: rules[0].calib_level: an ObsCore calibration level, 0 to 4");
  fails(kRuleHead + "    calib_level: 1.5\n", "m.yaml:6: rules[0].calib_level");
  fails(kRuleHead + "    calib_level: [2]\n", "m.yaml:6: rules[0].calib_level: expected a single value");
  fails(kRuleHead + "    standard_id: maybe\n", "m.yaml:6: rules[0].standard_id: true or false");
  fails(kRuleHead + "    standard_id: true\n    dataset_id: x\n", "dataset_id and standard_id");
  fails(kRuleHead + "    detector_size: [DETSIZE]\n", "m.yaml:6: rules[0].detector_size: expected a single value");
  fails(kRuleHead + "    detector_size: \"DETSIZE?\"\n", "m.yaml:6: rules[0].detector_size");
  fails(kRuleHead + "    inputs: {role: raw}\n", "m.yaml:6: rules[0].inputs: expected a list");
  fails(kRuleHead + "    inputs: [{dataset_type: raw}]\n", "m.yaml:6: rules[0].inputs[0]: needs dataset_type and role");
  fails(kRuleHead + "    inputs: [{dataset_type: raw, role: raw, when: colour}]\n", "'colour' is not a data-ID key");
  fails(kRuleHead + "    inputs: [{dataset_type: raw, role: raw, colour: x}]\n", "rules[0].inputs[0]: unknown key 'colour'");
  fails(kRuleHead + "    inputs: [{dataset_type: picture, role: raw}]\n", "'picture' is not one of");
  fails(kRuleHead + "    inputs_table: {hdu: INPUTS, dataset_type: calexp, role: input, columns: {band: BAND}}\n",
        "rules[0].inputs_table.columns: unknown key 'band'");
  fails(kRuleHead + "    inputs_table: {hdu: INPUTS, dataset_type: calexp}\n", "needs hdu, dataset_type, role and columns");
  fails(kRuleHead + "    columns: {seeing: \"{}\"}\n", "an empty placeholder");
  fails(kRuleHead + "    columns: {seeing: []}\n", "an empty list of templates");
  fails(kRuleHead + "    band: {values: {r: r}}\n", "needs keyword");
  fails(kRuleHead + "    match: {otherwise: true, path: '*.fits'}\n", "an otherwise rule");
  fails(kRuleHead + "    match: {header: {DSTYPE: []}}\n", "an empty list matches nothing");
  fails("mapping: 1\nrules:\n  - name: a\n    dataset_type: calexp\n    time: {start: [\"MJD-OBS?\", DATE-OBS]}\n",
        "m.yaml:5: rules[0].time.start: mark every keyword");
  fails("mapping: 1\nrules:\n  - name: a\n    dataset_type: raw\n    time: {start: \"MJD-OBS?\"}\n",
        "a raw needs its start time");
  fails("mapping: 1\nrules:\n  - name: a\n    reject: no\n    dataset_type: raw\n",
        "rules[0] (a reject rule): unknown key 'dataset_type'");
  fails("mapping: 1\nrules:\n  - name: a\n    match: {otherwise: true}\n    reject: x\n"
        "  - name: b\n    match: {otherwise: true}\n    reject: y\n",
        "m.yaml:6: rules[1]: a second otherwise rule ('a' at line 3 is one)");
}

// The built-in mapping is docs/mappings/pixserve-sim.yaml as it is in the
// source tree, and reads.
TEST(IngestMapping, BuiltinIsTheDocumentedFile) {
  const auto file = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "docs" / "mappings" /
                    "pixserve-sim.yaml";
  std::ifstream in(file);
  ASSERT_TRUE(in) << file;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(builtin_mapping_text(), text.str());
  const auto& m = Mapping::builtin();
  EXPECT_EQ(m.source(), "docs/mappings/pixserve-sim.yaml");
  std::set<DatasetType> types;
  for (const auto& rule : m.rules()) {
    if (!rule.reject) types.insert(rule.type);
  }
  EXPECT_EQ(types.size(), 9u);  // every type, user images included
  EXPECT_EQ(&Mapping::builtin(), &m);  // parsed once
}

}  // namespace
}  // namespace pixserve::repo
