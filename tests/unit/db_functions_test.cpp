// Scalar SQL functions written in C++ (db::Connection::create_function) on
// SQLite: arguments and results of every type, NULL, errors, arity, and the
// per-argument derived values that let a spatial query parse its search
// shape once per statement instead of once per row.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "db/database.hpp"

namespace pixserve::db {
namespace {

class DbFunctions : public ::testing::Test {
 protected:
  // The first column of the only row of `sql`, as text ("NULL" for NULL).
  std::string one(const std::string& sql) {
    auto s = conn_->prepare(sql);
    EXPECT_TRUE(s->step()) << sql;
    return s->is_null(0) ? "NULL" : s->get_text(0);
  }
  std::unique_ptr<Connection> conn_ = open_sqlite(":memory:", true);
};

TEST_F(DbFunctions, ArgumentTypesAndResults) {
  conn_->create_function("describe", 1, true, [](FunctionCall& call) -> Value {
    switch (call.type(0)) {
      case ValueType::null: return {};
      case ValueType::integer: return call.get_int(0) * 2;
      case ValueType::real: return call.get_double(0) / 2;
      case ValueType::text: return "text:" + std::string(call.get_text(0));
      case ValueType::blob: return std::string("blob");
    }
    return {};
  });
  EXPECT_EQ(one("SELECT describe(21)"), "42");
  EXPECT_EQ(one("SELECT typeof(describe(21))"), "integer");
  EXPECT_EQ(one("SELECT describe(3.0)"), "1.5");
  EXPECT_EQ(one("SELECT typeof(describe(3.0))"), "real");
  EXPECT_EQ(one("SELECT describe('héllo')"), "text:héllo");
  EXPECT_EQ(one("SELECT describe(x'00')"), "blob");
  EXPECT_EQ(one("SELECT describe(NULL)"), "NULL");
}

TEST_F(DbFunctions, AnyNumberOfArguments) {
  conn_->create_function("total", -1, true, [](FunctionCall& call) -> Value {
    double sum = 0;
    for (int i = 0; i < call.size(); ++i) sum += call.get_double(i);
    return sum;
  });
  EXPECT_EQ(one("SELECT total()"), "0.0");
  EXPECT_EQ(one("SELECT total(1, 2, 3.5)"), "6.5");
}

TEST_F(DbFunctions, FixedArityIsChecked) {
  conn_->create_function("two", 2, true, [](FunctionCall&) -> Value { return std::int64_t{2}; });
  EXPECT_EQ(one("SELECT two(1, 2)"), "2");
  EXPECT_THROW(conn_->prepare("SELECT two(1)"), DbError);
}

TEST_F(DbFunctions, ExceptionBecomesTheStatementError) {
  conn_->create_function("boom", 1, true,
                         [](FunctionCall& call) -> Value { throw std::invalid_argument("bad " + std::string(call.get_text(0))); });
  auto s = conn_->prepare("SELECT boom('shape')");
  try {
    s->step();
    FAIL() << "no error";
  } catch (const DbError& e) {
    EXPECT_EQ(std::string(e.reason()), "bad shape");
  }
  // The connection stays usable.
  EXPECT_EQ(one("SELECT 1"), "1");
}

TEST_F(DbFunctions, DerivedValueOfAConstantArgumentIsMadeOncePerStatement) {
  // Like a spatial test: one argument varies by row, the other (the search
  // shape) is the same constant in every row.
  int made = 0;
  conn_->create_function("both_lengths", 2, true, [&made](FunctionCall& call) -> Value {
    const auto length = [&](int i) {
      return call.derived<std::string>(i, [&] {
        ++made;
        return std::string(call.get_text(i));
      }).size();
    };
    return static_cast<std::int64_t>(length(0) + length(1));
  });
  conn_->exec("CREATE TABLE t (x TEXT)");
  for (int i = 0; i < 100; ++i) conn_->exec("INSERT INTO t VALUES ('row" + std::to_string(i) + "')");
  auto s = conn_->prepare("SELECT sum(both_lengths('abcd', x)) FROM t");
  ASSERT_TRUE(s->step());
  EXPECT_EQ(s->get_int(0), 100 * 4 + 10 * 4 + 90 * 5);
  EXPECT_EQ(made, 1 + 100);  // the constant once, the column once per row
}

TEST_F(DbFunctions, DerivedValuesAreFreed) {
  // The derived value holds a reference count: every one made is destroyed
  // by the end of the statement's life.
  const auto token = std::make_shared<int>(0);
  conn_->create_function("hold", 1, true, [token](FunctionCall& call) -> Value {
    (void)call.derived<std::shared_ptr<int>>(0, [&] { return token; });
    return std::int64_t{1};
  });
  conn_->exec("CREATE TABLE t (x INTEGER)");
  conn_->exec("INSERT INTO t VALUES (1), (2), (3)");
  {
    auto s = conn_->prepare("SELECT sum(hold(x)) + sum(hold(7)) FROM t");  // varying and constant
    ASSERT_TRUE(s->step());
    EXPECT_EQ(s->get_int(0), 6);
  }
  EXPECT_EQ(token.use_count(), 2);  // `token` and the copy in the registered function
}

TEST_F(DbFunctions, ReplacingAFunctionFreesTheOldOne) {
  const auto token = std::make_shared<int>(0);
  conn_->create_function("f", 0, true, [token](FunctionCall&) -> Value { return std::int64_t{1}; });
  EXPECT_EQ(token.use_count(), 2);
  conn_->create_function("f", 0, true, [](FunctionCall&) -> Value { return std::int64_t{2}; });
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(one("SELECT f()"), "2");
}

TEST_F(DbFunctions, ClosingTheConnectionFreesFunctions) {
  const auto token = std::make_shared<int>(0);
  conn_->create_function("f", 0, true, [token](FunctionCall&) -> Value { return std::int64_t{1}; });
  conn_.reset();
  EXPECT_EQ(token.use_count(), 1);
}

}  // namespace
}  // namespace pixserve::db
