// ADQL -> SQL. The translator resolves every table and column against a
// Catalog and re-emits the query from scratch: table and column names are
// the catalogue's SQL names, table aliases (t1, t2, ...), output column
// names (c1, c2, ...) and subquery names (q1, s1, ...) are generated, string
// literals are re-quoted and numbers re-printed, so no text written by the
// user reaches the database verbatim. The real output names and types are in
// Translation::columns. It works in three layers: parse (parser.hpp), bind
// (binder.hpp: names and types, into the bound tree of bound_tree.hpp) and
// write the SQL of the dialect (sql_writer.hpp).
//
// Semantics shared by both dialects (documented choices where ADQL is silent):
// - Integer division truncates towards zero (as both SQLite and PostgreSQL
//   do for integer operands); write 1.0 * a / b for real division.
// - LIKE is case-sensitive, ILIKE is not (ASCII case folding on SQLite);
//   there is no escape character.
// - ROUND(x, n) rounds half away from zero; TRUNCATE(x, n) towards zero; both
//   return DOUBLE.
// - Geometry values are STC-S text; CONTAINS/INTERSECTS/DISTANCE/AREA/COORD*/
//   CENTROID become calls of the adql_* SQL functions (sql_functions.hpp)
//   which evaluate geometry_functions.hpp. Only ICRS is accepted as the
//   optional coordinate system argument.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adql/ast.hpp"
#include "adql/catalog.hpp"
#include "adql/parser.hpp"
#include "adql/geometry_functions.hpp"
#include "db/dialect.hpp"
#include "sky/geometry.hpp"

namespace pixserve::adql {

struct ColumnInfo {
  std::string name;  // output name: the alias, the column name, or the function name
  AdqlType type = AdqlType::unknown;
  // Metadata (unit, UCD, ...) when the output is a catalogue column as is.
  std::optional<ColumnDef> source;
  std::string source_table;  // qualified ADQL name of that column's table
};

// A spatial constraint found in a WHERE conjunction on an indexed column,
// e.g. CONTAINS(POINT(s_ra, s_dec), CIRCLE(10, 20, 1)) = 1 or
// INTERSECTS(s_region, POLYGON(...)) = 1: the caller may add the HEALPix
// cell prefilter for `shape` on the table aliased `sql_alias`.
struct SpatialHint {
  enum class Kind {
    point_in_shape,           // CONTAINS/INTERSECTS(POINT(ra_col, dec_col), shape)
    region_intersects_shape,  // INTERSECTS(region_col, shape)
    region_in_shape,          // CONTAINS(region_col, shape)
    region_contains_shape,    // CONTAINS(shape, region_col)
  };
  Kind kind = Kind::region_intersects_shape;
  std::string table;      // qualified ADQL table name
  std::string sql_alias;  // alias of that table in Translation::sql
  std::vector<std::string> columns;  // ADQL column names tested
  sky::Shape shape;                  // the constant, as the index searches it
  geometry::Geometry constant;       // the constant geometry itself, for an exact test
  Position pos;
  // Set when the query is a plain selection of rows of this hint's table
  // alone (no join, aggregate, DISTINCT, GROUP BY, ORDER BY, OFFSET, set
  // operation or WITH) ending after this many rows: its rows for a part of
  // the table's rows are then the rows of its result that come from them,
  // and a result made of the parts' results in turn, up to this many rows,
  // is as good as the query's own.
  std::optional<std::int64_t> row_limit;
};

// What an index filter adds to the WHERE clause holding its hint: `sql`
// (empty: nothing), and whether it is `exact`: then it keeps exactly the
// rows the hint's predicate holds for, and the predicate itself is written
// as the constant 1 (the caller has made the exact test some faster way).
struct IndexFilter {
  IndexFilter() = default;
  IndexFilter(std::string filter_sql, bool exact_test = false) : sql(std::move(filter_sql)), exact(exact_test) {}
  std::string sql;
  bool exact = false;
};

struct TranslateOptions {
  db::Dialect dialect = db::Dialect::sqlite;
  // An outer row limit (e.g. MAXREC + 1); combined with TOP (the smaller).
  std::optional<std::int64_t> max_rows;
  // When set, called for each SpatialHint; a non-empty result is SQL written
  // by the caller (trusted), ANDed into the WHERE clause holding the hint.
  std::function<IndexFilter(const SpatialHint&)> index_filter;
  ParseOptions parse;
};

struct Translation {
  std::string sql;
  std::vector<ColumnInfo> columns;
  std::vector<SpatialHint> hints;
};

// Throws ParseError or SemanticError.
Translation translate(const Query& query, const Catalog& catalog, const TranslateOptions& options = {});
Translation translate(std::string_view adql, const Catalog& catalog, const TranslateOptions& options = {});

// The TAPRegExt language features this translator implements, for the TAP
// capabilities document: (feature type URI, feature name) pairs.
struct LanguageFeature {
  std::string_view type;
  std::string_view name;
};
std::span<const LanguageFeature> supported_features();

}  // namespace pixserve::adql
