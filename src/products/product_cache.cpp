#include "products/product_cache.hpp"

#include <unistd.h>

#include <algorithm>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "image/calexp.hpp"
#include "image/isr.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"

namespace pixserve::products {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kTemporaryMarker = ".partial-";

// The file of a recipe input, checked to be the one the recipe was written
// for.
fs::path input_file(const repo::DatasetRecord& product, const repo::Recipe& recipe, const std::string& role,
                    const InputResolver& inputs) {
  const repo::RecipeInput* input = nullptr;
  try {
    input = &recipe.input(role);
  } catch (const std::invalid_argument& e) {
    throw RecreationError(fmt::format("{}: {}", product.dataset_id, e.what()));
  }
  const auto record = inputs.find(input->dataset_id);
  if (!record) {
    throw RecreationError(fmt::format("{}: its {} input {} is not registered", product.dataset_id, role,
                                      input->dataset_id));
  }
  fs::path file = inputs.file_of(*record);
  std::string checksum;
  try {
    checksum = repo::sha256_file(file);
  } catch (const std::exception& e) {
    // The details name paths: for the log, not for the client.
    spdlog::error("{}: reading input {}: {}", product.dataset_id, input->dataset_id, e.what());
    throw RecreationError(fmt::format("{}: its {} input {} cannot be read", product.dataset_id, role,
                                      input->dataset_id));
  }
  if (checksum != input->checksum) {
    throw RecreationError(fmt::format("{}: its {} input {} no longer matches the recipe (checksum {}, recipe {})",
                                      product.dataset_id, role, input->dataset_id, checksum, input->checksum));
  }
  return file;
}

}  // namespace

void recreate(const repo::DatasetRecord& record, const repo::Recipe& recipe, const InputResolver& inputs,
              const fs::path& path) {
  if (recipe.product != "calexp") {
    throw RecreationError(fmt::format("{}: recipes of {} products are not supported", record.dataset_id, recipe.product));
  }
  if (recipe.algorithm_version != image::kIsrVersion) {
    throw RecreationError(fmt::format("{}: its recipe needs ISR {}, this build has {}", record.dataset_id,
                                      recipe.algorithm_version, image::kIsrVersion));
  }
  image::CalexpParameters parameters;
  try {
    parameters = repo::calexp_parameters_from_json(recipe.parameters, recipe.software_version);
  } catch (const std::invalid_argument& e) {
    throw RecreationError(fmt::format("{}: {}", record.dataset_id, e.what()));
  }
  const fs::path raw = input_file(record, recipe, "raw", inputs);
  const fs::path bias = input_file(record, recipe, "bias", inputs);
  const fs::path flat = input_file(record, recipe, "flat", inputs);
  try {
    image::write_calexp(path, image::make_calexp(raw, image::read_calibration(bias), image::read_calibration(flat),
                                                 parameters));
  } catch (const std::exception& e) {
    spdlog::error("{}: re-creation failed: {}", record.dataset_id, e.what());
    throw RecreationError(fmt::format("{}: re-creation from its raw {} failed (the inputs are unreadable)",
                                      record.dataset_id, recipe.input("raw").dataset_id));
  }
}

ProductCache::ProductCache(fs::path dir, std::uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {
  // Partial files of a process that died while writing them go; the
  // finished files are counted.
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::error_code size_ec;
    if (it->path().filename().string().find(kTemporaryMarker) != std::string::npos) {
      fs::remove(it->path(), size_ec);
    } else if (it->path().extension() == ".fits") {
      const auto bytes = it->file_size(size_ec);
      if (!size_ec) known_bytes_ += bytes;
    }
  }
}

fs::path ProductCache::entry_path(const std::string& recipe_hash) const {
  return dir_ / recipe_hash.substr(0, 2) / (recipe_hash + ".fits");
}

std::filesystem::path ProductCache::file_for(const repo::DatasetRecord& record, const InputResolver& inputs) {
  if (record.storage != repo::Storage::virtual_ || record.recipe.empty()) {
    throw RecreationError(fmt::format("{} is not a virtual dataset", record.dataset_id));
  }
  const std::string hash = repo::recipe_hash(record.recipe);
  const fs::path entry = entry_path(hash);
  std::unique_lock lock(mutex_);
  for (;;) {
    if (fs::exists(entry)) {
      ++stats_.hits;
      std::error_code ec;  // the file may have been evicted meanwhile: then it is simply not marked
      fs::last_write_time(entry, fs::file_time_type::clock::now(), ec);
      return entry;
    }
    if (!in_progress_.contains(hash)) break;
    finished_.wait(lock);
  }
  // This caller re-creates it; others asking meanwhile wait above.
  in_progress_.insert(hash);
  const std::uint64_t serial = next_temporary_++;
  lock.unlock();
  const fs::path temporary =
      entry.parent_path() / fmt::format("{}{}{}-{}", hash, kTemporaryMarker, ::getpid(), serial);
  auto finish = [&] {
    const std::lock_guard done(mutex_);
    in_progress_.erase(hash);
    finished_.notify_all();
  };
  try {
    fs::create_directories(entry.parent_path());
    repo::Recipe recipe;
    try {
      recipe = repo::Recipe::from_json(record.recipe);
    } catch (const std::invalid_argument& e) {
      throw RecreationError(fmt::format("{}: {}", record.dataset_id, e.what()));
    }
    recreate(record, recipe, inputs, temporary);
    fs::rename(temporary, entry);
  } catch (...) {
    std::error_code ec;
    fs::remove(temporary, ec);
    finish();
    throw;
  }
  bool over_limit = false;
  {
    const std::lock_guard done(mutex_);
    ++stats_.recreated;
    std::error_code ec;
    known_bytes_ += fs::file_size(entry, ec);
    over_limit = known_bytes_ > max_bytes_;
  }
  spdlog::info("re-created {} ({})", record.dataset_id, entry.filename().string());
  finish();
  if (over_limit) prune(max_bytes_);
  return entry;
}

namespace {

struct Entry {
  fs::path path;
  std::uint64_t bytes;
  fs::file_time_type used;
};

std::vector<Entry> entries_of(const fs::path& dir) {
  std::vector<Entry> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const auto& p = it->path();
    if (!it->is_regular_file(ec) || p.extension() != ".fits") continue;
    std::error_code e1, e2;
    const auto bytes = fs::file_size(p, e1);
    const auto used = fs::last_write_time(p, e2);
    if (!e1 && !e2) out.push_back({p, bytes, used});
  }
  return out;
}

}  // namespace

CacheUsage ProductCache::usage() const {
  CacheUsage u;
  for (const auto& e : entries_of(dir_)) {
    ++u.files;
    u.bytes += e.bytes;
  }
  return u;
}

CacheUsage ProductCache::prune(std::uint64_t max_bytes) {
  auto entries = entries_of(dir_);
  std::uint64_t total = 0;
  for (const auto& e : entries) total += e.bytes;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
  CacheUsage removed;
  for (const auto& e : entries) {
    if (total <= max_bytes) break;
    std::error_code ec;
    if (fs::remove(e.path, ec)) {
      total -= e.bytes;
      ++removed.files;
      removed.bytes += e.bytes;
    }
  }
  {
    const std::lock_guard lock(mutex_);
    known_bytes_ = total;
  }
  if (removed.files > 0) spdlog::info("product cache: removed {} files ({} bytes) over its limit", removed.files, removed.bytes);
  return removed;
}

bool ProductCache::contains(const repo::DatasetRecord& record) const {
  std::error_code ec;
  return !record.recipe.empty() && fs::exists(entry_path(repo::recipe_hash(record.recipe)), ec);
}

CacheStats ProductCache::stats() const {
  const std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace pixserve::products
