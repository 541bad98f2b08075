// Hot standbys of a PostgreSQL primary (streaming replication) that reads
// may go to, and which of them may serve one now.
//
// A standby qualifies when it answers, is in recovery (a standby, not a
// promoted server), and its replay lag is within the bound. The lag is
// measured against the primary: a standby that has replayed the primary's
// current WAL position (pg_current_wal_lsn(), read just before) is caught up
// (lag 0) however long ago the last transaction was, since an idle primary
// writes no WAL; one that has not is as far behind as the last transaction
// it replayed is old (now() - pg_last_xact_replay_timestamp(), an upper
// bound). While the primary's position cannot be read, no lag is known and
// no standby qualifies. A thread checks every standby at once when the
// object is made and then every check interval; a read that met a standby
// that went away says so (failed()), which takes it out until a check finds
// it back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pixserve::db {

struct StandbyOptions {
  std::string primary_url;
  std::vector<std::string> standby_urls;
  std::chrono::milliseconds max_lag{10'000};
  std::chrono::milliseconds check_interval{1'000};
};

// What the last check (or failed read) found of one standby.
struct StandbyState {
  bool qualifies = false;
  std::optional<double> lag_s;  // the replay lag when known (0: caught up)
  std::string note;             // why it does not qualify, or "ok"
};

class Standbys {
 public:
  explicit Standbys(StandbyOptions options);
  Standbys(const Standbys&) = delete;
  Standbys& operator=(const Standbys&) = delete;

  std::size_t size() const noexcept { return options_.standby_urls.size(); }
  const std::string& url(std::size_t standby) const { return options_.standby_urls.at(standby); }

  // The standbys a read may go to now, in the order to try them: those that
  // qualify, starting one further at each call (round robin).
  std::vector<std::size_t> for_read();
  // A read on `standby` found it gone (db::Unavailable): it is skipped
  // until a check finds it back.
  void failed(std::size_t standby, std::string_view why);
  std::vector<StandbyState> states() const;

 private:
  void run(std::stop_token stop);

  StandbyOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable_any wake_;  // the thread waits on it between checks
  std::vector<StandbyState> states_;
  std::size_t next_ = 0;
  // Last: destroyed first, which stops it (waking its wait) and joins it
  // before what it uses goes.
  std::jthread thread_;
};

}  // namespace pixserve::db
