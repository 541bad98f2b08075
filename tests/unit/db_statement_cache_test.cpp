// db::Connection::prepare_cached on SQLite: a statement lent again comes
// back reset with its bindings cleared, two lent at once of the same text
// are independent, and a statement given back half-read holds no read
// transaction (a writer on another connection is not kept waiting).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "db/database.hpp"
#include "test_scratch.hpp"

namespace pixserve::db {
namespace {

constexpr const char* kNames = "SELECT name FROM t WHERE id >= ? ORDER BY id";

std::filesystem::path make_cache_file() {
  const auto file = testing::test_scratch_file("statement-cache.sqlite");
  std::filesystem::remove(file);
  auto rw = open_sqlite(file, true);
  rw->exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t (name) VALUES ('a'), ('b'), ('c')");
  return file;
}

std::string names_from(Connection& conn, std::int64_t first) {
  auto s = conn.prepare_cached(kNames);
  s->bind(1, first);
  std::string out;
  while (s->step()) out += s->get_text(0);
  return out;
}

TEST(DbStatementCache, LentAgainResetWithNewBindings) {
  auto conn = open_sqlite(make_cache_file(), false);
  EXPECT_EQ(names_from(*conn, 1), "abc");
  EXPECT_EQ(names_from(*conn, 2), "bc");
  {
    auto half = conn->prepare_cached(kNames);
    half->bind(1, 1);
    ASSERT_TRUE(half->step());  // given back unfinished
  }
  EXPECT_EQ(names_from(*conn, 3), "c");
  auto unbound = conn->prepare_cached(kNames);
  EXPECT_FALSE(unbound->step());  // NULL parameter: no row, the old binding is gone
}

TEST(DbStatementCache, TwoLentAtOnceAreIndependent) {
  auto conn = open_sqlite(make_cache_file(), false);
  auto a = conn->prepare_cached(kNames);
  auto b = conn->prepare_cached(kNames);
  a->bind(1, 1);
  b->bind(1, 3);
  ASSERT_TRUE(a->step());
  ASSERT_TRUE(b->step());
  EXPECT_EQ(a->get_text(0), "a");
  EXPECT_EQ(b->get_text(0), "c");
  EXPECT_FALSE(b->step());
  ASSERT_TRUE(a->step());
  EXPECT_EQ(a->get_text(0), "b");
}

TEST(DbStatementCache, AStatementGivenBackHoldsNoReadTransaction) {
  const auto file = make_cache_file();
  auto reader = open_sqlite(file, false);
  {
    auto s = reader->prepare_cached(kNames);
    s->bind(1, 1);
    ASSERT_TRUE(s->step());
  }
  auto writer = open_sqlite(file, SqliteOptions{.busy_timeout = std::chrono::milliseconds(100)});
  writer->exec("INSERT INTO t (name) VALUES ('d')");
  auto checkpoint = writer->prepare("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(checkpoint->step());
  EXPECT_EQ(checkpoint->get_int(0), 0);  // not busy: no reader holds the old snapshot
  EXPECT_EQ(names_from(*reader, 4), "d");
}

}  // namespace
}  // namespace pixserve::db
