// Re-creation of virtual products from their recipes (repo/recipe.hpp): a
// calexp by ISR of its raw with its bias and flat (image/calexp.hpp), a
// difference image by subtracting from its calexp the template patches
// warped onto the calexp's grid and PSF-matched to it (image/diffim.hpp).
//
// Every input is checked against the checksum its recipe recorded before it
// is used: a stored file by its SHA-256 (computed once per version of the
// file, see InputChecksums), a virtual input by its own recipe's hash.
//
// Measurements: what re-creating a whole product measures over the whole
// CCD and a part of it cannot (a calexp's background and PSF, a difference
// image's fitted PSF-matching kernel) is returned as JSON for the product
// cache to keep beside the product; a part of the product (products/parts.hpp)
// is computed with them, and a later whole re-creation of a difference image
// uses the kept kernel instead of fitting again. The measurements are a
// function of the recipe (the same inputs give the same fit), so losing them
// costs only the time to measure again.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/calexp.hpp"
#include "image/diffim.hpp"
#include "repo/dataset.hpp"
#include "repo/recipe.hpp"

namespace pixserve::products {

// A product cannot be re-created: an input is missing, changed since the
// recipe was written, or unreadable, or the recipe is not one this build can
// follow. The message names the product and the input.
class RecreationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How re-creation finds a recipe's inputs: the registered record of a
// dataset ID (nullopt when there is none) and the file of a record (for a
// virtual input, its re-created file).
struct InputResolver {
  std::function<std::optional<repo::DatasetRecord>(const std::string& dataset_id)> find;
  std::function<std::filesystem::path(const repo::DatasetRecord&)> file_of;
};

// SHA-256 of input files, computed once per version of a file (its size and
// modification time): every re-creation, and every part of a product,
// checks its inputs, and hashing a raw for each 51x51 stamp would cost more
// than the stamp. Thread-safe.
class InputChecksums {
 public:
  // Throws std::runtime_error when the file cannot be read.
  std::string of(const std::filesystem::path& file);

 private:
  struct Known {
    std::uintmax_t size = 0;
    std::filesystem::file_time_type modified{};
    std::string sha256;
  };
  std::mutex mutex_;
  std::map<std::string, Known> known_;
};

// The inputs of a recipe, resolved and checked.
class RecipeInputs {
 public:
  RecipeInputs(const repo::DatasetRecord& product, const repo::Recipe& recipe, const InputResolver& resolver,
               InputChecksums& checksums)
      : product_(product), recipe_(recipe), resolver_(resolver), checksums_(checksums) {}

  // The file of the recipe's one input of this role; throws RecreationError
  // naming the input when it is not registered, unreadable or changed.
  std::filesystem::path file(const std::string& role) const;
  // The files of every input of this role, in recipe order.
  std::vector<std::filesystem::path> files(const std::string& role) const;
  // The registered record of the one input of this role (checked as file() does, without reading it).
  repo::DatasetRecord record(const std::string& role) const;

 private:
  const repo::RecipeInput& input(const std::string& role) const;
  repo::DatasetRecord checked_record(const repo::RecipeInput& input) const;
  std::filesystem::path checked_file(const repo::RecipeInput& input) const;

  const repo::DatasetRecord& product_;
  const repo::Recipe& recipe_;
  const InputResolver& resolver_;
  InputChecksums& checksums_;
};

// The recipe of a virtual dataset, checked to be one this build can follow
// (product type and algorithm version); throws RecreationError.
repo::Recipe followable_recipe(const repo::DatasetRecord& record);

// The parameters a calexp's or difference image's recipe records; throws
// RecreationError naming the product for malformed ones.
image::CalexpParameters calexp_parameters_of(const repo::DatasetRecord& record, const repo::Recipe& recipe);
image::DiffimParameters diffim_parameters_of(const repo::DatasetRecord& record, const repo::Recipe& recipe);

// A calexp's measurements as kept (JSON) and back; from_json throws
// RecreationError for a malformed object.
nlohmann::json calexp_measurements_to_json(const image::CalexpMeasurements& m);
image::CalexpMeasurements calexp_measurements_from_json(const nlohmann::json& j);

// A difference image's kernel as kept (JSON) and back; from_json throws
// RecreationError for a malformed object or a kernel of another version.
nlohmann::json diffim_kernel_to_json(const image::DiffimKernel& kernel);
image::DiffimKernel diffim_kernel_from_json(const nlohmann::json& j);

// Re-creates the whole product of a recipe into `path` and returns the
// measurements to keep. `kept` holds the measurements kept of an earlier
// re-creation (or null): a difference image then uses the kept kernel.
// Throws RecreationError.
nlohmann::json recreate(const repo::DatasetRecord& record, const repo::Recipe& recipe, const RecipeInputs& inputs,
                        const std::filesystem::path& path, const nlohmann::json& kept);

}  // namespace pixserve::products
