// The publishing registry on the application router (services/registry.hpp):
// one record per catalogue service, whose capabilities are the service's
// own VOSI capabilities, and the TAP record's tableset its VOSI tables.
#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <set>
#include <string>
#include <vector>

#include "services/app.hpp"
#include "services/links.hpp"
#include "service_test_support.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace pixserve::services {
namespace {

// The standardIDs of the capability elements under `node`, sorted.
std::vector<std::string> standard_ids_under(pugi::xml_node node) {
  std::vector<std::string> out;
  for (const auto& cap : node.children("capability")) out.emplace_back(cap.attribute("standardID").value());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ServicesRegistry, OneRecordPerServiceWithItsCapabilities) {
  pixserve::testing::ScratchDir scratch("registry_records");
  auto repository = std::make_shared<SharedRepository>(repo::Repository::open_or_create(
      scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "oai", .authority = "example.org"})));
  AppOptions o;
  o.service.min_free_disk_bytes = 0;
  o.jobs.dir = scratch.dir / "jobs";
  o.publishing.page_size = 1000;
  const auto app = make_app(repository, o);

  const std::string arguments = "verb=ListRecords&metadataPrefix=ivo_vor";
  for (const bool post : {false, true}) {
    const auto reply = post ? testing::call(app.router, "POST", links::registry_oai(), arguments,
                                            "application/x-www-form-urlencoded")
                            : testing::call(app.router, "GET", links::registry_oai() + "?" + arguments);
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(reply.content_type.rfind("text/xml", 0), 0u);
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(reply.body.c_str()));
    std::set<std::string> identifiers;
    for (const auto& r : doc.select_nodes("//record/metadata/*")) {
      identifiers.insert(r.node().child("identifier").text().get());
    }
    for (const char* fixed : {"ivo://example.org", "ivo://example.org/org", "ivo://example.org/registry"}) {
      EXPECT_TRUE(identifiers.count(fixed)) << fixed;
    }
    for (const auto& service : app.catalog->services()) {
      const std::string id = "ivo://example.org/" + service.name;
      const auto found = doc.select_node(("//record/metadata/*[identifier='" + id + "']").c_str()).node();
      ASSERT_TRUE(found) << id;
      const auto caps = testing::call(app.router, "GET", links::service(service.name) + "/capabilities");
      pugi::xml_document served;
      ASSERT_TRUE(served.load_string(caps.body.c_str()));
      EXPECT_EQ(standard_ids_under(found), standard_ids_under(served.document_element())) << id;
      EXPECT_EQ(std::string(found.attribute("xsi:type").value()),
                service.tables ? "vs:CatalogService" : "vs:DataService");
      EXPECT_EQ(static_cast<bool>(found.child("tableset")), static_cast<bool>(service.tables)) << id;
    }
  }
}

}  // namespace
}  // namespace pixserve::services
