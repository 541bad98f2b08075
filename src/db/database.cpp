// Backend-independent parts of the database interface.
#include "db/database.hpp"

#include <fmt/format.h>

namespace pixserve::db {

std::optional<std::int64_t> Statement::get_optional_int(int index) {
  if (is_null(index)) return std::nullopt;
  return get_int(index);
}

std::optional<double> Statement::get_optional_double(int index) {
  if (is_null(index)) return std::nullopt;
  return get_double(index);
}

std::optional<std::string> Statement::get_optional_text(int index) {
  if (is_null(index)) return std::nullopt;
  return get_text(index);
}

bool column_exists(Connection& connection, const std::string& table, const std::string& column) {
  auto s = connection.prepare(connection.dialect() == Dialect::postgresql
                                  ? "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                                    "AND table_name = ? AND column_name = ?"
                                  : "SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  s->bind(1, table).bind(2, column);
  return s->step();
}

Transaction::Transaction(Connection& conn) : conn_(conn) {
  // SQLite: take the write lock now, so a concurrent writer waits at BEGIN
  // instead of failing half-way through with SQLITE_BUSY.
  conn_.exec(conn_.dialect() == Dialect::sqlite ? "BEGIN IMMEDIATE" : "BEGIN");
}

Transaction::~Transaction() {
  if (!done_) {
    try {
      conn_.exec("ROLLBACK");
    } catch (...) {
      // A destructor must not throw; a failed rollback leaves the database
      // to its own recovery (SQLite rolls back on close).
    }
  }
}

BoundedRead::BoundedRead(Connection& conn, std::chrono::milliseconds limit) : conn_(conn) {
  if (conn_.dialect() != Dialect::postgresql) return;
  conn_.exec(limit.count() > 0 ? fmt::format("BEGIN READ ONLY; SET LOCAL statement_timeout = {}", limit.count())
                               : std::string("BEGIN READ ONLY"));
  open_ = true;
}

BoundedRead::~BoundedRead() {
  if (!open_) return;
  try {
    conn_.exec("ROLLBACK");
  } catch (...) {
    // A destructor must not throw; a lost session ended the transaction.
  }
}

void Transaction::commit() {
  conn_.exec("COMMIT");
  done_ = true;
}

}  // namespace pixserve::db
