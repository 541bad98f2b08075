// The SODA service layer: PIXEL and parameter checks with their limits, the
// tar and zip writers, and /api/soda/sync and /api/soda/async through the
// application router on a repository of synthetic files registered directly
// (a calexp, an embargoed calexp, a raw, and two coadd patches of one tract
// that share a pixel grid): pixels and provenance of the cutouts, coadd
// assembly across the patch boundary, BAND/TIME/POL selection, the SODA
// error statuses, capabilities, and UWS jobs with their results.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <pugixml.hpp>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "fits/fits.hpp"
#include "repo/astro_units.hpp"
#include "services/app.hpp"
#include "uws/job_identity.hpp"
#include "services/soda.hpp"
#include "services/soda_archive.hpp"
#include "services/soda_params.hpp"
#include "service_test_support.hpp"
#include "soda_test_images.hpp"
#include "test_scratch.hpp"
#include "wcs/wcs.hpp"
#include "test_registry.hpp"

namespace fs = std::filesystem;

namespace pixserve::services {
namespace {

using testing::call;
using testing::count;


// ------------------------------------------------------------ parameters

dali::ParsedParams parsed(const dali::RawParams& raw) {
  const auto d = soda_sync_declaration();
  return dali::parse_params(d.params, raw, d.parse_options);
}

TEST(SodaParams, PixelSections) {
  auto r = parse_pixel_section("[10:20,5:6]");
  ASSERT_TRUE(r.x && r.y);
  EXPECT_EQ(r.x->first, 10);
  EXPECT_EQ(r.x->last, 20);
  EXPECT_EQ(r.y->first, 5);
  EXPECT_EQ(r.y->last, 6);
  r = parse_pixel_section("*, 3:4");
  EXPECT_FALSE(r.x);
  ASSERT_TRUE(r.y);
  for (const char* bad : {"[0:10,1:2]", "[5:4,1:2]", "[1:2]", "[a:b,1:2]", "[1:2,3:4", "1:2,3:4,5:6", "[1:2,3]",
                          "[1:99999999999999999999,1:2]"}) {
    try {
      parse_pixel_section(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const dali::DaliError& e) {
      EXPECT_EQ(e.status(), 400) << bad;
      EXPECT_NE(std::string(e.what()).find("PIXEL"), std::string::npos) << e.what();
    }
  }
}

TEST(SodaParams, RequestShapesFormatsAndLimits) {
  const auto r = soda_request(parsed({{"ID", "a"},
                                      {"ID", "b"},
                                      {"POS", "CIRCLE 10 20 0.1"},
                                      {"CIRCLE", "10 20 0.2"},
                                      {"POLYGON", "10 20 10.1 20 10.1 20.1"},
                                      {"RESPONSEFORMAT", "tar"},
                                      {"BAND", "5e-7 6e-7"},
                                      {"PIXEL", "[1:5,1:5]"}}),
                              {});
  EXPECT_EQ(r.ids.size(), 2u);
  EXPECT_EQ(r.shapes.size(), 3u);
  EXPECT_EQ(r.cutouts(), 6u);
  EXPECT_EQ(r.format, SodaFormat::tar);
  EXPECT_EQ(r.bands.size(), 1u);
  EXPECT_TRUE(r.pixels);
  EXPECT_EQ(soda_request(parsed({{"ID", "a"}, {"RESPONSEFORMAT", "application/zip"}}), {}).format, SodaFormat::zip);
  EXPECT_EQ(soda_request(parsed({{"ID", "a"}}), {}).format, SodaFormat::fits);

  const SodaLimits small{.max_ids = 2, .max_shapes = 2, .max_cutouts = 3};
  const auto rejects = [&](const dali::RawParams& raw, const char* what) {
    try {
      soda_request(parsed(raw), small);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const dali::DaliError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  rejects({{"ID", "a"}, {"ID", "b"}, {"ID", "c"}}, "3 IDs");
  rejects({{"ID", "a"}, {"CIRCLE", "1 1 1"}, {"CIRCLE", "1 1 2"}, {"CIRCLE", "1 1 3"}}, "3 shapes");
  rejects({{"ID", "a"}, {"ID", "b"}, {"CIRCLE", "1 1 1"}, {"CIRCLE", "1 1 2"}}, "4 cutouts");
  // Polygons beyond the vertex limit are refused before they are built.
  std::string huge;
  for (int i = 0; i < 2000; ++i) huge += fmt::format("{} {} ", 10.0 + 1e-3 * std::cos(i * 0.00314), 20.0 + 1e-3 * std::sin(i * 0.00314));
  EXPECT_THROW(parsed({{"ID", "a"}, {"POLYGON", huge}}), dali::DaliError);
  // A typo'd parameter is an error, not a silently whole image.
  EXPECT_THROW(parsed({{"ID", "a"}, {"CIRCEL", "1 1 1"}}), dali::DaliError);
}

// ------------------------------------------------------------ archives

TEST(SodaArchive, Crc32KnownValue) { EXPECT_EQ(crc32("123456789"), 0xCBF43926u); }

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<ArchiveEntry> sample_entries(const fs::path& dir) {
  std::ofstream(dir / "a.bin", std::ios::binary) << std::string(1000, 'a');
  std::ofstream(dir / "b.bin", std::ios::binary) << "hello";
  return {archive_entry("first.fits", dir / "a.bin"), archive_entry("second.fits", dir / "b.bin")};
}

TEST(SodaArchive, TarIsUstarWithExactSize) {
  pixserve::testing::ScratchDir scratch;
  const auto entries = sample_entries(scratch.dir);
  std::string out;
  ASSERT_TRUE(write_tar(entries, [&out](std::string_view b) {
    out.append(b);
    return true;
  }));
  EXPECT_EQ(out.size(), tar_size(entries));
  EXPECT_EQ(out.size() % 512, 0u);
  EXPECT_EQ(out.substr(0, 10), "first.fits");
  EXPECT_EQ(out.substr(257, 5), "ustar");
  EXPECT_EQ(std::stoul(out.substr(124, 11), nullptr, 8), 1000u);
  // Header checksum: sum of the header bytes with the field as spaces.
  std::string header = out.substr(0, 512);
  const unsigned stored = static_cast<unsigned>(std::stoul(header.substr(148, 6), nullptr, 8));
  std::memset(header.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : header) sum += static_cast<unsigned char>(c);
  EXPECT_EQ(stored, sum);
  EXPECT_EQ(out.substr(512, 1000), std::string(1000, 'a'));
  EXPECT_EQ(out.substr(1536, 11), "second.fits");
  EXPECT_EQ(out.substr(2048, 5), "hello");
  // The system's tar reads it back.
  std::ofstream(scratch.dir / "x.tar", std::ios::binary) << out;
  const auto list = scratch.dir / "list.txt";
  ASSERT_EQ(std::system(("tar -tf " + (scratch.dir / "x.tar").string() + " > " + list.string()).c_str()), 0);
  EXPECT_EQ(read_all(list), "first.fits\nsecond.fits\n");
}

TEST(SodaArchive, ZipIsStoredWithCrcAndStopsWhenTheSinkDoes) {
  pixserve::testing::ScratchDir scratch;
  const auto entries = sample_entries(scratch.dir);
  std::string out;
  ASSERT_TRUE(write_zip(entries, [&out](std::string_view b) {
    out.append(b);
    return true;
  }));
  EXPECT_EQ(out.size(), zip_size(entries));
  EXPECT_EQ(out.substr(0, 4), std::string("PK\x03\x04", 4));
  std::uint32_t crc = 0;
  std::memcpy(&crc, out.data() + 14, 4);
  EXPECT_EQ(crc, crc32(std::string(1000, 'a')));
  EXPECT_EQ(out.substr(out.size() - 22, 4), std::string("PK\x05\x06", 4));
  std::ofstream(scratch.dir / "x.zip", std::ios::binary) << out;
  const auto check = "/usr/bin/python3 -c \"import zipfile,sys; z=zipfile.ZipFile(sys.argv[1]); "
                     "assert z.testzip() is None; assert z.namelist()==['first.fits','second.fits']; "
                     "assert z.read('second.fits')==b'hello'\" " +
                     (scratch.dir / "x.zip").string();
  EXPECT_EQ(std::system(check.c_str()), 0);
  int calls = 0;
  EXPECT_FALSE(write_zip(entries, [&calls](std::string_view) { return ++calls < 2; }));
  EXPECT_THROW(archive_entry("../evil", scratch.dir / "a.bin"), std::invalid_argument);
}

// ------------------------------------------------------------ service

constexpr long kSize = 200;     // calexp and patch size
constexpr long kPatchStep = 180;  // patches overlap by 20 pixels (their borders)

struct SodaFixture : ::testing::Test {
  pixserve::testing::ScratchDir scratch{"soda"};
  std::shared_ptr<SharedRepository> repository;
  std::unique_ptr<App> app;

  void SetUp() override {
    auto repo = repo::Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "testrepo", .authority = "example.org"}));
    const auto root = scratch.dir / "repo";
    auto& reg = repo.registry();
    // A calexp on the tract grid at offset (0, 0), plus an embargoed copy and a raw.
    const auto cw = grid_wcs(100.0, 100.0);
    write_image(root / "data/calexp.fits", cw, kSize, 0, 0, "calexp");
    auto calexp = record_for(repo::DatasetType::calexp, "DR1.calexp.v1.d001", "data/calexp.fits", footprint(cw, kSize), kSize);
    calexp.data_id.visit = 1;
    calexp.data_id.detector = 1;
    reg.insert(calexp);
    auto embargoed = calexp;
    embargoed.dataset_id = "DR1.calexp.v2.d001";
    embargoed.data_id.visit = 2;
    embargoed.rights.release_mjd = repo::mjd_now() + 10.0;
    reg.insert(embargoed);
    {
      auto f = fits::File::create(root / "data/raw.fits");
      f.write_string("DSTYPE", "raw");
      f.close();
    }
    auto raw = record_for(repo::DatasetType::raw, "DR1.raw.v1.d001", "data/raw.fits", footprint(cw, kSize), kSize);
    raw.data_id.visit = 1;
    reg.insert(raw);
    // Two coadd patches side by side in x on one grid: patch 0 covers grid
    // x 0..199, patch 1 covers x 180..379.
    for (int p = 0; p < 2; ++p) {
      const long gx0 = p * kPatchStep;
      const auto w = grid_wcs(100.0 - static_cast<double>(gx0), 100.0);
      const std::string rel = fmt::format("data/coadd_{}.fits", p);
      write_image(root / rel, w, kSize, gx0, 0, "deepCoadd");
      auto c = record_for(repo::DatasetType::deepCoadd, fmt::format("DR1.deepCoadd.r.t0.p{}_0", p), rel, footprint(w, kSize), kSize);
      c.data_id.skymap = "sky";
      c.data_id.tract = 0;
      c.data_id.patch = fmt::format("{},0", p);
      reg.insert(c);
    }
    repository = std::make_shared<SharedRepository>(std::move(repo));
    AppOptions options;
    options.jobs.threads = 1;
    options.jobs.dir = scratch.dir / "jobs";
    app = std::make_unique<App>(make_app(repository, options));
  }

  testing::Reply get(const std::string& query) { return call(app->router, "GET", "/api/soda/sync?" + query); }

  // Sky position of grid pixel (x, y).
  static sky::SkyPoint sky_of(double x, double y) { return grid_wcs(100.0, 100.0).pixel_to_sky({x, y}); }
  static std::string circle_at(double x, double y, double r_pix) {
    const auto s = sky_of(x, y);
    return fmt::format("CIRCLE={}%20{}%20{}", s.ra, s.dec, r_pix * kScale);
  }
};

// Reads an HDU's float image from a FITS file written in memory.
struct FitsFile {
  fits::File file;
  explicit FitsFile(const fs::path& p) : file(fits::File::open(p)) {}
};

fs::path save(const pixserve::testing::ScratchDir& s, const std::string& name, const std::string& body) {
  const auto p = s.dir / name;
  std::ofstream(p, std::ios::binary) << body;
  return p;
}

TEST_F(SodaFixture, SyncCircleCutsEveryPlaneWithProvenance) {
  const auto r = get("ID=ivo://example.org/testrepo?DR1.calexp.v1.d001&" + circle_at(50, 60, 5.4));
  ASSERT_EQ(r.status, 200) << r.body;

  EXPECT_EQ(r.content_type, "application/fits");
  FitsFile f(save(scratch, "c.fits", r.body));
  EXPECT_EQ(f.file.hdu_count(), 4);  // primary + IMAGE, MASK, VARIANCE
  f.file.move_to_hdu(1);
  EXPECT_EQ(f.file.read_int("PSNCUT").value_or(0), 1);
  ASSERT_TRUE(f.file.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.file.read_string("PSDSID").value_or(""), "DR1.calexp.v1.d001");
  const auto img = f.file.read_image<float>();
  EXPECT_EQ(img.width, 11);
  EXPECT_EQ(img.height, 11);
  EXPECT_EQ(img.at(0, 0), grid_value(45, 55));
  EXPECT_EQ(img.at(10, 10), grid_value(55, 65));
  EXPECT_TRUE(f.file.move_to_named_hdu("VARIANCE"));
  // Nothing is left in the spool once the response is done (but the
  // serving process's own folder with its owner lock).
  std::size_t left = 0;
  for (const auto& e : fs::recursive_directory_iterator(scratch.dir / "repo/cache/soda-spool")) {
    left += e.is_regular_file() && e.path().filename() != ".owner" ? 1 : 0;
  }
  EXPECT_EQ(left, 0u);
}

TEST_F(SodaFixture, SeveralIdsAndShapesGoIntoOneFile) {
  const auto r = get("ID=DR1.calexp.v1.d001&ID=DR1.deepCoadd.r.t0.p0_0&" + circle_at(50, 60, 3) + "&" +
                     circle_at(20, 20, 2) + "&POS=RANGE%200%20360%20-90%2090");
  ASSERT_EQ(r.status, 200) << r.body;
  FitsFile f(save(scratch, "m.fits", r.body));
  EXPECT_EQ(f.file.hdu_count(), 1 + 2 * 3 * 3);  // 2 IDs x 3 shapes x 3 planes
  f.file.move_to_hdu(1);
  EXPECT_EQ(f.file.read_int("PSNCUT").value_or(0), 6);
}

TEST_F(SodaFixture, CoaddCutoutAcrossThePatchBoundaryIsAssembled) {
  // Grid x 170..210 straddles the boundary (patch 0 ends at 199, patch 1 starts at 180).
  for (const char* id : {"DR1.deepCoadd.r.t0.p0_0", "DR1.deepCoadd.r.t0.p1_0"}) {
    const auto r = get(std::string("ID=") + id + "&" + circle_at(190, 100, 20.4));
    ASSERT_EQ(r.status, 200) << r.body;
    FitsFile f(save(scratch, "coadd.fits", r.body));
    ASSERT_TRUE(f.file.move_to_named_hdu("IMAGE"));
    const auto img = f.file.read_image<float>();
    ASSERT_EQ(img.width, 41);
    for (long x = 0; x < img.width; ++x) EXPECT_EQ(img.at(x, 20), grid_value(170 + x, 100)) << id << " x=" << x;
  }
  // With PIXEL, only the named patch, in its own pixel grid.
  const auto r = get("ID=DR1.deepCoadd.r.t0.p1_0&PIXEL=[1:5,1:2]");
  ASSERT_EQ(r.status, 200) << r.body;
  FitsFile f(save(scratch, "pix.fits", r.body));
  ASSERT_TRUE(f.file.move_to_named_hdu("IMAGE"));
  const auto img = f.file.read_image<float>();
  EXPECT_EQ(img.width, 5);
  EXPECT_EQ(img.height, 2);
  EXPECT_EQ(img.at(0, 0), grid_value(kPatchStep, 0));
}

TEST_F(SodaFixture, BandTimePolSelectWholeImages) {
  const std::string base = "ID=DR1.calexp.v1.d001&" + circle_at(50, 60, 3);
  EXPECT_EQ(get(base + "&BAND=5e-7%206e-7").status, 200);
  EXPECT_EQ(get(base + "&BAND=7e-7%208e-7").status, 204);
  EXPECT_EQ(get(base + "&TIME=60999%2061001").status, 200);
  EXPECT_EQ(get(base + "&TIME=50000%2050001").status, 204);
  EXPECT_EQ(get(base + "&POL=I").status, 200);
  EXPECT_EQ(get(base + "&POL=Q").status, 204);
}

TEST_F(SodaFixture, ErrorsFollowSoda) {
  // No overlap: 204 without a body.
  auto r = get("ID=DR1.calexp.v1.d001&CIRCLE=200%2010%200.01");
  EXPECT_EQ(r.status, 204);
  EXPECT_TRUE(r.body.empty());
  EXPECT_NE(std::string(r.headers.get("X-SODA-Status").value_or("")).find("NoOverlap"), std::string::npos);
  // Unknown, embargoed and path-like IDs look the same: 404 UsageError.
  std::string first_message;
  for (const char* id : {"DR1.calexp.v9.d009", "DR1.calexp.v2.d001", "..%2F..%2Fetc%2Fpasswd", "ivo://other.org/x?y"}) {
    r = get(std::string("ID=") + id);
    EXPECT_EQ(r.status, 404) << id;
    EXPECT_NE(r.body.find("UsageError: ID"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("is not a known dataset"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("embargo"), std::string::npos);
  }
  // Bad shapes and values: 400 UsageError naming the parameter.
  for (const char* q : {"ID=DR1.calexp.v1.d001&CIRCLE=10%2020", "ID=DR1.calexp.v1.d001&CIRCLE=10%20NaN%201",
                        "ID=DR1.calexp.v1.d001&POS=BOX%201%202%203", "ID=DR1.calexp.v1.d001&PIXEL=[0:3,1:2]",
                        "ID=DR1.calexp.v1.d001&POLYGON=1%202%203%204", "CIRCLE=1%202%203",
                        "ID=DR1.calexp.v1.d001&RESPONSEFORMAT=votable", "ID=DR1.calexp.v1.d001&CIRCLE=10%2020%20200"}) {
    r = get(q);
    EXPECT_EQ(r.status, 400) << q << "\n" << r.body;
    EXPECT_NE(r.body.find("UsageError: "), std::string::npos) << r.body;
  }
  // A raw file cannot be cut.
  r = get("ID=DR1.raw.v1.d001&" + circle_at(50, 60, 3));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("cannot be cut out"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find((scratch.dir / "repo").string()), std::string::npos);  // no server paths
}

TEST_F(SodaFixture, TarAndZipHoldOneFilePerCutout) {
  for (const char* format : {"tar", "application/zip"}) {
    const auto r = get("ID=DR1.calexp.v1.d001&ID=DR1.deepCoadd.r.t0.p0_0&" + circle_at(50, 60, 3) +
                       "&CIRCLE=200%2010%200.01&RESPONSEFORMAT=" + format);
    ASSERT_EQ(r.status, 200) << r.body;
    const bool tar = std::string(format) == "tar";
    EXPECT_EQ(r.content_type, tar ? "application/x-tar" : "application/zip");
    const auto path = save(scratch, tar ? "x.tar" : "x.zip", r.body);
    const auto list = scratch.dir / "list.txt";
    const std::string cmd = tar ? "tar -tf " + path.string() + " > " + list.string()
                                : "/usr/bin/python3 -c \"import zipfile,sys; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))\" " +
                                      path.string() + " > " + list.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    // Two IDs x two shapes, of which the second misses both images.
    EXPECT_EQ(read_all(list), "0001-DR1.calexp.v1.d001_s1.fits\n0003-DR1.deepCoadd.r.t0.p0_0_s1.fits\n");
  }
}

TEST_F(SodaFixture, CapabilitiesListSyncAndAsync) {
  const auto r = call(app->router, "GET", "/api/soda/capabilities");
  ASSERT_EQ(r.status, 200);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  std::map<std::string, std::string> urls;
  for (const auto& cap : doc.child("vosi:capabilities").children("capability")) {
    urls[cap.attribute("standardID").value()] = cap.child("interface").child("accessURL").text().get();
  }
  EXPECT_EQ(urls["ivo://ivoa.net/std/SODA#sync-1.0"], "http://example.org:8080/api/soda/sync");
  EXPECT_EQ(urls["ivo://ivoa.net/std/SODA#async-1.0"], "http://example.org:8080/api/soda/async");
  EXPECT_EQ(call(app->router, "GET", "/api/soda/availability").status, 200);
  const auto openapi = call(app->router, "GET", "/openapi.json");
  EXPECT_NE(openapi.body.find("\"/api/soda/async\""), std::string::npos);
}

std::string job_phase(const App& app, const std::string& job_url) {
  const auto r = call(app.router, "GET", job_url + "?WAIT=30");
  std::smatch m;
  if (std::regex_search(r.body, m, std::regex("<uws:phase>([A-Z]+)</uws:phase>"))) return m[1];
  return "?";
}

std::string job_url_of(const testing::Reply& r) {
  const std::string loc(r.headers.get("Location").value_or(""));
  return loc.substr(loc.find("/api/"));
}

TEST_F(SodaFixture, AsyncJobsGiveOneResultPerCombination) {
  auto r = call(app->router, "POST", "/api/soda/async",
                "PHASE=RUN&ID=DR1.calexp.v1.d001&" + circle_at(50, 60, 3) + "&CIRCLE=200%2010%200.01",
                "application/x-www-form-urlencoded");
  ASSERT_EQ(r.status, 303) << r.body;
  const auto job = job_url_of(r);
  std::string phase;
  for (int i = 0; i < 50 && (phase = job_phase(*app, job)) != "COMPLETED" && phase != "ERROR"; ++i) {
  }
  ASSERT_EQ(phase, "COMPLETED");
  r = call(app->router, "GET", job + "/results");
  EXPECT_EQ(count(r.body, "<uws:result "), 2u) << r.body;
  const auto fits_result = call(app->router, "GET", job + "/results/cutout-1");
  EXPECT_EQ(fits_result.status, 200);
  EXPECT_EQ(fits_result.body.substr(0, 6), "SIMPLE");
  const auto text = call(app->router, "GET", job + "/results/cutout-2");
  EXPECT_EQ(text.body.rfind("UsageError: NoOverlap", 0), 0u) << text.body;

  // Checked at creation: bad parameters never make a job (the server
  // answers the HttpError with its status and message).
  try {
    call(app->router, "POST", "/api/soda/async", "ID=x&CIRCLE=1%202", "application/x-www-form-urlencoded");
    ADD_FAILURE() << "a job with a bad CIRCLE was created";
  } catch (const http::HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(std::string(e.what()).find("UsageError: CIRCLE"), std::string::npos) << e.what();
  }
  // Unknown (or embargoed) IDs: the job ends in ERROR with the usage message.
  r = call(app->router, "POST", "/api/soda/async", "PHASE=RUN&ID=DR1.calexp.v2.d001",
           "application/x-www-form-urlencoded");
  ASSERT_EQ(r.status, 303);
  const auto bad_job = job_url_of(r);
  for (int i = 0; i < 50 && (phase = job_phase(*app, bad_job)) != "ERROR"; ++i) {
  }
  EXPECT_EQ(phase, "ERROR");
  const auto error = call(app->router, "GET", bad_job + "/error");
  EXPECT_NE(error.body.find("is not a known dataset"), std::string::npos) << error.body;
}

TEST_F(SodaFixture, AsyncTarIsOneResult) {
  auto r = call(app->router, "POST", "/api/soda/async",
                "PHASE=RUN&RESPONSEFORMAT=tar&ID=DR1.calexp.v1.d001&ID=DR1.deepCoadd.r.t0.p1_0&" + circle_at(190, 100, 5),
                "application/x-www-form-urlencoded");
  ASSERT_EQ(r.status, 303);
  const auto job = job_url_of(r);
  std::string phase;
  for (int i = 0; i < 50 && (phase = job_phase(*app, job)) != "COMPLETED" && phase != "ERROR"; ++i) {
  }
  ASSERT_EQ(phase, "COMPLETED");
  r = call(app->router, "GET", job + "/results");
  EXPECT_EQ(count(r.body, "<uws:result "), 1u) << r.body;
  const auto tar = call(app->router, "GET", job + "/results/cutouts");
  EXPECT_EQ(tar.body.substr(257, 5), "ustar");
  EXPECT_EQ(tar.body.size() % 512, 0u);
}

}  // namespace
}  // namespace pixserve::services

// The identity an async job acts with is the one recorded by the server for
// its owner; a record naming someone else, or a garbled one, gives the owner
// name alone (no groups, no rights).
TEST(SodaJobIdentity, RoundTripsTheOwnersRightsAndRefusesMismatches) {
  using namespace pixserve;
  auth::Identity bob{.user = "bob", .groups = {"team1", "staff"}, .scopes = {"read:image"}, .data_rights = true,
                     .staff = true, .via = "token"};
  uws::Job job;
  job.owner = "bob";
  job.owner_context = uws::encode_job_identity(bob);
  const auto who = uws::job_identity(job);
  EXPECT_EQ(who.user, "bob");
  EXPECT_EQ(who.groups, bob.groups);
  EXPECT_EQ(who.scopes, bob.scopes);
  EXPECT_TRUE(who.data_rights);
  EXPECT_TRUE(who.staff);

  job.owner = "mallory";  // a record of another user is not mallory's
  const auto mallory = uws::job_identity(job);
  EXPECT_EQ(mallory.user, "mallory");
  EXPECT_TRUE(mallory.groups.empty());
  EXPECT_FALSE(mallory.data_rights || mallory.staff);

  job.owner = "bob";
  job.owner_context = "garbage";
  EXPECT_TRUE(uws::job_identity(job).groups.empty());
  job.owner = std::string(uws::anonymous_owner);
  job.owner_context = uws::encode_job_identity(bob);
  EXPECT_TRUE(uws::job_identity(job).anonymous());
  EXPECT_TRUE(uws::encode_job_identity(auth::Identity{}).empty());
}
