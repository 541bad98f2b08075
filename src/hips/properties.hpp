// The HiPS "properties" file: "key = value" lines (HiPS 1.0 section 4.4.1),
// kept in insertion order; also the HiPS list format (records separated by
// blank lines).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pixserve::hips {

class Properties {
 public:
  static Properties parse(std::string_view text);
  // nullopt when the file does not exist.
  static std::optional<Properties> load(const std::filesystem::path& file);

  // Replaces the value of key (keeping its place) or appends it.
  void set(const std::string& key, std::string value);
  std::optional<std::string> get(std::string_view key) const;
  void erase(std::string_view key);
  const std::vector<std::pair<std::string, std::string>>& entries() const noexcept { return entries_; }

  std::string text() const;  // "key = value\n" per entry, keys padded
  void save(const std::filesystem::path& file) const;

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
};

// The HiPS 1.0 keywords every properties file must have.
const std::vector<std::string>& required_keywords();

}  // namespace pixserve::hips
