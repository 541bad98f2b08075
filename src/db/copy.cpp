#include "db/copy.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pixserve::db {
namespace {

// A multi-row INSERT carries at most this many values (PostgreSQL allows
// 65535 parameters, SQLite 32766 since 3.32) and rows.
constexpr std::size_t kMaxValuesPerInsert = 30'000;
constexpr std::size_t kMaxRowsPerInsert = 1'000;
constexpr std::int64_t kProgressEvery = 100'000;

std::string insert_sql(const std::string& table, const std::vector<std::string>& columns, std::size_t rows) {
  std::string one = "(";
  for (std::size_t i = 0; i < columns.size(); ++i) one += i ? ", ?" : "?";
  one += ")";
  std::string sql = fmt::format("INSERT INTO {} ({}) VALUES ", table, fmt::join(columns, ", "));
  for (std::size_t r = 0; r < rows; ++r) {
    if (r) sql += ", ";
    sql += one;
  }
  return sql;
}

}  // namespace

bool table_exists(Connection& connection, const std::string& table) {
  auto s = connection.prepare(connection.dialect() == Dialect::postgresql
                                  ? "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                                    "AND table_name = ?"
                                  : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  s->bind(1, table);
  return s->step();
}

std::int64_t copy_table(Connection& from, Connection& to, const std::string& table, const CopyProgress& progress) {
  auto read = from.prepare(fmt::format("SELECT * FROM {}", table));
  std::vector<std::string> columns;
  std::size_t per_insert = 0;
  std::vector<Value> batch;
  std::unique_ptr<Statement> full;  // the INSERT of a whole batch, made once
  std::int64_t copied = 0;
  const auto flush = [&] {
    if (batch.empty()) return;
    const std::size_t rows = batch.size() / columns.size();
    std::unique_ptr<Statement> partial;
    Statement* insert = nullptr;
    if (rows == per_insert) {
      if (!full) full = to.prepare(insert_sql(table, columns, rows));
      insert = full.get();
    } else {
      partial = to.prepare(insert_sql(table, columns, rows));
      insert = partial.get();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) insert->bind(static_cast<int>(i + 1), batch[i]);
    insert->run();
    insert->reset();
    const std::int64_t before = copied;
    copied += static_cast<std::int64_t>(rows);
    if (progress && (copied / kProgressEvery != before / kProgressEvery)) progress(table, copied);
    batch.clear();
  };
  while (read->step()) {
    if (columns.empty()) {
      for (int i = 0; i < read->column_count(); ++i) columns.push_back(read->column_name(i));
      per_insert = std::clamp<std::size_t>(kMaxValuesPerInsert / columns.size(), 1, kMaxRowsPerInsert);
      batch.reserve(per_insert * columns.size());
    }
    for (std::size_t i = 0; i < columns.size(); ++i) batch.push_back(read->get_value(static_cast<int>(i)));
    if (batch.size() == per_insert * columns.size()) flush();
  }
  flush();
  if (progress) progress(table, copied);
  return copied;
}

}  // namespace pixserve::db
