// The SQL user functions that translated queries call. On SQLite,
// register_functions() installs all of them on a query connection (the TAP
// engine calls it when it opens one). PostgreSQL has native math and LIKE,
// so it needs only the geometry ones (user_functions(postgresql)), which its
// backend must provide on the server with the same names and semantics
// (geometry_functions.hpp).
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

}  // namespace pixserve::adql
