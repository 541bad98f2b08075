#include "products/parts.hpp"

#include <unistd.h>

#include <atomic>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "image/calexp.hpp"
#include "image/difference.hpp"
#include "image/exposure.hpp"
#include "image/template_warp.hpp"
#include "repo/virtual_products.hpp"

namespace pixserve::products {
namespace fs = std::filesystem;

ScratchFile::~ScratchFile() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove(path_, ec);
}

namespace {

// A new scratch path for a product's header frame.
ScratchFile scratch_frame(ProductCache& cache, const repo::DatasetRecord& record) {
  const fs::path dir = cache.dir() / "parts";
  fs::create_directories(dir);
  return ScratchFile(dir / cache.temporary_name(repo::recipe_hash(record.recipe), ".fits"));
}

// Runs a part's pixel computation, turning read failures into RecreationError.
template <typename F>
image::Exposure part_pixels(const std::string& dataset_id, F&& compute) {
  try {
    return std::forward<F>(compute)();
  } catch (const RecreationError&) {
    throw;
  } catch (const std::exception& e) {
    spdlog::error("{}: computing a part: {}", dataset_id, e.what());
    throw RecreationError(fmt::format("{}: computing the requested pixels failed (an input is unreadable)", dataset_id));
  }
}

// The calexp's header frame and box computation from its raw, bias, flat and
// measurements.
struct CalexpSource {
  fs::path raw, bias, flat;
  image::CalexpParameters parameters;
  image::CalexpMeasurements measurements;
};

CalexpSource calexp_source(const repo::DatasetRecord& record, const repo::Recipe& recipe, const RecipeInputs& inputs,
                           const nlohmann::json& kept) {
  CalexpSource s;
  s.parameters = calexp_parameters_of(record, recipe);
  s.measurements = calexp_measurements_from_json(kept);
  s.raw = inputs.file("raw");
  s.bias = inputs.file("bias");
  s.flat = inputs.file("flat");
  return s;
}

ScratchFile write_calexp_frame(ProductCache& cache, const repo::DatasetRecord& record, const CalexpSource& s) {
  ScratchFile frame = scratch_frame(cache, record);
  try {
    const auto header = image::calexp_header(s.raw, s.parameters, s.measurements);
    image::write_exposure_headers(frame.path(), header.headers, &header.wcs);
  } catch (const std::exception& e) {
    spdlog::error("{}: writing its header: {}", record.dataset_id, e.what());
    throw RecreationError(fmt::format(
        "{}: writing its header failed (its raw is unreadable or the product cache cannot be written)",
        record.dataset_id));
  }
  return frame;
}

std::function<image::Exposure(const fits::PixelBox&)> calexp_pixels(const std::string& dataset_id, CalexpSource s) {
  return [dataset_id, s = std::move(s)](const fits::PixelBox& box) {
    return part_pixels(dataset_id, [&] {
      return image::make_calexp_box(s.raw, s.bias, s.flat, s.parameters, s.measurements, box);
    });
  };
}

std::optional<ProductPart> calexp_part(ProductCache& cache, const repo::DatasetRecord& record,
                                       const repo::Recipe& recipe, const RecipeInputs& inputs,
                                       const nlohmann::json& kept) {
  CalexpSource source = calexp_source(record, recipe, inputs, kept);
  std::vector<ScratchFile> scratch;
  scratch.push_back(write_calexp_frame(cache, record, source));
  image::ComputedExposure exposure{scratch.back().path(), calexp_pixels(record.dataset_id, std::move(source))};
  return ProductPart(std::move(scratch), std::move(exposure));
}

std::optional<ProductPart> diffim_part(ProductCache& cache, const repo::DatasetRecord& record,
                                       const repo::Recipe& recipe, const RecipeInputs& inputs,
                                       const InputResolver& resolver, const nlohmann::json& kept) {
  const image::DiffimParameters parameters = diffim_parameters_of(record, recipe);
  image::DiffimKernel kernel = [&] {
    try {
      return diffim_kernel_from_json(kept);
    } catch (const RecreationError& e) {
      throw RecreationError(fmt::format("{}: {}", record.dataset_id, e.what()));
    }
  }();
  std::vector<ScratchFile> scratch;
  // The science side: the calexp's file when it has one now, else a calexp
  // part (which needs the calexp's own measurements).
  std::vector<fs::path> patches = inputs.files("template");
  const repo::DatasetRecord calexp = inputs.record("calexp");
  fs::path calexp_header;
  std::function<image::Exposure(const fits::PixelBox&)> science;
  if (calexp.storage == repo::Storage::file || cache.contains(calexp)) {
    const fs::path file = inputs.file("calexp");
    calexp_header = file;
    science = [file](const fits::PixelBox& box) { return image::read_exposure(file, box); };
  } else {
    const auto calexp_kept = cache.measurements(calexp);
    if (!calexp_kept) return std::nullopt;
    const repo::Recipe calexp_recipe = followable_recipe(calexp);
    const RecipeInputs calexp_inputs(calexp, calexp_recipe, resolver, cache.checksums());
    CalexpSource source = calexp_source(calexp, calexp_recipe, calexp_inputs, *calexp_kept);
    scratch.push_back(write_calexp_frame(cache, calexp, source));
    calexp_header = scratch.back().path();
    science = calexp_pixels(calexp.dataset_id, std::move(source));
  }
  ScratchFile diffim_frame = scratch_frame(cache, record);
  // Read back from a file, as a whole re-creation reads the calexp's.
  const auto frame = [&] {
    try {
      return image::read_exposure_frame(calexp_header);
    } catch (const std::exception& e) {
      spdlog::error("{}: reading its calexp's header: {}", record.dataset_id, e.what());
      throw RecreationError(fmt::format("{}: its calexp's header cannot be read", record.dataset_id));
    }
  }();
  try {
    image::write_exposure_headers(
        diffim_frame.path(),
        image::diffim_headers(frame.primary, kernel, patches.size(), parameters.software_version), &frame.wcs);
  } catch (const std::exception& e) {
    spdlog::error("{}: writing its header: {}", record.dataset_id, e.what());
    throw RecreationError(fmt::format("{}: writing its header failed (the product cache cannot be written)",
                                      record.dataset_id));
  }
  const fs::path header = diffim_frame.path();
  scratch.push_back(std::move(diffim_frame));
  auto pixels = [id = record.dataset_id, science = std::move(science), patches = std::move(patches),
                 kernel = std::move(kernel), detection_sigma = parameters.detection_sigma, wcs = frame.wcs, width = frame.width,
                 height = frame.height](const fits::PixelBox& box) {
    return part_pixels(id, [&] {
      const fits::PixelBox template_box = image::difference_template_box(kernel.kernel, box);
      const image::Exposure s = science(box);
      const image::Exposure t = image::warp_template(patches, wcs, width, height, template_box);
      auto d = image::subtract_template({s, box.x0, box.y0}, {t, template_box.x0, template_box.y0}, kernel.kernel, box);
      image::mask_difference_detections(d, detection_sigma);
      return d;
    });
  };
  return ProductPart(std::move(scratch), image::ComputedExposure{header, std::move(pixels)});
}

}  // namespace

std::optional<ProductPart> product_part(ProductCache& cache, const repo::DatasetRecord& record,
                                        const InputResolver& resolver) {
  if (record.storage != repo::Storage::virtual_ || cache.contains(record)) return std::nullopt;
  const auto kept = cache.measurements(record);
  if (!kept) return std::nullopt;
  const repo::Recipe recipe = followable_recipe(record);
  const RecipeInputs inputs(record, recipe, resolver, cache.checksums());
  if (recipe.product == "diffim") return diffim_part(cache, record, recipe, inputs, resolver, *kept);
  return calexp_part(cache, record, recipe, inputs, *kept);
}

}  // namespace pixserve::products
