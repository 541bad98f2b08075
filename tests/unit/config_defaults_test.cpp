// Each default exists once: what the services advertise and what the
// components' own option structs start from are the declared settings.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <pugixml.hpp>
#include <string>

#include "config/config.hpp"
#include "repo/repository.hpp"
#include "service_test_support.hpp"
#include "services/app.hpp"
#include "tap/query.hpp"
#include "test_scratch.hpp"
#include "uws/runner.hpp"
#include "uws/store.hpp"

namespace pixserve::config {
namespace {

std::string seconds_text(std::chrono::milliseconds ms) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ms).count());
}

// TAP's capabilities (TAPRegExt) state the limits of the configuration it
// was made from: the defaults, and whatever a file sets instead.
TEST(ConfigDefaults, TapCapabilitiesStateTheConfiguredLimits) {
  pixserve::testing::ScratchDir scratch("caps");
  auto repository = std::make_shared<services::SharedRepository>(
      repo::Repository::open_or_create(scratch.dir / "repo", {.name = "caps", .authority = "example.org"}));
  for (const std::string& yaml : {std::string(), std::string("service:\n  maxrec_default: 7\n  maxrec_limit: 70\n"
                                                             "jobs:\n  execution_duration_s: 30\n  retention_s: 3600\n"
                                                             "tap:\n  max_upload_mb: 2\n")}) {
    const Config config = from_yaml(yaml);
    services::AppOptions options = app_options(config);
    options.service.min_free_disk_bytes = 0;
    options.jobs.dir = scratch.dir / "jobs";
    const services::App app = services::make_app(repository, options);
    const auto reply = pixserve::testing::call(app.router, "GET", "/api/tap/capabilities");
    ASSERT_EQ(reply.status, 200) << reply.body;
    pugi::xml_document doc;
    ASSERT_TRUE(doc.load_string(reply.body.c_str()));
    const auto text = [&doc](const char* path) { return std::string(doc.select_node(path).node().text().get()); };
    SCOPED_TRACE(yaml.empty() ? "defaults" : yaml);
    EXPECT_EQ(text("//outputLimit/default"), std::to_string(config.results.default_maxrec));
    EXPECT_EQ(text("//outputLimit/hard"), std::to_string(config.results.max_maxrec));
    EXPECT_EQ(text("//uploadLimit/hard"), std::to_string(config.tap.max_upload_bytes));
    EXPECT_EQ(text("//executionDuration/default"), seconds_text(config.jobs.execution_duration));
    EXPECT_EQ(text("//executionDuration/hard"), seconds_text(config.jobs.max_execution_duration));
    EXPECT_EQ(text("//retentionPeriod/default"), seconds_text(config.jobs.retention));
    EXPECT_EQ(text("//retentionPeriod/hard"), seconds_text(config.jobs.max_retention));
  }
}

// The option structs of the job store, the job runner and the TAP engine
// start from the declared settings, not from defaults of their own.
TEST(ConfigDefaults, ComponentOptionsStartFromTheSettings) {
  const Config defaults;
  const uws::StoreOptions store;
  EXPECT_EQ(store.default_execution_duration, uws::whole_seconds(defaults.jobs.execution_duration));
  EXPECT_EQ(store.max_execution_duration, uws::whole_seconds(defaults.jobs.max_execution_duration));
  EXPECT_EQ(store.default_retention, uws::whole_seconds(defaults.jobs.retention));
  EXPECT_EQ(store.max_retention, uws::whole_seconds(defaults.jobs.max_retention));
  const uws::RunnerOptions runner;
  EXPECT_EQ(runner.threads, defaults.jobs.threads);
  EXPECT_EQ(runner.max_queued, defaults.jobs.max_queued);
  EXPECT_EQ(tap::EngineOptions{}.settings, defaults.tap);
  EXPECT_EQ(tap::QueryRequest{}.maxrec, defaults.results.default_maxrec);
  const services::AppOptions app = app_options(defaults);
  EXPECT_EQ(app.limits, services::AppOptions{}.limits);
  EXPECT_EQ(app.jobs, services::AppOptions{}.jobs);
  EXPECT_EQ(app.tap, services::AppOptions{}.tap);
}

}  // namespace
}  // namespace pixserve::config
