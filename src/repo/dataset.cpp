#include "repo/dataset.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace pixserve::repo {
namespace {

constexpr std::array<std::pair<DatasetType, std::string_view>, 9> kTypeNames{{
    {DatasetType::raw, "raw"},
    {DatasetType::bias, "bias"},
    {DatasetType::flat, "flat"},
    {DatasetType::calexp, "calexp"},
    {DatasetType::calexp_comp, "calexp_comp"},
    {DatasetType::diffim, "diffim"},
    {DatasetType::deepCoadd, "deepCoadd"},
    {DatasetType::goodSeeingCoadd, "goodSeeingCoadd"},
    {DatasetType::user, "user"},
}};

constexpr std::array<std::pair<ReadPolicy, std::string_view>, 4> kPolicyNames{{
    {ReadPolicy::public_, "public"},
    {ReadPolicy::data_rights, "data-rights"},
    {ReadPolicy::groups, "groups"},
    {ReadPolicy::owner, "owner"},
}};

std::int64_t require(const std::optional<std::int64_t>& v, std::string_view key, DatasetType t) {
  if (!v) throw std::invalid_argument(fmt::format("a {} dataset needs {} in its data ID", to_string(t), key));
  return *v;
}

const std::string& require(const std::string& v, std::string_view key, DatasetType t) {
  if (v.empty()) throw std::invalid_argument(fmt::format("a {} dataset needs {} in its data ID", to_string(t), key));
  return v;
}

}  // namespace

std::string_view to_string(DatasetType t) {
  for (const auto& [type, name] : kTypeNames) {
    if (type == t) return name;
  }
  return "user";
}

std::vector<DatasetType> dataset_types() {
  std::vector<DatasetType> out;
  for (const auto& [type, name] : kTypeNames) out.push_back(type);
  return out;
}

std::optional<DatasetType> dataset_type_from_string(std::string_view s) {
  for (const auto& [type, name] : kTypeNames) {
    if (name == s) return type;
  }
  return std::nullopt;
}

bool is_visit_based(DatasetType t) {
  return t == DatasetType::raw || t == DatasetType::calexp || t == DatasetType::calexp_comp ||
         t == DatasetType::diffim;
}
bool is_coadd(DatasetType t) { return t == DatasetType::deepCoadd || t == DatasetType::goodSeeingCoadd; }
std::string_view to_string(Storage s) { return s == Storage::file ? "file" : "virtual"; }

std::optional<Storage> storage_from_string(std::string_view s) {
  if (s == "file") return Storage::file;
  if (s == "virtual") return Storage::virtual_;
  return std::nullopt;
}

bool is_calibration(DatasetType t) { return t == DatasetType::bias || t == DatasetType::flat; }

int calib_level(DatasetType t) {
  switch (t) {
    case DatasetType::raw:
    case DatasetType::bias:
    case DatasetType::flat:
      return 1;  // instrumental values in a standard format
    case DatasetType::calexp:
    case DatasetType::calexp_comp:
      return 2;  // calibrated single exposures
    case DatasetType::diffim:
    case DatasetType::deepCoadd:
    case DatasetType::goodSeeingCoadd:
    case DatasetType::user:
      return 3;  // enhanced products
  }
  return 3;
}

int calib_level(const DatasetRecord& r) { return r.calib_level.value_or(calib_level(r.type)); }

bool is_reserved_owner(std::string_view name) noexcept {
  const auto same = [name](std::string_view reserved) {
    return name.size() == reserved.size() &&
           std::equal(name.begin(), name.end(), reserved.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
           });
  };
  return same(kSurveyOwner) || same("anonymous");
}

std::string_view to_string(ReadPolicy p) {
  for (const auto& [policy, name] : kPolicyNames) {
    if (policy == p) return name;
  }
  return "owner";
}

std::optional<ReadPolicy> read_policy_from_string(std::string_view s) {
  for (const auto& [policy, name] : kPolicyNames) {
    if (name == s) return policy;
  }
  return std::nullopt;
}

bool is_safe_identifier(std::string_view s) {
  if (s.empty() || s.size() > 200 || s.front() == '.' || s.front() == '-') return false;
  for (const char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string make_dataset_id(const std::string& collection, DatasetType type, const DataId& id,
                            const std::string& owner, const std::string& user_name) {
  if (!is_safe_identifier(collection)) {
    throw std::invalid_argument(fmt::format("collection name '{}' must be letters, digits, '.', '_', '-'", collection));
  }
  std::string result;
  if (is_visit_based(type)) {
    result = fmt::format("{}.{}.v{}.d{:03d}", collection, to_string(type), require(id.visit, "visit", type),
                         require(id.detector, "detector", type));
  } else if (type == DatasetType::bias) {
    result = fmt::format("{}.bias.d{:03d}", collection, require(id.detector, "detector", type));
  } else if (type == DatasetType::flat) {
    result = fmt::format("{}.flat.{}.d{:03d}", collection, require(id.band, "band", type),
                         require(id.detector, "detector", type));
  } else if (is_coadd(type)) {
    std::string patch = require(id.patch, "patch", type);
    for (char& c : patch) {
      if (c == ',') c = '_';
    }
    result = fmt::format("{}.{}.{}.t{}.p{}", collection, to_string(type), require(id.band, "band", type),
                         require(id.tract, "tract", type), patch);
  } else {
    result = fmt::format("{}.user.{}.{}", collection, owner, user_name);
  }
  if (!is_safe_identifier(result)) {
    throw std::invalid_argument(fmt::format("data ID gives an unsafe dataset ID '{}'", result));
  }
  return result;
}

}  // namespace pixserve::repo
