#include "products/product_cache.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <fstream>
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

// This host in temporary names: its name with anything but letters and
// digits dropped, so that the name parses back.
std::string host_tag() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) return "host";
  std::string tag;
  for (const char* c = host.data(); *c != '\0'; ++c)
    if (std::isalnum(static_cast<unsigned char>(*c))) tag += *c;
  return tag.empty() ? "host" : tag;
}

// Whether the writer of a temporary file (ProductCache::temporary_name) may
// still be writing it: another pixserve process (a server, `materialize`)
// of this host that still runs, or any process of another host unless the
// file has not changed for a day. A name without a readable pid counts as a
// dead writer's.
bool writer_may_be_running(const fs::path& file, const std::string& this_host) {
  const std::string name = file.filename().string();
  const auto at = name.find(ProductCache::kTemporaryMarker);
  if (at == std::string::npos) return false;
  const char* digits = name.c_str() + at + ProductCache::kTemporaryMarker.size();
  char* end = nullptr;
  const long pid = std::strtol(digits, &end, 10);
  if (end == digits || *end != '-' || pid <= 0) return false;
  const char* serial_end = end + 1;
  while (std::isdigit(static_cast<unsigned char>(*serial_end))) ++serial_end;
  std::string host;
  if (*serial_end == '-') {
    for (const char* c = serial_end + 1; std::isalnum(static_cast<unsigned char>(*c)); ++c) host += *c;
  }
  if (!host.empty() && host != this_host) {
    std::error_code ec;
    const auto written = fs::last_write_time(file, ec);
    return !ec && fs::file_time_type::clock::now() - written < std::chrono::hours(24);
  }
  if (pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

ProductCache::ProductCache(fs::path dir, std::uint64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes), host_tag_(host_tag()) {
  // Partial files of a process that died while writing them go; the
  // finished files are counted.
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return;
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::error_code size_ec;
    const std::string name = it->path().filename().string();
    if (name.find(kTemporaryMarker) != std::string::npos) {
      if (!writer_may_be_running(it->path(), host_tag_)) fs::remove(it->path(), size_ec);
    } else if (it->path().extension() == ".fits") {
      const auto bytes = it->file_size(size_ec);
      if (!size_ec) known_bytes_ += bytes;
    }
  }
}

std::string ProductCache::temporary_name(std::string_view stem, std::string_view extension) {
  std::uint64_t serial = 0;
  {
    const std::lock_guard lock(mutex_);
    serial = next_temporary_++;
  }
  return fmt::format("{}{}{}-{}-{}{}", stem, kTemporaryMarker, ::getpid(), serial, host_tag_, extension);
}

fs::path ProductCache::entry_path(const std::string& recipe_hash) const {
  return dir_ / recipe_hash.substr(0, 2) / (recipe_hash + ".fits");
}

// Measurements live beside the files under names the size accounting and
// eviction ignore (*.json): they are a few hundred bytes per product and cost
// a whole-CCD computation to make again.
fs::path ProductCache::measurements_path(const std::string& recipe_hash) const {
  return dir_ / "measurements" / recipe_hash.substr(0, 2) / (recipe_hash + ".json");
}

std::optional<nlohmann::json> ProductCache::measurements(const repo::DatasetRecord& record) const {
  if (record.recipe.empty()) return std::nullopt;
  std::ifstream in(measurements_path(repo::recipe_hash(record.recipe)));
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;  // unreadable: measured again
  return j;
}

void ProductCache::keep_measurements(const std::string& recipe_hash, const nlohmann::json& measurements) {
  const fs::path path = measurements_path(recipe_hash);
  fs::create_directories(path.parent_path());
  const fs::path temporary = path.parent_path() / temporary_name(recipe_hash);
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << measurements.dump();
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(temporary, ec);
      throw RecreationError(fmt::format("the product cache cannot keep measurements ({})", path.parent_path().string()));
    }
  }
  fs::rename(temporary, path);
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
  lock.unlock();
  const fs::path temporary = entry.parent_path() / temporary_name(hash);
  auto finish = [&] {
    const std::lock_guard done(mutex_);
    in_progress_.erase(hash);
    finished_.notify_all();
  };
  try {
    fs::create_directories(entry.parent_path());
    const repo::Recipe recipe = followable_recipe(record);
    const auto kept = measurements(record);
    const auto measured = recreate(record, recipe, RecipeInputs(record, recipe, inputs, checksums_), temporary,
                                   kept.value_or(nlohmann::json()));
    // Measurements first: a kept file always has its measurements.
    if (!kept || *kept != measured) keep_measurements(hash, measured);
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
