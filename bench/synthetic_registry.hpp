// Registries of many synthetic datasets for the benchmarks: detector-sized
// square footprints (13.6' like an LSST CCD) scattered uniformly over
// ~36 deg^2 around (53, -28), as calexps of visits of 189 detectors. The
// footprint index and the ObsCore view are the real ones; no files exist.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

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
