// Virtual datasets made at ingest: for every raw, the calexp that its bias
// and flat make, registered without a file (storage = virtual) with the
// recipe that re-creates it (repo/recipe.hpp). Its ObsCore row is the raw's
// (footprint from the raw's WCS, time, band, observing conditions) with the
// calexp's type, ID and calibration level, so that clients see a stored and
// a virtual calexp alike; its rights are the raw's, so it is visible exactly
// when the raw is.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/calexp.hpp"
#include "repo/dataset.hpp"
#include "repo/registry.hpp"

namespace pixserve::repo {

// What is known of a dataset while ingest plans: registered, or in this run.
struct KnownDataset {
  std::string checksum;
};

// The calexp of a raw as a virtual dataset, or nullopt when the raw already
// has a calexp (registered or known) or its bias or flat is not known.
// `known` holds this run's new datasets by ID; registered ones are looked
// up in the registry.
std::optional<DatasetRecord> virtual_calexp_of(const DatasetRecord& raw,
                                               const std::map<std::string, KnownDataset>& known, Registry& registry);

// The calexp parameters a recipe records (ISR settings, PSF guess; 0: from
// the raw's SEEING) and back; from_json throws std::invalid_argument for a
// malformed or incomplete object. software_version is the recipe's.
nlohmann::json calexp_parameters_to_json(const image::CalexpParameters& parameters);
image::CalexpParameters calexp_parameters_from_json(const nlohmann::json& parameters,
                                                    const std::string& software_version);

// Size of the calexp file of a width x height detector (three 32-bit planes
// and four header units of 2880 bytes, each unit padded to 2880): what
// access_estsize announces before the file exists.
std::int64_t estimated_calexp_bytes(std::int64_t width, std::int64_t height);

}  // namespace pixserve::repo
