#include "db/standbys.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "db/database.hpp"

namespace pixserve::db {
namespace {

// The monitor's own connections: read-only, and a check that hangs (a
// server that accepted the connection but does not answer) gives up.
constexpr PostgresOptions kMonitorConnection{.read_only = true, .statement_timeout = std::chrono::seconds(5)};

// On a standby: whether it is one, whether it has replayed the primary's
// WAL position (NULL when that is unknown), and how old the last
// transaction it replayed is (NULL before the first).
constexpr const char* kStandbyCheck =
    "SELECT pg_is_in_recovery(), pg_wal_lsn_diff(pg_last_wal_replay_lsn(), CAST(? AS pg_lsn)) >= 0, "
    "EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())";

// A connection of the monitor, (re)opened when needed.
Connection& monitor_connection(std::unique_ptr<Connection>& slot, const std::string& url) {
  if (!slot) slot = open_postgresql(url, kMonitorConnection);
  return *slot;
}

}  // namespace

Standbys::Standbys(StandbyOptions options) : options_(std::move(options)) {
  states_.assign(options_.standby_urls.size(),
                 StandbyState{.qualifies = false, .lag_s = std::nullopt, .note = "not checked yet"});
  thread_ = std::jthread([this](std::stop_token stop) { run(std::move(stop)); });
}

std::vector<std::size_t> Standbys::for_read() {
  std::lock_guard lock(mutex_);
  std::vector<std::size_t> order;
  const std::size_t n = states_.size();
  if (n == 0) return order;
  const std::size_t start = next_++ % n;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (start + k) % n;
    if (states_[i].qualifies) order.push_back(i);
  }
  return order;
}

void Standbys::failed(std::size_t standby, std::string_view why) {
  std::lock_guard lock(mutex_);
  auto& s = states_.at(standby);
  s.qualifies = false;
  s.note = fmt::format("a read failed ({}); skipped until a check finds it back", why);
}

std::vector<StandbyState> Standbys::states() const {
  std::lock_guard lock(mutex_);
  return states_;
}

void Standbys::run(std::stop_token stop) {
  std::unique_ptr<Connection> primary;
  std::vector<std::unique_ptr<Connection>> standbys(size());
  const auto check = [&] {
    // The primary's position first: what a standby has replayed by the
    // time it is asked is compared with it.
    std::optional<std::string> primary_lsn;
    std::string primary_problem;
    try {
      auto q = monitor_connection(primary, options_.primary_url).prepare("SELECT CAST(pg_current_wal_lsn() AS TEXT)");
      if (q->step()) primary_lsn = q->get_text(0);
    } catch (const DbError& e) {
      primary_problem = std::string(e.reason());
    }
    for (std::size_t i = 0; i < size() && !stop.stop_requested(); ++i) {
      StandbyState found{.qualifies = false, .lag_s = std::nullopt, .note = {}};
      try {
        auto q = monitor_connection(standbys[i], options_.standby_urls[i]).prepare(kStandbyCheck);
        q->bind(1, primary_lsn);
        if (!q->step()) throw DbError("the check returned no row");
        const bool in_recovery = q->get_int(0) != 0;
        const auto caught_up = q->get_optional_int(1);
        const auto since_last_replayed = q->get_optional_double(2);
        if (!in_recovery) {
          found.note = "not in recovery: not a standby (promoted?)";
        } else if (!primary_lsn) {
          found.note = "its lag is unknown: the primary's WAL position cannot be read (" + primary_problem + ")";
        } else if (caught_up.value_or(0) != 0) {
          found.lag_s = 0.0;
        } else if (!since_last_replayed) {
          found.note = "it has replayed no transaction yet";
        } else {
          found.lag_s = std::max(0.0, *since_last_replayed);
        }
        if (found.lag_s) {
          const double bound = std::chrono::duration<double>(options_.max_lag).count();
          found.qualifies = *found.lag_s <= bound;
          found.note = found.qualifies ? "ok" : fmt::format("replay lag {:.1f} s, above the bound of {:.1f} s",
                                                            *found.lag_s, bound);
        }
      } catch (const Unavailable&) {
        found.note = "unreachable";
      } catch (const DbError& e) {
        found.note = std::string(e.reason());
      }
      std::lock_guard lock(mutex_);
      states_[i] = std::move(found);
    }
  };
  for (;;) {
    check();
    std::unique_lock lock(mutex_);
    // Woken early only by a stop request.
    wake_.wait_for(lock, stop, options_.check_interval, [] { return false; });
    if (stop.stop_requested()) return;
  }
}

}  // namespace pixserve::db
