// The bound tree: a query after the binder (binder.hpp) has resolved every
// table and column against the catalogue, checked every type and chosen
// which function each call means. Nothing in it is text written by the user
// except literal values; the SQL writer (sql_writer.hpp) turns it into SQL
// for one dialect without further checks, so every SemanticError is raised
// before any SQL is written.
//
// Generated names: FROM tables are t<number>, common tables q<number>,
// output columns c<index + 1>; the numbers are given by the binder in the
// order it meets the tables.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "adql/ast.hpp"
#include "adql/catalog.hpp"
#include "adql/geometry_functions.hpp"
#include "adql/translator.hpp"

namespace pixserve::adql {

struct BoundExpression;
struct BoundQuery;
struct BoundTableReference;
using BoundExpressionPtr = std::unique_ptr<BoundExpression>;
using BoundQueryPtr = std::unique_ptr<BoundQuery>;

inline std::string table_alias(int table_number) { return fmt::format("t{}", table_number); }

// Where the SQL reads a column: a catalogue column of a FROM table
// (t3."s_ra"), or an output column of a subquery or common table (t3.c2).
struct ColumnAccess {
  int table_number = 0;
  std::string database_column;   // the catalogue's SQL name; empty for a subquery column
  std::size_t output_index = 0;  // the subquery column, when database_column is empty
};

// A column of a FROM table as the SQL reads it. The column of a FULL JOIN
// ... USING is the first non-null of its two sides (which may themselves be
// such columns): COALESCE(left, right).
struct BoundColumn {
  ColumnAccess access;
  std::shared_ptr<const BoundColumn> full_join_left, full_join_right;
};

// A catalogue column read directly from a FROM table: what output metadata
// and spatial index hints are made of.
struct ColumnOrigin {
  int table_number = 0;
  const TableDef* table = nullptr;
  const ColumnDef* column = nullptr;
};

// A CONTAINS/INTERSECTS that the spatial index could serve, with whether
// its column is indexed; it becomes a hint when it is compared with 1 in a
// WHERE conjunction.
struct SpatialCandidate {
  SpatialHint hint;
  bool indexed = false;
};

struct BoundNull {};
struct BoundInteger {
  std::int64_t value = 0;
};
struct BoundReal {
  double value = 0.0;
};
struct BoundString {
  std::string value;
};
struct BoundNegate {
  BoundExpressionPtr operand;
};
struct BoundBinary {
  BinaryOp op = BinaryOp::add;
  BoundExpressionPtr left, right;
};
struct BoundComparison {
  CompareOp op = CompareOp::eq;
  BoundExpressionPtr left, right;
};
struct BoundBetween {
  bool negated = false;
  BoundExpressionPtr value, low, high;
};
struct BoundLike {
  bool negated = false;
  bool case_insensitive = false;
  BoundExpressionPtr value, pattern;
};
struct BoundInList {
  bool negated = false;
  BoundExpressionPtr value;
  std::vector<BoundExpressionPtr> items;
};
struct BoundInSubquery {
  bool negated = false;
  BoundExpressionPtr value;
  BoundQueryPtr query;
};
struct BoundExists {
  BoundQueryPtr query;
};
struct BoundScalarSubquery {
  BoundQueryPtr query;
};
struct BoundIsNull {
  bool negated = false;
  BoundExpressionPtr value;
};
struct BoundNot {
  BoundExpressionPtr operand;
};
struct BoundLogical {
  LogicalOp op = LogicalOp::and_;
  std::vector<BoundExpressionPtr> operands;
};
struct BoundWhen {
  BoundExpressionPtr when, then;
};
struct BoundCase {
  BoundExpressionPtr operand;  // null for a searched CASE
  std::vector<BoundWhen> whens;
  BoundExpressionPtr otherwise;  // null without ELSE
};
struct BoundCast {
  CastType target;
  BoundExpressionPtr operand;
};
// COUNT, SUM, AVG, MIN, MAX; no argument for COUNT(*).
struct BoundAggregate {
  std::string name;  // upper case
  bool distinct = false;
  BoundExpressionPtr argument;
};
// Any other built-in function: the math functions (math_function()),
// LOWER, UPPER, COALESCE, RAND, MOD, ROUND, TRUNCATE, DISTANCE and the
// geometry accessors AREA, COORD1, COORD2, COORDSYS, CENTROID. The
// arguments are checked; the coordinate system argument of DISTANCE is
// dropped.
struct BoundFunction {
  std::string name;  // upper case
  std::vector<BoundExpressionPtr> args;
};
// POINT, CIRCLE, BOX, POLYGON with their arguments (the coordinate system
// dropped). A point argument of CIRCLE, BOX or POLYGON stands for its two
// coordinates: the arguments of a POINT(...) call, or COORD1/COORD2 of any
// other point value (geometry_numbers() in the writer). `constant` when
// every number is a literal, and then the SQL is the STC-S text of that
// constant.
struct BoundGeometry {
  std::string name;  // upper case
  std::vector<BoundExpressionPtr> args;
  std::optional<geometry::Geometry> constant;
};
// CONTAINS(first, second) or INTERSECTS(first, second).
struct BoundSpatialPredicate {
  bool contains = false;
  BoundExpressionPtr first, second;
  std::optional<SpatialCandidate> index_candidate;
};

struct BoundExpression {
  AdqlType type = AdqlType::unknown;
  // Set when the value is a catalogue column as is (COORD1/COORD2 of a
  // POINT of columns included).
  std::optional<ColumnOrigin> origin;
  // Output metadata of a column passed through unchanged (also through
  // subqueries, MIN and MAX), with its table's qualified ADQL name.
  std::optional<ColumnDef> source;
  std::string source_table;
  // The value of a number literal (after unary minus), for constant
  // geometry.
  std::optional<double> constant_number;
  std::variant<BoundNull, BoundInteger, BoundReal, BoundString, BoundColumn, BoundNegate, BoundBinary,
               BoundComparison, BoundBetween, BoundLike, BoundInList, BoundInSubquery, BoundExists,
               BoundScalarSubquery, BoundIsNull, BoundNot, BoundLogical, BoundCase, BoundCast, BoundAggregate,
               BoundFunction, BoundGeometry, BoundSpatialPredicate>
      node;
};

// The BoundGeometry of a POINT, CIRCLE, BOX or POLYGON call, or null; the
// same for POINT calls only.
inline const BoundGeometry* as_constructor(const BoundExpression& e) { return std::get_if<BoundGeometry>(&e.node); }
inline const BoundGeometry* as_point_constructor(const BoundExpression& e) {
  const BoundGeometry* g = as_constructor(e);
  return g && g->name == "POINT" ? g : nullptr;
}

// ---------------------------------------------------------------------------
// FROM

// A catalogue table: "sql_schema"."sql_name" AS t<number>.
struct BoundTable {
  int number = 0;
  const TableDef* table = nullptr;
};
// A common table of WITH: q<common_table_number> AS t<number>.
struct BoundCommonTableScan {
  int number = 0;
  int common_table_number = 0;
};
// (subquery) AS t<number>.
struct BoundDerivedTable {
  int number = 0;
  BoundQueryPtr query;
};
struct BoundJoin {
  JoinKind kind = JoinKind::inner;
  std::unique_ptr<BoundTableReference> left, right;
  BoundExpressionPtr on;  // JOIN ... ON
  // JOIN ... USING and NATURAL JOIN: the column pairs that must be equal
  // (none: the join is on 1 = 1).
  std::vector<std::pair<BoundColumn, BoundColumn>> using_columns;
};
struct BoundTableReference {
  std::variant<BoundTable, BoundCommonTableScan, BoundDerivedTable, BoundJoin> node;
};

// ---------------------------------------------------------------------------
// Queries

struct BoundSelect {
  bool distinct = false;
  bool aggregated = false;  // an aggregate function in the select list
  std::vector<BoundTableReference> from;
  std::vector<BoundExpressionPtr> items;  // one per output column, * expanded
  BoundExpressionPtr where;               // optional
  // The spatial index hints of this WHERE, for TranslateOptions::index_filter,
  // each with its predicate (a node of `where`, which an exact filter
  // replaces).
  struct IndexHint {
    SpatialHint hint;
    const BoundSpatialPredicate* predicate = nullptr;
  };
  std::vector<IndexHint> index_hints;
  std::vector<BoundExpressionPtr> group_by;
  BoundExpressionPtr having;  // optional
};

struct BoundSetOperation {
  SetOpKind kind = SetOpKind::union_;
  bool all = false;
  BoundQueryPtr left, right;
};

// WITH q<number> AS (query).
struct BoundCommonTable {
  int number = 0;
  BoundQueryPtr query;
};

// ORDER BY an output column (c<index + 1>) or, in a SELECT, an expression.
struct BoundOrderKey {
  std::optional<std::size_t> output_index;
  BoundExpressionPtr expression;
  bool descending = false;
};

struct BoundQuery {
  std::vector<BoundCommonTable> with;
  std::variant<BoundSelect, BoundSetOperation, BoundQueryPtr> body;  // the last: a parenthesised query
  std::vector<ColumnInfo> columns;                                   // the output columns
  std::vector<BoundOrderKey> order_by;
  std::optional<std::int64_t> limit;  // TOP and the caller's row limit, the smaller
  std::optional<std::int64_t> offset;
};

// The ADQL math functions with a direct SQL counterpart per dialect
// (SQLite's are user functions, sql_functions.hpp); null for other names.
struct MathFunction {
  std::string_view name;
  std::size_t arity;
  std::string_view postgresql;
  std::string_view sqlite;
};
const MathFunction* math_function(std::string_view name);

}  // namespace pixserve::adql
