// The HTTP/1.1 server (Boost.Beast on Asio).
//
//   http::Router router;
//   router.get_post("/api/sia/query", sia_query);
//   http::Server server(config, std::move(router));   // binds now; port() is known
//   server.run();                                     // blocks until SIGTERM/SIGINT or stop()
//
// Threads: a few network threads run all socket I/O asynchronously (with
// timeouts); handlers and streaming producers run on a separate pool of
// worker threads, so a handler may block (database, FITS I/O) without
// stalling the network. A producer writing to a slow client waits for each
// chunk to be sent: memory per response stays bounded. What handlers free
// goes back to the system: the server limits glibc to two malloc arenas
// (unless MALLOC_ARENA_MAX is set) and runs malloc_trim once large responses
// have stopped for a second, so RSS returns to its level before a burst of
// large or aborted downloads (see http/malloc_tuning.hpp).
//
// Per connection: keep-alive and pipelining; the request head must arrive
// within limits.header_timeout and the whole request within
// limits.request_timeout (else 408); bodies above limits.max_body_bytes get
// 413 and large bodies are spooled to disk. Connections: one client address
// may hold limits.max_connections_per_client (more get 503); when
// limits.max_connections are open, connections that have not sent a whole
// request head are closed, longest waiting first, to make room, and only
// when there are none does a new one get 503. Behind trusted proxies the
// client address comes from a PROXY protocol header or X-Forwarded-For (see
// settings.hpp). Every response carries X-Request-Id (the
// client's when valid, else a random one) and one access-log line is written
// per request (spdlog, key=value).
//
// stop() (or SIGTERM/SIGINT when config.handle_signals) stops accepting,
// closes idle connections and lets in-flight requests finish; after
// limits.drain_timeout the remaining connections are cut. run() returns once
// every connection is gone and every worker has finished.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "http/settings.hpp"
#include "http/router.hpp"

namespace spdlog {
class logger;
}

namespace pixserve::http {

namespace detail {
class ServerCore;
}

class Server {
 public:
  // Validates the settings and binds host:port. Throws settings::ConfigError or
  // std::runtime_error (address in use, unknown host).
  Server(ServerSettings config, Router router, std::shared_ptr<spdlog::logger> logger = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until stopped; call once. Logs "listening on http://HOST:PORT".
  void run();
  // Graceful stop; thread-safe, may be called before or during run() and
  // from handlers.
  void stop();

  std::uint16_t port() const noexcept;  // the bound port (useful with port 0)
  std::string url() const;              // "http://HOST:PORT"
  const ServerSettings& config() const noexcept;

 private:
  std::unique_ptr<detail::ServerCore> core_;
};

}  // namespace pixserve::http
