// The PostgreSQL backend of the database interface (db/postgresql.cpp)
// against a private cluster (pg_cluster.hpp): placeholders, types and NULL,
// streamed rows and statements interleaved on one connection, transactions
// and their rollback, constraint errors, cancellation by the progress check
// and by the server's statement_timeout, read-only connections, and a
// server that goes away: refused at once, or restarted while connections
// are idle, streaming rows or in a transaction.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "db/copy.hpp"
#include "db/database.hpp"
#include "pg_cluster.hpp"
#include "test_scratch.hpp"

namespace pixserve::db {
namespace {

using pixserve::testing::PgCluster;
using Clock = std::chrono::steady_clock;

struct PgFixture : ::testing::Test {
  PgCluster cluster;
  std::unique_ptr<Connection> conn = open_postgresql(cluster.url());
};

TEST_F(PgFixture, PlaceholdersTypesAndNulls) {
  EXPECT_EQ(conn->dialect(), Dialect::postgresql);
  conn->exec("CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, i BIGINT, d DOUBLE PRECISION, "
             "s TEXT, b BYTEA)");
  auto ins = conn->prepare("INSERT INTO t (i, d, s, b) VALUES (?, ?, ?, decode(?, 'hex'))");
  ins->bind(1, std::int64_t{1} << 53).bind(2, 0.1).bind(3, "it's a '?' -- not a placeholder").bind(4, "00ff10").run();
  EXPECT_EQ(conn->changes(), 1);
  EXPECT_EQ(conn->last_insert_id(), 1);
  ins->reset();
  ins->bind_null(1).bind(2, std::numeric_limits<double>::infinity()).bind_null(3).bind_null(4).run();
  EXPECT_EQ(conn->last_insert_id(), 2);
  ins->reset();
  ins->bind(1, -7).bind(2, std::nan("")).bind(3, "").bind(4, "").run();

  auto q = conn->prepare("SELECT i, d, s, b, '?' AS q /* ? */, \"s\" FROM t WHERE id >= ? ORDER BY id -- ?");
  q->bind(1, 1);
  ASSERT_TRUE(q->step());
  EXPECT_EQ(q->column_count(), 6);
  EXPECT_EQ(q->column_name(4), "q");
  EXPECT_EQ(q->get_int(0), std::int64_t{1} << 53);
  EXPECT_EQ(q->get_double(1), 0.1);  // exactly: the shortest text of a double reads back as it
  EXPECT_EQ(q->get_text(2), "it's a '?' -- not a placeholder");
  EXPECT_EQ(q->get_blob(3), (std::vector<unsigned char>{0x00, 0xff, 0x10}));
  EXPECT_EQ(q->get_text(4), "?");
  ASSERT_TRUE(q->step());
  EXPECT_TRUE(q->is_null(0));
  EXPECT_FALSE(q->get_optional_int(0));
  EXPECT_TRUE(std::isinf(q->get_double(1)));
  EXPECT_FALSE(q->get_optional_text(2));
  ASSERT_TRUE(q->step());
  EXPECT_EQ(q->get_int(0), -7);
  EXPECT_TRUE(std::isnan(q->get_double(1)));
  EXPECT_EQ(q->get_optional_text(2), std::string());
  EXPECT_FALSE(q->step());
  EXPECT_FALSE(q->step());
  EXPECT_EQ(q->column_count(), 6);  // still known after the last row

  // A result without rows still has its columns; booleans read as integers.
  auto none = conn->prepare("SELECT i, i > 0 AS positive FROM t WHERE id < 0");
  EXPECT_FALSE(none->step());
  EXPECT_EQ(none->column_count(), 2);
  auto flag = conn->prepare("SELECT i > 0 FROM t WHERE id = 1");
  ASSERT_TRUE(flag->step());
  EXPECT_EQ(flag->get_int(0), 1);

  EXPECT_THROW(q->bind(2, 1), DbError);  // only one parameter
  EXPECT_THROW(conn->create_function("f", 1, true, [](FunctionCall&) { return Value{}; }), DbError);
}

// Binary results read every value as the text results do: integers of
// each width with their sign, reals bit for bit (NaN, infinities, the
// smallest subnormal), booleans, text of any bytes, bytea, NULL; and the
// same statement again after reset(). A type without a binary reading
// (NUMERIC) is an error, not a wrong value.
TEST_F(PgFixture, BinaryResultsReadAsTextResultsDo) {
  conn->exec("CREATE TABLE v (k BIGINT, i2 SMALLINT, i4 INTEGER, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION, "
             "b BOOLEAN, s TEXT, c VARCHAR(8), y BYTEA)");
  conn->exec("INSERT INTO v VALUES "
             "(1, -32768, -2147483648, -9223372036854775807, 1.5, 0.1, true, 'é ''q'' \\ x', 'ab', '\\x00ff'), "
             "(2, 7, 123456, 9007199254740993, 'NaN', '-Infinity', false, '', '', ''), "
             "(3, NULL, NULL, NULL, NULL, 4.9406564584124654e-324, NULL, NULL, NULL, NULL)");
  const std::string select = "SELECT i2, i4, i8, f4, f8, b, s, c, y FROM v WHERE k >= ? ORDER BY k";
  auto text = conn->prepare(select);
  auto binary = conn->prepare(select);
  binary->binary_results();
  for (int pass = 0; pass < 2; ++pass) {
    text->bind(1, 1);
    binary->bind(1, 1);
    int rows = 0;
    while (text->step()) {
      ASSERT_TRUE(binary->step());
      ++rows;
      for (int c = 0; c < 9; ++c) {
        ASSERT_EQ(binary->is_null(c), text->is_null(c)) << "row " << rows << " column " << c;
        if (text->is_null(c)) continue;
        if (c <= 2 || c == 5) {
          EXPECT_EQ(binary->get_int(c), text->get_int(c)) << c;
        }
        if (c == 3 || c == 4) {
          const double a = binary->get_double(c), b = text->get_double(c);
          EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << c << ": " << a << " vs " << b;
          EXPECT_EQ(std::signbit(a), std::signbit(b));
        }
        if (c >= 6 && c <= 7) {
          EXPECT_EQ(binary->get_text(c), text->get_text(c)) << c;
        }
        if (c == 8) {
          EXPECT_EQ(binary->get_blob(c), text->get_blob(c));
        }
      }
      EXPECT_EQ(binary->get_text(2), text->get_text(2));  // an integer read as text
    }
    EXPECT_FALSE(binary->step());
    EXPECT_EQ(rows, 3);
    text->reset();
    binary->reset();
  }
  auto numeric = conn->prepare("SELECT CAST(1.5 AS NUMERIC)");
  numeric->binary_results();
  ASSERT_TRUE(numeric->step());
  EXPECT_THROW(numeric->get_double(0), DbError);
  EXPECT_THROW(numeric->get_text(0), DbError);
  numeric->run();
  EXPECT_THROW(numeric->binary_results(), DbError);  // after it was sent
}

// A statement left before its last row inside a transaction (a search
// that has the rows it wants) does not abort the transaction: the next
// statements of it run, and it commits.
TEST_F(PgFixture, AStatementLeftEarlyInATransactionLeavesItUsable) {
  conn->exec("CREATE TABLE kept (n BIGINT)");
  conn->exec("BEGIN READ WRITE");
  {
    auto many = conn->prepare("SELECT n FROM generate_series(1, 300000) AS n");
    ASSERT_TRUE(many->step());
    EXPECT_EQ(many->get_int(0), 1);
  }  // left after one row of 300,000
  auto again = conn->prepare("SELECT n FROM generate_series(1, 300000) AS n");
  ASSERT_TRUE(again->step());
  again->reset();  // left again, by reset()
  conn->exec("INSERT INTO kept VALUES (7)");
  conn->exec("COMMIT");
  auto check = conn->prepare("SELECT n FROM kept");
  ASSERT_TRUE(check->step());
  EXPECT_EQ(check->get_int(0), 7);
}

TEST_F(PgFixture, RowsStreamAndStatementsInterleaveOnOneConnection) {
  conn->exec("CREATE TABLE n (k INTEGER PRIMARY KEY)");
  conn->exec("INSERT INTO n SELECT generate_series(1, 20000)");
  EXPECT_EQ(conn->changes(), 20000);
  auto outer = conn->prepare("SELECT k FROM n ORDER BY k");
  auto inner = conn->prepare("SELECT k * 2 FROM n WHERE k = ?");
  std::int64_t sum = 0, count = 0;
  while (outer->step()) {
    const auto k = outer->get_int(0);
    if (k % 5000 == 0) {  // another statement while the outer one has rows left
      inner->bind(1, k);
      ASSERT_TRUE(inner->step());
      EXPECT_EQ(inner->get_int(0), 2 * k);
      inner->reset();
    }
    sum += k;
    ++count;
  }
  EXPECT_EQ(count, 20000);
  EXPECT_EQ(sum, std::int64_t{20000} * 20001 / 2);
  // A statement dropped half-way leaves the connection usable.
  {
    auto half = conn->prepare("SELECT k FROM n");
    ASSERT_TRUE(half->step());
  }
  auto after = conn->prepare("SELECT COUNT(*) FROM n");
  ASSERT_TRUE(after->step());
  EXPECT_EQ(after->get_int(0), 20000);
}

TEST_F(PgFixture, TransactionsRollBackUnlessCommittedAndConstraintsAreTold) {
  conn->exec("CREATE TABLE u (name TEXT PRIMARY KEY)");
  EXPECT_FALSE(conn->in_transaction());
  {
    Transaction tx(*conn);
    EXPECT_TRUE(conn->in_transaction());
    conn->prepare("INSERT INTO u VALUES (?)")->bind(1, "gone").run();
  }
  EXPECT_FALSE(conn->in_transaction());
  {
    Transaction tx(*conn);
    conn->prepare("INSERT INTO u VALUES (?)")->bind(1, "kept").run();
    tx.commit();
  }
  auto count = conn->prepare("SELECT string_agg(name, ',') FROM u");
  ASSERT_TRUE(count->step());
  EXPECT_EQ(count->get_text(0), "kept");
  try {
    conn->prepare("INSERT INTO u VALUES (?)")->bind(1, "kept").run();
    FAIL() << "a duplicate key was accepted";
  } catch (const ConstraintError& e) {
    EXPECT_NE(std::string(e.reason()).find("duplicate key"), std::string::npos) << e.what();
  }
  try {
    conn->exec("SELECT * FROM no_such_table");
    FAIL();
  } catch (const ConstraintError&) {
    FAIL() << "not a constraint error";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.reason()).find("no_such_table"), std::string::npos) << e.what();
  }
  // The connection is still good after errors.
  auto one = conn->prepare("SELECT 1");
  ASSERT_TRUE(one->step());
}

TEST_F(PgFixture, TheProgressCheckCancelsARunningStatementInTheServer) {
  bool stop = false;
  conn->set_progress_check([&] { return stop; });
  auto slow = conn->prepare("SELECT pg_sleep(30)");
  stop = true;
  const auto t0 = Clock::now();
  EXPECT_THROW(slow->step(), Interrupted);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
  // Cancelled in the server: nothing of it is left running.
  conn->set_progress_check({});
  auto left = conn->prepare("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' "
                            "AND state = 'active'");
  ASSERT_TRUE(left->step());
  EXPECT_EQ(left->get_int(0), 0);

  // The server's own limit: an error, not Interrupted (nobody here asked).
  auto limited = open_postgresql(cluster.url(), {.read_only = false, .statement_timeout = std::chrono::milliseconds(200)});
  auto sleeper = limited->prepare("SELECT pg_sleep(5)");
  try {
    sleeper->step();
    FAIL();
  } catch (const Interrupted&) {
    FAIL() << "a server timeout is not an interruption by the caller";
  } catch (const DbError& e) {
    EXPECT_NE(std::string(e.reason()).find("statement timeout"), std::string::npos) << e.what();
  }
}

// A bounded read: the database stops a statement past the limit (TimedOut,
// not a fault of the connection), refuses writes, and the session is back
// out of the transaction afterwards, usable at once.
TEST_F(PgFixture, ABoundedReadIsReadOnlyAndStoppedByTheDatabaseAtItsLimit) {
  conn->exec("CREATE TABLE t (k BIGINT)");
  {
    const BoundedRead read(*conn, std::chrono::milliseconds(200));
    EXPECT_TRUE(conn->in_transaction());
    const auto t0 = std::chrono::steady_clock::now();
    auto slow = conn->prepare("SELECT pg_sleep(5)");
    EXPECT_THROW(slow->step(), TimedOut);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  }
  EXPECT_FALSE(conn->in_transaction());
  {
    const BoundedRead read(*conn, std::chrono::milliseconds(1000));
    EXPECT_THROW(conn->exec("INSERT INTO t VALUES (1)"), DbError);
  }
  {
    const BoundedRead read(*conn, std::chrono::milliseconds(1000));
    auto count = conn->prepare("SELECT count(*) FROM t");
    ASSERT_TRUE(count->step());
    EXPECT_EQ(count->get_int(0), 0);
  }
  // The limit was the transaction's: later statements have none.
  auto later = conn->prepare("SELECT pg_sleep(0.3), 1");
  ASSERT_TRUE(later->step());
  EXPECT_EQ(later->get_int(1), 1);
}

TEST_F(PgFixture, ReadOnlyConnectionsRefuseWritesAndALostServerIsAnError) {
  conn->exec("CREATE TABLE r (v INTEGER)");
  auto reader = open_postgresql(cluster.url(), {.read_only = true});
  EXPECT_THROW(reader->exec("INSERT INTO r VALUES (1)"), DbError);
  auto q = reader->prepare("SELECT COUNT(*) FROM r");
  ASSERT_TRUE(q->step());
  EXPECT_EQ(q->get_int(0), 0);
  // Nobody listens here.
  try {
    open_postgresql("postgresql://pixserve@127.0.0.1:1/postgres?connect_timeout=2");
    FAIL();
  } catch (const Unavailable& e) {
    EXPECT_EQ(e.reason(), "database unavailable");
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos);
  }
}

// How long `c` takes to answer SELECT 1 again (Unavailable past `limit`).
Clock::duration time_until_answered(Connection& c, Clock::duration limit) {
  const auto t0 = Clock::now();
  for (;;) {
    try {
      auto one = c.prepare("SELECT 1");
      if (one->step() && one->get_int(0) == 1) return Clock::now() - t0;
    } catch (const Unavailable&) {
      if (Clock::now() - t0 > limit) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

TEST_F(PgFixture, ARestartedServerIsUnavailableWhileDownAndConnectionsRecoverByThemselves) {
  conn->exec("CREATE TABLE k (v INTEGER)");
  conn->exec("INSERT INTO k SELECT generate_series(1, 10000)");
  auto idle = open_postgresql(cluster.url());    // not used while the server is down
  auto reader = open_postgresql(cluster.url());  // streaming rows when it goes
  auto kept = open_postgresql(cluster.url(), {.reconnect = false});
  auto count = idle->prepare("SELECT COUNT(*) FROM k");  // prepared before, run after
  // More rows than the sockets' buffers hold: the server is still sending
  // when it stops.
  auto streaming = reader->prepare("SELECT g FROM generate_series(1, 50000000) AS g");
  ASSERT_TRUE(streaming->step());
  auto tx = std::make_unique<Transaction>(*conn);
  conn->prepare("INSERT INTO k VALUES (?)")->bind(1, -1).run();

  cluster.stop();
  // The server has closed the idle sessions (conn is in a transaction but
  // idle too); `reader` is busy reading rows and learns it from them.
  for (Connection* c : {conn.get(), idle.get(), kept.get()}) EXPECT_FALSE(c->connected());
  // The rows of the lost session end in an error, not in a short result.
  try {
    while (streaming->step()) {
    }
    FAIL() << "the rows ended without an error after the server stopped";
  } catch (const Unavailable& e) {
    EXPECT_EQ(e.reason(), kUnavailableReason);
  }
  EXPECT_THROW(streaming->step(), Unavailable);
  // Attempts to connect while the server stays away are spaced out: a burst
  // of uses fails at once.
  const auto t0 = Clock::now();
  for (int i = 0; i < 20; ++i) EXPECT_THROW(reader->exec("SELECT 1"), Unavailable);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(1));
  // The transaction failed with the connection: its statements (COMMIT
  // too) fail until the caller rolls it back.
  EXPECT_TRUE(conn->in_transaction());
  EXPECT_THROW(conn->prepare("INSERT INTO k VALUES (?)")->bind(1, -2).run(), Unavailable);
  EXPECT_THROW(tx->commit(), Unavailable);
  EXPECT_TRUE(conn->in_transaction());
  tx.reset();  // its ROLLBACK ends it
  EXPECT_FALSE(conn->in_transaction());
  EXPECT_THROW(conn->exec("SELECT 1"), Unavailable);

  cluster.start();
  // A connection that was idle all along reconnects on its first use, and
  // that use succeeds (the server had closed the session: nothing was sent
  // to it); the statement was prepared before.
  ASSERT_TRUE(count->step());
  EXPECT_EQ(count->get_int(0), 10000);  // the rolled-back row is not there
  EXPECT_TRUE(idle->connected());
  // The others are back within the spacing of attempts (at most 2 s),
  // without being reopened.
  EXPECT_LT(time_until_answered(*reader, std::chrono::seconds(10)), std::chrono::seconds(3));
  EXPECT_LT(time_until_answered(*conn, std::chrono::seconds(10)), std::chrono::seconds(3));
  {
    Transaction again(*conn);
    conn->prepare("INSERT INTO k VALUES (?)")->bind(1, -3).run();
    again.commit();
  }
  auto negative = reader->prepare("SELECT string_agg(CAST(v AS TEXT), ',') FROM k WHERE v < 0");
  ASSERT_TRUE(negative->step());
  EXPECT_EQ(negative->get_text(0), "-3");
  // Without reconnect a connection stays lost: its owner opens another.
  EXPECT_FALSE(kept->connected());
  EXPECT_THROW(kept->exec("SELECT 1"), Unavailable);
}

TEST_F(PgFixture, TablesCopyFromSqliteWithEveryValueKindAcrossBatches) {
  pixserve::testing::ScratchDir scratch;
  auto from = open_sqlite(scratch.dir / "from.sqlite3", true);
  from->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER, x REAL, s TEXT)");
  conn->exec("CREATE TABLE t (k BIGINT PRIMARY KEY, n BIGINT, x DOUBLE PRECISION, s TEXT)");
  // More rows than one batch carries, so the last batch is partial.
  constexpr int kRows = 25'003;
  {
    Transaction tx(*from);
    auto ins = from->prepare("INSERT INTO t VALUES (?, ?, ?, ?)");
    for (int i = 0; i < kRows; ++i) {
      ins->bind(1, std::int64_t{i});
      if (i % 7 == 0) {
        ins->bind_null(2).bind_null(3).bind_null(4);
      } else {
        ins->bind(2, std::int64_t{i} * std::int64_t{1'000'000'007}).bind(3, i / 3.0 - 1e-300).bind(4, "it's \\ row " + std::to_string(i));
      }
      ins->run();
      ins->reset();
    }
    tx.commit();
  }
  EXPECT_TRUE(table_exists(*from, "t"));
  EXPECT_FALSE(table_exists(*from, "nothing"));
  EXPECT_TRUE(table_exists(*conn, "t"));
  std::int64_t last_report = 0;
  {
    Transaction tx(*conn);
    EXPECT_EQ(copy_table(*from, *conn, "t", [&](const std::string& table, std::int64_t rows) {
                EXPECT_EQ(table, "t");
                EXPECT_GE(rows, last_report);
                last_report = rows;
              }),
              kRows);
    tx.commit();
  }
  EXPECT_EQ(last_report, kRows);
  auto a = from->prepare("SELECT k, n, x, s FROM t ORDER BY k");
  auto b = conn->prepare("SELECT k, n, x, s FROM t ORDER BY k");
  int rows = 0;
  while (a->step()) {
    ASSERT_TRUE(b->step());
    for (int c = 0; c < 4; ++c) EXPECT_EQ(a->get_value(c), b->get_value(c)) << "row " << rows << " column " << c;
    ++rows;
  }
  EXPECT_FALSE(b->step());
  EXPECT_EQ(rows, kRows);
}

TEST_F(PgFixture, CopiedTablesKeepTheirIndexesAndForeignKeysAndTextOfAnyCharacters) {
  pixserve::testing::ScratchDir scratch;
  auto from = open_sqlite(scratch.dir / "from.sqlite3", true);
  from->exec("CREATE TABLE parent (k INTEGER PRIMARY KEY, name TEXT); "
             "CREATE TABLE child (cell INTEGER, k INTEGER, x REAL, PRIMARY KEY (cell, k))");
  conn->exec("CREATE TABLE parent (k BIGINT PRIMARY KEY, name TEXT); "
             "CREATE INDEX parent_name_idx ON parent (name); "
             "CREATE TABLE child (cell BIGINT, k BIGINT REFERENCES parent (k) ON DELETE CASCADE, x DOUBLE PRECISION, "
             "PRIMARY KEY (cell, k)); CREATE INDEX child_k_idx ON child (k)");
  // Text an array literal must quote: quotes, backslashes, braces, commas,
  // spaces, the word NULL, the empty string, non-ASCII; an integer held in a
  // TEXT column (SQLite's flexible types); doubles without a decimal form.
  const std::vector<Value> names{std::string("a \"quoted\" {brace}, comma"), std::string("back\\slash\\"),
                                 std::string("NULL"), std::string(""), std::string("  spaces  "),
                                 std::string("\u00e9t\u00e9 \u2014 \u4e16"), std::int64_t{42}, Value{}};
  const std::vector<double> doubles{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                    5e-324, 1.7976931348623157e308, -2.5e-7, 0.1};
  {
    Transaction tx(*from);
    auto parent = from->prepare("INSERT INTO parent VALUES (?, ?)");
    for (std::size_t i = 0; i < names.size(); ++i) {
      parent->bind(1, static_cast<std::int64_t>(i)).bind(2, names[i]).run();
      parent->reset();
    }
    auto child = from->prepare("INSERT INTO child VALUES (?, ?, ?)");
    for (std::size_t i = 0; i < doubles.size(); ++i) {
      child->bind(1, static_cast<std::int64_t>(100 - i)).bind(2, static_cast<std::int64_t>(i)).bind(3, doubles[i]).run();
      child->reset();
    }
    tx.commit();
  }
  {
    Transaction tx(*conn);
    EXPECT_EQ(copy_table(*from, *conn, "parent"), static_cast<std::int64_t>(names.size()));
    EXPECT_EQ(copy_table(*from, *conn, "child"), static_cast<std::int64_t>(doubles.size()));
    tx.commit();
  }
  auto name = conn->prepare("SELECT name FROM parent WHERE k = ?");
  for (std::size_t i = 0; i < names.size(); ++i) {
    name->bind(1, static_cast<std::int64_t>(i));
    ASSERT_TRUE(name->step());
    const Value expected = std::holds_alternative<std::int64_t>(names[i])
                               ? Value{std::to_string(std::get<std::int64_t>(names[i]))}
                               : names[i];
    EXPECT_EQ(name->get_value(0), expected) << "row " << i;
    name->reset();
  }
  auto x = conn->prepare("SELECT x FROM child WHERE k = ?");
  for (std::size_t i = 0; i < doubles.size(); ++i) {
    x->bind(1, static_cast<std::int64_t>(i));
    ASSERT_TRUE(x->step());
    EXPECT_EQ(x->get_double(0), doubles[i]) << "row " << i;
    x->reset();
  }
  // The indexes and the foreign key taken away for the load are back.
  auto indexes = conn->prepare("SELECT count(*) FROM pg_indexes WHERE indexname IN ('parent_name_idx', 'child_k_idx')");
  ASSERT_TRUE(indexes->step());
  EXPECT_EQ(indexes->get_int(0), 2);
  EXPECT_THROW(conn->exec("INSERT INTO child VALUES (1, 999, 0)"), DbError);
  conn->exec("DELETE FROM parent WHERE k = 0");  // ON DELETE CASCADE as declared
  auto children = conn->prepare("SELECT count(*) FROM child");
  ASSERT_TRUE(children->step());
  EXPECT_EQ(children->get_int(0), static_cast<std::int64_t>(doubles.size()) - 1);
  // A copy that fails (a child without its parent) rolls back with the
  // caller's transaction, and the indexes it had dropped come back with it.
  from->exec("INSERT INTO child VALUES (7, 12345, 1.0)");
  conn->exec("DELETE FROM child");
  {
    Transaction tx(*conn);
    EXPECT_THROW(copy_table(*from, *conn, "child"), DbError);
  }
  auto kept = conn->prepare("SELECT count(*) FROM pg_indexes WHERE indexname = 'child_k_idx'");
  ASSERT_TRUE(kept->step());
  EXPECT_EQ(kept->get_int(0), 1);
}

}  // namespace
}  // namespace pixserve::db
