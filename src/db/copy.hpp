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

// True when `table` exists in the connection's database.
bool table_exists(Connection& connection, const std::string& table);

}  // namespace pixserve::db
