// The configuration of `pixserve serve`: the settings of every component,
// composed from the sections each component declares next to its code
// (settings/settings.hpp), and the YAML file that sets them.
//
// The file is a mapping of sections, each a mapping of keys. Every key is
// optional: an absent key keeps the default, which is its settings struct's
// member initialiser. Unknown sections and keys, and values of the wrong
// type, are errors naming the file, the line and the key. Command-line flags
// override the file: load it, set() the flags' keys, then validate().
// docs/pixserve.example.yaml is example_yaml() (`pixserve config --example`):
// every key with its default and what it does.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "auth/settings.hpp"
#include "dali/settings.hpp"
#include "http/settings.hpp"
#include "products/settings.hpp"
#include "publishing/settings.hpp"
#include "services/app.hpp"
#include "services/settings.hpp"
#include "settings/settings.hpp"
#include "tap/settings.hpp"
#include "uws/settings.hpp"

namespace pixserve::config {

struct Config {
  http::ServerSettings server{};        // sections server and limits, and service.cors_origins
  services::ServiceSettings service{};  // the other keys of section service...
  dali::ResultLimits results{};         // ...but service.maxrec_default and service.maxrec_limit
  uws::JobSettings jobs{};
  tap::TapSettings tap{};
  services::HipsSettings hips{};
  services::SodaLimits soda{};
  services::PhotometryLimits photometry{};
  auth::AuthSettings auth{};
  services::UserImageSettings user_images{};
  products::ProductCacheSettings products{};
  services::RegistrySettings registry{};
  publishing::PublishingSettings publishing{};
  friend bool operator==(const Config&, const Config&) = default;
};

// The file's sections in their order, each with the keys of every component
// that declares keys in it.
const std::vector<settings::Section<Config>>& sections();
// Every key as "section.key", in the order of sections().
std::vector<std::string> keys();
// The key named "section.key"; null when there is none.
const settings::Key<Config>* find_key(std::string_view name);

// Reads a YAML configuration over the defaults and validates it. Throws
// settings::ConfigError naming the file (or `source`), the line and the key.
Config load(const std::filesystem::path& path);
Config from_yaml(std::string_view text, std::string_view source = "<config>");

// Sets the key "section.key" from one value written as in the file (how a
// command-line flag overrides it). Throws settings::ConfigError
// "section.key: why" for an unknown key or a value it cannot read; the
// key's checks run in validate().
void set(Config& config, std::string_view name, std::string_view text);

// Runs the checks of every key (and normalises what they normalise).
// Throws settings::ConfigError naming the key.
void validate(Config& config);

// The example file: every section and key with its default and what it
// does, as docs/pixserve.example.yaml holds it.
std::string example_yaml();

// What the services take of it (the command line adds the web folders it
// found and the version).
services::AppOptions app_options(const Config& config);

}  // namespace pixserve::config
