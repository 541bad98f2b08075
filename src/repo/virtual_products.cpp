#include "repo/virtual_products.hpp"

#include <algorithm>
#include <stdexcept>

#include "db/database.hpp"
#include "repo/coadd_mosaics.hpp"
#include "repo/recipe.hpp"

namespace pixserve::repo {
namespace {

std::optional<std::string> checksum_of(const std::string& id, const std::map<std::string, KnownDataset>& known,
                                       Registry& registry) {
  if (const auto it = known.find(id); it != known.end()) return it->second.checksum;
  return registry.checksum_of(id);
}

// The raw's detector's bias and flat IDs.
std::pair<std::string, std::string> calibration_ids(const DatasetRecord& raw) {
  DataId calib;
  calib.detector = raw.data_id.detector;
  std::string bias_id = make_dataset_id(raw.collection, DatasetType::bias, calib);
  calib.band = raw.data_id.band;
  return {std::move(bias_id), make_dataset_id(raw.collection, DatasetType::flat, calib)};
}

// The record of a virtual product of a raw: the raw's ObsCore row, rights
// and observation, with the product's type, ID, recipe and provenance.
DatasetRecord virtual_record(const DatasetRecord& raw, DatasetType type, std::string dataset_id, const Recipe& recipe,
                             std::vector<ProvenanceLink> inputs) {
  DatasetRecord product = raw;
  product.type = type;
  product.dataset_id = std::move(dataset_id);
  product.calib_level.reset();
  product.storage = Storage::virtual_;
  product.recipe = recipe.to_json();
  product.checksum = recipe_hash(product.recipe);
  product.file_path.clear();
  product.content_type = "application/fits";
  product.file_size = estimated_calexp_bytes(raw.width, raw.height);
  product.software_version = recipe.software_version;
  product.inputs = std::move(inputs);
  return product;
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
  const auto [bias_id, flat_id] = calibration_ids(raw);
  const auto bias = checksum_of(bias_id, known, registry);
  const auto flat = checksum_of(flat_id, known, registry);
  if (!bias || !flat) return std::nullopt;

  Recipe recipe;
  recipe.product = "calexp";
  recipe.inputs = {{"raw", raw.dataset_id, raw.checksum}, {"bias", bias_id, *bias}, {"flat", flat_id, *flat}};
  recipe.software_version = software_version();
  recipe.algorithm_version = std::string(image::kIsrVersion);
  recipe.parameters = calexp_parameters_to_json({});

  return virtual_record(raw, DatasetType::calexp, calexp_id, recipe,
                        {{raw.dataset_id, "raw"}, {bias_id, "bias"}, {flat_id, "flat"}});
}

std::size_t set_rights_with_products(Registry& registry, const DatasetRecord& stored, const Rights& rights) {
  if (is_coadd_mosaic(stored)) {
    throw std::invalid_argument(stored.dataset_id + " is a logical coadd: its rights follow those of its patches");
  }
  if (stored.storage == Storage::virtual_) {
    throw std::invalid_argument(stored.dataset_id + " is a virtual product: its rights are those of its raw");
  }
  DatasetQuery made_from_it;
  made_from_it.dataset_ids = registry.outputs_of(stored.dataset_id);
  std::vector<std::string> products;
  if (!made_from_it.dataset_ids.empty()) {
    for (const auto& output : registry.find(made_from_it)) {
      if (output.storage != Storage::virtual_) continue;
      const auto inputs = registry.inputs_of(output.dataset_id);
      const bool its_raw = std::any_of(inputs.begin(), inputs.end(), [&](const ProvenanceLink& l) {
        return l.role == "raw" && l.input_id == stored.dataset_id;
      });
      if (its_raw) products.push_back(output.dataset_id);
    }
  }
  db::Transaction tx(registry.connection());
  registry.set_rights(stored.dataset_id, rights);
  for (const auto& id : products) registry.set_rights(id, rights);
  // A patch's logical coadd takes its rights from all its patches.
  if (auto group = coadd_group_of(stored)) refresh_coadd_mosaics(registry, {*group});
  tx.commit();
  return products.size();
}

nlohmann::json diffim_parameters_to_json(const image::DiffimParameters& p) {
  const auto& s = p.stars;
  return {{"stars",
           {{"min_peak_snr", s.min_peak_snr},
            {"neighbour_snr", s.neighbour_snr},
            {"isolation_radius", s.isolation_radius},
            {"grid", s.grid},
            {"max_per_cell", s.max_per_cell}}},
          {"spatial_order", p.spatial_order},
          {"background_order", p.background_order},
          {"clip_sigma", p.clip_sigma},
          {"max_iterations", p.max_iterations},
          {"detection_sigma", p.detection_sigma},
          {"warp", "lanczos3"}};
}

image::DiffimParameters diffim_parameters_from_json(const nlohmann::json& j, const std::string& software_version) {
  try {
    image::DiffimParameters p;
    const auto& s = j.at("stars");
    p.stars.min_peak_snr = s.at("min_peak_snr").get<double>();
    p.stars.neighbour_snr = s.at("neighbour_snr").get<double>();
    p.stars.isolation_radius = s.at("isolation_radius").get<double>();
    p.stars.grid = s.at("grid").get<int>();
    p.stars.max_per_cell = s.at("max_per_cell").get<int>();
    p.spatial_order = j.at("spatial_order").get<int>();
    p.background_order = j.at("background_order").get<int>();
    p.clip_sigma = j.at("clip_sigma").get<double>();
    p.max_iterations = j.at("max_iterations").get<int>();
    p.detection_sigma = j.at("detection_sigma").get<float>();
    if (j.at("warp").get<std::string>() != "lanczos3") throw std::invalid_argument("unknown warp kernel");
    if (p.spatial_order < 0 || p.spatial_order > 3 || p.background_order < 0 || p.background_order > 3) {
      throw std::invalid_argument("polynomial orders must be 0..3");
    }
    p.software_version = software_version;
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("diffim recipe parameters: ") + e.what());
  }
}

std::vector<TemplatePatch> template_patches(std::span<const DatasetRecord* const> records, Registry& registry) {
  std::vector<DatasetRecord> found;
  for (const DatasetRecord* r : records) {
    if (r->type == DatasetType::goodSeeingCoadd && !is_coadd_mosaic(*r)) found.push_back(*r);
  }
  DatasetQuery q;
  q.dataset_types = {std::string(to_string(DatasetType::goodSeeingCoadd))};
  q.patches_only = true;
  for (auto& r : registry.find(q)) {
    r.inputs = registry.inputs_of(r.dataset_id);
    found.push_back(std::move(r));
  }
  // The visits of the inputs: from this run's records, else the registry.
  std::map<std::string, std::int64_t> visit_of;
  for (const DatasetRecord* r : records) {
    if (r->data_id.visit) visit_of.emplace(r->dataset_id, *r->data_id.visit);
  }
  DatasetQuery inputs;
  for (const auto& t : found) {
    for (const auto& link : t.inputs) {
      if (!visit_of.contains(link.input_id)) inputs.dataset_ids.push_back(link.input_id);
    }
  }
  if (!inputs.dataset_ids.empty()) {
    for (const auto& r : registry.find(inputs)) {
      if (r.data_id.visit) visit_of.emplace(r.dataset_id, *r.data_id.visit);
    }
  }
  std::vector<TemplatePatch> out;
  for (const auto& t : found) {
    if (!t.footprint || t.data_id.band.empty()) continue;
    TemplatePatch patch{t.dataset_id, t.checksum, t.data_id.band, *t.footprint, {}, t.data_id.skymap,
                        t.data_id.tract.value_or(0)};
    for (const auto& link : t.inputs) {
      if (const auto v = visit_of.find(link.input_id); v != visit_of.end()) patch.visits.insert(v->second);
    }
    out.push_back(std::move(patch));
  }
  std::sort(out.begin(), out.end(), [](const TemplatePatch& a, const TemplatePatch& b) { return a.dataset_id < b.dataset_id; });
  return out;
}

std::optional<DatasetRecord> virtual_diffim_of(const DatasetRecord& raw, const std::map<std::string, KnownDataset>& known,
                                               std::span<const TemplatePatch> templates, Registry& registry) {
  if (raw.type != DatasetType::raw || !raw.data_id.detector || !raw.data_id.visit || raw.data_id.band.empty() ||
      !raw.footprint) {
    return std::nullopt;
  }
  const std::string diffim_id = make_dataset_id(raw.collection, DatasetType::diffim, raw.data_id);
  if (checksum_of(diffim_id, known, registry)) return std::nullopt;
  const std::string calexp_id = make_dataset_id(raw.collection, DatasetType::calexp, raw.data_id);
  const auto calexp_checksum = checksum_of(calexp_id, known, registry);
  if (!calexp_checksum) return std::nullopt;

  Recipe recipe;
  recipe.product = "diffim";
  recipe.inputs.push_back({"calexp", calexp_id, *calexp_checksum});
  // The usable patches by tract: a template made with this visit would
  // subtract part of the visit from itself.
  std::map<std::pair<std::string, std::int64_t>, std::vector<const TemplatePatch*>> by_tract;
  for (const auto& t : templates) {
    if (t.band != raw.data_id.band || t.visits.contains(*raw.data_id.visit)) continue;
    if (!sky::intersects(t.footprint, *raw.footprint)) continue;
    by_tract[{t.skymap, t.tract}].push_back(&t);
  }
  if (by_tract.empty()) return std::nullopt;
  // One tract: the one with a patch holding the raw's centre, else the one
  // with most patches over the raw (map order breaks ties: lower tract).
  const std::optional<sky::SkyPoint> centre =
      raw.s_ra && raw.s_dec ? std::optional<sky::SkyPoint>(sky::SkyPoint{*raw.s_ra, *raw.s_dec}) : std::nullopt;
  const std::vector<const TemplatePatch*>* chosen = nullptr;
  for (const auto& [tract, patches] : by_tract) {
    const bool holds_centre = centre && std::any_of(patches.begin(), patches.end(), [&](const TemplatePatch* p) {
                                return p->footprint.contains(*centre);
                              });
    if (holds_centre) {
      chosen = &patches;
      break;
    }
    if (chosen == nullptr || patches.size() > chosen->size()) chosen = &patches;
  }
  for (const TemplatePatch* t : *chosen) recipe.inputs.push_back({"template", t->dataset_id, t->checksum});
  recipe.software_version = software_version();
  recipe.algorithm_version = std::string(image::kDiffimVersion);
  recipe.parameters = diffim_parameters_to_json({});

  std::vector<ProvenanceLink> provenance{{calexp_id, "calexp"}};
  for (const auto& input : recipe.inputs) {
    if (input.role == "template") provenance.push_back({input.dataset_id, "template"});
  }
  provenance.push_back({raw.dataset_id, "raw"});
  const auto [bias_id, flat_id] = calibration_ids(raw);
  if (checksum_of(bias_id, known, registry)) provenance.push_back({bias_id, "bias"});
  if (checksum_of(flat_id, known, registry)) provenance.push_back({flat_id, "flat"});
  return virtual_record(raw, DatasetType::diffim, diffim_id, recipe, std::move(provenance));
}

}  // namespace pixserve::repo
