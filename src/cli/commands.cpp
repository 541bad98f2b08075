#include "cli/commands.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cli/progress.hpp"
#include "config/config.hpp"
#include "http/server.hpp"
#include "repo/astro_units.hpp"
#include "repo/repository.hpp"
#include "services/app.hpp"
#include "sim/simulator.hpp"

namespace pixserve::cli {
namespace {

// "RA,DEC,RADIUS" in degrees -> a circle, with the checks a user deserves.
sky::Circle parse_cone(const std::string& text) {
  double ra = 0, dec = 0, radius = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lf,%lf,%lf%c", &ra, &dec, &radius, &tail) != 3) {
    throw CLI::ValidationError("--pos", "expected RA,DEC,RADIUS in degrees, e.g. 53.1,-28.1,0.05");
  }
  if (!std::isfinite(ra) || !std::isfinite(dec) || !std::isfinite(radius)) {
    throw CLI::ValidationError("--pos", "values must be finite numbers");
  }
  if (dec < -90 || dec > 90) throw CLI::ValidationError("--pos", "declination must be within [-90, 90]");
  if (radius <= 0 || radius > 180) throw CLI::ValidationError("--pos", "radius must be within (0, 180] degrees");
  return sky::Circle{{sky::normalize_ra(ra), dec}, radius};
}

std::string opt(const std::optional<double>& v, const char* fmtstr = "{:.6f}") {
  return v ? fmt::format(fmt::runtime(fmtstr), *v) : std::string("-");
}

// Records as a table, CSV or JSON (query, and ingest --dry-run).
void print_records(const std::vector<repo::DatasetRecord>& rows, const std::string& format,
                   const repo::Repository& repository) {
  if (format == "json") {
    auto out = nlohmann::json::array();
    for (const auto& r : rows) {
      out.push_back({{"dataset_id", r.dataset_id},
                     {"type", std::string(repo::to_string(r.type))},
                     {"collection", r.collection},
                     {"band", r.data_id.band},
                     {"visit", r.data_id.visit ? nlohmann::json(*r.data_id.visit) : nlohmann::json()},
                     {"detector", r.data_id.detector ? nlohmann::json(*r.data_id.detector) : nlohmann::json()},
                     // A coadd without a tract is a logical coadd (repo/coadd_mosaics.hpp).
                     {"skymap", r.data_id.skymap.empty() ? nlohmann::json() : nlohmann::json(r.data_id.skymap)},
                     {"tract", r.data_id.tract ? nlohmann::json(*r.data_id.tract) : nlohmann::json()},
                     {"patch", r.data_id.patch.empty() ? nlohmann::json() : nlohmann::json(r.data_id.patch)},
                     {"s_ra", r.s_ra ? nlohmann::json(*r.s_ra) : nlohmann::json()},
                     {"s_dec", r.s_dec ? nlohmann::json(*r.s_dec) : nlohmann::json()},
                     {"t_min", r.t_min ? nlohmann::json(*r.t_min) : nlohmann::json()},
                     {"s_region", r.footprint ? nlohmann::json(sky::to_stcs(*r.footprint)) : nlohmann::json()},
                     {"em_min", r.em_min ? nlohmann::json(*r.em_min) : nlohmann::json()},
                     {"em_max", r.em_max ? nlohmann::json(*r.em_max) : nlohmann::json()},
                     {"t_max", r.t_max ? nlohmann::json(*r.t_max) : nlohmann::json()},
                     {"t_exptime", r.t_exptime ? nlohmann::json(*r.t_exptime) : nlohmann::json()},
                     {"target_name", r.target_name},
                     {"policy", std::string(repo::to_string(r.rights.policy))},
                     {"storage", std::string(repo::to_string(r.storage))},
                     // A virtual dataset has no file until it is re-created (into the product cache).
                     {"file", r.storage == repo::Storage::file ? nlohmann::json(repository.file_of(r).string())
                                                               : nlohmann::json()}});
    }
    std::cout << out.dump(1) << '\n';
    return;
  }
  const bool csv = format == "csv";
  const char* row_format = csv ? "{},{},{},{},{},{},{},{},{}\n" : "{:<34} {:<11} {:<6} {:<4} {:>8} {:>4} {:>11} {:>11} {}\n";
  std::cout << fmt::format(fmt::runtime(row_format), "dataset_id", "type", "coll", "band", "visit", "det", "s_ra",
                           "s_dec", "t_min");
  for (const auto& r : rows) {
    std::cout << fmt::format(fmt::runtime(row_format), r.dataset_id, repo::to_string(r.type), r.collection,
                             r.data_id.band.empty() ? "-" : r.data_id.band,
                             r.data_id.visit ? std::to_string(*r.data_id.visit) : "-",
                             r.data_id.detector ? std::to_string(*r.data_id.detector) : "-", opt(r.s_ra),
                             opt(r.s_dec), r.t_min ? repo::iso_from_mjd(*r.t_min) : "-");
  }
  if (!csv) std::cout << fmt::format("{} dataset{}\n", rows.size(), rows.size() == 1 ? "" : "s");
}

// The flags of serve that set a key of the configuration file (over the
// file's value): their help, default and the check of their value are the
// key's own.
constexpr std::pair<std::string_view, std::string_view> kServeKeyFlags[] = {
    {"--host", "server.host"},
    {"--port", "server.port"},
    {"--threads", "server.threads"},
    {"--base-url", "server.base_url"},
    {"--web-root", "service.web_root"},
};

// A name in kServeKeyFlags that is no key is a programming error, and every
// run of pixserve would say so (the flags are made at start).
const settings::Key<config::Config>& declared_key(std::string_view name) {
  const auto* key = config::find_key(name);
  if (key == nullptr) throw std::logic_error("no configuration key " + std::string(name));
  return *key;
}

std::string key_flag_help(std::string_view name) {
  const auto& key = declared_key(name);
  const std::string value = key.show(config::Config{});
  const bool unset = !key.example.empty() && value == settings::show_text("");
  const std::string range = key.kind == settings::Kind::integer ? fmt::format(", 0 to {}", key.max) : "";
  return fmt::format("{} (sets {}{}; {} {})", key.doc, name, range, unset ? "e.g." : "default",
                     unset ? key.example : value);
}

// Refuses what the key would refuse in the file, naming the key.
CLI::Validator key_value(std::string_view name) {
  return CLI::Validator(
      [name = std::string(name)](std::string& text) -> std::string {
        config::Config scratch;
        try {
          config::set(scratch, name, text);
        } catch (const settings::ConfigError& e) {
          return e.what();
        }
        return {};
      },
      "");
}

}  // namespace

void Commands::add_to(CLI::App& app) {
  simulate_ = app.add_subcommand("simulate", "Write the FITS files of a simulated LSST-like survey");
  simulate_->add_option("--out", sim_.out, "Output directory")->required();
  sim::SurveyConfig defaults;
  sim_.visits = defaults.visits;
  sim_.detectors = defaults.detectors;
  sim_.seed = defaults.seed;
  sim_.bands = defaults.bands;
  sim_.detector_size = defaults.detector_width;
  simulate_->add_option("--visits", sim_.visits, "Number of visits")->capture_default_str()->check(CLI::Range(1, 100000));
  simulate_->add_option("--detectors", sim_.detectors, "Detectors per visit (1-9)")->capture_default_str()->check(CLI::Range(1, 9));
  simulate_->add_option("--seed", sim_.seed, "Random seed (the survey is deterministic for a seed)")->capture_default_str();
  simulate_->add_option("--bands", sim_.bands, "Bands observed, cycled over visits (letters of ugrizy)")->capture_default_str();
  simulate_->add_option("--detector-size", sim_.detector_size, "Detector width and height in pixels")
      ->capture_default_str()
      ->check(CLI::Range(64L, 8192L));
  simulate_->add_flag("--headers-only", sim_.headers_only, "Write full headers and WCS with header-only image HDUs, no pixels and no coadds (for ingest benchmarks at scale)");
  simulate_->add_option("--template-visits",
                        "Visits per band, those with the best seeing, that make the goodSeeingCoadd patches "
                        "(difference-imaging templates); 0: none")
      ->type_name("INT")
      ->default_val(defaults.template_visits)
      ->check(CLI::Range(0, 100000));
  simulate_->add_option("--star-density", "Stars of 16-24.5 mag per square degree")
      ->type_name("FLOAT")
      ->default_val(defaults.star_density_per_deg2)
      ->check(CLI::Range(0.0, 1e7));
  simulate_->add_option("--variable-fraction", "Fraction of the stars that vary (sinusoidal light curves)")
      ->type_name("FLOAT")
      ->default_val(defaults.variable_fraction)
      ->check(CLI::Range(0.0, 1.0));
  simulate_->add_option("--field-radius", "Radius (degrees) of the disc the synthetic sky covers")
      ->type_name("FLOAT")
      ->default_val(defaults.field_radius_deg)
      ->check(CLI::Range(0.01, 10.0));
  simulate_->add_option("--field-center", "Centre of the synthetic sky, ra,dec in degrees (e.g. 359.9,-30 across RA 0, "
                                          "or 0,-89.5 by the south pole)")
      ->type_name("RA,DEC")
      ->default_val(fmt::format("{},{}", defaults.field_center.ra, defaults.field_center.dec))
      ->check([](const std::string& text) -> std::string {
        double ra = 0.0, dec = 0.0;
        char comma = 0, extra = 0;
        if (std::sscanf(text.c_str(), "%lf %c %lf %c", &ra, &comma, &dec, &extra) != 3 || comma != ',' ||
            !std::isfinite(ra) || !std::isfinite(dec) || ra < 0.0 || ra >= 360.0 || dec < -90.0 || dec > 90.0) {
          return "expected ra,dec in degrees with 0 <= ra < 360 and -90 <= dec <= 90";
        }
        return {};
      });
  simulate_->add_option("--pixel-scale", "Pixel scale (arcsec) of the detectors and the coadd tracts")
      ->type_name("ARCSEC")
      ->default_val(defaults.pixel_scale_arcsec)
      ->check(CLI::Range(0.05, 10.0));
  simulate_->add_option("--pointing-radius",
                        "Radius (degrees) of a disc of pointings: a grid of positions 0.7 raft widths apart, each "
                        "visited once per band in turn (visits = positions x bands x epochs); 0: every visit on the "
                        "field centre, dithered")
      ->type_name("DEG")
      ->default_val(defaults.pointing_radius_deg)
      ->check(CLI::Range(0.0, 30.0));
  simulate_->add_option("--skymap",
                        "Sky map of the coadds: tract (pixserve-tract, one tract 0 centred on the field) or rings "
                        "(pixserve-rings, tracts tiling the sphere in rings of declination)")
      ->type_name("NAME")
      ->default_val("tract")
      ->check(CLI::IsMember({"tract", "rings", "pixserve-tract", "pixserve-rings"}));
  simulate_->add_option("--tract-size",
                        "Tract size (degrees): the single tract's width (grown to hold every pointing), or the "
                        "largest spacing of the rings' tracts")
      ->type_name("DEG")
      ->default_val(defaults.tract_size_deg)
      ->check(CLI::Range(0.1, 20.0));
  simulate_->add_option("--tract-overlap", "Rings sky map: margin (degrees) by which each tract extends beyond its own cell")
      ->type_name("DEG")
      ->default_val(defaults.tract_overlap_deg)
      ->check(CLI::Range(0.0, 5.0));
  simulate_->add_option("--patch-size", "Patch size in pixels, including the border on each side")
      ->type_name("PX")
      ->default_val(defaults.patch_size)
      ->check(CLI::Range(64L, 20000L));
  simulate_->add_option("--patch-border", "Patch border in pixels (overlap with each neighbour)")
      ->type_name("PX")
      ->default_val(defaults.patch_border)
      ->check(CLI::Range(0L, 2000L));
  simulate_->add_flag("--no-coadds", sim_.no_coadds, "Do not build deepCoadd nor goodSeeingCoadd patches");
  simulate_->add_flag("--no-comp", sim_.no_comp, "Do not write calexp_comp files");
  simulate_->add_flag("--virtual", sim_.virtual_calexps,
                      "Write no calexp (nor calexp_comp) files: ingest registers them as virtual calexps, "
                      "re-created from raw, bias and flat on request");
  simulate_->add_option("--threads", sim_.threads, "Worker threads (0: one per core)");

  ingest_ = app.add_subcommand("ingest", "Register FITS files (files or folders) into a repository, creating it if new");
  ingest_->add_option("--repo", ingest_args_.repo, "Repository directory")->required();
  ingest_->add_option("paths", ingest_args_.paths, "FITS files or folders to ingest")->required();
  ingest_->add_option("--collection", ingest_args_.collection, "Collection (data release), e.g. DR1 or prompt")->capture_default_str();
  ingest_->add_option("--transfer", ingest_args_.transfer, "How files enter the repository")
      ->capture_default_str()
      ->check(CLI::IsMember({"copy", "hardlink", "symlink"}));
  ingest_->add_flag("--skip-bad", ingest_args_.skip_bad, "Report and skip bad files instead of failing the whole run");
  ingest_->add_option("--owner", ingest_args_.owner, "Owner of the datasets (required for user images)");
  ingest_->add_option("--policy", ingest_args_.policy, "Read policy")
      ->capture_default_str()
      ->check(CLI::IsMember({"public", "data-rights", "groups", "owner"}));
  ingest_->add_option("--groups", ingest_args_.groups, "Groups allowed to read (with --policy groups)")->delimiter(',');
  ingest_->add_option("--embargo-hours", ingest_args_.embargo_hours, "Embargo after acquisition (default: the repository's)");
  ingest_->add_option("--threads", ingest_args_.threads, "Worker threads (0: one per core)");
  ingest_->add_option("--mapping", ingest_args_.mapping,
                      "A mapping file (YAML) that says how these files become datasets (docs/ingest-mapping.md)");
  ingest_->add_flag("--dry-run", ingest_args_.dry_run, "Print the datasets that would be registered; register nothing");
  ingest_->add_flag("--no-virtual", ingest_args_.no_virtual,
                    "Register no virtual products (by default each new raw without a calexp gets a virtual one "
                    "when its bias and flat are registered, and a virtual difference image where template patches "
                    "(goodSeeingCoadd) of its band, made without its visit, cover it)");
  ingest_->add_option("--format", ingest_args_.format, "Output of --dry-run")->capture_default_str()->check(
      CLI::IsMember({"table", "csv", "json"}));
  ingest_->add_option("--name", ingest_args_.name, "Repository name in publisher DIDs (new repositories only)");
  ingest_->add_option("--authority", ingest_args_.authority, "IVOA authority of publisher DIDs (new repositories only)");
  ingest_->add_option("--index-order", ingest_args_.index_order, "HEALPix order of the spatial index (new repositories only)")
      ->check(CLI::Range(0, 16));
  ingest_->add_option("--registry", ingest_args_.registry,
                      "Where the registry database of a new repository lives: an SQLite file (default "
                      "registry.sqlite3 in the repository) or a PostgreSQL URL postgresql://user@host:port/dbname "
                      "(new repositories only; docs/deployment.md)");

  query_ = app.add_subcommand("query", "Print the datasets matching a position and filters");
  query_->add_option("--repo", query_args_.repo, "Repository directory")->required();
  query_->add_option("--pos", query_args_.pos, "Cone RA,DEC,RADIUS in degrees");
  query_->add_option("--band", query_args_.bands, "Band (repeatable or comma-separated)")->delimiter(',');
  query_->add_option("--type", query_args_.types, "Dataset type (repeatable or comma-separated)")->delimiter(',');
  query_->add_option("--collection", query_args_.collections, "Collection (repeatable)")->delimiter(',');
  query_->add_option("--visit", query_args_.visits, "Visit (repeatable)")->delimiter(',');
  query_->add_option("--detector", query_args_.detectors, "Detector (repeatable)")->delimiter(',');
  query_->add_option("--format", query_args_.format, "Output format")->capture_default_str()->check(CLI::IsMember({"table", "csv", "json"}));
  query_->add_option("--limit", query_args_.limit, "At most this many rows (0: all)");

  serve_ = app.add_subcommand("serve", "Serve the repository over HTTP: IVOA services under /api, docs at /docs/");
  serve_->add_option("--repo", serve_args_.repo, "Repository directory")->required();
  serve_->add_option("--config", serve_args_.config, "YAML configuration file (see docs/pixserve.example.yaml)")
      ->check(CLI::ExistingFile);
  for (const auto& [flag, key] : kServeKeyFlags) {
    auto* option = serve_->add_option(std::string(flag), serve_args_.keys[std::string(key)], key_flag_help(key))
                       ->check(key_value(key));
    if (declared_key(key).kind == settings::Kind::integer) option->type_name("UINT");
    if (flag == "--web-root") option->check(CLI::ExistingDirectory);
  }

  config_ = app.add_subcommand("config", "Print the keys of the configuration file of serve");
  config_->add_flag("--example", config_example_,
                    "Every key with its default and what it does: docs/pixserve.example.yaml")
      ->required();
}

int Commands::run() {
  if (simulate_->parsed()) return run_simulate();
  if (ingest_->parsed()) return run_ingest();
  if (query_->parsed()) return run_query();
  if (serve_->parsed()) return run_serve();
  if (config_->parsed()) return run_config();
  return 2;
}

int Commands::run_simulate() {
  sim::SurveyConfig config;
  config.seed = sim_.seed;
  config.visits = sim_.visits;
  config.detectors = sim_.detectors;
  config.bands = sim_.bands;
  config.detector_width = sim_.detector_size;
  config.detector_height = sim_.detector_size;
  config.headers_only = sim_.headers_only;
  config.write_coadds = !sim_.no_coadds;
  config.template_visits = simulate_->get_option("--template-visits")->as<int>();
  config.star_density_per_deg2 = simulate_->get_option("--star-density")->as<double>();
  config.variable_fraction = simulate_->get_option("--variable-fraction")->as<double>();
  config.field_radius_deg = simulate_->get_option("--field-radius")->as<double>();
  config.pixel_scale_arcsec = simulate_->get_option("--pixel-scale")->as<double>();
  {
    const auto center = simulate_->get_option("--field-center")->as<std::string>();
    double ra = 0.0, dec = 0.0;
    char comma = 0;
    if (std::sscanf(center.c_str(), "%lf %c %lf", &ra, &comma, &dec) == 3) config.field_center = {ra, dec};
  }
  config.pointing_radius_deg = simulate_->get_option("--pointing-radius")->as<double>();
  const auto skymap = simulate_->get_option("--skymap")->as<std::string>();
  config.skymap = skymap.starts_with("pixserve-") ? skymap : "pixserve-" + skymap;
  config.tract_size_deg = simulate_->get_option("--tract-size")->as<double>();
  config.tract_overlap_deg = simulate_->get_option("--tract-overlap")->as<double>();
  config.patch_size = simulate_->get_option("--patch-size")->as<long>();
  config.patch_border = simulate_->get_option("--patch-border")->as<long>();
  config.write_calexp_comp = !sim_.no_comp && !sim_.virtual_calexps;
  config.write_calexps = !sim_.virtual_calexps;
  config.threads = static_cast<int>(sim_.threads);
  for (const char b : config.bands) {
    if (!repo::band_limits(std::string_view(&b, 1))) {
      throw CLI::ValidationError("--bands", fmt::format("'{}' is not one of u g r i z y", b));
    }
  }
  ProgressPrinter printer;
  const auto summary = sim::simulate(config, sim_.out, printer.callback());
  printer.finish();
  std::cout << fmt::format("simulated survey in {}: {} files ({} deepCoadd, {} goodSeeingCoadd) in {:.1f} s\n",
                           sim_.out, summary.files_written, summary.coadds, summary.templates, summary.seconds);
  return 0;
}

int Commands::run_ingest() {
  repo::RepositoryConfig new_config;
  if (!ingest_args_.name.empty()) {
    new_config.name = ingest_args_.name;
  } else {
    new_config.name = std::filesystem::path(ingest_args_.repo).filename().string();
    if (!repo::is_safe_identifier(new_config.name)) new_config.name = "repo";
  }
  if (!ingest_args_.authority.empty()) new_config.authority = ingest_args_.authority;
  if (ingest_args_.index_order >= 0) new_config.index_order = ingest_args_.index_order;
  if (!ingest_args_.registry.empty()) new_config.registry = ingest_args_.registry;
  auto repository = repo::Repository::open_or_create(ingest_args_.repo, new_config);

  repo::IngestOptions options;
  options.collection = ingest_args_.collection;
  options.transfer = *repo::transfer_from_string(ingest_args_.transfer);
  options.skip_bad = ingest_args_.skip_bad;
  options.owner = ingest_args_.owner;
  options.policy = *repo::read_policy_from_string(ingest_args_.policy);
  options.groups = ingest_args_.groups;
  if (ingest_args_.embargo_hours >= 0) options.embargo_hours = ingest_args_.embargo_hours;
  options.threads = ingest_args_.threads;
  if (options.policy == repo::ReadPolicy::groups && options.groups.empty()) {
    throw CLI::ValidationError("--groups", "--policy groups needs at least one group");
  }
  if (!ingest_args_.mapping.empty()) {
    options.mapping = std::make_shared<const repo::Mapping>(repo::Mapping::load(ingest_args_.mapping));
  }
  options.dry_run = ingest_args_.dry_run;
  options.virtual_calexps = !ingest_args_.no_virtual;
  options.virtual_diffims = !ingest_args_.no_virtual;
  std::vector<std::filesystem::path> paths(ingest_args_.paths.begin(), ingest_args_.paths.end());

  ProgressPrinter printer;
  const auto report = repo::ingest(repository, paths, options, printer.callback());
  printer.finish();
  if (options.dry_run) {
    for (const auto& s : report.skipped) spdlog::warn("would skip {}", s);
    print_records(report.planned, ingest_args_.format, repository);
    // On stderr: stdout holds the records only (JSON or a table).
    if (report.efd_files > 0) {
      spdlog::info("would register {} EFD rows from {} files ({} unchanged)", report.efd_registered, report.efd_files,
                   report.efd_unchanged);
    }
    return 0;
  }
  for (const auto& s : report.skipped) spdlog::warn("skipped {}", s);
  const std::size_t calexps = report.virtual_registered - report.virtual_diffims;
  std::string virtuals;
  if (calexps > 0) virtuals += fmt::format(" and {} virtual calexps", calexps);
  if (report.virtual_diffims > 0) virtuals += fmt::format(" and {} virtual diffims", report.virtual_diffims);
  std::cout << fmt::format("ingest: {} files, {} registered{}, {} unchanged, {} skipped in {:.2f} s ({:.0f} files/s)\n",
                           report.files_seen, report.registered, virtuals, report.unchanged, report.skipped.size(),
                           report.seconds, report.seconds > 0 ? report.files_seen / report.seconds : 0.0);
  if (report.efd_files > 0) {
    std::cout << fmt::format("ingest: {} EFD files, {} EFD rows registered, {} unchanged\n", report.efd_files,
                             report.efd_registered, report.efd_unchanged);
  }
  return 0;
}

int Commands::run_query() {
  auto repository = repo::Repository::open(query_args_.repo);
  repo::DatasetQuery q;
  if (!query_args_.pos.empty()) q.regions.push_back(parse_cone(query_args_.pos));
  q.bands = query_args_.bands;
  q.dataset_types = query_args_.types;
  q.collections = query_args_.collections;
  q.visits.assign(query_args_.visits.begin(), query_args_.visits.end());
  q.detectors.assign(query_args_.detectors.begin(), query_args_.detectors.end());
  if (query_args_.limit > 0) q.limit = query_args_.limit;
  const auto rows = repository.registry().find(q);

  print_records(rows, query_args_.format, repository);
  return 0;
}

int Commands::run_serve() {
  // The file first, then the flags given on the command line.
  config::Config config = serve_args_.config.empty() ? config::Config{} : config::load(serve_args_.config);
  for (const auto& [flag, key] : kServeKeyFlags) {
    if (serve_->count(std::string(flag))) config::set(config, key, serve_args_.keys.at(std::string(key)));
  }
  config::validate(config);

  services::WebOptions web;
  if (!config.service.web_root.empty()) {
    web.web_root = config.service.web_root;
  } else if (auto found = services::find_web_root(std::filesystem::read_symlink("/proc/self/exe"))) {
    web.web_root = *found;
  }
  if (!config.service.swagger_ui_dir.empty()) {
    web.swagger_ui_dir = config.service.swagger_ui_dir;
  } else if (!web.web_root.empty()) {
    if (auto found = services::find_swagger_ui(web.web_root)) web.swagger_ui_dir = *found;
  }
  if (web.web_root.empty()) {
    spdlog::warn("no web/ folder found near the binary: / and /docs/ are not served (use --web-root)");
  } else if (web.swagger_ui_dir.empty()) {
    spdlog::warn("swagger-ui-dist not found beside {}: /docs/ answers 503 (run npm ci, or set service.swagger_ui_dir)",
                 web.web_root.string());
  }

  auto repository = std::make_shared<services::SharedRepository>(repo::Repository::open(serve_args_.repo),
                                                                 config.products, config.registry);
  // Publisher DIDs are part of the registry (the ObsCore view builds them), so
  // the authority is the repository's, fixed when it was created; the
  // configuration can only state what the operator expects it to be.
  if (!config.service.authority.empty() && config.service.authority != repository->config().authority)
    throw settings::ConfigError(fmt::format(
        "service.authority '{}' differs from the repository's authority '{}' (publisher DIDs are fixed when the "
        "repository is created: pixserve ingest --authority)",
        config.service.authority, repository->config().authority));
  auto options = config::app_options(config);
  options.web = web;
  options.version = std::string(kVersion);
  auto app = services::make_app(repository, options);
  spdlog::info("serving repository {} ({} service(s); web root {})", repository->root().string(),
               app.catalog->services().size(), web.web_root.empty() ? "none" : web.web_root.string());
  http::Server server(config.server, std::move(app.router));
  server.run();  // until SIGTERM/SIGINT; in-flight requests finish
  return 0;
}

int Commands::run_config() {
  std::cout << config::example_yaml();
  return 0;
}

}  // namespace pixserve::cli
