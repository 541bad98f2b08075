// bench/sia: SIAv2 query latency for a 0.1-degree cone at 10k, 100k and 1M
// ObsCore rows, through the whole service (DALI parameter parsing, the
// HEALPix footprint index, the exact spherical test, VOTable writing) by
// dispatching requests to the very router `pixserve serve` runs, side by
// side with a full-table scan (every footprint read and tested exactly)
// over the same registry, on the same cones.
//
// Each cone is timed twice: with the body streamed to a writer that only
// counts rows, as the server streams it to the socket (the "SIA" figures,
// split into the handler's part, i.e. parameters and the registry query,
// and the body's, i.e. the rows made and written), and with the body
// collected into one string as the unit tests' helper does (the "collected"
// figure, which also grows and copies megabytes the server never holds).
//
//   build/bench_sia [--rows 10000,100000,1000000] [--queries N] [--dir DIR] [--keep] [--no-scan]
//
// --keep keeps each synthetic registry in DIR and uses it again in later
// runs (making 1M rows takes minutes); --no-scan leaves out the full scans
// (to profile the service alone).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::int64_t> sizes{10'000, 100'000, 1'000'000};
  int queries = 200;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-sia";
  bool keep = false, scan = true;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--keep")) {
      keep = true;
    } else if (!std::strcmp(argv[i], "--no-scan")) {
      scan = false;
    } else if (has_value && !std::strcmp(argv[i], "--rows")) {
      sizes = bench::parse_sizes(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--queries")) {
      queries = std::stoi(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--dir")) {
      dir = argv[++i];
    } else {
      fmt::print(stderr, "usage: bench_sia [--rows N,N,...] [--queries N] [--dir DIR] [--keep] [--no-scan]\n");
      return 2;
    }
  }
  constexpr double radius = 0.1;
  std::vector<std::string> summary;
  for (const auto rows : sizes) {
    const fs::path root = dir / fmt::format("repo-{}", rows);
    const bool reuse = keep && fs::exists(root / "pixserve-repo.json");
    if (!reuse) fs::remove_all(root);
    auto repository = std::make_shared<services::SharedRepository>(
        reuse ? repo::Repository::open(root) : bench::make_synthetic_repository(root, rows));
    services::AppOptions options;
    options.limits.max_maxrec = 1'000'000;
    const auto app = services::make_app(repository, options);

    const bench::SyntheticField field;
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> ra(field.ra_min + 0.5, field.ra_max - 0.5),
        dec(field.dec_min + 0.5, field.dec_max - 0.5);
    std::vector<double> sia_ms, handler_ms, body_ms, collected_ms, scan_ms;
    std::size_t hits = 0;
    // Fewer scans at large sizes: each reads the whole table.
    const int scans = !scan ? 0 : rows >= 1'000'000 ? 3 : rows >= 100'000 ? 10 : 40;
    for (int q = 0; q < queries; ++q) {
      const sky::Circle cone{{ra(rng), dec(rng)}, radius};
      const std::string target = fmt::format("/api/sia/query?POS={}&MAXREC=1000000",
                                             http::percent_encode(fmt::format("CIRCLE {} {} {}", cone.center.ra,
                                                                              cone.center.dec, cone.radius_deg)));
      auto t0 = Clock::now();
      const auto streamed = call_streamed(app.router, target);
      sia_ms.push_back(bench::ms_since(t0));
      handler_ms.push_back(streamed.handler_ms);
      body_ms.push_back(streamed.body_ms);
      t0 = Clock::now();
      const auto reply = testing::call(app.router, "GET", target);
      collected_ms.push_back(bench::ms_since(t0));
      if (reply.status != 200) {
        fmt::print("SIA query failed ({}): {}\n", reply.status, reply.body.substr(0, 300));
        return 1;
      }
      const std::size_t found = count_rows(reply.body);
      if (streamed.status != 200 || streamed.rows != found)
        fmt::print("MISMATCH: streamed {} rows (status {}) vs collected {}\n", streamed.rows, streamed.status, found);
      hits += found;
      if (q < scans) {
        t0 = Clock::now();
        const std::size_t scanned = repository->with([&](repo::Repository& r) {
          std::size_t n = 0;
          for (const auto& rec : r.registry().find({}))
            n += rec.footprint && sky::intersects(*rec.footprint, sky::Shape{cone}) ? 1 : 0;
          return n;
        });
        scan_ms.push_back(bench::ms_since(t0));
        if (scanned != found) fmt::print("MISMATCH: SIA {} rows vs scan {}\n", found, scanned);
      }
    }
    const double p50 = bench::percentile(sia_ms, 0.5), p95 = bench::percentile(sia_ms, 0.95);
    const double collected50 = bench::percentile(collected_ms, 0.5);
    const double scan50 = scan_ms.empty() ? 0.0 : bench::percentile(scan_ms, 0.5);
    summary.push_back(fmt::format("{:>9} rows | SIA p50 {:8.2f} ms  p95 {:8.2f} ms (handler p50 {:7.2f} ms, body "
                                  "p50 {:6.2f} ms; collected p50 {:8.2f} ms) | {:6.1f} rows/query | full scan p50 "
                                  "{:9.1f} ms | scan/SIA {:6.0f}x",
                                  rows, p50, p95, bench::percentile(handler_ms, 0.5),
                                  bench::percentile(body_ms, 0.5), collected50, static_cast<double>(hits) / queries,
                                  scan50, scan50 / p50));
    fmt::print("{}\n", summary.back());
    if (!keep) fs::remove_all(root);
  }
  fmt::print("\nSIAv2 cone r={} deg, {} queries per size (whole service, VOTable TABLEDATA; body streamed to a "
             "counting writer, and collected into a string):\n",
             radius, queries);
  for (const auto& line : summary) fmt::print("{}\n", line);
  return 0;
}
