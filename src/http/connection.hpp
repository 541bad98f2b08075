// One client connection of the server: reading requests (with the
// connection's timeouts and limits), running the handler on a worker thread,
// writing the response, closing. Internal to the server; the member
// functions are defined in connection.cpp (reading, handling, closing) and
// response_writer.cpp (writing responses).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/params.hpp"
#include "http/response.hpp"
#include "http/response_head.hpp"
#include "http/server_core.hpp"

namespace pixserve::http::detail {

namespace bhttp = boost::beast::http;

inline constexpr std::size_t kChunkBytes = 64 << 10;  // body read size and streaming chunk size
inline constexpr auto kErrorWriteTime = std::chrono::seconds(5);

// All socket work happens on the connection's strand; while a handler runs,
// the worker thread owns the per-request fields and talks to the socket only
// by posting to the strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `peer` is the TCP peer; with `expect_proxy_header` (a trusted proxy
  // speaking the PROXY protocol) the client is read from the first bytes.
  Connection(ServerCore& core, tcp::socket socket, std::uint64_t id, const net::ip::address& peer,
             bool expect_proxy_header);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { core_.connection_closed(id_); }

  void start();
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
  bool write_blocking(std::vector<net::const_buffer> buffers);

 private:
  enum class State { idle, reading, handling, closing };

  struct Exchange {
    std::string id, method = "-", target = "-";
    std::string remote;  // empty until the head is read: then the connection's client
    int status = 0;
    std::uint64_t bytes = 0;
    Clock::time_point start;
  };

  // timeouts
  void arm(Clock::time_point deadline);
  void disarm();

  // client address
  void set_client(const net::ip::address& address);
  void read_proxy_header();
  void refuse();
  std::string request_remote(const bhttp::request<bhttp::buffer_body>& req) const;

  // reading (strand)
  void wait_for_request();
  void begin_request();
  void on_read_error(error_code ec);
  void on_header(error_code ec);
  void read_body();
  void on_body(error_code ec);
  void dispatch_request();

  // handling (worker thread)
  Response internal_error();
  void handle(RawRequest raw);

  // writing: respond and stream_body on the worker thread, the rest on the
  // strand (response_writer.cpp)
  void respond(Response res);
  void stream_body(const ResponseHead& h, Headers headers, const Producer& producer);
  void write_out(std::string out, bool close);
  void fail_request(int status, const std::string& message);
  void end_exchange(bool ok, bool close);
  void log_access(bool ok);

  // closing (strand)
  void close_now();
  void graceful_close();
  void linger();

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
  boost::beast::flat_buffer buffer_;
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

}  // namespace pixserve::http::detail
