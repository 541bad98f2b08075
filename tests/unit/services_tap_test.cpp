// The TAP service on a small repository registered directly: visibility
// (embargoed and owner-only rows never appear), TAP_SCHEMA agreeing with
// the catalogue, DALI errors for bad input and hostile queries, MAXREC
// overflow, formats, inline uploads, VOSI documents and examples, the time
// limit, and async jobs through the UWS routes.
#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <chrono>
#include <set>
#include <thread>

#include "http/params.hpp"
#include "repo/astro_units.hpp"
#include "repo/obscore_schema.hpp"
#include "services/app.hpp"
#include "services/links.hpp"
#include "services/tap.hpp"
#include "tap/fetch.hpp"
#include "service_test_support.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace pixserve::services {
namespace {

using testing::call;

repo::DatasetRecord tap_calexp(std::int64_t visit, std::int64_t detector, double ra, double dec, std::string band) {
  auto r = pixserve::testing::test_calexp(visit, detector, std::move(band), ra, dec, 0.05);
  r.seeing = 0.5 + 0.1 * static_cast<double>(visit);
  return r;
}

struct Fixture {
  pixserve::testing::ScratchDir scratch;
  std::shared_ptr<SharedRepository> repository;
  App app;
  Fixture(AppOptions options = default_options()) : scratch("tap") {
    auto repo = repo::Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "testrepo", .authority = "example.org"}));
    auto& reg = repo.registry();
    reg.insert(tap_calexp(1, 1, 53.0, -28.0, "r"));
    reg.insert(tap_calexp(2, 1, 53.0, -28.0, "g"));
    reg.insert(tap_calexp(3, 2, 60.0, -30.0, "r"));
    auto secret = tap_calexp(4, 1, 53.0, -28.0, "r");
    secret.rights.policy = repo::ReadPolicy::owner;
    secret.rights.owner = "alice";
    reg.insert(secret);
    auto embargoed = tap_calexp(5, 1, 53.0, -28.0, "r");
    embargoed.rights.release_mjd = repo::mjd_now() + 1.0;
    reg.insert(embargoed);
    auto with_inputs = tap_calexp(6, 1, 53.0, -28.0, "i");
    with_inputs.inputs = {{embargoed.dataset_id, "raw"}, {"DR1.raw.v6.d1", "raw"}};
    reg.insert(with_inputs);
    repository = std::make_shared<SharedRepository>(std::move(repo));
    app = make_app(repository, options);
  }
  static AppOptions default_options() {
    AppOptions o;
    o.limits = {.default_maxrec = 100, .max_maxrec = 1000};
    o.service.min_free_disk_bytes = 0;
    return o;
  }
  testing::Reply sync(const std::string& query, const std::string& extra = "") {
    return call(app.router, "POST", "/api/tap/sync",
                "LANG=ADQL&QUERY=" + http::percent_encode(query) + extra, "application/x-www-form-urlencoded");
  }
};

std::vector<std::vector<std::string>> cells(const std::string& votable) {
  pugi::xml_document doc;
  EXPECT_TRUE(doc.load_string(votable.c_str())) << votable;
  std::vector<std::vector<std::string>> out;
  for (const auto& tr : doc.select_nodes("//TABLEDATA/TR")) {
    std::vector<std::string> row;
    for (auto td = tr.node().child("TD"); td; td = td.next_sibling("TD")) row.push_back(td.text().get());
    out.push_back(std::move(row));
  }
  return out;
}

std::string error_message(const std::string& votable) {
  pugi::xml_document doc;
  doc.load_string(votable.c_str());
  const auto info = doc.select_node("//INFO[@name='QUERY_STATUS']").node();
  EXPECT_STREQ(info.attribute("value").value(), "ERROR") << votable;
  return info.text().get();
}

TEST(ServicesTap, AnonymousQueriesSeeOnlyVisibleRows) {
  Fixture f;
  auto r = f.sync("SELECT obs_id, visit FROM ivoa.obscore ORDER BY visit");
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> visits;
  for (const auto& row : cells(r.body)) visits.push_back(row[1]);
  EXPECT_EQ(visits, (std::vector<std::string>{"1", "2", "3", "6"}));
  // Every way round: survey tables, aggregates, subqueries.
  r = f.sync("SELECT COUNT(*) FROM survey.datasets");
  EXPECT_EQ(cells(r.body).at(0).at(0), "4");
  r = f.sync("SELECT COUNT(*) FROM survey.visits WHERE visit IN (4, 5)");
  EXPECT_EQ(cells(r.body).at(0).at(0), "0");
  r = f.sync("SELECT MAX(visit) FROM ivoa.obscore WHERE obs_id IN (SELECT dataset_id FROM survey.datasets)");
  EXPECT_EQ(cells(r.body).at(0).at(0), "6");
  // The embargoed input is hidden; the unregistered one is listed.
  r = f.sync("SELECT input_id FROM survey.provenance");
  ASSERT_EQ(cells(r.body).size(), 1u) << r.body;
  EXPECT_EQ(cells(r.body)[0][0], "DR1.raw.v6.d1");
}

// access_url is the DataLink endpoint of the service catalogue (links.hpp)
// with the dataset's DID, whatever column order a query asks for.
TEST(ServicesTap, AccessUrlIsTheCataloguesDatalinkEndpoint) {
  Fixture f;
  auto r = f.sync("SELECT access_url, obs_id FROM ivoa.obscore WHERE visit = 1");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto rows = cells(r.body);
  ASSERT_EQ(rows.size(), 1u);
  // Absolute on the address the request came to (its Host), as SIAv2's.
  EXPECT_EQ(rows[0][0], "http://example.org:8080" + links::endpoint(links::kDatalink, "links") +
                            "?ID=ivo%3A%2F%2Fexample.org%2Ftestrepo%3F" + rows[0][1]);
  EXPECT_EQ(cells(f.sync("SELECT COUNT(*) FROM ivoa.obscore WHERE access_url LIKE "
                         "'http://example.org:8080/api/datalink/links?ID=%'").body)
                .at(0)
                .at(0),
            "4");
}

TEST(ServicesTap, ConeAndRegionQueriesMatchBruteForce) {
  Fixture f;
  auto r = f.sync("SELECT visit FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 53.0, "
                  "-28.0, 1.0)) = 1 ORDER BY visit");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(cells(r.body).size(), 3u);  // visits 1, 2, 6 (4 and 5 invisible, 3 elsewhere)
  r = f.sync("SELECT visit, s_region FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(60.1, -30.0, 0.06)) = 1");
  ASSERT_EQ(cells(r.body).size(), 1u) << r.body;
  EXPECT_EQ(cells(r.body)[0][0], "3");
  // Geometry output carries the DALI xtype and the ObsCore metadata.
  pugi::xml_document doc;
  doc.load_string(r.body.c_str());
  const auto field = doc.select_node("//FIELD[@name='s_region']").node();
  EXPECT_STREQ(field.attribute("xtype").value(), "adql:REGION");  // ObsCore 1.1: an STC-S region
  EXPECT_STREQ(field.attribute("datatype").value(), "char");
  EXPECT_EQ(cells(r.body)[0][1].rfind("POLYGON ICRS 59.95 -30.05", 0), 0u) << r.body;
  EXPECT_STREQ(field.attribute("utype").value(), "obscore:Char.SpatialAxis.Coverage.Support.Area");
  r = f.sync("SELECT POINT('ICRS', s_ra, s_dec) AS p, CIRCLE(s_ra, s_dec, 1) AS c FROM ivoa.obscore WHERE visit = 3");
  doc.load_string(r.body.c_str());
  EXPECT_STREQ(doc.select_node("//FIELD[@name='p']").node().attribute("xtype").value(), "point");
  EXPECT_STREQ(doc.select_node("//FIELD[@name='c']").node().attribute("xtype").value(), "circle");
  EXPECT_EQ(cells(r.body).at(0), (std::vector<std::string>{"60 -30", "60 -30 1"}));
}

TEST(ServicesTap, TapSchemaDescribesTheCatalogue) {
  Fixture f;
  auto r = f.sync("SELECT COUNT(*) FROM TAP_SCHEMA.columns WHERE table_name = 'ivoa.obscore'");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(cells(r.body).at(0).at(0), std::to_string(repo::obscore_columns().size()));
  r = f.sync("SELECT table_name FROM TAP_SCHEMA.tables ORDER BY table_index");
  std::set<std::string> tables;
  for (const auto& row : cells(r.body)) tables.insert(row[0]);
  for (const char* t : {"ivoa.obscore", "survey.visits", "survey.provenance", "survey.datasets", "TAP_SCHEMA.schemas",
                        "TAP_SCHEMA.tables", "TAP_SCHEMA.columns", "TAP_SCHEMA.keys", "TAP_SCHEMA.key_columns"}) {
    EXPECT_TRUE(tables.count(t)) << t;
  }
  // Every table of TAP_SCHEMA can be read, and only those.
  for (const auto& t : tables) {
    EXPECT_EQ(f.sync("SELECT TOP 1 * FROM " + t).status, 200) << t;
  }
  r = f.sync("SELECT datatype, arraysize, xtype, \"size\" FROM TAP_SCHEMA.columns WHERE column_name = 's_region'");
  EXPECT_EQ(cells(r.body).at(0), (std::vector<std::string>{"char", "*", "adql:REGION", ""}));
  r = f.sync("SELECT k.from_table, c.from_column FROM TAP_SCHEMA.keys AS k JOIN TAP_SCHEMA.key_columns AS c ON "
             "c.key_id = k.key_id WHERE k.target_table = 'survey.visits'");
  EXPECT_EQ(cells(r.body).at(0), (std::vector<std::string>{"ivoa.obscore", "visit"}));
}

TEST(ServicesTap, BadRequestsAndHostileQueriesGetDaliErrors) {
  Fixture f;
  auto r = call(f.app.router, "GET", "/api/tap/sync?LANG=SQL&QUERY=SELECT%201");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r.body).find("LANG"), std::string::npos);
  r = call(f.app.router, "GET", "/api/tap/sync?QUERY=SELECT%20TOP%201%20*%20FROM%20ivoa.obscore");
  EXPECT_EQ(r.status, 400);
  r = call(f.app.router, "GET", "/api/tap/sync?LANG=ADQL");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r.body).find("QUERY"), std::string::npos);
  r = f.sync("SELECT obs_id FORM ivoa.obscore");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r.body).find("line 1, column"), std::string::npos) << r.body;
  for (const char* q : {"SELECT * FROM sqlite_master", "SELECT * FROM dataset", "SELECT * FROM main.dataset",
                        "SELECT * FROM ivoa_obscore", "SELECT * FROM tap_ivoa_obscore", "SELECT owner FROM ivoa.obscore",
                        "SELECT * FROM ivoa.obscore; DROP TABLE dataset",
                        "SELECT load_extension('x') FROM ivoa.obscore"}) {
    r = f.sync(q);
    EXPECT_EQ(r.status, 400) << q << "\n" << r.body;
  }
  // Classic injections are just ADQL: they see the visible rows and nothing else.
  r = f.sync("SELECT obs_id FROM ivoa.obscore WHERE obs_id = '' OR 1=1 --'");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(cells(r.body).size(), 4u);
  // A quote inside a string literal stays a literal: nothing matches, nothing breaks.
  r = f.sync("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'x'' OR ''1''=''1'");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(cells(r.body).empty());
  EXPECT_EQ(f.sync("SELECT COUNT(*) FROM survey.datasets").status, 200);
  r = f.sync("SELECT TOP 1 obs_id FROM ivoa.obscore", "&RESPONSEFORMAT=application/fits");
  EXPECT_EQ(r.status, 400);
  r = f.sync(std::string(200'000, ' ') + "SELECT 1");
  EXPECT_EQ(r.status, 400);
  r = f.sync("SELECT TOP 1 obs_id FROM ivoa.obscore", "&REQUEST=getCapabilities");
  EXPECT_EQ(r.status, 400);
}

TEST(ServicesTap, MaxrecFormatsAndVersions) {
  Fixture f;
  auto r = f.sync("SELECT obs_id FROM ivoa.obscore", "&MAXREC=2");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(cells(r.body).size(), 2u);
  EXPECT_NE(r.body.find("value=\"OVERFLOW\""), std::string::npos);
  r = f.sync("SELECT TOP 2 obs_id FROM ivoa.obscore", "&MAXREC=2");
  EXPECT_EQ(r.body.find("OVERFLOW"), std::string::npos);
  r = f.sync("SELECT obs_id, visit FROM ivoa.obscore ORDER BY visit", "&FORMAT=csv");
  EXPECT_EQ(r.content_type.rfind("text/csv", 0), 0u);
  EXPECT_EQ(r.body.substr(0, 14), "obs_id,visit\r\n");
  r = f.sync("SELECT obs_id FROM ivoa.obscore", "&RESPONSEFORMAT=tsv");
  EXPECT_EQ(r.content_type.rfind("text/tab-separated-values", 0), 0u);
  r = call(f.app.router, "POST", "/api/tap/sync",
           "LANG=ADQL-2.0&RESPONSEFORMAT=votable/b2&QUERY=" + http::percent_encode("SELECT obs_id FROM ivoa.obscore"),
           "application/x-www-form-urlencoded");
  EXPECT_NE(r.body.find("<BINARY2>"), std::string::npos);
}

std::string upload_votable() {
  return "<?xml version=\"1.0\"?><VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\"><RESOURCE>"
         "<TABLE><FIELD name=\"id\" datatype=\"int\"/><FIELD name=\"ra\" datatype=\"double\" unit=\"deg\"/>"
         "<FIELD name=\"dec\" datatype=\"double\"/><DATA><TABLEDATA>"
         "<TR><TD>1</TD><TD>53.01</TD><TD>-28.01</TD></TR><TR><TD>2</TD><TD>10</TD><TD>10</TD></TR>"
         "<TR><TD>3</TD><TD>60.0</TD><TD>-30.0</TD></TR>"
         "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>";
}

std::string multipart(const std::vector<std::pair<std::string, std::string>>& params, const std::string& file_part,
                      const std::string& file) {
  std::string body;
  for (const auto& [k, v] : params) {
    body += "--XyZ\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
  }
  body += "--XyZ\r\nContent-Disposition: form-data; name=\"" + file_part + "\"; filename=\"t.xml\"\r\n"
          "Content-Type: application/x-votable+xml\r\n\r\n" + file + "\r\n--XyZ--\r\n";
  return body;
}

TEST(ServicesTap, InlineUploadsJoinTheCatalogue) {
  Fixture f;
  const std::string query =
      "SELECT u.id, o.visit FROM TAP_UPLOAD.mine AS u JOIN ivoa.obscore AS o ON "
      "CONTAINS(POINT('ICRS', u.ra, u.dec), o.s_region) = 1 ORDER BY u.id, o.visit";
  auto r = call(f.app.router, "POST", "/api/tap/sync",
                multipart({{"LANG", "ADQL"}, {"QUERY", query}, {"UPLOAD", "mine,param:tbl"}}, "tbl", upload_votable()),
                "multipart/form-data; boundary=XyZ");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(cells(r.body), (std::vector<std::vector<std::string>>{{"1", "1"}, {"1", "2"}, {"1", "6"}, {"3", "3"}}));
  // Upload errors name the table.
  r = call(f.app.router, "POST", "/api/tap/sync",
           multipart({{"LANG", "ADQL"}, {"QUERY", query}, {"UPLOAD", "mine,param:tbl"}}, "tbl", "<VOTABLE>"),
           "multipart/form-data; boundary=XyZ");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r.body).find("UPLOAD mine"), std::string::npos);
  // A bad geometry half-way through a table: refused, and the connection stays usable.
  const std::string bad_polygon =
      "<VOTABLE><RESOURCE><TABLE><FIELD name=\"p\" datatype=\"double\" arraysize=\"*\" xtype=\"polygon\"/>"
      "<DATA><TABLEDATA><TR><TD>1 2 3 4 5 6</TD></TR><TR><TD>1 2 3 4</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE>"
      "</VOTABLE>";
  for (int i = 0; i < 3; ++i) {
    r = call(f.app.router, "POST", "/api/tap/sync",
             multipart({{"LANG", "ADQL"}, {"QUERY", "SELECT * FROM TAP_UPLOAD.poly"}, {"UPLOAD", "poly,param:tbl"}},
                       "tbl", bad_polygon),
             "multipart/form-data; boundary=XyZ");
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(error_message(r.body).find("polygon"), std::string::npos) << r.body;
    EXPECT_EQ(f.sync("SELECT COUNT(*) FROM ivoa.obscore").status, 200);
  }
  r = f.sync("SELECT 1", "&UPLOAD=" + http::percent_encode("mine,http://127.0.0.1:1/secret"));
  EXPECT_EQ(r.status, 400);
  r = f.sync("SELECT 1", "&UPLOAD=" + http::percent_encode("mine,param:nothere"));
  EXPECT_EQ(r.status, 400);
  r = call(f.app.router, "POST", "/api/tap/sync",
           multipart({{"LANG", "ADQL"}, {"QUERY", "SELECT 1"}, {"UPLOAD", "bad name,param:tbl"}}, "tbl", upload_votable()),
           "multipart/form-data; boundary=XyZ");
  EXPECT_EQ(r.status, 400);
}

TEST(ServicesTap, UploadUrlsMustBePublicHttp) {
  for (const char* a : {"127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
                        "224.0.0.1", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1", "::", "not an address"}) {
    EXPECT_FALSE(tap::is_public_address(a)) << a;
  }
  for (const char* a : {"8.8.8.8", "130.246.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8"}) {
    EXPECT_TRUE(tap::is_public_address(a)) << a;
  }
  Fixture f;
  for (const char* url : {"mine,http://127.0.0.1:1/x", "mine,http://localhost/x", "mine,http://[::1]/x",
                          "mine,http://169.254.169.254/latest/meta-data", "mine,file:///etc/passwd",
                          "mine,ftp://example.org/x", "mine,http://user@example.org/x"}) {
    const auto r = f.sync("SELECT * FROM TAP_UPLOAD.mine", "&UPLOAD=" + http::percent_encode(url));
    EXPECT_EQ(r.status, 400) << url;
    EXPECT_NE(error_message(r.body).find("UPLOAD"), std::string::npos) << r.body;
  }
}

TEST(ServicesTap, VosiDocumentsAndExamples) {
  Fixture f;
  auto r = call(f.app.router, "GET", "/api/tap/capabilities");
  ASSERT_EQ(r.status, 200);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  const auto tap = doc.select_node("//capability[@standardID='ivo://ivoa.net/std/TAP']").node();
  ASSERT_TRUE(tap);
  EXPECT_STREQ(tap.attribute("xsi:type").value(), "tr:TableAccess");
  EXPECT_TRUE(tap.select_node("language/languageFeatures/feature[form='INTERSECTS']"));
  EXPECT_TRUE(tap.select_node("uploadMethod[@ivo-id='ivo://ivoa.net/std/TAPRegExt#upload-inline']"));
  EXPECT_TRUE(doc.select_node("//capability[@standardID='ivo://ivoa.net/std/DALI#examples']"));
  EXPECT_TRUE(tap.select_node("uploadMethod[@ivo-id='ivo://ivoa.net/std/TAPRegExt#upload-http']"));
  r = call(f.app.router, "GET", "/api/tap/tables");
  ASSERT_TRUE(doc.load_string(r.body.c_str()));
  EXPECT_TRUE(doc.select_node("//table[name='ivoa.obscore']/column[name='s_region']/dataType[@extendedType='adql:REGION']"));
  EXPECT_TRUE(doc.select_node("//table[name='ivoa.obscore']/foreignKey[targetTable='survey.visits']"));
  // Every example is valid XHTML with the DALI RDFa properties, and runs.
  r = call(f.app.router, "GET", "/api/tap/examples");
  ASSERT_EQ(r.status, 200);
  ASSERT_TRUE(doc.load_string(r.body.c_str())) << r.body;
  const auto examples = doc.select_nodes("//*[@typeof='example']");
  EXPECT_GE(examples.size(), 5u);
  for (const auto& e : examples) {
    const auto node = e.node();
    EXPECT_EQ(std::string("#") + node.attribute("id").value(), node.attribute("resource").value());
    EXPECT_TRUE(node.select_node(".//*[@property='name']"));
    const std::string query = node.select_node(".//*[@property='query']").node().text().get();
    const auto q = f.sync(query);
    EXPECT_EQ(q.status, 200) << query << "\n" << q.body;
  }
}

TEST(ServicesTap, SyncQueriesStopAtTheTimeLimit) {
  auto options = Fixture::default_options();
  options.tap.sync_time_limit = std::chrono::milliseconds(200);
  Fixture f(options);
  const auto start = std::chrono::steady_clock::now();
  const auto r = f.sync("SELECT COUNT(*) FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
                        "TAP_SCHEMA.columns AS d");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r.body).find("time limit"), std::string::npos) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(f.sync("SELECT COUNT(*) FROM ivoa.obscore").status, 200);  // the connection is fine afterwards
}

TEST(ServicesTap, QueryLengthLimitIsTheSetting) {
  // Beyond the ADQL parser's own default limit (100 000 characters): the
  // setting decides, the parser does not cut it shorter.
  auto options = Fixture::default_options();
  options.tap.max_query_length = 300'000;
  Fixture f(options);
  const auto r = f.sync(std::string(200'000, ' ') + "SELECT COUNT(*) FROM ivoa.obscore");
  EXPECT_EQ(r.status, 200) << r.body.substr(0, 2000);
  EXPECT_EQ(f.sync(std::string(300'000, ' ') + "SELECT 1").status, 400);
}

std::string location_job(const testing::Reply& r) {
  const auto loc = std::string(r.headers.get("Location").value_or(""));
  return loc.substr(loc.rfind('/') + 1);
}

TEST(ServicesTap, AsyncJobsRunQueriesWithUploadsAndCanBeAborted) {
  Fixture f;
  const std::string query = "SELECT u.id FROM TAP_UPLOAD.mine AS u WHERE u.id >= 2 ORDER BY u.id";
  auto r = call(f.app.router, "POST", "/api/tap/async",
                multipart({{"LANG", "ADQL"}, {"QUERY", query}, {"UPLOAD", "mine,param:tbl"}, {"PHASE", "RUN"}}, "tbl",
                          upload_votable()),
                "multipart/form-data; boundary=XyZ");
  ASSERT_EQ(r.status, 303) << r.body;
  const std::string job = location_job(r);
  r = call(f.app.router, "GET", "/api/tap/async/" + job + "?WAIT=20&PHASE=EXECUTING");
  for (int i = 0; i < 100 && r.body.find("COMPLETED") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = call(f.app.router, "GET", "/api/tap/async/" + job);
  }
  ASSERT_NE(r.body.find("COMPLETED"), std::string::npos) << r.body;
  r = call(f.app.router, "GET", "/api/tap/async/" + job + "/results/result");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(cells(r.body), (std::vector<std::vector<std::string>>{{"2"}, {"3"}}));

  // A bad query ends in ERROR with the DALI message.
  r = call(f.app.router, "POST", "/api/tap/async", "LANG=ADQL&PHASE=RUN&QUERY=SELECT%20*%20FROM%20nowhere",
           "application/x-www-form-urlencoded");
  const std::string bad = location_job(r);
  for (int i = 0; i < 100 && r.body.find("ERROR") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = call(f.app.router, "GET", "/api/tap/async/" + bad);
  }
  EXPECT_NE(r.body.find("nowhere"), std::string::npos) << r.body;

  // A long query is aborted: the phase is ABORTED at once and the worker comes back.
  r = call(f.app.router, "POST", "/api/tap/async",
           "LANG=ADQL&PHASE=RUN&QUERY=" + http::percent_encode("SELECT COUNT(*) FROM TAP_SCHEMA.columns AS a, "
                                                               "TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
                                                               "TAP_SCHEMA.columns AS d, TAP_SCHEMA.columns AS e"),
           "application/x-www-form-urlencoded");
  const std::string slow = location_job(r);
  call(f.app.router, "GET", "/api/tap/async/" + slow + "?WAIT=5&PHASE=QUEUED");
  r = call(f.app.router, "POST", "/api/tap/async/" + slow + "/phase", "PHASE=ABORT", "application/x-www-form-urlencoded");
  EXPECT_EQ(r.status, 303);
  r = call(f.app.router, "GET", "/api/tap/async/" + slow + "/phase");
  EXPECT_EQ(r.body.substr(0, 7), "ABORTED");
  const auto start = std::chrono::steady_clock::now();
  while (f.app.jobs->runner().executing() > 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(f.app.jobs->runner().executing(), 0u);
}

}  // namespace
}  // namespace pixserve::services
