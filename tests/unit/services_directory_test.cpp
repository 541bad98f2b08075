// The service directory of `pixserve serve` (/api/services.json, which the
// landing page draws): exactly the services of the catalogue, each with the
// standardIDs of its VOSI capabilities, its endpoints, its availability and
// an example query that answers; examples that need data (an ID, a HiPS
// map) come from the repository, and are left out when it has none.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "dali/directory.hpp"
#include "services/app.hpp"
#include "service_test_support.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace pixserve::services {
namespace {

using testing::call;
using json = nlohmann::json;

repo::DatasetRecord directory_calexp(std::int64_t visit, double ra, double dec) {
  auto r = pixserve::testing::test_calexp(visit, 1, "r", ra, dec, 0.05);
  r.s_fov = 0.14;
  return r;
}

struct Server {
  pixserve::testing::ScratchDir scratch;
  std::shared_ptr<SharedRepository> repository;
  App app;
  Server(const std::string& name, bool with_data) : scratch(name), repository(open(scratch, with_data)),
                                                    app(make_app(repository, options())) {}

  static std::shared_ptr<SharedRepository> open(const pixserve::testing::ScratchDir& scratch, bool with_data) {
    auto repo = repo::Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "testrepo", .authority = "example.org"}));
    if (with_data) {
      auto secret = directory_calexp(1, 60.0, -30.0);  // first by ID, but no example may name it
      secret.rights.policy = repo::ReadPolicy::owner;
      secret.rights.owner = "alice";
      repo.registry().insert(secret);
      repo.registry().insert(directory_calexp(2, 53.0, -28.0));
    }
    return std::make_shared<SharedRepository>(std::move(repo));
  }
  static AppOptions options() {
    AppOptions o;
    o.limits = {.default_maxrec = 100, .max_maxrec = 1000};
    o.service.min_free_disk_bytes = 0;
    return o;
  }
  json directory() const {
    const auto r = call(app.router, "GET", "/api/services.json");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    return json::parse(r.body);
  }
};

const json& service(const json& doc, const std::string& name) {
  for (const auto& s : doc["services"]) {
    if (s["name"] == name) return s;
  }
  throw std::out_of_range("no service " + name);
}

TEST(ServicesDirectory, ListsExactlyTheCatalogueWithItsStandards) {
  Server server("directory_catalogue", true);
  const auto doc = server.directory();
  const auto& services = server.app.catalog->services();
  ASSERT_EQ(doc["services"].size(), services.size());
  for (std::size_t i = 0; i < services.size(); ++i) {
    const auto& s = doc["services"][i];
    const auto& declared = services[i];
    SCOPED_TRACE(declared.name);
    EXPECT_EQ(s["name"], declared.name);
    EXPECT_EQ(s["title"], declared.title);
    EXPECT_EQ(s["path"], "/api/" + declared.name);
    // The standardIDs are those of the service's VOSI capabilities document
    // (TAP writes its own), which must list them.
    const auto caps = call(server.app.router, "GET", s["capabilities_url"].get<std::string>());
    ASSERT_EQ(caps.status, 200);
    const auto ids = dali::capability_standard_ids(caps.body);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(s["standard_ids"].get<std::vector<std::string>>(), ids);
    ASSERT_EQ(s["endpoints"].size(), declared.endpoints.size());
    for (std::size_t k = 0; k < declared.endpoints.size(); ++k) {
      EXPECT_EQ(s["endpoints"][k]["path"], server.app.catalog->path_of(declared, declared.endpoints[k]));
    }
    EXPECT_EQ(s["available"], true);
    EXPECT_EQ(s["checks"].size(), declared.checks.size());
  }
  std::vector<std::string> names;
  for (const auto& s : doc["services"]) names.push_back(s["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"datasets", "sia", "datalink", "tap", "soda", "photometry", "hips", "moc"}));
  EXPECT_EQ(service(doc, "sia")["standard_ids"].back(), "ivo://ivoa.net/std/SIA#query-2.0");
  EXPECT_NE(std::find(service(doc, "tap")["standard_ids"].begin(), service(doc, "tap")["standard_ids"].end(),
                      "ivo://ivoa.net/std/TAP"),
            service(doc, "tap")["standard_ids"].end());
  EXPECT_EQ(service(doc, "tap")["tables_url"], "/api/tap/tables");
  // The availability is that of /api/availability.json, service by service.
  const auto availability = json::parse(call(server.app.router, "GET", "/api/availability.json").body);
  ASSERT_EQ(availability["services"].size(), doc["services"].size());
  for (std::size_t i = 0; i < doc["services"].size(); ++i) {
    EXPECT_EQ(doc["services"][i]["name"], availability["services"][i]["name"]);
  }
  EXPECT_EQ(doc["available"], true);
}

TEST(ServicesDirectory, ExamplesAnswerAndNameDataThatExists) {
  Server server("directory_examples", true);
  const auto doc = server.directory();
  for (const auto& s : doc["services"]) {
    SCOPED_TRACE(s["name"].get<std::string>());
    if (s["name"] == "hips") {
      EXPECT_EQ(s["example"], "/api/hips/list");  // no maps: progenitors has no example
      EXPECT_FALSE(s["endpoints"][1].contains("example"));
      EXPECT_EQ(s["resources"], json::array());
    }
    ASSERT_TRUE(s.contains("example"));
    const auto example = s["example"].get<std::string>();
    // SODA and photometry would need the image file, which these records do not have.
    if (s["name"] != "soda" && s["name"] != "photometry") {
      EXPECT_EQ(call(server.app.router, "GET", example).status, 200) << example;
    }
  }
  EXPECT_EQ(service(doc, "datasets")["example"], "/api/datasets/query?POS=CIRCLE%2053.0%20-28.0%200.1");
  // The public dataset, never the private one.
  EXPECT_EQ(service(doc, "datalink")["example"],
            "/api/datalink/links?ID=ivo%3A%2F%2Fexample.org%2Ftestrepo%3FDR1.calexp.v2.d001");
  EXPECT_EQ(service(doc, "soda")["example"],
            "/api/soda/sync?ID=ivo%3A%2F%2Fexample.org%2Ftestrepo%3FDR1.calexp.v2.d001&"
            "POS=CIRCLE%2053.000000%20-28.000000%200.035000");
  // TAP's endpoints: sync, async (a job list, no example link), examples.
  const auto& tap_endpoints = service(doc, "tap")["endpoints"];
  ASSERT_EQ(tap_endpoints.size(), 3u);
  EXPECT_FALSE(tap_endpoints[1].contains("example"));
  EXPECT_EQ(tap_endpoints[2]["example"], "/api/tap/examples");
}

TEST(ServicesDirectory, AnEmptyRepositoryGetsNoExampleThatWouldFail) {
  Server server("directory_empty", false);
  const auto doc = server.directory();
  EXPECT_FALSE(service(doc, "datalink").contains("example"));
  EXPECT_FALSE(service(doc, "soda").contains("example"));
  EXPECT_EQ(service(doc, "sia")["example"], "/api/sia/query?POS=CIRCLE%2053.0%20-28.0%200.1");
  for (const auto& s : doc["services"]) {
    if (s.contains("example")) {
      EXPECT_EQ(call(server.app.router, "GET", s["example"].get<std::string>()).status, 200) << s["example"];
    }
  }
}

}  // namespace
}  // namespace pixserve::services
