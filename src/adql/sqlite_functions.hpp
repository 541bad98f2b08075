// The SQL user functions that translated queries call. On SQLite,
// register_sqlite_functions() installs all of them on a connection (the db
// layer calls it when it opens the registry). PostgreSQL has native math and
// LIKE, so it needs only the geometry ones (user_functions(postgresql)),
// which its backend must provide with the same names and semantics
// (geometry_functions.hpp).
#pragma once

#include <span>
#include <string_view>

#include "adql/translator.hpp"

struct sqlite3;

namespace pixserve::adql {

struct UserFunction {
  std::string_view name;
  int arity;  // -1: any number of arguments
  std::string_view signature;
};

// The functions a translation for `dialect` may call.
std::span<const UserFunction> user_functions(Dialect dialect);

// Registers every user_functions(Dialect::sqlite) entry on `db`
// (deterministic where they are). NULL arguments give NULL; invalid
// geometry text raises an SQL error naming the problem; non-finite math
// results (SQRT(-1), LOG(0)) give NULL. Throws std::runtime_error when
// SQLite refuses a registration.
void register_sqlite_functions(sqlite3* db);

}  // namespace pixserve::adql
