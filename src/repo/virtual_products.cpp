#include "repo/virtual_products.hpp"

#include <stdexcept>

#include "repo/recipe.hpp"

namespace pixserve::repo {
namespace {

std::optional<std::string> checksum_of(const std::string& id, const std::map<std::string, KnownDataset>& known,
                                       Registry& registry) {
  if (const auto it = known.find(id); it != known.end()) return it->second.checksum;
  return registry.checksum_of(id);
}

}  // namespace

nlohmann::json calexp_parameters_to_json(const image::CalexpParameters& p) {
  const auto& o = p.isr.overscan;
  return {{"overscan",
           {{"statistic", o.statistic == image::OverscanStatistic::mean ? "mean" : "median"},
            {"skip_columns", o.skip_columns},
            {"smoothing_rows", o.smoothing_rows}}},
          {"edge_width", p.isr.edge_width},
          {"bad_flat_threshold", p.isr.bad_flat_threshold},
          {"subtract_background", p.isr.subtract_background},
          {"detection_sigma", p.isr.detection_sigma},
          {"psf_sigma_guess", p.psf_sigma_guess}};
}

image::CalexpParameters calexp_parameters_from_json(const nlohmann::json& j, const std::string& software_version) {
  try {
    image::CalexpParameters p;
    const auto& o = j.at("overscan");
    const auto statistic = o.at("statistic").get<std::string>();
    if (statistic != "mean" && statistic != "median") throw std::invalid_argument("unknown overscan statistic " + statistic);
    p.isr.overscan.statistic = statistic == "mean" ? image::OverscanStatistic::mean : image::OverscanStatistic::median;
    p.isr.overscan.skip_columns = o.at("skip_columns").get<long>();
    p.isr.overscan.smoothing_rows = o.at("smoothing_rows").get<long>();
    p.isr.edge_width = j.at("edge_width").get<long>();
    p.isr.bad_flat_threshold = j.at("bad_flat_threshold").get<float>();
    p.isr.subtract_background = j.at("subtract_background").get<bool>();
    p.isr.detection_sigma = j.at("detection_sigma").get<float>();
    p.psf_sigma_guess = j.at("psf_sigma_guess").get<double>();
    p.software_version = software_version;
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("calexp recipe parameters: ") + e.what());
  }
}

std::int64_t estimated_calexp_bytes(std::int64_t width, std::int64_t height) {
  constexpr std::int64_t kBlock = 2880;
  const std::int64_t plane = (width * height * 4 + kBlock - 1) / kBlock * kBlock;
  return 3 * plane + 4 * kBlock;
}

std::optional<DatasetRecord> virtual_calexp_of(const DatasetRecord& raw,
                                               const std::map<std::string, KnownDataset>& known, Registry& registry) {
  if (raw.type != DatasetType::raw || !raw.data_id.detector || raw.data_id.band.empty()) return std::nullopt;
  const std::string calexp_id = make_dataset_id(raw.collection, DatasetType::calexp, raw.data_id);
  if (checksum_of(calexp_id, known, registry)) return std::nullopt;  // stored (or already virtual)
  DataId calib;
  calib.detector = raw.data_id.detector;
  const std::string bias_id = make_dataset_id(raw.collection, DatasetType::bias, calib);
  calib.band = raw.data_id.band;
  const std::string flat_id = make_dataset_id(raw.collection, DatasetType::flat, calib);
  const auto bias = checksum_of(bias_id, known, registry);
  const auto flat = checksum_of(flat_id, known, registry);
  if (!bias || !flat) return std::nullopt;

  Recipe recipe;
  recipe.product = "calexp";
  recipe.inputs = {{"raw", raw.dataset_id, raw.checksum}, {"bias", bias_id, *bias}, {"flat", flat_id, *flat}};
  recipe.software_version = software_version();
  recipe.algorithm_version = std::string(image::kIsrVersion);
  recipe.parameters = calexp_parameters_to_json({});

  DatasetRecord calexp = raw;
  calexp.type = DatasetType::calexp;
  calexp.dataset_id = calexp_id;
  calexp.calib_level.reset();
  calexp.storage = Storage::virtual_;
  calexp.recipe = recipe.to_json();
  calexp.checksum = recipe_hash(calexp.recipe);
  calexp.file_path.clear();
  calexp.content_type = "application/fits";
  calexp.file_size = estimated_calexp_bytes(raw.width, raw.height);
  calexp.software_version = recipe.software_version;
  calexp.inputs = {{raw.dataset_id, "raw"}, {bias_id, "bias"}, {flat_id, "flat"}};
  return calexp;
}

}  // namespace pixserve::repo
