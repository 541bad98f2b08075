// The service framework: one declaration gives routes with DALI errors, VOSI
// capabilities and availability, the OpenAPI document and DataLink service
// descriptors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "dali/descriptor.hpp"
#include "dali/directory.hpp"
#include "dali/openapi.hpp"
#include "dali/results.hpp"
#include "dali/service.hpp"
#include "dali/vosi.hpp"
#include "db/database.hpp"
#include "service_test_support.hpp"

namespace pixserve::dali {
namespace {

using testing::call;
using testing::count;
using testing::Reply;

const ResultLimits kLimits{.default_maxrec = 3, .max_maxrec = 5};

std::vector<ParamSpec> demo_params() {
  std::vector<ParamSpec> p{
      {.name = "POS", .type = ParamType::shape, .description = "Search region", .unit = "deg", .ucd = "pos.outline;obs",
       .multiple = true, .standard = true},
      {.name = "BAND", .type = ParamType::enumerated, .options = {"g", "r", "i"}, .multiple = true},
      {.name = "SIZE", .type = ParamType::real, .unit = "deg", .min = 0.0, .max = 2.0, .default_value = "0.5"},
      {.name = "ID", .type = ParamType::text, .description = "Dataset", .ucd = "meta.id;meta.main",
       .ref = "obs_publisher_did"},
      {.name = "N", .type = ParamType::integer, .min = 1.0, .max = 10.0, .required = true, .example = "2"},
  };
  for (auto& r : result_params(kLimits)) p.push_back(std::move(r));
  return p;
}

// Echoes the parsed parameters as rows (name, count), one per value.
Service demo_service(bool healthy = true) {
  Endpoint query{
      .path = "query",
      .summary = "Demo query",
      .params = demo_params(),
      .standard_id = "ivo://ivoa.net/std/SIA#query-2.0",
      .interface_version = "2.0",
      .handler =
          [](const http::Request&, const ParsedParams& p) {
            auto rows = std::make_shared<std::vector<std::pair<std::string, std::int64_t>>>();
            for (const auto& b : p.all_as<std::string>("BAND")) rows->emplace_back("band=" + b, 1);
            for (const char* name : {"POS", "BAND", "SIZE", "ID", "N"}) {
              rows->emplace_back(name, static_cast<std::int64_t>(p.all(name).size()));
            }
            return table_response(p, kLimits,
                                  {.fields = {{.name = "name", .datatype = votable::Datatype::char_, .arraysize = "*"},
                                              {.name = "n", .datatype = votable::Datatype::long_}},
                                   .rows = [rows](const RowSink& emit) {
                                     for (const auto& [name, n] : *rows) {
                                       if (!emit(std::vector<votable::Value>{name, n})) return;
                                     }
                                   }});
          },
  };
  Endpoint fail{
      .path = "fail",
      .summary = "Fails on purpose",
      .params = {{.name = "HOW",
                  .type = ParamType::enumerated,
                  .options = {"404", "403", "crash", "http", "database"},
                  .required = true}},
      .methods = {"GET"},
      .handler =
          [](const http::Request&, const ParsedParams& p) -> http::Response {
            const auto how = *p.first<std::string>("HOW");
            if (how == "404") throw DaliError(404, "ID: no dataset 'x'");
            if (how == "403") throw DaliError(403, "ID: not yours");
            if (how == "http") throw http::HttpError(413, "too large");
            if (how == "database") {
              throw db::Unavailable("postgresql: the connection to db.internal:5432 was lost", "database unavailable");
            }
            throw std::runtime_error("secret detail: /etc/shadow at line 3");
          },
  };
  Service s{.name = "demo", .title = "Demo service", .description = "For tests", .endpoints = {query, fail}};
  s.checks.push_back({"always fine", [] { return CheckResult{true, "fine"}; }});
  if (!healthy) {
    s.checks.push_back({"disk", [] { return CheckResult{false, "full"}; }});
    s.checks.push_back({"throws", []() -> CheckResult { throw std::runtime_error("internal /path"); }});
  }
  return s;
}

struct Fixture {
  std::shared_ptr<ServiceCatalog> catalog = std::make_shared<ServiceCatalog>();
  http::Router router;
  explicit Fixture(bool healthy = true) {
    catalog->add(demo_service(healthy));
    Service other{.name = "other", .title = "Other", .endpoints = {}};
    other.tables = [](const http::Request&) { return http::Response::text(200, "<tables/>", "text/xml"); };
    catalog->add(std::move(other));
    install(router, catalog);
  }
};

std::string status_message(const Reply& r) {
  pugi::xml_document doc;
  if (!doc.load_string(r.body.c_str())) return "<not XML>";
  auto info = doc.select_node("/VOTABLE/RESOURCE/INFO[@name='QUERY_STATUS']").node();
  EXPECT_STREQ(info.attribute("value").value(), "ERROR") << r.body;
  return info.text().get();
}

TEST(DaliService, QueryThroughGetPostAndMultipartGivesTheSameResult) {
  Fixture f;
  const auto get = call(f.router, "GET", "/api/demo/query?POS=CIRCLE+10+20+1&band=g&BAND=r&n=2");
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(get.content_type, "application/x-votable+xml");
  EXPECT_NE(get.body.find("<TD>band=g</TD>"), std::string::npos) << get.body;
  const auto post = call(f.router, "POST", "/api/demo/query", "POS=CIRCLE+10+20+1&band=g&BAND=r&n=2",
                         "application/x-www-form-urlencoded");
  EXPECT_EQ(post.status, 200);
  const std::string boundary = "XyZ";
  std::string multipart;
  for (auto [k, v] : {std::pair{"POS", "CIRCLE 10 20 1"}, {"band", "g"}, {"BAND", "r"}, {"n", "2"}}) {
    multipart += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
  }
  multipart += "--" + boundary + "--\r\n";
  const auto mp = call(f.router, "POST", "/api/demo/query", multipart, "multipart/form-data; boundary=" + boundary);
  EXPECT_EQ(mp.status, 200);
  EXPECT_EQ(get.body, post.body);
  EXPECT_EQ(get.body, mp.body);
}

TEST(DaliService, BadInputIsA400DaliErrorNamingTheParameter) {
  Fixture f;
  for (const auto& [target, param] : std::vector<std::pair<std::string, std::string>>{
           {"/api/demo/query?N=2&POS=CIRCLE+10", "POS"},
           {"/api/demo/query?N=2&BAND=q", "BAND"},
           {"/api/demo/query?N=2&SIZE=3", "SIZE"},
           {"/api/demo/query?N=2&SIZE=1&size=1", "SIZE"},
           {"/api/demo/query", "N"},
           {"/api/demo/query?N=2&MAXREC=-1", "MAXREC"},
           {"/api/demo/query?N=2&RESPONSEFORMAT=fits", "RESPONSEFORMAT"},
           {"/api/demo/fail?HOW=nope", "HOW"},
       }) {
    const auto r = call(f.router, "GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.content_type, "application/x-votable+xml") << target;
    EXPECT_NE(status_message(r).find(param), std::string::npos) << target << ": " << r.body;
  }
}

TEST(DaliService, HandlerErrorsKeepTheirStatusAndInternalsNeverLeak) {
  Fixture f;
  auto r = call(f.router, "GET", "/api/demo/fail?HOW=404");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(status_message(r), "ID: no dataset 'x'");
  r = call(f.router, "GET", "/api/demo/fail?HOW=403");
  EXPECT_EQ(r.status, 403);
  r = call(f.router, "GET", "/api/demo/fail?HOW=http");
  EXPECT_EQ(r.status, 413);
  r = call(f.router, "GET", "/api/demo/fail?HOW=crash");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.content_type, "application/x-votable+xml");
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(r.body.find("/etc"), std::string::npos);
  EXPECT_NE(status_message(r).find("test-request-1"), std::string::npos) << r.body;
}

TEST(DaliService, ADatabaseThatIsAwayIsA503DaliErrorWithRetryAfterOnEveryBinding) {
  Fixture f;
  const auto check = [](const Reply& r) {
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.content_type, "application/x-votable+xml");
    EXPECT_GT(std::stoi(std::string(r.headers.get("Retry-After").value_or("0"))), 0);
    EXPECT_NE(status_message(r).find("the database is unavailable"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("db.internal"), std::string::npos) << "internals leak: " << r.body;
  };
  check(call(f.router, "GET", "/api/demo/fail?HOW=database"));
  // An endpoint with a binding of its own (UWS) whose routes know nothing
  // of the database: the catalogue answers for them.
  auto catalog = std::make_shared<ServiceCatalog>();
  Endpoint jobs{.path = "async", .summary = "Jobs", .params = {}, .methods = {"POST"}, .binding = Binding::uws};
  jobs.install_binding = [](http::Router& router, const std::string& path, const IdentifyHook&) {
    router.post(path, [](const http::Request&) -> http::Response {
      throw db::Unavailable("postgresql: db.internal:5432 did not answer", "database unavailable");
    });
    router.get(path, [](const http::Request&) { return http::Response::text(200, "jobs", "text/plain"); });
  };
  catalog->add(Service{.name = "jobs", .title = "Jobs", .endpoints = {jobs}});
  http::Router router;
  install(router, catalog);
  check(call(router, "POST", "/api/jobs/async", "a=1", "application/x-www-form-urlencoded"));
  EXPECT_EQ(call(router, "GET", "/api/jobs/async").status, 200);
}

TEST(DaliService, UnknownPathsUnderTheApiAre404DaliErrors) {
  Fixture f;
  auto r = call(f.router, "GET", "/api/nope/query");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/x-votable+xml");
  EXPECT_NE(status_message(r).find("/api/nope/query"), std::string::npos);
  r = call(f.router, "POST", "/api/demo/nothing", "a=1", "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 404);
  // A known endpoint with a method it does not take: 405 with Allow.
  r = call(f.router, "POST", "/api/demo/fail", "HOW=404", "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers.get("Allow").value_or(""), "GET");
  EXPECT_EQ(call(f.router, "PUT", "/api/demo/query").status, 405);
}

TEST(DaliService, MaxrecOverflowThroughTheRoute) {
  Fixture f;
  // 5 params + 2 bands = 7 rows; default MAXREC 3.
  auto r = call(f.router, "GET", "/api/demo/query?N=2&BAND=g&BAND=r");
  EXPECT_EQ(count(r.body, "<TR>"), 3U);
  EXPECT_NE(r.body.find(R"(value="OVERFLOW")"), std::string::npos);
  r = call(f.router, "GET", "/api/demo/query?N=2&BAND=g&BAND=r&MAXREC=100");  // lowered to the hard limit 5
  EXPECT_EQ(count(r.body, "<TR>"), 5U);
  EXPECT_NE(r.body.find(R"(value="OVERFLOW")"), std::string::npos);
  r = call(f.router, "GET", "/api/demo/query?N=2&MAXREC=0");
  EXPECT_EQ(count(r.body, "<TR>"), 0U);
  EXPECT_EQ(r.body.find("OVERFLOW"), std::string::npos);
  r = call(f.router, "GET", "/api/demo/query?N=2&RESPONSEFORMAT=csv&MAXREC=5");
  EXPECT_EQ(r.content_type.rfind("text/csv", 0), 0U);
  EXPECT_EQ(r.body.rfind("name,n\r\n", 0), 0U) << r.body;
}

TEST(DaliService, CapabilitiesDocument) {
  Fixture f;
  const auto r = call(f.router, "GET", "/api/demo/capabilities");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/xml", 0), 0U);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str())) << r.body;
  const auto root = doc.document_element();
  EXPECT_STREQ(root.name(), "vosi:capabilities");
  EXPECT_STREQ(root.attribute("xmlns:vosi").value(), "http://www.ivoa.net/xml/VOSICapabilities/v1.0");
  EXPECT_STREQ(root.attribute("xmlns:vs").value(), "http://www.ivoa.net/xml/VODataService/v1.1");
  EXPECT_STREQ(root.attribute("xmlns:xsi").value(), "http://www.w3.org/2001/XMLSchema-instance");

  std::vector<std::string> ids;
  for (auto cap : root.children("capability")) ids.push_back(cap.attribute("standardID").value());
  ASSERT_EQ(ids.size(), 4U);
  EXPECT_EQ(ids[0], "ivo://ivoa.net/std/VOSI#capabilities");
  EXPECT_EQ(ids[1], "ivo://ivoa.net/std/VOSI#availability");
  EXPECT_EQ(ids[2], "ivo://ivoa.net/std/SIA#query-2.0");
  EXPECT_EQ(ids[3], "") << "a pixserve-specific endpoint has no standardID";
  EXPECT_EQ(r.body.find("VOSI#tables"), std::string::npos) << "no tables declared";

  auto avail = root.find_child_by_attribute("capability", "standardID", "ivo://ivoa.net/std/VOSI#availability");
  EXPECT_STREQ(avail.child("interface").child_value("accessURL"), "http://example.org:8080/api/demo/availability");

  auto sia = root.find_child_by_attribute("capability", "standardID", "ivo://ivoa.net/std/SIA#query-2.0");
  auto i = sia.child("interface");
  EXPECT_STREQ(i.attribute("xsi:type").value(), "vs:ParamHTTP");
  EXPECT_STREQ(i.attribute("role").value(), "std");
  EXPECT_STREQ(i.attribute("version").value(), "2.0");
  EXPECT_STREQ(i.child("accessURL").attribute("use").value(), "base");
  EXPECT_STREQ(i.child_value("accessURL"), "http://example.org:8080/api/demo/query");
  std::vector<std::string> methods;
  for (auto q : i.children("queryType")) methods.push_back(q.text().get());
  EXPECT_EQ(methods, (std::vector<std::string>{"GET", "POST"}));
  EXPECT_STREQ(i.child_value("resultType"), "application/x-votable+xml");
  std::map<std::string, pugi::xml_node> params;
  for (auto p : i.children("param")) params[p.child_value("name")] = p;
  ASSERT_EQ(params.size(), demo_params().size());
  EXPECT_STREQ(params["POS"].attribute("std").value(), "true");
  EXPECT_STREQ(params["POS"].child_value("unit"), "deg");
  EXPECT_STREQ(params["POS"].child_value("ucd"), "pos.outline;obs");
  EXPECT_STREQ(params["POS"].child_value("dataType"), "string");
  EXPECT_STREQ(params["BAND"].attribute("std").value(), "false");
  EXPECT_STREQ(params["SIZE"].child_value("dataType"), "real");
  EXPECT_STREQ(params["N"].child_value("dataType"), "integer");
  EXPECT_STREQ(params["N"].attribute("use").value(), "required");
  EXPECT_STREQ(params["MAXREC"].attribute("std").value(), "true");
  // The fail endpoint is GET only.
  pugi::xml_node fail;
  for (auto cap : root.children("capability")) {
    if (!cap.attribute("standardID")) fail = cap;
  }
  ASSERT_TRUE(fail);
  EXPECT_STREQ(fail.child_value("description"), "Fails on purpose");
  EXPECT_FALSE(fail.child("interface").attribute("role"));
  EXPECT_EQ(count(r.body, "<queryType>"), 3U);

  // A configured base URL wins over the Host header; tables are listed when declared.
  const auto other = call(f.router, "GET", "/api/other/capabilities");
  EXPECT_NE(other.body.find("ivo://ivoa.net/std/VOSI#tables"), std::string::npos);
  EXPECT_NE(other.body.find("http://example.org:8080/api/other/tables"), std::string::npos);
  EXPECT_EQ(call(f.router, "GET", "/api/other/tables").body, "<tables/>");
}

TEST(DaliService, AvailabilityReflectsTheChecks) {
  Fixture good(true);
  auto r = call(good.router, "GET", "/api/demo/availability");
  ASSERT_EQ(r.status, 200);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  auto root = doc.document_element();
  EXPECT_STREQ(root.name(), "avail:availability");
  EXPECT_STREQ(root.attribute("xmlns:avail").value(), "http://www.ivoa.net/xml/VOSIAvailability/v1.0");
  EXPECT_STREQ(root.child_value("avail:available"), "true");
  EXPECT_NE(std::string(root.child_value("avail:upSince")).find('Z'), std::string::npos);
  EXPECT_NE(std::string(root.child_value("avail:note")).find("always fine: ok"), std::string::npos);

  Fixture bad(false);
  r = call(bad.router, "GET", "/api/demo/availability");
  EXPECT_EQ(r.status, 200) << "VOSI: an unavailable service still answers 200";
  doc.load_string(r.body.c_str());
  root = doc.document_element();
  EXPECT_STREQ(root.child_value("avail:available"), "false");
  EXPECT_NE(r.body.find("disk: FAILED - full"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("throws: FAILED"), std::string::npos);
  EXPECT_EQ(r.body.find("/path"), std::string::npos) << "a check's exception is logged, not published";
  // The other service has no checks and is up.
  r = call(bad.router, "GET", "/api/other/availability");
  EXPECT_NE(r.body.find("<avail:available>true</avail:available>"), std::string::npos);

  // The summary over all services is down when one is.
  r = call(bad.router, "GET", "/api/availability");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("<avail:available>false</avail:available>"), std::string::npos);
  EXPECT_NE(r.body.find("demo: disk: FAILED - full"), std::string::npos) << r.body;
  r = call(bad.router, "GET", "/api/availability.json");
  const auto json = nlohmann::json::parse(r.body);
  EXPECT_FALSE(json["available"].get<bool>());
  ASSERT_EQ(json["services"].size(), 2U);
  EXPECT_EQ(json["services"][0]["name"], "demo");
  EXPECT_FALSE(json["services"][0]["available"].get<bool>());
  EXPECT_TRUE(json["services"][1]["available"].get<bool>());
  EXPECT_EQ(json["services"][0]["checks"][1]["note"], "full");
}

TEST(DaliService, OpenApiDocument) {
  Fixture f;
  const auto r = call(f.router, "GET", "/openapi.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  const auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  EXPECT_EQ(doc["servers"][0]["url"], "http://example.org:8080");
  const auto& query = doc["paths"]["/api/demo/query"];
  ASSERT_TRUE(query.contains("get"));
  ASSERT_TRUE(query.contains("post"));
  EXPECT_EQ(query["get"]["x-ivoa-standard-id"], "ivo://ivoa.net/std/SIA#query-2.0");
  std::map<std::string, nlohmann::json> params;
  for (const auto& p : query["get"]["parameters"]) params[p["name"].get<std::string>()] = p;
  ASSERT_EQ(params.size(), demo_params().size());
  EXPECT_EQ(params["MAXREC"]["in"], "query");
  EXPECT_EQ(params["MAXREC"]["schema"]["type"], "integer");
  EXPECT_EQ(params["MAXREC"]["schema"]["minimum"], 0);
  EXPECT_EQ(params["SIZE"]["schema"]["type"], "number");
  EXPECT_EQ(params["SIZE"]["schema"]["maximum"], 2.0);
  EXPECT_EQ(params["SIZE"]["schema"]["default"], 0.5);
  EXPECT_EQ(params["BAND"]["schema"]["type"], "array");
  EXPECT_EQ(params["BAND"]["schema"]["items"]["enum"], nlohmann::json({"g", "r", "i"}));
  EXPECT_EQ(params["BAND"]["explode"], true);
  EXPECT_EQ(params["N"]["required"], true);
  EXPECT_EQ(params["N"]["example"], 2);
  EXPECT_EQ(params["POS"]["x-dali-type"], "shape");
  EXPECT_NE(params["POS"]["description"].get<std::string>().find("CIRCLE ra dec radius"), std::string::npos);
  EXPECT_NE(params["POS"]["description"].get<std::string>().find("Example:"), std::string::npos);
  EXPECT_TRUE(params["RESPONSEFORMAT"]["schema"].contains("enum"));

  const auto& body = query["post"]["requestBody"]["content"];
  ASSERT_TRUE(body.contains("application/x-www-form-urlencoded"));
  ASSERT_TRUE(body.contains("multipart/form-data"));
  EXPECT_EQ(body["application/x-www-form-urlencoded"]["schema"]["properties"]["BAND"]["type"], "array");
  EXPECT_EQ(body["application/x-www-form-urlencoded"]["encoding"]["BAND"]["explode"], true);
  EXPECT_EQ(body["multipart/form-data"]["schema"]["required"], nlohmann::json({"N"}));

  const auto& responses = query["get"]["responses"];
  EXPECT_TRUE(responses["200"]["content"].contains("application/x-votable+xml"));
  for (const char* code : {"400", "404", "500"}) EXPECT_TRUE(responses[code].contains("$ref")) << code;
  EXPECT_TRUE(doc["components"]["responses"]["BadRequest"]["content"].contains("application/x-votable+xml"));

  EXPECT_FALSE(doc["paths"]["/api/demo/fail"].contains("post"));
  EXPECT_TRUE(doc["paths"].contains("/api/demo/capabilities"));
  EXPECT_TRUE(doc["paths"].contains("/api/demo/availability"));
  EXPECT_TRUE(doc["paths"].contains("/api/other/tables"));
  EXPECT_TRUE(doc["paths"].contains("/api/availability"));
  std::set<std::string> operation_ids;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [method, op] : item.items()) {
      EXPECT_TRUE(operation_ids.insert(op["operationId"].get<std::string>()).second) << path << " " << method;
    }
  }
}

TEST(DaliService, ServiceDescriptor) {
  const Service s = demo_service();
  std::string out;
  votable::VotableWriter w([&out](std::string_view c) { out.append(c); });
  w.begin_document();
  w.begin_resource({.type = votable::ResourceType::results});
  w.begin_table({.name = "r", .fields = {{.name = "obs_publisher_did", .datatype = votable::Datatype::char_,
                                          .arraysize = "*", .id = "obs_publisher_did"}}});
  w.end_table();
  w.end_resource();
  write_service_descriptor(w, s.endpoints[0],
                           {.id = "demo-query", .access_url = "http://h/api/demo/query", .values = {{"N", "3"}},
                            .omit = {"MAXREC", "RESPONSEFORMAT"}});
  w.end_document();

  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(out.c_str())) << out;
  auto res = doc.select_node("/VOTABLE/RESOURCE[@type='meta']").node();
  ASSERT_TRUE(res) << out;
  EXPECT_STREQ(res.attribute("utype").value(), "adhoc:service");
  EXPECT_STREQ(res.attribute("ID").value(), "demo-query");
  EXPECT_STREQ(res.find_child_by_attribute("PARAM", "name", "standardID").attribute("value").value(),
               "ivo://ivoa.net/std/SIA#query-2.0");
  EXPECT_STREQ(res.find_child_by_attribute("PARAM", "name", "accessURL").attribute("value").value(),
               "http://h/api/demo/query");
  auto group = res.find_child_by_attribute("GROUP", "name", "inputParams");
  ASSERT_TRUE(group);
  std::map<std::string, pugi::xml_node> params;
  for (auto p : group.children("PARAM")) params[p.attribute("name").value()] = p;
  EXPECT_EQ(params.size(), 5U) << "MAXREC and RESPONSEFORMAT left out";
  EXPECT_STREQ(params["ID"].attribute("ref").value(), "obs_publisher_did");
  EXPECT_STREQ(params["ID"].attribute("value").value(), "");
  EXPECT_STREQ(params["N"].attribute("value").value(), "3");
  EXPECT_STREQ(params["N"].attribute("datatype").value(), "long");
  EXPECT_STREQ(params["POS"].attribute("datatype").value(), "char");
  EXPECT_STREQ(params["POS"].attribute("unit").value(), "deg");
  EXPECT_STREQ(params["POS"].child_value("DESCRIPTION"), "Search region");
  EXPECT_STREQ(params["SIZE"].child("VALUES").child("MIN").attribute("value").value(), "0");
  EXPECT_STREQ(params["SIZE"].child("VALUES").child("MAX").attribute("value").value(), "2");
  EXPECT_EQ(std::distance(params["BAND"].child("VALUES").children("OPTION").begin(),
                          params["BAND"].child("VALUES").children("OPTION").end()),
            3);

  // The PARAM of a DALI geometry type.
  const auto circle = descriptor_param({.name = "CIRCLE", .type = ParamType::circle, .unit = "deg"});
  EXPECT_EQ(circle.datatype, votable::Datatype::double_);
  EXPECT_EQ(circle.arraysize, "3");
  EXPECT_EQ(circle.xtype, "circle");
}

TEST(DaliService, DeclarationsAreChecked) {
  ServiceCatalog c;
  c.add(demo_service());
  EXPECT_THROW(c.add(demo_service()), std::invalid_argument);  // twice
  EXPECT_THROW(c.add(Service{.name = "Bad Name"}), std::invalid_argument);
  EXPECT_THROW(c.add(Service{.name = "availability"}), std::invalid_argument);
  const auto with = [](Endpoint e) { return Service{.name = "x", .endpoints = {std::move(e)}}; };
  const EndpointHandler h = [](const http::Request&, const ParsedParams&) { return http::Response::text(200, ""); };
  EXPECT_THROW(c.add(with({.path = "q"})), std::invalid_argument);  // no handler
  EXPECT_THROW(c.add(with({.path = "/q", .handler = h})), std::invalid_argument);
  EXPECT_THROW(c.add(with({.path = "capabilities", .handler = h})), std::invalid_argument);
  EXPECT_THROW(c.add(with({.path = "q", .params = {{.name = "A"}, {.name = "a"}}, .handler = h})), std::invalid_argument);
  EXPECT_THROW(c.add(with({.path = "q", .params = {{.name = "A", .type = ParamType::integer, .default_value = "x"}},
                           .handler = h})),
               std::invalid_argument);
  EXPECT_THROW(c.add(with({.path = "q", .params = {{.name = "E", .type = ParamType::enumerated}}, .handler = h})),
               std::invalid_argument);
  EXPECT_THROW(c.add(with({.path = "q", .handler = h, .example_params = {"NOPE"}})), std::invalid_argument);
  EXPECT_NO_THROW(c.add(with({.path = "q", .handler = h})));
}

TEST(DaliService, ExampleQueriesComeFromTheDeclarations) {
  Fixture f;
  const Service& demo = *f.catalog->find("demo");
  const Endpoint& query = demo.endpoints[0];
  // The required parameter with its declared example.
  EXPECT_EQ(example_query(*f.catalog, demo, query), "/api/demo/query?N=2");
  // Live values replace declared examples and join the query; an empty one
  // means "no example now".
  EXPECT_EQ(example_query(*f.catalog, demo, query, {{"id", "ivo://x/y?a b"}, {"n", "3"}}),
            "/api/demo/query?ID=ivo%3A%2F%2Fx%2Fy%3Fa%20b&N=3");
  EXPECT_EQ(example_query(*f.catalog, demo, query, {{"ID", ""}}), std::nullopt);
  Endpoint with_pos = query;
  with_pos.example_params = {"pos", "SIZE"};
  EXPECT_EQ(example_query(*f.catalog, demo, with_pos), "/api/demo/query?POS=CIRCLE%2010.0%20-30.0%200.5&SIZE=0.5&N=2");
  Endpoint post_only = query;
  post_only.methods = {"POST"};
  EXPECT_EQ(example_query(*f.catalog, demo, post_only), std::nullopt);
  Endpoint job_list = query;
  job_list.binding = Binding::uws;
  EXPECT_EQ(example_query(*f.catalog, demo, job_list), std::nullopt);
}

TEST(DaliService, ServicesDocumentFollowsTheCatalogue) {
  Fixture f(false);
  const auto r = call(f.router, "GET", "/api/services.json");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.headers.get("Cache-Control"), "no-store");
  const auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["available"], false);
  ASSERT_EQ(doc["services"].size(), 2U);
  const auto& demo = doc["services"][0];
  EXPECT_EQ(demo["name"], "demo");
  EXPECT_EQ(demo["path"], "/api/demo");
  // The standardIDs of the VOSI capabilities document, in its order.
  const auto caps = call(f.router, "GET", "/api/demo/capabilities");
  EXPECT_EQ(demo["standard_ids"].get<std::vector<std::string>>(), capability_standard_ids(caps.body));
  EXPECT_EQ(demo["standard_ids"],
            nlohmann::json({"ivo://ivoa.net/std/VOSI#capabilities", "ivo://ivoa.net/std/VOSI#availability",
                            "ivo://ivoa.net/std/SIA#query-2.0"}));
  EXPECT_EQ(demo["example"], "/api/demo/query?N=2");
  EXPECT_EQ(demo["endpoints"][1]["example"], "/api/demo/fail?HOW=404");
  EXPECT_EQ(demo["available"], false);
  EXPECT_EQ(demo["checks"].size(), 3U);
  EXPECT_EQ(call(f.router, "GET", demo["example"].get<std::string>()).status, 200);
  const auto& other = doc["services"][1];
  EXPECT_EQ(other["tables_url"], "/api/other/tables");
  EXPECT_FALSE(other.contains("example"));
  EXPECT_EQ(other["resources"], nlohmann::json::array());
  EXPECT_TRUE(nlohmann::json::parse(call(f.router, "GET", "/openapi.json").body)["paths"].contains("/api/services.json"));
}

}  // namespace
}  // namespace pixserve::dali
