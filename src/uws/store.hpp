// Persistence of UWS jobs in the registry database (tables uws_job,
// uws_parameter, uws_result) and of their result files under a jobs
// directory (<jobs_dir>/<job id>/<file name>).
//
//   auto store = uws::JobStore::open(repo_root / "registry.sqlite", {.jobs_dir = repo_root / "jobs"});
//   uws::Job job = store->create({.kind = "soda", .owner = caller, .parameters = params});
//   auto mine = store->find(job.id, caller, "soda");      // nullopt for anyone else
//
// Every method is thread-safe: the store owns one database connection and
// serializes its use with a mutex (an SQLite connection, its prepared
// statements and changes() are not to be shared by concurrent threads).
// Other processes (e.g. the registry in the same file) use their own
// connections; SQLite's WAL mode and busy timeout (set by db::open_sqlite)
// let them coexist.
//
// Reads that take a caller (find, list, wait) only see that caller's jobs of
// that kind, so that SODA and TAP share one store and one table but never
// each other's jobs.
//
// The table is also the job queue of every server process on the database
// (uws/runner.hpp): QUEUED rows in the order they were queued. A worker
// claims one (claim: EXECUTING, with a lease naming the worker and expiring
// on the database's clock), renews the lease while it runs (renew), and ends
// it only while it still holds the lease (finish), so a worker that lost its
// job to the reaper (reap: expired leases go back to the queue, or to ERROR
// after too many attempts) cannot overwrite the outcome of the new attempt.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "db/database.hpp"
#include "uws/job.hpp"
#include "uws/settings.hpp"

namespace pixserve::uws {

// The defaults are the configuration's (uws/settings.hpp).
struct StoreOptions {
  std::filesystem::path jobs_dir;  // result files; created when missing
  std::chrono::seconds default_execution_duration = whole_seconds(JobSettings{}.execution_duration);
  // 0: no maximum
  std::chrono::seconds max_execution_duration = whole_seconds(JobSettings{}.max_execution_duration);
  // destruction = creation + this
  std::chrono::seconds default_retention = whole_seconds(JobSettings{}.retention);
  // later destruction times are clamped
  std::chrono::seconds max_retention = whole_seconds(JobSettings{}.max_retention);
};

struct NewJob {
  std::string kind;
  std::string owner{anonymous_owner};
  // What the server records about the owner's rights when the job is
  // created (opaque to the store; never shown to clients, never settable
  // by them: it comes from RouteOptions::owner_context, not a parameter).
  std::string owner_context{};
  // The root URL of the service the job was created through
  // (http::Request::base_url()): its results' links are absolute on it.
  std::string base_url{};
  std::string run_id{};
  std::vector<Parameter> parameters{};
  std::optional<std::int64_t> execution_duration{};  // seconds; default from the options
  std::optional<Time> destruction{};                 // default: now + default_retention
};

// Job list filters (UWS 1.1 section 2.2.2.1).
struct JobFilter {
  std::vector<Phase> phases{};  // any of these; empty: every phase but ARCHIVED
  std::optional<Time> after{};  // created strictly after
  std::optional<int> last{};    // only the N most recently created
};

class JobStore {
 public:
  // Creates the tables when missing. Throws db::DbError.
  JobStore(std::unique_ptr<db::Connection> connection, StoreOptions options);
  // Opens (creating if needed) an SQLite database file, normally the
  // repository's registry file.
  static std::unique_ptr<JobStore> open(const std::filesystem::path& db_file, StoreOptions options);
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  const StoreOptions& options() const noexcept { return options_; }

  // A new PENDING job. The execution duration is clamped to the maximum, the
  // destruction time to now + max_retention. Throws InvalidRequest for a
  // negative execution duration.
  Job create(const NewJob& job);

  // The job when it exists, belongs to `owner` and is of `kind`; nullopt
  // otherwise (the caller cannot tell which).
  std::optional<Job> find(std::string_view id, std::string_view owner, std::string_view kind) const;
  // The job whatever its owner (for the runner); nullopt when missing.
  std::optional<Job> load(std::string_view id) const;
  std::optional<Phase> phase_of(std::string_view id) const;

  // The caller's jobs of a kind, most recently created first.
  std::vector<JobRef> list(std::string_view kind, std::string_view owner, const JobFilter& filter = {}) const;

  // Moves the job to `to` when it is in one of `from` (compare-and-set, so
  // that a runner finishing a job and a client aborting it cannot both win).
  // Entering QUEUED puts the job at the end of the queue; entering EXECUTING
  // sets startTime; entering a final phase sets endTime. Returns false when
  // the job is missing or in another phase.
  bool transition(std::string_view id, std::initializer_list<Phase> from, Phase to,
                  const std::optional<ErrorSummary>& error = std::nullopt);

  // Blocks while the job (of this owner and kind) stays in the phase it had
  // on entry, that phase is active (PENDING, QUEUED, EXECUTING) and, when
  // `only_in` is given, equal to it; at most `timeout`. Returns the job as it
  // is then, nullopt when it is not (or no longer) there. This is UWS 1.1
  // blocking behaviour (WAIT / PHASE on the job resource).
  std::optional<Job> wait(std::string_view id, std::string_view owner, std::string_view kind,
                          std::chrono::milliseconds timeout, std::optional<Phase> only_in = std::nullopt) const;

  // Sets the execution duration (seconds; 0 = unlimited) while the job has
  // not started (PENDING, QUEUED, HELD). Returns the value kept (clamped to
  // the maximum). Throws InvalidRequest for a negative value or a job past
  // that point, NotFound for a missing job.
  std::int64_t set_execution_duration(std::string_view id, std::int64_t seconds);
  // Sets the destruction time (any phase), clamped to now + max_retention.
  // Returns the value kept. Throws NotFound.
  Time set_destruction(std::string_view id, Time when);
  void set_quote(std::string_view id, std::optional<Time> quote);
  // Replaces, for each name in `updates`, every value of that name by the
  // given values (others are kept), only while the job is PENDING. Throws
  // InvalidRequest when it is not, NotFound when missing.
  void update_parameters(std::string_view id, const std::vector<Parameter>& updates);

  // Registers a result (replacing one with the same id). A file result's
  // file_name must be a valid_file_name inside the job directory; an
  // external one needs an absolute http(s) URL. Throws std::invalid_argument
  // for a bad result, NotFound when the job is gone.
  void add_result(std::string_view id, const Result& result);
  void set_progress(std::string_view id, double fraction, std::string_view message);

  // Deletes the job's rows and its directory. False when it was not there
  // (the directory is removed anyway).
  bool remove(std::string_view id);
  // Removes a job directory whose job is gone (a job function that wrote
  // files after its job was destroyed).
  void remove_files(std::string_view id);
  // Jobs whose destruction time is at or before `t`.
  std::vector<std::string> expired(Time t) const;
  // The queue. `worker` names one runner of one server process (unique
  // across processes); leases expire on the database's clock.
  //
  // Jobs QUEUED now, over every kind and owner.
  std::size_t queued_count() const;
  // Takes the longest-queued job of one of `kinds`: EXECUTING, leased to
  // `worker` for `lease`, its attempt count raised. A job run before (its
  // previous worker died) starts again from nothing: the results of the
  // earlier attempt are removed. nullopt when nothing of those kinds waits.
  std::optional<Job> claim(std::string_view worker, std::span<const std::string> kinds,
                           std::chrono::milliseconds lease);
  // Extends the leases of `worker` on `ids` to now + lease. Returns the ids
  // it still holds: a job missing from the answer was aborted, destroyed,
  // or reaped and is no longer this worker's to run.
  std::vector<std::string> renew(std::string_view worker, std::span<const std::string> ids,
                                 std::chrono::milliseconds lease);
  // Ends an EXECUTING job that `worker` holds (see transition). False when
  // the job ended otherwise or its lease passed to another worker.
  bool finish(std::string_view id, std::string_view worker, Phase to,
              const std::optional<ErrorSummary>& error = std::nullopt);
  // Hands an EXECUTING job that `worker` holds back to the queue, at its
  // place there, without counting the attempt (a server stopping
  // gracefully). False when it was not held.
  bool release(std::string_view id, std::string_view worker);
  struct Reaped {
    std::vector<std::string> requeued;  // back in the queue for another attempt
    std::vector<std::string> failed;    // ERROR: max_attempts reached
  };
  // Jobs EXECUTING under an expired lease (their worker died or lost the
  // database): queued again while they have had fewer than max_attempts
  // attempts, else ERROR with a message that says so.
  Reaped reap(unsigned max_attempts);

  // <jobs_dir>/<id>. Throws std::invalid_argument for an invalid id, so no
  // id can name a path outside the jobs directory.
  std::filesystem::path job_directory(std::string_view id) const;
  // The file of a file result; nullopt for an external result or a stored
  // file name that is not valid (never a path outside the job directory).
  std::optional<std::filesystem::path> result_file(const Job& job, const Result& result) const;

 private:
  std::optional<Job> load_locked(std::string_view id) const;
  void notify_change() const;

  StoreOptions options_;
  mutable std::mutex db_mutex_;  // guards connection_ and last_creation_
  std::unique_ptr<db::Connection> connection_;
  Time last_creation_{};
  // Phase changes wake waiters; the generation tells them something changed.
  mutable std::mutex change_mutex_;
  mutable std::condition_variable change_cv_;
  mutable std::uint64_t generation_ = 0;
};

}  // namespace pixserve::uws
