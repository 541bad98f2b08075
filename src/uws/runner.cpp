#include "uws/runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/disk_space.hpp"

namespace pixserve::uws {

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view kInternalError = "internal error while executing the job";

// Unique across the processes that share a job database: host, process and
// a random part (a restarted process may get the same pid).
std::string new_worker_name() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}/{}/{}", host.data(), ::getpid(), new_job_id());
}

}  // namespace

// ---------------------------------------------------------------- CancelToken

std::string CancelToken::reason() const {
  std::lock_guard lock(state_->mutex);
  return state_->reason;
}

void CancelToken::cancel(std::string reason) const {
  std::lock_guard lock(state_->mutex);
  if (state_->cancelled.load(std::memory_order_relaxed)) return;  // the first reason stays
  state_->reason = std::move(reason);
  state_->cancelled.store(true, std::memory_order_release);
}

// ---------------------------------------------------------------- results

namespace {

// The results of an asynchronous job: files in its folder, rows in the store.
class JobResults final : public ResultTarget {
 public:
  JobResults(JobStore& store, std::string job_id) : store_(store), job_id_(std::move(job_id)) {}
  fs::path directory() override {
    fs::path dir = store_.job_directory(job_id_);
    fs::create_directories(dir);
    return dir;
  }
  void add(Result result) override { store_.add_result(job_id_, result); }

 private:
  JobStore& store_;
  std::string job_id_;
};

}  // namespace

void ResultTarget::add_stream(StreamResult result) {
  const fs::path dir = directory();
  const fs::path file = dir / result.file_name;
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    const http::ByteSink sink = [&out](std::string_view bytes) {
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      return static_cast<bool>(out);
    };
    // A producer that fails part-way (a query stopped after some rows) or
    // a file that could not be written leaves no partial file behind that
    // could pass for the result.
    const auto discard = [&] {
      out.close();
      std::error_code ignored;
      fs::remove(file, ignored);
    };
    bool written = false;
    try {
      written = result.produce(sink);
    } catch (...) {
      discard();
      throw;
    }
    out.close();
    if (!written || !out) {
      discard();
      throw std::runtime_error(fmt::format("cannot write {}", file.string()));
    }
  }
  for (const auto& consumed : result.consumed_files) {
    if (valid_file_name(consumed) && consumed != result.file_name) fs::remove(dir / consumed);
  }
  add(Result{.id = std::move(result.id),
             .file_name = std::move(result.file_name),
             .url = {},
             .mime_type = std::move(result.mime_type),
             .size = fs::file_size(file)});
}

ResultWriter::ResultWriter(ResultTarget& target, CancelToken cancel) : target_(target), cancel_(std::move(cancel)) {}

fs::path ResultWriter::path(std::string_view file_name) {
  // A cancelled job may already be destroyed: creating its directory again
  // would leave files no job owns.
  cancel_.throw_if_cancelled();
  if (!valid_file_name(file_name)) throw std::invalid_argument(fmt::format("invalid result file name '{}'", file_name));
  return target_.directory() / std::string(file_name);
}

void ResultWriter::add_file(std::string result_id, std::string file_name, std::string mime_type) {
  const fs::path file = path(file_name);
  Result r;
  r.id = std::move(result_id);
  r.file_name = std::move(file_name);
  r.mime_type = std::move(mime_type);
  r.size = fs::file_size(file);  // throws when the function did not write it
  target_.add(std::move(r));
}

void ResultWriter::write(std::string result_id, std::string file_name, std::string mime_type,
                         std::string_view bytes) {
  const fs::path file = path(file_name);
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
  }
  add_file(std::move(result_id), std::move(file_name), std::move(mime_type));
}

void ResultWriter::add_url(std::string result_id, std::string url, std::string mime_type,
                           std::optional<std::uint64_t> size) {
  Result r;
  r.id = std::move(result_id);
  r.url = std::move(url);
  r.mime_type = std::move(mime_type);
  r.size = size;
  target_.add(std::move(r));
}

void ResultWriter::add_stream(StreamResult result) {
  cancel_.throw_if_cancelled();
  if (!valid_file_name(result.file_name)) {
    throw std::invalid_argument(fmt::format("invalid result file name '{}'", result.file_name));
  }
  if (!result.produce) throw std::invalid_argument("uws::ResultWriter::add_stream: no producer");
  target_.add_stream(std::move(result));
}

// ---------------------------------------------------------------- Progress

Progress::Progress(JobStore& store, std::string job_id) : store_(&store), job_id_(std::move(job_id)) {}

void Progress::report(double fraction, std::string_view message) {
  if (store_ == nullptr) return;
  const auto t = steady::now();
  // Job functions may report per row or per tile; the database needs far
  // fewer writes than that for a client polling every second.
  if (fraction < 1.0 && last_write_ != steady::time_point{} && t - last_write_ < std::chrono::milliseconds{200})
    return;
  last_write_ = t;
  store_->set_progress(job_id_, fraction, message);
}

// ---------------------------------------------------------------- Runner

Runner::Runner(JobStore& store, RunnerOptions options)
    : store_(store), options_(options), worker_name_(new_worker_name()) {
  if (options_.lease.count() <= 0) throw std::invalid_argument("uws::Runner: the lease must be positive");
  options_.poll_interval = std::clamp(options_.poll_interval, std::chrono::milliseconds{1}, options_.lease);
  options_.max_attempts = std::max(1u, options_.max_attempts);
  last_renewal_ = steady::now();
  const unsigned n = std::max(1u, options_.threads);
  workers_.reserve(n);
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { worker(); });
  supervisor_ = std::jthread([this] { supervise(); });
  lease_keeper_ = std::jthread([this] { keep_leases(); });
  if (options_.sweep_interval.count() > 0) sweeper_ = std::jthread([this] { sweeper(); });
}

Runner::~Runner() { stop(); }

void Runner::register_kind(std::string kind, JobFunction function) {
  if (!function) throw std::invalid_argument("uws::Runner::register_kind: empty function");
  {
    std::lock_guard lock(kinds_mutex_);
    kinds_[std::move(kind)] = std::move(function);
  }
  // Jobs of this kind may be waiting already (queued before a restart).
  queue_cv_.notify_all();
}

bool Runner::has_kind(std::string_view kind) const {
  std::lock_guard lock(kinds_mutex_);
  return kinds_.find(kind) != kinds_.end();
}

std::vector<std::string> Runner::kinds() const {
  std::lock_guard lock(kinds_mutex_);
  std::vector<std::string> out;
  for (const auto& entry : kinds_) out.push_back(entry.first);
  return out;
}

std::size_t Runner::executing() const {
  std::lock_guard lock(mutex_);
  return running_.size();
}

std::chrono::milliseconds Runner::heartbeat_interval() const {
  // Three renewals per lease: one lost or late renewal does not lose the job.
  return std::min(options_.poll_interval, options_.lease / 3);
}

void Runner::run(std::string_view id, std::string_view owner, std::string_view kind) {
  const auto job = store_.find(id, owner, kind);
  if (!job) throw NotFound("no such job");
  auto check = [](Phase phase) {
    if (phase == Phase::queued || phase == Phase::executing) return false;  // already running: RUN is idempotent
    if (phase != Phase::pending && phase != Phase::held)
      throw InvalidRequest(fmt::format("a job in phase {} cannot be run", to_string(phase)));
    return true;
  };
  if (!check(job->phase)) return;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Busy("the server is stopping");
  }
  if (store_.queued_count() >= options_.max_queued) throw Busy("too many jobs are queued; try again later");
  if (!store_.transition(id, {Phase::pending, Phase::held}, Phase::queued)) {
    // Changed since we looked (another RUN, an ABORT, a DELETE).
    const auto phase = store_.phase_of(id);
    if (!phase) throw NotFound("no such job");
    check(*phase);
    return;
  }
  if (!has_kind(kind)) {
    // No server that shares this database may run it either: say so now
    // rather than leave it queued for ever.
    store_.transition(id, {Phase::queued}, Phase::error,
                      ErrorSummary{ErrorType::fatal, fmt::format("this service cannot execute '{}' jobs", kind), {}});
    return;
  }
  {
    std::lock_guard lock(mutex_);
    ++wakeups_;
  }
  queue_cv_.notify_one();
}

void Runner::abort(std::string_view id, std::string_view owner, std::string_view kind) {
  const auto job = store_.find(id, owner, kind);
  if (!job) throw NotFound("no such job");
  if (is_final(job->phase)) return;
  // A queued job is not claimed any more once it is ABORTED.
  if (store_.transition(id, {Phase::pending, Phase::queued, Phase::held, Phase::suspended}, Phase::aborted)) return;
  // Phase first, then the token: by the time the function sees the token,
  // the job is already ABORTED and its own ending changes nothing. A job
  // that runs in another process learns it at that runner's heartbeat.
  if (store_.transition(id, {Phase::executing}, Phase::aborted)) cancel_running(std::string(id), "aborted");
}

void Runner::remove(std::string_view id, std::string_view owner, std::string_view kind) {
  if (!store_.find(id, owner, kind)) throw NotFound("no such job");
  cancel_running(std::string(id), "job destroyed");
  store_.remove(id);
}

std::size_t Runner::sweep() {
  std::size_t count = 0;
  for (const auto& id : store_.expired(now())) {
    cancel_running(id, "job destroyed");
    if (store_.remove(id)) ++count;
  }
  if (count) spdlog::info("uws: destroyed {} expired job(s)", count);
  return count;
}

void Runner::cancel_running(const std::string& id, const std::string& reason) {
  std::optional<CancelToken> token;
  {
    std::lock_guard lock(mutex_);
    if (auto it = running_.find(id); it != running_.end()) token = it->second.cancel;
  }
  if (token) token->cancel(reason);
}

void Runner::stop() {
  std::vector<std::pair<std::string, CancelToken>> running;
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      first = true;
      stopping_ = true;
      for (const auto& [id, r] : running_) running.emplace_back(id, r.cancel);
    }
  }
  if (first) {
    // Released before they are cancelled, so that their functions' endings
    // find them no longer ours and change nothing: another server (or this
    // one, restarted) runs them again from the start.
    std::size_t released = 0;
    for (const auto& [id, token] : running) {
      try {
        if (store_.release(id, worker_name_)) ++released;
      } catch (const std::exception& e) {
        // The lease expires by itself and the reaper queues the job again.
        spdlog::error("uws: while stopping, job {}: {}", id, e.what());
      }
      token.cancel("server stopping");
    }
    if (released) spdlog::info("uws: {} running job(s) handed back to the queue", released);
  }
  queue_cv_.notify_all();
  supervisor_cv_.notify_all();
  stop_cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  if (supervisor_.joinable()) supervisor_.join();
  if (lease_keeper_.joinable()) lease_keeper_.join();
  if (sweeper_.joinable()) sweeper_.join();
}

void Runner::worker() {
  auto last_complaint = steady::time_point{};
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    std::optional<Job> job;
    try {
      job = store_.claim(worker_name_, kinds(), options_.lease);
    } catch (const std::exception& e) {
      // The database is unreachable: keep trying at the poll interval, and
      // say so at most once a minute per worker.
      if (steady::now() - last_complaint > std::chrono::minutes(1)) {
        spdlog::error("uws: cannot look for queued jobs: {}", e.what());
        last_complaint = steady::now();
      }
    }
    if (job) {
      const std::string id = job->id;
      try {
        execute(std::move(*job));
      } catch (const std::exception& e) {
        // A database failure while starting or ending a job: the lease
        // expires and the reaper decides; the worker survives for others.
        spdlog::error("uws: job {}: {}", id, e.what());
      }
      lock.lock();
      continue;  // look again at once: more may be waiting
    }
    lock.lock();
    queue_cv_.wait_for(lock, options_.poll_interval, [&] { return stopping_ || wakeups_ > 0; });
    if (wakeups_ > 0) --wakeups_;
  }
}

void Runner::execute(Job job) {
  const std::string id = job.id;
  JobFunction function;
  {
    std::lock_guard lock(kinds_mutex_);
    if (auto it = kinds_.find(job.kind); it != kinds_.end()) function = it->second;
  }
  if (!function) {  // claimed only for registered kinds: cannot happen, but must not hang the job
    store_.finish(id, worker_name_, Phase::error,
                  ErrorSummary{ErrorType::fatal, fmt::format("this service cannot execute '{}' jobs", job.kind), {}});
    return;
  }

  Running running;
  running.duration = job.execution_duration;
  running.deadline = job.execution_duration > 0 ? steady::now() + std::chrono::seconds{job.execution_duration}
                                                : steady::time_point::max();
  const CancelToken cancel = running.cancel;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      store_.release(id, worker_name_);
      return;
    }
    running_.emplace(id, running);
  }
  struct Unregister {
    Runner& self;
    const std::string& id;
    ~Unregister() {
      std::lock_guard lock(self.mutex_);
      self.running_.erase(id);
    }
  } unregister{*this, id};
  supervisor_cv_.notify_one();
  // An ABORT or DELETE between the claim and the registration above found
  // no token to cancel: look at the job again now that one is registered.
  if (store_.phase_of(id) != Phase::executing) return;

  JobResults target(store_, id);
  ResultWriter results(target, cancel);
  Progress progress(store_, id);
  try {
    function(job, results, progress, cancel);
    store_.finish(id, worker_name_, Phase::completed);
  } catch (const Cancelled&) {
    // Whoever cancelled has set the phase; this only matters for a function
    // that throws Cancelled on its own.
    store_.finish(id, worker_name_, Phase::aborted);
  } catch (const JobError& e) {
    store_.finish(id, worker_name_, Phase::error, ErrorSummary{e.type(), e.what(), e.detail()});
  } catch (const std::exception& e) {
    const int error_number = errno;  // before anything else can change it
    if (!cancel.cancelled() && http::out_of_space(store_.job_directory(id), error_number)) {
      // Not a bug and not the client's fault: say so, as a transient error
      // (UWS 1.1 errorSummary type), without the paths in e.what().
      spdlog::warn("uws: job {} ({}) ran out of disk space: {}", id, job.kind, e.what());
      store_.finish(id, worker_name_, Phase::error,
                    ErrorSummary{ErrorType::transient, fmt::format("ServiceUnavailable: {}", http::kNoSpaceMessage), {}});
    } else {
      if (!cancel.cancelled()) spdlog::error("uws: job {} ({}) failed: {}", id, job.kind, e.what());
      store_.finish(id, worker_name_, Phase::error, ErrorSummary{ErrorType::fatal, std::string(kInternalError), {}});
    }
  } catch (...) {
    spdlog::error("uws: job {} ({}) failed with a non-standard exception", id, job.kind);
    store_.finish(id, worker_name_, Phase::error, ErrorSummary{ErrorType::fatal, std::string(kInternalError), {}});
  }
  // Destroyed while it ran: files written after the destruction go too.
  if (!store_.phase_of(id)) store_.remove_files(id);
}

void Runner::supervise() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const auto t = steady::now();
    auto next = steady::time_point::max();
    std::vector<std::pair<std::string, Running>> overdue;
    for (auto& [id, r] : running_) {
      if (r.cancel.cancelled()) continue;
      if (r.deadline <= t) {
        r.overdue = true;
        overdue.emplace_back(id, r);
      } else {
        next = std::min(next, r.deadline);
      }
    }
    if (!overdue.empty()) {
      lock.unlock();
      for (const auto& [id, r] : overdue) {
        try {
          store_.finish(id, worker_name_, Phase::error,
                        ErrorSummary{ErrorType::fatal, fmt::format("execution duration of {} s exceeded", r.duration), {}});
        } catch (const std::exception& e) {
          spdlog::error("uws: job {}: {}", id, e.what());
        }
        // Cancelled even if the transition lost a race (the job just ended):
        // otherwise this loop would find it overdue again and again.
        r.cancel.cancel("execution duration exceeded");
      }
      lock.lock();
      continue;
    }
    if (next == steady::time_point::max())
      supervisor_cv_.wait(lock);
    else
      supervisor_cv_.wait_until(lock, next);
  }
}

void Runner::heartbeat() {
  std::vector<std::pair<std::string, CancelToken>> mine;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, r] : running_) mine.emplace_back(id, r.cancel);
  }
  try {
    if (!mine.empty()) {
      std::vector<std::string> ids;
      ids.reserve(mine.size());
      for (const auto& entry : mine) ids.push_back(entry.first);
      const auto held = store_.renew(worker_name_, ids, options_.lease);
      for (const auto& [id, token] : mine) {
        if (std::find(held.begin(), held.end(), id) != held.end() || token.cancelled()) continue;
        {
          std::lock_guard lock(mutex_);
          const auto found = running_.find(id);
          if (found != running_.end() && found->second.overdue) continue;  // ended at its deadline (supervise)
        }
        // Aborted or destroyed through another process, or reaped.
        const auto phase = store_.phase_of(id);
        token.cancel(!phase ? "job destroyed" : phase == Phase::aborted ? "aborted" : "lease lost");
      }
    }
    {
      std::lock_guard lock(mutex_);
      last_renewal_ = steady::now();
    }
    const auto reaped = store_.reap(options_.max_attempts);
    if (!reaped.requeued.empty()) {
      spdlog::warn("uws: {} job(s) whose server stopped renewing its lease queued again", reaped.requeued.size());
      {
        std::lock_guard lock(mutex_);
        wakeups_ += reaped.requeued.size();
      }
      queue_cv_.notify_all();
    }
    if (!reaped.failed.empty())
      spdlog::warn("uws: {} job(s) interrupted {} times ended in ERROR", reaped.failed.size(), options_.max_attempts);
  } catch (const std::exception& e) {
    steady::time_point last;
    {
      std::lock_guard lock(mutex_);
      last = last_renewal_;
    }
    spdlog::error("uws: cannot renew job leases: {}", e.what());
    // Past this point another server may take the jobs over: stop them here
    // first (the margin is one heartbeat), so that one job never runs twice
    // at the same time for long.
    if (steady::now() - last > options_.lease - heartbeat_interval()) {
      for (const auto& [id, token] : mine) token.cancel("lost contact with the job database");
    }
  }
}

void Runner::keep_leases() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    heartbeat();
    lock.lock();
    stop_cv_.wait_for(lock, heartbeat_interval(), [&] { return stopping_; });
  }
}

void Runner::sweeper() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (stop_cv_.wait_for(lock, options_.sweep_interval, [&] { return stopping_; })) break;
    lock.unlock();
    try {
      sweep();
    } catch (const std::exception& e) {
      spdlog::error("uws: sweeping expired jobs: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace pixserve::uws
