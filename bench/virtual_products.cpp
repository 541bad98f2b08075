// bench/virtual_products: virtual calexps and difference images served by
// re-creation, in one run, each figure printed beside its target and beside
// a reference measured in the same run (stored files of the same size, or the
// same request made alone). Nothing here asserts a time.
//
// Setup (reused when DIR already holds it): a survey simulated with
// --visits visits of band r, 9 detectors of 512 x 512 (the demo's CCD), two
// template visits and stored calexps; raw/, calib/ and goodSeeingCoadd/
// ingested into DR1 (virtual calexps and virtual difference images get
// registered), and the calexps of the first two visits into STORED (stored
// calexps of the same size, for reference). Then an in-process
// `pixserve serve` on loopback.
//
// Figures, over HTTP (SODA /api/soda/sync, /api/files/<id>):
//   1. cold 51x51 three-plane stamp of a virtual calexp (not cached, its
//      measurements kept: the stamp is computed from a part), one client;
//   2. the same for a virtual difference image;
//   3. cold whole re-creation (nothing cached, no measurements) of a calexp
//      and of a difference image (its calexp cold too), against a GET of a
//      stored calexp; a cache hit of a virtual calexp against the stored GET;
//   4. stamp against whole re-creation of a calexp; 4b. the same at the
//      survey's CCD size (--large-ccd, 4096 by default; in process, on a
//      survey of its own);
//   5. all epochs of one object: 10 concurrent clients, each the cold
//      difference-image stamps of every epoch of its own object;
//   6. 20 concurrent users, each a different cold whole calexp;
//   7. 10 concurrent whole-visit requests (9 cold calexps each, in turn).
// They run in the order 3, 6, 7 (the product cache removed before each: the
// "never made" state), then 1, 2, 4, 5 (products made whole once by another
// opening of the repository, as `pixserve materialize` does, then their
// files pruned: the "cold, measurements kept" state). Each figure takes
// products of visits no other figure uses.
//
//   build/bench/bench_virtual_products [--dir DIR] [--visits N] [--stamps N] [--whole N]
//       [--users N] [--whole-visits N] [--objects N] [--min-epochs N] [--large-ccd PX]
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bench_http.hpp"
#include "http/server.hpp"
#include "parallel/parallel_for.hpp"
#include "repo/repository.hpp"
#include "services/app.hpp"
#include "services/links.hpp"
#include "services/repository_access.hpp"
#include "image/cutout.hpp"
#include "sim/simulator.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using namespace pixserve::bench;

namespace {

constexpr double kScaleArcsec = 0.2;
constexpr double kScale = kScaleArcsec / 3600.0;  // deg per pixel
constexpr double kStampRadius = 25.4 * kScale;    // a 51 x 51 stamp
constexpr long kCcd = 512;                        // the demo's detectors
constexpr int kTemplateVisits = 2;
constexpr int kStoredVisits = 2;

struct Options {
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-virtual";
  int visits = 112;     // enough for >= 100 difference-image epochs of several stars (figure 5)
  long large_ccd = 4096;  // figure 4b: the survey's CCD size (0: skip)
  int stamps = 50;        // figures 1 and 2: distinct products
  int whole = 10;         // figure 3: cold whole re-creations of each kind
  int users = 20;         // figure 6
  int whole_visits = 10;  // figure 7
  int objects = 10;       // figure 5
  int min_epochs = 100;   // figure 5
};

std::string met(bool ok) { return ok ? "met" : "NOT met"; }

std::string ok_text(const std::vector<HttpResult>& r) { return all_ok(r) ? "all 200" : "ERRORS"; }

std::string file_path(const std::string& id) { return services::links::files() + "/" + id; }

// The records of one type and collection, grouped by visit (visits in order).
std::map<std::int64_t, std::vector<repo::DatasetRecord>> by_visit(services::SharedRepository& repository,
                                                                  const std::string& type,
                                                                  const std::string& collection) {
  repo::DatasetQuery q;
  q.dataset_types = {type};
  q.collections = {collection};
  std::map<std::int64_t, std::vector<repo::DatasetRecord>> out;
  for (auto& r : repository.find_visible(q)) {
    if (r.data_id.visit) out[*r.data_id.visit].push_back(std::move(r));
  }
  for (auto& [visit, records] : out) {
    std::sort(records.begin(), records.end(),
              [](const repo::DatasetRecord& a, const repo::DatasetRecord& b) { return a.dataset_id < b.dataset_id; });
  }
  return out;
}

// Visits handed out in turn, each to one figure only, so that no figure
// meets a product (or an input checksum) that another has already made.
class VisitPool {
 public:
  explicit VisitPool(std::vector<std::int64_t> visits) : visits_(std::move(visits)) {}
  std::vector<std::int64_t> take(std::size_t n) {
    std::vector<std::int64_t> out;
    while (out.size() < n && next_ < visits_.size()) out.push_back(visits_[next_++]);
    return out;
  }

 private:
  std::vector<std::int64_t> visits_;
  std::size_t next_ = 0;
};

// n records of the given visits, in visit order.
std::vector<repo::DatasetRecord> records_of(const std::map<std::int64_t, std::vector<repo::DatasetRecord>>& groups,
                                            const std::vector<std::int64_t>& visits, std::size_t n) {
  std::vector<repo::DatasetRecord> out;
  for (const auto v : visits) {
    const auto it = groups.find(v);
    if (it == groups.end()) continue;
    for (const auto& r : it->second) {
      if (out.size() < n) out.push_back(r);
    }
  }
  return out;
}

// Whole re-creation of each record in-process (the CLI's `materialize`),
// with one thread per core; returns seconds.
double materialize(services::SharedRepository& repository, const std::vector<repo::DatasetRecord>& records,
                   unsigned threads) {
  const auto t = Clock::now();
  std::atomic<int> failed{0};
  parallel::parallel_for(records.size(), threads, [&](std::size_t i) {
    try {
      repository.file_of(records[i]);
    } catch (const std::exception& e) {
      ++failed;
      fmt::print("  materialize {}: {}\n", records[i].dataset_id, e.what());
    }
  });
  return ms_since(t) / 1000.0;
}

// The product cache as if no product was ever made: no files, no measurements.
void forget_products(services::SharedRepository& repository) {
  std::error_code ec;
  fs::remove_all(repository.product_cache_dir(), ec);
}

// A stamp centre inside a record's CCD: its centre moved by up to 150 px.
sky::SkyPoint stamp_centre(const repo::DatasetRecord& r, std::mt19937& rng) {
  std::uniform_real_distribution<double> off(-150.0, 150.0);
  const double dec = *r.s_dec + off(rng) * kScale;
  const double ra = *r.s_ra + off(rng) * kScale / std::cos(*r.s_dec * M_PI / 180.0);
  return {ra, dec};
}

// One client, one SODA stamp per record, in turn.
std::vector<HttpResult> stamps_of(std::uint16_t port, const std::vector<repo::DatasetRecord>& records,
                                  std::mt19937& rng) {
  const std::string path = services::links::endpoint(services::links::kSoda, "sync");
  std::vector<HttpResult> out;
  for (const auto& r : records) {
    const auto c = stamp_centre(r, rng);
    out.push_back(http_post(port, path, circle_form({r.dataset_id}, c.ra, c.dec, kStampRadius)));
  }
  return out;
}

void stats_row(const std::string& what, const std::vector<double>& ms, const std::string& note = "") {
  if (ms.empty()) {
    fmt::print("  {:<50} (not measured)\n", what);
    return;
  }
  fmt::print("  {:<50} n={:<3} p50 {:9.1f} ms  p95 {:9.1f} ms  max {:9.1f} ms{}\n", what, ms.size(),
             percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 1.0), note.empty() ? "" : "  " + note);
}

struct Star {
  double ra, dec, distance;
};

std::vector<Star> stars_near(const fs::path& truth, sky::SkyPoint centre) {
  std::vector<Star> out;
  std::ifstream in(truth);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream s(line);
    std::string id, type, ra, dec;
    std::getline(s, id, ',');
    std::getline(s, type, ',');
    std::getline(s, ra, ',');
    std::getline(s, dec, ',');
    if (type != "star") continue;
    const double r = std::stod(ra), d = std::stod(dec);
    const double dx = (r - centre.ra) * std::cos(centre.dec * M_PI / 180.0), dy = d - centre.dec;
    out.push_back({r, d, std::hypot(dx, dy)});
  }
  std::sort(out.begin(), out.end(), [](const Star& a, const Star& b) { return a.distance < b.distance; });
  return out;
}

// ------------------------------------------------------------------ setup

void setup(const Options& o) {
  const fs::path survey = o.dir / "survey", repo_dir = o.dir / "repo", marker = o.dir / "setup-done";
  const std::string want = fmt::format("visits={} detectors=9 size={} band=r templates={}\n", o.visits, kCcd,
                                       kTemplateVisits);
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    const std::string have((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (have == want) {
      fmt::print("setup: reusing {} ({})\n", o.dir.string(), want.substr(0, want.size() - 1));
      return;
    }
  }
  // Made by an earlier run with other settings, or left half-made.
  fs::remove(marker);
  fs::remove_all(survey);
  fs::remove_all(repo_dir);
  fs::create_directories(o.dir);

  sim::SurveyConfig config;
  config.visits = o.visits;
  config.bands = "r";
  config.detectors = 9;
  config.detector_width = kCcd;
  config.detector_height = kCcd;
  config.template_visits = kTemplateVisits;
  config.write_calexps = true;  // stored calexps exist: the STORED reference
  config.write_calexp_comp = false;
  auto t = Clock::now();
  const auto summary = sim::simulate(config, survey);
  fmt::print("setup: simulated {} visits x 9 detectors of {}x{} (band r, {} template visits): {} files, {:.0f} MB "
             "in {:.1f} s\n",
             o.visits, kCcd, kCcd, kTemplateVisits, summary.files_written,
             static_cast<double>(summary.bytes_written) / 1e6, ms_since(t) / 1000.0);

  auto repo = repo::Repository::open_or_create(repo_dir, {.name = "bench", .authority = "bench.example"});
  repo::IngestOptions dr1;
  dr1.collection = "DR1";
  dr1.transfer = repo::Transfer::hardlink;
  t = Clock::now();
  const auto r1 = repo::ingest(repo, {survey / "raw", survey / "calib", survey / "goodSeeingCoadd"}, dr1);
  fmt::print("setup: ingested raw/ calib/ goodSeeingCoadd/ into DR1: {} files, {} virtual datasets ({} calexps, {} "
             "difference images) in {:.1f} s\n",
             r1.registered, r1.virtual_registered, r1.virtual_registered - r1.virtual_diffims, r1.virtual_diffims,
             ms_since(t) / 1000.0);

  repo::IngestOptions stored;
  stored.collection = "STORED";
  stored.transfer = repo::Transfer::hardlink;
  stored.virtual_calexps = false;
  stored.virtual_diffims = false;
  std::vector<fs::path> calexp_dirs;
  for (int v = 0; v < kStoredVisits; ++v) {
    calexp_dirs.push_back(survey / "calexp" / fmt::format("v{}", config.first_visit + v));
  }
  t = Clock::now();
  const auto r2 = repo::ingest(repo, calexp_dirs, stored);
  fmt::print("setup: ingested the stored calexps of the first {} visits into STORED: {} files in {:.1f} s\n",
             kStoredVisits, r2.registered, ms_since(t) / 1000.0);
  std::ofstream(marker) << want;
}

// Figure 4b: the same comparison at the survey's CCD size, in process (no
// HTTP): a survey of one large detector, its calexps virtual; whole
// re-creations of never-made calexps, then cold 51x51 stamps computed from
// parts once their measurements are kept.
void large_ccd_stamps(const Options& o) {
  const long ccd = o.large_ccd;
  fmt::print("\n[4b] Stamp vs whole re-creation of a calexp at {}x{} pixels (in process, one thread)\n", ccd, ccd);
  const fs::path dir = o.dir / fmt::format("large-{}", ccd);
  const fs::path survey = dir / "survey", repo_dir = dir / "repo";
  if (!fs::exists(repo_dir / "pixserve-repo.json")) {
    fs::remove_all(dir);
    sim::SurveyConfig config;
    config.visits = 3;
    config.bands = "r";
    config.detectors = 1;
    config.detector_width = config.detector_height = ccd;
    config.write_coadds = false;
    config.write_calexps = false;
    config.write_calexp_comp = false;
    const auto t = Clock::now();
    sim::simulate(config, survey);
    auto repo = repo::Repository::open_or_create(repo_dir, {.name = "large", .authority = "large.example"});
    repo::IngestOptions ingest;
    ingest.transfer = repo::Transfer::hardlink;
    repo::ingest(repo, {survey / "raw", survey / "calib"}, ingest);
    fmt::print("  setup: simulated and ingested 3 visits of one {}x{} detector in {:.1f} s\n", ccd, ccd,
               ms_since(t) / 1000.0);
  }
  services::SharedRepository repository(repo::Repository::open(repo_dir));
  fs::remove_all(repository.product_cache_dir());
  repo::DatasetQuery q;
  q.dataset_types = {"calexp"};
  const auto calexps = repository.find_visible(q);
  std::vector<double> whole, stamps;
  for (const auto& c : calexps) {
    const auto t = Clock::now();
    repository.file_of(c);
    whole.push_back(ms_since(t));
  }
  repository.prune_product_cache(0);
  const fs::path out = dir / "stamp.fits";
  std::mt19937 rng(5);
  std::uniform_int_distribution<long> at(1, ccd - 51);
  for (int k = 0; k < 30; ++k) {
    const auto& c = calexps[static_cast<std::size_t>(k) % calexps.size()];
    const long x = at(rng), y = at(rng);
    const auto t = Clock::now();
    const auto part = repository.part_of(c);
    if (!part) {
      fmt::print("  {} has no kept measurements: not measured\n", c.dataset_id);
      return;
    }
    image::CutoutRequest cut;
    cut.pixels = image::PixelRanges{image::PixelRange{x, x + 50}, image::PixelRange{y, y + 50}};
    image::write_cutout(part->exposure(), cut, out, c.dataset_id);
    stamps.push_back(ms_since(t));
  }
  fs::remove(out);
  const double w = percentile(whole, 0.5), st = percentile(stamps, 0.5);
  fmt::print("  whole re-creation (never made)  n={:<3} p50 {:9.1f} ms\n", whole.size(), w);
  fmt::print("  cold 51x51 stamp from a part    n={:<3} p50 {:9.1f} ms  p95 {:9.1f} ms\n", stamps.size(), st,
             percentile(stamps, 0.95));
  fmt::print("  the stamp is x{:.0f} faster   target >= x10: {}\n", w / st, met(w / st >= 10.0));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next_int = [&] { return std::atoi(argv[++i]); };
    if (a == "--dir" && i + 1 < argc) o.dir = argv[++i];
    else if (a == "--visits" && i + 1 < argc) o.visits = next_int();
    else if (a == "--stamps" && i + 1 < argc) o.stamps = next_int();
    else if (a == "--whole" && i + 1 < argc) o.whole = next_int();
    else if (a == "--users" && i + 1 < argc) o.users = next_int();
    else if (a == "--whole-visits" && i + 1 < argc) o.whole_visits = next_int();
    else if (a == "--objects" && i + 1 < argc) o.objects = next_int();
    else if (a == "--min-epochs" && i + 1 < argc) o.min_epochs = next_int();
    else if (a == "--large-ccd" && i + 1 < argc) o.large_ccd = next_int();
    else {
      fmt::print(stderr,
                 "usage: bench_virtual_products [--dir DIR] [--visits N] [--stamps N] [--whole N] [--users N] "
                 "[--whole-visits N] [--objects N] [--min-epochs N] [--large-ccd PX]\n");
      return 2;
    }
  }
  const unsigned cores = std::max(1U, std::thread::hardware_concurrency());
  const auto run_start = Clock::now();
  fmt::print("bench_virtual_products: {} cores (server workers, re-creations and clients share them); CCD {}x{} px "
             "(the demo's), {}\"/px\n",
             cores, kCcd, kCcd, kScaleArcsec);
  spdlog::set_level(spdlog::level::warn);
  setup(o);

  const fs::path repo_dir = o.dir / "repo";
  auto repository = std::make_shared<services::SharedRepository>(repo::Repository::open(repo_dir));
  forget_products(*repository);  // whatever an earlier run left
  services::AppOptions app_options;
  auto app = services::make_app(repository, app_options);
  http::ServerSettings server_settings;
  server_settings.host = "127.0.0.1";
  server_settings.port = 0;
  server_settings.handle_signals = false;
  http::Server server(server_settings, std::move(app.router));
  const auto port = server.port();
  std::jthread serving([&server] { server.run(); });
  fmt::print("server: in-process on 127.0.0.1:{}, default settings (workers 4 x cores, sync re-creation limit {})\n",
             port, repository->sync_max_recreations());

  const auto calexps = by_visit(*repository, "calexp", "DR1");
  const auto diffims = by_visit(*repository, "diffim", "DR1");
  const auto stored_groups = by_visit(*repository, "calexp", "STORED");
  std::vector<repo::DatasetRecord> stored;
  for (const auto& [v, rs] : stored_groups) stored.insert(stored.end(), rs.begin(), rs.end());
  std::size_t n_calexps = 0, n_diffims = 0;
  for (const auto& [v, rs] : calexps) n_calexps += rs.size();
  for (const auto& [v, rs] : diffims) n_diffims += rs.size();
  // Visits with difference images, not among the stored ones.
  std::vector<std::int64_t> pool_visits;
  for (const auto& [v, rs] : diffims) {
    if (!stored_groups.contains(v)) pool_visits.push_back(v);
  }
  fmt::print("registry: DR1 {} virtual calexps, {} virtual difference images ({} visits with them); STORED {} "
             "calexps\n",
             n_calexps, n_diffims, diffims.size(), stored.size());
  if (stored.empty() || pool_visits.empty()) {
    fmt::print("nothing to measure\n");
    server.stop();
    return 1;
  }
  // Products are prepared as `pixserve materialize` and `pixserve cache
  // prune` would, from another opening of the repository: the server has
  // then never read (nor checksummed) the inputs of what it is asked for.
  services::SharedRepository maker(repo::Repository::open(repo_dir));
  VisitPool pool(pool_visits);
  std::mt19937 rng(7);
  const std::string soda = services::links::endpoint(services::links::kSoda, "sync");

  // ------------------------------------------ stored references (warm)
  std::uint64_t ccd_bytes = 0;
  for (const auto& r : stored) ccd_bytes = http_get(port, file_path(r.dataset_id)).body_bytes;  // page cache

  // ------------------------------------------------------------ figure 3
  fmt::print("\n[3] Cold whole re-creation of one CCD ({}x{}, 3 planes, {:.2f} MB), GET /api/files/<id>, one "
             "client; nothing cached, no measurements\n",
             kCcd, kCcd, static_cast<double>(ccd_bytes) / 1e6);
  forget_products(*repository);
  const std::size_t n_whole = static_cast<std::size_t>(o.whole);
  const auto whole_calexps = records_of(calexps, pool.take((n_whole + 8) / 9), n_whole);
  const auto whole_diffims = records_of(diffims, pool.take((n_whole + 8) / 9), n_whole);
  std::vector<HttpResult> cold_calexp, cold_diffim;
  for (const auto& r : whole_calexps) cold_calexp.push_back(http_get(port, file_path(r.dataset_id)));
  for (const auto& r : whole_diffims) cold_diffim.push_back(http_get(port, file_path(r.dataset_id)));
  // References: the stored calexp GET and a cache hit of a virtual calexp,
  // interleaved, from the page cache.
  std::vector<HttpResult> stored_get, hit_get;
  for (int round = 0; round < 5; ++round) {
    for (std::size_t i = 0; i < std::max<std::size_t>(whole_calexps.size(), 1); ++i) {
      stored_get.push_back(http_get(port, file_path(stored[i % stored.size()].dataset_id)));
      if (!whole_calexps.empty()) hit_get.push_back(http_get(port, file_path(whole_calexps[i].dataset_id)));
    }
  }
  const double stored_p50 = percentile(latencies(stored_get), 0.5);
  stats_row("virtual calexp, never made", latencies(cold_calexp), ok_text(cold_calexp));
  stats_row("virtual diffim, never made (its calexp too)", latencies(cold_diffim), ok_text(cold_diffim));
  stats_row("reference: stored calexp (STORED), page cache", latencies(stored_get), ok_text(stored_get));
  stats_row("virtual calexp, cache hit", latencies(hit_get), ok_text(hit_get));
  const double cold_calexp_p50 = cold_calexp.empty() ? 0.0 : percentile(latencies(cold_calexp), 0.5);
  const double cold_diffim_p50 = cold_diffim.empty() ? 0.0 : percentile(latencies(cold_diffim), 0.5);
  const double hit_p50 = hit_get.empty() ? 0.0 : percentile(latencies(hit_get), 0.5);
  fmt::print("  cold calexp / stored GET (p50): x{:.0f}   cold diffim / stored GET (p50): x{:.0f}\n",
             cold_calexp_p50 / stored_p50, cold_diffim_p50 / stored_p50);
  fmt::print("  cache hit / stored GET (p50): x{:.3f} ({:+.1f}%)   target: within 10%: {}\n", hit_p50 / stored_p50,
             (hit_p50 / stored_p50 - 1.0) * 100.0, met(std::abs(hit_p50 / stored_p50 - 1.0) <= 0.10));
  if (!hit_get.empty() && hit_get.front().body_bytes != ccd_bytes) {
    fmt::print("  note: virtual calexp {} bytes, stored calexp {} bytes\n", hit_get.front().body_bytes, ccd_bytes);
  }

  // ------------------------------------------------------------ figure 6
  fmt::print("\n[6] {} concurrent users, each GETting a different cold whole calexp ({}x{}; nothing cached, no "
             "measurements)\n",
             o.users, kCcd, kCcd);
  forget_products(*repository);
  {
    const std::size_t n = static_cast<std::size_t>(o.users);
    const auto users = records_of(calexps, pool.take((n + 8) / 9), n);
    std::atomic<std::size_t> next{0};
    const auto t = Clock::now();
    const auto results = concurrent(static_cast<int>(users.size()), 1, [&] {
      return http_get(port, file_path(users[next++].dataset_id));
    });
    const double wall = ms_since(t) / 1000.0;
    if (users.size() < n) fmt::print("  only {} calexps left for this figure\n", users.size());
    stats_row(fmt::format("{} users, latency", users.size()), latencies(results), ok_text(results));
    if (!results.empty()) {
      const double p95 = percentile(latencies(results), 0.95);
      fmt::print("  wall {:.1f} s, {:.1f} calexps/s; p95 / one cold calexp alone (fig. 3 p50): x{:.1f}; p95 / stored "
                 "GET: x{:.0f}\n",
                 wall, static_cast<double>(results.size()) / wall, p95 / cold_calexp_p50, p95 / stored_p50);
      fmt::print("  target p95 < 10 s (DMS-REQ-0374): {} ({:.2f} s)\n", met(p95 < 10000.0), p95 / 1000.0);
    }
  }

  // ------------------------------------------------------------ figure 7
  fmt::print("\n[7] {} concurrent whole-visit requests: each client a different visit, GETting its 9 cold calexps "
             "in turn\n",
             o.whole_visits);
  forget_products(*repository);
  {
    const auto visits = pool.take(static_cast<std::size_t>(o.whole_visits));
    std::vector<double> per_visit(visits.size(), 0.0);
    std::vector<int> ok(visits.size(), 0), count(visits.size(), 0);
    const auto t = Clock::now();
    {
      std::vector<std::jthread> clients;
      for (std::size_t c = 0; c < visits.size(); ++c) {
        clients.emplace_back([&, c] {
          const auto start = Clock::now();
          for (const auto& r : calexps.at(visits[c])) {
            ok[c] += http_get(port, file_path(r.dataset_id)).status == 200 ? 1 : 0;
            ++count[c];
          }
          per_visit[c] = ms_since(start);
        });
      }
    }
    const double wall = ms_since(t) / 1000.0;
    if (static_cast<int>(visits.size()) < o.whole_visits) {
      fmt::print("  only {} visits left for this figure\n", visits.size());
    }
    const bool all = std::equal(ok.begin(), ok.end(), count.begin());
    stats_row(fmt::format("{} visits x 9 calexps, time per visit", visits.size()), per_visit,
              all ? "all 200" : "ERRORS");
    if (!per_visit.empty()) {
      const double worst = percentile(per_visit, 1.0);
      fmt::print("  wall {:.1f} s, {:.1f} calexps/s; one visit alone would be ~9 x {:.0f} ms = {:.1f} s (fig. 3)\n",
                 wall, static_cast<double>(visits.size() * 9) / wall, cold_calexp_p50, 9 * cold_calexp_p50 / 1000.0);
      fmt::print("  target < 60 s per visit (DMS-REQ-0376): {} (slowest {:.1f} s)\n", met(worst < 60000.0),
                 worst / 1000.0);
    }
  }

  // --------------------------------------------------- stored stamp reference
  std::vector<repo::DatasetRecord> stored_cycle;
  for (int i = 0; i < o.stamps; ++i) stored_cycle.push_back(stored[static_cast<std::size_t>(i) % stored.size()]);
  stamps_of(port, {stored.front()}, rng);  // warm
  const auto stored_stamps = stamps_of(port, stored_cycle, rng);
  const double stored_stamp_p50 = percentile(latencies(stored_stamps), 0.5);

  // ------------------------------------------------------------ figure 1
  fmt::print("\n[1] Cold 51x51 three-plane stamp of a virtual calexp (not cached, measurements kept: computed from "
             "a part), SODA sync, one client\n");
  forget_products(*repository);
  double cold_calexp_stamp_p50 = 0.0;
  {
    const std::size_t n = static_cast<std::size_t>(o.stamps);
    const auto records = records_of(calexps, pool.take((n + 8) / 9), n);
    const double s = materialize(maker, records, cores);
    const auto removed = maker.prune_product_cache(0);
    fmt::print("  prepared: {} calexps re-created whole in {:.1f} s ({} threads), then {} cached files pruned\n",
               records.size(), s, cores, removed.files);
    const auto before = repository->product_cache_stats();
    const auto results = stamps_of(port, records, rng);
    const auto after = repository->product_cache_stats();
    stats_row("cold virtual calexp stamp", latencies(results),
              fmt::format("{}; first {:.1f} ms", ok_text(results), results.empty() ? 0.0 : results.front().ms));
    stats_row("reference: stored calexp stamp (STORED)", latencies(stored_stamps), ok_text(stored_stamps));
    if (!results.empty()) {
      cold_calexp_stamp_p50 = percentile(latencies(results), 0.5);
      const double p95 = percentile(latencies(results), 0.95);
      fmt::print("  whole re-creations during the stamps: {}; stamp bytes {}; cold / stored stamp (p50): x{:.1f}\n",
                 after.recreated - before.recreated, results.front().body_bytes,
                 cold_calexp_stamp_p50 / stored_stamp_p50);
      fmt::print("  target < 20 ms on one core: {} (p50 {:.1f} ms, p95 {:.1f} ms)\n", met(p95 < 20.0),
                 cold_calexp_stamp_p50, p95);
    }
  }

  // ------------------------------------------------------------ figure 2
  fmt::print("\n[2] Cold 51x51 three-plane stamp of a virtual difference image (it and its calexp not cached, "
             "kernel and measurements kept), one client\n");
  {
    const std::size_t n = static_cast<std::size_t>(o.stamps);
    const auto records = records_of(diffims, pool.take((n + 8) / 9), n);
    const double s = materialize(maker, records, cores);
    const auto removed = maker.prune_product_cache(0);
    fmt::print("  prepared: {} difference images (and their calexps) re-created whole in {:.1f} s, then {} cached "
               "files pruned\n",
               records.size(), s, removed.files);
    const auto before = repository->product_cache_stats();
    const auto results = stamps_of(port, records, rng);
    const auto after = repository->product_cache_stats();
    stats_row("cold virtual diffim stamp", latencies(results),
              fmt::format("{}; first {:.1f} ms", ok_text(results), results.empty() ? 0.0 : results.front().ms));
    if (!results.empty()) {
      const double p50 = percentile(latencies(results), 0.5), p95 = percentile(latencies(results), 0.95);
      fmt::print("  whole re-creations during the stamps: {}; cold diffim / stored calexp stamp (p50): x{:.1f}; / "
                 "cold calexp stamp: x{:.1f}\n",
                 after.recreated - before.recreated, p50 / stored_stamp_p50, p50 / cold_calexp_stamp_p50);
      fmt::print("  target < 50 ms: {} (p50 {:.1f} ms, p95 {:.1f} ms)\n", met(p95 < 50.0), p50, p95);
    }
  }

  // ------------------------------------------------------------ figure 4
  fmt::print("\n[4] Stamp vs whole re-creation of a calexp (p50, both cold, fig. 1 and fig. 3)\n");
  if (cold_calexp_stamp_p50 > 0.0 && cold_calexp_p50 > 0.0) {
    const double ratio = cold_calexp_p50 / cold_calexp_stamp_p50;
    fmt::print("  whole {:.1f} ms / stamp {:.1f} ms: the stamp is x{:.1f} faster   target >= x10: {}\n",
               cold_calexp_p50, cold_calexp_stamp_p50, ratio, met(ratio >= 10.0));
  } else {
    fmt::print("  (not measured)\n");
  }
  if (o.large_ccd > 0) large_ccd_stamps(o);

  // ------------------------------------------------------------ figure 5
  fmt::print("\n[5] All epochs of one object: {} concurrent clients, each the cold 51x51 stamps of every difference "
             "image of its own object (one SODA sync request, all IDs, one CIRCLE)\n",
             o.objects);
  {
    const fs::path truth = o.dir / "survey" / "truth.csv";
    const sky::SkyPoint centre{53.0, -28.0};
    struct Object {
      Star star;
      std::vector<std::string> ids;
    };
    std::vector<Object> chosen, best;
    std::size_t scanned = 0, max_epochs = 0;
    for (const auto& s : stars_near(truth, centre)) {
      if (chosen.size() >= static_cast<std::size_t>(o.objects) || scanned >= 400) break;
      ++scanned;
      // Distinct: stamps that do not overlap.
      const auto overlaps = [&](const std::vector<Object>& list) {
        return std::any_of(list.begin(), list.end(), [&](const Object& c) {
          return std::hypot((c.star.ra - s.ra) * std::cos(s.dec * M_PI / 180.0), c.star.dec - s.dec) <
                 2.0 * kStampRadius;
        });
      };
      if (overlaps(chosen)) continue;
      repo::DatasetQuery q;
      q.regions = {sky::Circle{{s.ra, s.dec}, 1.0 / 3600.0}};
      q.dataset_types = {"diffim"};
      q.collections = {"DR1"};
      Object obj{s, {}};
      for (const auto& r : repository->find_visible(q)) obj.ids.push_back(r.dataset_id);
      max_epochs = std::max(max_epochs, obj.ids.size());
      if (obj.ids.size() >= static_cast<std::size_t>(o.min_epochs)) {
        chosen.push_back(obj);
      } else if (!overlaps(best)) {
        best.push_back(obj);
      }
    }
    if (chosen.size() < static_cast<std::size_t>(o.objects)) {
      fmt::print("  only {} of the {} stars nearest the field centre have >= {} difference-image epochs (most: {}; "
                 "{} visits, {} of them templates without difference images); the best covered are used\n",
                 chosen.size(), scanned, o.min_epochs, max_epochs, o.visits, kTemplateVisits);
      std::sort(best.begin(), best.end(), [](const Object& a, const Object& b) { return a.ids.size() > b.ids.size(); });
      for (const auto& b : best) {
        const bool apart = std::none_of(chosen.begin(), chosen.end(), [&](const Object& c) {
          return std::hypot((c.star.ra - b.star.ra) * std::cos(b.star.dec * M_PI / 180.0), c.star.dec - b.star.dec) <
                 2.0 * kStampRadius;
        });
        if (apart && chosen.size() < static_cast<std::size_t>(o.objects)) chosen.push_back(b);
      }
    }
    std::vector<std::size_t> epochs;
    std::set<std::string> all_ids;
    double farthest = 0.0;
    for (const auto& c : chosen) {
      farthest = std::max(farthest, c.star.distance);
      epochs.push_back(c.ids.size());
      all_ids.insert(c.ids.begin(), c.ids.end());
    }
    std::string counts;
    for (const auto e : epochs) counts += fmt::format("{} ", e);
    fmt::print("  objects: {} stars within {:.1f}' of the field centre; epochs each: {}({} distinct difference "
               "images)\n",
               chosen.size(), farthest * 60.0, counts, all_ids.size());
    // Kernels measured once: whole re-creation, then the files go.
    std::vector<repo::DatasetRecord> records;
    {
      repo::DatasetQuery q;
      q.dataset_ids.assign(all_ids.begin(), all_ids.end());
      records = maker.find_visible(q);
    }
    const double s = materialize(maker, records, cores);
    const auto removed = maker.prune_product_cache(0);
    fmt::print("  prepared: {} difference images re-created whole in {:.1f} s (kernels kept), then {} cached files "
               "pruned\n",
               records.size(), s, removed.files);
    std::vector<std::string> forms;
    for (const auto& c : chosen) forms.push_back(circle_form(c.ids, c.star.ra, c.star.dec, kStampRadius));
    if (!forms.empty()) {
      const auto before = repository->product_cache_stats();
      std::atomic<std::size_t> next{0};
      const auto t = Clock::now();
      const auto results =
          concurrent(static_cast<int>(forms.size()), 1, [&] { return http_post(port, soda, forms[next++]); });
      const double wall = ms_since(t) / 1000.0;
      const auto after = repository->product_cache_stats();
      // Reference: the first object's request again, alone (its inputs'
      // checksums now known to the server, as they were not above).
      const auto alone = http_post(port, soda, forms.front());
      stats_row(fmt::format("{} clients, time per client", results.size()), latencies(results), ok_text(results));
      fmt::print("  wall {:.1f} s, {:.0f} stamps/s; whole re-creations during the stamps: {}\n", wall,
                 static_cast<double>(std::accumulate(epochs.begin(), epochs.end(), std::size_t{0})) / wall,
                 after.recreated - before.recreated);
      fmt::print("  reference: the first object's request alone, afterwards: {:.0f} ms ({} stamps, {:.2f} MB, status "
                 "{}); slowest concurrent client / alone: x{:.1f}\n",
                 alone.ms, epochs.front(), static_cast<double>(alone.body_bytes) / 1e6, alone.status,
                 percentile(latencies(results), 1.0) / alone.ms);
      const double worst = percentile(latencies(results), 1.0);
      fmt::print("  target < 10 s per client (DMS-REQ-0375): {} (slowest {:.2f} s){}\n", met(worst < 10000.0),
                 worst / 1000.0,
                 max_epochs < static_cast<std::size_t>(o.min_epochs) ? fmt::format(" with < {} epochs", o.min_epochs)
                                                                     : "");
    }
  }

  server.stop();
  fmt::print("\nwhole run {:.1f} s\n", ms_since(run_start) / 1000.0);
  return 0;
}
