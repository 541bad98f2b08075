#include "cli/product_commands.hpp"

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli/progress.hpp"
#include "config/config.hpp"
#include "parallel/parallel_for.hpp"
#include "services/repository_access.hpp"

namespace pixserve::cli {
namespace {

products::ProductCacheSettings cache_settings(const std::string& config_file) {
  return config_file.empty() ? products::ProductCacheSettings{} : config::load(config_file).products;
}

}  // namespace

void ProductCommands::add_to(CLI::App& app) {
  materialize_ = app.add_subcommand(
      "materialize", "Re-create the files of virtual datasets into the product cache ahead of requests");
  materialize_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  materialize_->add_option("--visit", args_.visits,
                           "Visits whose virtual products (calexps, difference images) to make (repeatable or "
                           "comma-separated)")
      ->delimiter(',');
  materialize_->add_option("--id", args_.ids, "Dataset IDs to make (repeatable or comma-separated)")->delimiter(',');
  materialize_->add_option("--jobs", args_.jobs, "Products made at once (0: one per core)");
  materialize_->add_option("--config", args_.config, "Configuration file of serve (its products section)")
      ->check(CLI::ExistingFile);

  cache_ = app.add_subcommand("cache", "The product cache: files of virtual datasets re-created on request");
  cache_->require_subcommand(1);
  status_ = cache_->add_subcommand("status", "Files and bytes in the cache, and its limit");
  prune_ = cache_->add_subcommand("prune", "Remove the least recently used files down to a size");
  for (auto* sub : {status_, prune_}) {
    sub->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
    sub->add_option("--config", args_.config, "Configuration file of serve (its products section)")
        ->check(CLI::ExistingFile);
  }
  prune_->add_option("--max-mb", args_.max_mb, "Keep at most this many MiB (default: products.cache_max_mb)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 32));
}

std::optional<int> ProductCommands::run() {
  if (materialize_->parsed()) return run_materialize();
  if (status_->parsed()) return run_status();
  if (prune_->parsed()) return run_prune();
  return std::nullopt;
}

int ProductCommands::run_materialize() {
  if (args_.visits.empty() && args_.ids.empty()) throw CLI::ValidationError("materialize", "give --visit or --id");
  const auto settings = cache_settings(args_.config);
  services::SharedRepository repository(repo::Repository::open(args_.repo), settings);
  repo::DatasetQuery query;
  query.visits = args_.visits;
  query.dataset_ids = args_.ids;
  auto records = repository.with([&](repo::Repository& r) { return r.registry().find(query); });
  std::erase_if(records, [](const repo::DatasetRecord& r) { return r.storage != repo::Storage::virtual_; });
  if (records.empty()) {
    std::cout << "materialize: no virtual datasets match\n";
    return 0;
  }
  const auto started = std::chrono::steady_clock::now();
  const auto before = repository.product_cache_stats();
  ProgressPrinter printer;
  auto progress = printer.callback();
  std::atomic<std::size_t> done{0}, failed{0};
  parallel::parallel_for(records.size(), args_.jobs, [&](std::size_t i) {
    try {
      repository.file_of(records[i]);
    } catch (const std::exception& e) {
      ++failed;
      spdlog::error("{}", e.what());
    }
    progress("materialize", ++done, records.size());
  });
  printer.finish();
  const auto after = repository.product_cache_stats();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << fmt::format("materialize: {} virtual datasets, {} re-created, {} already cached, {} failed in {:.2f} s\n",
                           records.size(), after.recreated - before.recreated, after.hits - before.hits,
                           failed.load(), seconds);
  return failed == 0 ? 0 : 1;
}

int ProductCommands::run_status() {
  const auto settings = cache_settings(args_.config);
  services::SharedRepository repository(repo::Repository::open(args_.repo), settings);
  const auto usage = repository.product_cache_usage();
  std::cout << fmt::format("cache: {} files, {} bytes of {} ({})\n", usage.files, usage.bytes, settings.max_bytes,
                           repository.product_cache_dir().string());
  return 0;
}

int ProductCommands::run_prune() {
  const auto settings = cache_settings(args_.config);
  services::SharedRepository repository(repo::Repository::open(args_.repo), settings);
  const std::uint64_t limit = args_.max_mb >= 0 ? static_cast<std::uint64_t>(args_.max_mb) << 20 : settings.max_bytes;
  const auto removed = repository.prune_product_cache(limit);
  const auto usage = repository.product_cache_usage();
  std::cout << fmt::format("cache: removed {} files ({} bytes); {} files, {} bytes left\n", removed.files,
                           removed.bytes, usage.files, usage.bytes);
  return 0;
}

}  // namespace pixserve::cli
