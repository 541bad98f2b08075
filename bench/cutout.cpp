// bench/cutout: cutouts, engine and SODA service, in one run.
//
// Engine (no HTTP): 51x51 postage-stamp latency (p50/p95) from a 4k x 4k
// calexp, plain and tile-compressed, side by side with astropy's Cutout2D
// doing the same job (open + cut + write, run by /usr/bin/python3 in one
// process so interpreter start-up is not counted); and a CCD-sized cutout's
// bytes/s against a plain read of the file's bytes from the page cache.
//
// SODA over HTTP (an in-process `pixserve serve` on loopback, on a survey
// simulated here with 4400-pixel coadd patches so that a 4k x 4k coadd
// cutout exists and crosses patch boundaries):
//   - "all epochs of one object": 10 concurrent clients, each asking
//     /api/soda/sync for 51x51 stamps of every calexp holding one position
//     (one request, a multi-extension FITS), several rounds each;
//   - one 51x51 stamp of the CCD-sized calexp, one client (latency), and the
//     whole calexp cut with PIXEL against the same file from /api/files;
//   - a CCD-sized (4k x 4k) coadd cutout assembled across patches, one client
//     and then 20 concurrent clients; bytes/s against a plain read of as many
//     bytes of the patch files from the page cache.
//
//   build/bench_cutout [--stamps N] [--size N] [--dir DIR] [--no-astropy] [--no-http]
//                      [--visits N] [--rounds N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <memory>
#include <thread>

#include <spdlog/spdlog.h>

#include "bench_http.hpp"
#include "fits/fits.hpp"
#include "http/server.hpp"
#include "image/cutout.hpp"
#include "repo/repository.hpp"
#include "services/app.hpp"
#include "services/links.hpp"
#include "services/soda_params.hpp"
#include "sim/simulator.hpp"
#include "wcs/wcs.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using namespace pixserve::bench;

namespace {

constexpr double kScale = 0.2 / 3600.0;

wcs::Wcs make_wcs(long size) {
  wcs::TanParameters t;
  t.crval = {150.1, 2.2};
  t.crpix = {static_cast<double>(size) / 2.0, static_cast<double>(size) / 2.0};
  t.cd = {-kScale, 0.0, 0.0, kScale};
  wcs::Sip sip;
  sip.order = 2;
  sip.a = {{0, 0, 1e-7}, {0, 2e-7, 0}, {-1e-7, 0, 0}};
  sip.b = {{0, 0, -1e-7}, {0, 1e-7, 0}, {2e-7, 0, 0}};
  t.sip = sip;
  return wcs::Wcs::tan(t);
}

// A calexp-like file: noise-like image and variance, sparse mask bits.
void write_calexp(const fs::path& path, long size, const wcs::Wcs& w, bool compressed) {
  std::mt19937 rng(42);
  std::normal_distribution<float> noise(100.0F, 10.0F);
  fits::Image<float> image(size, size), variance(size, size);
  fits::Image<std::int32_t> mask(size, size, 0);
  for (auto& v : image.pixels) v = noise(rng);
  for (auto& v : variance.pixels) v = 100.0F + 0.01F * noise(rng);
  for (size_t i = 0; i < mask.pixels.size(); i += 97) mask.pixels[i] = 1 << (i % 9);
  auto f = fits::File::create(path);
  f.write_string("DSTYPE", compressed ? "calexp_comp" : "calexp");
  f.write_int("VISIT", 1);
  auto opts = [&](const char* name, float q) {
    fits::ImageWriteOptions o;
    o.extname = name;
    if (compressed) {
      o.compression = fits::Compression::rice;
      o.quantize_level = q;  // as calexp_comp: quantized floats, lossless mask
    }
    return o;
  };
  f.append_image(image, opts("IMAGE", 16.0F));
  w.write_to(f);
  f.append_image(mask, opts("MASK", 0.0F));
  w.write_to(f);
  f.write_int("MP_BAD", 0);
  f.append_image(variance, opts("VARIANCE", 16.0F));
  w.write_to(f);
  f.close();
}

struct Stamp {
  double ra, dec, x, y;
};

std::vector<double> time_pixserve(const fs::path& src, const std::vector<Stamp>& stamps, const fs::path& out) {
  std::vector<double> ms;
  for (const auto& s : stamps) {
    const auto t = Clock::now();
    image::write_cutout(src, {{sky::Circle{{s.ra, s.dec}, 25.4 * kScale}}, std::nullopt}, out, "bench");
    ms.push_back(ms_since(t));
  }
  return ms;
}

// The same stamps with astropy, timed inside Python; returns per-stamp ms.
std::vector<double> time_astropy(const fs::path& src, const std::vector<Stamp>& stamps, const fs::path& dir) {
  const fs::path script = dir / "astropy_stamps.py", input = dir / "stamps.txt", output = dir / "astropy_ms.txt";
  {
    std::ofstream in(input);
    for (const auto& s : stamps) in << fmt::format("{:.12f} {:.12f}\n", s.ra, s.dec);
    std::ofstream py(script);
    py << R"(import sys, time
import warnings
from astropy.io import fits
from astropy.wcs import WCS
from astropy.nddata import Cutout2D
from astropy.coordinates import SkyCoord
import astropy.units as u
warnings.simplefilter('ignore')
src, stamps, out, res = sys.argv[1:5]
times = []
for line in open(stamps):
    ra, dec = map(float, line.split())
    t = time.perf_counter()
    with fits.open(src) as h:
        hdus = [fits.PrimaryHDU(header=h[0].header)]
        pos = SkyCoord(ra * u.deg, dec * u.deg)
        for name in ('IMAGE', 'MASK', 'VARIANCE'):
            w = WCS(h[name].header)
            # astropy 5.2's CompImageHDU has no .section: it decompresses the whole plane.
            data = h[name].section if hasattr(h[name], 'section') else h[name].data
            c = Cutout2D(data, pos, (51, 51), wcs=w, mode='trim')
            hdr = h[name].header.copy(); hdr.update(c.wcs.to_header(relax=True))
            hdus.append(fits.ImageHDU(c.data, header=hdr, name=name))
        fits.HDUList(hdus).writeto(out, overwrite=True)
    times.append((time.perf_counter() - t) * 1000)
open(res, 'w').write('\n'.join(map(str, times)))
)";
  }
  const std::string cmd = fmt::format("/usr/bin/python3 {} {} {} {} {}", script.string(), src.string(), input.string(),
                                      (dir / "astropy_stamp.fits").string(), output.string());
  if (std::system(cmd.c_str()) != 0) return {};
  std::vector<double> ms;
  std::ifstream in(output);
  for (double v; in >> v;) ms.push_back(v);
  return ms;
}

void row(const char* what, const std::vector<double>& ms) {
  if (ms.empty()) {
    fmt::print("  {:<44} (not run)\n", what);
    return;
  }
  fmt::print("  {:<44} p50 {:8.3f} ms   p95 {:8.3f} ms\n", what, percentile(ms, 0.5), percentile(ms, 0.95));
}

// ---------------------------------------------------------------- HTTP

double read_bytes_ms(const std::vector<fs::path>& files, std::uint64_t bytes) {
  const auto t = Clock::now();
  std::vector<char> buf(1 << 20);
  std::uint64_t left = bytes;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    while (left > 0 && in.read(buf.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(left, buf.size())))) {
      left -= static_cast<std::uint64_t>(in.gcount());
    }
    if (left == 0) break;
  }
  return ms_since(t);
}

// Registers the bench's CCD-sized calexp in the repository (a hard link), so
// that it can be cut over HTTP and fetched whole from /api/files.
void register_ccd(const fs::path& repo_dir, const fs::path& file, const wcs::Wcs& w, long size) {
  auto repo = repo::Repository::open(repo_dir);
  const std::string id = "bench.calexp.ccd";
  const fs::path rel = "bench/calexp-ccd.fits";
  std::error_code ec;
  fs::create_directories(repo_dir / "bench");
  fs::remove(repo_dir / rel, ec);
  fs::create_hard_link(file, repo_dir / rel, ec);
  if (ec) fs::copy_file(file, repo_dir / rel, fs::copy_options::overwrite_existing);
  if (repo.registry().find_by_id(id)) return;
  const double e = static_cast<double>(size) - 0.5;
  repo::DatasetRecord r;
  r.type = repo::DatasetType::calexp;
  r.collection = "bench";
  r.dataset_id = id;
  r.file_path = rel.string();
  r.file_size = static_cast<std::int64_t>(fs::file_size(file));
  r.checksum = "00";
  r.footprint = sky::Polygon(w.pixel_to_sky(std::vector<wcs::PixelPoint>{{-0.5, -0.5}, {e, -0.5}, {e, e}, {-0.5, e}}));
  r.width = r.height = size;
  r.data_id.instrument = "LSSTSim";
  r.data_id.band = "r";
  r.data_id.visit = 999999;
  r.data_id.detector = 0;
  repo.registry().insert(r);
}

// One client, one request after another: latency percentiles.
std::vector<HttpResult> sequential(int n, const std::function<HttpResult()>& one) {
  std::vector<HttpResult> out;
  for (int i = 0; i < n; ++i) out.push_back(one());
  return out;
}

int http_benchmark(const fs::path& dir, int visits, int rounds, const fs::path& ccd, const wcs::Wcs& ccd_wcs,
                   long ccd_size) {
  const fs::path survey = dir / "survey", repo_dir = dir / "repo";
  auto t = Clock::now();
  if (!fs::exists(repo_dir / "pixserve-repo.json")) {
    sim::SurveyConfig config;
    config.visits = visits;
    config.bands = "r";
    config.detectors = 9;
    config.patch_size = 4400;  // a 4k x 4k coadd cutout within two patches of a 2x2 block
    config.write_calexp_comp = false;
    config.template_visits = 0;  // no difference-imaging templates: only the deepCoadds are cut
    sim::simulate(config, survey);
    auto repo = repo::Repository::open_or_create(repo_dir, {.name = "bench", .authority = "bench.example"});
    repo::IngestOptions ingest_options;
    ingest_options.transfer = repo::Transfer::hardlink;
    repo::ingest(repo, {survey / "calexp", survey / "deepCoadd"}, ingest_options);
    fmt::print("\nsimulated and ingested {} visits x 9 detectors + 4400-pixel coadd patches in {:.1f} s\n", visits,
               ms_since(t) / 1000.0);
  }
  register_ccd(repo_dir, ccd, ccd_wcs, ccd_size);
  auto repository = std::make_shared<services::SharedRepository>(repo::Repository::open(repo_dir));
  services::AppOptions options;
  auto app = services::make_app(repository, options);
  http::ServerSettings config;
  config.host = "127.0.0.1";
  config.port = 0;
  config.handle_signals = false;
  spdlog::set_level(spdlog::level::warn);
  http::Server server(config, std::move(app.router));
  const auto port = server.port();
  std::jthread serving([&server] { server.run(); });

  const std::string path = services::links::endpoint(services::links::kSoda, "sync");
  {
    // A 51x51 stamp of the CCD-sized calexp, one client; then the whole
    // calexp cut with PIXEL against the same file from /api/files.
    const auto c = ccd_wcs.pixel_to_sky({static_cast<double>(ccd_size) / 3.0, static_cast<double>(ccd_size) / 2.5});
    const std::string stamp_form = circle_form({"bench.calexp.ccd"}, c.ra, c.dec, 25.4 * kScale);
    sequential(20, [&] { return http_post(port, path, stamp_form); });
    const auto stamps = sequential(200, [&] { return http_post(port, path, stamp_form); });
    fmt::print("\nSODA over HTTP, one 51x51 stamp (3 planes) of a {}x{} calexp, 1 client x {} requests:\n", ccd_size,
               ccd_size, stamps.size());
    fmt::print("  p50 {:.2f} ms  p95 {:.2f} ms  {}\n", percentile(latencies(stamps), 0.5),
               percentile(latencies(stamps), 0.95), all_ok(stamps) ? "(all 200)" : "(ERRORS)");
    const std::string whole_form = fmt::format("ID=bench.calexp.ccd&PIXEL={}", http::percent_encode("[*,*]"));
    const std::string files = services::links::files() + "/bench.calexp.ccd";
    http_get(port, files);
    http_post(port, path, whole_form);
    const auto cut = sequential(3, [&] { return http_post(port, path, whole_form); });
    const auto file = sequential(3, [&] { return http_get(port, files); });
    const double cut_ms = percentile(latencies(cut), 0.5), file_ms = percentile(latencies(file), 0.5);
    const double cut_mb = static_cast<double>(cut.front().body_bytes) / 1e6;
    const double file_mb = static_cast<double>(file.front().body_bytes) / 1e6;
    fmt::print("\nSODA over HTTP, the whole {}x{} calexp (PIXEL=[*,*], {:.0f} MB) against /api/files ({:.0f} MB):\n",
               ccd_size, ccd_size, cut_mb, file_mb);
    fmt::print("  SODA cutout   {:8.1f} ms  {:7.1f} MB/s   {}\n", cut_ms, cut_mb / (cut_ms / 1000.0),
               all_ok(cut) ? "(200)" : "(ERROR)");
    fmt::print("  /api/files    {:8.1f} ms  {:7.1f} MB/s   {}   (SODA at {:.0f}% of the file rate)\n", file_ms,
               file_mb / (file_ms / 1000.0), all_ok(file) ? "(200)" : "(ERROR)",
               100.0 * (cut_mb / cut_ms) / (file_mb / file_ms));

    // A 1000x1000 cutout (12 MB) against /api/files serving the same number
    // of bytes (a Range request of the file), so both pay the same
    // per-request costs.
    const std::string k1_form = fmt::format("ID=bench.calexp.ccd&PIXEL={}", http::percent_encode("[1001:2000,1001:2000]"));
    http_post(port, path, k1_form);
    const auto k1 = sequential(9, [&] { return http_post(port, path, k1_form); });
    const std::string range = fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=0-{}\r\n"
                                          "Connection: close\r\n\r\n",
                                          files, k1.front().body_bytes - 1);
    const auto k1_file = sequential(9, [&] { return http_request(port, range); });
    const double k1_ms = percentile(latencies(k1), 0.5), k1_file_ms = percentile(latencies(k1_file), 0.5);
    const double k1_mb = static_cast<double>(k1.front().body_bytes) / 1e6;
    const double k1_file_mb = static_cast<double>(k1_file.front().body_bytes) / 1e6;
    fmt::print("\nSODA over HTTP, a 1000x1000 cutout (3 planes, {:.0f} MB) against /api/files (Range, {:.0f} MB), "
               "median of 9:\n", k1_mb, k1_file_mb);
    fmt::print("  SODA cutout   {:8.1f} ms  {:7.1f} MB/s   {}\n", k1_ms, k1_mb / (k1_ms / 1000.0),
               all_ok(k1) ? "(200)" : "(ERROR)");
    fmt::print("  /api/files    {:8.1f} ms  {:7.1f} MB/s   {}   (SODA at {:.0f}% of the file rate; target 50%)\n",
               k1_file_ms, k1_file_mb / (k1_file_ms / 1000.0),
               std::all_of(k1_file.begin(), k1_file.end(), [](const HttpResult& r) { return r.status == 206; })
                   ? "(206)"
                   : "(ERROR)",
               100.0 * (k1_mb / k1_ms) / (k1_file_mb / k1_file_ms));
  }

  // All epochs of one object: every calexp holding the field centre.
  const sky::SkyPoint object{53.0, -28.0};
  repo::DatasetQuery q;
  q.regions = {sky::Circle{object, 1.0 / 3600.0}};
  q.dataset_types = {"calexp"};
  std::vector<std::string> ids;
  for (const auto& r : repository->find_visible(q)) ids.push_back(r.dataset_id);
  const double stamp_radius = 25.4 * kScale;
  const std::string form = circle_form(ids, object.ra, object.dec, stamp_radius);
  http_post(port, path, form);  // warm the page cache
  t = Clock::now();
  const auto epochs = concurrent(10, rounds, [&] { return http_post(port, path, form); });
  const double wall = ms_since(t) / 1000.0;
  fmt::print("\nSODA over HTTP, all {} epochs of one object (51x51 stamps, 3 planes, one multi-extension FITS):\n",
             ids.size());
  fmt::print("  10 concurrent clients x {} requests: p50 {:.1f} ms  p95 {:.1f} ms per object   {:.1f} objects/s  "
             "{:.0f} stamps/s  {}\n",
             rounds, percentile(latencies(epochs), 0.5), percentile(latencies(epochs), 0.95),
             static_cast<double>(epochs.size()) / wall,
             static_cast<double>(epochs.size() * ids.size()) / wall, all_ok(epochs) ? "(all 200)" : "(ERRORS)");

  // CCD-sized coadd cutout around the corner shared by the 2x2 patches.
  repo::DatasetQuery cq;
  cq.dataset_types = {"deepCoadd"};
  cq.patches_only = true;  // not the logical coadd of the band
  const auto patches = repository->find_visible(cq);
  if (patches.empty()) {
    fmt::print("  no coadd patches\n");
    server.stop();
    return 1;
  }
  double ra = 0, dec = 0;
  std::vector<fs::path> patch_files;
  for (const auto& p : patches) {
    ra += *p.s_ra / static_cast<double>(patches.size());
    dec += *p.s_dec / static_cast<double>(patches.size());
    patch_files.push_back(repository->file_of(p));
  }
  const std::string coadd_form = circle_form({patches.front().dataset_id}, ra, dec, 2047.9 * kScale);
  const auto single = http_post(port, path, coadd_form);  // also warms the cache
  const auto single2 = http_post(port, path, coadd_form);
  // Against /api/files serving one of the patch files in the same run.
  const std::string patch_file = services::links::files() + "/" + patches.front().dataset_id;
  http_get(port, patch_file);
  const auto coadd_cuts = sequential(3, [&] { return http_post(port, path, coadd_form); });
  const auto patch_gets = sequential(3, [&] { return http_get(port, patch_file); });
  const double coadd_rate = static_cast<double>(coadd_cuts.front().body_bytes) / 1e3 /
                            percentile(latencies(coadd_cuts), 0.5);
  const double file_rate = static_cast<double>(patch_gets.front().body_bytes) / 1e3 /
                           percentile(latencies(patch_gets), 0.5);
  t = Clock::now();
  const auto many = concurrent(20, 1, [&] { return http_post(port, path, coadd_form); });
  const double many_wall = ms_since(t) / 1000.0;
  const double mb = static_cast<double>(single2.body_bytes) / 1e6;
  read_bytes_ms(patch_files, single2.body_bytes);  // warm
  const double plain_ms = read_bytes_ms(patch_files, single2.body_bytes);
  fmt::print("\nSODA over HTTP, CCD-sized coadd cutout (4096x4096 x 3 planes = {:.0f} MB, {} patches of 4400 px):\n",
             mb, patches.size());
  fmt::print("  1 client:                  {:8.0f} ms  {:7.1f} MB/s   {}\n", single2.ms, mb / (single2.ms / 1000.0),
             single.status == 200 && single2.status == 200 ? "(200)" : "(ERROR)");
  fmt::print("  1 client, median of 3:     {:7.1f} MB/s; /api/files of one patch {:7.1f} MB/s (cutout at {:.0f}% of "
             "the file rate; target 50%)\n",
             coadd_rate, file_rate, 100.0 * coadd_rate / file_rate);
  fmt::print("  20 concurrent clients:     p50 {:.0f} ms  max {:.0f} ms  wall {:.1f} s  {:7.1f} MB/s aggregate  {}\n",
             percentile(latencies(many), 0.5), percentile(latencies(many), 1.0), many_wall,
             mb * static_cast<double>(many.size()) / many_wall, all_ok(many) ? "(all 200)" : "(ERRORS)");
  fmt::print("  plain read, page cache:    {:8.0f} ms  {:7.1f} MB/s   (1 client is x{:.1f} the plain read time)\n",
             plain_ms, mb / (plain_ms / 1000.0), single2.ms / plain_ms);
  server.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int n_stamps = 200;
  long size = 4096;
  bool astropy = true;
  bool http_bench = true;
  int visits = 12, rounds = 10;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-cutout";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--stamps" && i + 1 < argc) n_stamps = std::atoi(argv[++i]);
    else if (a == "--size" && i + 1 < argc) size = std::atol(argv[++i]);
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--no-astropy") astropy = false;
    else if (a == "--no-http") http_bench = false;
    else if (a == "--visits" && i + 1 < argc) visits = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else {
      fmt::print(stderr, "usage: bench_cutout [--stamps N] [--size N] [--dir DIR] [--no-astropy] [--no-http] [--visits N] [--rounds N]\n");
      return 2;
    }
  }
  fs::create_directories(dir);
  const auto w = make_wcs(size);
  const fs::path plain = dir / "calexp.fits", comp = dir / "calexp_comp.fits.fz";
  auto t = Clock::now();
  write_calexp(plain, size, w, false);
  write_calexp(comp, size, w, true);
  fmt::print("wrote {}x{} calexp ({:.0f} MB) and calexp_comp ({:.0f} MB) in {:.1f} s\n", size, size,
             static_cast<double>(fs::file_size(plain)) / 1e6, static_cast<double>(fs::file_size(comp)) / 1e6,
             ms_since(t) / 1000.0);

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pos(60.0, static_cast<double>(size) - 60.0);
  std::vector<Stamp> stamps;
  for (int i = 0; i < n_stamps; ++i) {
    const double x = pos(rng), y = pos(rng);
    const auto s = w.pixel_to_sky({x, y});
    stamps.push_back({s.ra, s.dec, x, y});
  }
  // Warm the page cache (the comparison is CPU and I/O-call cost, not disk).
  time_pixserve(plain, {stamps.front()}, dir / "warm.fits");
  time_pixserve(comp, {stamps.front()}, dir / "warm.fits");

  fmt::print("\n51x51 stamps (CIRCLE r = 25.4 px), {} random positions, 3 planes, open + cut + write:\n", n_stamps);
  const auto p_plain = time_pixserve(plain, stamps, dir / "stamp.fits");
  const auto p_comp = time_pixserve(comp, stamps, dir / "stamp_comp.fits");
  row("pixserve, calexp", p_plain);
  row("pixserve, calexp_comp (tile-compressed)", p_comp);
  if (astropy) {
    const auto a_plain = time_astropy(plain, stamps, dir);
    // Decompressing whole planes makes astropy slow here: fewer stamps.
    const auto a_comp = time_astropy(comp, std::vector<Stamp>(stamps.begin(), stamps.begin() + std::min<size_t>(stamps.size(), 10)), dir);
    row("astropy Cutout2D, calexp", a_plain);
    row("astropy Cutout2D, calexp_comp (10 stamps)", a_comp);
    if (!a_plain.empty()) fmt::print("  speed-up (p50), calexp:      x{:.1f}\n", percentile(a_plain, 0.5) / percentile(p_plain, 0.5));
    if (!a_comp.empty()) fmt::print("  speed-up (p50), calexp_comp: x{:.1f}\n", percentile(a_comp, 0.5) / percentile(p_comp, 0.5));
  }

  // CCD-sized cutout: the whole image through the engine vs reading the bytes.
  fmt::print("\nCCD-sized cutout ({}x{}, 3 planes):\n", size, size);
  std::vector<double> big, raw;
  const double bytes = static_cast<double>(size) * static_cast<double>(size) * 12.0;
  for (int i = 0; i < 3; ++i) {
    t = Clock::now();
    image::write_cutout(plain, {{}, image::PixelRanges{}}, dir / "ccd.fits", "bench");
    big.push_back(ms_since(t));
    t = Clock::now();
    std::ifstream in(plain, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    }
    raw.push_back(ms_since(t));
  }
  const double b = percentile(big, 0.5), r = percentile(raw, 0.5);
  fmt::print("  pixserve cutout   {:8.1f} ms  {:7.1f} MB/s\n", b, bytes / 1e6 / (b / 1000.0));
  fmt::print("  plain read        {:8.1f} ms  {:7.1f} MB/s   (ratio x{:.2f})\n", r, bytes / 1e6 / (r / 1000.0), b / r);
  return http_bench ? http_benchmark(dir, visits, rounds, plain, w, size) : 0;
}
