// The recipe of a virtual dataset: what re-creates it, bit for bit. The
// survey keeps for every product it does not store "the list of input images
// and the pipeline parameters, including software versions"; here that is
// one JSON document per dataset (dataset.recipe in the registry; keys
// sorted, as written):
//
//   {"inputs": [{"checksum": "<sha256>", "id": "DR1.raw.v1000000.d004", "role": "raw"}, ...],
//    "parameters": {...}, "product": "calexp", "recipe": 1,
//    "versions": {"algorithm": "pixserve-isr-1.0", "software": "pixserve-0.1.0"}}
//
// Its hash (SHA-256 of the document as written) is the dataset's checksum
// and the key of the re-created file in the product cache.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pixserve::repo {

struct RecipeInput {
  std::string role;  // raw, bias, flat, template, calexp
  std::string dataset_id;
  std::string checksum;  // sha256 of the input's file when the recipe was written
  friend bool operator==(const RecipeInput&, const RecipeInput&) = default;
};

struct Recipe {
  std::string product;  // the dataset type it makes: calexp, diffim
  std::vector<RecipeInput> inputs;
  std::string software_version;  // written into the product (SWVER)
  std::string algorithm_version;  // ISRVER of a calexp, DIFFVER of a difference image
  nlohmann::json parameters = nlohmann::json::object();

  // The input of that role; throws std::invalid_argument naming the recipe's
  // product when it has none.
  const RecipeInput& input(const std::string& role) const;

  std::string to_json() const;
  // Throws std::invalid_argument for a document that is not a recipe of
  // this format.
  static Recipe from_json(const std::string& text);
  friend bool operator==(const Recipe&, const Recipe&) = default;
};

// "pixserve-<version>": what SWVER says of files this build makes, and what
// a recipe written by this build records.
std::string software_version();

// SHA-256 (hex) of the recipe document.
std::string recipe_hash(const std::string& recipe_json);

}  // namespace pixserve::repo
