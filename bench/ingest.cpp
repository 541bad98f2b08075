// bench/ingest: ingest throughput (files/s) on a simulated survey, and cone
// search latency at 100k registered datasets through the HEALPix index,
// side by side with a full scan + exact test over the same registry.
//
//   build/bench_ingest [--visits N] [--rows N] [--queries N] [--dir DIR] [--mapping FILE]
//
// Also: the same processed visit images ingested with the built-in mapping
// (no --mapping: docs/mappings/pixserve-sim.yaml as compiled in) and through
// that file given as --mapping, files/s side by side: parsing the mapping
// at run time must cost nothing per file.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "parallel/parallel_for.hpp"
#include "synthetic_registry.hpp"
#include "repo/repository.hpp"
#include "sim/simulator.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  int visits = 60;
  int rows = 100000;
  int queries = 200;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-ingest";
  fs::path mapping_file = "docs/mappings/pixserve-sim.yaml";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--visits")) visits = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--rows")) rows = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--queries")) queries = std::stoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--mapping")) mapping_file = argv[i + 1];
  }
  fs::remove_all(dir);
  fs::create_directories(dir);

  // 1. Ingest throughput on a headers-only survey (full headers and WCS,
  //    tiny pixel payloads: the cost measured is ingest's, not the disk's).
  sim::SurveyConfig config;
  config.visits = visits;
  config.headers_only = true;
  config.write_coadds = false;
  const auto simulated = sim::simulate(config, dir / "survey");
  auto repo = repo::Repository::open_or_create(dir / "repo", {});
  repo::IngestOptions options;
  options.transfer = repo::Transfer::hardlink;
  const auto report = repo::ingest(repo, {dir / "survey"}, options);
  fmt::print("ingest: {} files in {:.2f} s = {:.0f} files/s ({} threads)\n", report.files_seen, report.seconds,
             static_cast<double>(report.files_seen) / report.seconds, parallel::default_threads());
  (void)simulated;

  // 1b. Mapped files: the simulator's calexps (with pixels) ingested with the
  //     built-in mapping and through the same mapping loaded from its file.
  if (fs::exists(mapping_file)) {
    sim::SurveyConfig small;
    small.visits = std::max(4, visits / 2);
    small.detector_width = small.detector_height = 128;
    small.write_coadds = false;
    small.write_calexp_comp = false;
    sim::simulate(small, dir / "pixels");
    repo::IngestOptions built_in;
    built_in.transfer = repo::Transfer::hardlink;
    auto plain_repo = repo::Repository::open_or_create(dir / "plain", {});
    const auto plain = repo::ingest(plain_repo, {dir / "pixels" / "calexp"}, built_in);
    auto mapped_options = built_in;
    mapped_options.mapping = std::make_shared<const repo::Mapping>(repo::Mapping::load(mapping_file));
    auto mapped_repo = repo::Repository::open_or_create(dir / "mapped", {});
    const auto mapped = repo::ingest(mapped_repo, {dir / "pixels" / "calexp"}, mapped_options);
    const double plain_rate = static_cast<double>(plain.files_seen) / plain.seconds;
    const double mapped_rate = static_cast<double>(mapped.files_seen) / mapped.seconds;
    fmt::print("ingest of {} calexps: built-in convention {:.0f} files/s, through the mapping {:.0f} files/s "
               "(mapped/built-in {:.2f}; target: the same)\n",
               plain.files_seen, plain_rate, mapped_rate, mapped_rate / plain_rate);
  } else {
    fmt::print("mapped ingest: {} not found (run from the source root or give --mapping)\n", mapping_file.string());
  }

  // 2. A registry of `rows` datasets spread over ~36 deg^2 around (53, -28).
  auto big = bench::make_synthetic_repository(dir / "big", rows);
  const bench::SyntheticField field;
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> ra(field.ra_min, field.ra_max), dec(field.dec_min, field.dec_max);
  auto t0 = Clock::now();

  // 3. Cone searches: index vs full scan, same cones, same exact test.
  std::vector<double> indexed, scanned;
  std::size_t hits = 0;
  for (int q = 0; q < queries; ++q) {
    const sky::Circle cone{{ra(rng), dec(rng)}, 0.05};
    repo::DatasetQuery query;
    query.regions.push_back(cone);
    t0 = Clock::now();
    const auto found = big.registry().find(query);
    indexed.push_back(seconds_since(t0) * 1e3);
    hits += found.size();
    if (q < 20) {  // the full scan is slow: fewer samples suffice
      t0 = Clock::now();
      std::size_t n = 0;
      for (const auto& r : big.registry().find({})) n += sky::intersects(*r.footprint, sky::Shape{cone}) ? 1 : 0;
      scanned.push_back(seconds_since(t0) * 1e3);
      if (n != found.size()) fmt::print("MISMATCH: index {} vs scan {}\n", found.size(), n);
    }
  }
  fmt::print("cone r=0.05 deg at {} datasets: indexed p50 {:.2f} ms p95 {:.2f} ms ({:.1f} rows/query); "
             "full scan p50 {:.1f} ms; ratio scan/index {:.0f}x\n",
             rows, bench::percentile(indexed, 0.5), bench::percentile(indexed, 0.95), static_cast<double>(hits) / queries,
             bench::percentile(scanned, 0.5), bench::percentile(scanned, 0.5) / bench::percentile(indexed, 0.5));
  fs::remove_all(dir);
  return 0;
}
