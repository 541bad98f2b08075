// The application router of `pixserve serve` on a small repository whose
// records are registered directly: the datasets query (filters, OR'ed
// repeats, rights, MAXREC), VOSI availability from real checks, concurrent
// registry access, and the web pages.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "repo/astro_units.hpp"
#include "services/app.hpp"
#include "services/links.hpp"
#include "services/datasets.hpp"
#include "service_test_support.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace fs = std::filesystem;

namespace pixserve::services {
namespace {

using testing::call;
using testing::count;

using Scratch = pixserve::testing::ScratchDir;

repo::DatasetRecord calexp(std::int64_t visit, std::int64_t detector, double ra, double dec, std::string band) {
  auto r = testing::test_calexp(visit, detector, std::move(band), ra, dec, 0.05);
  r.s_fov = 0.14;
  r.em_min = 552e-9;
  r.em_max = 691e-9;
  return r;
}

struct RepoFixture {
  Scratch scratch;
  std::shared_ptr<SharedRepository> repository;
  explicit RepoFixture(const std::string& name) : scratch(name) {
    auto repo = open();
    auto& reg = repo.registry();
    reg.insert(calexp(1, 1, 53.0, -28.0, "r"));
    reg.insert(calexp(2, 1, 53.0, -28.0, "g"));
    reg.insert(calexp(3, 2, 60.0, -30.0, "r"));
    auto secret = calexp(4, 1, 53.0, -28.0, "r");
    secret.rights.policy = repo::ReadPolicy::owner;
    secret.rights.owner = "alice";
    reg.insert(secret);
    auto embargoed = calexp(5, 1, 53.0, -28.0, "r");
    embargoed.rights.release_mjd = repo::mjd_now() + 1.0;
    reg.insert(embargoed);
    repo::DatasetRecord bias;
    bias.type = repo::DatasetType::bias;
    bias.collection = "DR1";
    bias.data_id.instrument = "LSSTSim";
    bias.data_id.detector = 1;
    bias.dataset_id = repo::make_dataset_id(bias.collection, bias.type, bias.data_id);
    bias.file_path = "data/bias.fits";
    bias.checksum = "00";
    reg.insert(bias);
    repository = std::make_shared<SharedRepository>(std::move(repo));
  }
  // The fixture's repository opened again (e.g. to share it with other
  // registry settings).
  repo::Repository open() const {
    return repo::Repository::open_or_create(
        scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "testrepo", .authority = "example.org"}));
  }
};

AppOptions options(std::uint64_t min_free = 0) {
  AppOptions o;
  o.limits = {.default_maxrec = 100, .max_maxrec = 1000};
  o.service.min_free_disk_bytes = min_free;
  return o;
}

// The cells of one column (the first: obs_id of the datasets query).
std::vector<std::string> obs_ids(const std::string& votable, int column = 0) {
  pugi::xml_document doc;
  EXPECT_TRUE(doc.load_string(votable.c_str())) << votable;
  std::vector<std::string> out;
  for (const auto& tr : doc.select_nodes("//TABLEDATA/TR")) {
    auto td = tr.node().child("TD");
    for (int i = 0; i < column; ++i) td = td.next_sibling("TD");
    out.push_back(td.text().get());
  }
  return out;
}

TEST(ServicesApp, DatasetsQueryFilters) {
  RepoFixture f("app_filters");
  const auto app = make_app(f.repository, options());
  auto r = call(app.router, "GET", "/api/datasets/query");
  ASSERT_EQ(r.status, 200) << r.body;
  // Private and embargoed datasets stay hidden from anonymous requests;
  // the rest come in the order they were registered (the bias last).
  EXPECT_EQ(obs_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v2.d001",
                                                      "DR1.calexp.v3.d002", "DR1.bias.d001"}));
  r = call(app.router, "GET", "/api/datasets/query?POS=CIRCLE+53+-28+0.2");
  EXPECT_EQ(obs_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v2.d001"}));
  r = call(app.router, "GET", "/api/datasets/query?pos=CIRCLE+53+-28+0.2&pos=RANGE+59+61+-31+-29");
  EXPECT_EQ(obs_ids(r.body).size(), 3U) << "repeated POS values are OR'ed";
  r = call(app.router, "GET", "/api/datasets/query?VISIT=1&visit=3");
  EXPECT_EQ(obs_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v3.d002"}));
  r = call(app.router, "GET", "/api/datasets/query?BAND=r&DETECTOR=1");
  EXPECT_EQ(obs_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001"}));
  r = call(app.router, "GET", "/api/datasets/query?DPSUBTYPE=bias&COLLECTION=DR1");
  EXPECT_EQ(obs_ids(r.body), (std::vector<std::string>{"DR1.bias.d001"}));
  r = call(app.router, "GET", "/api/datasets/query?COLLECTION=DR2");
  EXPECT_TRUE(obs_ids(r.body).empty());

  // Columns: ObsCore names and metadata, s_region a DALI polygon.
  EXPECT_NE(r.body.find(R"(<FIELD name="s_region" ID="s_region" datatype="double" arraysize="*" unit="deg" ucd="pos.outline;obs.field")"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"(xtype="polygon")"), std::string::npos);
  EXPECT_NE(r.body.find(R"(utype="obscore:DataID.observationID")"), std::string::npos);
  r = call(app.router, "GET", "/api/datasets/query?VISIT=1&RESPONSEFORMAT=csv");
  EXPECT_EQ(r.body.rfind("obs_id,obs_publisher_did,dataproduct_type,dataproduct_subtype,", 0), 0U) << r.body;
  EXPECT_NE(r.body.find("ivo://example.org/testrepo?DR1.calexp.v1.d001"), std::string::npos) << r.body;
}

TEST(ServicesApp, DatasetsQueryErrorsAndMaxrec) {
  RepoFixture f("app_errors");
  const auto app = make_app(f.repository, options());
  auto r = call(app.router, "GET", "/api/datasets/query?MAXREC=2");
  EXPECT_EQ(obs_ids(r.body).size(), 2U);
  EXPECT_NE(r.body.find(R"(value="OVERFLOW")"), std::string::npos);
  r = call(app.router, "GET", "/api/datasets/query?MAXREC=0");
  EXPECT_TRUE(obs_ids(r.body).empty());
  EXPECT_EQ(r.body.find("OVERFLOW"), std::string::npos);
  for (const char* bad : {"POS=CIRCLE+53+-28", "POS=POLYGON+0+0+1+1", "BAND=q", "VISIT=x", "DETECTOR=-1", "DPSUBTYPE=CALEXP",
                          "RESPONSEFORMAT=fits", "MAXREC=many", "POS=CIRCLE+53+95+1"}) {
    r = call(app.router, "GET", std::string("/api/datasets/query?") + bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.content_type, "application/x-votable+xml") << bad;
    const std::string name(bad, std::string_view(bad).find('='));
    EXPECT_NE(r.body.find(name), std::string::npos) << bad << ": " << r.body;
  }
}

TEST(ServicesApp, ConcurrentQueriesShareTheRegistrySafely) {
  RepoFixture f("app_concurrent");
  const auto app = make_app(f.repository, options());
  std::atomic<int> failures{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const auto r = call(app.router, "GET", t % 2 ? "/api/datasets/query?POS=CIRCLE+53+-28+0.2" : "/api/datasets/availability");
        if (r.status != 200 || (t % 2 && obs_ids(r.body).size() != 2)) ++failures;
      }
    });
  }
  threads.clear();
  EXPECT_EQ(failures.load(), 0);
}

// On PostgreSQL a search of the registry runs in a read-only transaction
// that the database stops at registry.read_time_limit_s: the caller gets a
// usage error naming the limit, and the registry serves the next search at
// once.
TEST(ServicesApp, ARegistrySearchPastItsTimeLimitIsTheCallersErrorAndTheRegistryServesOn) {
  RepoFixture f("app_read_limit");
  if (!f.repository->registry_database().is_postgresql()) GTEST_SKIP() << "SQLite stops statements itself";
  SharedRepository bounded(f.open(), {}, RegistrySettings{.read_time_limit = std::chrono::milliseconds(300)});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    bounded.read([](repo::Registry& registry) {
      auto slow = registry.connection().prepare("SELECT pg_sleep(10)");
      return slow->step();
    });
    ADD_FAILURE() << "a search past the limit was not stopped";
  } catch (const dali::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("time limit (0.3 s)"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(bounded.find_visible(repo::DatasetQuery{}).size(), 4U);
  // Writes are refused inside a search.
  EXPECT_THROW(bounded.read([](repo::Registry& registry) {
    registry.connection().exec("DELETE FROM dataset");
    return 0;
  }),
               db::DbError);
  EXPECT_EQ(bounded.find_visible(repo::DatasetQuery{}).size(), 4U);
}

// On PostgreSQL, registry searches run side by side in the primary's read
// sessions (registry.read_sessions): a search finishes while another holds
// its session, and a search sees what was written just before it.
TEST(ServicesApp, RegistrySearchesOnPostgreSQLRunSideBySide) {
  RepoFixture f("app_read_sessions");
  if (!f.repository->registry_database().is_postgresql()) GTEST_SKIP() << "SQLite searches share one connection";
  SharedRepository shared(f.open(), {}, RegistrySettings{.read_sessions = 2});
  std::promise<void> first_inside, second_done;
  auto second_finished = second_done.get_future();
  std::future_status first_saw = std::future_status::deferred;
  std::thread first([&] {
    shared.read([&](repo::Registry& registry) {
      first_inside.set_value();
      first_saw = second_finished.wait_for(std::chrono::seconds(20));  // the other search, meanwhile
      return registry.stats().datasets;
    });
  });
  first_inside.get_future().wait();
  const auto found = shared.find_visible(repo::DatasetQuery{});
  second_done.set_value();
  first.join();
  EXPECT_EQ(found.size(), 4U);
  EXPECT_EQ(first_saw, std::future_status::ready) << "the second search waited for the first";
  // Read sessions see what the writer has just committed.
  shared.with([](repo::Repository& r) {
    db::Transaction t(r.registry().connection());
    r.registry().insert(pixserve::testing::test_calexp(77, 1, "r", 53.0, -28.0, 0.1));
    t.commit();
  });
  for (int i = 0; i < 4; ++i) EXPECT_EQ(shared.find_visible(repo::DatasetQuery{}).size(), 5U) << i;
}

TEST(ServicesApp, EveryLinkPathIsWhereTheServiceIsRouted) {
  RepoFixture f("app_links");
  const auto app = make_app(f.repository, options());
  const std::vector<std::string_view> names = {links::kDatasets, links::kSia, links::kDatalink, links::kTap,
                                               links::kSoda, links::kPhotometry, links::kHips, links::kMoc};
  ASSERT_EQ(app.catalog->services().size(), names.size());
  for (const auto name : names) {
    const auto* service = app.catalog->find(name);
    ASSERT_NE(service, nullptr) << name;
    EXPECT_EQ(app.catalog->path_of(*service), links::service(name));
    for (const auto& endpoint : service->endpoints) {
      EXPECT_EQ(app.catalog->path_of(*service, endpoint), links::endpoint(name, endpoint.path));
    }
  }
  // The routes outside the catalogue answer at the link paths (a DALI 404
  // for an unknown dataset, not the catch-all "no such endpoint").
  const auto unknown_file = call(app.router, "GET", links::files() + "/DR1.calexp.v1.d999");
  EXPECT_EQ(unknown_file.status, 404);
  EXPECT_NE(unknown_file.body.find("NotFoundFault: no such dataset"), std::string::npos) << unknown_file.body;
  EXPECT_EQ(call(app.router, "GET", links::endpoint(links::kSoda, "async")).status, 200);
  EXPECT_EQ(call(app.router, "GET", links::endpoint(links::kTap, "async")).status, 200);
  EXPECT_EQ(call(app.router, "GET", links::endpoint(links::kPhotometry, "async")).status, 200);
  const auto map = call(app.router, "GET", links::hips_map("nosuchmap", false) + "/properties");
  EXPECT_EQ(map.status, 404);
  EXPECT_NE(map.body.find("no HiPS map"), std::string::npos) << map.body;
}

TEST(ServicesApp, AvailabilityFromRealChecks) {
  RepoFixture f("app_availability");
  auto app = make_app(f.repository, options(0));
  auto r = call(app.router, "GET", "/api/datasets/availability");
  EXPECT_NE(r.body.find("<avail:available>true</avail:available>"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("registry database: ok"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("repository files: ok"), std::string::npos);
  EXPECT_NE(r.body.find("disk space: ok"), std::string::npos);

  // Not enough free space for the threshold.
  app = make_app(f.repository, options(std::uint64_t{1} << 62));
  r = call(app.router, "GET", "/api/datasets/availability");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<avail:available>false</avail:available>"), std::string::npos);
  EXPECT_NE(r.body.find("disk space: FAILED"), std::string::npos) << r.body;
  r = call(app.router, "GET", "/api/availability");
  EXPECT_NE(r.body.find("<avail:available>false</avail:available>"), std::string::npos);

  EXPECT_FALSE(check_readable(f.scratch.dir / "missing").ok);
  EXPECT_TRUE(check_readable(f.repository->root()).ok);
  EXPECT_TRUE(check_registry(*f.repository).ok);
  // A registry that no longer answers.
  f.repository->with([](repo::Repository& repo) { repo.registry().connection().exec("ALTER TABLE dataset RENAME TO gone"); });
  EXPECT_FALSE(check_registry(*f.repository).ok);
}

TEST(ServicesApp, WebPagesAndDocs) {
  RepoFixture f("app_web");
  const auto web = f.scratch.dir / "web";
  const auto swagger = f.scratch.dir / "node_modules" / "swagger-ui-dist";
  fs::create_directories(web / "docs");
  fs::create_directories(swagger);
  std::ofstream(web / "index.html") << "<html>landing</html>";
  std::ofstream(web / "docs" / "index.html") << "<html>docs</html>";
  std::ofstream(web / "docs" / "pixserve-docs.js") << "// init";
  std::ofstream(swagger / "swagger-ui-bundle.js") << "// bundle";
  std::ofstream(f.scratch.dir / "secret.txt") << "secret";
  EXPECT_EQ(find_swagger_ui(web), fs::weakly_canonical(swagger));

  auto o = options();
  o.web = {.web_root = web, .swagger_ui_dir = swagger};
  const auto app = make_app(f.repository, o);
  auto r = call(app.router, "GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<html>landing</html>");
  EXPECT_EQ(r.content_type.rfind("text/html", 0), 0U);
  r = call(app.router, "GET", "/docs");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.headers.get("Location").value_or(""), "docs/");
  EXPECT_EQ(call(app.router, "GET", "/docs/").body, "<html>docs</html>");
  EXPECT_EQ(call(app.router, "GET", "/docs/pixserve-docs.js").body, "// init");
  r = call(app.router, "GET", "/docs/swagger-ui-bundle.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "// bundle");
  EXPECT_EQ(call(app.router, "GET", "/docs/missing.js").status, 404);
  EXPECT_EQ(call(app.router, "GET", "/docs/%2e%2e/secret.txt").status, 404);  // resolves to /secret.txt
  EXPECT_THROW(call(app.router, "GET", "/docs/%2e%2e/%2e%2e/secret.txt"), http::HttpError);  // the server's 400
  const auto openapi = nlohmann::json::parse(call(app.router, "GET", "/openapi.json").body);
  EXPECT_TRUE(openapi["paths"].contains("/api/datasets/query"));
}

}  // namespace
}  // namespace pixserve::services

namespace pixserve::services {
namespace {

// The obs_id cells (fifth column of the SIA response).
std::vector<std::string> sia_ids(const std::string& votable) { return obs_ids(votable, 4); }

TEST(ServicesSia, ConstraintsRightsAndCalibrations) {
  RepoFixture f("sia_query");
  const auto app = make_app(f.repository, options());
  auto r = call(app.router, "GET", "/api/sia/query");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(sia_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v2.d001",
                                                       "DR1.calexp.v3.d002", "DR1.bias.d001"}));
  EXPECT_NE(r.body.find("http://example.org:8080/api/datalink/links?ID=ivo%3A%2F%2Fexample.org%2Ftestrepo%3FDR1.calexp.v1.d001"),
            std::string::npos);
  // A spatial constraint drops calibrations; the embargoed and private
  // calexps at the same place stay hidden.
  r = call(app.router, "GET", "/api/sia/query?POS=CIRCLE+53+-28+0.2");
  EXPECT_EQ(sia_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v2.d001"}));
  r = call(app.router, "GET", "/api/sia/query?TIME=60001.5+%2BInf");
  EXPECT_EQ(sia_ids(r.body), (std::vector<std::string>{"DR1.calexp.v2.d001", "DR1.calexp.v3.d002"}));
  r = call(app.router, "GET", "/api/sia/query?TIME=-Inf+60001.1&TIME=60002.9+60003.1");
  EXPECT_EQ(sia_ids(r.body), (std::vector<std::string>{"DR1.calexp.v1.d001", "DR1.calexp.v3.d002"}));
  r = call(app.router, "GET", "/api/sia/query?BAND=4e-7+5e-7");
  EXPECT_TRUE(sia_ids(r.body).empty());
  r = call(app.router, "GET", "/api/sia/query?BAND=6e-7+6.1e-7&DETECTOR=2");
  EXPECT_EQ(sia_ids(r.body), (std::vector<std::string>{"DR1.calexp.v3.d002"}));
  r = call(app.router, "GET", "/api/sia/query?FOV=0.1+0.2&CALIB=2&DPTYPE=image");
  EXPECT_EQ(sia_ids(r.body).size(), 3U);
  r = call(app.router, "GET", "/api/sia/query?ID=ivo://example.org/testrepo?DR1.calexp.v4.d001");
  EXPECT_TRUE(sia_ids(r.body).empty()) << "private datasets are not found by ID either";
  r = call(app.router, "GET", "/api/sia/query?FOV=x");
  EXPECT_EQ(r.status, 400);
}

TEST(ServicesDatalink, InvisibleLooksUnknownAndFilesAreGuarded) {
  RepoFixture f("datalink_links");
  const auto app = make_app(f.repository, options());
  auto r = call(app.router, "GET",
                "/api/datalink/links?ID=ivo://example.org/testrepo?DR1.calexp.v1.d001&ID=DR1.calexp.v4.d001&ID=nope");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("<TD>#this</TD>"), std::string::npos);
  EXPECT_NE(r.body.find("http://example.org:8080/api/files/DR1.calexp.v1.d001</TD>"), std::string::npos);
  EXPECT_NE(r.body.find("NotFoundFault: DR1.calexp.v4.d001 is not a known dataset"), std::string::npos);
  EXPECT_NE(r.body.find("NotFoundFault: nope is not a known dataset"), std::string::npos);
  EXPECT_NE(r.body.find(R"(<PARAM name="standardID" datatype="char" arraysize="*" value="ivo://ivoa.net/std/SODA#sync-1.0")"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find(R"(ref="ID")"), std::string::npos);
  for (const char* path : {"/api/files/DR1.calexp.v4.d001", "/api/files/DR1.calexp.v5.d001", "/api/files/nope",
                           "/api/files/..", "/api/files/DR1.calexp.v4.d001/preview.png"}) {
    EXPECT_EQ(call(app.router, "GET", path).status, 404) << path;
  }
}

}  // namespace
}  // namespace pixserve::services
