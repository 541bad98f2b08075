// docs/pixserve.example.yaml and the keys the components declare: the file
// is what they print, it names exactly the declared keys, and loading it
// gives every declared default; each key refuses what its kind cannot read.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pixserve::config {
namespace {

const std::filesystem::path kExampleFile =
    std::filesystem::path(PIXSERVE_SOURCE_DIR) / "docs" / "pixserve.example.yaml";

std::string example_file_text() {
  std::ifstream in(kExampleFile);
  EXPECT_TRUE(in) << kExampleFile;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "section.key" of every key the example file shows, set or commented out
// ("  # base_url: ..." for a key whose default is "not set"). Read with a
// pattern, not with the printer, so that a fault of the printer shows.
std::set<std::string> keys_in_example(const std::string& text) {
  static const std::regex section(R"(^([a-z_]+):\s*(#.*)?$)");
  static const std::regex key(R"(^  (?:# )?([a-z_0-9]+):( |$))");
  std::set<std::string> out;
  std::string current;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, section)) {
      current = m[1];
    } else if (!current.empty() && std::regex_search(line, m, key)) {
      out.insert(current + "." + m[1].str());
    }
  }
  return out;
}

TEST(ConfigExample, FileIsWhatTheDeclarationsPrint) {
  EXPECT_EQ(example_file_text(), example_yaml())
      << "docs/pixserve.example.yaml differs from the declared keys: regenerate it with\n"
         "  build/pixserve config --example > docs/pixserve.example.yaml";
}

TEST(ConfigExample, FileListsEveryKeyWithItsDefault) {
  // Every value it sets is the declared default.
  const Config loaded = load(kExampleFile);
  EXPECT_TRUE(loaded == Config{}) << "docs/pixserve.example.yaml sets a value other than the default";
  EXPECT_EQ(loaded.server.limits, http::Limits{});
  EXPECT_EQ(loaded.server, http::ServerSettings{});
  EXPECT_EQ(loaded.service, services::ServiceSettings{});
  EXPECT_EQ(loaded.results, dali::ResultLimits{});
  EXPECT_EQ(loaded.jobs, uws::JobSettings{});
  EXPECT_EQ(loaded.tap, tap::TapSettings{});
  EXPECT_EQ(loaded.hips, services::HipsSettings{});
  EXPECT_EQ(loaded.auth, auth::AuthSettings{});
  EXPECT_EQ(loaded.user_images, services::UserImageSettings{});
  EXPECT_EQ(loaded.photometry, services::PhotometryLimits{});
  // It shows exactly the declared keys.
  const auto listed = keys_in_example(example_file_text());
  const auto declared = keys();
  std::vector<std::string> missing, unknown;
  for (const auto& k : declared) {
    if (!listed.contains(k)) missing.push_back(k);
  }
  for (const auto& k : listed) {
    if (std::find(declared.begin(), declared.end(), k) == declared.end()) unknown.push_back(k);
  }
  EXPECT_TRUE(missing.empty()) << "declared but not in the example: " << ::testing::PrintToString(missing);
  EXPECT_TRUE(unknown.empty()) << "in the example but not declared: " << ::testing::PrintToString(unknown);
  EXPECT_EQ(std::set<std::string>(declared.begin(), declared.end()).size(), declared.size()) << "a key declared twice";
}

// Each key reads back what it shows (the example file's values are
// readable), whatever its kind; integer keys take their largest value.
TEST(ConfigExample, KeysReadWhatTheyShow) {
  const Config defaults;
  for (const auto& section : sections()) {
    for (const auto& key : section.keys) {
      const std::string name = section.name + "." + key.name;
      // What it shows is YAML (quoted strings, flow lists): read it as the file is read.
      Config c = from_yaml(section.name + ":\n  " + key.name + ": " + key.show(defaults) + "\n");
      EXPECT_TRUE(c == defaults) << name << " does not read back " << key.show(defaults);
      if (key.kind == settings::Kind::integer) {
        set(c, name, std::to_string(key.max));
        EXPECT_EQ(key.show(c), std::to_string(key.max)) << name;
      }
    }
  }
}

std::string refusal(const std::string& yaml) {
  try {
    from_yaml(yaml, "bad.yaml");
  } catch (const settings::ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ConfigExample, EveryKeyRefusesWhatItCannotRead) {
  for (const auto& section : sections()) {
    for (const auto& key : section.keys) {
      const std::string name = section.name + "." + key.name;
      std::vector<std::string> bad;  // values for the key, each refused
      switch (key.kind) {
        case settings::Kind::text:
          bad = {"[a, b]", "{a: b}"};
          break;
        case settings::Kind::list:
          bad = {"{a: b}", "[[a]]"};
          break;
        case settings::Kind::integer:
          bad = {"-1", "1.5", "x", std::to_string(key.max + 1), "[1]"};
          break;
        case settings::Kind::boolean:
          bad = {"yes", "1", "[true]"};
          break;
        case settings::Kind::seconds:
          bad = {"0", "-3", "x", "1e9", "[1]"};
          break;
        case settings::Kind::number:
          bad = {"-1e300", "1e300", "nan", "inf", "x", "2x", "[1]"};
          break;
      }
      for (const auto& value : bad) {
        const std::string message =
            refusal("# a comment line\n" + section.name + ":\n  " + key.name + ": " + value + "\n");
        EXPECT_TRUE(message.starts_with("bad.yaml:3: " + name + ": ")) << name << ": " << value << " -> " << message;
      }
    }
  }
}

}  // namespace
}  // namespace pixserve::config
