#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace pixserve::config {

namespace {

using settings::ConfigError;
using settings::Section;

// Sections of the same name from several components become one, keys in
// the order of composition.
void add(std::vector<Section<Config>>& all, Section<Config> section) {
  auto same = std::find_if(all.begin(), all.end(), [&](const auto& s) { return s.name == section.name; });
  if (same == all.end()) {
    all.push_back(std::move(section));
    return;
  }
  if (same->doc.empty()) same->doc = std::move(section.doc);
  for (auto& key : section.keys) same->keys.push_back(std::move(key));
}

std::vector<Section<Config>> compose() {
  using settings::within;
  std::vector<Section<Config>> all;
  // In the order of the example file: the server, then the services.
  add(all, within(&Config::server, http::server_section()));
  add(all, within(&Config::service, services::service_section()));
  add(all, within(&Config::results, dali::results_section()));
  add(all, within(&Config::server, http::cors_section()));
  add(all, within(&Config::jobs, uws::jobs_section()));
  add(all, within(&Config::tap, tap::tap_section()));
  add(all, within(&Config::server, within(&http::ServerSettings::limits, http::limits_section())));
  add(all, within(&Config::hips, services::hips_section()));
  add(all, within(&Config::soda, services::soda_section()));
  add(all, within(&Config::photometry, services::photometry_section()));
  add(all, within(&Config::auth, auth::auth_section()));
  add(all, within(&Config::user_images, services::user_images_section()));
  add(all, within(&Config::products, products::products_section()));
  add(all, within(&Config::registry, services::registry_section()));
  add(all, within(&Config::publishing, publishing::publishing_section()));
  return all;
}

// Where a node is, for messages: "file:line".
std::string place(std::string_view source, const YAML::Node& node) {
  std::string where(source);
  if (node.Mark().line >= 0) where += ":" + std::to_string(node.Mark().line + 1);
  return where;
}

[[noreturn]] void fail(std::string_view source, const YAML::Node& node, const std::string& key,
                       const std::string& why) {
  throw ConfigError(place(source, node) + ": " + key + ": " + why);
}

std::string scalar(std::string_view source, const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) fail(source, node, key, "expected a single value");
  return node.Scalar();
}

// The text of a key's value: one scalar, or for a list key the items of a
// sequence (a single value is a list of one).
std::vector<std::string> values(std::string_view source, const YAML::Node& node, const settings::Key<Config>& key,
                                const std::string& name) {
  if (key.kind != settings::Kind::list || node.IsScalar()) return {scalar(source, node, name)};
  if (!node.IsSequence()) fail(source, node, name, "expected a list of values");
  std::vector<std::string> out;
  for (const auto& item : node) out.push_back(scalar(source, item, name));
  return out;
}

const settings::Key<Config>* find_in(const Section<Config>& section, std::string_view key) {
  auto it = std::find_if(section.keys.begin(), section.keys.end(), [&](const auto& k) { return k.name == key; });
  return it == section.keys.end() ? nullptr : &*it;
}

}  // namespace

const std::vector<settings::Section<Config>>& sections() {
  static const std::vector<Section<Config>> all = compose();
  return all;
}

std::vector<std::string> keys() {
  std::vector<std::string> out;
  for (const auto& section : sections()) {
    for (const auto& key : section.keys) out.push_back(section.name + "." + key.name);
  }
  return out;
}

const settings::Key<Config>* find_key(std::string_view name) {
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return nullptr;
  for (const auto& section : sections()) {
    if (section.name == name.substr(0, dot)) return find_in(section, name.substr(dot + 1));
  }
  return nullptr;
}

Config from_yaml(std::string_view text, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string(source) + ": " + e.what());
  }
  Config config;
  if (root.IsNull()) return config;  // an empty file keeps the defaults
  if (!root.IsMap()) fail(source, root, "(top level)", "expected a mapping of sections");
  for (const auto& entry : root) {
    const std::string name = scalar(source, entry.first, "(section name)");
    auto section = std::find_if(sections().begin(), sections().end(), [&](const auto& s) { return s.name == name; });
    if (section == sections().end()) {
      std::string known;
      for (const auto& s : sections()) known += (known.empty() ? "" : ", ") + s.name;
      fail(source, entry.first, name, "unknown section (known: " + known + ")");
    }
    if (entry.second.IsNull()) continue;
    if (!entry.second.IsMap()) fail(source, entry.second, name, "expected a mapping");
    for (const auto& item : entry.second) {
      const std::string key_name = scalar(source, item.first, name + ".(key)");
      const std::string full = name + "." + key_name;
      const settings::Key<Config>* key = find_in(*section, key_name);
      if (key == nullptr) fail(source, item.first, full, "unknown key");
      try {
        key->read(config, values(source, item.second, *key, full));
      } catch (const settings::ValueError& e) {
        fail(source, item.second, full, e.what());
      }
    }
  }
  validate(config);
  return config;
}

Config load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path.string() + ": cannot open the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return from_yaml(text.str(), path.string());
}

void set(Config& config, std::string_view name, std::string_view text) {
  const settings::Key<Config>* key = find_key(name);
  if (key == nullptr) throw ConfigError(std::string(name) + ": unknown key");
  try {
    const std::string value(text);
    key->read(config, std::span(&value, 1));
  } catch (const settings::ValueError& e) {
    throw ConfigError(std::string(name) + ": " + e.what());
  }
}

void validate(Config& config) {
  for (const auto& section : sections()) settings::check(section, config);
}

services::AppOptions app_options(const Config& config) {
  services::AppOptions o;
  o.service = config.service;
  o.limits = config.results;
  o.jobs = config.jobs;
  o.tap = config.tap;
  o.hips = config.hips;
  o.soda = config.soda;
  o.photometry = config.photometry;
  o.auth = config.auth;
  o.user_images = config.user_images;
  o.publishing = config.publishing;
  return o;
}

}  // namespace pixserve::config
