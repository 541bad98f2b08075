// bench/sia: SIAv2 query latency through the whole service (DALI parameter
// parsing, the HEALPix footprint index, the exact spherical test, VOTable
// writing) by dispatching requests to the very router `pixserve serve`
// runs, at each registry size and on each backend, for two searches whose
// result size does not depend on the registry's size (the survey registry
// grows in area at a fixed depth, bench/synthetic_registry.hpp):
//   - a cone of 0.01 degrees with MAXREC=100 (100 rows, of ~1,700 found);
//   - a cone of 0.1 degrees, every row (~5,500);
// side by side with a full-table scan (every footprint read and tested
// exactly) over the same registry, on the same 0.1-degree cones.
//
// Each 0.1-degree cone is timed twice: with the body streamed to a writer
// that only counts rows, as the server streams it to the socket (the "SIA"
// figures, split into the handler's part, i.e. parameters and the registry
// query, and the body's, i.e. the rows made and written), and with the body
// collected into one string as the unit tests' helper does (the "collected"
// figure, which also grows and copies megabytes the server never holds).
// The summary gives each search's p50 at the largest size over the
// smallest, and PostgreSQL's over SQLite's.
//
//   build/bench/bench_sia [--rows 10000,100000,1000000] [--backend sqlite|postgresql|sqlite,postgresql]
//                         [--queries N] [--dir DIR] [--keep] [--no-scan] [--sizes]
//                         [--postgresql-url postgresql://user@host:port/db]
//
// e.g. (docs/deployment.md, "Sizing"):
//   build/bench/bench_sia --rows 1000000,10000000 --backend sqlite,postgresql --keep --dir /data/bench --no-scan
//
// --keep keeps each synthetic registry in DIR and uses it again in later
// runs (making 10M rows takes minutes); --no-scan leaves out the full scans
// (to profile the service alone; never done above 1M rows, where the scan
// would hold every record in memory). PostgreSQL registries are the SQLite
// ones copied by `pixserve registry migrate` (timed) into a private server
// the bench starts and stops, or into databases pixserve_bench_<rows> of
// the server given by --postgresql-url, which --keep keeps. --sizes prints
// the bytes of the tables and indexes per dataset.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
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

std::size_t count_rows(const std::string& votable) {
  std::size_t n = 0;
  for (auto at = votable.find("<TR>"); at != std::string::npos; at = votable.find("<TR>", at + 4)) ++n;
  return n;
}

// Counts the TABLEDATA rows of a body as its chunks arrive (a "<TR>" may
// straddle two chunks), keeping nothing else.
class RowCountingBody final : public http::BodyWriter {
 public:
  bool write(std::string_view bytes) override {
    if (!tail_.empty()) {
      // The few bytes that could start a "<TR>" cut by the chunk boundary.
      tail_.append(bytes.substr(0, 3));
      if (tail_.find("<TR>") != std::string::npos) ++rows_;
      tail_.clear();
    }
    for (auto at = bytes.find("<TR>"); at != std::string_view::npos; at = bytes.find("<TR>", at + 4)) ++rows_;
    tail_.assign(bytes.substr(bytes.size() > 3 ? bytes.size() - 3 : 0));
    return true;
  }
  bool flush() override { return true; }
  std::size_t rows() const { return rows_; }

 private:
  std::size_t rows_ = 0;
  std::string tail_;
};

struct StreamedReply {
  int status = 0;
  std::size_t rows = 0;
  double handler_ms = 0;  // parameters and the registry query
  double body_ms = 0;     // the rows made and written
};

// testing::call with the body streamed to a RowCountingBody, timing the
// handler and the body apart.
StreamedReply call_streamed(const http::Router& router, std::string target) {
  const auto t0 = Clock::now();
  http::RawRequest raw;
  raw.method = "GET";
  raw.target = std::move(target);
  raw.headers.add("Host", "example.org:8080");
  raw.request_id = "bench-request";
  auto request = http::Request::parse(std::move(raw));
  const http::Response res = router.dispatch(request);
  const auto t1 = Clock::now();
  RowCountingBody body;
  if (const auto* stream = std::get_if<http::StreamBody>(&res.body)) stream->producer(body);
  return {res.status, body.rows(), std::chrono::duration<double, std::milli>(t1 - t0).count(), bench::ms_since(t1)};
}

// One registry (size and backend) under test, with its figures.
struct Setup {
  std::int64_t rows = 0;
  bench::Backend backend{};
  std::shared_ptr<services::SharedRepository> repository;
  services::App app;
  // Cones where the survey has its full depth; the same sequence for every
  // backend at one size.
  std::mt19937_64 rng;
  std::uniform_real_distribution<double> ra, dec;
  std::vector<double> small_ms, sia_ms, handler_ms, body_ms, collected_ms, scan_ms;
  std::size_t small_hits = 0, hits = 0;
};

std::string cone_target(double ra, double dec, double radius, std::optional<int> maxrec) {
  return fmt::format("/api/sia/query?POS={}&MAXREC={}",
                     http::percent_encode(fmt::format("CIRCLE {} {} {}", ra, dec, radius)), maxrec.value_or(1'000'000));
}

}  // namespace

int main(int argc, char** argv) {
  bench::SurveyBenchOptions options{.sizes = {10'000, 100'000, 1'000'000},
                                    .queries = 200,
                                    .dir = fs::temp_directory_path() / "pixserve-bench-sia"};
  bool scan = true, print_sizes = false;
  try {
    for (int i = 1; i < argc; ++i) {
      if (options.take(argc, argv, i)) {
        continue;
      } else if (!std::strcmp(argv[i], "--no-scan")) {
        scan = false;
      } else if (!std::strcmp(argv[i], "--sizes")) {
        print_sizes = true;
      } else {
        throw std::invalid_argument(fmt::format("unknown argument {}", argv[i]));
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr,
               "{}\nusage: bench_sia [--rows N,N,...] [--backend sqlite|postgresql|sqlite,postgresql] [--queries N] "
               "[--dir DIR] [--keep] [--no-scan] [--sizes] [--postgresql-url URL]\n",
               e.what());
    return 2;
  }
  const auto& [sizes, queries, dir, backends, postgresql_url, keep] = options;
  constexpr double small_radius = 0.01, radius = 0.1;
  constexpr int small_maxrec = 100, warm_up = 5;
  bench::SurveyRegistries registries(dir, keep, postgresql_url);
  std::vector<std::unique_ptr<Setup>> setups;
  for (const auto rows : sizes) {
    for (const auto backend : backends) {
      auto setup = std::make_unique<Setup>();
      setup->rows = rows;
      setup->backend = backend;
      setup->repository = std::make_shared<services::SharedRepository>(registries.open(rows, backend));
      if (print_sizes) setup->repository->with([&](repo::Repository& r) { bench::print_registry_sizes(r, rows); });
      services::AppOptions options;
      options.limits.max_maxrec = 1'000'000;
      setup->app = services::make_app(setup->repository, options);
      const auto area = bench::survey_cone_field(rows);
      setup->rng.seed(static_cast<std::uint64_t>(rows));
      setup->ra = std::uniform_real_distribution<double>(area.ra_min, area.ra_max);
      setup->dec = std::uniform_real_distribution<double>(area.dec_min, area.dec_max);
      setups.push_back(std::move(setup));
    }
  }

  // Every registry takes its turn at each query, so that a change of the
  // machine's load (shared cores) falls on all of them alike and their
  // ratios hold.
  // 1. The small cone with MAXREC: a fixed 100 rows.
  for (int q = -warm_up; q < queries; ++q) {
    for (auto& s : setups) {
      const double a = s->ra(s->rng), d = s->dec(s->rng);
      const auto t0 = Clock::now();
      const auto reply = call_streamed(s->app.router, cone_target(a, d, small_radius, small_maxrec));
      const double ms = bench::ms_since(t0);
      if (reply.status != 200) {
        fmt::print("SIA query with MAXREC={} failed (status {})\n", small_maxrec, reply.status);
        return 1;
      }
      if (q < 0) continue;
      s->small_ms.push_back(ms);
      s->small_hits += reply.rows;
    }
  }
  // 2. The 0.1-degree cone, every row, streamed and collected, against the
  // full scan (fewer scans at large sizes: each reads the whole table and
  // holds every record; none above 1M rows).
  for (int q = -warm_up; q < queries; ++q) {
    for (auto& s : setups) {
      const sky::Circle cone{{s->ra(s->rng), s->dec(s->rng)}, radius};
      const std::string url = cone_target(cone.center.ra, cone.center.dec, cone.radius_deg, std::nullopt);
      auto t0 = Clock::now();
      const auto streamed = call_streamed(s->app.router, url);
      const double streamed_ms = bench::ms_since(t0);
      t0 = Clock::now();
      const auto reply = testing::call(s->app.router, "GET", url);
      const double reply_ms = bench::ms_since(t0);
      if (reply.status != 200) {
        fmt::print("SIA query failed ({}): {}\n", reply.status, reply.body.substr(0, 300));
        return 1;
      }
      const std::size_t found = count_rows(reply.body);
      if (streamed.status != 200 || streamed.rows != found)
        fmt::print("MISMATCH: streamed {} rows (status {}) vs collected {}\n", streamed.rows, streamed.status, found);
      if (q < 0) continue;
      s->sia_ms.push_back(streamed_ms);
      s->handler_ms.push_back(streamed.handler_ms);
      s->body_ms.push_back(streamed.body_ms);
      s->collected_ms.push_back(reply_ms);
      s->hits += found;
      const int scans = !scan || s->rows > 1'000'000 ? 0 : s->rows == 1'000'000 ? 3 : s->rows >= 100'000 ? 10 : 40;
      if (q < scans) {
        t0 = Clock::now();
        const std::size_t scanned = s->repository->with([&](repo::Repository& r) {
          std::size_t n = 0;
          for (const auto& rec : r.registry().find({}))
            n += rec.footprint && sky::intersects(*rec.footprint, sky::Shape{cone}) ? 1 : 0;
          return n;
        });
        s->scan_ms.push_back(bench::ms_since(t0));
        if (scanned != found) fmt::print("MISMATCH: SIA {} rows vs scan {}\n", found, scanned);
      }
    }
  }

  fmt::print("\nSIAv2, {} queries per search, size and backend, in turns (whole service, VOTable TABLEDATA; body "
             "streamed to a counting writer, and collected into a string); load average at the end {}:\n",
             queries, bench::load_average());
  bench::P50s p50s;
  for (const auto& s : setups) {
    const double small50 = bench::percentile(s->small_ms, 0.5), small95 = bench::percentile(s->small_ms, 0.95);
    const double p50 = bench::percentile(s->sia_ms, 0.5), p95 = bench::percentile(s->sia_ms, 0.95);
    p50s[{s->backend, s->rows}] = {small50, p50};
    std::string scan_text = "full scan -";
    if (!s->scan_ms.empty()) {
      const double scan50 = bench::percentile(s->scan_ms, 0.5);
      scan_text = fmt::format("full scan p50 {:9.1f} ms | scan/SIA {:6.0f}x", scan50, scan50 / p50);
    }
    fmt::print("{:>9} rows {:<10} | r={} MAXREC={}: p50 {:6.2f} ms p95 {:6.2f} ms {:5.1f} rows/query | r={}: p50 "
               "{:7.2f} ms p95 {:7.2f} ms (handler p50 {:7.2f} ms, body p50 {:6.2f} ms; collected p50 {:7.2f} ms) "
               "{:6.1f} rows/query | {}\n",
               s->rows, bench::name_of(s->backend), small_radius, small_maxrec, small50, small95,
               static_cast<double>(s->small_hits) / queries, radius, p50, p95, bench::percentile(s->handler_ms, 0.5),
               bench::percentile(s->body_ms, 0.5), bench::percentile(s->collected_ms, 0.5),
               static_cast<double>(s->hits) / queries, scan_text);
  }
  bench::print_ratios(p50s, {fmt::format("r={} MAXREC={}", small_radius, small_maxrec), fmt::format("r={}", radius)});
  return 0;
}
