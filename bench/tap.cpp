// bench/tap: ADQL cone-query latency through the whole TAP service (DALI
// parameters, ADQL parse and translation, the HEALPix cell prefilter on
// the visible-rows view, the exact C++ geometry functions in SQLite,
// VOTable writing) at 100k and 1M ObsCore rows, side by side with the same
// search through SIAv2 on the same cones and the same router, plus the
// ratio TAP/SIA. Two ADQL forms are timed:
//   INTERSECTS(s_region, CIRCLE(...)) = 1           (what SIA's POS=CIRCLE means)
//   CONTAINS(POINT(s_ra, s_dec), CIRCLE(...)) = 1   (the classic cone search)
// and each TAP result is checked to hold the same rows as SIA's.
//
//   build/bench/bench_tap [--rows 100000,1000000] [--queries N] [--radius DEG] [--dir DIR]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../tests/unit/service_test_support.hpp"
#include "http/params.hpp"
#include "services/app.hpp"
#include "synthetic_registry.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using Clock = std::chrono::steady_clock;

namespace {

// The first cell of each row (obs_id is the first column of both results
// once SIA's are matched by name; here both queries put obs_id first).
std::set<std::string> first_cells(const std::string& votable, std::size_t column) {
  std::set<std::string> out;
  for (auto at = votable.find("<TR>"); at != std::string::npos; at = votable.find("<TR>", at + 4)) {
    auto td = at;
    for (std::size_t i = 0; i <= column; ++i) td = votable.find("<TD>", td + 1);
    const auto end = votable.find("</TD>", td);
    out.insert(votable.substr(td + 4, end - td - 4));
  }
  return out;
}

std::size_t field_index(const std::string& votable, const std::string& name) {
  std::size_t index = 0;
  for (auto at = votable.find("<FIELD "); at != std::string::npos; at = votable.find("<FIELD ", at + 1), ++index) {
    if (votable.compare(at, 14 + name.size(), "<FIELD name=\"" + name + "\"") == 0) return index;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{100'000, 1'000'000};
  int queries = 100;
  double radius = 0.1;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-tap";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) {
      sizes = bench::parse_sizes(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--queries")) {
      queries = std::stoi(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--radius")) {
      radius = std::stod(argv[i + 1]);
    } else if (!std::strcmp(argv[i], "--dir")) {
      dir = argv[i + 1];
    }
  }
  std::vector<std::string> summary;
  for (const auto rows : sizes) {
    const fs::path root = dir / fmt::format("repo-{}", rows);
    fs::remove_all(root);
    auto repository = std::make_shared<services::SharedRepository>(bench::make_synthetic_repository(root, rows));
    services::AppOptions options;
    options.limits.max_maxrec = 1'000'000;
    options.jobs.dir = root / "jobs";
    const auto app = services::make_app(repository, options);

    const bench::SyntheticField field;
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> ra(field.ra_min + 0.5, field.ra_max - 0.5),
        dec(field.dec_min + 0.5, field.dec_max - 0.5);
    std::vector<double> sia_ms, region_ms, cone_ms;
    std::size_t hits = 0, mismatches = 0;
    const auto tap = [&](const std::string& adql) {
      return testing::call(app.router, "POST", "/api/tap/sync",
                           "LANG=ADQL&MAXREC=1000000&QUERY=" + http::percent_encode(adql),
                           "application/x-www-form-urlencoded");
    };
    for (int q = -3; q < queries; ++q) {  // three warm-up rounds, not timed
      const double a = ra(rng), d = dec(rng);
      const std::string target = fmt::format(
          "/api/sia/query?MAXREC=1000000&POS={}", http::percent_encode(fmt::format("CIRCLE {} {} {}", a, d, radius)));
      auto t0 = Clock::now();
      const auto sia = testing::call(app.router, "GET", target);
      const double t_sia = bench::ms_since(t0);
      t0 = Clock::now();
      const auto region = tap(fmt::format(
          "SELECT * FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE('ICRS', {}, {}, {})) = 1", a, d, radius));
      const double t_region = bench::ms_since(t0);
      t0 = Clock::now();
      const auto cone = tap(fmt::format(
          "SELECT * FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {}, {}, {})) = 1", a, d,
          radius));
      const double t_cone = bench::ms_since(t0);
      if (sia.status != 200 || region.status != 200 || cone.status != 200) {
        fmt::print("query failed: SIA {} TAP {} {}: {}\n", sia.status, region.status, cone.status,
                   (region.status != 200 ? region.body : cone.body).substr(0, 400));
        return 1;
      }
      const auto sia_ids = first_cells(sia.body, field_index(sia.body, "obs_id"));
      const auto tap_ids = first_cells(region.body, field_index(region.body, "obs_id"));
      if (sia_ids != tap_ids) ++mismatches;
      if (q < 0) continue;
      sia_ms.push_back(t_sia);
      region_ms.push_back(t_region);
      cone_ms.push_back(t_cone);
      hits += tap_ids.size();
    }
    const double sia50 = bench::percentile(sia_ms, 0.5), sia95 = bench::percentile(sia_ms, 0.95);
    const double reg50 = bench::percentile(region_ms, 0.5), reg95 = bench::percentile(region_ms, 0.95);
    const double cone50 = bench::percentile(cone_ms, 0.5), cone95 = bench::percentile(cone_ms, 0.95);
    summary.push_back(fmt::format(
        "{:>9} rows | {:5.1f} rows/query | SIA p50 {:7.2f} p95 {:7.2f} ms | ADQL INTERSECTS p50 {:7.2f} p95 {:7.2f} ms "
        "(TAP/SIA p50 {:4.2f}x) | ADQL CONTAINS(POINT) p50 {:7.2f} p95 {:7.2f} ms (TAP/SIA p50 {:4.2f}x) | "
        "result mismatches {}",
        rows, static_cast<double>(hits) / queries, sia50, sia95, reg50, reg95, reg50 / sia50, cone50, cone95,
        cone50 / sia50, mismatches));
    fmt::print("{}\n", summary.back());
    fs::remove_all(root);
  }
  fmt::print("\nTAP ADQL cone r={} deg vs SIAv2 POS=CIRCLE, {} queries per size (whole service, TABLEDATA):\n", radius,
             queries);
  for (const auto& line : summary) fmt::print("{}\n", line);
  return 0;
}
