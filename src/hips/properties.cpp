#include "hips/properties.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "hips/image_io.hpp"

namespace pixserve::hips {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Properties Properties::parse(std::string_view text) {
  Properties p;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto nl = text.find('\n', pos);
    const auto line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (line.empty() || line.front() == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const auto key = trim(line.substr(0, eq));
    if (key.empty()) continue;
    p.set(std::string(key), std::string(trim(line.substr(eq + 1))));
  }
  return p;
}

std::optional<Properties> Properties::load(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return parse(s.str());
}

void Properties::set(const std::string& key, std::string value) {
  // Values are single lines.
  for (auto& c : value) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  for (auto& [k, v] : entries_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(key, std::move(value));
}

std::optional<std::string> Properties::get(std::string_view key) const {
  for (const auto& [k, v] : entries_) {
    if (k == key) return v;
  }
  return std::nullopt;
}

void Properties::erase(std::string_view key) {
  std::erase_if(entries_, [&](const auto& e) { return e.first == key; });
}

std::string Properties::text() const {
  std::string out;
  for (const auto& [k, v] : entries_) out += fmt::format("{:<22}= {}\n", k, v);
  return out;
}

void Properties::save(const std::filesystem::path& file) const { write_file_atomic(file, text()); }

const std::vector<std::string>& required_keywords() {
  static const std::vector<std::string> kRequired{"creator_did",      "obs_title",   "dataproduct_type",
                                                  "hips_version",     "hips_release_date", "hips_status",
                                                  "hips_tile_format", "hips_order",  "hips_frame"};
  return kRequired;
}

}  // namespace pixserve::hips
