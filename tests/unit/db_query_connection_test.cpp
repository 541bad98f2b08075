// The db:: pieces a TAP query connection is built from, on SQLite: a
// read-only connection, the progress check that stops a running statement
// (time limit, cancellation), transaction state, BLOB columns and the
// backend's own error text.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>

#include "db/database.hpp"
#include "test_scratch.hpp"

namespace pixserve::db {
namespace {

using Clock = std::chrono::steady_clock;

// Counts to `n` in SQL: long enough to be stopped for large n.
constexpr const char* kCount = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
                               "SELECT count(*) FROM c";

// A registry-like file with one table of three rows.
std::filesystem::path make_file() {
  const auto file = testing::test_scratch_file("registry.sqlite");
  std::filesystem::remove(file);
  auto rw = open_sqlite(file, true);
  rw->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES ('a'), ('b'), ('c')");
  return file;
}

std::int64_t count_to(Connection& conn, std::int64_t n) {
  auto s = conn.prepare(kCount);
  s->bind(1, n);
  EXPECT_TRUE(s->step());
  return s->get_int(0);
}

TEST(DbReadOnly, ReadsButDoesNotWriteTheFile) {
  const auto file = make_file();
  auto ro = open_sqlite(file, SqliteOptions{.read_only = true, .one_thread_at_a_time = true});
  auto s = ro->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(s->step());
  EXPECT_EQ(s->get_int(0), 3);
  EXPECT_THROW(ro->exec("INSERT INTO t (name) VALUES ('d')"), DbError);
  EXPECT_THROW(ro->exec("CREATE TABLE u (x)"), DbError);
  // TEMP objects are the connection's own: the TAP engine's views and
  // upload tables live there.
  ro->exec("CREATE TEMP TABLE u (x); INSERT INTO temp.u VALUES (1)");
  auto again = open_sqlite(file, false);
  auto n = again->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(n->step());
  EXPECT_EQ(n->get_int(0), 3);
}

TEST(DbReadOnly, DoesNotCreateAMissingFile) {
  const auto file = testing::test_scratch_file("missing.sqlite");
  std::filesystem::remove(file);
  EXPECT_THROW(open_sqlite(file, SqliteOptions{.create = true, .read_only = true}), DbError);
  EXPECT_FALSE(std::filesystem::exists(file));
}

TEST(DbReadOnly, SeesRowsAnotherConnectionCommits) {
  const auto file = make_file();
  auto ro = open_sqlite(file, SqliteOptions{.read_only = true});
  auto rw = open_sqlite(file, false);
  rw->exec("INSERT INTO t (name) VALUES ('d')");
  auto s = ro->prepare("SELECT count(*) FROM t");
  ASSERT_TRUE(s->step());
  EXPECT_EQ(s->get_int(0), 4);
}

TEST(DbProgressCheck, StopsARunningStatement) {
  auto conn = open_sqlite(":memory:", true);
  int calls = 0;
  conn->set_progress_check([&] { return ++calls >= 3; });
  auto s = conn->prepare(kCount);
  s->bind(1, std::int64_t{1'000'000'000});
  EXPECT_THROW(s->step(), Interrupted);
  EXPECT_EQ(calls, 3);  // asked until it said stop, and not again
}

TEST(DbProgressCheck, DeadlineStopsWithinMilliseconds) {
  auto conn = open_sqlite(":memory:", true);
  const auto deadline = Clock::now() + std::chrono::milliseconds(50);
  conn->set_progress_check([&] { return Clock::now() >= deadline; });
  const auto start = Clock::now();
  EXPECT_THROW(count_to(*conn, 1'000'000'000), Interrupted);
  const auto took = Clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(50));
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(DbProgressCheck, CheckThatNeverStopsLetsTheStatementFinish) {
  auto conn = open_sqlite(":memory:", true);
  std::atomic<int> calls = 0;
  conn->set_progress_check([&] {
    ++calls;
    return false;
  });
  EXPECT_EQ(count_to(*conn, 100'000), 100'000);
  EXPECT_GT(calls.load(), 0);
}

TEST(DbProgressCheck, RemovedCheckIsNotCalled) {
  auto conn = open_sqlite(":memory:", true);
  int calls = 0;
  conn->set_progress_check([&] {
    ++calls;
    return true;
  });
  conn->set_progress_check({});
  EXPECT_EQ(count_to(*conn, 100'000), 100'000);
  EXPECT_EQ(calls, 0);
}

TEST(DbProgressCheck, AnExceptionInTheCheckStopsTheStatement) {
  auto conn = open_sqlite(":memory:", true);
  conn->set_progress_check([]() -> bool { throw std::runtime_error("check failed"); });
  EXPECT_THROW(count_to(*conn, 1'000'000'000), Interrupted);
}

TEST(DbProgressCheck, OtherErrorsAreNotInterruptions) {
  auto conn = open_sqlite(":memory:", true);
  conn->set_progress_check([] { return false; });
  auto s = conn->prepare("SELECT abs(-9223372036854775807 - 1)");  // integer overflow at run time
  try {
    s->step();
    FAIL() << "no error";
  } catch (const Interrupted&) {
    FAIL() << "reported as interrupted";
  } catch (const DbError& e) {
    EXPECT_EQ(std::string(e.reason()), "integer overflow");
  }
}

TEST(DbConnection, InTransaction) {
  auto conn = open_sqlite(":memory:", true);
  EXPECT_FALSE(conn->in_transaction());
  conn->exec("BEGIN");
  EXPECT_TRUE(conn->in_transaction());
  conn->exec("ROLLBACK");
  EXPECT_FALSE(conn->in_transaction());
  {
    Transaction t(*conn);
    EXPECT_TRUE(conn->in_transaction());
  }
  EXPECT_FALSE(conn->in_transaction());
}

TEST(DbConnection, Blob) {
  auto conn = open_sqlite(":memory:", true);
  auto s = conn->prepare("SELECT x'0102ff', x'', NULL");
  ASSERT_TRUE(s->step());
  EXPECT_EQ(s->get_blob(0), (std::vector<unsigned char>{1, 2, 255}));
  EXPECT_TRUE(s->get_blob(1).empty());
  EXPECT_TRUE(s->is_null(2));
  EXPECT_TRUE(s->get_blob(2).empty());
}

TEST(DbConnection, ErrorReasonIsTheBackendMessageAlone) {
  auto conn = open_sqlite(":memory:", true);
  try {
    conn->prepare("SELECT * FROM nowhere");
    FAIL() << "prepared";
  } catch (const DbError& e) {
    EXPECT_EQ(std::string(e.reason()), "no such table: nowhere");
    EXPECT_NE(std::string(e.what()).find("no such table: nowhere"), std::string::npos);
    EXPECT_NE(std::string(e.what()), std::string(e.reason()));
  }
  try {
    conn->exec("CREATE TABLE t (x); CREATE TABLE t (x)");
    FAIL() << "created twice";
  } catch (const DbError& e) {
    EXPECT_EQ(std::string(e.reason()), "table t already exists");
  }
  // Without a separate reason, reason() is what().
  EXPECT_EQ(std::string(DbError("plain").reason()), "plain");
}

}  // namespace
}  // namespace pixserve::db
