// The runner: the phase machine (PENDING -> QUEUED -> EXECUTING ->
// COMPLETED/ERROR/ABORTED), abort, execution-duration enforcement, the
// bounded pool, the queue shared by several runners (server processes) on
// one database with leases and takeover, destruction and graceful stop. Run
// on SQLite and, under the prefix "postgresql.", on PostgreSQL.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "uws/runner.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

using namespace pixserve::uws;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  fs::path root;
  std::unique_ptr<JobStore> store;

  explicit Fixture(const std::string& name, bool fresh = true)
      : root(pixserve::testing::test_scratch_dir(name)) {
    if (fresh) fs::remove_all(root);
    fs::create_directories(root);
    store = open_store();
  }
  // Another connection to the same database: the store of another server.
  std::unique_ptr<JobStore> open_store() const {
    return std::make_unique<JobStore>(pixserve::testing::test_database(root / "registry.sqlite"), options());
  }
  StoreOptions options() const {
    StoreOptions o;
    o.jobs_dir = root / "jobs";
    o.default_execution_duration = 60s;
    o.max_execution_duration = 600s;
    return o;
  }
  Job create(const std::string& owner = "u", NewJob spec = {.kind = "soda"}) {
    spec.owner = owner;
    return store->create(spec);
  }
  // Polls until the job reaches `phase` (or a final phase when none given).
  Job await(const std::string& id, std::optional<Phase> phase = std::nullopt, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      auto job = store->load(id);
      if (!job) throw std::runtime_error("job vanished");
      if (phase ? job->phase == *phase : is_final(job->phase)) return *job;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("timed out in phase " + std::string(to_string(job->phase)));
      std::this_thread::sleep_for(5ms);
    }
  }
};

RunnerOptions quiet(unsigned threads = 2) {
  RunnerOptions o;
  o.threads = threads;
  o.sweep_interval = 0ms;  // tests sweep explicitly
  o.poll_interval = 20ms;
  return o;
}

// Lets a test hold job functions until it opens the gate.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(m_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Waits for open(), or returns false when the token is cancelled.
  bool pass(const CancelToken& cancel) {
    std::unique_lock lock(m_);
    while (!open_) {
      if (cancel.cancelled()) return false;
      cv_.wait_for(lock, 5ms);
    }
    return true;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace

TEST(UwsRunner, RunsToCompletionWithResults) {
  Fixture f("complete");
  Runner runner(*f.store, quiet());
  runner.register_kind("soda", [](const Job& job, ResultWriter& out, Progress& progress, const CancelToken&) {
    progress.report(0.5, "half way");
    out.write("cutout", "cutout.fits", "application/fits", "SIMPLE = T " + job.parameter("ID").value_or("?"));
    std::ofstream(out.path("log.txt")) << "done";
    out.add_file("log", "log.txt", "text/plain");
    out.add_url("ext", "https://example.org/other.fits", "application/fits", 42);
    progress.report(1.0, "done");
  });
  const Job job = f.create("u", {.kind = "soda", .parameters = {{"ID", "ivo://x?1", false}}});
  runner.run(job.id, "u", "soda");
  const Job done = f.await(job.id);
  EXPECT_EQ(done.phase, Phase::completed);
  ASSERT_TRUE(done.start_time && done.end_time);
  EXPECT_LE(done.creation_time, *done.start_time);
  EXPECT_LE(*done.start_time, *done.end_time);
  EXPECT_FALSE(done.error);
  EXPECT_EQ(done.progress, 1.0);
  ASSERT_EQ(done.results.size(), 3u);
  const auto file = f.store->result_file(done, done.results[0]);
  ASSERT_TRUE(file);
  std::ifstream in(*file);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "SIMPLE = T ivo://x?1");
  EXPECT_EQ(done.results[0].size, content.size());
  EXPECT_EQ(done.results[1].size, 4u);
  EXPECT_EQ(done.results[2].url, "https://example.org/other.fits");
  // RUN again: the job has ended.
  EXPECT_THROW(runner.run(job.id, "u", "soda"), InvalidRequest);
  // ABORT of an ended job changes nothing.
  runner.abort(job.id, "u", "soda");
  EXPECT_EQ(f.store->phase_of(job.id), Phase::completed);
}

TEST(UwsRunner, ErrorsBecomeErrorSummaries) {
  Fixture f("errors");
  Runner runner(*f.store, quiet());
  runner.register_kind("soda", [](const Job& job, ResultWriter&, Progress&, const CancelToken&) {
    if (job.parameter("MODE") == "user") throw JobError("no overlap between CIRCLE and the image", ErrorType::fatal, "detail text");
    throw std::runtime_error("/secret/path/file.fits: I/O error");
  });
  const Job user = f.create("u", {.kind = "soda", .parameters = {{"MODE", "user", false}}});
  const Job internal = f.create("u", {.kind = "soda", .parameters = {{"MODE", "other", false}}});
  runner.run(user.id, "u", "soda");
  runner.run(internal.id, "u", "soda");
  const Job a = f.await(user.id);
  EXPECT_EQ(a.phase, Phase::error);
  ASSERT_TRUE(a.error);
  EXPECT_EQ(a.error->message, "no overlap between CIRCLE and the image");
  EXPECT_EQ(a.error->detail, "detail text");
  const Job b = f.await(internal.id);
  EXPECT_EQ(b.phase, Phase::error);
  ASSERT_TRUE(b.error);
  EXPECT_EQ(b.error->message.find("/secret"), std::string::npos);  // internals stay in the log
  EXPECT_TRUE(b.end_time);
}

TEST(UwsRunner, UnknownKindGivesError) {
  Fixture f("unknown_kind");
  Runner runner(*f.store, quiet());
  const Job job = f.create("u", {.kind = "mystery"});
  runner.run(job.id, "u", "mystery");
  const Job done = f.await(job.id);
  EXPECT_EQ(done.phase, Phase::error);
  EXPECT_NE(done.error->message.find("mystery"), std::string::npos);
}

TEST(UwsRunner, AbortExecutingJobCancelsIt) {
  Fixture f("abort_executing");
  Runner runner(*f.store, quiet());
  std::atomic<bool> saw_cancel{false};
  std::string reason;
  std::atomic<bool> returned{false};
  std::atomic<bool> started{false};
  runner.register_kind("soda", [&](const Job&, ResultWriter& out, Progress&, const CancelToken& cancel) {
    started = true;
    while (!cancel.cancelled()) std::this_thread::sleep_for(2ms);
    saw_cancel = true;
    reason = cancel.reason();
    // Writing after cancellation is refused: the job may be gone.
    EXPECT_THROW(out.path("late.fits"), Cancelled);
    returned = true;
  });
  const Job job = f.create();
  runner.run(job.id, "u", "soda");
  // Not just EXECUTING (claimed): an abort before the function starts
  // means it never does.
  while (!started) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(runner.executing(), 1u);
  runner.abort(job.id, "u", "soda");
  EXPECT_EQ(f.store->phase_of(job.id), Phase::aborted);  // at once, not when the function notices
  while (!returned) std::this_thread::sleep_for(2ms);
  EXPECT_TRUE(saw_cancel);
  EXPECT_EQ(reason, "aborted");
  std::this_thread::sleep_for(20ms);
  const auto after = f.store->load(job.id);
  EXPECT_EQ(after->phase, Phase::aborted);  // the function returning normally does not make it COMPLETED
  EXPECT_TRUE(after->end_time);
  EXPECT_EQ(runner.executing(), 0u);
}

TEST(UwsRunner, AbortPendingAndQueuedJobs) {
  Fixture f("abort_queued");
  Runner runner(*f.store, quiet(1));
  Gate gate;
  std::atomic<int> calls{0};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) {
    ++calls;
    gate.pass(cancel);
  });
  const Job pending = f.create();
  runner.abort(pending.id, "u", "soda");
  EXPECT_EQ(f.store->phase_of(pending.id), Phase::aborted);

  const Job first = f.create();
  const Job second = f.create();
  runner.run(first.id, "u", "soda");
  f.await(first.id, Phase::executing);
  runner.run(second.id, "u", "soda");
  EXPECT_EQ(f.store->phase_of(second.id), Phase::queued);  // one thread, busy
  runner.abort(second.id, "u", "soda");
  EXPECT_EQ(f.store->phase_of(second.id), Phase::aborted);
  gate.open();
  EXPECT_EQ(f.await(first.id).phase, Phase::completed);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(calls.load(), 1);  // the aborted queued job never ran
  EXPECT_EQ(f.store->phase_of(second.id), Phase::aborted);
  EXPECT_THROW(runner.run(second.id, "u", "soda"), InvalidRequest);
}

TEST(UwsRunner, RunIsIdempotentWhileQueuedOrExecuting) {
  Fixture f("idempotent");
  Runner runner(*f.store, quiet(1));
  Gate gate;
  std::atomic<int> calls{0};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) {
    ++calls;
    gate.pass(cancel);
  });
  const Job job = f.create();
  runner.run(job.id, "u", "soda");
  f.await(job.id, Phase::executing);
  runner.run(job.id, "u", "soda");
  gate.open();
  f.await(job.id);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(calls.load(), 1);
}

TEST(UwsRunner, ExecutionDurationIsEnforced) {
  Fixture f("duration");
  Runner runner(*f.store, quiet());
  std::string reason;
  std::atomic<bool> cooperative_done{false}, stubborn_returned{false};
  runner.register_kind("soda", [&](const Job& job, ResultWriter&, Progress&, const CancelToken& cancel) {
    if (job.parameter("STYLE") == "stubborn") {
      // Never polls the token: its thread is held, but the phase is not.
      std::this_thread::sleep_for(1500ms);
      stubborn_returned = true;
      return;
    }
    while (!cancel.cancelled()) std::this_thread::sleep_for(5ms);
    reason = cancel.reason();
    cooperative_done = true;
  });
  const Job polite = f.create("u", {.kind = "soda", .execution_duration = 1});
  const Job stubborn = f.create("u", {.kind = "soda", .parameters = {{"STYLE", "stubborn", false}}, .execution_duration = 1});
  const auto t0 = std::chrono::steady_clock::now();
  runner.run(polite.id, "u", "soda");
  runner.run(stubborn.id, "u", "soda");
  const Job a = f.await(polite.id);
  const Job b = f.await(stubborn.id);
  EXPECT_FALSE(stubborn_returned);  // marked ERROR at the deadline, not when it returns
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 900ms);
  for (const Job& j : {a, b}) {
    EXPECT_EQ(j.phase, Phase::error);
    ASSERT_TRUE(j.error);
    EXPECT_EQ(j.error->message, "execution duration of 1 s exceeded");
  }
  while (!cooperative_done) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(reason, "execution duration exceeded");
  // When the stubborn function finally returns, its job stays ERROR.
  while (!stubborn_returned) std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(f.store->phase_of(stubborn.id), Phase::error);
  EXPECT_EQ(runner.executing(), 0u);
}

TEST(UwsRunner, PoolBoundsConcurrency) {
  Fixture f("pool");
  Runner runner(*f.store, quiet(2));
  std::atomic<int> now_running{0}, max_running{0};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken&) {
    const int n = ++now_running;
    int seen = max_running.load();
    while (n > seen && !max_running.compare_exchange_weak(seen, n)) {
    }
    std::this_thread::sleep_for(60ms);
    --now_running;
  });
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(f.create().id);
    runner.run(ids.back(), "u", "soda");
  }
  for (const auto& id : ids) EXPECT_EQ(f.await(id).phase, Phase::completed);
  EXPECT_EQ(max_running.load(), 2);
}

TEST(UwsRunner, FullQueueIsBusy) {
  Fixture f("busy");
  RunnerOptions o = quiet(1);
  o.max_queued = 1;
  Runner runner(*f.store, o);
  Gate gate;
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) { gate.pass(cancel); });
  const Job a = f.create(), b = f.create(), c = f.create();
  runner.run(a.id, "u", "soda");
  f.await(a.id, Phase::executing);
  runner.run(b.id, "u", "soda");
  EXPECT_THROW(runner.run(c.id, "u", "soda"), Busy);
  EXPECT_EQ(f.store->phase_of(c.id), Phase::pending);  // untouched: the client may try again
  gate.open();
  f.await(b.id);
  runner.run(c.id, "u", "soda");
  EXPECT_EQ(f.await(c.id).phase, Phase::completed);
}

TEST(UwsRunner, OperationsCheckTheOwnerAndKind) {
  Fixture f("owner");
  Runner runner(*f.store, quiet());
  runner.register_kind("soda", [](const Job&, ResultWriter&, Progress&, const CancelToken&) {});
  const Job job = f.create("alice");
  EXPECT_THROW(runner.run(job.id, "mallory", "soda"), NotFound);
  EXPECT_THROW(runner.abort(job.id, "mallory", "soda"), NotFound);
  EXPECT_THROW(runner.remove(job.id, "mallory", "soda"), NotFound);
  EXPECT_THROW(runner.run(job.id, "alice", "tap"), NotFound);
  EXPECT_THROW(runner.run("../../x", "alice", "soda"), NotFound);
  EXPECT_EQ(f.store->phase_of(job.id), Phase::pending);
  runner.run(job.id, "alice", "soda");
  EXPECT_EQ(f.await(job.id).phase, Phase::completed);
}

TEST(UwsRunner, JobsLeftByAStoppedServerRunAgain) {
  std::string queued, executing, completed, pending;
  {
    Fixture f("restart");
    queued = f.create().id;
    executing = f.create().id;
    completed = f.create().id;
    pending = f.create().id;
    // What a killed server leaves behind (the executing job without a lease,
    // as a server of before the shared queue left it).
    f.store->transition(queued, {Phase::pending}, Phase::queued);
    f.store->transition(executing, {Phase::pending}, Phase::queued);
    f.store->transition(executing, {Phase::queued}, Phase::executing);
    f.store->transition(completed, {Phase::pending}, Phase::queued);
    f.store->transition(completed, {Phase::queued}, Phase::executing);
    f.store->transition(completed, {Phase::executing}, Phase::completed);
  }
  Fixture f("restart", false);
  Runner runner(*f.store, quiet());
  std::atomic<int> runs{0};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken&) { ++runs; });
  for (const auto& id : {queued, executing}) EXPECT_EQ(f.await(id).phase, Phase::completed);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(f.store->phase_of(completed), Phase::completed);
  EXPECT_EQ(f.store->phase_of(pending), Phase::pending);  // not run until asked
  runner.run(pending, "u", "soda");
  EXPECT_EQ(f.await(pending).phase, Phase::completed);
}

TEST(UwsRunner, RunnersOnOneDatabaseShareTheQueue) {
  Fixture f("shared_queue");
  auto other_store = f.open_store();
  Runner a(*f.store, quiet(1));
  Runner b(*other_store, quiet(1));
  std::mutex m;
  std::map<std::string, std::vector<std::string>> ran;  // job -> runners that ran it
  for (Runner* r : {&a, &b}) {
    r->register_kind("soda", [&, r](const Job& job, ResultWriter& out, Progress&, const CancelToken&) {
      std::this_thread::sleep_for(30ms);
      out.write("who", "who.txt", "text/plain", r->worker_name());
      std::lock_guard lock(m);
      ran[job.id].push_back(r->worker_name());
    });
  }
  EXPECT_NE(a.worker_name(), b.worker_name());
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    ids.push_back(f.create().id);
    a.run(ids.back(), "u", "soda");  // all queued through one server
  }
  std::set<std::string> runners;
  for (const auto& id : ids) {
    const Job job = f.await(id);
    EXPECT_EQ(job.phase, Phase::completed);
    EXPECT_EQ(job.attempts, 1);
    std::lock_guard lock(m);
    ASSERT_EQ(ran[id].size(), 1u) << "job " << id << " ran " << ran[id].size() << " times";
    runners.insert(ran[id].front());
  }
  EXPECT_EQ(runners.size(), 2u);  // the idle server took its share
}

TEST(UwsRunner, AbortThroughAnotherServerStopsTheJob) {
  Fixture f("abort_elsewhere");
  auto other_store = f.open_store();
  Runner runner(*f.store, quiet(1));
  Runner elsewhere(*other_store, quiet(1));  // a second server that runs no SODA jobs
  std::atomic<bool> saw_abort{false};
  std::atomic<bool> started{false};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) {
    started = true;
    while (!cancel.cancelled()) std::this_thread::sleep_for(2ms);
    saw_abort = cancel.reason() == "aborted";
    cancel.throw_if_cancelled();
  });
  const Job job = f.create();
  runner.run(job.id, "u", "soda");
  while (!started) std::this_thread::sleep_for(2ms);
  elsewhere.abort(job.id, "u", "soda");
  EXPECT_EQ(other_store->phase_of(job.id), Phase::aborted);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (runner.executing() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(runner.executing(), 0u);  // the running server heard of it at its heartbeat
  EXPECT_TRUE(saw_abort);
  EXPECT_EQ(f.store->phase_of(job.id), Phase::aborted);
}

TEST(UwsRunner, AJobWhoseServerDiedIsTakenOver) {
  Fixture f("takeover");
  const Job job = f.create();
  f.store->transition(job.id, {Phase::pending}, Phase::queued);
  const std::vector<std::string> soda{"soda"};
  // A server claimed it, then died: its lease runs out.
  ASSERT_TRUE(f.store->claim("dead server", soda, 200ms));
  RunnerOptions o = quiet();
  o.lease = 300ms;
  Runner runner(*f.store, o);
  runner.register_kind("soda", [](const Job&, ResultWriter& out, Progress&, const CancelToken&) {
    out.write("r", "r.txt", "text/plain", "done");
  });
  const Job done = f.await(job.id, std::nullopt, 5s);
  EXPECT_EQ(done.phase, Phase::completed);
  EXPECT_EQ(done.attempts, 2);
  ASSERT_EQ(done.results.size(), 1u);
}

TEST(UwsRunner, AJobThatKeepsKillingItsServerEndsInError) {
  Fixture f("poison");
  const Job job = f.create();
  f.store->transition(job.id, {Phase::pending}, Phase::queued);
  const std::vector<std::string> soda{"soda"};
  RunnerOptions o = quiet();
  o.max_attempts = 2;
  // Two servers took it in turn and died.
  ASSERT_TRUE(f.store->claim("first", soda, 1ms));
  std::this_thread::sleep_for(10ms);
  ASSERT_EQ(f.store->reap(o.max_attempts).requeued.size(), 1u);
  ASSERT_TRUE(f.store->claim("second", soda, 1ms));
  std::this_thread::sleep_for(10ms);
  Runner runner(*f.store, o);
  std::atomic<int> runs{0};
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken&) { ++runs; });
  const Job done = f.await(job.id);
  EXPECT_EQ(done.phase, Phase::error);
  EXPECT_NE(done.error->message.find("stopped, 2 time(s)"), std::string::npos) << done.error->message;
  EXPECT_EQ(runs, 0);
}

TEST(UwsRunner, AWorkerThatLostItsLeaseCannotEndTheJob) {
  Fixture f("lost_lease");
  Runner runner(*f.store, quiet(1));
  std::atomic<bool> stopped{false};
  std::string reason;
  runner.register_kind("soda", [&](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) {
    while (!cancel.cancelled()) std::this_thread::sleep_for(2ms);
    reason = cancel.reason();
    stopped = true;  // returns normally: it would complete the job if it could
  });
  const Job job = f.create();
  runner.run(job.id, "u", "soda");
  f.await(job.id, Phase::executing);
  // As if it had been reaped and claimed by another server meanwhile.
  pixserve::testing::test_database(f.root / "registry.sqlite")
      ->exec("UPDATE uws_job SET lease_owner = 'another server' WHERE job_id = '" + job.id + "'");
  runner.heartbeat();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!stopped && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(stopped);
  EXPECT_EQ(reason, "lease lost");
  while (runner.executing() > 0) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(f.store->phase_of(job.id), Phase::executing);  // the other server's to end
}

TEST(UwsRunner, SweepDestroysExpiredJobsWithFiles) {
  Fixture f("sweep");
  RunnerOptions o = quiet();
  o.sweep_interval = 50ms;  // the background sweeper this time
  Runner runner(*f.store, o);
  runner.register_kind("soda", [](const Job&, ResultWriter& out, Progress&, const CancelToken&) {
    out.write("r", "r.txt", "text/plain", "result");
  });
  const Job keep = f.create();
  const Job expire = f.create();
  for (const auto& id : {keep.id, expire.id}) {
    runner.run(id, "u", "soda");
    f.await(id);
  }
  const fs::path dir = f.store->job_directory(expire.id);
  ASSERT_TRUE(fs::exists(dir / "r.txt"));
  f.store->set_destruction(expire.id, now() - 1s);
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  // The sweeper forgets the job, then removes its files: wait for both.
  while ((f.store->load(expire.id) || fs::exists(dir)) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_FALSE(f.store->load(expire.id));
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(f.store->job_directory(keep.id) / "r.txt"));
  EXPECT_EQ(runner.sweep(), 0u);
}

TEST(UwsRunner, RemoveDestroysARunningJob) {
  Fixture f("remove_running");
  Runner runner(*f.store, quiet());
  std::atomic<bool> wrote{false};
  std::atomic<bool> returned{false};
  runner.register_kind("soda", [&](const Job&, ResultWriter& out, Progress&, const CancelToken& cancel) {
    out.write("partial", "partial.txt", "text/plain", "x");
    wrote = true;
    while (!cancel.cancelled()) std::this_thread::sleep_for(2ms);
    returned = true;
    cancel.throw_if_cancelled();
  });
  const Job job = f.create();
  runner.run(job.id, "u", "soda");
  f.await(job.id, Phase::executing);
  // Wait for write() to return, not for the file to appear: the result is
  // registered in the store after the file is written, and removing the
  // job in between makes write() throw before the loop below is reached.
  while (!wrote) std::this_thread::sleep_for(2ms);
  ASSERT_TRUE(fs::exists(f.store->job_directory(job.id) / "partial.txt"));
  runner.remove(job.id, "u", "soda");
  EXPECT_FALSE(f.store->load(job.id));
  while (!returned) std::this_thread::sleep_for(2ms);
  while (runner.executing() > 0) std::this_thread::sleep_for(2ms);
  EXPECT_FALSE(fs::exists(f.store->job_directory(job.id)));
}

TEST(UwsRunner, StopHandsJobsBackToTheQueue) {
  Fixture f("stop");
  auto runner = std::make_unique<Runner>(*f.store, quiet(1));
  runner->register_kind("soda", [](const Job&, ResultWriter&, Progress&, const CancelToken& cancel) {
    while (!cancel.cancelled()) std::this_thread::sleep_for(2ms);
  });
  const Job running = f.create();
  const Job queued = f.create();
  runner->run(running.id, "u", "soda");
  f.await(running.id, Phase::executing);
  runner->run(queued.id, "u", "soda");
  runner->stop();
  EXPECT_THROW(runner->run(f.create().id, "u", "soda"), Busy);
  runner.reset();
  const auto a = f.store->load(running.id);
  EXPECT_EQ(a->phase, Phase::queued);
  EXPECT_EQ(a->attempts, 0);  // a graceful stop is not a failed attempt
  EXPECT_EQ(f.store->phase_of(queued.id), Phase::queued);
  // The next server (or another replica) runs both.
  Runner next(*f.store, quiet());
  next.register_kind("soda", [](const Job&, ResultWriter&, Progress&, const CancelToken&) {});
  EXPECT_EQ(f.await(running.id).phase, Phase::completed);
  EXPECT_EQ(f.await(queued.id).phase, Phase::completed);
  EXPECT_EQ(f.store->load(running.id)->attempts, 1);
}
