// Runs UWS jobs on a bounded pool of worker threads, so that asynchronous
// work never takes more than `threads` cores away from synchronous requests.
//
//   uws::Runner runner(store, {.threads = 2});
//   runner.register_kind("soda", [](const uws::Job& job, uws::ResultWriter& out,
//                                   uws::Progress& progress, const uws::CancelToken& cancel) {
//     auto params = job.http_parameters();             // parse as for /sync
//     for (...) { cancel.throw_if_cancelled(); progress.report(done / total); ... }
//     write_fits(out.path("cutout.fits"));              // a file in the job directory
//     out.add_file("cutout", "cutout.fits", "application/fits");
//   });
//   runner.run(job_id, caller, "soda");                 // PENDING -> QUEUED -> EXECUTING -> ...
//
// Phases: run() moves PENDING (or HELD) to QUEUED; a free worker thread of
// any server process on the same database claims it (EXECUTING) and calls
// the kind's function. Returning normally gives COMPLETED; throwing JobError
// gives ERROR with that message; any other exception gives ERROR with a
// generic message (the exception text goes to the log only, since it may
// describe server internals).
//
// One queue for every server process: the job table (uws/store.hpp). Each
// runner has a worker name unique across processes; its workers claim
// QUEUED jobs of the kinds it can run (PostgreSQL: SELECT ... FOR UPDATE
// SKIP LOCKED, so replicas never take the same job), hold a lease on the
// database's clock and renew it every heartbeat. A runner wakes its own
// workers when it queues a job and otherwise looks for work every
// poll_interval, so a job queued on one replica is run by whichever has a
// free thread first.
//
// Cancellation is cooperative: abort() marks the job ABORTED at once and
// sets its CancelToken, which the function polls (cancelled() or
// throw_if_cancelled()). An ABORT or DELETE received by another process
// changes the row; the runner executing the job sees at its next heartbeat
// that it no longer holds an EXECUTING job and sets the token. The runner
// enforces executionDuration the same way: when it is exceeded the job
// becomes ERROR ("execution duration of N s exceeded") and its token is
// set. A function that never polls keeps its worker thread until it returns
// (threads cannot be killed safely), but its job's phase is final from that
// moment and whatever the function does afterwards is ignored: a job ends
// only through the worker that holds its lease.
//
// A server that dies (kill -9, a crash, a lost host) stops renewing; every
// runner reaps expired leases: the job is queued again for another attempt
// (its earlier results removed), up to max_attempts, and then ends in ERROR
// saying so, so that a job that kills its server cannot kill every replica
// in turn. A runner that cannot reach the database for a whole lease cancels
// its own jobs, since another runner may already have taken them over. A
// graceful stop() hands the jobs running here back to the queue without
// counting the attempt; queued jobs stay queued for the next server.
//
// Destruction: a sweeper thread destroys jobs whose destruction time has
// passed (rows and files), every `sweep_interval`; remove() does it on
// request (DELETE).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/files.hpp"
#include "uws/job.hpp"
#include "uws/settings.hpp"
#include "uws/store.hpp"

namespace pixserve::uws {

// Thrown by CancelToken::throw_if_cancelled(): the job function lets it
// propagate; the runner has already set the job's phase.
class Cancelled : public std::exception {
 public:
  const char* what() const noexcept override { return "job cancelled"; }
};

// A failure the job function reports to the client, in <uws:errorSummary>
// and at /{job}/error. The message must be safe to show (no internals).
class JobError : public std::runtime_error {
 public:
  explicit JobError(const std::string& message, ErrorType type = ErrorType::fatal, std::string detail = {})
      : std::runtime_error(message), type_(type), detail_(std::move(detail)) {}
  ErrorType type() const noexcept { return type_; }
  const std::string& detail() const noexcept { return detail_; }

 private:
  ErrorType type_;
  std::string detail_;
};

class CancelToken {
 public:
  CancelToken() : state_(std::make_shared<State>()) {}
  bool cancelled() const noexcept { return state_->cancelled.load(std::memory_order_acquire); }
  void throw_if_cancelled() const {
    if (cancelled()) throw Cancelled();
  }
  // Why: "aborted", "execution duration exceeded", "job destroyed", "server stopping".
  std::string reason() const;
  // Used by the runner; a job function has no reason to call it.
  void cancel(std::string reason) const;

 private:
  struct State {
    std::atomic<bool> cancelled{false};
    mutable std::mutex mutex;
    std::string reason;
  };
  std::shared_ptr<State> state_;
};

// A result whose bytes are produced when they are needed (an archive of
// files already written, a table held in memory): an asynchronous job writes
// it to a file at once; a synchronous run streams it as the response, so it
// never takes disk space twice.
struct StreamResult {
  std::string id{};
  std::string file_name{};  // the job's file (async) or the download's name (sync)
  std::string mime_type{};
  std::optional<std::uint64_t> size{};  // when known: the sync response's Content-Length
  // Writes every byte to the sink; false when the sink refused them.
  std::function<bool(const http::ByteSink&)> produce{};
  // Files of the result folder that `produce` reads, removed once a job's
  // file is written.
  std::vector<std::string> consumed_files{};
  bool attachment = false;  // a sync response names file_name in Content-Disposition
};

// Where the results of one run go: the job store (an async job, the runner's)
// or the response of a synchronous request (uws/job_service.cpp).
class ResultTarget {
 public:
  virtual ~ResultTarget() = default;
  // The run's folder, created when missing.
  virtual std::filesystem::path directory() = 0;
  virtual void add(Result result) = 0;
  // By default the stream is written to directory()/file_name and added as
  // a file; a target that can stream it keeps it instead.
  virtual void add_stream(StreamResult result);
};

// Where a job function puts its results: files in the run's folder (for a
// job <jobs_dir>/<job id>/), registered under a result id.
class ResultWriter {
 public:
  ResultWriter(ResultTarget& target, CancelToken cancel);
  // The path of `file_name` (one component: [A-Za-z0-9._-], not starting
  // with '.') in the run's folder, which is created. Throws
  // std::invalid_argument for a bad name, Cancelled once the job is cancelled
  // (so nothing is written into the directory of a destroyed job).
  std::filesystem::path path(std::string_view file_name);
  // Registers a file written at path(file_name) as result `result_id`; the
  // size is taken from the file.
  void add_file(std::string result_id, std::string file_name, std::string mime_type);
  // Writes `bytes` to path(file_name) and registers it.
  void write(std::string result_id, std::string file_name, std::string mime_type, std::string_view bytes);
  // An external result (an absolute http(s) URL), e.g. a file in a shared store.
  void add_url(std::string result_id, std::string url, std::string mime_type,
               std::optional<std::uint64_t> size = std::nullopt);
  // A result produced on demand (see StreamResult).
  void add_stream(StreamResult result);

 private:
  ResultTarget& target_;
  CancelToken cancel_;
};

// Progress of an executing job, shown in <uws:jobInfo>. Writes are
// throttled (at most one database write per 200 ms, and the last one).
// A default-constructed Progress (a synchronous run's) records nothing.
class Progress {
 public:
  Progress() = default;
  Progress(JobStore& store, std::string job_id);
  // fraction in [0, 1]
  void report(double fraction, std::string_view message = {});

 private:
  JobStore* store_ = nullptr;
  std::string job_id_;
  std::chrono::steady_clock::time_point last_write_{};
};

using JobFunction =
    std::function<void(const Job& job, ResultWriter& results, Progress& progress, const CancelToken& cancel)>;

// The defaults are the configuration's (uws/settings.hpp).
struct RunnerOptions {
  unsigned threads = JobSettings{}.threads;            // jobs executing at once in this process
  std::size_t max_queued = JobSettings{}.max_queued;  // run() beyond this (over all processes) throws Busy
  std::chrono::milliseconds sweep_interval{60'000};  // 0: no sweeper thread (call sweep())
  // A job whose worker has not renewed its lease for this long is taken over.
  std::chrono::milliseconds lease = JobSettings{}.lease;
  unsigned max_attempts = JobSettings{}.max_attempts;  // executions of one job before it ends in ERROR
  // How often idle workers look for jobs queued by other processes, and the
  // longest heartbeat (leases are renewed at least three times per lease).
  std::chrono::milliseconds poll_interval = JobSettings{}.poll_interval;
};

class Runner {
  using steady_time = std::chrono::steady_clock::time_point;

 public:
  // Starts the threads. The store must outlive the runner.
  explicit Runner(JobStore& store, RunnerOptions options = {});
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // The function that executes jobs of `kind` (a job's kind is the service
  // that created it). Register before running jobs of that kind.
  void register_kind(std::string kind, JobFunction function);
  bool has_kind(std::string_view kind) const;

  JobStore& store() noexcept { return store_; }
  const RunnerOptions& options() const noexcept { return options_; }

  // Owner-checked operations: each throws NotFound for a job that does not
  // exist for this owner and kind.
  //
  // PHASE=RUN: PENDING or HELD -> QUEUED; nothing for QUEUED or EXECUTING;
  // InvalidRequest for a job that ended (COMPLETED, ERROR, ABORTED, ...).
  // Busy when the queue is full. A kind without a function makes the job
  // ERROR.
  void run(std::string_view id, std::string_view owner, std::string_view kind);
  // PHASE=ABORT: a job not yet ended becomes ABORTED (an executing one is
  // cancelled); nothing for an ended job.
  void abort(std::string_view id, std::string_view owner, std::string_view kind);
  // DELETE: cancels the job if it runs and destroys it with its files.
  void remove(std::string_view id, std::string_view owner, std::string_view kind);

  // Destroys every job whose destruction time has passed; returns how many.
  std::size_t sweep();

  // Hands the jobs running here back to the queue, cancels them and joins
  // the threads. Idempotent; the destructor calls it.
  void stop();

  // Jobs executing now (in this process).
  std::size_t executing() const;
  // This runner's name in the leases it holds (host, process, random part).
  const std::string& worker_name() const noexcept { return worker_name_; }

  // One heartbeat now: renews this runner's leases (cancelling the jobs it
  // lost) and reaps expired leases. The lease thread calls it every
  // heartbeat; tests call it to avoid waiting.
  void heartbeat();

 private:
  struct Running {
    CancelToken cancel;
    std::chrono::steady_clock::time_point deadline;
    std::int64_t duration = 0;
    // Past its deadline and being ended by the supervisor: the heartbeat,
    // which then no longer finds its lease, leaves the cancelling to it.
    bool overdue = false;
  };

  void worker();
  void execute(Job job);
  void supervise();
  void keep_leases();
  void sweeper();
  void cancel_running(const std::string& id, const std::string& reason);
  std::vector<std::string> kinds() const;
  std::chrono::milliseconds heartbeat_interval() const;

  JobStore& store_;
  RunnerOptions options_;
  const std::string worker_name_;

  mutable std::mutex kinds_mutex_;
  std::map<std::string, JobFunction, std::less<>> kinds_;

  // Running jobs and the stop flag share one mutex: a job registers as
  // running atomically with respect to stop() and abort().
  mutable std::mutex mutex_;
  std::condition_variable queue_cv_;       // workers: this process queued a job, or stop
  std::condition_variable supervisor_cv_;  // supervisor: a job started, or stop
  std::condition_variable stop_cv_;        // lease keeper and sweeper: stop
  std::size_t wakeups_ = 0;                // jobs queued here that no worker has looked for yet
  std::map<std::string, Running, std::less<>> running_;
  bool stopping_ = false;
  // Last time the leases of this runner were renewed (the lease thread's own).
  steady_time last_renewal_{};

  std::vector<std::jthread> workers_;
  std::jthread supervisor_;
  std::jthread lease_keeper_;
  std::jthread sweeper_;
};

}  // namespace pixserve::uws
