// The binder: from a parsed query to the bound tree (bound_tree.hpp). It
// resolves every table and column name against the catalogue and the
// enclosing scopes, checks types and where aggregates may stand, picks the
// function each call means and finds the spatial index hints. Every
// SemanticError of a translation is raised here, in the order the query is
// read. Its code is in binder.cpp (queries, FROM, names),
// bind_expressions.cpp and bind_geometry.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "adql/ast.hpp"
#include "adql/bound_tree.hpp"
#include "adql/catalog.hpp"

namespace pixserve::adql {

// A column as a name in a scope may find it.
struct RangeColumn {
  std::string name;
  AdqlType type = AdqlType::unknown;
  BoundColumn column;
  std::optional<ColumnOrigin> origin;
  std::optional<ColumnDef> source;
  std::string source_table;
  bool hidden = false;  // merged into a USING/NATURAL column
};

// A FROM item as its columns are named: `name` is its alias, or the table
// name (as a canonical, non-delimited name).
struct RangeVariable {
  Identifier name;
  bool aliased = false;
  std::string schema;  // for schema.table.column when not aliased
  int table_number = 0;
  std::vector<RangeColumn> columns;
};

// The column of JOIN ... USING / NATURAL JOIN that stands for the columns of
// the range variables [first, last) it merged.
struct MergedColumn {
  RangeColumn column;
  std::size_t first = 0, last = 0;
};

// The names one SELECT's FROM brings in; `parent` is the enclosing query's
// scope (for correlated subqueries).
struct Scope {
  const Scope* parent = nullptr;
  std::vector<RangeVariable> variables;
  std::vector<MergedColumn> merged;
};

struct CommonTable {
  Identifier name;
  int number = 0;  // q<number>
  std::vector<ColumnInfo> columns;
};

// The WITH names visible to a query: its own and its enclosing queries'.
struct CommonTableScope {
  const CommonTableScope* parent = nullptr;
  std::vector<CommonTable> tables;
  const CommonTable* find(const Identifier& id) const;
};

// Where an expression stands: its names, and whether aggregates may appear
// (and `clause` to say where they may not).
struct ExpressionContext {
  Scope* scope = nullptr;
  const CommonTableScope* common_tables = nullptr;
  bool allow_aggregate = false;
  bool in_aggregate = false;
  const char* clause = "";
  bool* aggregate_seen = nullptr;  // set when an aggregate is bound in this context
};

class Binder {
 public:
  explicit Binder(const Catalog& catalog) : catalog_(catalog) {}

  // The statement with an outer row limit (combined with TOP). Throws
  // SemanticError.
  BoundQuery bind_statement(const Query& query, std::optional<std::int64_t> max_rows);
  // The spatial index hints found, innermost queries first.
  std::vector<SpatialHint> take_hints() { return std::move(hints_); }

 private:
  // ---------------------------------------------------------------- binder.cpp
  BoundQuery bind_query(const Query& q, const Scope* outer, const CommonTableScope* env,
                        std::optional<std::int64_t> limit);
  BoundQuery bind_set_operation(const Query& q, const SetOperation& op, const Scope* outer,
                                const CommonTableScope* env, std::optional<std::int64_t> limit);
  std::vector<BoundOrderKey> order_by_outputs(const std::vector<OrderItem>& items,
                                              const std::vector<ColumnInfo>& columns);
  std::optional<std::size_t> ordinal(const Expr& e, std::size_t n);
  std::optional<std::size_t> output_by_name(const Expr& e, const std::vector<ColumnInfo>& columns);
  BoundQuery bind_select(const Select& s, const Scope* outer, const CommonTableScope* env,
                         const std::vector<OrderItem>& order_by, std::optional<std::int64_t> offset,
                         std::optional<std::int64_t> limit);
  void add_where_hints(const BoundExpression& where, BoundSelect& select);
  std::vector<RangeColumn> expand_star(const Star& star, Position pos, const Scope& scope);
  BoundTableReference bind_table_reference(const TableRef& t, Scope& scope, const CommonTableScope* env);
  BoundJoin bind_join(const Join& j, Position pos, Scope& scope, const CommonTableScope* env);
  BoundTableReference bind_named_table(const NamedTable& n, Position pos, Scope& scope,
                                       const CommonTableScope* env);
  void add_variable(Scope& scope, RangeVariable var, Position pos);
  std::vector<const RangeColumn*> visible_columns(const Scope& scope, std::size_t first, std::size_t last);
  RangeColumn* find_in_range(const Identifier& id, Scope& scope, std::size_t first, std::size_t last, Position pos,
                             bool quiet);
  const RangeVariable* find_variable(const std::vector<Identifier>& qualifier, const Scope& scope, Position pos);
  const RangeColumn* find_column(const ColumnRef& ref, Scope& scope, Position pos, bool required);
  BoundExpressionPtr node(const ColumnRef& ref, const Expr& e, ExpressionContext& ctx);

  // ---------------------------------------------------------------- bind_expressions.cpp
  BoundExpressionPtr bind(const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const NullLiteral&, const Expr&, ExpressionContext&);
  BoundExpressionPtr node(const IntegerLiteral& l, const Expr&, ExpressionContext&);
  BoundExpressionPtr node(const RealLiteral& l, const Expr&, ExpressionContext&);
  BoundExpressionPtr node(const StringLiteral& l, const Expr&, ExpressionContext&);
  BoundExpressionPtr node(const Star&, const Expr& e, ExpressionContext&);
  BoundExpressionPtr node(const Negate& n, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Binary& b, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Comparison& c, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Between& b, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Like& l, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const InList& in, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const InQuery& in, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Exists& ex, const Expr&, ExpressionContext& ctx);
  BoundExpressionPtr node(const ScalarSubquery& s, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const IsNull& n, const Expr&, ExpressionContext& ctx);
  BoundExpressionPtr node(const Not& n, const Expr&, ExpressionContext& ctx);
  BoundExpressionPtr node(const Logical& l, const Expr&, ExpressionContext& ctx);
  BoundExpressionPtr node(const Case& c, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const Cast& c, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr node(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);
  BoundQuery subquery(const Query& q, ExpressionContext& ctx);
  std::vector<BoundExpressionPtr> arguments(const FunctionCall& f, ExpressionContext& ctx, std::size_t min,
                                            std::size_t max, Position pos);
  BoundExpressionPtr aggregate(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr math(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);

  // ---------------------------------------------------------------- bind_geometry.cpp
  std::vector<const Expr*> geometry_args(const FunctionCall& f, Position pos, std::size_t without_cs,
                                         bool variadic = false);
  BoundExpressionPtr geometry_constructor(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr geometry_value(const Expr& a, ExpressionContext& ctx, const std::string& fn);
  BoundExpressionPtr spatial_predicate(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr distance(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);
  BoundExpressionPtr geometry_accessor(const FunctionCall& f, const Expr& e, ExpressionContext& ctx);

  const Catalog& catalog_;
  std::vector<SpatialHint> hints_;
  int table_counter_ = 0;
  int common_table_counter_ = 0;
};

// Helpers shared by the binder's files.
[[noreturn]] void fail(Position pos, const std::string& message);  // throws SemanticError
BoundExpressionPtr make_bound(AdqlType type, auto node) {
  auto e = std::make_unique<BoundExpression>();
  e->type = type;
  e->node = std::move(node);
  return e;
}
void need_numeric(const BoundExpression& v, Position pos, const char* what);
// Result types: of two operands of one operation (e.g. UNION columns).
AdqlType unify(AdqlType a, AdqlType b);
bool comparable(AdqlType a, AdqlType b);

}  // namespace pixserve::adql
