// Writing responses: the head and a whole body, or a streamed body through
// StreamWriter; the error answers before a handler ran; the access log line.
#include "http/connection.hpp"

#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>
#include <variant>

#include <spdlog/spdlog.h>

namespace pixserve::http::detail {

namespace {

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


// The BodyWriter a producer sees: buffers small writes into chunks of
// kChunkBytes and sends each with a blocking write (one chunk in flight).
// The response head goes out with the first chunk, so a producer that fails
// early can still be answered with a 500, and a stop() that came meanwhile
// still gets "Connection: close" into it.
class StreamWriter final : public BodyWriter {
 public:
  StreamWriter(Connection& c, ServerCore& core, const ResponseHead& head, Headers headers, std::string request_id)
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
  ResponseHead head_;
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

}  // namespace

void Connection::respond(Response res) {
  if (res.status < 200 || res.status > 599) {
    core_.log().error("request id={} handler returned status {}", ex_.id, res.status);
    res = internal_error();
  }
  ResponseHead h;
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

  std::string out = std::move(*head);
  if (send_body) out += std::get<std::string>(res.body);
  ex_.bytes = send_body ? h.length : 0;
  net::post(socket_.get_executor(), [self = shared_from_this(), out = std::move(out), close = h.close]() mutable {
    self->write_out(std::move(out), close);
  });
}

void Connection::write_out(std::string out, bool close) {
  out_ = std::move(out);
  arm(Clock::now() + limits_.write_timeout);
  net::async_write(socket_, net::buffer(out_), [self = shared_from_this(), close](error_code ec, std::size_t) {
    self->disarm();
    // clear() would keep the capacity: a large body would stay with an idle
    // keep-alive connection. Once it is freed, a trim can hand it back.
    const bool large = self->out_.size() >= kLargeResponseBytes;
    std::string().swap(self->out_);
    if (large) self->core_.schedule_trim();
    self->end_exchange(!ec, close);
  });
}

// An error before the request reached a handler: answer and close.
void Connection::fail_request(int status, const std::string& message) {
  state_ = State::closing;
  if (ex_.id.empty()) ex_.id = random_request_id();
  if (ex_.start == Clock::time_point{}) ex_.start = Clock::now();
  parser_.reset();
  spool_.reset();
  if (!socket_.is_open()) return end_exchange(false, true);
  ResponseHead h;
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
void Connection::end_exchange(bool ok, bool close) {
  log_access(ok);
  first_request_ = false;
  if (!ok) return close_now();
  if (close) return graceful_close();
  wait_for_request();
}

void Connection::log_access(bool ok) {
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - ex_.start).count();
  core_.log().info("access id={} remote={} method={} target={} status={} bytes={} ms={:.1f}{}", ex_.id,
                   ex_.remote.empty() ? remote_ : ex_.remote,
                   ex_.method, quote_for_log(ex_.target), ex_.status, ex_.bytes, ms, ok ? "" : " aborted=1");
}

void Connection::stream_body(const ResponseHead& h, Headers headers, const Producer& producer) {
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

}  // namespace pixserve::http::detail
