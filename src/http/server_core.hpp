// The inside of http::Server, shared by its files: the listener and the
// connection slots (ServerCore: server.cpp, connection_limits.cpp) and the
// connections (Connection: connection.hpp). Internal to the server.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio.hpp>

#include "http/settings.hpp"
#include "http/malloc_tuning.hpp"
#include "http/proxy.hpp"
#include "http/request.hpp"
#include "http/router.hpp"

namespace spdlog {
class logger;
}

namespace pixserve::http::detail {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

// Events that come in floods under attack; each is logged at most once per
// kBurstLogInterval, with how many happened in between.
enum class Burst : std::size_t { server_full, client_limit, evicted, bad_proxy_header, count };

class Connection;

// Everything the server shares between its threads; Server is a thin handle.
class ServerCore {
 public:
  ServerCore(ServerSettings config, Router router, std::shared_ptr<spdlog::logger> logger);
  ~ServerCore();

  void run();
  void stop() {
    net::post(strand_, [this] { begin_shutdown("stop requested"); });
  }

  std::uint16_t port() const noexcept { return port_; }
  const std::string& url() const noexcept { return url_; }
  const ServerSettings& config() const noexcept { return config_; }
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
  ServerSettings config_;
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

}  // namespace pixserve::http::detail
