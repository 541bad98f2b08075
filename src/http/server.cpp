#include "http/server.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "http/connection.hpp"
#include "http/response_head.hpp"
#include "http/server_core.hpp"

namespace pixserve::http {

namespace detail {

// The listener: binds, accepts (admitting a connection or refusing it, see
// connection_limits.cpp), runs the network threads, returns memory after
// large responses and shuts down.

namespace {
unsigned hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::shared_ptr<spdlog::logger> default_logger(std::shared_ptr<spdlog::logger> given) {
  return given ? std::move(given) : spdlog::default_logger();
}

ServerSettings validated(ServerSettings c) {
  validate(c);
  return c;
}
}  // namespace

ServerCore::ServerCore(ServerSettings config, Router router, std::shared_ptr<spdlog::logger> logger)
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
    throw settings::ConfigError("server.spool_dir: " + config_.spool_dir.string() + " is not a directory");
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

void ServerCore::reject(tcp::socket& socket) {
  error_code ec;
  // Best effort without blocking: a fresh socket's send buffer takes it.
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(busy_response(random_request_id())), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
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

Server::Server(ServerSettings config, Router router, std::shared_ptr<spdlog::logger> logger)
    : core_(std::make_unique<detail::ServerCore>(std::move(config), std::move(router), std::move(logger))) {}
Server::~Server() = default;
void Server::run() { core_->run(); }
void Server::stop() { core_->stop(); }
std::uint16_t Server::port() const noexcept { return core_->port(); }
std::string Server::url() const { return core_->url(); }
const ServerSettings& Server::config() const noexcept { return core_->config(); }

}  // namespace pixserve::http
