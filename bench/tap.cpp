// bench/tap: ADQL cone-query latency through the whole TAP service (DALI
// parameters, ADQL parse and translation, the HEALPix cell prefilter on
// the visible-rows view, the exact geometry functions: C++ in SQLite,
// PL/pgSQL in PostgreSQL; VOTable writing) at each registry size and on
// each backend, side by side with the same search through SIAv2 on the same
// cones and the same router, plus the ratio TAP/SIA. Two ADQL forms are
// timed:
//   INTERSECTS(s_region, CIRCLE(...)) = 1           (what SIA's POS=CIRCLE means)
//   CONTAINS(POINT(s_ra, s_dec), CIRCLE(...)) = 1   (the classic cone search)
// each for two searches whose result size does not depend on the registry's
// size (bench/synthetic_registry.hpp): a cone of 0.01 degrees with
// MAXREC=100, and a cone of --radius degrees (0.1) with every row. Each
// unlimited TAP result is checked to hold the same rows as SIA's. The
// summary gives each search's p50 at the largest size over the smallest,
// and PostgreSQL's over SQLite's.
//
//   build/bench/bench_tap [--rows 100000,1000000] [--backend sqlite|postgresql|sqlite,postgresql]
//                         [--queries N] [--radius DEG] [--dir DIR] [--keep]
//                         [--postgresql-url postgresql://user@host:port/db]
//
// e.g. (docs/deployment.md, "Sizing"):
//   build/bench/bench_tap --rows 1000000,10000000 --backend sqlite,postgresql --keep --dir /data/bench
//
// The registries are bench_sia's (the same --dir can serve both): made
// once, kept with --keep; on PostgreSQL copied by `pixserve registry
// migrate` into a private server the bench starts and stops, or into the
// server given by --postgresql-url.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../tests/unit/service_test_support.hpp"
#include "http/params.hpp"
#include "services/app.hpp"
#include "survey_registries.hpp"
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

// The latencies of one search (a radius and a MAXREC) through SIA and the
// two ADQL forms.
struct Search {
  double radius = 0;
  std::optional<int> maxrec;
  std::vector<double> sia_ms{}, region_ms{}, cone_ms{};
  std::size_t sia_rows = 0, region_rows = 0, cone_rows = 0, mismatches = 0;
};

// One registry (size and backend) under test.
struct Setup {
  std::int64_t rows = 0;
  bench::Backend backend{};
  std::shared_ptr<services::SharedRepository> repository;
  services::App app;
  std::mt19937_64 rng;  // the same cones for every backend at one size
  std::uniform_real_distribution<double> ra, dec;
  std::vector<Search> searches;
};

}  // namespace

int main(int argc, char** argv) {
  bench::SurveyBenchOptions options{.sizes = {100'000, 1'000'000},
                                    .queries = 100,
                                    .dir = fs::temp_directory_path() / "pixserve-bench-tap"};
  double radius = 0.1;
  try {
    for (int i = 1; i < argc; ++i) {
      if (options.take(argc, argv, i)) {
        continue;
      } else if (i + 1 < argc && !std::strcmp(argv[i], "--radius")) {
        radius = std::stod(argv[++i]);
      } else {
        throw std::invalid_argument(fmt::format("unknown argument {}", argv[i]));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr,
               "{}\nusage: bench_tap [--rows N,N,...] [--backend sqlite|postgresql|sqlite,postgresql] [--queries N] "
               "[--radius DEG] [--dir DIR] [--keep] [--postgresql-url URL]\n",
               e.what());
    return 2;
  }
  const auto& [sizes, queries, dir, backends, postgresql_url, keep] = options;
  constexpr double small_radius = 0.01;
  constexpr int small_maxrec = 100, warm_up = 3;
  bench::SurveyRegistries registries(dir, keep, postgresql_url);
  std::vector<std::unique_ptr<Setup>> setups;
  for (const auto rows : sizes) {
    for (const auto backend : backends) {
      auto setup = std::make_unique<Setup>();
      setup->rows = rows;
      setup->backend = backend;
      setup->repository = std::make_shared<services::SharedRepository>(registries.open(rows, backend));
      services::AppOptions options;
      options.limits.max_maxrec = 1'000'000;
      options.jobs.dir = dir / fmt::format("jobs-{}-{}", rows, bench::name_of(backend));
      setup->app = services::make_app(setup->repository, options);
      const auto area = bench::survey_cone_field(rows);
      setup->rng.seed(static_cast<std::uint64_t>(rows));
      setup->ra = std::uniform_real_distribution<double>(area.ra_min, area.ra_max);
      setup->dec = std::uniform_real_distribution<double>(area.dec_min, area.dec_max);
      setup->searches = {Search{small_radius, small_maxrec}, Search{radius, std::nullopt}};
      setups.push_back(std::move(setup));
    }
  }

  // Every registry takes its turn at each query, so that a change of the
  // machine's load (shared cores) falls on all of them alike.
  for (std::size_t k = 0; k < 2; ++k) {
    for (int q = -warm_up; q < queries; ++q) {  // warm-up rounds, not timed
      for (auto& s : setups) {
        auto& search = s->searches[k];
        const int maxrec = search.maxrec.value_or(1'000'000);
        const auto tap = [&](const std::string& adql) {
          return testing::call(s->app.router, "POST", "/api/tap/sync",
                               fmt::format("LANG=ADQL&MAXREC={}&QUERY={}", maxrec, http::percent_encode(adql)),
                               "application/x-www-form-urlencoded");
        };
        const double a = s->ra(s->rng), d = s->dec(s->rng);
        const std::string target =
            fmt::format("/api/sia/query?MAXREC={}&POS={}", maxrec,
                        http::percent_encode(fmt::format("CIRCLE {} {} {}", a, d, search.radius)));
        auto t0 = Clock::now();
        const auto sia = testing::call(s->app.router, "GET", target);
        const double t_sia = bench::ms_since(t0);
        t0 = Clock::now();
        const auto region = tap(fmt::format(
            "SELECT * FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE('ICRS', {}, {}, {})) = 1", a, d,
            search.radius));
        const double t_region = bench::ms_since(t0);
        t0 = Clock::now();
        const auto cone = tap(fmt::format(
            "SELECT * FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', {}, {}, {})) = 1",
            a, d, search.radius));
        const double t_cone = bench::ms_since(t0);
        if (sia.status != 200 || region.status != 200 || cone.status != 200) {
          fmt::print("query failed: SIA {} TAP {} {}: {}\n", sia.status, region.status, cone.status,
                     (region.status != 200 ? region.body : cone.body).substr(0, 400));
          return 1;
        }
        const auto sia_ids = first_cells(sia.body, field_index(sia.body, "obs_id"));
        const auto tap_ids = first_cells(region.body, field_index(region.body, "obs_id"));
        // With MAXREC each service may keep other rows of the same search.
        if (search.maxrec ? sia_ids.size() != tap_ids.size() : sia_ids != tap_ids) ++search.mismatches;
        if (q < 0) continue;
        search.sia_ms.push_back(t_sia);
        search.region_ms.push_back(t_region);
        search.cone_ms.push_back(t_cone);
        search.sia_rows += sia_ids.size();
        search.region_rows += tap_ids.size();
        search.cone_rows += first_cells(cone.body, field_index(cone.body, "obs_id")).size();
      }
    }
  }

  fmt::print("\nTAP ADQL cones vs SIAv2 POS=CIRCLE, {} queries per search, size and backend, in turns (whole service, "
             "TABLEDATA); load average at the end {}:\n",
             queries, bench::load_average());
  bench::P50s p50s;
  std::vector<std::string> names;
  for (const auto& s : setups) {
    std::vector<double> row;
    for (const auto& search : s->searches) {
      const std::string name = search.maxrec ? fmt::format("r={} MAXREC={}", search.radius, *search.maxrec)
                                             : fmt::format("r={}", search.radius);
      const double sia50 = bench::percentile(search.sia_ms, 0.5), sia95 = bench::percentile(search.sia_ms, 0.95);
      const double reg50 = bench::percentile(search.region_ms, 0.5), reg95 = bench::percentile(search.region_ms, 0.95);
      const double cone50 = bench::percentile(search.cone_ms, 0.5), cone95 = bench::percentile(search.cone_ms, 0.95);
      fmt::print("{:>9} rows {:<10} {:<16} | SIA p50 {:7.2f} p95 {:7.2f} ms ({:6.1f} rows) | ADQL INTERSECTS p50 "
                 "{:7.2f} p95 {:7.2f} ms ({:6.1f} rows, TAP/SIA p50 {:4.2f}x) | ADQL CONTAINS(POINT) p50 {:7.2f} p95 "
                 "{:7.2f} ms ({:6.1f} rows, TAP/SIA p50 {:4.2f}x) | result mismatches {}\n",
                 s->rows, bench::name_of(s->backend), name, sia50, sia95,
                 static_cast<double>(search.sia_rows) / queries, reg50, reg95,
                 static_cast<double>(search.region_rows) / queries, reg50 / sia50, cone50, cone95,
                 static_cast<double>(search.cone_rows) / queries, cone50 / sia50, search.mismatches);
      row.push_back(reg50);
      if (names.size() < s->searches.size()) names.push_back("TAP INTERSECTS " + name);
    }
    p50s[{s->backend, s->rows}] = row;
  }
  bench::print_ratios(p50s, names);
  return 0;
}
