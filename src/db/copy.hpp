// Copying tables between two databases of any backends (an SQLite registry
// into PostgreSQL: `pixserve registry migrate`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "db/database.hpp"

namespace pixserve::db {

// Called now and then with the table being copied and the rows copied so far.
using CopyProgress = std::function<void(const std::string& table, std::int64_t rows)>;

// Appends every row of `table` in `from` to the table of the same name and
// columns in `to`, values as they are (keys included). The caller owns the
// transaction on `to`. Returns the rows copied. Throws DbError as the
// backends do.
//
// Onto PostgreSQL the rows go in batches of one INSERT from unnest() of one
// array per column, and the table's non-unique indexes and foreign keys are
// dropped for the load and made again at its end (one sort per index, one
// join per key); into SQLite, in batches of multi-row INSERTs.
std::int64_t copy_table(Connection& from, Connection& to, const std::string& table, const CopyProgress& progress = {});

// The non-unique indexes and the foreign keys of a PostgreSQL table, taken
// away while its rows are loaded and made again afterwards: building an
// index once from all rows (a sort) and checking a foreign key once (a
// join) take minutes at 10^8 rows, where maintaining them row by row takes
// hours. Unique indexes and primary keys stay: they are what the rows are
// checked against. All of it happens in the caller's transaction. copy_table
// defers a table's own; a loader copying many batches into the same tables
// defers them once around all of them.
class DeferredIndexes {
 public:
  DeferredIndexes(Connection& c, const std::string& table);
  DeferredIndexes(const DeferredIndexes&) = delete;
  DeferredIndexes& operator=(const DeferredIndexes&) = delete;

  // Makes the indexes and keys again (on failure the caller's transaction
  // rolls back, and they come back with it).
  void restore();

 private:
  Connection& c_;
  std::vector<std::string> indexes_, foreign_keys_;
};

// True when `table` exists in the connection's database.
bool table_exists(Connection& connection, const std::string& table);

}  // namespace pixserve::db
