// Request interpretation without a server: parameters (query, urlencoded and
// multipart bodies), paths, the router and the file helpers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "http/files.hpp"
#include "http/params.hpp"
#include "http/request.hpp"
#include "http/router.hpp"
#include "test_scratch.hpp"

using namespace pixserve::http;

namespace {

int status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const HttpError& e) {
    return e.status();
  }
  return 0;
}

Request make(std::string method, std::string target, std::string body = {}, std::string content_type = {},
             const RequestOptions& options = {}) {
  RawRequest raw;
  raw.method = std::move(method);
  raw.target = std::move(target);
  if (!content_type.empty()) raw.headers.add("Content-Type", content_type);
  raw.headers.add("Host", "localhost:8080");
  raw.body = Blob(std::move(body));
  return Request::parse(std::move(raw), options);
}

// Collects what a streaming producer writes.
class StringWriter : public BodyWriter {
 public:
  bool write(std::string_view bytes) override {
    out.append(bytes);
    return true;
  }
  bool flush() override { return true; }
  std::string out;
};

std::string body_of(const Response& r) {
  if (auto* s = std::get_if<std::string>(&r.body)) return *s;
  StringWriter w;
  std::get<StreamBody>(r.body).producer(w);
  return w.out;
}

std::filesystem::path test_dir(const std::string& name) {
  auto dir = pixserve::testing::test_scratch_dir(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

// ---------------------------------------------------------------- decoding

TEST(HttpParams, PercentDecodingAndPlus) {
  EXPECT_EQ(percent_decode("a+b%20c%2Bd%2fe", true), "a b c+d/e");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
  EXPECT_EQ(percent_decode("%C3%A9", true), "\xC3\xA9");
  for (const char* bad : {"%", "%4", "%zz", "a%g1", "abc%"})
    EXPECT_EQ(status_of([&] { percent_decode(bad, true); }), 400) << bad;
}

TEST(HttpParams, UrlencodedRepeatedAndCaseInsensitive) {
  Parameters p;
  parse_urlencoded("POS=CIRCLE+10+20+1&pos=CIRCLE%2012%2022%201&&BAND=0.5e-6+0.6e-6&flag&empty=", p);
  EXPECT_EQ(p.size(), 5u);
  EXPECT_EQ(p.all("Pos"), (std::vector<std::string>{"CIRCLE 10 20 1", "CIRCLE 12 22 1"}));
  EXPECT_EQ(p.first("band").value(), "0.5e-6 0.6e-6");
  EXPECT_TRUE(p.has("FLAG"));
  EXPECT_EQ(p.first("flag").value(), "");
  EXPECT_EQ(p.first("EMPTY").value(), "");
  EXPECT_FALSE(p.has("missing"));
  EXPECT_FALSE(p.first("missing").has_value());
  EXPECT_EQ(p.names(), (std::vector<std::string>{"POS", "BAND", "flag", "empty"}));
  // values stay case-sensitive
  Parameters q;
  parse_urlencoded("id=AbC", q);
  EXPECT_EQ(q.first("ID").value(), "AbC");
  EXPECT_EQ(status_of([] {
              Parameters x;
              parse_urlencoded("a=%2", x);
            }),
            400);
}

TEST(HttpParams, HeaderValueParameters) {
  auto v = parse_header_value(R"(Form-Data; name="up load"; filename="a \"q\".vot" ; x=plain)");
  EXPECT_EQ(v.value, "form-data");
  EXPECT_EQ(v.param("NAME").value(), "up load");
  EXPECT_EQ(v.param("filename").value(), "a \"q\".vot");
  EXPECT_EQ(v.param("x").value(), "plain");
  EXPECT_FALSE(v.param("y"));
}

// ---------------------------------------------------------------- requests

TEST(HttpParams, QueryThenUrlencodedBody) {
  auto r = make("POST", "/api/sia/query?MAXREC=10&pos=A", "POS=B&collection=DR1&pos=C",
                "application/x-www-form-urlencoded; charset=UTF-8");
  EXPECT_EQ(r.path(), "/api/sia/query");
  EXPECT_EQ(r.query(), "MAXREC=10&pos=A");
  EXPECT_EQ(r.params().all("POS"), (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_EQ(r.params().first("MaxRec").value(), "10");
  EXPECT_EQ(r.params().first("COLLECTION").value(), "DR1");
  EXPECT_TRUE(r.body().empty());  // consumed as a form
}

TEST(HttpParams, GetBodyIsNotAForm) {
  auto r = make("GET", "/x?a=1", "b=2", "application/x-www-form-urlencoded");
  EXPECT_FALSE(r.params().has("b"));
  EXPECT_EQ(r.body().data(), "b=2");
}

TEST(HttpParams, OtherBodiesAreKeptRaw) {
  auto r = make("POST", "/x", "{\"a\":1}", "application/json");
  EXPECT_TRUE(r.params().empty());
  EXPECT_EQ(r.body().read_all(), "{\"a\":1}");
}

TEST(HttpParams, MultipartFieldsAndFile) {
  std::string body =
      "preamble\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"LANG\"\r\n\r\n"
      "ADQL\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"query\"\r\n\r\n"
      "SELECT *\r\nFROM t\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"empty\"\r\n\r\n"
      "\r\n"
      "--XyZ\r\n"
      "Content-Disposition: form-data; name=\"t1\"; filename=\"table.vot\"\r\n"
      "Content-Type: application/x-votable+xml\r\n\r\n"
      "<VOTABLE>\r\n--Xy</VOTABLE>\r\n"
      "--XyZ--\r\n"
      "epilogue";
  auto r = make("POST", "/api/tap/sync?REQUEST=doQuery", body, "multipart/form-data; boundary=\"XyZ\"");
  EXPECT_EQ(r.params().first("request").value(), "doQuery");
  EXPECT_EQ(r.params().first("lang").value(), "ADQL");
  EXPECT_EQ(r.params().first("QUERY").value(), "SELECT *\r\nFROM t");
  EXPECT_EQ(r.params().first("empty").value(), "");
  ASSERT_EQ(r.files().size(), 1u);
  const UploadedFile* f = r.file("T1");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->filename, "table.vot");
  EXPECT_EQ(f->content_type, "application/x-votable+xml");
  EXPECT_TRUE(f->content.in_memory());
  EXPECT_EQ(f->content.data(), "<VOTABLE>\r\n--Xy</VOTABLE>");
  EXPECT_FALSE(r.params().has("t1"));
}

TEST(HttpParams, MultipartLargeFileIsSpooledAndBodyFromFile) {
  auto dir = test_dir("spool");
  std::string big(3 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"up\"; filename=\"f.bin\"\r\n\r\n" +
      big + "\r\n--b--\r\n";
  // The body itself spooled to a file too, as the server does for large bodies.
  BlobWriter writer(1 << 20, dir);
  writer.append(body);
  Blob spooled = std::move(writer).finish();
  ASSERT_FALSE(spooled.in_memory());
  EXPECT_TRUE(std::filesystem::exists(spooled.path()));

  RawRequest raw;
  raw.method = "POST";
  raw.target = "/u";
  raw.headers.add("Content-Type", "multipart/form-data; boundary=b");
  raw.body = spooled;
  RequestOptions options;
  options.multipart.spool_threshold = 1 << 20;
  options.multipart.spool_dir = dir;
  std::filesystem::path file_path;
  {
    auto r = Request::parse(std::move(raw), options);
    EXPECT_EQ(r.params().first("a").value(), "x");
    const UploadedFile* f = r.file("up");
    ASSERT_NE(f, nullptr);
    EXPECT_FALSE(f->content.in_memory());
    EXPECT_EQ(f->content.size(), big.size());
    EXPECT_EQ(f->content.read_all(), big);
    file_path = f->content.path();
    EXPECT_TRUE(std::filesystem::exists(file_path));
  }
  EXPECT_FALSE(std::filesystem::exists(file_path));  // removed with the request
  spooled = Blob();
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST(HttpParams, MalformedMultipartIs400) {
  auto mp = [](std::string body, std::string ct = "multipart/form-data; boundary=b") {
    return status_of([&] { make("POST", "/u", body, ct); });
  };
  EXPECT_EQ(mp("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx"), 400);  // no closing boundary
  EXPECT_EQ(mp("nothing here"), 400);
  EXPECT_EQ(mp("--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--"), 400);  // no name
  EXPECT_EQ(mp("--b--", "multipart/form-data"), 400);                             // no boundary
  EXPECT_EQ(mp("--b--"), 0);                                                      // empty form is fine
}

TEST(HttpParams, PathNormalization) {
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("/api//sia/./query"), "/api/sia/query");
  EXPECT_EQ(normalize_path("/a/b/../c"), "/a/c");
  EXPECT_EQ(normalize_path("/a/b/"), "/a/b/");
  EXPECT_EQ(normalize_path("/a/.."), "/");
  EXPECT_EQ(normalize_path("/a/%41%2e%2E/b"), "/a/A../b");
  EXPECT_EQ(normalize_path("/hips/a+b%20c"), "/hips/a+b c");
  for (const char* bad :
       {"/..", "/a/../..", "/%2e%2e/etc/passwd", "/a%00b", "/a%0d%0aX: y", "/%zz", "/a%2", "relative"})
    EXPECT_EQ(status_of([&] { normalize_path(bad); }), 400) << bad;
  EXPECT_EQ(status_of([] { make("GET", "/a/../../x"); }), 400);
  EXPECT_EQ(status_of([] { make("GET", "/a?x=%G0"); }), 400);
}

TEST(HttpParams, TargetForms) {
  auto r = make("GET", "http://example.org:81/api/x?a=1");
  EXPECT_EQ(r.path(), "/api/x");
  EXPECT_EQ(r.query(), "a=1");
  EXPECT_EQ(r.target(), "http://example.org:81/api/x?a=1");
  EXPECT_EQ(status_of([] { make("OPTIONS", "*"); }), 400);
}

TEST(HttpParams, RequestIdAndHeaders) {
  RawRequest raw;
  raw.headers.add("x-request-id", "client-id.42");
  raw.headers.add("Accept", "text/xml");
  auto r = Request::parse(raw);
  EXPECT_EQ(r.request_id(), "client-id.42");
  EXPECT_EQ(r.header("ACCEPT").value(), "text/xml");
  raw.headers.set("X-Request-Id", "bad id\twith spaces");
  auto r2 = Request::parse(raw);
  EXPECT_EQ(r2.request_id().size(), 16u);
  EXPECT_NE(r2.request_id(), random_request_id());
  EXPECT_TRUE(valid_request_id(r2.request_id()));
}

TEST(HttpParams, BaseUrl) {
  RequestOptions none;
  none.fallback_host = "127.0.0.1:9000";
  EXPECT_EQ(base_url(make("GET", "/", "", "", none)), "http://localhost:8080");
  RequestOptions configured = none;
  configured.base_url = "https://data.example.org/pixserve";
  EXPECT_EQ(base_url(make("GET", "/", "", "", configured)), "https://data.example.org/pixserve");

  RawRequest raw;
  raw.headers.add("Host", "evil.example\r\nX-Injected: 1");
  EXPECT_EQ(Request::parse(raw, none).base_url(), "http://127.0.0.1:9000");
  EXPECT_TRUE(valid_host("[::1]:8080"));
  EXPECT_TRUE(valid_host("data.example.org"));
  EXPECT_FALSE(valid_host("a b"));
  EXPECT_FALSE(valid_host("host:"));
  EXPECT_FALSE(valid_host("host:123456"));
  EXPECT_FALSE(valid_host("host/path"));
  EXPECT_FALSE(valid_host(""));
}

// ---------------------------------------------------------------- router

TEST(HttpRouter, MatchesExactParamsAndRest) {
  Router router;
  router.get_post("/api/sia/query", [](const Request&) { return Response::text(200, "sia"); });
  router.get("/api/tap/async/{job}",
             [](const Request& r) { return Response::text(200, "job " + std::string(r.path_param("job"))); });
  router.get("/api/tap/async/{job}/phase",
             [](const Request& r) { return Response::text(200, "phase " + std::string(r.path_param("job"))); });
  router.get("/api/hips/{rest...}",
             [](const Request& r) { return Response::text(200, "hips [" + std::string(r.path_param("rest")) + "]"); });
  router.get("/api/hips/properties", [](const Request&) { return Response::text(200, "props"); });
  router.get("/", [](const Request&) { return Response::text(200, "portal"); });

  auto call = [&](const std::string& method, const std::string& target) {
    auto r = make(method, target);
    return router.dispatch(r);
  };
  EXPECT_EQ(body_of(call("GET", "/api/sia/query?POS=1")), "sia");
  EXPECT_EQ(body_of(call("POST", "/api/sia/query")), "sia");
  EXPECT_EQ(body_of(call("GET", "/api/tap/async/j%2D1")), "job j-1");
  EXPECT_EQ(body_of(call("GET", "/api/tap/async/j1/phase")), "phase j1");
  EXPECT_EQ(body_of(call("GET", "/api/hips/Norder3/Dir0/Npix5.fits")), "hips [Norder3/Dir0/Npix5.fits]");
  EXPECT_EQ(body_of(call("GET", "/api/hips")), "hips []");
  EXPECT_EQ(body_of(call("GET", "/api/hips/")), "hips []");
  EXPECT_EQ(body_of(call("GET", "/api/hips/properties")), "props");  // literal beats {rest...}
  EXPECT_EQ(body_of(call("GET", "/")), "portal");
  EXPECT_EQ(call("HEAD", "/api/sia/query").status, 200);

  EXPECT_EQ(call("GET", "/api/nothing").status, 404);
  EXPECT_EQ(call("GET", "/api/sia/query/").status, 404);
  EXPECT_EQ(call("GET", "/api/tap/async/").status, 404);  // {job} needs a segment

  auto wrong = call("DELETE", "/api/sia/query");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers.get("Allow").value(), "GET, POST, HEAD, OPTIONS");
  auto options = call("OPTIONS", "/api/tap/async/x");
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.headers.get("allow").value(), "GET, HEAD, OPTIONS");
}

TEST(HttpRouter, WholePathLiteralBeatsEmptyRest) {
  // "/docs/{file...}" also matches "/docs" with an empty remainder; a literal
  // route for the whole path must still win, whatever the registration order.
  for (const bool literal_first : {false, true}) {
    Router router;
    auto literal = [&] { router.get("/docs", [](const Request&) { return Response::text(200, "literal"); }); };
    auto rest = [&] {
      router.get("/docs/{file...}",
                 [](const Request& r) { return Response::text(200, "rest [" + std::string(r.path_param("file")) + "]"); });
    };
    if (literal_first) {
      literal();
      rest();
    } else {
      rest();
      literal();
    }
    router.get("/{page}", [](const Request&) { return Response::text(200, "page"); });
    auto call = [&](const std::string& target) {
      auto r = make("GET", target);
      return body_of(router.dispatch(r));
    };
    EXPECT_EQ(call("/docs"), "literal") << literal_first;
    EXPECT_EQ(call("/docs/"), "rest []") << literal_first;
    EXPECT_EQ(call("/docs/a/b.js"), "rest [a/b.js]") << literal_first;
    EXPECT_EQ(call("/other"), "page") << literal_first;
  }
  // A {name} segment still beats an empty rest of a shorter literal prefix.
  Router router;
  router.get("/x/{rest...}", [](const Request&) { return Response::text(200, "rest"); });
  router.get("/x/{id}", [](const Request&) { return Response::text(200, "id"); });
  auto r = make("GET", "/x/1");
  EXPECT_EQ(body_of(router.dispatch(r)), "id");
}

TEST(HttpCors, AllowOriginAndPreflight) {
  Headers cross;
  cross.add("Origin", "https://aladin.cds.unistra.fr");
  // Any origin by default: a plain GET gets the header, errors too.
  Response ok = Response::text(200, "x");
  apply_cors(ok, "GET", cross, {"*"});
  EXPECT_EQ(ok.headers.get("Access-Control-Allow-Origin").value_or(""), "*");
  EXPECT_NE(ok.headers.get("Access-Control-Expose-Headers").value_or("").find("X-Request-Id"), std::string::npos);
  EXPECT_FALSE(ok.headers.has("Access-Control-Allow-Methods"));  // not a preflight
  Response bad = Response::text(400, "error");
  apply_cors(bad, "GET", {}, {"*"});
  EXPECT_EQ(bad.headers.get("Access-Control-Allow-Origin").value_or(""), "*");

  // Preflight: OPTIONS with Access-Control-Request-Method, answered 204 by the router.
  Headers pre = cross;
  pre.add("Access-Control-Request-Method", "POST");
  pre.add("Access-Control-Request-Headers", "authorization");
  Response p = Response::empty(204);
  p.headers.set("Allow", "GET, POST, HEAD, OPTIONS");
  apply_cors(p, "OPTIONS", pre, {"*"});
  EXPECT_EQ(p.headers.get("Access-Control-Allow-Origin").value_or(""), "*");
  EXPECT_EQ(p.headers.get("Access-Control-Allow-Methods").value_or(""), "GET, POST, HEAD, OPTIONS");
  EXPECT_EQ(p.headers.get("Access-Control-Allow-Headers").value_or(""), "Authorization, Content-Type");
  EXPECT_EQ(p.headers.get("Access-Control-Max-Age").value_or(""), "86400");
  Response missing = Response::text(404, "not found\n");
  apply_cors(missing, "OPTIONS", pre, {"*"});
  EXPECT_FALSE(missing.headers.has("Access-Control-Allow-Methods"));

  // A list of origins: the listed one is echoed with Vary: Origin, others get nothing.
  const std::vector<std::string> listed{"https://irsa.ipac.caltech.edu", "https://aladin.cds.unistra.fr"};
  Response echo = Response::text(200, "x");
  apply_cors(echo, "GET", cross, listed);
  EXPECT_EQ(echo.headers.get("Access-Control-Allow-Origin").value_or(""), "https://aladin.cds.unistra.fr");
  EXPECT_EQ(echo.headers.get("Vary").value_or(""), "Origin");
  Headers evil;
  evil.add("Origin", "https://evil.example");
  Response no = Response::text(200, "x");
  apply_cors(no, "GET", evil, listed);
  EXPECT_FALSE(no.headers.has("Access-Control-Allow-Origin"));
  // An empty list turns CORS off.
  Response off = Response::text(200, "x");
  apply_cors(off, "GET", cross, {});
  EXPECT_FALSE(off.headers.has("Access-Control-Allow-Origin"));
  EXPECT_FALSE(off.headers.has("Vary"));
}

TEST(HttpRouter, RejectsBadRoutes) {
  Router router;
  auto h = [](const Request&) { return Response::text(200, ""); };
  router.get("/a", h);
  EXPECT_THROW(router.get("/a", h), std::invalid_argument);
  EXPECT_NO_THROW(router.post("/a", h));
  EXPECT_THROW(router.get("no-slash", h), std::invalid_argument);
  EXPECT_THROW(router.get("/x/{rest...}/y", h), std::invalid_argument);
  EXPECT_THROW(router.get("/x/{}", h), std::invalid_argument);
  EXPECT_THROW(router.get("/x/a{b}", h), std::invalid_argument);
  EXPECT_THROW(router.add({}, "/z", h), std::invalid_argument);
}

// ---------------------------------------------------------------- files

TEST(HttpFiles, DatesAndContentTypes) {
  auto t = std::chrono::system_clock::from_time_t(784111777);
  EXPECT_EQ(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), t);
  EXPECT_FALSE(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"));
  EXPECT_FALSE(parse_http_date("garbage"));
  EXPECT_EQ(content_type_for("a/b/Npix1.FITS"), "application/fits");
  EXPECT_EQ(content_type_for("Norder3/Allsky.png"), "image/png");
  EXPECT_EQ(content_type_for("hips/properties"), "text/plain; charset=utf-8");
  EXPECT_EQ(content_type_for("x.unknown"), "application/octet-stream");
}

TEST(HttpFiles, RangesAndValidators) {
  auto dir = test_dir("files");
  std::string content;
  for (int i = 0; i < 100; ++i) content += static_cast<char>('A' + i % 26);
  std::ofstream(dir / "f.fits", std::ios::binary) << content;

  auto get = [&](std::vector<std::pair<std::string, std::string>> headers, std::string method = "GET") {
    RawRequest raw;
    raw.method = method;
    for (auto& [n, v] : headers) raw.headers.add(n, v);
    return serve_file(Request::parse(raw), dir / "f.fits", "application/fits");
  };

  auto full = get({});
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(body_of(full), content);
  EXPECT_EQ(std::get<StreamBody>(full.body).length, 100u);
  EXPECT_EQ(full.headers.get("Accept-Ranges").value(), "bytes");
  EXPECT_EQ(full.headers.get("Content-Type").value(), "application/fits");
  std::string etag(full.headers.get("ETag").value());
  std::string last_modified(full.headers.get("Last-Modified").value());

  auto r = get({{"Range", "bytes=10-19"}});
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.headers.get("Content-Range").value(), "bytes 10-19/100");
  EXPECT_EQ(body_of(r), content.substr(10, 10));
  EXPECT_EQ(body_of(get({{"Range", "bytes=95-"}})), content.substr(95));
  EXPECT_EQ(body_of(get({{"Range", "bytes=-3"}})), content.substr(97));
  EXPECT_EQ(body_of(get({{"Range", "bytes=90-1000"}})), content.substr(90));
  EXPECT_EQ(body_of(get({{"Range", "bytes=-1000"}})), content);
  EXPECT_EQ(get({{"Range", "bytes=0-1,5-6"}}).status, 200);  // several ranges: whole file
  EXPECT_EQ(get({{"Range", "items=0-1"}}).status, 200);
  EXPECT_EQ(get({{"Range", "bytes=5-2"}}).status, 200);

  auto unsat = get({{"Range", "bytes=100-"}});
  EXPECT_EQ(unsat.status, 416);
  EXPECT_EQ(unsat.headers.get("Content-Range").value(), "bytes */100");
  EXPECT_EQ(get({{"Range", "bytes=-0"}}).status, 416);

  EXPECT_EQ(get({{"If-None-Match", etag}}).status, 304);
  EXPECT_EQ(get({{"If-None-Match", "\"other\", W/" + etag}}).status, 304);
  EXPECT_EQ(get({{"If-None-Match", "\"other\""}}).status, 200);
  EXPECT_EQ(get({{"If-Modified-Since", last_modified}}).status, 304);
  EXPECT_EQ(get({{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"}}).status, 200);
  EXPECT_EQ(get({{"Range", "bytes=0-0"}, {"If-Range", etag}}).status, 206);
  EXPECT_EQ(get({{"Range", "bytes=0-0"}, {"If-Range", "\"stale\""}}).status, 200);
  EXPECT_EQ(get({{"Range", "bytes=0-0"}}, "HEAD").status, 200);  // ranges are for GET only

  RawRequest raw;
  EXPECT_EQ(serve_file(Request::parse(raw), dir / "missing.fits", "application/fits").status, 404);
  EXPECT_EQ(serve_file(Request::parse(raw), dir, "application/fits").status, 404);
  EXPECT_EQ(serve_static(Request::parse(raw), dir, "f.fits").status, 200);
  EXPECT_EQ(serve_static(Request::parse(raw), dir, "../files/f.fits").status, 404);
  EXPECT_EQ(serve_static(Request::parse(raw), dir, "/etc/passwd").status, 404);
}
