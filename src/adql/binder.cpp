// The binder's queries: WITH, set operations, SELECT with its clauses, FROM
// and the resolution of table and column names through the scopes.
#include "adql/binder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "adql/errors.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace {

// Aliases compare as written when either side is delimited.
bool alias_matches(const Identifier& ref, const Identifier& name) {
  if (ref.delimited || name.delimited) return ref.text == name.text;
  return name_matches(ref, name.text);
}

std::string output_name(const SelectItem& item, std::size_t index) {
  if (item.alias) return item.alias->text;
  if (const auto* ref = std::get_if<ColumnRef>(&item.expr->node)) return ref->parts.back().text;
  if (const auto* f = std::get_if<FunctionCall>(&item.expr->node)) return ascii_lower(f->name);
  return fmt::format("col{}", index + 1);
}

BoundExpressionPtr column_expression(const RangeColumn& c) {
  auto e = make_bound(c.type, c.column);
  e->origin = c.origin;
  e->source = c.source;
  e->source_table = c.source_table;
  return e;
}

// The output columns of a subquery or common table as the columns of the
// FROM item t<table_number>.
std::vector<RangeColumn> subquery_columns(const std::vector<ColumnInfo>& outputs, int table_number) {
  std::vector<RangeColumn> columns;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    RangeColumn c;
    c.name = outputs[i].name;
    c.type = outputs[i].type;
    c.column.access = ColumnAccess{table_number, {}, i};
    c.source = outputs[i].source;
    c.source_table = outputs[i].source_table;
    columns.push_back(std::move(c));
  }
  return columns;
}

}  // namespace

void fail(Position pos, const std::string& message) { throw SemanticError(pos, message); }

const CommonTable* CommonTableScope::find(const Identifier& id) const {
  for (const CommonTableScope* s = this; s; s = s->parent) {
    for (const auto& t : s->tables) {
      if (name_matches(id, t.name.text)) return &t;
    }
  }
  return nullptr;
}

BoundQuery Binder::bind_statement(const Query& query, std::optional<std::int64_t> max_rows) {
  return bind_query(query, nullptr, nullptr, max_rows);
}

// ---------------------------------------------------------------- queries
BoundQuery Binder::bind_query(const Query& q, const Scope* outer, const CommonTableScope* env,
                              std::optional<std::int64_t> limit) {
  CommonTableScope local{env, {}};
  std::vector<BoundCommonTable> with;
  for (const auto& w : q.with) {
    for (const auto& c : local.tables) {
      if (alias_matches(w.name, c.name)) fail(w.name.pos, fmt::format("WITH name '{}' is defined twice", w.name.text));
    }
    auto sub = std::make_unique<BoundQuery>(bind_query(*w.query, outer, &local, std::nullopt));
    CommonTable table{w.name, ++common_table_counter_, sub->columns};
    if (!w.columns.empty()) {
      if (w.columns.size() != sub->columns.size()) {
        fail(w.name.pos, fmt::format("WITH {} names {} columns but its query has {}", w.name.text, w.columns.size(),
                                     sub->columns.size()));
      }
      for (std::size_t i = 0; i < w.columns.size(); ++i) {
        table.columns[i].name = w.columns[i].text;
        table.columns[i].source.reset();
      }
    }
    with.push_back({table.number, std::move(sub)});
    local.tables.push_back(std::move(table));
  }
  const CommonTableScope* e = q.with.empty() ? env : &local;

  BoundQuery out;
  if (const auto* s = std::get_if<Box<Select>>(&q.body)) {
    out = bind_select(**s, outer, e, q.order_by, q.offset, limit);
  } else if (const auto* op = std::get_if<SetOperation>(&q.body)) {
    out = bind_set_operation(q, *op, outer, e, limit);
  } else {
    auto inner = std::make_unique<BoundQuery>(bind_query(*std::get<QueryPtr>(q.body), outer, e, std::nullopt));
    out.columns = inner->columns;
    out.order_by = order_by_outputs(q.order_by, out.columns);
    out.limit = limit;
    out.offset = q.offset;
    out.body = std::move(inner);
  }
  out.with = std::move(with);
  return out;
}

BoundQuery Binder::bind_set_operation(const Query& q, const SetOperation& op, const Scope* outer,
                                      const CommonTableScope* env, std::optional<std::int64_t> limit) {
  BoundSetOperation set{op.kind, op.all, nullptr, nullptr};
  set.left = std::make_unique<BoundQuery>(bind_query(*op.left, outer, env, std::nullopt));
  set.right = std::make_unique<BoundQuery>(bind_query(*op.right, outer, env, std::nullopt));
  const auto& left = set.left->columns;
  const auto& right = set.right->columns;
  if (left.size() != right.size()) {
    const char* kw = op.kind == SetOpKind::union_ ? "UNION" : op.kind == SetOpKind::intersect ? "INTERSECT" : "EXCEPT";
    fail(q.pos, fmt::format("the operands of {} have different numbers of columns ({} and {})", kw, left.size(),
                            right.size()));
  }
  BoundQuery out;
  out.columns = left;
  for (std::size_t i = 0; i < out.columns.size(); ++i) {
    out.columns[i].type = unify(left[i].type, right[i].type);
    if (!(left[i].source_table == right[i].source_table)) out.columns[i].source.reset();
  }
  out.order_by = order_by_outputs(q.order_by, out.columns);
  out.limit = limit;
  out.offset = q.offset;
  out.body = std::move(set);
  return out;
}

// ORDER BY after a set operation or around a parenthesised query: result
// columns only.
std::vector<BoundOrderKey> Binder::order_by_outputs(const std::vector<OrderItem>& items,
                                                    const std::vector<ColumnInfo>& columns) {
  std::vector<BoundOrderKey> keys;
  for (const auto& item : items) {
    std::optional<std::size_t> index = ordinal(*item.expr, columns.size());
    if (!index) index = output_by_name(*item.expr, columns);
    if (!index) fail(item.expr->pos, "ORDER BY of a set operation must name a result column or give its number");
    keys.push_back({index, nullptr, item.descending});
  }
  return keys;
}

std::optional<std::size_t> Binder::ordinal(const Expr& e, std::size_t n) {
  const auto* lit = std::get_if<IntegerLiteral>(&e.node);
  if (!lit) return std::nullopt;
  if (lit->value < 1 || static_cast<std::uint64_t>(lit->value) > n) {
    fail(e.pos, fmt::format("ORDER BY column number {} is out of range (1 to {})", lit->value, n));
  }
  return static_cast<std::size_t>(lit->value - 1);
}

std::optional<std::size_t> Binder::output_by_name(const Expr& e, const std::vector<ColumnInfo>& columns) {
  const auto* ref = std::get_if<ColumnRef>(&e.node);
  if (!ref || ref->parts.size() != 1) return std::nullopt;
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (!name_matches(ref->parts[0], columns[i].name)) continue;
    if (found) fail(e.pos, fmt::format("ORDER BY name '{}' matches several result columns", ref->parts[0].text));
    found = i;
  }
  return found;
}

// ---------------------------------------------------------------- SELECT
BoundQuery Binder::bind_select(const Select& s, const Scope* outer, const CommonTableScope* env,
                               const std::vector<OrderItem>& order_by, std::optional<std::int64_t> offset,
                               std::optional<std::int64_t> limit) {
  Scope scope;
  scope.parent = outer;
  BoundSelect select;
  select.distinct = s.quantifier == Quantifier::distinct;
  for (const auto& t : s.from) select.from.push_back(bind_table_reference(t, scope, env));

  BoundQuery out;
  ExpressionContext ctx{&scope, env, true, false, "the select list", &select.aggregated};
  // Per output column, what GROUP BY binds again when it names the column's
  // alias: the select item, or for a column of a star its range column.
  std::vector<const Expr*> item_expr;
  std::vector<std::optional<RangeColumn>> star_column;
  for (std::size_t i = 0; i < s.items.size(); ++i) {
    const auto& item = s.items[i];
    if (const auto* star = std::get_if<Star>(&item.expr->node)) {
      for (auto& c : expand_star(*star, item.expr->pos, scope)) {
        select.items.push_back(column_expression(c));
        item_expr.push_back(nullptr);
        out.columns.push_back({c.name, c.type, c.source, c.source_table});
        star_column.push_back(std::move(c));
      }
      continue;
    }
    BoundExpressionPtr v = bind(*item.expr, ctx);
    out.columns.push_back({output_name(item, out.columns.size()), v->type, v->source, v->source_table});
    select.items.push_back(std::move(v));
    item_expr.push_back(item.expr.get());
    star_column.emplace_back();
  }

  if (s.where) {
    ExpressionContext where_ctx{&scope, env, false, false, "WHERE"};
    select.where = bind(*s.where, where_ctx);
    add_where_hints(*select.where, select);
  }

  ExpressionContext group_ctx{&scope, env, false, false, "GROUP BY"};
  for (const auto& g : s.group_by) {
    if (const auto* ref = std::get_if<ColumnRef>(&g->node);
        ref && ref->parts.size() == 1 && !find_column(*ref, scope, g->pos, false)) {
      // A select-list alias (accepted by most TAP services).
      const auto idx = output_by_name(*g, out.columns);
      if (!idx) fail(g->pos, fmt::format("unknown column '{}'", ref->parts[0].text));
      // Bound again in the GROUP BY context so that grouping by an
      // aggregate is refused.
      select.group_by.push_back(item_expr[*idx] ? bind(*item_expr[*idx], group_ctx)
                                                : column_expression(*star_column[*idx]));
    } else {
      select.group_by.push_back(bind(*g, group_ctx));
    }
  }
  if (s.having) {
    ExpressionContext having_ctx{&scope, env, true, false, "HAVING"};
    select.having = bind(*s.having, having_ctx);
  }

  ExpressionContext order_ctx{&scope, env, true, false, "ORDER BY"};
  for (const auto& item : order_by) {
    std::optional<std::size_t> idx = ordinal(*item.expr, out.columns.size());
    if (!idx) idx = output_by_name(*item.expr, out.columns);
    out.order_by.push_back({idx, idx ? nullptr : bind(*item.expr, order_ctx), item.descending});
  }

  out.limit = s.top;
  if (limit) out.limit = out.limit ? std::min(*out.limit, *limit) : *limit;
  out.offset = offset;
  out.body = std::move(select);
  return out;
}

// The indexed spatial candidates of a WHERE clause: CONTAINS/INTERSECTS
// compared with 1 (either way round) in its top-level conjunction. They do
// not survive OR or NOT.
void Binder::add_where_hints(const BoundExpression& where, BoundSelect& select) {
  auto add = [&](const BoundExpression& predicate, const BoundExpression& other) {
    const auto* spatial = std::get_if<BoundSpatialPredicate>(&predicate.node);
    const auto* one = std::get_if<BoundInteger>(&other.node);
    if (!spatial || !spatial->index_candidate || !one || one->value != 1) return;
    if (!spatial->index_candidate->indexed) return;
    select.index_hints.push_back({spatial->index_candidate->hint, spatial});
    hints_.push_back(spatial->index_candidate->hint);
  };
  if (const auto* c = std::get_if<BoundComparison>(&where.node); c && c->op == CompareOp::eq) {
    add(*c->left, *c->right);
    add(*c->right, *c->left);
  } else if (const auto* l = std::get_if<BoundLogical>(&where.node); l && l->op == LogicalOp::and_) {
    for (const auto& operand : l->operands) add_where_hints(*operand, select);
  }
}

std::vector<RangeColumn> Binder::expand_star(const Star& star, Position pos, const Scope& scope) {
  std::vector<RangeColumn> out;
  if (star.qualifier.empty()) {
    if (scope.variables.empty()) fail(pos, "'*' needs a table in FROM");
    for (const auto& m : scope.merged) {
      if (!m.column.hidden) out.push_back(m.column);
    }
    for (const auto& v : scope.variables) {
      for (const auto& c : v.columns) {
        if (!c.hidden) out.push_back(c);
      }
    }
    return out;
  }
  const RangeVariable* var = find_variable(star.qualifier, scope, pos);
  if (!var) fail(pos, fmt::format("unknown table '{}' in {}.*", star.qualifier.back().text, star.qualifier.back().text));
  return var->columns;
}

// ---------------------------------------------------------------- FROM
BoundTableReference Binder::bind_table_reference(const TableRef& t, Scope& scope, const CommonTableScope* env) {
  if (const auto* n = std::get_if<NamedTable>(&t.node)) return bind_named_table(*n, t.pos, scope, env);
  if (const auto* d = std::get_if<DerivedTable>(&t.node)) {
    // A derived table sees neither the FROM it is part of nor (not being
    // LATERAL) the current scope, only the enclosing queries.
    BoundDerivedTable derived{0, std::make_unique<BoundQuery>(bind_query(*d->query, scope.parent, env, std::nullopt))};
    derived.number = ++table_counter_;
    RangeVariable var;
    var.name = d->alias;
    var.aliased = true;
    var.table_number = derived.number;
    var.columns = subquery_columns(derived.query->columns, derived.number);
    add_variable(scope, std::move(var), t.pos);
    return {std::move(derived)};
  }
  return {bind_join(std::get<Join>(t.node), t.pos, scope, env)};
}

BoundJoin Binder::bind_join(const Join& j, Position pos, Scope& scope, const CommonTableScope* env) {
  BoundJoin join;
  join.kind = j.kind;
  const std::size_t first = scope.variables.size();
  join.left = std::make_unique<BoundTableReference>(bind_table_reference(*j.left, scope, env));
  const std::size_t middle = scope.variables.size();
  join.right = std::make_unique<BoundTableReference>(bind_table_reference(*j.right, scope, env));
  const std::size_t last = scope.variables.size();
  if (j.kind == JoinKind::cross) return join;
  if (j.on) {
    ExpressionContext ctx{&scope, env, false, false, "ON"};
    join.on = bind(*j.on, ctx);
    return join;
  }
  std::vector<Identifier> names = j.using_columns;
  if (j.natural) {
    for (const RangeColumn* c : visible_columns(scope, first, middle)) {
      Identifier id{c->name, true, pos};
      if (find_in_range(id, scope, middle, last, pos, true)) names.push_back(id);
    }
  }
  for (const auto& name : names) {
    RangeColumn* l = find_in_range(name, scope, first, middle, name.pos, false);
    RangeColumn* r = find_in_range(name, scope, middle, last, name.pos, false);
    if (!l || !r) fail(name.pos, fmt::format("column '{}' of USING is not in both tables", name.text));
    if (!comparable(l->type, r->type)) fail(name.pos, fmt::format("cannot join on '{}': types differ", name.text));
    join.using_columns.emplace_back(l->column, r->column);
    MergedColumn m;
    m.column = j.kind == JoinKind::right ? *r : *l;
    m.column.hidden = false;
    if (j.kind == JoinKind::full) {
      m.column.column = BoundColumn{{}, std::make_shared<BoundColumn>(l->column), std::make_shared<BoundColumn>(r->column)};
      m.column.origin.reset();
    }
    m.first = first;
    m.last = last;
    l->hidden = true;
    r->hidden = true;
    scope.merged.push_back(std::move(m));
  }
  return join;
}

BoundTableReference Binder::bind_named_table(const NamedTable& n, Position pos, Scope& scope,
                                             const CommonTableScope* env) {
  if (n.name.size() == 3) fail(pos, "catalog-qualified table names are not supported");
  RangeVariable var;
  var.table_number = ++table_counter_;
  BoundTableReference bound;
  const CommonTable* common = n.name.size() == 1 && env ? env->find(n.name[0]) : nullptr;
  if (common) {
    var.name = Identifier{common->name.text, common->name.delimited, pos};
    var.columns = subquery_columns(common->columns, var.table_number);
    bound.node = BoundCommonTableScan{var.table_number, common->number};
  } else {
    std::optional<Identifier> schema;
    if (n.name.size() == 2) schema = n.name[0];
    const Identifier& tname = n.name.back();
    const auto found = catalog_.find(schema, tname);
    if (found.empty()) {
      const std::string written = schema ? schema->text + "." + tname.text : tname.text;
      fail(pos, fmt::format("unknown table '{}'", written));
    }
    if (found.size() > 1) {
      std::vector<std::string> names;
      for (const auto* t : found) names.push_back(t->qualified_name());
      fail(pos, fmt::format("table name '{}' is ambiguous ({}): qualify it with its schema", tname.text,
                            fmt::join(names, ", ")));
    }
    const TableDef* table = found.front();
    var.name = Identifier{table->name, false, pos};
    var.schema = table->schema;
    for (const auto& cd : table->columns) {
      RangeColumn c;
      c.name = cd.name;
      c.type = cd.type;
      c.column.access = ColumnAccess{var.table_number, cd.sql(), 0};
      c.origin = ColumnOrigin{var.table_number, table, &cd};
      c.source = cd;
      c.source_table = table->qualified_name();
      var.columns.push_back(std::move(c));
    }
    bound.node = BoundTable{var.table_number, table};
  }
  if (n.alias) {
    var.name = *n.alias;
    var.aliased = true;
    var.schema.clear();
  }
  add_variable(scope, std::move(var), pos);
  return bound;
}

void Binder::add_variable(Scope& scope, RangeVariable var, Position pos) {
  for (const auto& v : scope.variables) {
    if (alias_matches(var.name, v.name) && (var.aliased || v.aliased || var.schema == v.schema)) {
      fail(pos, fmt::format("table name '{}' appears twice in FROM: give one an alias", var.name.text));
    }
  }
  scope.variables.push_back(std::move(var));
}

// ---------------------------------------------------------------- names
std::vector<const RangeColumn*> Binder::visible_columns(const Scope& scope, std::size_t first, std::size_t last) {
  std::vector<const RangeColumn*> out;
  for (const auto& m : scope.merged) {
    if (!m.column.hidden && m.first >= first && m.last <= last) out.push_back(&m.column);
  }
  for (std::size_t i = first; i < last; ++i) {
    for (const auto& c : scope.variables[i].columns) {
      if (!c.hidden) out.push_back(&c);
    }
  }
  return out;
}

// The one visible column named `id` among the range variables [first, last)
// of a scope (merged USING columns included); null when none.
RangeColumn* Binder::find_in_range(const Identifier& id, Scope& scope, std::size_t first, std::size_t last,
                                   Position pos, bool quiet) {
  std::vector<RangeColumn*> hits;
  for (auto& m : scope.merged) {
    if (!m.column.hidden && m.first >= first && m.last <= last && name_matches(id, m.column.name)) {
      hits.push_back(&m.column);
    }
  }
  for (std::size_t i = first; i < last; ++i) {
    for (auto& c : scope.variables[i].columns) {
      if (!c.hidden && name_matches(id, c.name)) hits.push_back(&c);
    }
  }
  if (hits.size() > 1 && !quiet) fail(pos, fmt::format("column name '{}' is ambiguous", id.text));
  return hits.empty() ? nullptr : hits.front();
}

const RangeVariable* Binder::find_variable(const std::vector<Identifier>& qualifier, const Scope& scope,
                                           Position pos) {
  for (const Scope* s = &scope; s; s = s->parent) {
    const RangeVariable* hit = nullptr;
    for (const auto& v : s->variables) {
      const bool name_ok =
          v.aliased ? alias_matches(qualifier.back(), v.name) : name_matches(qualifier.back(), v.name.text);
      if (!name_ok) continue;
      if (qualifier.size() == 2 && (v.aliased || !name_matches(qualifier[0], v.schema))) continue;
      if (qualifier.size() > 2) fail(pos, "catalog-qualified names are not supported");
      if (hit) fail(pos, fmt::format("table name '{}' is ambiguous", qualifier.back().text));
      hit = &v;
    }
    if (hit) return hit;
  }
  return nullptr;
}

// Resolves a column reference through the scope and its parents.
const RangeColumn* Binder::find_column(const ColumnRef& ref, Scope& scope, Position pos, bool required) {
  const Identifier& col = ref.parts.back();
  if (ref.parts.size() == 4) fail(pos, "catalog-qualified names are not supported");
  if (ref.parts.size() == 1) {
    for (Scope* s = &scope; s; s = const_cast<Scope*>(s->parent)) {
      if (RangeColumn* c = find_in_range(col, *s, 0, s->variables.size(), pos, false)) return c;
    }
    if (required) fail(pos, fmt::format("unknown column '{}'", col.text));
    return nullptr;
  }
  const std::vector<Identifier> qualifier(ref.parts.begin(), ref.parts.end() - 1);
  const RangeVariable* var = find_variable(qualifier, scope, pos);
  std::string written;
  for (const auto& p : qualifier) written += p.text + ".";
  if (!var) {
    if (!required) return nullptr;
    fail(pos, fmt::format("unknown table '{}' in column reference '{}{}'", qualifier.back().text, written, col.text));
  }
  for (const auto& c : var->columns) {
    if (name_matches(col, c.name)) return &c;
  }
  if (!required) return nullptr;
  fail(pos, fmt::format("unknown column '{}{}'", written, col.text));
}

BoundExpressionPtr Binder::node(const ColumnRef& ref, const Expr& e, ExpressionContext& ctx) {
  return column_expression(*find_column(ref, *ctx.scope, e.pos, true));
}

}  // namespace pixserve::adql
