// Streamed results: TAP's QueryCursor (rows one at a time from the pooled
// connection, MAXREC overflow found while streaming, errors before the first
// row thrown by open(), the deadline met between rows, the connection back
// in the pool when a cursor is dropped half-way and no query left running on
// PostgreSQL), the registry's for_each / find_keys / for_each_of and SIA's
// chunked VisibleDatasets, all against the collected results they replace.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "auth/identity.hpp"
#include "dali/errors.hpp"
#include "repo/astro_units.hpp"
#include "service_test_support.hpp"
#include "services/repository_access.hpp"
#include "services/tap.hpp"
#include "tap/query.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace pixserve::services {
namespace {

// More rows than the cursor's interval between deadline checks (64) and
// than VisibleDatasets' chunk (256).
constexpr int kStreamRows = 300;

repo::DatasetRecord stream_calexp(std::int64_t visit) {
  // Small squares along a line of declination, all within a degree.
  auto r = pixserve::testing::test_calexp(visit, 1, "r", 53.0 + 0.002 * static_cast<double>(visit), -28.0, 0.001);
  if (visit % 10 == 0) {  // hidden from anonymous callers
    r.rights.policy = repo::ReadPolicy::owner;
    r.rights.owner = "alice";
  }
  return r;
}

struct StreamFixture {
  pixserve::testing::ScratchDir scratch;
  std::shared_ptr<SharedRepository> repository;
  std::shared_ptr<tap::TapEngine> engine;
  std::vector<std::string> visible_ids;  // anonymous, in dataset_id order

  StreamFixture() : scratch("tap_stream") {
    auto repo = repo::Repository::open_or_create(
        scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "streamrepo", .authority = "example.org"}));
    {
      db::Transaction t(repo.registry().connection());
      for (int v = 1; v <= kStreamRows; ++v) repo.registry().insert(stream_calexp(v));
      t.commit();
    }
    repository = std::make_shared<SharedRepository>(std::move(repo));
    engine = make_tap_engine(*repository, tap::TapSettings{});
    for (const auto& r : repository->find_visible(repo::DatasetQuery{})) visible_ids.push_back(r.dataset_id);
    std::sort(visible_ids.begin(), visible_ids.end());  // the order of kAllIds
  }

  tap::QueryRequest request(std::string adql, std::int64_t maxrec = 100'000) const {
    tap::QueryRequest q;
    q.adql = std::move(adql);
    q.maxrec = maxrec;
    return q;
  }

  // Sessions of the test's PostgreSQL database other than the caller's
  // that are running a statement or sit in an open transaction.
  std::int64_t busy_sessions() {
    const std::string url = repository->registry_database().postgresql_url;
    if (url.empty()) return 0;
    auto admin = db::open_postgresql(url);
    auto s = admin->prepare(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND "
        "backend_type = 'client backend' AND state IN ('active', 'idle in transaction', "
        "'idle in transaction (aborted)')");
    s->step();
    return s->get_int(0);
  }
};

const std::string kAllIds = "SELECT obs_id FROM ivoa.obscore ORDER BY obs_id";

std::vector<std::string> first_column(tap::QueryCursor& cursor) {
  std::vector<std::string> out;
  while (const auto* row = cursor.next()) out.push_back(std::string(*row->at(0).get_if<std::string>()));
  return out;
}

TEST(TapStream, CursorGivesTheRowsOfTheCollectedResult) {
  StreamFixture f;
  ASSERT_EQ(f.visible_ids.size(), static_cast<std::size_t>(kStreamRows - kStreamRows / 10));
  auto cursor = f.engine->open(f.request(kAllIds));
  ASSERT_EQ(cursor.fields().size(), 1u);
  EXPECT_EQ(cursor.fields()[0].name, "obs_id");
  EXPECT_EQ(first_column(cursor), f.visible_ids);
  EXPECT_FALSE(cursor.overflow());
  // run() collects the same rows.
  const auto collected = f.engine->run(f.request(kAllIds));
  ASSERT_EQ(collected.rows.size(), f.visible_ids.size());
  EXPECT_EQ(*collected.rows.back().at(0).get_if<std::string>(), f.visible_ids.back());
  EXPECT_FALSE(collected.overflow);
}

TEST(TapStream, OverflowIsFoundAtMaxrec) {
  StreamFixture f;
  const auto n = static_cast<std::int64_t>(f.visible_ids.size());
  for (const std::int64_t maxrec : {std::int64_t{1}, n - 1, n, n + 1}) {
    auto cursor = f.engine->open(f.request(kAllIds, maxrec));
    const auto ids = first_column(cursor);
    EXPECT_EQ(static_cast<std::int64_t>(ids.size()), std::min(maxrec, n)) << maxrec;
    EXPECT_EQ(cursor.overflow(), maxrec < n) << maxrec;
    EXPECT_EQ(cursor.next(), nullptr);  // stays at the end
  }
}

TEST(TapStream, ErrorsBeforeTheFirstRowAreThrownByOpen) {
  StreamFixture f;
  EXPECT_THROW(f.engine->open(f.request("SELECT nothing FROM nowhere")), dali::UsageError);
  auto slow = f.request(
      "SELECT COUNT(*) FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
      "TAP_SCHEMA.columns AS d");
  slow.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  EXPECT_THROW(f.engine->open(slow), tap::QueryInterrupted);
  // Failed queries gave their connections back.
  auto cursor = f.engine->open(f.request(kAllIds));
  EXPECT_EQ(first_column(cursor).size(), f.visible_ids.size());
  EXPECT_EQ(f.busy_sessions(), 0);
}

TEST(TapStream, TheDeadlineStopsAResultReadSlowly) {
  StreamFixture f;
  auto q = f.request(kAllIds);
  q.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  auto cursor = f.engine->open(q);  // the first row comes before the deadline
  ASSERT_NE(cursor.next(), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // a slow client
  std::size_t more = 0;
  try {
    while (cursor.next()) ++more;
    FAIL() << "no error after the deadline";
  } catch (const tap::QueryInterrupted& e) {
    EXPECT_TRUE(e.timed_out());
  }
  EXPECT_LT(more, f.visible_ids.size() - 1);
  // The cursor gave its connection back when it failed.
  EXPECT_GE(f.engine->idle_connections(), 1u);
  EXPECT_EQ(f.busy_sessions(), 0);
}

TEST(TapStream, CancellationStopsAResultBetweenRows) {
  StreamFixture f;
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  auto q = f.request(kAllIds);
  q.cancelled = [cancelled] { return cancelled->load(); };
  auto cursor = f.engine->open(q);
  ASSERT_NE(cursor.next(), nullptr);
  cancelled->store(true);
  try {
    while (cursor.next()) {
    }
    FAIL() << "no error after cancellation";
  } catch (const tap::QueryInterrupted& e) {
    EXPECT_FALSE(e.timed_out());
  }
}

TEST(TapStream, ACursorDroppedHalfWayGivesItsConnectionBack) {
  StreamFixture f;
  {
    auto warm = f.engine->open(f.request(kAllIds));
    first_column(warm);
  }
  const std::size_t idle = f.engine->idle_connections();
  ASSERT_GE(idle, 1u);
  {
    auto cursor = f.engine->open(f.request(kAllIds));
    EXPECT_EQ(f.engine->idle_connections(), idle - 1);  // checked out while the rows are read
    for (int i = 0; i < 10; ++i) ASSERT_NE(cursor.next(), nullptr);
  }
  EXPECT_EQ(f.engine->idle_connections(), idle);
  // Nothing left running or in a transaction on the server, and the next
  // query on the same connection works.
  EXPECT_EQ(f.busy_sessions(), 0);
  auto again = f.engine->open(f.request("SELECT COUNT(*) FROM ivoa.obscore"));
  const auto* row = again.next();
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(*row->at(0).get_if<std::int64_t>(), static_cast<std::int64_t>(f.visible_ids.size()));
}

TEST(TapStream, TheCursorReadsNoRowAheadOfTheOneItGives) {
  StreamFixture f;
  auto cursor = f.engine->open(f.request(kAllIds));
  EXPECT_EQ(cursor.rows_read(), 1u);  // open() stepped to the first row
  for (std::uint64_t i = 1; i <= 100; ++i) {
    ASSERT_NE(cursor.next(), nullptr);
    EXPECT_EQ(cursor.rows_read(), i);
  }
  // A moved cursor goes on where it was.
  tap::QueryCursor moved = std::move(cursor);
  EXPECT_EQ(first_column(moved).size(), f.visible_ids.size() - 100);
  EXPECT_EQ(moved.rows_read(), f.visible_ids.size());
}

TEST(TapStream, RegistryForEachStreamsWhatFindReturns) {
  StreamFixture f;
  repo::DatasetQuery everything;
  repo::DatasetQuery cone;
  cone.regions.emplace_back(sky::Circle{{53.3, -28.0}, 0.1});
  cone.limit = 40;
  f.repository->with([&](repo::Repository& r) {
    auto& registry = r.registry();
    for (const auto& q : {everything, cone}) {
      const auto found = registry.find(q);
      std::vector<std::string> visited;
      registry.for_each(q, [&](repo::DatasetRecord&& rec) {
        visited.push_back(rec.dataset_id);
        return true;
      });
      ASSERT_EQ(visited.size(), found.size());
      for (std::size_t i = 0; i < found.size(); ++i) EXPECT_EQ(visited[i], found[i].dataset_id);
      // Keys first, then records in two chunks: the same again.
      const auto keys = registry.find_keys(q);
      ASSERT_EQ(keys.size(), found.size());
      std::vector<std::string> chunked;
      const auto keep = [&](repo::DatasetRecord&& rec) {
        chunked.push_back(rec.dataset_id);
        return true;
      };
      const std::span<const std::int64_t> all(keys);
      registry.for_each_of(q, all.first(keys.size() / 2), keep);
      registry.for_each_of(q, all.subspan(keys.size() / 2), keep);
      EXPECT_EQ(chunked, visited);
      // A visitor that says stop is not called again.
      int calls = 0;
      registry.for_each(q, [&](repo::DatasetRecord&&) { return ++calls < 3; });
      EXPECT_EQ(calls, std::min<int>(3, static_cast<int>(found.size())));
    }
    EXPECT_EQ(registry.find(cone).size(), 40u);
  });
}

TEST(TapStream, VisibleDatasetsReadInChunksAreWhatFindVisibleReturns) {
  StreamFixture f;
  for (const std::optional<std::size_t> limit : {std::optional<std::size_t>{}, std::optional<std::size_t>{5},
                                                 std::optional<std::size_t>{VisibleDatasets::kFirstChunk + 3}}) {
    repo::DatasetQuery q;
    q.limit = limit;
    std::vector<std::string> expected;
    for (const auto& r : f.repository->find_visible(q)) expected.push_back(r.dataset_id);
    VisibleDatasets stream(f.repository, q, auth::Identity{});
    EXPECT_EQ(stream.size(), expected.size());
    std::vector<std::string> got;
    stream.for_each([&](repo::DatasetRecord&& r) {
      got.push_back(r.dataset_id);
      return true;
    });
    EXPECT_EQ(got, expected);
  }
  // The owner sees her own datasets too.
  auth::Identity alice;
  alice.user = "alice";
  VisibleDatasets hers(f.repository, repo::DatasetQuery{}, alice);
  EXPECT_EQ(hers.size(), static_cast<std::size_t>(kStreamRows));
}

}  // namespace
}  // namespace pixserve::services
