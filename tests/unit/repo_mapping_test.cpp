// Ingest mappings: the YAML format and its errors (file and line named),
// path globs, rule matching and time scales.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

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
  EXPECT_EQ(r.header[0].second, (std::vector<std::string>{"object", "science"}));
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

TEST(IngestMapping, MistakesNameTheFileAndLine) {
  const auto fails = [](const std::string& text, const std::string& needle) {
    try {
      Mapping::parse(text, "m.yaml");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const MappingError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string head = "mapping: 1\nrules:\n  - name: a\n    dataset_type: calexp\n    time: {start: DATE-OBS}\n";
  fails(head + "    colour: red\n", "m.yaml:6: rules[0]: unknown key 'colour'");
  fails(head + "    band: q\n", "m.yaml:6: rules[0].band: 'q' is not a band letter");
  fails(head + "    band: {name: X, em_min: 7e-7, em_max: 6e-7}\n", "m.yaml:6");
  fails(head + "    data_id: {visitt: \"{V}\"}\n", "unknown key 'visitt'");
  fails(head + "    dataset_id: \"{OBJECT\"\n", "unbalanced braces");
  fails(head + "    columns: {humidity: \"{HUMID}\"}\n", "unknown key 'humidity'");
  fails(head + "    planes: {image: 0}\n", "HDU numbers start at 1");
  fails(head + "    rights: {policy: everyone}\n", "'everyone' is not public");
  fails(head + "    rights: {policy: groups}\n", "needs groups");
  fails("mapping: 1\nrules:\n  - name: a\n    dataset_type: calexp\n", "needs a time section");
  fails("mapping: 2\nrules: []\n", "mapping: 1");
  fails("mapping: 1\nrules: []\n", "at least one rule");
  fails("mapping: 1\nrules:\n  - dataset_type: user\n", "'user' is not one of");
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

}  // namespace
}  // namespace pixserve::repo
