#include "products/recreate.hpp"

#include <algorithm>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "db/database.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/template_warp.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"

namespace pixserve::products {
namespace fs = std::filesystem;

std::string InputChecksums::of(const fs::path& file) {
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: {}", file.string(), ec.message()));
  const auto modified = fs::last_write_time(file, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: {}", file.string(), ec.message()));
  {
    const std::lock_guard lock(mutex_);
    if (const auto it = known_.find(file.string());
        it != known_.end() && it->second.size == size && it->second.modified == modified) {
      return it->second.sha256;
    }
  }
  std::string sha = repo::sha256_file(file);
  const std::lock_guard lock(mutex_);
  known_[file.string()] = Known{size, modified, sha};
  return sha;
}

const repo::RecipeInput& RecipeInputs::input(const std::string& role) const {
  try {
    return recipe_.input(role);
  } catch (const std::invalid_argument& e) {
    throw RecreationError(fmt::format("{}: {}", product_.dataset_id, e.what()));
  }
}

repo::DatasetRecord RecipeInputs::checked_record(const repo::RecipeInput& input) const {
  auto record = resolver_.find(input.dataset_id);
  if (!record) {
    throw RecreationError(fmt::format("{}: its {} input {} is not registered", product_.dataset_id, input.role,
                                      input.dataset_id));
  }
  // A virtual input is checked by its recipe: its checksum is the recipe's hash.
  if (record->storage == repo::Storage::virtual_ && record->checksum != input.checksum) {
    throw RecreationError(fmt::format("{}: its {} input {} no longer matches the recipe (recipe hash {}, recorded {})",
                                      product_.dataset_id, input.role, input.dataset_id, record->checksum,
                                      input.checksum));
  }
  return std::move(*record);
}

fs::path RecipeInputs::checked_file(const repo::RecipeInput& input) const {
  const auto record = checked_record(input);
  fs::path file;
  std::string checksum;
  try {
    file = resolver_.file_of(record);
    if (record.storage == repo::Storage::virtual_) return file;
    checksum = checksums_.of(file);
  } catch (const RecreationError& e) {
    throw RecreationError(fmt::format("{}: its {} input cannot be made: {}", product_.dataset_id, input.role, e.what()));
  } catch (const db::Unavailable&) {
    throw;  // looking up a virtual input's own inputs: the database is away, nothing is wrong with the product
  } catch (const std::exception& e) {
    // The details name paths: for the log, not for the client.
    spdlog::error("{}: reading input {}: {}", product_.dataset_id, input.dataset_id, e.what());
    throw RecreationError(fmt::format("{}: its {} input {} cannot be read", product_.dataset_id, input.role,
                                      input.dataset_id));
  }
  if (checksum != input.checksum) {
    throw RecreationError(fmt::format("{}: its {} input {} no longer matches the recipe (checksum {}, recipe {})",
                                      product_.dataset_id, input.role, input.dataset_id, checksum, input.checksum));
  }
  return file;
}

fs::path RecipeInputs::file(const std::string& role) const { return checked_file(input(role)); }

std::vector<fs::path> RecipeInputs::files(const std::string& role) const {
  std::vector<fs::path> out;
  for (const auto& i : recipe_.inputs) {
    if (i.role == role) out.push_back(checked_file(i));
  }
  if (out.empty()) input(role);  // throws, naming the missing role
  return out;
}

repo::DatasetRecord RecipeInputs::record(const std::string& role) const { return checked_record(input(role)); }

repo::Recipe followable_recipe(const repo::DatasetRecord& record) {
  repo::Recipe recipe;
  try {
    recipe = repo::Recipe::from_json(record.recipe);
  } catch (const std::invalid_argument& e) {
    throw RecreationError(fmt::format("{}: {}", record.dataset_id, e.what()));
  }
  std::string_view version, algorithm;
  if (recipe.product == "calexp") {
    version = image::kIsrVersion;
    algorithm = "ISR";
  } else if (recipe.product == "diffim") {
    version = image::kDiffimVersion;
    algorithm = "difference imaging";
  } else {
    throw RecreationError(fmt::format("{}: recipes of {} products are not supported", record.dataset_id, recipe.product));
  }
  if (recipe.algorithm_version != version) {
    throw RecreationError(fmt::format("{}: its recipe needs {} {}, this build has {}", record.dataset_id, algorithm,
                                      recipe.algorithm_version, version));
  }
  return recipe;
}

namespace {

// A recipe's parameters read by `parse`, its failures as RecreationError.
template <typename F>
auto recipe_parameters(const repo::DatasetRecord& record, const repo::Recipe& recipe, F&& parse) {
  try {
    return std::forward<F>(parse)(recipe.parameters, recipe.software_version);
  } catch (const std::invalid_argument& e) {
    throw RecreationError(fmt::format("{}: {}", record.dataset_id, e.what()));
  }
}

}  // namespace

image::CalexpParameters calexp_parameters_of(const repo::DatasetRecord& record, const repo::Recipe& recipe) {
  return recipe_parameters(record, recipe, repo::calexp_parameters_from_json);
}

image::DiffimParameters diffim_parameters_of(const repo::DatasetRecord& record, const repo::Recipe& recipe) {
  return recipe_parameters(record, recipe, repo::diffim_parameters_from_json);
}

nlohmann::json calexp_measurements_to_json(const image::CalexpMeasurements& m) {
  nlohmann::json j = {{"background", {{"level", m.background.level}, {"rms", m.background.rms},
                                      {"samples", m.background.samples}}}};
  j["psf_fwhm_arcsec"] = m.psf_fwhm_arcsec ? nlohmann::json(*m.psf_fwhm_arcsec) : nlohmann::json(nullptr);
  return j;
}

image::CalexpMeasurements calexp_measurements_from_json(const nlohmann::json& j) {
  try {
    image::CalexpMeasurements m;
    const auto& b = j.at("background");
    m.background.level = b.at("level").get<double>();
    m.background.rms = b.at("rms").get<double>();
    m.background.samples = b.at("samples").get<std::size_t>();
    const auto& psf = j.at("psf_fwhm_arcsec");
    if (!psf.is_null()) m.psf_fwhm_arcsec = psf.get<double>();
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw RecreationError(fmt::format("malformed calexp measurements: {}", e.what()));
  }
}

nlohmann::json diffim_kernel_to_json(const image::DiffimKernel& k) {
  return {{"kernel", k.kernel.to_json()}, {"kernel_source", std::string(image::to_string(k.source))},
          {"stamps", k.stamps}};
}

image::DiffimKernel diffim_kernel_from_json(const nlohmann::json& j) {
  try {
    const auto source_text = j.at("kernel_source").get<std::string>();
    image::KernelSource source = image::KernelSource::fit;
    if (source_text == "fit-constant") {
      source = image::KernelSource::fit_constant;
    } else if (source_text == "model") {
      source = image::KernelSource::model;
    } else if (source_text != "fit") {
      throw RecreationError("unknown kernel source " + source_text);
    }
    return {image::PsfMatchingKernel::from_json(j.at("kernel").get<std::string>()), source,
            j.at("stamps").get<std::size_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw RecreationError(fmt::format("malformed difference image measurements: {}", e.what()));
  } catch (const image::PsfMatchError& e) {
    throw RecreationError(fmt::format("unusable kept kernel: {}", e.what()));
  }
}

namespace {

constexpr std::string_view kInputsUnreadable = "the inputs are unreadable";
constexpr std::string_view kCacheUnwritable = "the product cache cannot be written: is its disk full?";

// Runs a step of re-creation, turning its failures into a RecreationError
// saying `what` failed and the likely cause (the details go to the log).
template <typename F>
decltype(auto) recreation_step(const repo::DatasetRecord& record, const std::string& what, F&& step,
                               std::string_view cause = kInputsUnreadable) {
  try {
    return std::forward<F>(step)();
  } catch (const RecreationError&) {
    throw;
  } catch (const db::Unavailable&) {
    throw;  // an input's lookup met a database that is away: not a fault of the product
  } catch (const image::PsfMatchError& e) {
    throw RecreationError(fmt::format("{}: {}: {}", record.dataset_id, what, e.what()));
  } catch (const std::exception& e) {
    spdlog::error("{}: {}: {}", record.dataset_id, what, e.what());
    throw RecreationError(fmt::format("{}: {} failed ({})", record.dataset_id, what, cause));
  }
}

nlohmann::json recreate_calexp(const repo::DatasetRecord& record, const repo::Recipe& recipe,
                               const RecipeInputs& inputs, const fs::path& path) {
  const image::CalexpParameters parameters = calexp_parameters_of(record, recipe);
  const fs::path raw = inputs.file("raw");
  const fs::path bias = inputs.file("bias");
  const fs::path flat = inputs.file("flat");
  const auto calexp = recreation_step(record, fmt::format("re-creation from its raw {}", recipe.input("raw").dataset_id), [&] {
    return image::make_calexp(raw, image::read_calibration(bias), image::read_calibration(flat), parameters);
  });
  recreation_step(record, "writing it", [&] { image::write_calexp(path, calexp); }, kCacheUnwritable);
  return calexp_measurements_to_json(calexp.measurements());
}

nlohmann::json recreate_diffim(const repo::DatasetRecord& record, const repo::Recipe& recipe,
                               const RecipeInputs& inputs, const fs::path& path, const nlohmann::json& kept) {
  const image::DiffimParameters parameters = diffim_parameters_of(record, recipe);
  // The stored inputs are checked before the calexp, which may have to be
  // made: a changed template makes nothing.
  const std::vector<fs::path> patches = inputs.files("template");
  const fs::path calexp = inputs.file("calexp");
  const auto frame = recreation_step(record, "reading its calexp", [&] { return image::read_exposure_frame(calexp); });
  const auto science = recreation_step(record, "reading its calexp", [&] { return image::read_exposure(calexp); });
  const auto tmpl = recreation_step(record, "warping its template", [&] {
    return image::warp_template(patches, frame.wcs, frame.width, frame.height, {0, 0, frame.width, frame.height});
  });
  const auto kernel = recreation_step(record, "PSF matching", [&] {
    if (kept.is_object() && kept.contains("kernel")) return diffim_kernel_from_json(kept);
    const double arcsec_per_pixel = frame.wcs.pixel_scale_deg() * 3600.0;
    const double science_fwhm = image::card_number(frame.primary, "PSFFWHM").value_or(0.0) / arcsec_per_pixel;
    const double template_fwhm = image::template_psf_fwhm(patches) / arcsec_per_pixel;
    return image::fit_diffim_kernel(science, tmpl, science_fwhm, template_fwhm,
                                    image::model_kernel_scale(frame.primary), parameters);
  });
  const auto difference = recreation_step(record, "subtracting its template", [&] {
    auto d = image::subtract_template(science, tmpl, kernel.kernel);
    image::mask_difference_detections(d, parameters.detection_sigma);
    return d;
  });
  recreation_step(record, "writing it", [&] {
    image::write_exposure(path, difference,
                          image::diffim_headers(frame.primary, kernel, patches.size(), parameters.software_version),
                          &frame.wcs);
  }, kCacheUnwritable);
  return diffim_kernel_to_json(kernel);
}

}  // namespace

nlohmann::json recreate(const repo::DatasetRecord& record, const repo::Recipe& recipe, const RecipeInputs& inputs,
                        const fs::path& path, const nlohmann::json& kept) {
  if (recipe.product == "diffim") return recreate_diffim(record, recipe, inputs, path, kept);
  return recreate_calexp(record, recipe, inputs, path);
}

}  // namespace pixserve::products
