#include "cli/rights_commands.hpp"

#include <iostream>

#include <fmt/format.h>

#include "repo/coadd_mosaics.hpp"
#include "repo/repository.hpp"
#include "repo/virtual_products.hpp"

namespace pixserve::cli {

void RightsCommands::add_to(CLI::App& app) {
  rights_ = app.add_subcommand(
      "rights", "Change who may read stored datasets; the virtual products made from a raw follow its rights");
  rights_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  rights_->add_option("--id", args_.ids, "Dataset IDs (repeatable or comma-separated)")->delimiter(',');
  rights_->add_option("--visit", args_.visits, "Visits (repeatable or comma-separated)")->delimiter(',');
  rights_->add_option("--type", args_.types, "Only datasets of these types, e.g. raw (repeatable or comma-separated)")
      ->delimiter(',');
  rights_->add_option("--policy", args_.policy, "Read policy")
      ->required()
      ->check(CLI::IsMember({"public", "data-rights", "groups", "owner"}));
  rights_->add_option("--groups", args_.groups, "Groups allowed to read (with --policy groups)")->delimiter(',');
  auto* release = rights_->add_option("--release-mjd", args_.release_mjd,
                                      "Embargoed until this time (MJD); default: each dataset's own release time");
  rights_->add_flag("--released", args_.released, "End the embargo now")->excludes(release);
}

std::optional<int> RightsCommands::run() {
  if (rights_ == nullptr || !rights_->parsed()) return std::nullopt;
  if (args_.ids.empty() && args_.visits.empty()) throw CLI::ValidationError("rights", "give --id or --visit");
  const auto policy = repo::read_policy_from_string(args_.policy);
  if (*policy == repo::ReadPolicy::groups && args_.groups.empty()) {
    throw CLI::ValidationError("--groups", "--policy groups needs at least one group");
  }
  auto repository = repo::Repository::open(args_.repo);
  repo::DatasetQuery query;
  query.dataset_ids = args_.ids;
  query.visits = args_.visits;
  query.dataset_types = args_.types;
  auto records = repository.registry().find(query);
  if (!args_.ids.empty() && records.size() < args_.ids.size()) {
    for (const auto& id : args_.ids) {
      if (std::none_of(records.begin(), records.end(), [&](const auto& r) { return r.dataset_id == id; })) {
        throw CLI::ValidationError("--id", id + " is not a registered dataset");
      }
    }
  }
  std::size_t stored = 0, products = 0;
  for (const auto& record : records) {
    if (record.storage == repo::Storage::virtual_) {
      if (!args_.ids.empty() && args_.visits.empty()) {
        throw CLI::ValidationError("--id", record.dataset_id + (repo::is_coadd_mosaic(record)
                                                                    ? " is a logical coadd: its rights follow its patches'"
                                                                    : " is a virtual product: set the rights of its raw"));
      }
      continue;  // follows its raw
    }
    repo::Rights rights = record.rights;
    rights.policy = *policy;
    rights.groups = *policy == repo::ReadPolicy::groups ? args_.groups : std::vector<std::string>{};
    if (args_.release_mjd) rights.release_mjd = *args_.release_mjd;
    if (args_.released) rights.release_mjd.reset();
    products += repo::set_rights_with_products(repository.registry(), record, rights);
    ++stored;
  }
  std::cout << fmt::format("rights: {} stored datasets and {} virtual products made from them are now {}\n", stored,
                           products, args_.policy);
  return 0;
}

}  // namespace pixserve::cli
