#include "repo/recipe.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "repo/repository.hpp"

#ifndef PIXSERVE_VERSION
#define PIXSERVE_VERSION "unknown"
#endif

namespace pixserve::repo {
namespace {

constexpr int kRecipeFormat = 1;

}  // namespace

const RecipeInput& Recipe::input(const std::string& role) const {
  for (const auto& i : inputs) {
    if (i.role == role) return i;
  }
  throw std::invalid_argument(fmt::format("the {} recipe has no {} input", product, role));
}

std::string Recipe::to_json() const {
  // nlohmann::json keeps object keys sorted, so the same recipe always gives
  // the same text and hence the same hash.
  nlohmann::json inputs_json = nlohmann::json::array();
  for (const auto& i : inputs) inputs_json.push_back({{"role", i.role}, {"id", i.dataset_id}, {"checksum", i.checksum}});
  const nlohmann::json doc = {{"recipe", kRecipeFormat},
                              {"product", product},
                              {"inputs", std::move(inputs_json)},
                              {"versions", {{"software", software_version}, {"algorithm", algorithm_version}}},
                              {"parameters", parameters}};
  return doc.dump();
}

Recipe Recipe::from_json(const std::string& text) {
  try {
    const auto doc = nlohmann::json::parse(text);
    if (!doc.is_object() || doc.value("recipe", 0) != kRecipeFormat) {
      throw std::invalid_argument("not a recipe of format 1");
    }
    Recipe r;
    r.product = doc.at("product").get<std::string>();
    for (const auto& i : doc.at("inputs")) {
      r.inputs.push_back({i.at("role").get<std::string>(), i.at("id").get<std::string>(),
                          i.at("checksum").get<std::string>()});
    }
    r.software_version = doc.at("versions").at("software").get<std::string>();
    r.algorithm_version = doc.at("versions").at("algorithm").get<std::string>();
    r.parameters = doc.at("parameters");
    if (!r.parameters.is_object()) throw std::invalid_argument("parameters is not an object");
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(fmt::format("malformed recipe: {}", e.what()));
  }
}

std::string software_version() { return std::string("pixserve-") + PIXSERVE_VERSION; }

std::string recipe_hash(const std::string& recipe_json) { return sha256_text(recipe_json); }

}  // namespace pixserve::repo
