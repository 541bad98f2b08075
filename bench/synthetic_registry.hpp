// Registries of many synthetic datasets for the benchmarks; no files exist,
// the footprint index and the ObsCore view are the real ones.
//
// make_synthetic_repository: detector-sized square footprints (13.6' like an
// LSST CCD) scattered uniformly over ~36 deg^2 around (53, -28), as calexps
// of visits of 189 detectors (bench_ingest, bench_rows).
//
// make_survey_repository: survey-like rows made fast (bench_sia, bench_tap):
// visits of an LSST-like camera (21 rafts of 3x3 detectors, rotated
// footprints deprojected from the focal plane) in time order, every ObsCore
// and survey column filled as ingest fills it, plus the deepCoadd patches of
// six bands over the field. The field grows with the rows at a fixed depth
// (each point seen by ~1,600 calexps: the depth of a deep survey; LSST's
// ten-year wide survey reaches about half of it): a cone returns as many rows at 10M rows as at 1M,
// so its cost can be compared across sizes. 1M rows cover the field of
// make_synthetic_repository (a 0.1-degree cone finds ~5,500 of them).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "db/copy.hpp"
#include "db/database.hpp"
#include "repo/repository.hpp"
#include "sky/geometry.hpp"

namespace pixserve::bench {

// The sky area the datasets are spread over (and where cones should fall).
struct SyntheticField {
  double ra_min = 50.0, ra_max = 56.0;
  double dec_min = -31.0, dec_max = -25.0;
};

// A square of half-size half_deg (in declination) centred on (ra, dec).
inline sky::Polygon square(double ra, double dec, double half_deg) {
  const double c = std::cos(dec * M_PI / 180.0);
  return sky::Polygon({{sky::normalize_ra(ra - half_deg / c), dec - half_deg},
                       {sky::normalize_ra(ra + half_deg / c), dec - half_deg},
                       {sky::normalize_ra(ra + half_deg / c), dec + half_deg},
                       {sky::normalize_ra(ra - half_deg / c), dec + half_deg}});
}

// The i-th synthetic calexp (visit i / 189, detector i % 189, band r),
// centred on (ra, dec): what every synthetic registry's rows start from.
inline repo::DatasetRecord synthetic_calexp(std::int64_t i, double ra, double dec) {
  repo::DatasetRecord r;
  r.type = repo::DatasetType::calexp;
  r.collection = "DR1";
  r.data_id.instrument = "LSSTSim";
  r.data_id.visit = i / 189;
  r.data_id.detector = i % 189;
  r.data_id.band = "r";
  r.dataset_id = repo::make_dataset_id("DR1", r.type, r.data_id);
  r.footprint = square(ra, dec, 0.113);
  r.s_ra = ra;
  r.s_dec = dec;
  r.s_fov = 0.32;
  r.t_min = 60000.0 + static_cast<double>(i / 189) * 0.001;
  r.t_max = *r.t_min + 30.0 / 86400.0;
  r.em_min = 552e-9;
  r.em_max = 691e-9;
  r.file_path = "data/none";
  r.file_size = 0;
  r.checksum = "0";
  return r;
}

// Creates the repository at root (which must not exist) holding `rows`
// calexp datasets, public and released, in one transaction; prints progress
// every 10% and the time taken.
inline repo::Repository make_synthetic_repository(const std::filesystem::path& root, std::int64_t rows,
                                                  const SyntheticField& field = {}, std::uint64_t seed = 1) {
  auto repository = repo::Repository::open_or_create(root, {});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> ra(field.ra_min, field.ra_max), dec(field.dec_min, field.dec_max);
  const auto t0 = std::chrono::steady_clock::now();
  db::Transaction tx(repository.registry().connection());
  for (std::int64_t i = 0; i < rows; ++i) {
    const double a = ra(rng), d = dec(rng);
    repository.registry().insert(synthetic_calexp(i, a, d));
    if (rows >= 10 && (i + 1) % (rows / 10) == 0) fmt::print(stderr, "  {} / {} datasets\n", i + 1, rows);
  }
  tx.commit();
  fmt::print("registry: {} datasets inserted in {:.1f} s ({} index cells)\n", rows,
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
             repository.registry().stats().index_cells);
  return repository;
}

// ---------------------------------------------------------------------------
// Survey-like registries.

// The focal plane: a 5 x 5 grid of rafts without its corners (21 rafts), each
// 3 x 3 detectors of 4072 x 4000 pixels of 0.2" (13.6' square), with the
// gaps between detectors and rafts. Offsets in degrees from the boresight.
struct DetectorPlace {
  double x = 0, y = 0;
  std::string raft, sensor;  // R01..R43, S00..S22
};

inline constexpr int kDetectors = 189;
inline constexpr double kDetectorDeg = 0.2262, kDetectorPitchDeg = 0.2290, kRaftPitchDeg = 0.70;
// The farthest detector corner from the boresight (margin of full depth).
inline constexpr double kFocalPlaneRadiusDeg = 2.05;

inline const std::vector<DetectorPlace>& focal_plane() {
  static const std::vector<DetectorPlace> places = [] {
    std::vector<DetectorPlace> out;
    for (int ry = 0; ry < 5; ++ry) {
      for (int rx = 0; rx < 5; ++rx) {
        if ((rx == 0 || rx == 4) && (ry == 0 || ry == 4)) continue;  // no corner rafts
        for (int s = 0; s < 9; ++s) {
          const int sx = s % 3, sy = s / 3;
          out.push_back({(rx - 2) * kRaftPitchDeg + (sx - 1) * kDetectorPitchDeg,
                         (ry - 2) * kRaftPitchDeg + (sy - 1) * kDetectorPitchDeg, fmt::format("R{}{}", ry, rx),
                         fmt::format("S{}{}", sy, sx)});
        }
      }
    }
    return out;
  }();
  return places;
}

// A telescope pointing: boresight and rotation of the focal plane on the sky.
struct Pointing {
  double ra = 0, dec = 0, rotation_deg = 0;

  // The sky position of focal-plane offsets (x, y) in degrees (x towards
  // east at zero rotation): rotated, then the inverse gnomonic projection.
  sky::SkyPoint sky_of(double x, double y) const {
    const double c = std::cos(rotation_deg * sky::kDeg), s = std::sin(rotation_deg * sky::kDeg);
    const double xi = (c * x - s * y) * sky::kDeg, eta = (s * x + c * y) * sky::kDeg;
    const double d0 = dec * sky::kDeg;
    const double denominator = std::cos(d0) - eta * std::sin(d0);
    return {sky::normalize_ra(ra + std::atan2(xi, denominator) / sky::kDeg),
            std::atan2(std::sin(d0) + eta * std::cos(d0), std::hypot(xi, denominator)) / sky::kDeg};
  }
};

// Where a survey registry of `rows` lies: the pointings fill this field (RA
// uniform, Dec uniform in sin(Dec): an even density on the sphere), whose
// area grows with the rows; at 1M rows it is SyntheticField's. Below ~700k
// rows the field stays 5 degrees across, a little more than the camera's,
// and the depth falls with the rows.
inline SyntheticField survey_field(std::int64_t rows) {
  const double scale = std::sqrt(static_cast<double>(std::max<std::int64_t>(rows, 700'000)) / 1e6);
  const double half_dec = std::min(3.0 * scale, 55.0);
  const double unit_area = 6.0 * sky::kDeg * (std::sin(-25.0 * sky::kDeg) - std::sin(-31.0 * sky::kDeg));  // sr
  const double dec_min = -28.0 - half_dec, dec_max = -28.0 + half_dec;
  const double band = std::sin(dec_max * sky::kDeg) - std::sin(dec_min * sky::kDeg);
  const double ra_span = std::min(unit_area * scale * scale / band / sky::kDeg, 360.0);
  return {53.0 - ra_span / 2, 53.0 + ra_span / 2, dec_min, dec_max};
}

// Where cones see the full depth: the field less the focal plane's reach.
inline SyntheticField survey_cone_field(std::int64_t rows) {
  const auto f = survey_field(rows);
  const double widest = std::max(std::abs(f.dec_min), std::abs(f.dec_max)) + kFocalPlaneRadiusDeg;
  const double ra_margin = kFocalPlaneRadiusDeg / std::cos(std::min(widest, 85.0) * sky::kDeg);
  return {f.ra_min + ra_margin, f.ra_max - ra_margin, f.dec_min + kFocalPlaneRadiusDeg,
          f.dec_max - kFocalPlaneRadiusDeg};
}

struct BandPass {
  std::string_view name;
  double em_min, em_max;  // m
};
inline constexpr std::array<BandPass, 6> kBands{{{"u", 330e-9, 400e-9},
                                                 {"g", 402e-9, 552e-9},
                                                 {"r", 552e-9, 691e-9},
                                                 {"i", 691e-9, 818e-9},
                                                 {"z", 818e-9, 922e-9},
                                                 {"y", 948e-9, 1060e-9}}};

// What every survey row has as ingest would register it: layout path,
// checksum-sized hash, size, software version, public and released.
inline void fill_file_columns(repo::DatasetRecord& r, std::string_view group, std::uint64_t hash) {
  r.file_path = fmt::format("data/{}/{}/{}/{}.fits", r.collection, repo::to_string(r.type), group, r.dataset_id);
  r.file_size = 100'000'000 + static_cast<std::int64_t>(hash % 20'000'000);
  r.checksum = fmt::format("{:016x}{:016x}{:016x}{:016x}", hash, hash * 3, hash * 5, hash * 7);
  r.software_version = "pixserve-sim 1.0";
}

// Detector `detector` of visit `visit` at `pointing`: the synthetic calexp
// with its true (rotated) footprint and the columns of a processed visit.
inline repo::DatasetRecord survey_calexp(std::int64_t visit, int detector, const Pointing& pointing, double seeing,
                                         double airmass, double sky_level, std::uint64_t hash) {
  const auto& place = focal_plane()[static_cast<std::size_t>(detector)];
  const auto centre = pointing.sky_of(place.x, place.y);
  repo::DatasetRecord r = synthetic_calexp(visit * kDetectors + detector, centre.ra, centre.dec);
  const double h = kDetectorDeg / 2;
  r.footprint = sky::Polygon({pointing.sky_of(place.x - h, place.y - h), pointing.sky_of(place.x + h, place.y - h),
                              pointing.sky_of(place.x + h, place.y + h), pointing.sky_of(place.x - h, place.y + h)});
  const auto& band = kBands[static_cast<std::size_t>(visit / 20) % kBands.size()];  // filter changes every 20 visits
  r.data_id.exposure = visit;
  r.data_id.raft = place.raft;
  r.data_id.detector_name = place.sensor;
  r.data_id.band = std::string(band.name);
  r.data_id.physical_filter = fmt::format("{}_sim_1.4", band.name);
  r.em_min = band.em_min;
  r.em_max = band.em_max;
  r.em_res_power = (band.em_min + band.em_max) / 2 / (band.em_max - band.em_min);
  r.pixel_scale_arcsec = 0.2;
  r.s_resolution = seeing;
  r.width = 4072;
  r.height = 4000;
  r.t_exptime = 30.0;
  r.facility_name = "Simulated Survey Telescope";
  r.instrument_name = "SimCam";
  r.seeing = seeing;
  r.psf_fwhm = seeing * 1.05;
  r.airmass = airmass;
  r.sky_background = sky_level;
  r.zero_point = 31.4 - 0.1 * airmass;
  r.telescope_ra = pointing.ra;
  r.telescope_dec = pointing.dec;
  fill_file_columns(r, fmt::format("v{}", visit), hash);
  return r;
}

// The deepCoadd patches (13.3' squares, 8 x 8 per tract) of six bands
// tiling the field: rows of patches in Dec, RA steps widening with Dec.
inline std::vector<repo::DatasetRecord> survey_coadds(const SyntheticField& field, double t_min, double t_max) {
  constexpr double patch_deg = 0.222;
  std::vector<repo::DatasetRecord> out;
  const int rows = static_cast<int>(std::ceil((field.dec_max - field.dec_min) / patch_deg));
  for (int row = 0; row < rows; ++row) {
    const double dec = field.dec_min + (row + 0.5) * patch_deg;
    const double step = patch_deg / std::cos(dec * sky::kDeg);
    const int columns = static_cast<int>(std::ceil((field.ra_max - field.ra_min) / step));
    for (int column = 0; column < columns; ++column) {
      const double ra = field.ra_min + (column + 0.5) * step;
      for (const auto& band : kBands) {
        repo::DatasetRecord r;
        r.type = repo::DatasetType::deepCoadd;
        r.collection = "DR1";
        r.data_id.skymap = "sim_rings";
        r.data_id.tract = (row / 8) * 1000 + column / 8;
        r.data_id.patch = fmt::format("{},{}", column % 8, row % 8);
        r.data_id.band = std::string(band.name);
        r.dataset_id = repo::make_dataset_id(r.collection, r.type, r.data_id);
        r.footprint = square(ra, dec, patch_deg / 2);
        r.s_ra = ra;
        r.s_dec = dec;
        r.s_fov = patch_deg * std::sqrt(2.0);
        r.t_min = t_min;
        r.t_max = t_max;
        r.em_min = band.em_min;
        r.em_max = band.em_max;
        r.pixel_scale_arcsec = 0.2;
        r.width = 4000;
        r.height = 4000;
        r.facility_name = "Simulated Survey Telescope";
        r.instrument_name = "SimCam";
        fill_file_columns(r, fmt::format("{}/t{}", band.name, *r.data_id.tract),
                          std::hash<std::string>{}(r.dataset_id));
        out.push_back(std::move(r));
      }
    }
  }
  return out;
}

// The file beside a finished survey repository that tells its row count (a
// run stopped half-way leaves none, and the repository is made again).
inline std::filesystem::path survey_marker(const std::filesystem::path& root) { return root / "synthetic-rows"; }

inline bool is_complete_survey_repository(const std::filesystem::path& root, std::int64_t rows) {
  std::ifstream in(survey_marker(root));
  std::int64_t n = -1;
  return in >> n && n == rows;
}

// The `rows` datasets of a survey registry (calexps of the visits in time
// order, then the coadds), each handed to take(const repo::DatasetRecord&)
// in the order of registration; the same rows for the same seed.
template <typename Take>
void for_each_survey_record(std::int64_t rows, std::uint64_t seed, Take take) {
  const auto field = survey_field(rows);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double sin_min = std::sin(field.dec_min * sky::kDeg), sin_max = std::sin(field.dec_max * sky::kDeg);
  const auto first_mjd = [](std::int64_t visit) {  // 800 visits a night, 40 s apart
    return 60000.0 + static_cast<double>(visit / 800) + static_cast<double>(visit % 800) * 40.0 / 86400.0;
  };
  auto coadds = survey_coadds(field, first_mjd(0), first_mjd(rows / kDetectors));
  if (static_cast<std::int64_t>(coadds.size()) > rows / 10) coadds.resize(static_cast<std::size_t>(rows / 10));
  const std::int64_t calexps = rows - static_cast<std::int64_t>(coadds.size());
  Pointing pointing;
  double seeing = 0, airmass = 0, sky_level = 0;
  for (std::int64_t i = 0; i < calexps; ++i) {
    const std::int64_t visit = i / kDetectors;
    const int detector = static_cast<int>(i % kDetectors);
    if (detector == 0) {
      pointing = {field.ra_min + (field.ra_max - field.ra_min) * unit(rng),
                  std::asin(sin_min + (sin_max - sin_min) * unit(rng)) / sky::kDeg, 360.0 * unit(rng)};
      seeing = 0.5 + 0.8 * unit(rng);
      airmass = 1.0 + 0.8 * unit(rng);
      sky_level = 500.0 + 1500.0 * unit(rng);
    }
    auto r = survey_calexp(visit, detector, pointing, seeing, airmass, sky_level, rng());
    r.t_min = first_mjd(visit);
    r.t_max = *r.t_min + 30.0 / 86400.0;
    take(r);
  }
  for (const auto& r : coadds) take(r);
}

// The registry tables a survey's rows fill (the others stay empty).
inline const std::vector<std::string>& survey_registry_tables() {
  static const std::vector<std::string> tables{"dataset", "footprint_cell", "center_cell", "provenance",
                                               "dataset_part"};
  return tables;
}

// Loads a survey's rows into an empty PostgreSQL registry, calling
// inserted() after each. A round trip per row (Registry::insert) would take
// hours at 10^7 rows, so batches of rows are registered by the product's
// own Registry::insert in an in-memory SQLite registry and its tables are
// copied as `registry migrate` copies them (db::copy_table), one batch being
// copied while the next is made; the keys run on from batch to batch, and
// the indexes and foreign keys are built once, at the end, in the one
// transaction of the whole load.
template <typename Inserted>
void load_survey_into_postgresql(repo::Registry& target, std::int64_t rows, std::uint64_t seed, Inserted inserted) {
  constexpr std::int64_t kBatch = 100'000;
  auto& to = target.connection();
  db::Transaction tx(to);
  std::vector<std::unique_ptr<db::DeferredIndexes>> deferred;
  for (const auto& table : survey_registry_tables()) deferred.push_back(std::make_unique<db::DeferredIndexes>(to, table));
  const auto new_batch = [&] {
    auto batch = std::make_unique<repo::Registry>(db::open_sqlite(":memory:", true), target.index_order());
    batch->connection().exec("PRAGMA foreign_keys = OFF");  // its first row is given its key below
    batch->connection().exec("BEGIN");
    return batch;
  };
  auto batch = new_batch();
  std::int64_t first_key = 1, in_batch = 0;
  std::future<void> copying;  // declared after tx: waited for before tx rolls back on an exception
  const auto ship = [&] {
    batch->connection().exec("COMMIT");
    if (copying.valid()) copying.get();
    copying = std::async(std::launch::async, [&to, from = std::move(batch)] {
      for (const auto& table : survey_registry_tables()) db::copy_table(from->connection(), to, table);
    });
    batch = new_batch();
    first_key += in_batch;
    in_batch = 0;
  };
  for_each_survey_record(rows, seed, [&](const repo::DatasetRecord& r) {
    batch->insert(r);
    if (in_batch == 0 && first_key != 1) {
      // SQLite gives each new row the largest key so far plus one: with the
      // batch's first row renumbered, the rest follow it.
      for (const auto& table : survey_registry_tables()) {
        if (table == "provenance") continue;  // keyed by dataset ID
        batch->connection().exec(fmt::format("UPDATE {} SET dataset_key = {} WHERE dataset_key = 1", table, first_key));
      }
    }
    inserted();
    if (++in_batch == kBatch) ship();
  });
  if (in_batch > 0) ship();
  copying.get();
  for (auto& d : deferred) d->restore();
  to.exec("SELECT setval(pg_get_serial_sequence('dataset', 'dataset_key'), "
          "coalesce((SELECT max(dataset_key) FROM dataset), 0) + 1, false)");
  tx.commit();
  to.exec("VACUUM (ANALYZE)");  // statistics and visibility map, as `registry migrate` leaves them
}

// Creates the survey repository at root (which must not exist) with exactly
// `rows` datasets (for_each_survey_record), its registry where `config`
// says (SQLite by default; an empty PostgreSQL database:
// load_survey_into_postgresql). SQLite commits every 100,000 rows, so that
// its write-ahead log stays small. Prints progress every 10% and the rate.
inline repo::Repository make_survey_repository(const std::filesystem::path& root, std::int64_t rows,
                                               const repo::RepositoryConfig& config = {}, std::uint64_t seed = 1) {
  auto repository = repo::Repository::open_or_create(root, config);
  auto& registry = repository.registry();
  const auto t0 = std::chrono::steady_clock::now();
  std::int64_t done = 0;
  const auto report = [&] {
    if (rows >= 10 && ++done % (rows / 10) == 0) {
      fmt::print(stderr, "  {} / {} datasets ({:.0f} rows/s)\n", done, rows,
                 static_cast<double>(done) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  };
  if (registry.connection().dialect() == db::Dialect::postgresql) {
    load_survey_into_postgresql(registry, rows, seed, report);
  } else {
    // A bulk load: the B-trees of 10^7 rows stay in 512 MB of pages instead
    // of being read back from the file at each insert.
    registry.connection().exec("PRAGMA cache_size = -524288");
    std::optional<db::Transaction> tx;
    tx.emplace(registry.connection());
    std::int64_t in_transaction = 0;
    for_each_survey_record(rows, seed, [&](const repo::DatasetRecord& r) {
      registry.insert(r);
      report();
      if (++in_transaction == 100'000) {
        tx->commit();
        tx.emplace(registry.connection());
        in_transaction = 0;
      }
    });
    tx->commit();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::ofstream(survey_marker(root)) << rows << '\n';
  fmt::print("registry: {} datasets ({}) inserted in {:.1f} s ({:.0f} rows/s)\n", rows,
             registry.connection().dialect() == db::Dialect::postgresql ? "PostgreSQL" : "SQLite", seconds,
             static_cast<double>(rows) / seconds);
  return repository;
}

// Milliseconds since t.
inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// "10000,100000" -> {10000, 100000} (a --rows argument).
inline std::vector<std::int64_t> parse_sizes(const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) sizes.push_back(std::stoll(item));
  return sizes;
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

}  // namespace pixserve::bench
