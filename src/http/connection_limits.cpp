// ServerCore's table of open connections and the connection limits:
// limits.max_connections_per_client, and limits.max_connections with the
// eviction of connections still waiting for a request head; the log lines
// of refused and evicted connections, at most one per kBurstLogInterval.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/connection.hpp"
#include "http/server_core.hpp"

namespace pixserve::http::detail {

namespace {
constexpr auto kBurstLogInterval = std::chrono::seconds(10);
}  // namespace

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

}  // namespace pixserve::http::detail
