// The SQL user functions that translated queries call. On SQLite,
// register_functions() installs all of them on a query connection (the TAP
// engine calls it when it opens one). PostgreSQL has native math and LIKE,
// so it needs only the geometry ones (user_functions(postgresql)), which its
// backend must provide on the server with the same names and semantics
// (geometry_functions.hpp): postgresql_functions_sql() defines them.
//
// The functions are written against db::FunctionCall, not a database API:
// what they compute belongs with ADQL, how a backend calls C++ from SQL
// belongs in db/.
#pragma once

#include <span>
#include <string_view>

#include "db/database.hpp"

namespace pixserve::adql {

struct UserFunction {
  std::string_view name;
  int arity;  // -1: any number of arguments
  std::string_view signature;
};

// The functions a translation for `dialect` may call.
std::span<const UserFunction> user_functions(db::Dialect dialect);

// Registers every user_functions(db::Dialect::sqlite) entry on `connection`
// (deterministic where they are). NULL arguments give NULL; invalid
// geometry text raises an SQL error naming the problem; non-finite math
// results (SQRT(-1), LOG(0)) give NULL. Throws db::DbError when the backend
// refuses a registration.
void register_functions(db::Connection& connection);

// The SQL script (postgresql_functions.sql, embedded at build time) that
// defines user_functions(db::Dialect::postgresql) on a PostgreSQL server in
// SQL and PL/pgSQL, with the names, arities and results of the C++ ones
// (same numbers, truth values, STC-S text and error messages), for a
// PostgreSQL registry to run with Connection::exec() when it creates or
// opens its database. The functions go to the first schema of the
// connection's search_path. Running it again replaces them with the same
// definitions; sent as one string it is one transaction, and it takes an
// advisory lock, so that servers starting together install in turn.
std::string_view postgresql_functions_sql() noexcept;

}  // namespace pixserve::adql
