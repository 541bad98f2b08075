// The SQL dialect of a database backend. A header of its own so that code
// which only writes SQL text (the ADQL translator, the rights predicates,
// the registry's schema) can name the dialect without depending on the
// connection interface.
#pragma once

#include <string_view>

namespace pixserve::db {

enum class Dialect { sqlite, postgresql };

// The words that differ between the dialects in the SQL pixserve writes
// itself (schemas, temporary objects, column types).
constexpr std::string_view main_schema(Dialect d) { return d == Dialect::postgresql ? "public" : "main"; }
constexpr std::string_view temp_schema(Dialect d) { return d == Dialect::postgresql ? "pg_temp" : "temp"; }
// 64-bit integers (HEALPix cells at order 16, keys) and doubles.
constexpr std::string_view integer_type(Dialect d) { return d == Dialect::postgresql ? "BIGINT" : "INTEGER"; }
constexpr std::string_view real_type(Dialect d) { return d == Dialect::postgresql ? "DOUBLE PRECISION" : "REAL"; }
// Text values of a group joined with a separator.
constexpr std::string_view string_agg_function(Dialect d) {
  return d == Dialect::postgresql ? "string_agg" : "group_concat";
}
// a IS b for values that may be NULL.
constexpr std::string_view null_safe_equal(Dialect d) {
  return d == Dialect::postgresql ? "IS NOT DISTINCT FROM" : "IS";
}

// The database's clock as a Modified Julian Date (double), evaluated by the
// server: rows written or compared "now" agree across replicas that share
// one PostgreSQL server whatever their own clocks say. The time the
// statement began, a STABLE function: the rights views of TAP queries use
// it, and a volatile clock (clock_timestamp()) keeps PostgreSQL from
// merging a view into the query, which then reads the whole table (a cone
// of 10^6 rows: 9 s instead of milliseconds).
constexpr std::string_view mjd_now_sql(Dialect dialect) {
  return dialect == Dialect::postgresql ? "CAST(extract(epoch from statement_timestamp()) / 86400 + 40587 AS double precision)"
                                        : "(julianday('now') - 2400000.5)";
}

// The database's clock as integer milliseconds since the Unix epoch, for
// leases that several server processes compare (uws/store.cpp): only the
// database's clock is common to all of them.
constexpr std::string_view epoch_ms_now_sql(Dialect dialect) {
  return dialect == Dialect::postgresql ? "CAST(floor(extract(epoch from clock_timestamp()) * 1000) AS BIGINT)"
                                        : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

// Appended to a SELECT of rows to claim: PostgreSQL locks the row it returns
// and passes over rows another transaction holds, so concurrent claimers
// never wait for each other nor take the same row. SQLite serialises
// writers, so a claim there needs no lock clause.
constexpr std::string_view skip_locked_clause(Dialect dialect) {
  return dialect == Dialect::postgresql ? " FOR UPDATE SKIP LOCKED" : "";
}

}  // namespace pixserve::db
