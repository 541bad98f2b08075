// Helpers shared by the benchmarks that talk to an in-process pixserve over
// loopback HTTP: timing and percentiles, a bare HTTP/1.1 client (GET and a
// form POST), SODA CIRCLE forms and concurrent clients.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/params.hpp"

namespace pixserve::bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The p-quantile (0..1) of v by the nearest rank; v must not be empty.
inline double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::min<double>(static_cast<double>(v.size() - 1), p * static_cast<double>(v.size())))];
}

// A bare HTTP/1.1 client: one request per connection (Connection: close),
// the body counted and dropped as it arrives, so that 20 clients receiving
// 200 MB each hold no more than their read buffers.
struct HttpResult {
  int status = 0;
  std::uint64_t body_bytes = 0;
  double ms = 0.0;
};

class Socket {
 public:
  Socket() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Sends a whole request (head and body) to 127.0.0.1:port and reads the
// response to its end; ms counts from connect to the last byte.
inline HttpResult http_request(std::uint16_t port, const std::string& request) {
  const auto start = Clock::now();
  HttpResult result;
  Socket s;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) return result;
  for (std::size_t sent = 0; sent < request.size();) {
    const auto n = ::send(s.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return result;
    sent += static_cast<std::size_t>(n);
  }
  std::vector<char> buffer(1 << 20);
  std::string head;
  bool in_body = false;
  for (;;) {
    const auto n = ::recv(s.fd(), buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    if (in_body) {
      result.body_bytes += static_cast<std::uint64_t>(n);
      continue;
    }
    head.append(buffer.data(), static_cast<std::size_t>(n));
    const auto end = head.find("\r\n\r\n");
    if (end == std::string::npos) continue;
    in_body = true;
    result.body_bytes = head.size() - end - 4;
    if (head.size() > 12) result.status = std::atoi(head.c_str() + 9);
  }
  result.ms = ms_since(start);
  return result;
}

inline HttpResult http_get(std::uint16_t port, const std::string& path) {
  return http_request(port, fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path));
}

inline HttpResult http_post(std::uint16_t port, const std::string& path, const std::string& form) {
  return http_request(port, fmt::format("POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        "Content-Type: application/x-www-form-urlencoded\r\n"
                                        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                                        path, form.size(), form));
}

// A SODA form: every ID with one CIRCLE (degrees).
inline std::string circle_form(const std::vector<std::string>& ids, double ra, double dec, double radius) {
  std::string form;
  for (const auto& id : ids) form += "ID=" + http::percent_encode(id) + "&";
  form += "CIRCLE=" + http::percent_encode(fmt::format("{:.10f} {:.10f} {:.10f}", ra, dec, radius));
  return form;
}

// Runs `clients` threads, each doing `rounds` requests; returns every result.
inline std::vector<HttpResult> concurrent(int clients, int rounds, const std::function<HttpResult()>& one) {
  std::mutex mutex;
  std::vector<HttpResult> all;
  {
    std::vector<std::jthread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        for (int r = 0; r < rounds; ++r) {
          auto res = one();
          std::lock_guard lock(mutex);
          all.push_back(res);
        }
      });
    }
  }
  return all;
}

inline std::vector<double> latencies(const std::vector<HttpResult>& results) {
  std::vector<double> ms;
  for (const auto& r : results) ms.push_back(r.ms);
  return ms;
}

inline bool all_ok(const std::vector<HttpResult>& results) {
  return std::all_of(results.begin(), results.end(), [](const HttpResult& r) { return r.status == 200; });
}

}  // namespace pixserve::bench
