#include "http/connection.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <future>
#include <utility>

#include <spdlog/spdlog.h>

#include "http/proxy.hpp"

namespace pixserve::http::detail {

namespace {
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr auto kStopLingerTime = std::chrono::milliseconds(300);
}  // namespace

Connection::Connection(ServerCore& core, tcp::socket socket, std::uint64_t id, const net::ip::address& peer,
                       bool expect_proxy_header)
    : core_(core),
      limits_(core.config().limits),
      id_(id),
      socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      expect_proxy_header_(expect_proxy_header) {
  set_client(peer);
}

void Connection::start() {
  net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (!self->expect_proxy_header_) return self->wait_for_request();
    self->arm(Clock::now() + self->limits_.header_timeout);
    self->read_proxy_header();
  });
}

bool Connection::write_blocking(std::vector<net::const_buffer> buffers) {
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

// One deadline per connection; on expiry pending socket operations are
// cancelled (not the socket closed, so that a 408 can still be sent).
void Connection::arm(Clock::time_point deadline) {
  timed_out_ = false;
  timer_.expires_at(deadline);
  timer_.async_wait([self = shared_from_this(), gen = ++timer_gen_](error_code ec) {
    if (ec || gen != self->timer_gen_) return;
    self->timed_out_ = true;
    error_code ignored;
    self->socket_.cancel(ignored);
  });
}

void Connection::disarm() {
  ++timer_gen_;
  timer_.cancel();
}

void Connection::set_client(const net::ip::address& address) {
  client_ = canonical(address);
  remote_ = client_.to_string();
  client_trusted_ = core_.trusted_proxies().contains(client_);
}

// The PROXY protocol header a trusted proxy sends before the request
// bytes. Whatever follows it stays in buffer_ for the HTTP parser. The
// header timer armed by start() covers this read.
void Connection::read_proxy_header() {
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
void Connection::refuse() {
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
std::string Connection::request_remote(const bhttp::request<bhttp::buffer_body>& req) const {
  if (!client_trusted_) return remote_;
  std::vector<std::string_view> values;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) values.push_back(sv(it->value()));
  if (values.empty()) return remote_;
  return client_from_forwarded_for(client_, values, core_.trusted_proxies()).to_string();
}

void Connection::wait_for_request() {
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

void Connection::begin_request() {
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
void Connection::on_read_error(error_code ec) {
  if (timed_out_) return fail_request(408, "request timeout");
  if (ec == bhttp::error::body_limit) return fail_request(413, "request body too large");
  if (ec == bhttp::error::header_limit) return fail_request(431, "request header too large");
  if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
      ec == net::error::operation_aborted || ec == bhttp::error::partial_message || !socket_.is_open())
    return close_now();
  fail_request(400, "bad request");
}

void Connection::on_header(error_code ec) {
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

void Connection::read_body() {
  auto& body = parser_->get().body();
  body.data = body_chunk_.data();
  body.size = body_chunk_.size();
  bhttp::async_read(socket_, buffer_, *parser_,
                    [self = shared_from_this()](error_code ec, std::size_t) { self->on_body(ec); });
}

void Connection::on_body(error_code ec) {
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

void Connection::dispatch_request() {
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

Response Connection::internal_error() { return Response::text(500, "internal error, request id " + ex_.id + "\n"); }

void Connection::handle(RawRequest raw) {
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

// Closes at once (errors, idle connections, drain timeout).
void Connection::close_now() {
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
void Connection::graceful_close() {
  state_ = State::closing;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  // Shorter when stopping, so that shutdown is not held up by clients
  // that keep their end open.
  arm(Clock::now() + (core_.stopping() ? kStopLingerTime : kLingerTime));
  linger();
}

void Connection::linger() {
  socket_.async_read_some(net::buffer(discard_), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->close_now();
    self->linger();
  });
}

}  // namespace pixserve::http::detail
