// The UWS 1.1 REST binding on a real server (port 0), driven by a plain-socket
// client: create -> 303 -> run -> WAIT -> results -> download -> delete,
// with the XML documents parsed by pugixml, plus errors, filters, owners and
// blocking behaviour.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <pugixml.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "http/server.hpp"
#include "uws/routes.hpp"
#include "test_scratch.hpp"

using namespace pixserve;
using namespace pixserve::uws;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------- client

struct Reply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    timeval tv{10, 0};  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { ::close(fd_); }

  Reply request(const std::string& method, const std::string& target, const std::string& extra_headers = "",
                const std::string& body = "") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers;
    if (!body.empty() || method == "POST") {
      req += "Content-Type: application/x-www-form-urlencoded\r\n";
      req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    send(req + "\r\n" + body);
    return read(method == "HEAD");
  }

 private:
  void send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  Reply read(bool head_request) {
    Reply r;
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) throw std::runtime_error("connection closed before a response");
    std::istringstream head(buf_.substr(0, end));
    buf_.erase(0, end + 4);
    std::string line;
    std::getline(head, line);
    r.status = std::stoi(line.substr(9, 3));
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    if (head_request || r.status == 204 || r.status == 304) return r;
    if (r.header("transfer-encoding") == "chunked") {
      for (;;) {
        while ((end = buf_.find("\r\n")) == std::string::npos)
          if (!fill()) throw std::runtime_error("truncated chunk size");
        std::size_t size = std::stoul(buf_.substr(0, end), nullptr, 16);
        buf_.erase(0, end + 2);
        while (buf_.size() < size + 2)
          if (!fill()) throw std::runtime_error("truncated chunk");
        if (size == 0) {
          buf_.erase(0, 2);
          return r;
        }
        r.body.append(buf_, 0, size);
        buf_.erase(0, size + 2);
      }
    }
    std::size_t left = r.headers.count("content-length") ? std::stoull(r.header("content-length")) : 0;
    while (buf_.size() < left)
      if (!fill()) throw std::runtime_error("truncated body");
    r.body = buf_.substr(0, left);
    buf_.erase(0, left);
    return r;
  }

  bool fill() {
    char c[65536];
    ssize_t n = ::recv(fd_, c, sizeof c, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) throw std::runtime_error("client read timed out");
    if (n <= 0) return false;
    buf_.append(c, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buf_;
};

// ---------------------------------------------------------------- server with a UWS service

constexpr const char* kBase = "/api/soda/async";

struct Service {
  fs::path root;
  std::unique_ptr<JobStore> store;
  std::unique_ptr<Runner> runner;
  std::unique_ptr<http::Server> server;
  std::thread thread;

  explicit Service(const std::string& name) : root(pixserve::testing::test_scratch_dir(name)) {
    fs::remove_all(root);
    fs::create_directories(root);
    StoreOptions so;
    so.jobs_dir = root / "jobs";
    so.default_execution_duration = 60s;
    so.max_execution_duration = 600s;
    store = JobStore::open(root / "registry.sqlite", so);
    RunnerOptions ro;
    ro.threads = 2;
    ro.sweep_interval = 0ms;
    runner = std::make_unique<Runner>(*store, ro);
    // A stand-in for SODA: MODE=fail errors, MODE=slow runs until aborted,
    // otherwise a "cutout" after a short delay.
    runner->register_kind("soda", [](const Job& job, ResultWriter& out, Progress& progress, const CancelToken& cancel) {
      const auto mode = job.parameter("MODE").value_or("");
      if (mode == "fail") throw JobError("no overlap between the CIRCLE and the image");
      const auto until = std::chrono::steady_clock::now() + (mode == "slow" ? 30s : 300ms);
      while (std::chrono::steady_clock::now() < until) {
        cancel.throw_if_cancelled();
        std::this_thread::sleep_for(5ms);
      }
      progress.report(1.0, "done");
      out.write("cutout", "cutout.fits", "application/fits", "SIMPLE  =                    T / " + job.parameter("ID").value_or(""));
    });

    http::Router router;
    uws::install_routes(router, kBase, *runner,
                        {.kind = "soda",
                         .max_wait = 3s,
                         .identify = [](const http::Request& r) { return std::string(r.header("X-User").value_or("")); },
                         .validate =
                             [](const std::vector<Parameter>& params) {
                               for (const auto& p : params)
                                 if (p.name == "ID" && p.value.empty()) throw http::HttpError(400, "ID must not be empty");
                             }});
    http::ServerSettings c;
    c.host = "127.0.0.1";
    c.port = 0;
    c.threads = 6;
    c.io_threads = 1;
    c.handle_signals = false;
    // Access log lines would drown the test output.
    auto quiet = std::make_shared<spdlog::logger>("uws-http-test", std::make_shared<spdlog::sinks::null_sink_mt>());
    server = std::make_unique<http::Server>(c, std::move(router), quiet);
    thread = std::thread([this] { server->run(); });
  }
  ~Service() {
    server->stop();
    thread.join();
  }
  std::uint16_t port() const { return server->port(); }
};

// "http://localhost/api/soda/async/abc" -> "/api/soda/async/abc"
std::string path_of(const std::string& url) {
  const std::string prefix = "http://localhost";
  EXPECT_EQ(url.rfind(prefix, 0), 0u) << url;
  return url.substr(prefix.size());
}

pugi::xml_node parse(pugi::xml_document& doc, const Reply& r, const char* root) {
  EXPECT_TRUE(doc.load_string(r.body.c_str())) << r.body;
  auto node = doc.child(root);
  EXPECT_TRUE(node) << r.body;
  return node;
}

std::string created(Client& c, const std::string& body, const std::string& user = "alice") {
  auto r = c.request("POST", kBase, "X-User: " + user + "\r\n", body);
  EXPECT_EQ(r.status, 303) << r.body;
  return path_of(r.header("location"));
}

}  // namespace

TEST(UwsHttp, CreateRunWaitDownloadDelete) {
  Service svc("lifecycle");
  Client c(svc.port());
  const std::string alice = "X-User: alice\r\n";

  // Create: 303 See Other to the job.
  auto r = c.request("POST", kBase, alice, "ID=ivo%3A%2F%2Fx%3F1&CIRCLE=10+20+0.1&RUNID=run-1");
  ASSERT_EQ(r.status, 303) << r.body;
  const std::string job_path = path_of(r.header("location"));
  const std::string id = job_path.substr(std::string(kBase).size() + 1);
  ASSERT_TRUE(valid_job_id(id)) << id;

  // The job document.
  r = c.request("GET", job_path, alice);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("xml"), std::string::npos);
  {
    pugi::xml_document doc;
    auto job = parse(doc, r, "uws:job");
    EXPECT_STREQ(job.attribute("version").value(), "1.1");
    EXPECT_STREQ(job.attribute("xmlns:uws").value(), "http://www.ivoa.net/xml/UWS/v1.0");
    EXPECT_EQ(job.child_value("uws:jobId"), id);
    EXPECT_STREQ(job.child_value("uws:runId"), "run-1");
    EXPECT_STREQ(job.child_value("uws:ownerId"), "alice");
    EXPECT_STREQ(job.child_value("uws:phase"), "PENDING");
    EXPECT_STREQ(job.child_value("uws:executionDuration"), "60");
    std::map<std::string, std::string> params;
    for (auto p : job.child("uws:parameters").children("uws:parameter")) params[p.attribute("id").value()] = p.child_value();
    EXPECT_EQ(params, (std::map<std::string, std::string>{{"ID", "ivo://x?1"}, {"CIRCLE", "10 20 0.1"}}));
  }

  // Sub-resources as text.
  r = c.request("GET", job_path + "/phase", alice);
  EXPECT_EQ(r.body, "PENDING");
  EXPECT_NE(r.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_EQ(c.request("GET", job_path + "/runId", alice).body, "run-1");
  EXPECT_EQ(c.request("GET", job_path + "/owner", alice).body, "alice");
  EXPECT_EQ(c.request("GET", job_path + "/quote", alice).body, "");
  EXPECT_EQ(c.request("GET", job_path + "/error", alice).status, 404);

  // Changes while PENDING.
  r = c.request("POST", job_path + "/parameters", alice, "CIRCLE=1+2+0.5");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(path_of(r.header("location")), job_path);
  {
    pugi::xml_document doc;
    auto params = parse(doc, c.request("GET", job_path + "/parameters", alice), "uws:parameters");
    EXPECT_STREQ(params.find_child_by_attribute("uws:parameter", "id", "CIRCLE").child_value(), "1 2 0.5");
  }
  EXPECT_EQ(c.request("POST", job_path + "/executionduration", alice, "EXECUTIONDURATION=30").status, 303);
  EXPECT_EQ(c.request("GET", job_path + "/executionduration", alice).body, "30");
  EXPECT_EQ(c.request("POST", job_path + "/executionduration", alice, "EXECUTIONDURATION=soon").status, 400);
  EXPECT_EQ(c.request("POST", job_path + "/destruction", alice, "DESTRUCTION=tomorrow").status, 400);
  EXPECT_EQ(c.request("POST", job_path + "/destruction", alice, "DESTRUCTION=2099-01-01T00%3A00%3A00Z").status, 303);
  const auto destruction = parse_time(c.request("GET", job_path + "/destruction", alice).body);
  ASSERT_TRUE(destruction);
  EXPECT_LE(*destruction, now() + svc.store->options().max_retention);  // 2099 was clamped

  // Phase changes: SUSPEND is not supported, RUN starts it.
  EXPECT_EQ(c.request("POST", job_path + "/phase", alice, "PHASE=SUSPEND").status, 400);
  EXPECT_EQ(c.request("POST", job_path + "/phase", alice, "PHASE=FLY").status, 400);
  r = c.request("POST", job_path + "/phase", alice, "PHASE=RUN");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(path_of(r.header("location")), job_path);

  // Blocking WAIT until the job ends.
  std::string phase;
  for (int i = 0; i < 5 && phase != "COMPLETED"; ++i) {
    pugi::xml_document doc;
    phase = parse(doc, c.request("GET", job_path + "?WAIT=2", alice), "uws:job").child_value("uws:phase");
  }
  ASSERT_EQ(phase, "COMPLETED");
  EXPECT_EQ(c.request("POST", job_path + "/parameters", alice, "CIRCLE=0+0+1").status, 400);
  EXPECT_EQ(c.request("POST", job_path + "/phase", alice, "PHASE=RUN").status, 400);

  // Results and the download.
  r = c.request("GET", job_path + "/results", alice);
  ASSERT_EQ(r.status, 200);
  std::string href, size;
  {
    pugi::xml_document doc;
    auto result = parse(doc, r, "uws:results").child("uws:result");
    EXPECT_STREQ(result.attribute("id").value(), "cutout");
    EXPECT_STREQ(result.attribute("mime-type").value(), "application/fits");
    href = result.attribute("xlink:href").value();
    EXPECT_EQ(href, "http://localhost" + job_path + "/results/cutout");
    size = result.attribute("size").value();
  }
  r = c.request("GET", path_of(href), alice);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "application/fits");
  EXPECT_EQ(r.body, "SIMPLE  =                    T / ivo://x?1");
  EXPECT_EQ(size, std::to_string(r.body.size()));
  r = c.request("GET", path_of(href), alice + "Range: bytes=0-5\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "SIMPLE");
  EXPECT_EQ(c.request("GET", job_path + "/results/nothing", alice).status, 404);
  EXPECT_EQ(c.request("GET", job_path + "/results/..", alice).status / 100, 4);

  // The job list.
  {
    pugi::xml_document doc;
    auto jobs = parse(doc, c.request("GET", kBase, alice), "uws:jobs");
    EXPECT_STREQ(jobs.attribute("version").value(), "1.1");
    auto ref = jobs.child("uws:jobref");
    EXPECT_EQ(ref.attribute("id").value(), id);
    EXPECT_EQ(std::string(ref.attribute("xlink:href").value()), "http://localhost" + job_path);
    EXPECT_STREQ(ref.child_value("uws:phase"), "COMPLETED");
  }

  // Delete: 303 to the list, then gone with its files.
  r = c.request("DELETE", job_path, alice);
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(path_of(r.header("location")), kBase);
  EXPECT_EQ(c.request("GET", job_path, alice).status, 404);
  EXPECT_EQ(c.request("GET", path_of(href), alice).status, 404);
  EXPECT_FALSE(fs::exists(svc.root / "jobs" / id));
}

TEST(UwsHttp, RunAtCreationErrorAndActionDelete) {
  Service svc("error");
  Client c(svc.port());
  const std::string bob = "X-User: bob\r\n";
  const std::string job_path = created(c, "MODE=fail&PHASE=RUN", "bob");
  // WAIT returns at the first phase change (QUEUED -> EXECUTING on a busy
  // machine), so wait until the job has ended.
  pugi::xml_document doc;
  pugi::xml_node job;
  for (int i = 0; i < 10; ++i) {
    job = parse(doc, c.request("GET", job_path + "?WAIT=3", bob), "uws:job");
    const std::string phase = job.child_value("uws:phase");
    if (phase != "QUEUED" && phase != "EXECUTING") break;
  }
  ASSERT_STREQ(job.child_value("uws:phase"), "ERROR");
  EXPECT_STREQ(job.child("uws:errorSummary").attribute("type").value(), "fatal");
  EXPECT_STREQ(job.child("uws:errorSummary").child_value("uws:message"), "no overlap between the CIRCLE and the image");
  EXPECT_TRUE(job.child("uws:parameters").find_child_by_attribute("uws:parameter", "id", "MODE"));
  EXPECT_FALSE(job.child("uws:parameters").find_child_by_attribute("uws:parameter", "id", "PHASE"));

  // /error: a DALI error document.
  auto r = c.request("GET", job_path + "/error", bob);
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("votable"), std::string::npos);
  pugi::xml_document votable;
  ASSERT_TRUE(votable.load_string(r.body.c_str())) << r.body;
  auto info = votable.child("VOTABLE").child("RESOURCE").child("INFO");
  EXPECT_STREQ(info.attribute("name").value(), "QUERY_STATUS");
  EXPECT_STREQ(info.attribute("value").value(), "ERROR");
  EXPECT_NE(std::string(info.child_value()).find("no overlap"), std::string::npos);

  // Validation at creation, and creation phases other than RUN.
  EXPECT_EQ(c.request("POST", kBase, bob, "ID=").status, 400);
  EXPECT_EQ(c.request("POST", kBase, bob, "ID=x&PHASE=ABORT").status, 400);

  // POST ACTION=DELETE on the job.
  EXPECT_EQ(c.request("POST", job_path, bob, "ACTION=EXPLODE").status, 400);
  r = c.request("POST", job_path, bob, "ACTION=DELETE");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(path_of(r.header("location")), kBase);
  EXPECT_EQ(c.request("GET", job_path, bob).status, 404);
}

TEST(UwsHttp, AbortAndBlockingBehaviour) {
  Service svc("abort");
  Client c(svc.port());
  const std::string u = "X-User: u\r\n";
  const std::string pending = created(c, "MODE=slow", "u");

  // WAIT on a PENDING job blocks until the timeout (nothing will change it)...
  auto t0 = std::chrono::steady_clock::now();
  pugi::xml_document d1;
  EXPECT_STREQ(parse(d1, c.request("GET", pending + "?WAIT=1", u), "uws:job").child_value("uws:phase"), "PENDING");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  // ... but not when PHASE names another phase than the job's.
  t0 = std::chrono::steady_clock::now();
  pugi::xml_document d2;
  EXPECT_STREQ(parse(d2, c.request("GET", pending + "?WAIT=30&PHASE=EXECUTING", u), "uws:job").child_value("uws:phase"),
               "PENDING");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_EQ(c.request("GET", pending + "?WAIT=x", u).status, 400);
  EXPECT_EQ(c.request("GET", pending + "?WAIT=1&PHASE=NAPPING", u).status, 400);

  // Run it; a WAIT from another connection returns when ABORT ends it.
  EXPECT_EQ(c.request("POST", pending + "/phase", u, "PHASE=RUN").status, 303);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (c.request("GET", pending + "/phase", u).body != "EXECUTING" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  std::string waited;
  std::thread waiter([&] {
    Client w(svc.port());
    pugi::xml_document d;
    auto r = w.request("GET", pending + "?WAIT=-1", u);  // -1: the server's maximum (3 s here)
    if (d.load_string(r.body.c_str())) waited = d.child("uws:job").child_value("uws:phase");
  });
  std::this_thread::sleep_for(200ms);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(c.request("POST", pending + "/phase", u, "PHASE=ABORT").status, 303);
  waiter.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(waited, "ABORTED");
  EXPECT_EQ(c.request("GET", pending + "/phase", u).body, "ABORTED");
}

TEST(UwsHttp, OwnersFiltersAndIds) {
  Service svc("owners");
  Client c(svc.port());
  const std::string alice = "X-User: alice\r\n", mallory = "X-User: mallory\r\n";
  const std::string a1 = created(c, "ID=1", "alice");
  const std::string a2 = created(c, "ID=2&PHASE=RUN", "alice");
  const std::string a3 = created(c, "ID=3", "alice");
  created(c, "ID=4", "mallory");

  // Another user's job does not exist for mallory: 404, not 403.
  for (std::string sub : {"", "/phase", "/parameters", "/results", "/error", "/owner"})
    EXPECT_EQ(c.request("GET", a1 + sub, mallory).status, 404) << sub;
  EXPECT_EQ(c.request("POST", a1 + "/phase", mallory, "PHASE=RUN").status, 404);
  EXPECT_EQ(c.request("DELETE", a1, mallory).status, 404);
  EXPECT_EQ(c.request("POST", a1, mallory, "ACTION=DELETE").status, 404);
  EXPECT_EQ(c.request("GET", a1 + "/phase", alice).body, "PENDING");

  auto list = [&](const std::string& query, const std::string& who) {
    std::vector<std::string> ids;
    auto r = c.request("GET", std::string(kBase) + query, who);
    EXPECT_EQ(r.status, 200) << query << ": " << r.body;
    pugi::xml_document doc;
    if (!doc.load_string(r.body.c_str())) return ids;
    for (auto ref : doc.child("uws:jobs").children("uws:jobref"))
      ids.push_back(std::string(kBase) + "/" + ref.attribute("id").value());
    return ids;
  };
  EXPECT_EQ(list("", alice), (std::vector<std::string>{a3, a2, a1}));  // newest first, own jobs only
  EXPECT_EQ(list("", mallory).size(), 1u);
  EXPECT_EQ(list("?LAST=2", alice), (std::vector<std::string>{a3, a2}));
  EXPECT_EQ(list("?PHASE=PENDING", alice), (std::vector<std::string>{a3, a1}));
  EXPECT_EQ(list("?PHASE=PENDING&PHASE=COMPLETED&PHASE=QUEUED&PHASE=EXECUTING", alice).size(), 3u);
  EXPECT_TRUE(list("?PHASE=ARCHIVED", alice).empty());
  EXPECT_TRUE(list("", "").empty());  // anonymous callers do not see the anonymous jobs list
  // AFTER: the creation time of a2 from its job document.
  pugi::xml_document doc;
  const std::string after = parse(doc, c.request("GET", a2, alice), "uws:job").child_value("uws:creationTime");
  EXPECT_EQ(list("?AFTER=" + after, alice), (std::vector<std::string>{a3}));
  EXPECT_EQ(c.request("GET", std::string(kBase) + "?AFTER=yesterday", alice).status, 400);
  EXPECT_EQ(c.request("GET", std::string(kBase) + "?PHASE=SLEEPING", alice).status, 400);
  EXPECT_EQ(c.request("GET", std::string(kBase) + "?LAST=-1", alice).status, 400);
  EXPECT_EQ(c.request("GET", std::string(kBase) + "?LAST=many", alice).status, 400);

  // Ids that are not job ids never reach the store or the file system.
  for (std::string bad : {"/x", "/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/..%2f..%2fetc", "/%2e%2e", "/jobs"})
    EXPECT_EQ(c.request("GET", std::string(kBase) + bad + "/results", alice).status / 100, 4) << bad;
  EXPECT_EQ(c.request("GET", std::string(kBase) + "/abc/phase", alice).status, 404);
}
