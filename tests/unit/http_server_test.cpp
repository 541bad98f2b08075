// A real server on a random port, driven by a plain-socket client (so the
// tests do not share the server's HTTP code): keep-alive, streaming, ranges,
// limits, timeouts, graceful stop, concurrency.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "http/files.hpp"
#include "http/server.hpp"
#include "test_scratch.hpp"

using namespace pixserve::http;
using namespace std::chrono_literals;

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
  // `from`: a loopback address to connect from (the whole of 127/8 is
  // local on Linux), so that tests can play several clients.
  explicit Client(std::uint16_t port, int receive_buffer = 0, const char* from = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    timeval tv{5, 0};  // a hung server fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (from) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      if (::inet_pton(AF_INET, from, &local.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        ::close(fd_);
        throw std::runtime_error(std::string("bind to ") + from);
      }
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("connect");
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() { ::close(fd_); }

  void send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads one response. Body bytes go to `sink` when given (then not kept).
  Reply read(bool head_request = false, const std::function<void(std::string_view)>& sink = nullptr) {
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
    auto deliver = [&](std::string_view bytes) {
      if (sink)
        sink(bytes);
      else
        r.body.append(bytes);
    };
    if (head_request || r.status == 204 || r.status == 304 || r.status / 100 == 1) return r;
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
        deliver(std::string_view(buf_).substr(0, size));
        buf_.erase(0, size + 2);
      }
    }
    if (r.headers.count("content-length")) {
      std::size_t left = std::stoull(r.header("content-length"));
      while (left > 0) {
        if (buf_.empty() && !fill()) throw std::runtime_error("truncated body");
        std::size_t n = std::min(left, buf_.size());
        deliver(std::string_view(buf_).substr(0, n));
        buf_.erase(0, n);
        left -= n;
      }
      return r;
    }
    while (fill()) {
    }
    deliver(buf_);
    buf_.clear();
    return r;
  }

  Reply request(const std::string& method, const std::string& target, const std::string& extra_headers = "",
                const std::string& body = "") {
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers;
    if (!body.empty() || method == "POST") req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    send(req + "\r\n" + body);
    return read(method == "HEAD");
  }

  // True when the server closes the connection (EOF or reset) within `limit`.
  bool closed_within(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      char c[4096];
      ssize_t n = ::recv(fd_, c, sizeof c, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return true;
      if (n > 0) buf_.append(c, static_cast<std::size_t>(n));
    }
    return false;
  }
  const std::string& unread() const { return buf_; }

 private:
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

// ---------------------------------------------------------------- server fixture

// Keeps log lines in memory so tests can look at them.
class MemorySink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::string text() {
    std::lock_guard lock(this->mutex_);
    return text_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    this->formatter_->format(msg, formatted);
    text_.append(formatted.data(), formatted.size());
  }
  void flush_() override {}

 private:
  std::string text_;
};

struct Log {
  std::shared_ptr<MemorySink> sink = std::make_shared<MemorySink>();
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("http-test", sink);
  std::string text() { return sink->text(); }
};

ServerSettings test_config() {
  ServerSettings c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.threads = 8;
  c.io_threads = 2;
  c.handle_signals = false;
  c.limits.header_timeout = 2s;
  c.limits.request_timeout = 5s;
  c.limits.keepalive_timeout = 5s;
  c.limits.write_timeout = 5s;
  c.limits.drain_timeout = 5s;
  c.limits.max_body_bytes = 2 << 20;
  c.spool_dir = PIXSERVE_TEST_TMP;
  std::filesystem::create_directories(c.spool_dir);
  return c;
}

class Running {
 public:
  Running(Router router, ServerSettings config = test_config())
      : server_(std::move(config), std::move(router), log.logger), thread_([this] { server_.run(); }) {}
  ~Running() { stop(); }
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::uint16_t port() const { return server_.port(); }
  Log log;

 private:
  Server server_;
  std::thread thread_;
};

Router basic_router() {
  Router r;
  r.get("/hello", [](const Request& req) {
    return Response::text(200, "hello " + req.params().first("name").value_or("world") + "\n");
  });
  r.get_post("/echo", [](const Request& req) {
    std::string out;
    for (const auto& [n, v] : req.params()) out += n + "=" + v + ";";
    for (const auto& f : req.files())
      out += "file:" + f.name + ":" + f.filename + ":" + std::to_string(f.content.size()) + ":" +
             (f.content.in_memory() ? "mem" : "disk") + ";";
    return Response::text(200, out);
  });
  return r;
}

std::filesystem::path server_test_dir(const std::string& name) {
  auto dir = pixserve::testing::test_scratch_dir(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST(HttpServer, KeepAliveAndRequestIds) {
  Running server(basic_router());
  Client c(server.port());
  auto a = c.request("GET", "/hello?name=a%20b");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "hello a b\n");
  EXPECT_EQ(a.header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(a.header("x-request-id").size(), 16u);
  EXPECT_EQ(a.header("connection"), "");                               // HTTP/1.1 default: keep-alive
  auto b = c.request("GET", "/hello", "X-Request-Id: trace-123\r\n");  // same connection
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.header("x-request-id"), "trace-123");
  auto d = c.request("GET", "/hello", "X-Request-Id: bad id!\r\n");
  EXPECT_EQ(d.header("x-request-id").size(), 16u);
  EXPECT_NE(d.header("x-request-id"), a.header("x-request-id"));

  // Pipelined requests are answered in order.
  c.send("GET /hello?name=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?name=2 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(c.read().body, "hello 1\n");
  EXPECT_EQ(c.read().body, "hello 2\n");

  // HEAD: headers of the GET, no body.
  auto h = c.request("HEAD", "/hello");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("content-length"), "12");
  auto after = c.request("GET", "/hello");  // the connection is still in sync
  EXPECT_EQ(after.body, "hello world\n");

  auto close = c.request("GET", "/hello", "Connection: close\r\n");
  EXPECT_EQ(close.header("connection"), "close");
  EXPECT_TRUE(c.closed_within(2s));

  std::string log = server.log.text();
  EXPECT_NE(log.find("access id=trace-123 remote=127.0.0.1 method=GET target=\"/hello\" status=200 bytes=12 ms="),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("listening on http://127.0.0.1:" + std::to_string(server.port())), std::string::npos);
}

TEST(HttpServer, Http10ClosesAndIsNotChunked) {
  Router r;
  r.get("/s", [](const Request&) {
    return Response::stream("text/plain", [](BodyWriter& w) {
      w.write("abc");
      w.write("def");
    });
  });
  Running server(std::move(r));
  Client c(server.port());
  c.send("GET /s HTTP/1.0\r\n\r\n");
  auto reply = c.read();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("transfer-encoding"), "");
  EXPECT_EQ(reply.body, "abcdef");
}

TEST(HttpServer, StreamsFiftyMegabytesWithBoundedMemory) {
  constexpr std::uint64_t total = 50ull << 20;
  // Byte i of the body is pattern[i % 251]: cheap to produce and to check.
  std::string pattern;
  for (int i = 0; i < 251 + (128 << 10); ++i) pattern += static_cast<char>((i % 251) * 89 + 7);
  auto expected = [&](std::uint64_t offset, std::size_t n) {
    return std::string_view(pattern).substr(offset % 251, n);
  };
  std::atomic<std::uint64_t> produced{0};
  Router r;
  r.get("/big", [&](const Request&) {
    return Response::stream("application/octet-stream", [&](BodyWriter& w) {
      constexpr std::size_t block = 48 << 10;  // odd size: chunks do not line up with writes
      for (std::uint64_t off = 0; off < total;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block, total - off));
        if (!w.write(expected(off, n))) return;
        off += n;
        produced = off;
      }
    });
  });
  Running server(std::move(r));
  Client c(server.port(), 64 << 10);  // a small receive window, so backpressure shows
  c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n");

  std::uint64_t received = 0;
  bool content_ok = true;
  bool paused = false;
  std::uint64_t ahead_during_pause = 0;
  auto reply = c.read(false, [&](std::string_view bytes) {
    for (std::size_t done = 0; done < bytes.size();) {
      std::size_t n = std::min<std::size_t>(bytes.size() - done, 64 << 10);
      if (bytes.substr(done, n) != expected(received + done, n)) content_ok = false;
      done += n;
    }
    received += bytes.size();
    if (!paused && received > (1 << 20)) {
      // Stop reading for a while: the producer must stop too, held back by
      // socket buffers plus one chunk, instead of queueing the 50 MB.
      paused = true;
      std::this_thread::sleep_for(300ms);
      ahead_during_pause = produced.load() - received;
    }
  });
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("transfer-encoding"), "chunked");
  EXPECT_EQ(received, total);
  EXPECT_TRUE(content_ok);
  EXPECT_LT(ahead_during_pause, 12ull << 20) << "producer ran ahead of the client";
}

TEST(HttpServer, ProducersStopWhenClientsGoOrStall) {
  ServerSettings cfg = test_config();
  cfg.limits.write_timeout = 300ms;
  std::atomic<int> finished{0};
  std::atomic<bool> last_write_ok{true};
  Router r;
  r.get("/endless", [&](const Request&) {
    return Response::stream("application/octet-stream", [&](BodyWriter& w) {
      std::string block(64 << 10, 'x');
      bool ok = true;
      for (int i = 0; i < 100000 && ok; ++i) ok = w.write(block);  // 6.4 GB unless stopped
      last_write_ok = ok;
      ++finished;
    });
  });
  r.get("/short", [](const Request&) {
    return Response::stream(
        "text/plain", [](BodyWriter& w) { w.write("only this"); }, 100);
  });
  Running server(std::move(r), cfg);
  auto wait_finished = [&](int n) {
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (finished < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return finished >= n;
  };
  {
    Client c(server.port());  // reads a little, then hangs up
    c.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_THROW(c.read(false, [](std::string_view) { throw std::runtime_error("enough"); }), std::runtime_error);
  }
  EXPECT_TRUE(wait_finished(1));
  EXPECT_FALSE(last_write_ok);
  last_write_ok = true;
  {
    Client c(server.port(), 4096);  // never reads: the write timeout cuts it
    c.send("GET /endless HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_TRUE(wait_finished(2));
    EXPECT_FALSE(last_write_ok);
  }
  {
    Client c(server.port());  // fewer bytes than Content-Length: the body is cut, not padded
    c.send("GET /short HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_THROW(c.read(), std::runtime_error);
  }
}

TEST(HttpServer, FilesWithRangesAndValidators) {
  auto dir = server_test_dir("files");
  std::string content(300000, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i % 253);
  std::ofstream(dir / "image.fits", std::ios::binary) << content;
  Router r;
  r.get("/files/{rest...}", [dir](const Request& req) { return serve_static(req, dir, req.path_param("rest")); });
  Running server(std::move(r));
  Client c(server.port());

  auto full = c.request("GET", "/files/image.fits");
  EXPECT_EQ(full.status, 200);
  EXPECT_EQ(full.header("content-length"), "300000");
  EXPECT_EQ(full.header("content-type"), "application/fits");
  EXPECT_EQ(full.body, content);
  std::string etag = full.header("etag");
  EXPECT_FALSE(etag.empty());
  EXPECT_FALSE(full.header("last-modified").empty());

  auto part = c.request("GET", "/files/image.fits", "Range: bytes=1000-1999\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.header("content-range"), "bytes 1000-1999/300000");
  EXPECT_EQ(part.body, content.substr(1000, 1000));
  auto tail = c.request("GET", "/files/image.fits", "Range: bytes=-10\r\n");
  EXPECT_EQ(tail.body, content.substr(content.size() - 10));

  auto unsat = c.request("GET", "/files/image.fits", "Range: bytes=300000-\r\n");
  EXPECT_EQ(unsat.status, 416);
  EXPECT_EQ(unsat.header("content-range"), "bytes */300000");

  auto cached = c.request("GET", "/files/image.fits", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(cached.status, 304);
  EXPECT_EQ(cached.header("etag"), etag);
  EXPECT_TRUE(cached.body.empty());

  auto head = c.request("HEAD", "/files/image.fits");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("content-length"), "300000");

  EXPECT_EQ(c.request("GET", "/files/missing.fits").status, 404);
  EXPECT_EQ(c.request("GET", "/files/../secret").status, 404);     // normalized to /secret
  EXPECT_EQ(c.request("GET", "/files/../../secret").status, 400);  // leaves the root
  EXPECT_EQ(c.request("GET", "/files/%2e%2e/%2e%2e/etc/passwd").status, 400);
  EXPECT_EQ(c.request("GET", "/files/a%zz").status, 400);
  EXPECT_EQ(c.request("GET", "/files/image.fits").status, 200);  // still the same connection
}

TEST(HttpServer, NotFoundMethodNotAllowedAndErrors) {
  Router r = basic_router();
  r.get("/boom", [](const Request&) -> Response { throw std::runtime_error("secret database detail"); });
  r.get("/bad", [](const Request&) -> Response { throw HttpError(400, "POS: expected CIRCLE, POLYGON or RANGE"); });
  r.get("/bad-header", [](const Request&) {
    Response res = Response::text(200, "x");
    res.headers.set("X-Evil", "a\r\nSet-Cookie: b");
    return res;
  });
  r.get("/early-throw", [](const Request&) {
    return Response::stream("text/plain", [](BodyWriter& w) {
      w.write("partial");
      throw std::runtime_error("producer broke");
    });
  });
  Running server(std::move(r));
  Client c(server.port());
  EXPECT_EQ(c.request("GET", "/nothing").status, 404);
  auto wrong = c.request("DELETE", "/hello");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("allow"), "GET, HEAD, OPTIONS");

  auto boom = c.request("GET", "/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.body.find("secret"), std::string::npos);
  EXPECT_NE(boom.body.find(boom.header("x-request-id")), std::string::npos);
  EXPECT_NE(server.log.text().find("secret database detail"), std::string::npos);  // logged, not shown

  auto bad = c.request("GET", "/bad");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "POS: expected CIRCLE, POLYGON or RANGE\n");
  EXPECT_EQ(c.request("GET", "/bad-header").status, 500);
  auto early = c.request("GET", "/early-throw");
  EXPECT_EQ(early.status, 500);
  EXPECT_EQ(c.request("GET", "/hello").status, 200);
}

TEST(HttpServer, CorsHeadersAndPreflight) {
  Router r = basic_router();
  r.get("/bad", [](const Request&) -> Response { throw HttpError(400, "POS: bad"); });
  Running server(std::move(r));
  Client c(server.port());
  const std::string origin = "Origin: https://aladin.example.org\r\n";
  auto get = c.request("GET", "/hello", origin);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.header("access-control-allow-origin"), "*");
  EXPECT_NE(get.header("access-control-expose-headers").find("X-Request-Id"), std::string::npos);
  EXPECT_EQ(c.request("GET", "/bad", origin).header("access-control-allow-origin"), "*");  // errors readable too

  auto pre = c.request("OPTIONS", "/echo",
                       origin + "Access-Control-Request-Method: POST\r\n"
                                "Access-Control-Request-Headers: authorization, content-type\r\n");
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.header("access-control-allow-origin"), "*");
  EXPECT_EQ(pre.header("access-control-allow-methods"), "GET, POST, HEAD, OPTIONS");
  EXPECT_EQ(pre.header("access-control-allow-headers"), "Authorization, Content-Type");
  EXPECT_EQ(pre.header("access-control-max-age"), "86400");
  EXPECT_EQ(c.request("GET", "/hello").status, 200);  // the connection is still in sync after the 204

  // A configured list echoes a listed origin only.
  auto config = test_config();
  config.cors_origins = {"https://firefly.example.org"};
  Running listed(basic_router(), config);
  Client l(listed.port());
  auto yes = l.request("GET", "/hello", "Origin: https://firefly.example.org\r\n");
  EXPECT_EQ(yes.header("access-control-allow-origin"), "https://firefly.example.org");
  EXPECT_EQ(yes.header("vary"), "Origin");
  EXPECT_EQ(l.request("GET", "/hello", origin).header("access-control-allow-origin"), "");
}

TEST(HttpServer, PostFormsAndMultipart) {
  Running server(basic_router());
  Client c(server.port());
  auto form = c.request("POST", "/echo?MAXREC=5", "Content-Type: application/x-www-form-urlencoded\r\n",
                        "pos=CIRCLE+1+2+3&POS=x%26y");
  EXPECT_EQ(form.status, 200);
  EXPECT_EQ(form.body, "MAXREC=5;pos=CIRCLE 1 2 3;POS=x&y;");

  std::string big(1536 << 10, 'v');  // above the 1 MiB spool threshold
  std::string mp =
      "--zz\r\nContent-Disposition: form-data; name=\"LANG\"\r\n\r\nADQL\r\n"
      "--zz\r\nContent-Disposition: form-data; name=\"small\"; filename=\"s.vot\"\r\n\r\n<V/>\r\n"
      "--zz\r\nContent-Disposition: form-data; name=\"big\"; filename=\"b.vot\"\r\n"
      "Content-Type: application/x-votable+xml\r\n\r\n" +
      big + "\r\n--zz--\r\n";
  auto multi = c.request("POST", "/echo", "Content-Type: multipart/form-data; boundary=zz\r\n", mp);
  EXPECT_EQ(multi.status, 200);
  EXPECT_EQ(multi.body, "LANG=ADQL;file:small:s.vot:4:mem;file:big:b.vot:" + std::to_string(big.size()) + ":disk;");

  // Expect: 100-continue gets the interim response, then the real one.
  c.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: 3\r\n\r\n");
  auto interim = c.read();
  EXPECT_EQ(interim.status, 100);
  c.send("a=b");
  EXPECT_EQ(c.read().body, "a=b;");

  // Chunked request bodies are accepted.
  c.send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Type: application/x-www-form-urlencoded\r\n\r\n3\r\nq=1\r\n0\r\n\r\n");
  EXPECT_EQ(c.read().body, "q=1;");
}

TEST(HttpServer, BodyTooLargeIs413) {
  Running server(basic_router());
  {
    Client c(server.port());
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\nabc");
    auto reply = c.read();
    EXPECT_EQ(reply.status, 413);
    EXPECT_EQ(reply.header("connection"), "close");
    EXPECT_TRUE(c.closed_within(3s));
  }
  {
    Client c(server.port());  // chunked: the limit is found while reading
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::string chunk(256 << 10, 'a');
    std::string framed = "40000\r\n" + chunk + "\r\n";
    try {
      for (int i = 0; i < 12; ++i) c.send(framed);
    } catch (const std::exception&) {
      // the server may have closed already
    }
    EXPECT_EQ(c.read().status, 413);
  }
  {
    Client c(server.port());
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70000, 'h') + "\r\n\r\n");
    EXPECT_EQ(c.read().status, 431);
  }
  {
    Client c(server.port());
    c.send("NOT AN HTTP REQUEST\r\n\r\n");
    EXPECT_EQ(c.read().status, 400);
  }
}

TEST(HttpServer, SlowClientsAreTimedOut) {
  ServerSettings cfg = test_config();
  cfg.limits.header_timeout = 300ms;
  cfg.limits.request_timeout = 600ms;
  cfg.limits.keepalive_timeout = 300ms;
  Running server(basic_router(), cfg);
  auto start = std::chrono::steady_clock::now();
  {
    Client c(server.port());  // a head that never ends
    c.send("GET /hello HTTP/1.1\r\nHost: x\r\n");
    auto reply = c.read();
    EXPECT_EQ(reply.status, 408);
    EXPECT_TRUE(c.closed_within(3s));
  }
  {
    Client c(server.port());  // a body that never ends
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    EXPECT_EQ(c.read().status, 408);
  }
  {
    Client c(server.port());  // idle keep-alive connection: closed quietly
    EXPECT_EQ(c.request("GET", "/hello").status, 200);
    EXPECT_TRUE(c.closed_within(3s));
    EXPECT_TRUE(c.unread().empty());
  }
  {
    Client c(server.port());  // connects and says nothing
    EXPECT_TRUE(c.closed_within(3s));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 8s);
}

TEST(HttpServer, StopLetsInFlightRequestsFinish) {
  std::atomic<bool> entered{false};
  Router r;
  r.get("/quick", [](const Request&) { return Response::text(200, "quick"); });
  r.get("/slow", [&](const Request&) {
    entered = true;
    std::this_thread::sleep_for(600ms);
    return Response::text(200, "done");
  });
  r.get("/slow-stream", [&](const Request&) {
    return Response::stream("text/plain", [&](BodyWriter& w) {
      entered = true;
      for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(100ms);
        if (!w.write("part" + std::to_string(i) + "\n") || !w.flush()) return;
      }
    });
  });
  for (std::string target : {"/slow", "/slow-stream"}) {
    entered = false;
    auto server = std::make_unique<Running>(r);
    Client busy(server->port());
    Client idle(server->port());
    EXPECT_EQ(idle.request("GET", "/quick").status, 200);  // now idle in keep-alive
    busy.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    while (!entered) std::this_thread::sleep_for(5ms);
    auto t0 = std::chrono::steady_clock::now();
    std::thread stopper([&] { server->stop(); });  // returns when drained
    EXPECT_TRUE(idle.closed_within(2s));           // idle connections go at once
    auto reply = busy.read();
    EXPECT_EQ(reply.status, 200);
    EXPECT_EQ(reply.header("connection"), "close");
    EXPECT_EQ(reply.body, target == "/slow" ? "done" : "part0\npart1\npart2\npart3\npart4\npart5\n");
    stopper.join();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    EXPECT_THROW(Client{server->port()}, std::runtime_error);  // no longer listening
  }
}

TEST(HttpServer, DrainTimeoutCutsStuckRequests) {
  ServerSettings cfg = test_config();
  cfg.limits.drain_timeout = 300ms;
  std::atomic<bool> entered{false};
  Router r;
  r.get("/forever", [&](const Request&) {
    return Response::stream("text/plain", [&](BodyWriter& w) {
      entered = true;
      // Stops when the server cuts the connection (write returns false).
      for (int i = 0; i < 1000 && w.write(std::string(1000, 'x')) && w.flush(); ++i) std::this_thread::sleep_for(10ms);
    });
  });
  Running server(std::move(r), cfg);
  Client c(server.port());
  c.send("GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  while (!entered) std::this_thread::sleep_for(5ms);
  auto t0 = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  EXPECT_TRUE(c.closed_within(2s));
}

TEST(HttpServer, HundredConcurrentConnections) {
  std::atomic<int> in_handler{0}, max_in_handler{0};
  Router r;
  r.get("/work", [&](const Request& req) {
    int now = ++in_handler;
    int seen = max_in_handler;
    while (now > seen && !max_in_handler.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(20ms);
    --in_handler;
    return Response::text(200, "id " + req.params().first("i").value_or(""));
  });
  Running server(std::move(r));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 100; ++i) clients.push_back(std::make_unique<Client>(server.port()));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 100; ++i) clients[i]->send("GET /work?i=" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    for (int i = 0; i < 100; ++i) {
      auto reply = clients[i]->read();
      EXPECT_EQ(reply.status, 200);
      EXPECT_EQ(reply.body, "id " + std::to_string(i));
    }
  }
  EXPECT_GT(max_in_handler.load(), 1);  // handlers really ran in parallel
}

TEST(HttpServer, ConnectionLimitAnswers503) {
  ServerSettings cfg = test_config();
  cfg.limits.max_connections = 2;
  Running server(basic_router(), cfg);
  Client a(server.port()), b(server.port());
  EXPECT_EQ(a.request("GET", "/hello").status, 200);
  EXPECT_EQ(b.request("GET", "/hello").status, 200);
  Client extra(server.port());
  auto busy = extra.read();
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.header("x-request-id").size(), 16u);
  EXPECT_EQ(a.request("GET", "/hello").status, 200);
}

TEST(HttpServer, StopBeforeRunAndBindErrors) {
  ServerSettings cfg = test_config();
  Server server(cfg, basic_router());
  server.stop();
  server.run();  // returns at once
  SUCCEED();

  Running running(basic_router());
  ServerSettings taken = test_config();
  taken.port = running.port();
  EXPECT_THROW(Server(taken, basic_router()), std::runtime_error);
  ServerSettings bad = test_config();
  bad.limits.max_connections = 0;
  EXPECT_THROW(Server(bad, basic_router()), pixserve::settings::ConfigError);
}

// ---------------------------------------------------------------- clients and proxies

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// Retries `attempt` for up to two seconds: the server frees a slot only
// once it has seen the client's close.
bool eventually(const std::function<bool()>& attempt) {
  for (int i = 0; i < 100; ++i) {
    try {
      if (attempt()) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

Router whoami_router() {
  Router r = basic_router();
  r.get("/whoami", [](const Request& req) { return Response::text(200, req.remote_address()); });
  return r;
}

const std::string kGetWhoami = "GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n";

}  // namespace

TEST(HttpServer, PerClientConnectionLimit) {
  ServerSettings cfg = test_config();
  cfg.limits.max_connections_per_client = 2;
  Running server(whoami_router(), cfg);
  auto a = std::make_unique<Client>(server.port());
  Client b(server.port());
  EXPECT_EQ(a->request("GET", "/hello").status, 200);
  EXPECT_EQ(b.request("GET", "/hello").status, 200);
  for (int i = 0; i < 5; ++i) {
    Client extra(server.port());
    auto busy = extra.read();
    EXPECT_EQ(busy.status, 503);
    EXPECT_EQ(busy.header("retry-after"), "1");
    EXPECT_EQ(busy.header("connection"), "close");
  }
  // Another address still gets its own two connections.
  Client other(server.port(), 0, "127.0.0.2"), other2(server.port(), 0, "127.0.0.2");
  auto me = other.request("GET", "/whoami");
  EXPECT_EQ(me.status, 200);
  EXPECT_EQ(me.body, "127.0.0.2");
  EXPECT_EQ(other2.request("GET", "/hello").status, 200);
  // A closed connection gives its slot back.
  a.reset();
  EXPECT_TRUE(eventually([&] { return Client(server.port()).request("GET", "/hello").status == 200; }));
  EXPECT_EQ(b.request("GET", "/hello").status, 200);
  // Five refusals, one log line.
  EXPECT_EQ(count_of(server.log.text(), "max_connections_per_client"), 1u) << server.log.text();
  EXPECT_NE(server.log.text().find("client 127.0.0.1 reached"), std::string::npos);
}

TEST(HttpServer, FullServerClosesConnectionsWaitingForAHead) {
  ServerSettings cfg = test_config();
  cfg.limits.max_connections = 3;
  Running server(basic_router(), cfg);
  Client served(server.port());
  EXPECT_EQ(served.request("GET", "/hello").status, 200);  // now idle between requests
  Client partial1(server.port()), partial2(server.port());
  partial1.send("GET /hello HTTP/1.1\r\nHo");  // heads that never end
  partial2.send("GET /hello HTTP/1.1\r\nHost: x\r\n");

  // Full: the oldest connection without a whole head makes room, the
  // older keep-alive one stays.
  Client d(server.port());
  EXPECT_EQ(d.request("GET", "/hello").status, 200);
  EXPECT_TRUE(partial1.closed_within(2s));
  EXPECT_EQ(partial1.unread(), "");
  Client e(server.port());
  EXPECT_EQ(e.request("GET", "/hello").status, 200);
  EXPECT_TRUE(partial2.closed_within(2s));

  // Every connection has been served: nothing to close, so 503.
  for (int i = 0; i < 3; ++i) {
    Client refused(server.port());
    EXPECT_EQ(refused.read().status, 503);
  }
  EXPECT_EQ(served.request("GET", "/hello").status, 200);
  EXPECT_EQ(d.request("GET", "/hello").status, 200);
  const std::string log = server.log.text();
  EXPECT_EQ(count_of(log, "closing connections still waiting for a request head"), 1u) << log;
  EXPECT_EQ(count_of(log, "refusing new connections with 503"), 1u) << log;
}

TEST(HttpServer, ProxyProtocolFromTrustedProxies) {
  ServerSettings cfg = test_config();
  cfg.trusted_proxies = {"127.0.0.1"};
  cfg.proxy_protocol = true;
  cfg.limits.max_connections_per_client = 1;
  Running server(whoami_router(), cfg);

  Client a(server.port());
  a.send("PROXY TCP4 203.0.113.7 127.0.0.1 40000 80\r\n");
  auto r = a.request("GET", "/whoami");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "203.0.113.7");

  // Version 2, in the same packet as the request.
  std::string v2("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  for (int b : {198, 51, 100, 4, 127, 0, 0, 1, 0x9c, 0x40, 0, 80}) v2 += static_cast<char>(b);
  Client b(server.port());
  b.send(v2 + kGetWhoami);
  EXPECT_EQ(b.read().body, "198.51.100.4");

  // The per-client limit counts the client the header names, not the proxy.
  Client a2(server.port());
  a2.send("PROXY TCP4 203.0.113.7 127.0.0.1 40001 80\r\n" + kGetWhoami);
  EXPECT_EQ(a2.read().status, 503);
  Client c(server.port());
  c.send("PROXY TCP4 203.0.113.8 127.0.0.1 40002 80\r\n" + kGetWhoami);
  EXPECT_EQ(c.read().body, "203.0.113.8");
  // UNKNOWN (the proxy's health check): the proxy itself, never limited.
  Client u1(server.port()), u2(server.port());
  u1.send("PROXY UNKNOWN\r\n" + kGetWhoami);
  u2.send("PROXY UNKNOWN\r\n" + kGetWhoami);
  EXPECT_EQ(u1.read().body, "127.0.0.1");
  EXPECT_EQ(u2.read().body, "127.0.0.1");

  // A malformed header, or none, from a trusted proxy: closed unanswered.
  Client bad(server.port());
  bad.send("PROXY TCP4 999.0.0.1 127.0.0.1 1 2\r\n" + kGetWhoami);
  EXPECT_TRUE(bad.closed_within(2s));
  EXPECT_EQ(bad.unread(), "");
  Client none(server.port());
  none.send(kGetWhoami);
  EXPECT_TRUE(none.closed_within(2s));
  EXPECT_EQ(none.unread(), "");

  // From anyone else a PROXY line is just a bad request line.
  Client stranger(server.port(), 0, "127.0.0.2");
  stranger.send("PROXY TCP4 203.0.113.9 127.0.0.1 1 2\r\n" + kGetWhoami);
  EXPECT_EQ(stranger.read().status, 400);

  // Access lines are written once the responses have gone out: wait for them.
  EXPECT_TRUE(eventually([&] {
    const auto text = server.log.text();
    return text.find("remote=203.0.113.7 method=GET") != std::string::npos &&
           text.find("remote=198.51.100.4 method=GET") != std::string::npos;
  })) << server.log.text();
  const std::string log = server.log.text();
  EXPECT_EQ(log.find("203.0.113.9"), std::string::npos) << log;
  EXPECT_EQ(count_of(log, "invalid PROXY protocol header"), 1u) << log;
}

TEST(HttpServer, ForwardedForOnlyFromTrustedProxies) {
  ServerSettings cfg = test_config();
  cfg.trusted_proxies = {"127.0.0.1"};
  cfg.limits.max_connections_per_client = 1;
  Running server(whoami_router(), cfg);

  Client proxy(server.port());
  // The left entry is what the client claimed; the proxy added the right one.
  auto r = proxy.request("GET", "/whoami", "X-Forwarded-For: 198.51.100.9, 203.0.113.7\r\n");
  EXPECT_EQ(r.body, "203.0.113.7");
  EXPECT_EQ(proxy.request("GET", "/whoami").body, "127.0.0.1");  // per request, not per connection
  // The proxy's connections carry many clients: not limited per client.
  Client proxy2(server.port());
  EXPECT_EQ(proxy2.request("GET", "/whoami", "X-Forwarded-For: 203.0.113.8\r\n").body, "203.0.113.8");

  // Anyone else's X-Forwarded-For is ignored, and the limit applies.
  Client stranger(server.port(), 0, "127.0.0.2");
  EXPECT_EQ(stranger.request("GET", "/whoami", "X-Forwarded-For: 203.0.113.7\r\n").body, "127.0.0.2");
  Client stranger2(server.port(), 0, "127.0.0.2");
  EXPECT_EQ(stranger2.read().status, 503);

  // The access line is written once the response has gone out: wait for it.
  EXPECT_TRUE(eventually([&] { return server.log.text().find("remote=127.0.0.2 method=GET") != std::string::npos; }))
      << server.log.text();
  EXPECT_NE(server.log.text().find("remote=203.0.113.7 method=GET"), std::string::npos) << server.log.text();
}
