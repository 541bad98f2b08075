#include "cli/hips_commands.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "auth/policy.hpp"
#include "cli/progress.hpp"
#include "repo/coverage.hpp"
#include "hips/generate.hpp"
#include "hips/image_io.hpp"
#include "repo/astro_units.hpp"
#include "repo/repository.hpp"

namespace pixserve::cli {

void HipsCommands::add_to(CLI::App& app) {
  hips_ = app.add_subcommand("hips", "Build or update a HiPS map of the coadds (one band, or a colour composite of three)");
  hips_->add_option("--repo", hips_args_.repo, "Repository directory")->required();
  hips_->add_option("--band", hips_args_.band, "Band of a single-band map (FITS + PNG tiles)");
  hips_->add_option("--color", hips_args_.color, "Three bands of a colour map, e.g. g,r,i (reddest shown red); "
                                                  "their band maps are built or updated first beside --out")
      ->delimiter(',')
      ->expected(3);
  hips_->add_option("--out", hips_args_.out,
                    "The map's folder, with one --audience (default REPO/hips/<type>-<band(s)> for the public "
                    "map, REPO/hips/full/<type>-<band(s)> for the data-rights map)");
  hips_->add_option("--audience", hips_args_.audience,
                    "Whose maps to build: public (public coadds whose embargo has ended), data-rights (what "
                    "data-rights holders may read; never group-restricted coadds) or both")
      ->capture_default_str()
      ->check(CLI::IsMember({"public", "data-rights", "both"}));
  hips_->add_option("--order", hips_args_.order, "Deepest tile order (default: the one matching the coadd pixel scale)")
      ->check(CLI::Range(3, 20));
  hips_->add_option("--formats", hips_args_.formats,
                    "Tile formats: fits,png,jpeg (band maps always have fits; default fits,png; colour png,jpeg)")
      ->delimiter(',')
      ->check(CLI::IsMember({"fits", "png", "jpeg"}));
  hips_->add_option("--type", hips_args_.type, "Coadd dataset type")->capture_default_str()->check(
      CLI::IsMember({"deepCoadd", "goodSeeingCoadd"}));
  hips_->add_option("--collection", hips_args_.collections, "Collection(s) of the coadds (default all)")->delimiter(',');
  hips_->add_option("--threads", hips_args_.threads, "Worker threads (0: one per core)");
  hips_->add_flag("--force", hips_args_.force, "Rebuild every tile and recompute the cut levels");

  moc_ = app.add_subcommand("moc", "Write the MOC 2.0 coverage of a selection of datasets (FITS, ASCII or JSON)");
  moc_->add_option("--repo", moc_args_.repo, "Repository directory")->required();
  moc_->add_option("--type", moc_args_.types, "Dataset type(s) (default: all with a footprint; calexp with --stmoc)")
      ->delimiter(',');
  moc_->add_option("--band", moc_args_.bands, "Band(s)")->delimiter(',');
  moc_->add_option("--collection", moc_args_.collections, "Collection(s)")->delimiter(',');
  moc_->add_option("--order", moc_args_.order, "HEALPix order of the cells (MOCORD_S)")->capture_default_str()->check(
      CLI::Range(0, 29));
  moc_->add_option("--format", moc_args_.format, "fits, ascii or json")->capture_default_str()->check(
      CLI::IsMember({"fits", "ascii", "json"}));
  moc_->add_flag("--stmoc", moc_args_.stmoc, "A space-time MOC (each dataset's time interval with its footprint)");
  moc_->add_option("--time-order", moc_args_.time_order, "Time order of an ST-MOC (MOCORD_T)")
      ->capture_default_str()
      ->check(CLI::Range(0, 61));
  moc_->add_option("--out", moc_args_.out, "Output file ('-' or absent: standard output)");
  moc_->add_option("--threads", moc_args_.threads, "Worker threads (0: one per core)");
  moc_->add_option("--audience", moc_args_.audience,
                   "Whose coverage: public, data-rights, or all (every dataset, whatever its rights: for the "
                   "operator, not for publishing)")
      ->capture_default_str()
      ->check(CLI::IsMember({"public", "data-rights", "all"}));
}

std::optional<int> HipsCommands::run() {
  if (hips_ != nullptr && hips_->parsed()) return run_hips();
  if (moc_ != nullptr && moc_->parsed()) return run_moc();
  return std::nullopt;
}

int HipsCommands::run_hips() {
  const auto& a = hips_args_;
  if (a.band.empty() == a.color.empty()) throw CLI::ValidationError("--band/--color", "give either --band or --color");
  for (const auto& b : a.color.empty() ? std::vector<std::string>{a.band} : a.color) {
    if (!repo::band_limits(b)) throw CLI::ValidationError("--band", fmt::format("'{}' is not one of u g r i z y", b));
  }
  std::vector<auth::Audience> audiences;
  if (a.audience != "data-rights") audiences.push_back(auth::Audience::public_);
  if (a.audience != "public") audiences.push_back(auth::Audience::data_rights);
  if (!a.out.empty() && audiences.size() != 1) {
    throw CLI::ValidationError("--out", "--out names one map: give --audience public or --audience data-rights too");
  }
  auto repository = repo::Repository::open(a.repo);
  const auto has = [&](const char* f) { return std::find(a.formats.begin(), a.formats.end(), f) != a.formats.end(); };
  ProgressPrinter printer;
  auto print = [](const std::string& what, auth::Audience audience, const hips::HipsReport& r) {
    const auto who = auth::to_string(audience);
    for (const auto& line : r.left_out) std::cout << fmt::format("hips {} ({}): left out {}\n", what, who, line);
    if (r.removed) {
      std::cout << fmt::format("hips {} ({}): the {} audience may read none of the coadds: no map\n", what, who, who);
      return;
    }
    std::cout << fmt::format("hips {} ({}): order {} from {} inputs: {} tiles written, {} unchanged, {} in the map, "
                             "{:.2f} s ({:.0f} tiles/s)\n",
                             what, who, r.max_order, r.inputs, r.tiles_written, r.tiles_skipped, r.tiles_total,
                             r.seconds, r.seconds > 0 ? static_cast<double>(r.tiles_written) / r.seconds : 0.0);
  };
  // Public maps under REPO/hips, data-rights maps under REPO/hips/full:
  // where the server's /api/hips/<map> and /api/hips/full/<map> look.
  const auto out_of = [&](auth::Audience audience, const std::string& name) {
    if (!a.out.empty()) return std::filesystem::path(a.out);
    const auto root = repository.root() / "hips";
    return audience == auth::Audience::public_ ? root / name : root / "full" / name;
  };
  auto band_options = [&](const std::string& band, const std::filesystem::path& out, auth::Audience audience) {
    hips::BandMapOptions o;
    o.band = band;
    o.dataset_type = a.type;
    o.collections = a.collections;
    o.out = out;
    o.audience = audience;
    o.max_order = a.order;
    o.png = a.formats.empty() || has("png");
    o.jpeg = has("jpeg");
    o.threads = a.threads;
    o.force = a.force;
    o.version = std::string(kVersion);
    return o;
  };
  if (!a.band.empty()) {
    for (const auto audience : audiences) {
      const auto out = out_of(audience, a.type + "-" + a.band);
      const auto report = hips::build_band_map(repository, band_options(a.band, out, audience), printer.callback());
      printer.finish();
      print(out.string(), audience, report);
    }
    return 0;
  }
  // Colour: reddest band in red.
  auto bands = a.color;
  std::sort(bands.begin(), bands.end(),
            [](const std::string& x, const std::string& y) { return repo::band_limits(x)->em_min > repo::band_limits(y)->em_min; });
  std::string letters;
  for (auto it = bands.rbegin(); it != bands.rend(); ++it) letters += *it;
  for (const auto audience : audiences) {
    const auto out = out_of(audience, a.type + "-" + letters);
    hips::ColorMapOptions color;
    color.out = out;
    bool complete = true;
    for (std::size_t i = 0; i < 3; ++i) {
      const auto dir = out.parent_path() / (a.type + "-" + bands[i]);
      // A band map that already exists keeps its formats; a new one gets FITS + PNG.
      const auto report = hips::build_band_map(repository, band_options(bands[i], dir, audience), printer.callback());
      printer.finish();
      print(dir.string(), audience, report);
      complete = complete && !report.removed;
      color.bands[i] = dir;
    }
    if (!complete) {
      // A colour tile shows what each band shows: without one band map
      // there is no colour map for this audience (and an old one goes).
      hips::remove_map(out);
      std::cout << fmt::format("hips {} ({}): a band map is missing for this audience: no colour map\n", out.string(),
                               auth::to_string(audience));
      continue;
    }
    color.png = a.formats.empty() || has("png");
    color.jpeg = a.formats.empty() || has("jpeg");
    color.threads = a.threads;
    color.force = a.force;
    color.version = std::string(kVersion);
    const auto report = hips::build_color_map(color, printer.callback());
    printer.finish();
    print(out.string(), audience, report);
  }
  return 0;
}

int HipsCommands::run_moc() {
  const auto& a = moc_args_;
  auto repository = repo::Repository::open(a.repo);
  repo::DatasetQuery q;
  q.dataset_types = a.types;
  if (a.stmoc && q.dataset_types.empty()) q.dataset_types = {"calexp"};
  q.bands = a.bands;
  q.collections = a.collections;
  q.patches_only = true;
  const auto audience = auth::audience_from_string(a.audience);  // nullopt: all
  const auto records = audience ? auth::find_readable(repository.registry(), q, auth::audience_identity(*audience),
                                                      repo::mjd_now())
                                : repository.registry().find(q);
  std::string bytes;
  std::size_t cells = 0;
  const std::string id = fmt::format("ivo://{}/{}/moc", repository.config().authority, repository.config().name);
  if (a.stmoc) {
    if (a.order > 20) throw CLI::ValidationError("--order", "an ST-MOC's space order is at most 20 here");
    const auto st = repo::coverage_stmoc(records, a.time_order, a.order, a.threads);
    cells = st.entries().size();
    bytes = a.format == "fits" ? st.to_fits({.moc_id = id, .date = repo::iso_from_mjd(repo::mjd_now())})
            : a.format == "json" ? st.to_json()
                                 : st.to_ascii() + "\n";
  } else {
    const auto moc = repo::coverage_moc(records, a.order, a.threads);
    cells = moc.cells().size();
    bytes = a.format == "fits" ? sky::to_fits(moc, {.moc_id = id, .date = repo::iso_from_mjd(repo::mjd_now())})
            : a.format == "json" ? moc.to_json() + "\n"
                                 : moc.to_ascii() + "\n";
  }
  if (a.out.empty() || a.out == "-") {
    std::cout << bytes;
  } else {
    hips::write_file_atomic(a.out, bytes);
    std::cerr << fmt::format("moc: {} datasets, {} {} in {}\n", records.size(), cells,
                             a.stmoc ? "time ranges" : "cells", a.out);
  }
  return 0;
}

}  // namespace pixserve::cli
