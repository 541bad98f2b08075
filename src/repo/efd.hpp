// The Reformatted Engineering Facilities Database (R-EFD): site telemetry
// (weather) and its summary per visit, kept in the registry beside the
// datasets so that TAP can join images with the conditions they were taken
// in (docs/efd.md).
//
// Each table is described once, here: its registry and TAP names, its
// columns with types, units, UCDs and descriptions, and its key. From that
// one description come the registry DDL, the CSV reader of ingest, the
// inserts, TAP_SCHEMA and the TAP views (tap/schema.cpp), and the tables
// `registry migrate` copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "db/database.hpp"

namespace pixserve::repo::efd {

// Every value of an EFD table is a number: an integer (visit, exposure) or
// a double. No column is nullable: a telemetry row without a value is not
// a row.
enum class ColumnType { bigint, real };

struct Column {
  std::string_view name;
  ColumnType type = ColumnType::real;
  std::string_view unit{};  // VOUnit 1.0
  std::string_view ucd{};
  std::string_view description{};
  bool principal = false;
  bool indexed = false;
};

struct Table {
  std::string_view registry_name;  // efd_weather: the registry table
  std::string_view name;           // weather: the TAP table efd.<name> and the CSV file efd/<name>.csv
  std::string_view description;
  std::span<const Column> columns;
  std::size_t key = 0;  // index of the primary key column (one column)
  // Rights: false, every row is visible to everyone (site telemetry); true,
  // a row is visible to whoever may see at least one dataset of its visit
  // (column `visit`), so that an embargoed visit's row stays hidden.
  bool rows_follow_visit = false;

  const Column& key_column() const { return columns[key]; }
  // The TAP view the table is read through (tap/schema.cpp).
  std::string view_name() const { return "tap_efd_" + std::string(name); }
  // Index of the column `column`, or columns.size().
  std::size_t find(std::string_view column) const;
};

// The TAP schema of the EFD tables.
inline constexpr std::string_view kTapSchema = "efd";
inline constexpr std::string_view kTapSchemaDescription =
    "Reformatted Engineering Facilities Database: site telemetry (weather every 30 s) and its summary per visit, "
    "to join with ivoa.obscore and survey.visits by visit or by time (MJD TAI)";

// The tables: weather, then visit_summary.
std::span<const Table> tables();
// The table whose TAP name (the CSV file's stem) is `name`, or nullptr.
const Table* table_named(std::string_view name);
// The table a file holds: a CSV whose parent folder is named efd and whose
// stem names a table (efd/weather.csv), or nullptr.
const Table* table_of_file(const std::filesystem::path& file);

// CREATE TABLE IF NOT EXISTS for every EFD table, in the dialect's types.
std::string schema_sql(db::Dialect dialect);

// One row: the columns' values in the table's column order, each an
// std::int64_t (bigint) or a double (real).
using Row = std::vector<db::Value>;

// The rows of one CSV file, with the line each was read from and its key
// as written (for messages).
struct CsvRows {
  const Table* table = nullptr;
  std::filesystem::path file;
  std::vector<Row> rows;
  std::vector<std::size_t> lines;
  std::vector<std::string> key_texts;
};

// Reads a CSV file of `table`: a header row naming the table's columns (in
// any order, each once) and one row of numbers per line; blank lines are
// ignored. Every problem found goes to `problems` as "file:line: column:
// what is wrong" (a header column that is unknown, repeated or missing; a
// row with the wrong number of fields; a value that is not a number, not an
// integer, NaN or infinite; a key that repeats one of the file; an empty
// file); the rows come back only when there is none.
CsvRows read_csv(const std::filesystem::path& file, const Table& table, std::vector<std::string>& problems);

// Two rows that hold the same values (doubles compared as what a database
// gives back after storing them: equal up to the last bit or two).
bool same_row(const Row& a, const Row& b);

// The registered rows of `table` whose key lies between the smallest and
// the largest of `keys` (a superset of those with one of the keys), in no
// particular order.
std::vector<Row> registered_rows(db::Connection& conn, const Table& table, std::span<const db::Value> keys);

// Inserts rows; the caller owns the transaction. On PostgreSQL the rows go
// in batches of one INSERT from unnest() of one array per column.
void insert_rows(db::Connection& conn, const Table& table, std::span<const Row* const> rows);

// A key value as text, for messages.
std::string value_text(const db::Value& v);

}  // namespace pixserve::repo::efd
