// The SQL dialect of a database backend. A header of its own so that code
// which only writes SQL text (the ADQL translator, the rights predicates)
// can name the dialect without depending on the connection interface.
#pragma once

namespace pixserve::db {

enum class Dialect { sqlite, postgresql };

}  // namespace pixserve::db
