// Job persistence: a re-opened store sees everything, owners and kinds are
// isolated, list filters, compare-and-set phases, parameter updates, results
// and files, the shared queue (claims, leases, reaping), destruction and
// path safety. Run on SQLite and, under the prefix "postgresql.", on
// PostgreSQL (test_registry.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "db/database.hpp"
#include "uws/store.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

using namespace pixserve;
using namespace pixserve::uws;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path root;
  explicit Dir(const std::string& name) : root(pixserve::testing::test_scratch_dir(name)) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  fs::path db() const { return root / "registry.sqlite"; }
  StoreOptions options() const {
    StoreOptions o;
    o.jobs_dir = root / "jobs";
    o.default_execution_duration = 30s;
    o.max_execution_duration = 120s;
    o.default_retention = 1h;
    o.max_retention = 48h;
    return o;
  }
  // Every call is a connection of its own, like another server process.
  std::unique_ptr<JobStore> open() const {
    return std::make_unique<JobStore>(pixserve::testing::test_database(db()), options());
  }
};

void touch(const fs::path& p, std::string_view content = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

}  // namespace

TEST(UwsStore, CreatePersistsAcrossReopen) {
  Dir dir("reopen");
  std::string id;
  Time created;
  {
    auto store = dir.open();
    const Job job = store->create({.kind = "soda",
                                   .owner = "alice",
                                   .run_id = "my run",
                                   .parameters = {{"ID", "ivo://a?1", false}, {"CIRCLE", "10 20 0.1", false},
                                                  {"ID", "ivo://a?2", false}, {"UPLOAD", "http://x/t.xml", true}}});
    id = job.id;
    created = job.creation_time;
    EXPECT_EQ(job.phase, Phase::pending);
    EXPECT_EQ(job.execution_duration, 30);
    EXPECT_EQ(job.destruction, job.creation_time + 1h);
    touch(store->job_directory(id) / "cutout.fits", "FITS");
    store->add_result(id, {"cutout", "cutout.fits", "", "application/fits", 4});
    store->add_result(id, {"ext", "", "https://example.org/x.fits", "application/fits", std::nullopt});
    ASSERT_TRUE(store->transition(id, {Phase::pending}, Phase::queued));
    ASSERT_TRUE(store->transition(id, {Phase::queued}, Phase::executing));
    ASSERT_TRUE(store->transition(id, {Phase::executing}, Phase::error,
                                  ErrorSummary{ErrorType::transient, "it broke", "the details"}));
    store->set_quote(id, created + 5min);
    store->set_progress(id, 0.25, "a quarter");
  }
  auto store = dir.open();
  const auto job = store->find(id, "alice", "soda");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->run_id, "my run");
  EXPECT_EQ(job->owner, "alice");
  EXPECT_EQ(job->kind, "soda");
  EXPECT_EQ(job->phase, Phase::error);
  EXPECT_EQ(job->creation_time, created);
  ASSERT_TRUE(job->start_time && job->end_time);
  EXPECT_LE(*job->start_time, *job->end_time);
  EXPECT_EQ(job->quote, created + 5min);
  ASSERT_EQ(job->parameters.size(), 4u);
  EXPECT_EQ(job->parameters[2].value, "ivo://a?2");  // order kept
  EXPECT_TRUE(job->parameters[3].by_reference);
  ASSERT_EQ(job->results.size(), 2u);
  EXPECT_EQ(job->results[0].id, "cutout");
  EXPECT_EQ(job->results[0].size, 4u);
  EXPECT_EQ(job->results[1].url, "https://example.org/x.fits");
  ASSERT_TRUE(job->error);
  EXPECT_EQ(job->error->type, ErrorType::transient);
  EXPECT_EQ(job->error->message, "it broke");
  EXPECT_EQ(job->error->detail, "the details");
  EXPECT_EQ(job->progress, 0.25);
  EXPECT_EQ(job->progress_message, "a quarter");
  EXPECT_EQ(store->result_file(*job, job->results[0]), dir.root / "jobs" / id / "cutout.fits");
  EXPECT_EQ(store->result_file(*job, job->results[1]), std::nullopt);
}

TEST(UwsStore, SharesTheRegistryDatabaseFile) {
  Dir dir("shared");
  // The registry opened the file first with its own tables and connection.
  auto registry = pixserve::testing::test_database(dir.db());
  registry->exec("CREATE TABLE dataset (dataset_id TEXT PRIMARY KEY); INSERT INTO dataset VALUES ('d1');");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda"});
  auto q = registry->prepare("SELECT COUNT(*) FROM uws_job");
  ASSERT_TRUE(q->step());
  EXPECT_EQ(q->get_int(0), 1);
  auto d = registry->prepare("SELECT COUNT(*) FROM dataset");
  ASSERT_TRUE(d->step());
  EXPECT_EQ(d->get_int(0), 1);
  EXPECT_TRUE(store->find(job.id, std::string(anonymous_owner), "soda"));
}

TEST(UwsStore, OwnersAndKindsAreIsolated) {
  Dir dir("owners");
  auto store = dir.open();
  const Job a = store->create({.kind = "soda", .owner = "alice"});
  const Job b = store->create({.kind = "soda", .owner = "bob"});
  const Job t = store->create({.kind = "tap", .owner = "alice"});
  EXPECT_TRUE(store->find(a.id, "alice", "soda"));
  EXPECT_FALSE(store->find(a.id, "bob", "soda"));
  EXPECT_FALSE(store->find(a.id, std::string(anonymous_owner), "soda"));
  EXPECT_FALSE(store->find(a.id, "alice", "tap"));
  EXPECT_FALSE(store->find(t.id, "alice", "soda"));
  EXPECT_FALSE(store->wait(a.id, "bob", "soda", 10ms));
  auto alice_soda = store->list("soda", "alice");
  ASSERT_EQ(alice_soda.size(), 1u);
  EXPECT_EQ(alice_soda[0].id, a.id);
  ASSERT_EQ(store->list("soda", "bob").size(), 1u);
  ASSERT_EQ(store->list("tap", "alice").size(), 1u);
  EXPECT_TRUE(store->list("tap", "bob").empty());
  (void)b;
}

TEST(UwsStore, ListFilters) {
  Dir dir("filters");
  auto store = dir.open();
  std::vector<Job> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(store->create({.kind = "tap", .owner = "o", .run_id = std::to_string(i)}));
  // Creation times are strictly increasing even within one millisecond.
  for (std::size_t i = 1; i < jobs.size(); ++i) EXPECT_LT(jobs[i - 1].creation_time, jobs[i].creation_time);
  ASSERT_TRUE(store->transition(jobs[1].id, {Phase::pending}, Phase::queued));
  ASSERT_TRUE(store->transition(jobs[2].id, {Phase::pending}, Phase::aborted));
  ASSERT_TRUE(store->transition(jobs[3].id, {Phase::pending}, Phase::archived));

  auto ids = [](const std::vector<JobRef>& refs) {
    std::vector<std::string> out;
    for (const auto& r : refs) out.push_back(r.run_id);
    return out;
  };
  // Newest first; ARCHIVED hidden unless asked for.
  EXPECT_EQ(ids(store->list("tap", "o")), (std::vector<std::string>{"5", "4", "2", "1", "0"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.phases = {Phase::archived}})), (std::vector<std::string>{"3"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.phases = {Phase::queued, Phase::aborted}})),
            (std::vector<std::string>{"2", "1"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.phases = {Phase::pending}})), (std::vector<std::string>{"5", "4", "0"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.after = jobs[2].creation_time})), (std::vector<std::string>{"5", "4"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.last = 2})), (std::vector<std::string>{"5", "4"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.phases = {Phase::pending}, .last = 1})), (std::vector<std::string>{"5"}));
  EXPECT_EQ(ids(store->list("tap", "o", {.after = jobs[0].creation_time, .last = 3})),
            (std::vector<std::string>{"5", "4", "2"}));
  EXPECT_TRUE(store->list("tap", "o", {.last = 0}).empty());
  EXPECT_EQ(store->list("tap", "o")[0].owner, "o");
  EXPECT_EQ(store->list("tap", "o")[0].phase, Phase::pending);
}

TEST(UwsStore, TransitionsAreCompareAndSet) {
  Dir dir("cas");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda"});
  EXPECT_FALSE(store->transition(job.id, {Phase::queued}, Phase::executing));
  EXPECT_TRUE(store->transition(job.id, {Phase::pending, Phase::held}, Phase::queued));
  EXPECT_FALSE(store->transition(job.id, {Phase::pending}, Phase::queued));
  EXPECT_TRUE(store->transition(job.id, {Phase::queued}, Phase::executing));
  auto executing = store->load(job.id);
  ASSERT_TRUE(executing->start_time);
  EXPECT_FALSE(executing->end_time);
  EXPECT_TRUE(store->transition(job.id, {Phase::executing}, Phase::completed));
  EXPECT_FALSE(store->transition(job.id, {Phase::executing}, Phase::aborted));  // the runner already won
  EXPECT_EQ(store->phase_of(job.id), Phase::completed);
  EXPECT_TRUE(store->load(job.id)->end_time);
  EXPECT_FALSE(store->transition(new_job_id(), {Phase::pending}, Phase::queued));
  EXPECT_FALSE(store->transition("../x", {Phase::pending}, Phase::queued));
}

TEST(UwsStore, ExecutionDurationAndDestructionAreClamped) {
  Dir dir("clamp");
  auto store = dir.open();
  EXPECT_EQ(store->create({.kind = "soda", .execution_duration = 0}).execution_duration, 120);  // no "unlimited" past max
  EXPECT_EQ(store->create({.kind = "soda", .execution_duration = 1000}).execution_duration, 120);
  EXPECT_THROW(store->create({.kind = "soda", .execution_duration = -1}), InvalidRequest);
  const Job job = store->create({.kind = "soda", .destruction = now() + 24h * 365});
  EXPECT_LE(job.destruction, job.creation_time + 48h);

  EXPECT_EQ(store->set_execution_duration(job.id, 10), 10);
  EXPECT_EQ(store->set_execution_duration(job.id, 100000), 120);
  EXPECT_THROW(store->set_execution_duration(job.id, -5), InvalidRequest);
  const Time soon = now() + 10min;
  EXPECT_EQ(store->set_destruction(job.id, soon), soon);
  EXPECT_LE(store->set_destruction(job.id, now() + 1000h), now() + 48h);
  EXPECT_THROW(store->set_destruction(new_job_id(), soon), NotFound);

  ASSERT_TRUE(store->transition(job.id, {Phase::pending}, Phase::queued));
  EXPECT_EQ(store->set_execution_duration(job.id, 20), 20);  // not started yet: allowed
  ASSERT_TRUE(store->transition(job.id, {Phase::queued}, Phase::executing));
  EXPECT_THROW(store->set_execution_duration(job.id, 30), InvalidRequest);
  EXPECT_THROW(store->set_execution_duration(new_job_id(), 30), NotFound);

  StoreOptions unlimited = dir.options();
  unlimited.max_execution_duration = 0s;
  JobStore free_store(pixserve::testing::test_database(dir.db()), unlimited);
  EXPECT_EQ(free_store.create({.kind = "soda", .execution_duration = 0}).execution_duration, 0);
}

TEST(UwsStore, ParametersChangeOnlyWhilePending) {
  Dir dir("params");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda", .parameters = {{"ID", "a", false}, {"ID", "b", false}, {"BAND", "r", false}}});
  store->update_parameters(job.id, {{"id", "c", false}, {"POL", "I", false}});
  auto updated = store->load(job.id);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->parameter_values("ID"), (std::vector<std::string>{"c"}));  // all old values replaced
  EXPECT_EQ(updated->parameter("BAND"), "r");
  EXPECT_EQ(updated->parameter("POL"), "I");
  ASSERT_TRUE(store->transition(job.id, {Phase::pending}, Phase::queued));
  EXPECT_THROW(store->update_parameters(job.id, {{"ID", "d", false}}), InvalidRequest);
  EXPECT_EQ(store->load(job.id)->parameter("ID"), "c");
  EXPECT_THROW(store->update_parameters(new_job_id(), {{"ID", "d", false}}), NotFound);
}

TEST(UwsStore, ResultsAreValidated) {
  Dir dir("results");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda"});
  EXPECT_THROW(store->add_result(job.id, {"../x", "x.fits", "", "application/fits", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(job.id, {"x", "../../etc/passwd", "", "text/plain", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(job.id, {"x", "a/b", "", "text/plain", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(job.id, {"x", "", "file:///etc/passwd", "text/plain", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(job.id, {"x", "", "", "text/plain", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(job.id, {"x", "x.fits", "http://h/x", "text/plain", 1}), std::invalid_argument);
  EXPECT_THROW(store->add_result(new_job_id(), {"x", "x.fits", "", "text/plain", 1}), NotFound);
  store->add_result(job.id, {"x", "x1.fits", "", "", 1});
  store->add_result(job.id, {"y", "y.fits", "", "application/fits", 2});
  store->add_result(job.id, {"x", "x2.fits", "", "application/fits", 3});  // same id: replaced
  const auto loaded = store->load(job.id);
  ASSERT_EQ(loaded->results.size(), 2u);
  EXPECT_EQ(loaded->results[0].id, "y");
  EXPECT_EQ(loaded->results[1].file_name, "x2.fits");

  // A stored file name that is not valid (a tampered row) never gives a path.
  Job forged = *loaded;
  forged.results[0].file_name = "../../../etc/passwd";
  EXPECT_EQ(store->result_file(forged, forged.results[0]), std::nullopt);
}

TEST(UwsStore, IdsCannotTraversePaths) {
  Dir dir("traverse");
  auto store = dir.open();
  touch(dir.root / "secret.txt", "secret");
  for (const char* bad : {"..", "../secret.txt", "/etc", "", "a/../..", "jobs"}) {
    EXPECT_THROW(store->job_directory(bad), std::invalid_argument) << bad;
    EXPECT_FALSE(store->load(bad)) << bad;
    EXPECT_FALSE(store->remove(bad)) << bad;
  }
  EXPECT_TRUE(fs::exists(dir.root / "secret.txt"));
  EXPECT_TRUE(fs::exists(dir.root / "jobs"));
  const Job job = store->create({.kind = "soda"});
  EXPECT_EQ(store->job_directory(job.id), dir.root / "jobs" / job.id);
}

TEST(UwsStore, RemoveDeletesRowsAndFiles) {
  Dir dir("remove");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda", .parameters = {{"ID", "a", false}}});
  const Job other = store->create({.kind = "soda"});
  touch(store->job_directory(job.id) / "r.fits");
  touch(store->job_directory(other.id) / "r.fits");
  store->add_result(job.id, {"r", "r.fits", "", "application/fits", 1});
  EXPECT_TRUE(store->remove(job.id));
  EXPECT_FALSE(store->load(job.id));
  EXPECT_FALSE(fs::exists(store->job_directory(job.id)));
  EXPECT_TRUE(fs::exists(store->job_directory(other.id) / "r.fits"));
  EXPECT_FALSE(store->remove(job.id));
  // No orphan rows.
  auto conn = pixserve::testing::test_database(dir.db());
  for (const char* table : {"uws_parameter", "uws_result"}) {
    auto q = conn->prepare(std::string("SELECT COUNT(*) FROM ") + table + " WHERE job_id = ?");
    q->bind(1, job.id);
    ASSERT_TRUE(q->step());
    EXPECT_EQ(q->get_int(0), 0) << table;
  }
}

TEST(UwsStore, ExpiredJobs) {
  Dir dir("expired");
  auto store = dir.open();
  const Job old_job = store->create({.kind = "soda", .destruction = now() - 1s});
  const Job new_job = store->create({.kind = "soda"});
  EXPECT_EQ(store->expired(now()), (std::vector<std::string>{old_job.id}));
  EXPECT_EQ(store->expired(now() + 2h).size(), 2u);
  (void)new_job;
}

const std::vector<std::string> kSoda{"soda"};

TEST(UwsStore, QueueHandsOutJobsInOrderOnceEach) {
  Dir dir("queue_order");
  auto store = dir.open();
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(store->create({.kind = "soda"}).id);
  const std::string tap = store->create({.kind = "tap"}).id;
  // Queued in another order than created: the queue's order counts.
  for (const auto& id : {ids[1], tap, ids[0], ids[2]}) {
    ASSERT_TRUE(store->transition(id, {Phase::pending}, Phase::queued));
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(store->queued_count(), 4u);
  const std::vector<std::string> nothing;
  EXPECT_FALSE(store->claim("w1", nothing, 10s));
  std::vector<std::string> got;
  while (auto job = store->claim(got.size() % 2 ? "w2" : "w1", kSoda, 10s)) {
    EXPECT_EQ(job->phase, Phase::executing);
    EXPECT_EQ(job->attempts, 1);
    EXPECT_TRUE(job->start_time);
    got.push_back(job->id);
  }
  EXPECT_EQ(got, (std::vector<std::string>{ids[1], ids[0], ids[2]}));
  EXPECT_EQ(store->queued_count(), 1u);  // the TAP job: no SODA worker takes it
  EXPECT_EQ(store->phase_of(tap), Phase::queued);
}

TEST(UwsStore, ConcurrentClaimersNeverShareAJob) {
  Dir dir("queue_concurrent");
  std::vector<std::string> queued;
  {
    auto store = dir.open();
    for (int i = 0; i < 60; ++i) {
      const std::string id = store->create({.kind = "soda"}).id;
      store->transition(id, {Phase::pending}, Phase::queued);
      queued.push_back(id);
    }
  }
  // Four "servers", each with its own connection, empty the queue at once.
  std::vector<std::vector<std::string>> claimed(4);
  {
    std::vector<std::jthread> servers;
    for (std::size_t s = 0; s < claimed.size(); ++s) {
      servers.emplace_back([&, s] {
        auto store = dir.open();
        const std::string worker = "server" + std::to_string(s);
        while (auto job = store->claim(worker, kSoda, 10s)) claimed[s].push_back(job->id);
      });
    }
  }
  std::vector<std::string> all;
  for (const auto& c : claimed) all.insert(all.end(), c.begin(), c.end());
  std::sort(all.begin(), all.end());
  std::sort(queued.begin(), queued.end());
  EXPECT_EQ(all, queued);  // every job once: none lost, none twice
}

TEST(UwsStore, OnlyTheLeaseHolderRenewsAndEndsAJob) {
  Dir dir("queue_lease");
  auto store = dir.open();
  const std::string id = store->create({.kind = "soda"}).id;
  store->transition(id, {Phase::pending}, Phase::queued);
  ASSERT_TRUE(store->claim("w1", kSoda, 10s));
  const std::vector<std::string> ids{id, "not-a-job"};
  EXPECT_EQ(store->renew("w1", ids, 10s), (std::vector<std::string>{id}));
  EXPECT_TRUE(store->renew("w2", ids, 10s).empty());
  EXPECT_FALSE(store->finish(id, "w2", Phase::completed));
  EXPECT_FALSE(store->release(id, "w2"));
  EXPECT_EQ(store->phase_of(id), Phase::executing);
  EXPECT_THROW(store->finish(id, "w1", Phase::executing), std::invalid_argument);
  EXPECT_TRUE(store->finish(id, "w1", Phase::error, ErrorSummary{ErrorType::fatal, "bad", {}}));
  const auto job = store->load(id);
  EXPECT_EQ(job->phase, Phase::error);
  EXPECT_EQ(job->error->message, "bad");
  EXPECT_TRUE(job->end_time);
  EXPECT_TRUE(store->renew("w1", ids, 10s).empty());  // ended: nothing to renew
  EXPECT_FALSE(store->finish(id, "w1", Phase::completed));

  // An aborted job (by any server) is no longer the worker's.
  const std::string aborted = store->create({.kind = "soda"}).id;
  store->transition(aborted, {Phase::pending}, Phase::queued);
  ASSERT_TRUE(store->claim("w1", kSoda, 10s));
  ASSERT_TRUE(store->transition(aborted, {Phase::executing}, Phase::aborted));
  const std::vector<std::string> just_aborted{aborted};
  EXPECT_TRUE(store->renew("w1", just_aborted, 10s).empty());
  EXPECT_FALSE(store->finish(aborted, "w1", Phase::completed));
  EXPECT_EQ(store->phase_of(aborted), Phase::aborted);
}

TEST(UwsStore, ReleaseGivesTheJobBackWithoutCountingTheAttempt) {
  Dir dir("queue_release");
  auto store = dir.open();
  const std::string first = store->create({.kind = "soda"}).id;
  const std::string second = store->create({.kind = "soda"}).id;
  store->transition(first, {Phase::pending}, Phase::queued);
  std::this_thread::sleep_for(2ms);
  store->transition(second, {Phase::pending}, Phase::queued);
  ASSERT_EQ(store->claim("w1", kSoda, 10s)->id, first);
  EXPECT_TRUE(store->release(first, "w1"));
  const auto job = store->load(first);
  EXPECT_EQ(job->phase, Phase::queued);
  EXPECT_EQ(job->attempts, 0);
  EXPECT_FALSE(job->start_time);
  // It keeps its place: still ahead of the job queued after it.
  EXPECT_EQ(store->claim("w2", kSoda, 10s)->id, first);
}

TEST(UwsStore, ReapQueuesExpiredLeasesAgainThenGivesUp) {
  Dir dir("queue_reap");
  auto store = dir.open();
  const std::string id = store->create({.kind = "soda"}).id;
  const std::string healthy = store->create({.kind = "soda"}).id;
  store->transition(id, {Phase::pending}, Phase::queued);
  ASSERT_EQ(store->claim("dead", kSoda, 1ms)->id, id);
  store->add_result(id, Result{.id = "partial", .file_name = "partial.txt", .url = {}, .mime_type = "text/plain", .size = 1});
  touch(store->job_directory(id) / "partial.txt");
  store->transition(healthy, {Phase::pending}, Phase::queued);
  ASSERT_EQ(store->claim("alive", kSoda, 1h)->id, healthy);
  std::this_thread::sleep_for(20ms);

  auto reaped = store->reap(2);
  EXPECT_EQ(reaped.requeued, (std::vector<std::string>{id}));
  EXPECT_TRUE(reaped.failed.empty());
  EXPECT_EQ(store->phase_of(id), Phase::queued);
  EXPECT_EQ(store->phase_of(healthy), Phase::executing);  // its lease holds
  EXPECT_FALSE(store->finish(id, "dead", Phase::completed));  // the dead worker's word no longer counts

  // The second attempt starts from nothing.
  const auto again = store->claim("dead again", kSoda, 1ms);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_TRUE(again->results.empty());
  EXPECT_FALSE(fs::exists(store->job_directory(id) / "partial.txt"));
  std::this_thread::sleep_for(20ms);

  reaped = store->reap(2);
  EXPECT_TRUE(reaped.requeued.empty());
  EXPECT_EQ(reaped.failed, (std::vector<std::string>{id}));
  const auto job = store->load(id);
  EXPECT_EQ(job->phase, Phase::error);
  ASSERT_TRUE(job->error);
  EXPECT_EQ(job->error->type, ErrorType::fatal);
  EXPECT_NE(job->error->message.find("stopped, 2 time(s)"), std::string::npos) << job->error->message;
  EXPECT_TRUE(job->end_time);
  EXPECT_TRUE(store->reap(2).failed.empty());
}

TEST(UwsStore, JobsOfAnOlderStoreJoinTheQueue) {
  Dir dir("queue_upgrade");
  std::string queued, executing;
  {
    // What a server of before the shared queue left: no queue columns.
    auto conn = pixserve::testing::test_database(dir.db());
    conn->exec(
        "CREATE TABLE uws_job (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, owner TEXT NOT NULL, "
        "run_id TEXT NOT NULL DEFAULT '', phase TEXT NOT NULL, creation_time BIGINT NOT NULL, start_time BIGINT, "
        "end_time BIGINT, quote BIGINT, execution_duration BIGINT NOT NULL, destruction_time BIGINT NOT NULL, "
        "error_type TEXT, error_message TEXT, error_detail TEXT, progress DOUBLE PRECISION, progress_message TEXT)");
    queued = new_job_id();
    executing = new_job_id();
    const auto t = now().time_since_epoch().count();
    for (const auto& [id, phase] : {std::pair{queued, "QUEUED"}, std::pair{executing, "EXECUTING"}}) {
      auto insert = conn->prepare(
          "INSERT INTO uws_job (job_id, kind, owner, phase, creation_time, execution_duration, destruction_time) "
          "VALUES (?, 'soda', 'u', ?, ?, 60, ?)");
      insert->bind(1, id).bind(2, phase).bind(3, static_cast<std::int64_t>(t)).bind(4, static_cast<std::int64_t>(t + 3'600'000)).run();
    }
  }
  auto store = dir.open();
  EXPECT_EQ(store->load(queued)->owner_context, "");
  EXPECT_EQ(store->claim("w", kSoda, 10s)->id, queued);
  // EXECUTING without a lease: its server is gone.
  EXPECT_EQ(store->reap(3).requeued, (std::vector<std::string>{executing}));
  EXPECT_EQ(store->claim("w", kSoda, 10s)->id, executing);
  auto reopened = dir.open();  // opening again changes nothing
  EXPECT_EQ(reopened->load(executing)->phase, Phase::executing);
}

TEST(UwsStore, WaitReturnsOnPhaseChangeOrTimeout) {
  Dir dir("wait");
  auto store = dir.open();
  const Job job = store->create({.kind = "soda", .owner = "w"});
  // Timeout: nothing changes.
  auto t0 = std::chrono::steady_clock::now();
  auto same = store->wait(job.id, "w", "soda", 150ms);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 140ms);
  EXPECT_EQ(same->phase, Phase::pending);
  // PHASE given and different: no blocking.
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(store->wait(job.id, "w", "soda", 5s, Phase::executing)->phase, Phase::pending);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  // A change wakes the waiter at once.
  std::jthread changer([&] {
    std::this_thread::sleep_for(100ms);
    store->transition(job.id, {Phase::pending}, Phase::queued);
  });
  t0 = std::chrono::steady_clock::now();
  auto changed = store->wait(job.id, "w", "soda", 5s, Phase::pending);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(changed->phase, Phase::queued);
  changer.join();
  // Final phases never block.
  store->transition(job.id, {Phase::queued}, Phase::aborted);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(store->wait(job.id, "w", "soda", 5s)->phase, Phase::aborted);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
}
