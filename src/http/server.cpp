#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <malloc.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include "http/files.hpp"
#include "http/proxy.hpp"

namespace pixserve::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace detail {

namespace {

constexpr std::size_t kChunkBytes = 64 << 10;  // body read size and streaming chunk size
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kStopLingerTime = std::chrono::milliseconds(300);
constexpr auto kErrorWriteTime = std::chrono::seconds(5);

// Memory returned to the system after large responses (see MallocTuning).
constexpr std::uint64_t kLargeResponseBytes = 1 << 20;
constexpr auto kTrimDelay = std::chrono::seconds(1);      // quiet time before a trim
constexpr auto kTrimMaxDelay = std::chrono::seconds(30);  // under steady load, trim this often
constexpr int kMallocArenas = 2;

// glibc's allocator gives each thread that meets contention its own arena,
// up to 8 per core, and an arena keeps what was freed in it: a large
// transient buffer (a cutout being computed, an image plane) freed on one of
// the many worker threads stays resident in that thread's arena. Measured
// with 8 workers and SODA cutouts of 14 MB, RSS went from 71 MB to a plateau
// of 132 MB after 50 aborted downloads, and malloc_trim could not give it
// back: it does not shrink the top of a thread's arena. With two arenas the
// freed memory lands in few places where malloc_trim (ServerCore::
// schedule_trim) returns it: 48 MB -> 122 MB under load -> 22 MB after a trim.
// Returning memory at every free instead (fixed M_MMAP_THRESHOLD and
// M_TRIM_THRESHOLD) cost 3.5x the time per cutout in page faults, and so did
// trimming every second under load (the next requests fault the pages back
// in): the trim waits for a quiet second, or kTrimMaxDelay.
// The allocator is per process and `pixserve serve` is one server per
// process; MALLOC_ARENA_MAX in the environment still wins.
struct MallocTuning {
  MallocTuning() {
#if defined(__GLIBC__)
    if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, kMallocArenas);
#endif
  }
};

void trim_malloc() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// Fields the server sets itself: a handler must not frame the message.
bool is_framing_field(std::string_view name) {
  for (std::string_view f :
       {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "TE", "Trailer"})
    if (iequals(name, f)) return true;
  return false;
}

bool valid_field_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// No CR/LF/NUL: a value with them would inject fields or split the response.
bool valid_field_value(std::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::string quote_for_log(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Beast 1.74 uses boost::string_view; the rest of pixserve uses std's.
std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

enum class Framing { none, length, chunked };

struct Head {
  int status = 200;
  Framing framing = Framing::none;
  std::uint64_t length = 0;
  bool close = false;
  bool http10_keep_alive = false;
};

// Serializes a response head; nullopt if the handler's headers are invalid.
std::optional<std::string> build_head(const Head& h, const Headers& headers, const std::string& request_id) {
  std::string out = "HTTP/1.1 " + std::to_string(h.status) + " ";
  std::string_view reason = sv(bhttp::obsolete_reason(static_cast<bhttp::status>(h.status)));
  out += (reason.empty() || reason.front() == '<') ? std::string_view("Status") : reason;
  out += "\r\n";
  for (const auto& [name, value] : headers) {
    if (!valid_field_name(name) || !valid_field_value(value)) return std::nullopt;
    if (is_framing_field(name) || iequals(name, "X-Request-Id")) continue;
    out += name + ": " + value + "\r\n";
  }
  if (!headers.has("Date")) out += "Date: " + http_date(std::chrono::system_clock::now()) + "\r\n";
  if (!headers.has("Server")) out += "Server: pixserve\r\n";
  out += "X-Request-Id: " + request_id + "\r\n";
  if (h.framing == Framing::length) out += "Content-Length: " + std::to_string(h.length) + "\r\n";
  if (h.framing == Framing::chunked) out += "Transfer-Encoding: chunked\r\n";
  if (h.close)
    out += "Connection: close\r\n";
  else if (h.http10_keep_alive)
    out += "Connection: keep-alive\r\n";
  out += "\r\n";
  return out;
}

bool has_no_body(int status) { return status == 204 || status == 304 || (status >= 100 && status < 200); }

// The answer to a connection the server has no room for. Short enough for a
// fresh socket's send buffer, so it can be written without waiting.
std::string busy_response(const std::string& request_id) {
  static constexpr std::string_view kBody = "server busy, retry later\n";
  return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
         "Connection: close\r\nX-Request-Id: " +
         request_id + "\r\nContent-Length: " + std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
}

// Events that come in floods under attack; each is logged at most once per
// kBurstLogInterval, with how many happened in between.
enum class Burst : std::size_t { server_full, client_limit, evicted, bad_proxy_header, count };
constexpr auto kBurstLogInterval = std::chrono::seconds(10);

}  // namespace

class Connection;

// Everything the server shares between its threads; Server is a thin handle.
class ServerCore {
 public:
  ServerCore(ServerConfig config, Router router, std::shared_ptr<spdlog::logger> logger);
  ~ServerCore();

  void run();
  void stop() {
    net::post(strand_, [this] { begin_shutdown("stop requested"); });
  }

  std::uint16_t port() const noexcept { return port_; }
  const std::string& url() const noexcept { return url_; }
  const ServerConfig& config() const noexcept { return config_; }
  const Router& router() const noexcept { return router_; }
  spdlog::logger& log() const noexcept { return *log_; }
  const RequestOptions& request_options() const noexcept { return request_options_; }
  bool stopping() const noexcept { return stopping_.load(); }
  net::thread_pool& workers() noexcept { return workers_; }

  const AddressSet& trusted_proxies() const noexcept { return trusted_proxies_; }
  // After a large response: free memory goes back to the system once no
  // large response has ended for kTrimDelay, or kTrimMaxDelay after the
  // first one that is still waiting for a trim.
  void schedule_trim();

  // Slot bookkeeping, called by connections on their strands (see Slot).
  // Called from ~Connection, on any thread.
  void connection_closed(std::uint64_t id);
  // The client address a PROXY header named; false when that client is at
  // its connection limit (the connection must then be refused).
  bool admit_client(std::uint64_t id, const boost::asio::ip::address& client);
  // The connection's first whole request head arrived; false when the
  // connection was evicted meanwhile (it must then close without handling
  // the request).
  bool head_received(std::uint64_t id);
  // Logs the first event of a burst and then at most one line per interval.
  void note(Burst kind, const std::string& detail);

 private:
  void run_io();
  void do_accept();
  void on_accept(error_code ec, tcp::socket socket);
  void reject(tcp::socket& socket);
  struct Eviction {
    bool freed = false;                   // a slot was made free
    std::shared_ptr<Connection> victim;   // to close (null when it was already going)
  };
  Eviction evict_locked();
  bool client_over_limit_locked(const std::string& client) const;
  void begin_shutdown(const std::string& why);
  void finish_shutdown();
  void force_close_all();
  std::vector<std::shared_ptr<Connection>> snapshot();

  // First, so that the allocator is tuned before any thread (workers_) exists.
  MallocTuning malloc_tuning_;
  ServerConfig config_;
  Router router_;
  std::shared_ptr<spdlog::logger> log_;
  AddressSet trusted_proxies_;
  unsigned io_threads_;
  RequestOptions request_options_;

  // Guarded by mutex_: touched from network and worker threads.
  std::mutex mutex_;
  struct Slot {
    std::weak_ptr<Connection> connection;
    std::string client;    // the address counted in per_client_; empty: not counted (a trusted proxy)
    bool waiting = true;   // no whole request head yet: may be evicted; the id is in waiting_
    bool evicted = false;  // being closed to make room: no longer counted against max_connections
  };
  std::unordered_map<std::uint64_t, Slot> connections_;
  // Connections that have not sent a whole request head yet, oldest first
  // (ids grow with accept time): idle pre-connections, slowloris senders.
  // Keep-alive connections idle between requests are not among them: their
  // client has been served and waits for no one, and they expire after
  // limits.keepalive_timeout anyway.
  std::set<std::uint64_t> waiting_;
  std::unordered_map<std::string, std::size_t> per_client_;
  std::size_t evicted_ = 0;
  struct BurstLog {
    Clock::time_point last{};
    std::uint64_t unlogged = 0;
  };
  std::array<BurstLog, static_cast<std::size_t>(Burst::count)> bursts_{};
  bool destroying_ = false;

  net::io_context ioc_;
  // Acceptor, signals and timers live on this strand, so stop() and accept
  // never race.
  net::strand<net::io_context::executor_type> strand_;
  // Keeps run() going until shutdown is complete even when no I/O is pending
  // (e.g. all connections are in handlers).
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  tcp::acceptor acceptor_;
  net::signal_set signals_;
  net::steady_timer drain_timer_;
  net::steady_timer accept_retry_timer_;
  net::steady_timer trim_timer_;
  std::optional<Clock::time_point> trim_pending_since_;  // strand only
  net::thread_pool workers_;

  std::atomic<bool> stopping_{false};
  std::atomic<bool> ran_{false};
  bool shutdown_finished_ = false;  // strand only
  std::uint64_t next_id_ = 0;       // strand only
  std::uint16_t port_ = 0;
  std::string url_;
};

// One client connection. All socket work happens on the connection's strand;
// while a handler runs, the worker thread owns the per-request fields and
// talks to the socket only by posting to the strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `peer` is the TCP peer; with `expect_proxy_header` (a trusted proxy
  // speaking the PROXY protocol) the client is read from the first bytes.
  Connection(ServerCore& core, tcp::socket socket, std::uint64_t id, const net::ip::address& peer,
             bool expect_proxy_header)
      : core_(core),
        limits_(core.config().limits),
        id_(id),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        expect_proxy_header_(expect_proxy_header) {
    set_client(peer);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { core_.connection_closed(id_); }

  void start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      if (!self->expect_proxy_header_) return self->wait_for_request();
      self->arm(Clock::now() + self->limits_.header_timeout);
      self->read_proxy_header();
    });
  }
  // Posted by the server to make room for a new connection (see
  // ServerCore::evict_locked); only a connection waiting for a request head
  // is ever chosen, and head_received() keeps it from starting one after.
  void evict() { close_now(); }
  // Posted by the server on shutdown.
  void close_if_idle() {
    if (state_ == State::idle) close_now();
  }
  void force_close() { close_now(); }
  auto executor() { return socket_.get_executor(); }

  // --- worker side (see StreamWriter) ---
  // Writes buffers from a worker thread and waits for completion: the
  // backpressure that keeps a producer at most one chunk ahead.
  bool write_blocking(std::vector<net::const_buffer> buffers) {
    auto done = std::make_shared<std::promise<error_code>>();
    auto result = done->get_future();
    net::post(socket_.get_executor(), [self = shared_from_this(), buffers = std::move(buffers), done] {
      if (!self->socket_.is_open()) {
        done->set_value(net::error::bad_descriptor);
        return;
      }
      self->arm(Clock::now() + self->limits_.write_timeout);
      net::async_write(self->socket_, buffers, [self, done](error_code ec, std::size_t) {
        self->disarm();
        done->set_value(ec);
      });
    });
    return !result.get();
  }

 private:
  enum class State { idle, reading, handling, closing };

  struct Exchange {
    std::string id, method = "-", target = "-";
    std::string remote;  // empty until the head is read: then the connection's client
    int status = 0;
    std::uint64_t bytes = 0;
    Clock::time_point start;
  };

  // ---------------------------------------------------------------- timeouts

  // One deadline per connection; on expiry pending socket operations are
  // cancelled (not the socket closed, so that a 408 can still be sent).
  void arm(Clock::time_point deadline) {
    timed_out_ = false;
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](error_code ec) {
      if (ec || gen != self->timer_gen_) return;
      self->timed_out_ = true;
      error_code ignored;
      self->socket_.cancel(ignored);
    });
  }
  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  // ---------------------------------------------------------------- client address

  void set_client(const net::ip::address& address) {
    client_ = canonical(address);
    remote_ = client_.to_string();
    client_trusted_ = core_.trusted_proxies().contains(client_);
  }

  // The PROXY protocol header a trusted proxy sends before the request
  // bytes. Whatever follows it stays in buffer_ for the HTTP parser. The
  // header timer armed by start() covers this read.
  void read_proxy_header() {
    const auto data = buffer_.cdata();
    const auto header = parse_proxy_header(std::string_view(static_cast<const char*>(data.data()), data.size()));
    if (header.status == ProxyHeader::Status::invalid) {
      core_.note(Burst::bad_proxy_header, "from " + remote_);
      return close_now();  // the protocol says to drop the connection, never to guess
    }
    if (header.status == ProxyHeader::Status::incomplete) {
      socket_.async_read_some(buffer_.prepare(kMaxProxyHeaderBytes - buffer_.size()),
                              [self = shared_from_this()](error_code ec, std::size_t n) {
                                if (ec) return self->close_now();  // timeout or client gone
                                self->buffer_.commit(n);
                                self->read_proxy_header();
                              });
      return;
    }
    disarm();
    buffer_.consume(header.length);
    if (header.source) set_client(*header.source);
    if (!core_.admit_client(id_, client_)) return refuse();
    wait_for_request();
  }

  // Over the per-client limit: the same 503 as ServerCore::reject, sent
  // asynchronously since this socket has already been read from.
  void refuse() {
    state_ = State::closing;
    out_ = busy_response(random_request_id());
    arm(Clock::now() + kErrorWriteTime);
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this()](error_code, std::size_t) {
      self->disarm();
      self->graceful_close();
    });
  }

  // The address requests are attributed to (RawRequest::remote_address and
  // the access log): X-Forwarded-For counts only when the connection's
  // client is itself a trusted proxy.
  std::string request_remote(const bhttp::request<bhttp::buffer_body>& req) const {
    if (!client_trusted_) return remote_;
    std::vector<std::string_view> values;
    for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) values.push_back(sv(it->value()));
    if (values.empty()) return remote_;
    return client_from_forwarded_for(client_, values, core_.trusted_proxies()).to_string();
  }

  // ---------------------------------------------------------------- reading

  void wait_for_request() {
    if (core_.stopping()) return close_now();
    if (buffer_.size() > 0) return begin_request();  // pipelined
    state_ = State::idle;
    arm(Clock::now() + (first_request_ ? limits_.header_timeout : limits_.keepalive_timeout));
    socket_.async_read_some(buffer_.prepare(8192), [self = shared_from_this()](error_code ec, std::size_t n) {
      self->disarm();
      if (ec) return self->close_now();  // idle timeout, client gone or server stopping
      self->buffer_.commit(n);
      self->begin_request();
    });
  }

  void begin_request() {
    state_ = State::reading;
    ex_ = Exchange{};
    ex_.start = Clock::now();
    parser_.emplace();
    parser_->header_limit(limits_.max_header_bytes);
    parser_->body_limit(limits_.max_body_bytes);
    arm(std::min(ex_.start + limits_.header_timeout, ex_.start + limits_.request_timeout));
    bhttp::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
      self->disarm();
      self->on_header(ec);
    });
  }

  // Maps a read error to a response (or to a silent close).
  void on_read_error(error_code ec) {
    if (timed_out_) return fail_request(408, "request timeout");
    if (ec == bhttp::error::body_limit) return fail_request(413, "request body too large");
    if (ec == bhttp::error::header_limit) return fail_request(431, "request header too large");
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == bhttp::error::partial_message || !socket_.is_open())
      return close_now();
    fail_request(400, "bad request");
  }

  void on_header(error_code ec) {
    if (ec) return on_read_error(ec);
    if (first_request_ && !core_.head_received(id_)) return close_now();  // evicted while the head came in
    auto& req = parser_->get();
    ex_.remote = request_remote(req);
    ex_.method = std::string(sv(req.method_string()));
    ex_.target = std::string(sv(req.target()));
    auto incoming = sv(req["X-Request-Id"]);
    ex_.id = valid_request_id(incoming) ? std::string(incoming) : random_request_id();
    if (parser_->is_done()) return dispatch_request();

    spool_.emplace(limits_.spool_threshold, core_.config().spool_dir);
    body_chunk_.resize(kChunkBytes);
    arm(ex_.start + limits_.request_timeout);  // stays armed for the whole body
    if (req.version() >= 11 && iequals(sv(req[bhttp::field::expect]), "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(socket_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](error_code ec, std::size_t) {
                         if (ec) {
                           self->disarm();
                           return self->on_read_error(ec);
                         }
                         self->read_body();
                       });
      return;
    }
    read_body();
  }

  void read_body() {
    auto& body = parser_->get().body();
    body.data = body_chunk_.data();
    body.size = body_chunk_.size();
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(error_code ec) {
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      disarm();
      return on_read_error(ec);
    }
    std::size_t got = body_chunk_.size() - parser_->get().body().size;
    try {
      spool_->append(std::string_view(body_chunk_.data(), got));
    } catch (const std::exception& e) {
      disarm();
      core_.log().error("request id={} cannot spool the request body: {}", ex_.id, e.what());
      return fail_request(500, "internal error, request id " + ex_.id);
    }
    if (!parser_->is_done()) return read_body();
    disarm();
    dispatch_request();
  }

  void dispatch_request() {
    state_ = State::handling;
    auto& req = parser_->get();
    RawRequest raw;
    raw.method = ex_.method;
    raw.target = ex_.target;
    raw.version = static_cast<int>(req.version());
    for (const auto& field : req) raw.headers.add(std::string(sv(field.name_string())), std::string(sv(field.value())));
    if (spool_) raw.body = std::move(*spool_).finish();
    raw.remote_address = ex_.remote;
    raw.request_id = ex_.id;
    keep_alive_ = req.keep_alive();
    version_ = raw.version;
    head_request_ = req.method() == bhttp::verb::head;
    parser_.reset();
    spool_.reset();
    body_chunk_.clear();
    body_chunk_.shrink_to_fit();
    net::post(core_.workers(),
              [self = shared_from_this(), raw = std::move(raw)]() mutable { self->handle(std::move(raw)); });
  }

  // ---------------------------------------------------------------- handling (worker thread)

  Response internal_error() { return Response::text(500, "internal error, request id " + ex_.id + "\n"); }

  void handle(RawRequest raw) {
    // The Request outlives the response so that producers may refer to it.
    std::optional<Request> request;
    Response res;
    // Kept for CORS: the request's headers move into the Request below and
    // parsing may fail before one exists.
    const std::string method = raw.method;
    Headers cors_headers;
    for (const char* name : {"Origin", "Access-Control-Request-Method"})
      if (auto v = raw.headers.get(name)) cors_headers.add(name, std::string(*v));
    try {
      request.emplace(Request::parse(std::move(raw), core_.request_options()));
      res = core_.router().dispatch(*request);
    } catch (const HttpError& e) {
      int status = e.status() >= 400 && e.status() <= 599 ? e.status() : 500;
      res = Response::text(status, std::string(e.what()) + "\n");
    } catch (const std::exception& e) {
      core_.log().error("request id={} failed: {}", ex_.id, e.what());
      res = internal_error();
    } catch (...) {
      core_.log().error("request id={} failed with a non-standard exception", ex_.id);
      res = internal_error();
    }
    apply_cors(res, method, cors_headers, core_.config().cors_origins);
    respond(std::move(res));
  }

  void respond(Response res) {
    if (res.status < 200 || res.status > 599) {
      core_.log().error("request id={} handler returned status {}", ex_.id, res.status);
      res = internal_error();
    }
    Head h;
    h.status = res.status;
    bool handler_wants_close = false;
    for (auto v : res.headers.get_all("Connection"))
      if (iequals(v, "close")) handler_wants_close = true;
    h.close = !keep_alive_ || core_.stopping() || handler_wants_close;
    h.http10_keep_alive = version_ < 11 && !h.close;
    const bool send_body = !head_request_ && !has_no_body(res.status);

    auto* stream = std::get_if<StreamBody>(&res.body);
    if (!has_no_body(res.status)) {
      if (!stream) {
        h.framing = Framing::length;
        h.length = std::get<std::string>(res.body).size();
      } else if (stream->length) {
        h.framing = Framing::length;
        h.length = *stream->length;
      } else if (version_ >= 11) {
        h.framing = Framing::chunked;
      } else {
        h.close = true;  // HTTP/1.0 without a length: the end of the body is the close
        h.http10_keep_alive = false;
      }
    }
    auto head = build_head(h, res.headers, ex_.id);
    if (!head) {
      core_.log().error("request id={} handler set an invalid header", ex_.id);
      return respond(internal_error());
    }
    ex_.status = h.status;
    if (send_body && stream) return stream_body(h, std::move(res.headers), stream->producer);
    if (send_body && h.length >= kLargeResponseBytes) core_.schedule_trim();

    std::string out = std::move(*head);
    if (send_body) out += std::get<std::string>(res.body);
    ex_.bytes = send_body ? h.length : 0;
    net::post(socket_.get_executor(), [self = shared_from_this(), out = std::move(out), close = h.close]() mutable {
      self->write_out(std::move(out), close);
    });
  }

  void stream_body(const Head& h, Headers headers, const Producer& producer);

  // ---------------------------------------------------------------- writing (strand)

  void write_out(std::string out, bool close) {
    out_ = std::move(out);
    arm(Clock::now() + limits_.write_timeout);
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), close](error_code ec, std::size_t) {
      self->disarm();
      self->out_.clear();
      self->end_exchange(!ec, close);
    });
  }

  // An error before the request reached a handler: answer and close.
  void fail_request(int status, const std::string& message) {
    state_ = State::closing;
    if (ex_.id.empty()) ex_.id = random_request_id();
    if (ex_.start == Clock::time_point{}) ex_.start = Clock::now();
    parser_.reset();
    spool_.reset();
    if (!socket_.is_open()) return end_exchange(false, true);
    Head h;
    h.status = status;
    h.framing = Framing::length;
    std::string body = message + "\n";
    h.length = body.size();
    h.close = true;
    Headers headers;
    headers.add("Content-Type", "text/plain; charset=utf-8");
    out_ = *build_head(h, headers, ex_.id) + body;
    ex_.status = status;
    ex_.bytes = body.size();
    arm(Clock::now() + std::min<Clock::duration>(limits_.write_timeout, kErrorWriteTime));
    net::async_write(socket_, net::buffer(out_), [self = shared_from_this()](error_code ec, std::size_t) {
      self->disarm();
      self->end_exchange(!ec, true);
    });
  }

  // Called on the strand when a response is complete (or failed).
  void end_exchange(bool ok, bool close) {
    log_access(ok);
    first_request_ = false;
    if (!ok) return close_now();
    if (close) return graceful_close();
    wait_for_request();
  }

  void log_access(bool ok) {
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - ex_.start).count();
    core_.log().info("access id={} remote={} method={} target={} status={} bytes={} ms={:.1f}{}", ex_.id,
                     ex_.remote.empty() ? remote_ : ex_.remote,
                     ex_.method, quote_for_log(ex_.target), ex_.status, ex_.bytes, ms, ok ? "" : " aborted=1");
  }

  // Closes at once (errors, idle connections, drain timeout).
  void close_now() {
    state_ = State::closing;
    disarm();
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  // After a response with "Connection: close": stop sending, then read and
  // discard what the client still sends for a moment, so that closing with
  // unread data does not reset the connection before the client has read
  // the response (RFC 9112 9.6).
  void graceful_close() {
    state_ = State::closing;
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    // Shorter when stopping, so that shutdown is not held up by clients
    // that keep their end open.
    arm(Clock::now() + (core_.stopping() ? kStopLingerTime : kLingerTime));
    linger();
  }
  void linger() {
    socket_.async_read_some(net::buffer(discard_), [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->close_now();
      self->linger();
    });
  }

  ServerCore& core_;
  const Limits& limits_;
  const std::uint64_t id_;
  tcp::socket socket_;
  net::steady_timer timer_;
  std::uint64_t timer_gen_ = 0;
  bool timed_out_ = false;
  const bool expect_proxy_header_;
  net::ip::address client_;  // the TCP peer, or the client a trusted proxy's PROXY header named
  std::string remote_;       // client_ as text
  bool client_trusted_ = false;  // client_ is a trusted proxy: X-Forwarded-For names the client

  State state_ = State::idle;
  bool first_request_ = true;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  std::vector<char> body_chunk_;
  std::optional<BlobWriter> spool_;
  Exchange ex_;
  bool keep_alive_ = true;
  bool head_request_ = false;
  int version_ = 11;
  std::string out_;
  std::array<char, 4096> discard_{};
};

// The BodyWriter a producer sees: buffers small writes into chunks of
// kChunkBytes and sends each with a blocking write (one chunk in flight).
// The response head goes out with the first chunk, so a producer that fails
// early can still be answered with a 500, and a stop() that came meanwhile
// still gets "Connection: close" into it.
class StreamWriter final : public BodyWriter {
 public:
  StreamWriter(Connection& c, ServerCore& core, const Head& head, Headers headers, std::string request_id)
      : conn_(c),
        core_(core),
        head_(head),
        headers_(std::move(headers)),
        request_id_(std::move(request_id)),
        framing_(head.framing),
        remaining_(head.length) {
    buf_.reserve(kChunkBytes);
  }

  bool write(std::string_view bytes) override {
    if (failed_) return false;
    if (framing_ == Framing::length && bytes.size() > remaining_) {
      overflow_ = true;  // never send more than Content-Length promised
      bytes = bytes.substr(0, static_cast<std::size_t>(remaining_));
    }
    remaining_ -= framing_ == Framing::length ? bytes.size() : 0;
    if (buf_.size() + bytes.size() <= kChunkBytes) {
      buf_.append(bytes);
    } else if (!send(bytes, false)) {
      return false;
    }
    return !overflow_;
  }

  bool flush() override { return !failed_ && send({}, false); }
  bool finish() { return !failed_ && send({}, true); }

  bool started() const noexcept { return started_; }
  bool close() const noexcept { return head_.close; }
  bool failed() const noexcept { return failed_; }
  bool overflowed() const noexcept { return overflow_; }
  std::uint64_t missing() const noexcept { return framing_ == Framing::length ? remaining_ : 0; }
  std::uint64_t bytes() const noexcept { return sent_; }

 private:
  bool send(std::string_view extra, bool last) {
    const std::size_t size = buf_.size() + extra.size();
    if (size == 0 && !last && started()) return true;
    std::vector<net::const_buffer> out;
    std::string head;
    if (!started_) {
      if (core_.stopping()) {
        head_.close = true;
        head_.http10_keep_alive = false;
      }
      head = build_head(head_, headers_, request_id_).value_or("");  // validated by respond()
      out.push_back(net::buffer(head));
    }
    char size_line[32];
    if (framing_ == Framing::chunked && size > 0) {
      int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", size);
      out.push_back(net::buffer(size_line, static_cast<std::size_t>(n)));
    }
    if (!buf_.empty()) out.push_back(net::buffer(buf_));
    if (!extra.empty()) out.push_back(net::buffer(extra.data(), extra.size()));
    static constexpr std::string_view kCrlf = "\r\n", kLast = "0\r\n\r\n";
    if (framing_ == Framing::chunked && size > 0) out.push_back(net::buffer(kCrlf.data(), kCrlf.size()));
    if (framing_ == Framing::chunked && last) out.push_back(net::buffer(kLast.data(), kLast.size()));
    if (out.empty()) return true;
    bool ok = conn_.write_blocking(std::move(out));
    started_ = true;
    buf_.clear();
    sent_ += size;
    if (!ok) failed_ = true;
    return ok;
  }

  Connection& conn_;
  ServerCore& core_;
  Head head_;
  Headers headers_;
  std::string request_id_;
  bool started_ = false;
  Framing framing_;
  std::uint64_t remaining_;
  std::string buf_;
  bool failed_ = false;
  bool overflow_ = false;
  std::uint64_t sent_ = 0;
};

void Connection::stream_body(const Head& h, Headers headers, const Producer& producer) {
  StreamWriter writer(*this, core_, h, std::move(headers), ex_.id);
  bool threw = false;
  try {
    if (producer) producer(writer);
  } catch (const std::exception& e) {
    threw = true;
    core_.log().error("request id={} producer failed: {}", ex_.id, e.what());
  } catch (...) {
    threw = true;
    core_.log().error("request id={} producer failed with a non-standard exception", ex_.id);
  }
  if (threw && !writer.started()) return respond(internal_error());  // nothing sent yet: a clean 500

  bool ok = !threw && !writer.failed();
  if (ok && writer.missing() > 0) {
    core_.log().error("request id={} producer wrote {} bytes less than its Content-Length", ex_.id, writer.missing());
    writer.flush();
    ok = false;  // the client must see a short body, so cut the connection
  }
  if (ok) ok = writer.finish();
  if (writer.overflowed()) core_.log().warn("request id={} producer wrote more than its Content-Length", ex_.id);
  ex_.bytes = writer.bytes();
  net::post(socket_.get_executor(),
            [self = shared_from_this(), ok, close = writer.close()] { self->end_exchange(ok, close); });
  // Whether it finished or the client went away, what the handler and the
  // producer allocated has just been freed.
  if (writer.bytes() >= kLargeResponseBytes || !ok) core_.schedule_trim();
}

// ---------------------------------------------------------------- ServerCore

namespace {
unsigned hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::shared_ptr<spdlog::logger> default_logger(std::shared_ptr<spdlog::logger> given) {
  return given ? std::move(given) : spdlog::default_logger();
}

ServerConfig validated(ServerConfig c) {
  validate(c);
  return c;
}
}  // namespace

ServerCore::ServerCore(ServerConfig config, Router router, std::shared_ptr<spdlog::logger> logger)
    : config_(validated(std::move(config))),
      router_(std::move(router)),
      log_(default_logger(std::move(logger))),
      trusted_proxies_(config_.trusted_proxies),
      io_threads_(config_.io_threads ? config_.io_threads : std::min(hardware_threads(), 4u)),
      ioc_(static_cast<int>(io_threads_)),
      strand_(net::make_strand(ioc_)),
      work_(net::make_work_guard(ioc_)),
      acceptor_(strand_),
      signals_(strand_),
      drain_timer_(strand_),
      accept_retry_timer_(strand_),
      trim_timer_(strand_),
      workers_(config_.threads ? config_.threads : 4 * hardware_threads()) {
  tcp::endpoint endpoint;
  try {
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(config_.host, std::to_string(config_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service);
    endpoint = results.begin()->endpoint();
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(net::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("cannot listen on " + config_.host + ":" + std::to_string(config_.port) + ": " +
                             e.code().message());
  }
  if (!config_.spool_dir.empty() && !std::filesystem::is_directory(config_.spool_dir))
    throw ConfigError("server.spool_dir: " + config_.spool_dir.string() + " is not a directory");
  port_ = acceptor_.local_endpoint().port();
  std::string host =
      endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]" : endpoint.address().to_string();
  url_ = "http://" + host + ":" + std::to_string(port_);
  request_options_.base_url = config_.base_url;
  request_options_.fallback_host = host + ":" + std::to_string(port_);
  request_options_.multipart.spool_threshold = config_.limits.spool_threshold;
  request_options_.multipart.spool_dir = config_.spool_dir;
  request_options_.multipart.max_parts = config_.limits.max_form_parts;
}

ServerCore::~ServerCore() {
  {
    std::lock_guard lock(mutex_);
    destroying_ = true;  // connections destroyed with the io_context must not post to it
  }
  workers_.join();
}

void ServerCore::run() {
  if (ran_.exchange(true)) throw std::logic_error("Server::run() may be called only once");
  net::post(strand_, [this] {
    if (stopping_) return;  // stop() came first
    if (config_.handle_signals) {
      signals_.add(SIGINT);
      signals_.add(SIGTERM);
      signals_.async_wait([this](error_code ec, int signal) {
        if (!ec) begin_shutdown("signal " + std::to_string(signal));
      });
    }
    do_accept();
    log_->info("listening on {}", url_);
  });
  std::vector<std::jthread> threads;
  for (unsigned i = 1; i < io_threads_; ++i) threads.emplace_back([this] { run_io(); });
  run_io();
  threads.clear();  // joins
  workers_.join();
}

void ServerCore::run_io() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      // Handlers are written not to throw; keep serving if one does.
      log_->error("unexpected exception in a network thread: {}", e.what());
    }
  }
}

void ServerCore::do_accept() {
  acceptor_.async_accept(net::make_strand(ioc_), net::bind_executor(strand_, [this](error_code ec, tcp::socket socket) {
                           on_accept(ec, std::move(socket));
                         }));
}

void ServerCore::on_accept(error_code ec, tcp::socket socket) {
  if (ec == net::error::operation_aborted || stopping_) return;
  if (ec) {
    // E.g. out of file descriptors: wait a little instead of spinning.
    log_->warn("accept failed: {}", ec.message());
    accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
    accept_retry_timer_.async_wait([this](error_code e) {
      if (!e && !stopping_) do_accept();
    });
    return;
  }
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) {  // already reset by the client
    socket.close(ec);
    return do_accept();
  }
  const net::ip::address peer = canonical(endpoint.address());
  const bool trusted = trusted_proxies_.contains(peer);
  // A trusted proxy's connections carry other clients: with the PROXY
  // protocol the client is counted once its header has been read
  // (admit_client); with X-Forwarded-For only requests are attributed to
  // it, since one proxy connection carries requests of many clients in
  // turn, so the proxy itself is not limited per client.
  const std::string client = trusted ? std::string() : peer.to_string();
  // Declared before the lock: a Connection released here must not be
  // destroyed while mutex_ is held (its destructor takes it).
  std::shared_ptr<Connection> connection;
  Eviction eviction;
  enum class Outcome { admitted, client_limit, full } outcome = Outcome::admitted;
  {
    std::lock_guard lock(mutex_);
    if (!client.empty() && client_over_limit_locked(client)) {
      outcome = Outcome::client_limit;
    } else if (connections_.size() - evicted_ >= config_.limits.max_connections) {
      eviction = evict_locked();
      if (!eviction.freed) outcome = Outcome::full;
    }
    if (outcome == Outcome::admitted) {
      socket.set_option(tcp::no_delay(true), ec);  // small responses must not wait for delayed ACKs
      const std::uint64_t id = ++next_id_;
      connection = std::make_shared<Connection>(*this, std::move(socket), id, peer, trusted && config_.proxy_protocol);
      connections_.emplace(id, Slot{connection, client, true, false});
      waiting_.insert(id);
      if (!client.empty()) ++per_client_[client];
    }
  }
  switch (outcome) {
    case Outcome::admitted:
      if (eviction.victim) net::post(eviction.victim->executor(), [victim = eviction.victim] { victim->evict(); });
      if (eviction.freed) note(Burst::evicted, "");
      connection->start();
      break;
    case Outcome::client_limit:
      reject(socket);
      note(Burst::client_limit, client);
      break;
    case Outcome::full:
      reject(socket);
      note(Burst::server_full, "");
      break;
  }
  do_accept();
}

bool ServerCore::client_over_limit_locked(const std::string& client) const {
  auto it = per_client_.find(client);
  return it != per_client_.end() && it->second >= config_.limits.max_connections_per_client;
}

// The oldest connection that has not sent a whole request head (waiting_),
// marked as leaving so that it no longer counts against max_connections;
// nothing freed when every connection is busy with a request. Like nginx when it
// runs out of connections, the server sheds those that cost the least to
// lose instead of turning new clients away while slow senders hold slots.
ServerCore::Eviction ServerCore::evict_locked() {
  while (!waiting_.empty()) {
    const std::uint64_t id = *waiting_.begin();
    waiting_.erase(waiting_.begin());
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Slot& slot = it->second;
    slot.waiting = false;
    slot.evicted = true;
    ++evicted_;
    // An expired one is already on its way out (its destructor is waiting
    // for the lock): the room is free, there is just nothing to close.
    return {true, slot.connection.lock()};
  }
  return {};
}

void ServerCore::reject(tcp::socket& socket) {
  error_code ec;
  // Best effort without blocking: a fresh socket's send buffer takes it.
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(busy_response(random_request_id())), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void ServerCore::note(Burst kind, const std::string& detail) {
  const auto now = Clock::now();
  std::uint64_t unlogged = 0;
  {
    std::lock_guard lock(mutex_);
    BurstLog& b = bursts_[static_cast<std::size_t>(kind)];
    if (b.last != Clock::time_point{} && now - b.last < kBurstLogInterval) {
      ++b.unlogged;
      return;
    }
    unlogged = std::exchange(b.unlogged, 0);
    b.last = now;
  }
  const std::string since = unlogged ? fmt::format(" ({} more since the last such message)", unlogged) : "";
  const auto& l = config_.limits;
  switch (kind) {
    case Burst::server_full:
      log_->warn("connection limit ({}) reached and no connection waiting for a request head to close: "
                 "refusing new connections with 503{}", l.max_connections, since);
      break;
    case Burst::client_limit:
      log_->warn("client {} reached limits.max_connections_per_client ({}): refusing its new connections with 503{}",
                 detail, l.max_connections_per_client, since);
      break;
    case Burst::evicted:
      log_->warn("connection limit ({}) reached: closing connections still waiting for a request head, "
                 "oldest first, to make room{}", l.max_connections, since);
      break;
    case Burst::bad_proxy_header:
      log_->warn("invalid PROXY protocol header {}: connection closed{}", detail, since);
      break;
    case Burst::count:
      break;
  }
}

std::vector<std::shared_ptr<Connection>> ServerCore::snapshot() {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mutex_);
  for (auto& [id, slot] : connections_)
    if (auto c = slot.connection.lock()) out.push_back(std::move(c));
  return out;
}

void ServerCore::connection_closed(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  const Slot& slot = it->second;
  if (slot.waiting) waiting_.erase(id);
  if (slot.evicted) --evicted_;
  if (!slot.client.empty()) {
    auto count = per_client_.find(slot.client);
    if (count != per_client_.end() && --count->second == 0) per_client_.erase(count);
  }
  connections_.erase(it);
  if (connections_.empty() && stopping_ && !destroying_) net::post(strand_, [this] { finish_shutdown(); });
}

bool ServerCore::admit_client(std::uint64_t id, const net::ip::address& client) {
  if (trusted_proxies_.contains(client)) return true;  // a chain of proxies: not counted, as in on_accept
  const std::string key = client.to_string();
  {
    std::lock_guard lock(mutex_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return false;
    if (!client_over_limit_locked(key)) {
      it->second.client = key;
      ++per_client_[key];
      return true;
    }
  }
  note(Burst::client_limit, key);
  return false;
}

bool ServerCore::head_received(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = connections_.find(id);
  if (it == connections_.end() || it->second.evicted) return false;
  if (it->second.waiting) waiting_.erase(id);
  it->second.waiting = false;
  return true;
}

void ServerCore::schedule_trim() {
  net::post(strand_, [this] {
    if (stopping_) return;
    const auto now = Clock::now();
    if (!trim_pending_since_) trim_pending_since_ = now;
    if (now - *trim_pending_since_ >= kTrimMaxDelay) return;  // the armed trim stands
    // Re-arming cancels the previous wait: the trim follows the last response.
    trim_timer_.expires_after(kTrimDelay);
    trim_timer_.async_wait([this](error_code ec) {
      if (ec || stopping_) return;
      trim_pending_since_.reset();
      // On a worker: a trim walks every arena and may take milliseconds.
      net::post(workers_, trim_malloc);
    });
  });
}

void ServerCore::begin_shutdown(const std::string& why) {
  if (stopping_.exchange(true)) return;
  error_code ec;
  trim_timer_.cancel();
  acceptor_.close(ec);
  accept_retry_timer_.cancel();
  signals_.cancel(ec);
  signals_.clear(ec);  // restores default signal handling
  auto connections = snapshot();
  log_->info("stopping ({}): {} connection(s) open, draining for up to {} ms", why, connections.size(),
             config_.limits.drain_timeout.count());
  for (auto& c : connections) net::post(c->executor(), [c] { c->close_if_idle(); });
  connections.clear();  // a Connection must not be destroyed here while holding our references
  drain_timer_.expires_after(config_.limits.drain_timeout);
  drain_timer_.async_wait([this](error_code e) {
    if (!e) force_close_all();
  });
  std::lock_guard lock(mutex_);
  if (connections_.empty()) net::post(strand_, [this] { finish_shutdown(); });
}

void ServerCore::force_close_all() {
  auto connections = snapshot();
  if (connections.empty()) return;
  log_->warn("drain timeout: closing {} connection(s) with requests in progress", connections.size());
  for (auto& c : connections) net::post(c->executor(), [c] { c->force_close(); });
}

void ServerCore::finish_shutdown() {
  if (shutdown_finished_) return;
  {
    std::lock_guard lock(mutex_);
    if (!connections_.empty()) return;
  }
  shutdown_finished_ = true;
  drain_timer_.cancel();
  work_.reset();  // run() returns once the remaining handlers are done
  log_->info("stopped");
}

}  // namespace detail

// ---------------------------------------------------------------- Server

Server::Server(ServerConfig config, Router router, std::shared_ptr<spdlog::logger> logger)
    : core_(std::make_unique<detail::ServerCore>(std::move(config), std::move(router), std::move(logger))) {}
Server::~Server() = default;
void Server::run() { core_->run(); }
void Server::stop() { core_->stop(); }
std::uint16_t Server::port() const noexcept { return core_->port(); }
std::string Server::url() const { return core_->url(); }
const ServerConfig& Server::config() const noexcept { return core_->config(); }

}  // namespace pixserve::http
