#include "db/copy.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

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

// Onto PostgreSQL, a batch is one INSERT ... SELECT FROM unnest(...) with
// one parameter per column, the column's values as an array literal: the
// server parses one short statement and a few long values instead of a
// statement of thousands of parameters (footprint cells: ~300,000 rows/s
// instead of ~55,000; docs/deployment.md, "Sizing"). A batch is this many
// rows, or fewer when their text is long.
constexpr std::size_t kRowsPerArrayBatch = 20'000;
constexpr std::size_t kBytesPerArrayBatch = 32u << 20;

std::string quote_name(const std::string& name) {
  std::string out = "\"";
  for (const char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Appends one element of a PostgreSQL array literal: NULL, a number, or a
// double-quoted string with its quotes and backslashes escaped.
void append_element(std::string& out, const Value& v) {
  if (std::holds_alternative<std::monostate>(v)) {
    out += "NULL";
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    fmt::format_to(std::back_inserter(out), "{}", *i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    if (std::isnan(*d)) {
      out += "NaN";
    } else if (std::isinf(*d)) {
      out += *d > 0 ? "Infinity" : "-Infinity";
    } else {
      fmt::format_to(std::back_inserter(out), "{}", *d);  // the shortest text that reads back as the same double
    }
  } else {
    const auto& text = std::get<std::string>(v);
    out += '"';
    for (const char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
}

// SQL text run for each row of a query with one text column.
std::vector<std::string> texts_of(Connection& c, const std::string& sql, const std::string& table) {
  auto s = c.prepare(sql);
  s->bind(1, table);
  std::vector<std::string> out;
  while (s->step()) out.push_back(s->get_text(0));
  return out;
}

// SELECT of every row of a table, in the order of its primary key when the
// source is SQLite: the copy's rows then lie on disk in that order, e.g.
// footprint_cell's by HEALPix cell (the cells of a cone on a few pages),
// where SQLite would otherwise read the smallest covering index, in the
// order of another column.
std::string select_all(Connection& from, const std::string& table) {
  std::string sql = fmt::format("SELECT * FROM {}", table);
  if (from.dialect() != Dialect::sqlite) return sql;
  auto s = from.prepare("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk");
  s->bind(1, table);
  std::vector<std::string> key;
  while (s->step()) key.push_back(quote_name(s->get_text(0)));
  if (!key.empty()) sql += fmt::format(" ORDER BY {}", fmt::join(key, ", "));
  return sql;
}

// The column types of a PostgreSQL table by column name.
std::vector<std::pair<std::string, std::string>> column_types(Connection& c, const std::string& table) {
  auto s = c.prepare("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                     "CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
  s->bind(1, table);
  std::vector<std::pair<std::string, std::string>> out;
  while (s->step()) out.emplace_back(s->get_text(0), s->get_text(1));
  return out;
}

std::int64_t copy_into_postgresql(Connection& from, Connection& to, const std::string& table,
                                  const CopyProgress& progress) {
  DeferredIndexes deferred(to, table);
  const auto types = column_types(to, table);
  auto read = from.prepare(select_all(from, table));
  std::vector<std::string> columns, arrays;
  std::unique_ptr<Statement> insert;
  std::size_t rows = 0, bytes = 0;
  std::int64_t copied = 0;
  const auto flush = [&] {
    if (rows == 0) return;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      arrays[i] += '}';
      insert->bind(static_cast<int>(i + 1), arrays[i]);
      arrays[i] = "{";
    }
    insert->run();
    insert->reset();
    const std::int64_t before = copied;
    copied += static_cast<std::int64_t>(rows);
    if (progress && (copied / kProgressEvery != before / kProgressEvery)) progress(table, copied);
    rows = bytes = 0;
  };
  while (read->step()) {
    if (columns.empty()) {
      std::string casts;
      for (int i = 0; i < read->column_count(); ++i) {
        columns.push_back(read->column_name(i));
        const auto type = std::find_if(types.begin(), types.end(), [&](const auto& t) { return t.first == columns.back(); });
        if (type == types.end()) throw DbError(fmt::format("copying {}: no column {} in the target", table, columns.back()));
        casts += fmt::format("{}CAST(? AS {}[])", i ? ", " : "", type->second);
      }
      insert = to.prepare(fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({})", table,
                                      fmt::join(columns, ", "), casts));
      arrays.assign(columns.size(), "{");
    }
    for (std::size_t i = 0; i < columns.size(); ++i) {
      auto& array = arrays[i];
      const std::size_t size_before = array.size();
      if (rows) array += ',';
      append_element(array, read->get_value(static_cast<int>(i)));
      bytes += array.size() - size_before;
    }
    if (++rows == kRowsPerArrayBatch || bytes >= kBytesPerArrayBatch) flush();
  }
  flush();
  deferred.restore();
  if (progress) progress(table, copied);
  return copied;
}

}  // namespace

DeferredIndexes::DeferredIndexes(Connection& c, const std::string& table) : c_(c) {
  indexes_ = texts_of(c, "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index AS i WHERE i.indrelid = "
                         "CAST(? AS regclass) AND NOT i.indisunique ORDER BY i.indexrelid", table);
  const auto names = texts_of(c, "SELECT CAST(CAST(i.indexrelid AS regclass) AS text) FROM pg_index AS i WHERE "
                                 "i.indrelid = CAST(? AS regclass) AND NOT i.indisunique ORDER BY i.indexrelid",
                              table);
  const auto keys = texts_of(c, "SELECT conname FROM pg_constraint WHERE conrelid = CAST(? AS regclass) AND "
                                "contype = 'f' ORDER BY oid", table);
  const auto key_sql = texts_of(c, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
                                   "CAST(? AS regclass) AND contype = 'f' ORDER BY oid", table);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    c.exec(fmt::format("ALTER TABLE {} DROP CONSTRAINT {}", table, quote_name(keys[i])));
    foreign_keys_.push_back(fmt::format("ALTER TABLE {} ADD CONSTRAINT {} {}", table, quote_name(keys[i]), key_sql[i]));
  }
  for (const auto& name : names) c.exec("DROP INDEX " + name);  // regclass text: quoted as needed
}

void DeferredIndexes::restore() {
  for (const auto& sql : indexes_) c_.exec(sql);
  for (const auto& sql : foreign_keys_) c_.exec(sql);
  indexes_.clear();
  foreign_keys_.clear();
}

bool table_exists(Connection& connection, const std::string& table) {
  auto s = connection.prepare(connection.dialect() == Dialect::postgresql
                                  ? "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                                    "AND table_name = ?"
                                  : "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  s->bind(1, table);
  return s->step();
}

std::int64_t copy_table(Connection& from, Connection& to, const std::string& table, const CopyProgress& progress) {
  if (to.dialect() == Dialect::postgresql) return copy_into_postgresql(from, to, table, progress);
  auto read = from.prepare(select_all(from, table));
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
