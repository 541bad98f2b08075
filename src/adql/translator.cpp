#include "adql/translator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adql/errors.hpp"
#include "adql/geometry_functions.hpp"
#include "adql/lexer.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace {

namespace geo = geometry;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void fail(Position pos, const std::string& msg) { throw SemanticError(pos, msg); }

// Where a value comes from when it is a catalogue column as is (for output
// metadata and spatial hints).
struct ColumnOrigin {
  std::string sql_alias;
  const TableDef* table = nullptr;
  const ColumnDef* column = nullptr;
};

// A spatial predicate (CONTAINS/INTERSECTS) that becomes a hint when it is
// compared with 1 in a WHERE conjunction.
struct SpatialCandidate {
  SpatialHint hint;
  bool indexed = false;
};

// A geometry constructor call (POINT, CIRCLE, BOX, POLYGON) with the SQL of
// its numeric arguments, so CONTAINS(POINT(a, b), CIRCLE(...)) can call the
// specialised function on numbers; `constant` when every argument was a
// number literal.
struct GeometryCtor {
  std::string kind;
  std::vector<std::string> args;
  std::vector<std::optional<ColumnOrigin>> origins;
  std::optional<geo::Geometry> constant;
};

struct Val {
  static Val of(std::string sql, AdqlType type = AdqlType::unknown) {
    Val v;
    v.sql = std::move(sql);
    v.type = type;
    return v;
  }
  std::string sql;
  AdqlType type = AdqlType::unknown;
  std::optional<ColumnOrigin> origin;
  std::optional<ColumnDef> source;
  std::string source_table;
  std::optional<double> number;  // numeric literal (after unary minus)
  bool integer_literal = false;
  bool string_literal = false;
  bool aggregate = false;  // contains an aggregate function
  std::optional<GeometryCtor> ctor;
  std::optional<SpatialCandidate> spatial;
  std::vector<SpatialCandidate> hints;  // carried up through AND
};

// Name of an output column, matched like a catalogue name.
struct OutCol {
  std::string name;
  AdqlType type = AdqlType::unknown;
  std::optional<ColumnDef> source;
  std::string source_table;
};

struct QOut {
  std::string sql;
  std::vector<OutCol> cols;
};

struct RCol {
  std::string name;
  AdqlType type = AdqlType::unknown;
  std::string sql;
  std::optional<ColumnOrigin> origin;
  std::optional<ColumnDef> source;
  std::string source_table;
  bool hidden = false;  // merged into a USING/NATURAL column
};

struct RVar {
  Identifier name;  // alias, or table name (as a canonical, non-delimited name)
  bool aliased = false;
  std::string schema;  // for schema.table.column when not aliased
  std::string sql_alias;
  std::vector<RCol> cols;
};

struct Merged {
  RCol col;
  std::size_t begin = 0, end = 0;  // the range variables it covers
};

struct Scope {
  const Scope* parent = nullptr;
  std::vector<RVar> vars;
  std::vector<Merged> merged;
};

struct Cte {
  Identifier name;
  std::string sql_name;
  std::vector<OutCol> cols;
};

struct CteEnv {
  const CteEnv* parent = nullptr;
  std::vector<Cte> ctes;
  const Cte* find(const Identifier& id) const {
    for (const CteEnv* e = this; e; e = e->parent) {
      for (const auto& c : e->ctes) {
        if (name_matches(id, c.name.text)) return &c;
      }
    }
    return nullptr;
  }
};

bool alias_matches(const Identifier& ref, const Identifier& name) {
  if (ref.delimited || name.delimited) return ref.text == name.text;
  return name_matches(ref, name.text);
}

struct Ctx {
  Scope* scope = nullptr;
  const CteEnv* env = nullptr;
  bool allow_aggregate = false;
  bool in_aggregate = false;
  const char* clause = "";
};

AdqlType unify(AdqlType a, AdqlType b) {
  if (a == AdqlType::unknown) return b;
  if (b == AdqlType::unknown) return a;
  if (a == b) return a;
  if (is_numeric(a) && is_numeric(b)) {
    if (is_integer(a) && is_integer(b)) return AdqlType::bigint;
    return AdqlType::double_precision;
  }
  if (is_string(a) && is_string(b)) return AdqlType::varchar;
  if (is_geometry(a) && is_geometry(b)) return AdqlType::region;
  return a;
}

bool comparable(AdqlType a, AdqlType b) {
  if (a == AdqlType::unknown || b == AdqlType::unknown) return true;
  if (is_geometry(a) || is_geometry(b)) return false;
  if (is_numeric(a) || a == AdqlType::boolean) return is_numeric(b) || b == AdqlType::boolean;
  if (is_string(a) || a == AdqlType::timestamp) return is_string(b) || b == AdqlType::timestamp;
  return a == b;
}

class Translator {
 public:
  Translator(const Catalog& catalog, const TranslateOptions& options) : catalog_(catalog), o_(options) {}

  Translation run(const Query& q) {
    QOut out = query(q, nullptr, nullptr, o_.max_rows);
    Translation t;
    t.sql = std::move(out.sql);
    for (auto& c : out.cols) t.columns.push_back({c.name, c.type, std::move(c.source), std::move(c.source_table)});
    t.hints = std::move(hints_);
    return t;
  }

 private:
  bool pg() const { return o_.dialect == db::Dialect::postgresql; }

  // ---------------------------------------------------------------- queries
  QOut query(const Query& q, const Scope* outer, const CteEnv* env, std::optional<std::int64_t> limit) {
    CteEnv local{env, {}};
    std::string with;
    if (!q.with.empty()) {
      for (const auto& w : q.with) {
        for (const auto& c : local.ctes) {
          if (alias_matches(w.name, c.name)) fail(w.name.pos, fmt::format("WITH name '{}' is defined twice", w.name.text));
        }
        QOut sub = query(*w.query, outer, &local, std::nullopt);
        Cte cte{w.name, fmt::format("q{}", ++cte_counter_), sub.cols};
        if (!w.columns.empty()) {
          if (w.columns.size() != sub.cols.size()) {
            fail(w.name.pos, fmt::format("WITH {} names {} columns but its query has {}", w.name.text,
                                         w.columns.size(), sub.cols.size()));
          }
          for (std::size_t i = 0; i < w.columns.size(); ++i) {
            cte.cols[i].name = w.columns[i].text;
            cte.cols[i].source.reset();
          }
        }
        with += fmt::format("{}{} AS ({})", with.empty() ? "WITH " : ", ", cte.sql_name, sub.sql);
        local.ctes.push_back(std::move(cte));
      }
      with += " ";
    }
    const CteEnv* e = q.with.empty() ? env : &local;

    QOut out;
    if (const auto* s = std::get_if<Box<Select>>(&q.body)) {
      out = select(**s, outer, e, q.order_by, q.offset, limit);
    } else if (const auto* op = std::get_if<SetOperation>(&q.body)) {
      out = set_operation(q, *op, outer, e, limit);
    } else {
      QOut inner = query(*std::get<QueryPtr>(q.body), outer, e, std::nullopt);
      if (q.order_by.empty() && !q.offset && !limit) {
        out = std::move(inner);
      } else {
        out.cols = inner.cols;
        out.sql = fmt::format("SELECT * FROM ({}) AS s{}", inner.sql, ++wrap_counter_);
        out.sql += order_by_outputs(q.order_by, out.cols);
        out.sql += limit_offset(limit, q.offset);
      }
    }
    out.sql = with + out.sql;
    return out;
  }

  static bool plain_select(const Query& q) {
    const auto* s = std::get_if<Box<Select>>(&q.body);
    return s && q.with.empty() && q.order_by.empty() && !q.offset && !(*s)->top;
  }

  QOut set_operation(const Query& q, const SetOperation& op, const Scope* outer, const CteEnv* env,
                     std::optional<std::int64_t> limit) {
    QOut left = query(*op.left, outer, env, std::nullopt);
    QOut right = query(*op.right, outer, env, std::nullopt);
    const char* kw = op.kind == SetOpKind::union_ ? "UNION" : op.kind == SetOpKind::intersect ? "INTERSECT" : "EXCEPT";
    if (left.cols.size() != right.cols.size()) {
      fail(q.pos, fmt::format("the operands of {} have different numbers of columns ({} and {})", kw,
                              left.cols.size(), right.cols.size()));
    }
    // SQLite accepts neither parentheses around compound members nor
    // ORDER BY/LIMIT inside them, and gives all compound operators the same
    // precedence: operands other than plain SELECTs become subqueries.
    auto operand = [&](const Query& oq, const std::string& sql) {
      if (plain_select(oq)) return sql;
      return fmt::format("SELECT * FROM ({}) AS s{}", sql, ++wrap_counter_);
    };
    QOut out;
    out.cols = left.cols;
    for (std::size_t i = 0; i < out.cols.size(); ++i) {
      out.cols[i].type = unify(left.cols[i].type, right.cols[i].type);
      if (!(left.cols[i].source_table == right.cols[i].source_table)) out.cols[i].source.reset();
    }
    out.sql = fmt::format("{} {}{} {}", operand(*op.left, left.sql), kw, op.all ? " ALL" : "",
                          operand(*op.right, right.sql));
    out.sql += order_by_outputs(q.order_by, out.cols);
    out.sql += limit_offset(limit, q.offset);
    return out;
  }

  // ORDER BY after a set operation: result columns only.
  std::string order_by_outputs(const std::vector<OrderItem>& items, const std::vector<OutCol>& cols) {
    if (items.empty()) return {};
    std::string out = " ORDER BY ";
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& item = items[i];
      std::optional<std::size_t> index = ordinal(*item.expr, cols.size());
      if (!index) index = output_by_name(*item.expr, cols);
      if (!index) fail(item.expr->pos, "ORDER BY of a set operation must name a result column or give its number");
      out += fmt::format("{}c{}{}", i ? ", " : "", *index + 1, item.descending ? " DESC" : " ASC");
    }
    return out;
  }

  std::optional<std::size_t> ordinal(const Expr& e, std::size_t n) {
    const auto* lit = std::get_if<IntegerLiteral>(&e.node);
    if (!lit) return std::nullopt;
    if (lit->value < 1 || static_cast<std::uint64_t>(lit->value) > n) {
      fail(e.pos, fmt::format("ORDER BY column number {} is out of range (1 to {})", lit->value, n));
    }
    return static_cast<std::size_t>(lit->value - 1);
  }

  std::optional<std::size_t> output_by_name(const Expr& e, const std::vector<OutCol>& cols) {
    const auto* ref = std::get_if<ColumnRef>(&e.node);
    if (!ref || ref->parts.size() != 1) return std::nullopt;
    std::optional<std::size_t> found;
    for (std::size_t i = 0; i < cols.size(); ++i) {
      if (!name_matches(ref->parts[0], cols[i].name)) continue;
      if (found) fail(e.pos, fmt::format("ORDER BY name '{}' matches several result columns", ref->parts[0].text));
      found = i;
    }
    return found;
  }

  std::string limit_offset(std::optional<std::int64_t> limit, std::optional<std::int64_t> offset) const {
    std::string out;
    if (limit) out += fmt::format(" LIMIT {}", *limit);
    if (offset) {
      // SQLite has no OFFSET without LIMIT; -1 means no limit there.
      if (!limit && !pg()) out += " LIMIT -1";
      out += fmt::format(" OFFSET {}", *offset);
    }
    return out;
  }

  // ---------------------------------------------------------------- SELECT
  QOut select(const Select& s, const Scope* outer, const CteEnv* env, const std::vector<OrderItem>& order_by,
              std::optional<std::int64_t> offset, std::optional<std::int64_t> limit) {
    Scope scope;
    scope.parent = outer;
    std::string from;
    for (std::size_t i = 0; i < s.from.size(); ++i) {
      from += (i ? ", " : "") + table_ref(s.from[i], scope, env);
    }

    Ctx ctx{&scope, env, true, false, "the select list"};
    std::vector<std::string> items_sql;
    std::vector<const Expr*> item_expr;  // per output column; null for star columns
    QOut out;
    for (std::size_t i = 0; i < s.items.size(); ++i) {
      const auto& item = s.items[i];
      if (const auto* star = std::get_if<Star>(&item.expr->node)) {
        for (auto& c : expand_star(*star, item.expr->pos, scope)) {
          items_sql.push_back(c.sql);
          item_expr.push_back(nullptr);
          out.cols.push_back({c.name, c.type, c.source, c.source_table});
        }
        continue;
      }
      Val v = expr(*item.expr, ctx);
      OutCol col{output_name(item, out.cols.size()), v.type, v.source, v.source_table};
      items_sql.push_back(v.sql);
      item_expr.push_back(item.expr.get());
      out.cols.push_back(std::move(col));
    }

    std::string sql = "SELECT ";
    if (s.quantifier == Quantifier::distinct) sql += "DISTINCT ";
    for (std::size_t i = 0; i < items_sql.size(); ++i) {
      sql += fmt::format("{}{} AS c{}", i ? ", " : "", items_sql[i], i + 1);
    }
    sql += " FROM " + from;

    if (s.where) {
      Ctx wctx{&scope, env, false, false, "WHERE"};
      Val w = expr(*s.where, wctx);
      sql += " WHERE " + w.sql;
      for (auto& cand : w.hints) {
        if (!cand.indexed) continue;
        if (o_.index_filter) {
          const std::string extra = o_.index_filter(cand.hint);
          if (!extra.empty()) sql += " AND (" + extra + ")";
        }
        hints_.push_back(std::move(cand.hint));
      }
    }

    if (!s.group_by.empty()) {
      sql += " GROUP BY ";
      Ctx gctx{&scope, env, false, false, "GROUP BY"};
      for (std::size_t i = 0; i < s.group_by.size(); ++i) {
        const Expr& g = *s.group_by[i];
        std::string gsql;
        if (const auto* ref = std::get_if<ColumnRef>(&g.node); ref && ref->parts.size() == 1 &&
                                                               !find_column(*ref, scope, g.pos, false)) {
          // A select-list alias (accepted by most TAP services).
          const auto idx = output_by_name(g, out.cols);
          if (!idx) fail(g.pos, fmt::format("unknown column '{}'", ref->parts[0].text));
          // Re-translated in the GROUP BY context so that grouping by an
          // aggregate is refused.
          gsql = item_expr[*idx] ? expr(*item_expr[*idx], gctx).sql : items_sql[*idx];
        } else {
          gsql = expr(g, gctx).sql;
        }
        sql += (i ? ", " : "") + gsql;
      }
    }
    if (s.having) {
      Ctx hctx{&scope, env, true, false, "HAVING"};
      sql += " HAVING " + expr(*s.having, hctx).sql;
    }

    if (!order_by.empty()) {
      sql += " ORDER BY ";
      Ctx octx{&scope, env, true, false, "ORDER BY"};
      for (std::size_t i = 0; i < order_by.size(); ++i) {
        const auto& item = order_by[i];
        std::optional<std::size_t> idx = ordinal(*item.expr, out.cols.size());
        if (!idx) idx = output_by_name(*item.expr, out.cols);
        const std::string key = idx ? fmt::format("c{}", *idx + 1) : expr(*item.expr, octx).sql;
        sql += fmt::format("{}{}{}", i ? ", " : "", key, item.descending ? " DESC" : " ASC");
      }
    }

    std::optional<std::int64_t> lim = s.top;
    if (limit) lim = lim ? std::min(*lim, *limit) : *limit;
    sql += limit_offset(lim, offset);
    out.sql = std::move(sql);
    return out;
  }

  static std::string output_name(const SelectItem& item, std::size_t index) {
    if (item.alias) return item.alias->text;
    if (const auto* ref = std::get_if<ColumnRef>(&item.expr->node)) return ref->parts.back().text;
    if (const auto* f = std::get_if<FunctionCall>(&item.expr->node)) return lower(f->name);
    return fmt::format("col{}", index + 1);
  }

  std::vector<RCol> expand_star(const Star& star, Position pos, const Scope& scope) {
    std::vector<RCol> out;
    if (star.qualifier.empty()) {
      if (scope.vars.empty()) fail(pos, "'*' needs a table in FROM");
      for (const auto& m : scope.merged) {
        if (!m.col.hidden) out.push_back(m.col);
      }
      for (const auto& v : scope.vars) {
        for (const auto& c : v.cols) {
          if (!c.hidden) out.push_back(c);
        }
      }
      return out;
    }
    const RVar* var = find_var(star.qualifier, scope, pos);
    if (!var) fail(pos, fmt::format("unknown table '{}' in {}.*", star.qualifier.back().text, star.qualifier.back().text));
    return var->cols;
  }

  // ---------------------------------------------------------------- FROM
  std::string table_ref(const TableRef& t, Scope& scope, const CteEnv* env) {
    if (const auto* n = std::get_if<NamedTable>(&t.node)) return named_table(*n, t.pos, scope, env);
    if (const auto* d = std::get_if<DerivedTable>(&t.node)) {
      // A derived table sees neither the FROM it is part of nor (not being
      // LATERAL) the current scope, only the enclosing queries.
      QOut sub = query(*d->query, scope.parent, env, std::nullopt);
      RVar var;
      var.name = d->alias;
      var.aliased = true;
      var.sql_alias = fmt::format("t{}", ++table_counter_);
      for (std::size_t i = 0; i < sub.cols.size(); ++i) {
        RCol c;
        c.name = sub.cols[i].name;
        c.type = sub.cols[i].type;
        c.sql = fmt::format("{}.c{}", var.sql_alias, i + 1);
        c.source = sub.cols[i].source;
        c.source_table = sub.cols[i].source_table;
        var.cols.push_back(std::move(c));
      }
      const std::string sql = fmt::format("({}) AS {}", sub.sql, var.sql_alias);
      add_var(scope, std::move(var), t.pos);
      return sql;
    }
    const auto& j = std::get<Join>(t.node);
    const std::size_t begin = scope.vars.size();
    const std::string left = table_ref(*j.left, scope, env);
    const std::size_t mid = scope.vars.size();
    std::string right = table_ref(*j.right, scope, env);
    const std::size_t end = scope.vars.size();
    if (std::holds_alternative<Join>(j.right->node)) right = "(" + right + ")";
    if (j.kind == JoinKind::cross) return left + " CROSS JOIN " + right;
    const char* kw = j.kind == JoinKind::inner  ? "JOIN"
                     : j.kind == JoinKind::left ? "LEFT OUTER JOIN"
                     : j.kind == JoinKind::right ? "RIGHT OUTER JOIN"
                                                 : "FULL OUTER JOIN";
    std::string on;
    if (j.on) {
      Ctx ctx{&scope, env, false, false, "ON"};
      on = expr(*j.on, ctx).sql;
    } else {
      std::vector<Identifier> names = j.using_columns;
      if (j.natural) {
        for (const RCol* c : visible_columns(scope, begin, mid)) {
          Identifier id{c->name, true, t.pos};
          if (find_in_range(id, scope, mid, end, t.pos, true)) names.push_back(id);
        }
      }
      std::vector<std::string> conds;
      for (const auto& name : names) {
        RCol* l = find_in_range(name, scope, begin, mid, name.pos, false);
        RCol* r = find_in_range(name, scope, mid, end, name.pos, false);
        if (!l || !r) {
          fail(name.pos, fmt::format("column '{}' of USING is not in both tables", name.text));
        }
        if (!comparable(l->type, r->type)) fail(name.pos, fmt::format("cannot join on '{}': types differ", name.text));
        conds.push_back(fmt::format("{} = {}", l->sql, r->sql));
        Merged m;
        m.col = *l;
        m.col.hidden = false;
        if (j.kind == JoinKind::right) m.col = *r;
        if (j.kind == JoinKind::full) {
          m.col.sql = fmt::format("COALESCE({}, {})", l->sql, r->sql);
          m.col.origin.reset();
        }
        m.begin = begin;
        m.end = end;
        l->hidden = true;
        r->hidden = true;
        scope.merged.push_back(std::move(m));
      }
      on = conds.empty() ? "1 = 1" : fmt::format("({})", fmt::join(conds, " AND "));
    }
    return fmt::format("{} {} {} ON {}", left, kw, right, on);
  }

  std::string named_table(const NamedTable& n, Position pos, Scope& scope, const CteEnv* env) {
    if (n.name.size() == 3) fail(pos, "catalog-qualified table names are not supported");
    RVar var;
    var.sql_alias = fmt::format("t{}", ++table_counter_);
    std::string sql;
    const Cte* cte = n.name.size() == 1 && env ? env->find(n.name[0]) : nullptr;
    if (cte) {
      var.name = Identifier{cte->name.text, cte->name.delimited, pos};
      for (std::size_t i = 0; i < cte->cols.size(); ++i) {
        RCol c;
        c.name = cte->cols[i].name;
        c.type = cte->cols[i].type;
        c.sql = fmt::format("{}.c{}", var.sql_alias, i + 1);
        c.source = cte->cols[i].source;
        c.source_table = cte->cols[i].source_table;
        var.cols.push_back(std::move(c));
      }
      sql = fmt::format("{} AS {}", cte->sql_name, var.sql_alias);
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
        RCol c;
        c.name = cd.name;
        c.type = cd.type;
        c.sql = var.sql_alias + "." + quote_identifier(cd.sql());
        c.origin = ColumnOrigin{var.sql_alias, table, &cd};
        c.source = cd;
        c.source_table = table->qualified_name();
        var.cols.push_back(std::move(c));
      }
      sql = table->sql_schema.empty() ? quote_identifier(table->sql())
                                      : quote_identifier(table->sql_schema) + "." + quote_identifier(table->sql());
      sql += " AS " + var.sql_alias;
    }
    if (n.alias) {
      var.name = *n.alias;
      var.aliased = true;
      var.schema.clear();
    }
    add_var(scope, std::move(var), pos);
    return sql;
  }

  void add_var(Scope& scope, RVar var, Position pos) {
    for (const auto& v : scope.vars) {
      if (alias_matches(var.name, v.name) && (var.aliased || v.aliased || var.schema == v.schema)) {
        fail(pos, fmt::format("table name '{}' appears twice in FROM: give one an alias", var.name.text));
      }
    }
    scope.vars.push_back(std::move(var));
  }

  std::vector<const RCol*> visible_columns(const Scope& scope, std::size_t begin, std::size_t end) {
    std::vector<const RCol*> out;
    for (const auto& m : scope.merged) {
      if (!m.col.hidden && m.begin >= begin && m.end <= end) out.push_back(&m.col);
    }
    for (std::size_t i = begin; i < end; ++i) {
      for (const auto& c : scope.vars[i].cols) {
        if (!c.hidden) out.push_back(&c);
      }
    }
    return out;
  }

  // The one visible column named `id` among the range variables [begin, end)
  // of a scope (merged USING columns included); null when none.
  RCol* find_in_range(const Identifier& id, Scope& scope, std::size_t begin, std::size_t end, Position pos,
                      bool quiet) {
    std::vector<RCol*> hits;
    for (auto& m : scope.merged) {
      if (!m.col.hidden && m.begin >= begin && m.end <= end && name_matches(id, m.col.name)) hits.push_back(&m.col);
    }
    for (std::size_t i = begin; i < end; ++i) {
      for (auto& c : scope.vars[i].cols) {
        if (!c.hidden && name_matches(id, c.name)) hits.push_back(&c);
      }
    }
    if (hits.size() > 1 && !quiet) fail(pos, fmt::format("column name '{}' is ambiguous", id.text));
    return hits.empty() ? nullptr : hits.front();
  }

  const RVar* find_var(const std::vector<Identifier>& q, const Scope& scope, Position pos) {
    for (const Scope* s = &scope; s; s = s->parent) {
      const RVar* hit = nullptr;
      for (const auto& v : s->vars) {
        const bool name_ok = v.aliased ? alias_matches(q.back(), v.name) : name_matches(q.back(), v.name.text);
        if (!name_ok) continue;
        if (q.size() == 2 && (v.aliased || !name_matches(q[0], v.schema))) continue;
        if (q.size() > 2) fail(pos, "catalog-qualified names are not supported");
        if (hit) fail(pos, fmt::format("table name '{}' is ambiguous", q.back().text));
        hit = &v;
      }
      if (hit) return hit;
    }
    return nullptr;
  }

  // Resolves a column reference through the scope and its parents.
  const RCol* find_column(const ColumnRef& ref, Scope& scope, Position pos, bool required) {
    const Identifier& col = ref.parts.back();
    if (ref.parts.size() == 4) fail(pos, "catalog-qualified names are not supported");
    if (ref.parts.size() == 1) {
      for (Scope* s = &scope; s; s = const_cast<Scope*>(s->parent)) {
        if (RCol* c = find_in_range(col, *s, 0, s->vars.size(), pos, false)) return c;
      }
      if (required) fail(pos, fmt::format("unknown column '{}'", col.text));
      return nullptr;
    }
    const std::vector<Identifier> qualifier(ref.parts.begin(), ref.parts.end() - 1);
    const RVar* var = find_var(qualifier, scope, pos);
    std::string written;
    for (const auto& p : qualifier) written += p.text + ".";
    if (!var) {
      if (!required) return nullptr;
      fail(pos, fmt::format("unknown table '{}' in column reference '{}{}'", qualifier.back().text, written, col.text));
    }
    for (const auto& c : var->cols) {
      if (name_matches(col, c.name)) return &c;
    }
    if (!required) return nullptr;
    fail(pos, fmt::format("unknown column '{}{}'", written, col.text));
  }

  // ---------------------------------------------------------------- expressions
  Val expr(const Expr& e, Ctx& ctx) {
    return std::visit([&](const auto& n) { return node(n, e, ctx); }, e.node);
  }

  Val value(const Expr& e, Ctx& ctx) {
    Val v = expr(e, ctx);
    return v;
  }

  Val node(const NullLiteral&, const Expr&, Ctx&) { return Val::of("NULL"); }
  Val node(const IntegerLiteral& l, const Expr&, Ctx&) {
    Val v;
    v.sql = fmt::format("{}", l.value);
    if (l.value < 0) v.sql = "(" + v.sql + ")";
    v.type = l.value >= std::numeric_limits<std::int32_t>::min() && l.value <= std::numeric_limits<std::int32_t>::max()
                 ? AdqlType::integer
                 : AdqlType::bigint;
    v.number = static_cast<double>(l.value);
    v.integer_literal = true;
    return v;
  }
  Val node(const RealLiteral& l, const Expr&, Ctx&) {
    Val v;
    v.sql = format_real(l.value);
    if (l.value < 0) v.sql = "(" + v.sql + ")";
    v.type = AdqlType::double_precision;
    v.number = l.value;
    return v;
  }
  Val node(const StringLiteral& l, const Expr&, Ctx&) {
    Val v;
    v.sql = quote_string(l.value);
    v.type = AdqlType::varchar;
    v.string_literal = true;
    return v;
  }
  Val node(const ColumnRef& ref, const Expr& e, Ctx& ctx) {
    const RCol* c = find_column(ref, *ctx.scope, e.pos, true);
    Val v;
    v.sql = c->sql;
    v.type = c->type;
    v.origin = c->origin;
    v.source = c->source;
    v.source_table = c->source_table;
    return v;
  }
  Val node(const Star&, const Expr& e, Ctx&) { fail(e.pos, "'*' is only allowed in a select list and in COUNT(*)"); }

  static void need_numeric(const Val& v, Position pos, const char* what) {
    if (v.type != AdqlType::unknown && !is_numeric(v.type)) {
      fail(pos, fmt::format("{} needs a number, found {}", what, type_name(v.type)));
    }
  }

  Val node(const Negate& n, const Expr& e, Ctx& ctx) {
    Val a = expr(*n.operand, ctx);
    need_numeric(a, e.pos, "unary minus");
    Val v;
    v.sql = "(-" + a.sql + ")";
    v.type = a.type;
    v.aggregate = a.aggregate;
    if (a.number) v.number = -*a.number;
    return v;
  }

  Val node(const Binary& b, const Expr& e, Ctx& ctx) {
    Val l = expr(*b.left, ctx);
    Val r = expr(*b.right, ctx);
    Val v;
    v.aggregate = l.aggregate || r.aggregate;
    if (b.op == BinaryOp::concat) {
      for (const Val* x : {&l, &r}) {
        if (is_geometry(x->type)) fail(e.pos, "|| cannot concatenate geometry values");
      }
      auto text = [&](const Val& x) {
        // PostgreSQL has no || between two numbers; make operands text.
        return pg() && !is_string(x.type) && x.type != AdqlType::unknown ? "CAST(" + x.sql + " AS text)" : x.sql;
      };
      v.sql = "(" + text(l) + " || " + text(r) + ")";
      v.type = AdqlType::varchar;
      return v;
    }
    static constexpr const char* kOps[] = {"+", "-", "*", "/"};
    const char* op = kOps[static_cast<int>(b.op)];
    need_numeric(l, b.left->pos, fmt::format("operator {}", op).c_str());
    need_numeric(r, b.right->pos, fmt::format("operator {}", op).c_str());
    v.sql = fmt::format("({} {} {})", l.sql, op, r.sql);
    v.type = unify(l.type, r.type);
    if (is_integer(l.type) && is_integer(r.type)) v.type = std::max(l.type, r.type);
    return v;
  }

  Val node(const Comparison& c, const Expr& e, Ctx& ctx) {
    Val l = expr(*c.left, ctx);
    Val r = expr(*c.right, ctx);
    check_comparable(l, r, e.pos);
    static constexpr const char* kOps[] = {"=", "<>", "<", "<=", ">", ">="};
    Val v;
    v.sql = fmt::format("({} {} {})", l.sql, kOps[static_cast<int>(c.op)], r.sql);
    v.aggregate = l.aggregate || r.aggregate;
    if (c.op == CompareOp::eq) {
      // CONTAINS(...) = 1 and 1 = CONTAINS(...) are the spatial filters.
      if (l.spatial && r.integer_literal && r.number == 1.0) v.hints.push_back(*l.spatial);
      if (r.spatial && l.integer_literal && l.number == 1.0) v.hints.push_back(*r.spatial);
    }
    return v;
  }

  static void check_comparable(const Val& l, const Val& r, Position pos) {
    if (!comparable(l.type, r.type)) {
      fail(pos, fmt::format("cannot compare {} with {}", type_name(l.type), type_name(r.type)));
    }
  }

  Val node(const Between& b, const Expr& e, Ctx& ctx) {
    Val x = expr(*b.value, ctx);
    Val lo = expr(*b.low, ctx);
    Val hi = expr(*b.high, ctx);
    check_comparable(x, lo, e.pos);
    check_comparable(x, hi, e.pos);
    Val v;
    v.sql = fmt::format("({}{} BETWEEN {} AND {})", x.sql, b.negated ? " NOT" : "", lo.sql, hi.sql);
    v.aggregate = x.aggregate || lo.aggregate || hi.aggregate;
    return v;
  }

  Val node(const Like& l, const Expr& e, Ctx& ctx) {
    Val x = expr(*l.value, ctx);
    Val p = expr(*l.pattern, ctx);
    for (const Val* s : {&x, &p}) {
      if (s->type != AdqlType::unknown && !is_string(s->type)) {
        fail(e.pos, fmt::format("{} needs string operands, found {}", l.case_insensitive ? "ILIKE" : "LIKE",
                                type_name(s->type)));
      }
    }
    Val v;
    v.aggregate = x.aggregate || p.aggregate;
    std::string test;
    if (pg()) {
      // No escape character: ADQL has none, PostgreSQL's default is '\'.
      test = fmt::format("{} {} {} ESCAPE ''", x.sql, l.case_insensitive ? "ILIKE" : "LIKE", p.sql);
    } else if (l.case_insensitive) {
      test = fmt::format("{} LIKE {}", x.sql, p.sql);  // SQLite's LIKE ignores ASCII case
    } else if (const auto* lit = std::get_if<StringLiteral>(&l.pattern->node)) {
      // Case-sensitive LIKE with a literal pattern: the equivalent GLOB
      // (which SQLite can also serve from an index).
      std::string glob;
      for (const char c : lit->value) {
        switch (c) {
          case '%': glob += '*'; break;
          case '_': glob += '?'; break;
          case '*': glob += "[*]"; break;
          case '?': glob += "[?]"; break;
          case '[': glob += "[[]"; break;
          default: glob += c;
        }
      }
      test = fmt::format("{} GLOB {}", x.sql, quote_string(glob));
    } else {
      test = fmt::format("adql_like({}, {}) = 1", x.sql, p.sql);
    }
    v.sql = l.negated ? "(NOT (" + test + "))" : "(" + test + ")";
    return v;
  }

  Val node(const InList& in, const Expr& e, Ctx& ctx) {
    Val x = expr(*in.value, ctx);
    Val v;
    v.aggregate = x.aggregate;
    std::vector<std::string> items;
    for (const auto& item : in.items) {
      Val i = expr(*item, ctx);
      check_comparable(x, i, item->pos);
      v.aggregate = v.aggregate || i.aggregate;
      items.push_back(i.sql);
    }
    (void)e;
    v.sql = fmt::format("({}{} IN ({}))", x.sql, in.negated ? " NOT" : "", fmt::join(items, ", "));
    return v;
  }

  QOut subquery(const Query& q, Ctx& ctx) { return query(q, ctx.scope, ctx.env, std::nullopt); }

  Val node(const InQuery& in, const Expr& e, Ctx& ctx) {
    Val x = expr(*in.value, ctx);
    QOut sub = subquery(*in.query, ctx);
    if (sub.cols.size() != 1) fail(e.pos, fmt::format("the subquery of IN must return one column, not {}", sub.cols.size()));
    if (!comparable(x.type, sub.cols[0].type)) {
      fail(e.pos, fmt::format("cannot compare {} with {}", type_name(x.type), type_name(sub.cols[0].type)));
    }
    Val v;
    v.aggregate = x.aggregate;
    v.sql = fmt::format("({}{} IN ({}))", x.sql, in.negated ? " NOT" : "", sub.sql);
    return v;
  }

  Val node(const Exists& ex, const Expr&, Ctx& ctx) {
    QOut sub = subquery(*ex.query, ctx);
    return Val::of("EXISTS (" + sub.sql + ")");
  }

  Val node(const ScalarSubquery& s, const Expr& e, Ctx& ctx) {
    QOut sub = subquery(*s.query, ctx);
    if (sub.cols.size() != 1) fail(e.pos, fmt::format("a scalar subquery must return one column, not {}", sub.cols.size()));
    Val v;
    v.sql = "(" + sub.sql + ")";
    v.type = sub.cols[0].type;
    return v;
  }

  Val node(const IsNull& n, const Expr&, Ctx& ctx) {
    Val x = expr(*n.value, ctx);
    Val v;
    v.sql = fmt::format("({} IS {}NULL)", x.sql, n.negated ? "NOT " : "");
    v.aggregate = x.aggregate;
    return v;
  }

  Val node(const Not& n, const Expr&, Ctx& ctx) {
    Val x = expr(*n.operand, ctx);
    Val v;
    v.sql = "(NOT " + x.sql + ")";
    v.aggregate = x.aggregate;
    return v;  // hints do not survive negation
  }

  Val node(const Logical& l, const Expr&, Ctx& ctx) {
    Val v;
    std::vector<std::string> parts;
    for (const auto& operand : l.operands) {
      Val x = expr(*operand, ctx);
      parts.push_back(x.sql);
      v.aggregate = v.aggregate || x.aggregate;
      if (l.op == LogicalOp::and_) {
        for (auto& h : x.hints) v.hints.push_back(std::move(h));
      }
    }
    v.sql = fmt::format("({})", fmt::join(parts, l.op == LogicalOp::and_ ? " AND " : " OR "));
    return v;
  }

  Val node(const Case& c, const Expr& e, Ctx& ctx) {
    std::string sql = "CASE";
    Val v;
    std::optional<Val> operand;
    if (c.operand) {
      operand = expr(*c.operand, ctx);
      sql += " " + operand->sql;
      v.aggregate = operand->aggregate;
    }
    for (const auto& w : c.whens) {
      Val cond = expr(*w.when, ctx);
      if (operand) check_comparable(*operand, cond, w.when->pos);
      Val then = expr(*w.then, ctx);
      if (!then_compatible(v.type, then.type)) {
        fail(w.then->pos, fmt::format("CASE results mix {} and {}", type_name(v.type), type_name(then.type)));
      }
      v.type = unify(v.type, then.type);
      v.aggregate = v.aggregate || cond.aggregate || then.aggregate;
      sql += " WHEN " + cond.sql + " THEN " + then.sql;
    }
    if (c.otherwise) {
      Val other = expr(*c.otherwise, ctx);
      if (!then_compatible(v.type, other.type)) {
        fail(c.otherwise->pos, fmt::format("CASE results mix {} and {}", type_name(v.type), type_name(other.type)));
      }
      v.type = unify(v.type, other.type);
      v.aggregate = v.aggregate || other.aggregate;
      sql += " ELSE " + other.sql;
    }
    (void)e;
    v.sql = sql + " END";
    return v;
  }

  static bool then_compatible(AdqlType a, AdqlType b) {
    if (a == AdqlType::unknown || b == AdqlType::unknown) return true;
    if (is_geometry(a) && is_geometry(b)) return true;
    return comparable(a, b);
  }

  Val node(const Cast& c, const Expr& e, Ctx& ctx) {
    Val x = expr(*c.operand, ctx);
    if (is_geometry(x.type)) fail(e.pos, "geometry values cannot be CAST");
    Val v;
    v.aggregate = x.aggregate;
    const auto len = c.type.length;
    switch (c.type.kind) {
      case CastKind::smallint:
        v.type = AdqlType::smallint;
        v.sql = fmt::format("CAST({} AS {})", x.sql, pg() ? "smallint" : "INTEGER");
        break;
      case CastKind::integer:
        v.type = AdqlType::integer;
        v.sql = fmt::format("CAST({} AS {})", x.sql, pg() ? "integer" : "INTEGER");
        break;
      case CastKind::bigint:
        v.type = AdqlType::bigint;
        v.sql = fmt::format("CAST({} AS {})", x.sql, pg() ? "bigint" : "INTEGER");
        break;
      case CastKind::real:
        v.type = AdqlType::real;
        v.sql = fmt::format("CAST({} AS {})", x.sql, pg() ? "real" : "REAL");
        break;
      case CastKind::double_precision:
        v.type = AdqlType::double_precision;
        v.sql = fmt::format("CAST({} AS {})", x.sql, pg() ? "double precision" : "REAL");
        break;
      case CastKind::char_:
      case CastKind::varchar: {
        const bool fixed = c.type.kind == CastKind::char_;
        v.type = fixed ? AdqlType::char_ : AdqlType::varchar;
        if (pg()) {
          v.sql = len ? fmt::format("CAST({} AS {}({}))", x.sql, fixed ? "char" : "varchar", *len)
                      : fmt::format("CAST({} AS {})", x.sql, fixed ? "char" : "varchar");
        } else {
          // SQLite has no lengths: truncate as PostgreSQL does (CHAR is not padded).
          v.sql = len ? fmt::format("substr(CAST({} AS TEXT), 1, {})", x.sql, *len)
                      : fmt::format("CAST({} AS TEXT)", x.sql);
          if (fixed && !len) v.sql = fmt::format("substr(CAST({} AS TEXT), 1, 1)", x.sql);
        }
        break;
      }
      case CastKind::timestamp:
        v.type = AdqlType::timestamp;
        v.sql = pg() ? fmt::format("CAST({} AS timestamp)", x.sql) : fmt::format("CAST({} AS TEXT)", x.sql);
        break;
    }
    return v;
  }

  // ---------------------------------------------------------------- functions
  Val node(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    const std::string& name = f.name;
    if (name == "COUNT" || name == "SUM" || name == "AVG" || name == "MIN" || name == "MAX") {
      return aggregate(f, e, ctx);
    }
    if (name == "POINT" || name == "CIRCLE" || name == "BOX" || name == "POLYGON") return geometry_ctor(f, e, ctx);
    if (name == "CONTAINS" || name == "INTERSECTS") return spatial_predicate(f, e, ctx);
    if (name == "DISTANCE") return distance(f, e, ctx);
    if (name == "AREA" || name == "COORD1" || name == "COORD2" || name == "COORDSYS" || name == "CENTROID") {
      return geometry_accessor(f, e, ctx);
    }
    if (name == "REGION") fail(e.pos, "REGION is not supported (it was removed in ADQL 2.1)");
    if (name == "IN_UNIT") fail(e.pos, "IN_UNIT is not supported by this service");
    if (name == "LOWER" || name == "UPPER") {
      auto args = arguments(f, ctx, 1, 1, e.pos);
      if (args[0].type != AdqlType::unknown && !is_string(args[0].type)) {
        fail(e.pos, fmt::format("{} needs a string, found {}", name, type_name(args[0].type)));
      }
      Val v = combine(args);
      v.sql = fmt::format("{}({})", lower(name), args[0].sql);
      v.type = AdqlType::varchar;
      return v;
    }
    if (name == "COALESCE") {
      auto args = arguments(f, ctx, 1, 1000, e.pos);
      Val v = combine(args);
      for (const auto& a : args) {
        if (!then_compatible(v.type, a.type)) fail(e.pos, "COALESCE arguments have incompatible types");
        v.type = unify(v.type, a.type);
      }
      // SQLite's coalesce() wants at least two arguments.
      v.sql = args.size() == 1 ? args[0].sql : fmt::format("coalesce({})", join_sql(args));
      return v;
    }
    return math(f, e, ctx);
  }

  static std::string join_sql(const std::vector<Val>& args, std::size_t from = 0) {
    std::string out;
    for (std::size_t i = from; i < args.size(); ++i) out += (i > from ? ", " : "") + args[i].sql;
    return out;
  }

  static Val combine(const std::vector<Val>& args) {
    Val v;
    for (const auto& a : args) v.aggregate = v.aggregate || a.aggregate;
    return v;
  }

  std::vector<Val> arguments(const FunctionCall& f, Ctx& ctx, std::size_t min, std::size_t max, Position pos) {
    if (f.args.size() < min || f.args.size() > max) {
      const std::string range = min == max ? fmt::format("{}", min)
                                : max >= 1000 ? fmt::format("at least {}", min)
                                              : fmt::format("{} to {}", min, max);
      fail(pos, fmt::format("{} takes {} argument{}, not {}", f.name, range, max == 1 && min == 1 ? "" : "s",
                            f.args.size()));
    }
    if (f.distinct) fail(pos, fmt::format("DISTINCT is only allowed in aggregate functions, not {}", f.name));
    std::vector<Val> out;
    for (const auto& a : f.args) out.push_back(expr(*a, ctx));
    return out;
  }

  Val aggregate(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    if (!ctx.allow_aggregate) fail(e.pos, fmt::format("aggregate function {} is not allowed in {}", f.name, ctx.clause));
    if (ctx.in_aggregate) fail(e.pos, fmt::format("aggregate function {} cannot be nested in another", f.name));
    Val v;
    v.aggregate = true;
    if (f.star) {
      v.sql = "count(*)";
      v.type = AdqlType::bigint;
      return v;
    }
    if (f.args.size() != 1) fail(e.pos, fmt::format("{} takes one argument", f.name));
    Ctx inner = ctx;
    inner.in_aggregate = true;
    Val a = expr(*f.args[0], inner);
    const std::string distinct = f.distinct ? "DISTINCT " : "";
    if (f.name == "COUNT") {
      v.type = AdqlType::bigint;
    } else if (f.name == "SUM" || f.name == "AVG") {
      need_numeric(a, e.pos, f.name.c_str());
      v.type = f.name == "SUM" && is_integer(a.type) ? AdqlType::bigint : AdqlType::double_precision;
    } else {
      if (is_geometry(a.type)) fail(e.pos, fmt::format("{} cannot be applied to geometry values", f.name));
      v.type = a.type;
      v.source = a.source;
      v.source_table = a.source_table;
    }
    v.sql = fmt::format("{}({}{})", lower(f.name), distinct, a.sql);
    return v;
  }

  struct MathFn {
    std::string_view adql;
    int arity;
    std::string_view pg;
    std::string_view sqlite;
  };

  Val math(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    static constexpr MathFn kFns[] = {
        {"ABS", 1, "abs", "abs"},           {"CEILING", 1, "ceiling", "adql_ceiling"},
        {"DEGREES", 1, "degrees", "adql_degrees"}, {"EXP", 1, "exp", "adql_exp"},
        {"FLOOR", 1, "floor", "adql_floor"}, {"LOG", 1, "ln", "adql_log"},
        {"LOG10", 1, "log", "adql_log10"},  {"PI", 0, "pi", "adql_pi"},
        {"POWER", 2, "power", "adql_power"}, {"RADIANS", 1, "radians", "adql_radians"},
        {"SQRT", 1, "sqrt", "adql_sqrt"},   {"ACOS", 1, "acos", "adql_acos"},
        {"ASIN", 1, "asin", "adql_asin"},   {"ATAN", 1, "atan", "adql_atan"},
        {"ATAN2", 2, "atan2", "adql_atan2"}, {"COS", 1, "cos", "adql_cos"},
        {"SIN", 1, "sin", "adql_sin"},      {"TAN", 1, "tan", "adql_tan"},
        {"COT", 1, "cot", "adql_cot"},
    };
    const std::string& name = f.name;
    if (name == "RAND") {
      if (!f.args.empty()) fail(e.pos, "RAND with a seed is not supported; use RAND()");
      return Val::of(pg() ? "random()" : "adql_rand()", AdqlType::double_precision);
    }
    if (name == "MOD" || name == "ROUND" || name == "TRUNCATE") {
      auto args = arguments(f, ctx, name == "MOD" ? 2 : 1, 2, e.pos);
      for (std::size_t i = 0; i < args.size(); ++i) need_numeric(args[i], f.args[i]->pos, name.c_str());
      Val v = combine(args);
      if (name != "MOD" && args.size() == 2 && args[1].type != AdqlType::unknown && !is_integer(args[1].type)) {
        fail(f.args[1]->pos, fmt::format("the second argument of {} must be an integer", name));
      }
      if (name == "MOD") {
        const bool ints = is_integer(args[0].type) && is_integer(args[1].type);
        v.type = ints ? AdqlType::bigint : AdqlType::double_precision;
        if (!pg()) {
          v.sql = fmt::format("adql_mod({}, {})", args[0].sql, args[1].sql);
        } else if (ints) {
          v.sql = fmt::format("mod({}, {})", args[0].sql, args[1].sql);
        } else {
          v.sql = fmt::format("CAST(mod(CAST({} AS numeric), CAST({} AS numeric)) AS double precision)", args[0].sql,
                              args[1].sql);
        }
        return v;
      }
      v.type = AdqlType::double_precision;
      const std::string digits = args.size() == 2 ? args[1].sql : "0";
      if (pg()) {
        // round/trunc with a digit count exist for numeric only (and round
        // on numeric rounds half away from zero, as on SQLite).
        v.sql = fmt::format("CAST({}(CAST({} AS numeric), {}) AS double precision)", name == "ROUND" ? "round" : "trunc",
                            args[0].sql, digits);
      } else {
        v.sql = fmt::format("adql_{}({}, {})", lower(name), args[0].sql, digits);
      }
      return v;
    }
    for (const auto& fn : kFns) {
      if (fn.adql != name) continue;
      auto args = arguments(f, ctx, fn.arity, fn.arity, e.pos);
      for (std::size_t i = 0; i < args.size(); ++i) need_numeric(args[i], f.args[i]->pos, name.c_str());
      Val v = combine(args);
      v.type = name == "ABS" ? (args[0].type == AdqlType::unknown ? AdqlType::double_precision : args[0].type)
                             : AdqlType::double_precision;
      v.sql = fmt::format("{}({})", pg() ? fn.pg : fn.sqlite, join_sql(args));
      return v;
    }
    if (is_reserved_word(name)) fail(e.pos, fmt::format("{} is not a function", name));
    fail(e.pos, fmt::format("unknown function '{}'", lower(name)));
  }

  // ---------------------------------------------------------------- geometry
  // Drops the optional leading coordinate system argument ('ICRS', '').
  std::vector<const Expr*> geometry_args(const FunctionCall& f, Position pos, std::size_t without_cs,
                                         bool variadic = false) {
    std::vector<const Expr*> args;
    for (const auto& a : f.args) args.push_back(a.get());
    if (!args.empty()) {
      if (const auto* s = std::get_if<StringLiteral>(&args[0]->node)) {
        const std::string cs = upper(s->value);
        if (!cs.empty() && cs.rfind("ICRS", 0) != 0) {
          fail(args[0]->pos, fmt::format("coordinate system '{}' is not supported: this service serves ICRS", s->value));
        }
        args.erase(args.begin());
      }
    }
    if (!variadic && args.size() != without_cs) {
      fail(pos, fmt::format("{} takes {} arguments (after the optional coordinate system), not {}", f.name, without_cs,
                            args.size()));
    }
    return args;
  }

  Val geometry_ctor(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    if (f.distinct) fail(e.pos, fmt::format("DISTINCT is only allowed in aggregate functions, not {}", f.name));
    std::vector<const Expr*> args;
    GeometryCtor ctor;
    ctor.kind = f.name;
    std::vector<Val> nums;
    Val v;
    auto add_numbers = [&](const std::vector<const Expr*>& es) {
      for (const Expr* a : es) {
        Val x = expr(*a, ctx);
        if (x.ctor && x.ctor->kind == "POINT" && f.name != "POINT") {
          // ADQL 2.1: CIRCLE(point, r), BOX(point, w, h), POLYGON(p1, p2, ...).
          for (std::size_t k = 0; k < 2; ++k) {
            Val c;
            c.sql = x.ctor->args[k];
            c.type = AdqlType::double_precision;
            c.origin = x.ctor->origins[k];
            if (x.ctor->constant) {
              const auto& p = std::get<sky::SkyPoint>(*x.ctor->constant);
              c.number = k == 0 ? p.ra : p.dec;
            }
            nums.push_back(std::move(c));
          }
          continue;
        }
        if (x.type == AdqlType::point && f.name != "POINT") {
          // A point-valued column: its coordinates, taken apart in SQL.
          for (const char* part : {"adql_coord1", "adql_coord2"}) {
            Val c;
            c.sql = fmt::format("{}({})", part, x.sql);
            c.type = AdqlType::double_precision;
            c.aggregate = x.aggregate;
            nums.push_back(std::move(c));
          }
          continue;
        }
        if (is_geometry(x.type)) {
          fail(a->pos, fmt::format("{} needs numbers (or POINT(...) calls) as arguments, found a {} value", f.name,
                                   type_name(x.type)));
        }
        need_numeric(x, a->pos, f.name.c_str());
        nums.push_back(std::move(x));
      }
    };
    if (f.name == "POINT") {
      add_numbers(geometry_args(f, e.pos, 2));
      v.type = AdqlType::point;
    } else if (f.name == "CIRCLE") {
      auto a = geometry_args(f, e.pos, 0, true);
      if (a.size() != 2 && a.size() != 3) fail(e.pos, fmt::format("CIRCLE takes (ra, dec, radius) or (point, radius), not {} arguments", a.size()));
      add_numbers(a);
      if (nums.size() != 3) fail(e.pos, "CIRCLE takes (ra, dec, radius) or (point, radius)");
      v.type = AdqlType::circle;
    } else if (f.name == "BOX") {
      auto a = geometry_args(f, e.pos, 0, true);
      if (a.size() != 3 && a.size() != 4) fail(e.pos, fmt::format("BOX takes (ra, dec, width, height) or (point, width, height), not {} arguments", a.size()));
      add_numbers(a);
      if (nums.size() != 4) fail(e.pos, "BOX takes (ra, dec, width, height) or (point, width, height)");
      v.type = AdqlType::region;
    } else {
      add_numbers(geometry_args(f, e.pos, 0, true));
      if (nums.size() < 6 || nums.size() % 2 != 0) {
        fail(e.pos, fmt::format("POLYGON needs at least 3 vertices (6 numbers or 3 points), got {} numbers", nums.size()));
      }
      v.type = AdqlType::polygon;
    }
    bool constant = true;
    std::vector<double> values;
    for (const auto& n : nums) {
      ctor.args.push_back(n.sql);
      ctor.origins.push_back(n.origin);
      v.aggregate = v.aggregate || n.aggregate;
      if (n.number) {
        values.push_back(*n.number);
      } else {
        constant = false;
      }
    }
    if (constant) {
      try {
        if (f.name == "POINT") {
          ctor.constant = geo::make_point(values[0], values[1]);
        } else if (f.name == "CIRCLE") {
          ctor.constant = geo::make_circle(values[0], values[1], values[2]);
        } else if (f.name == "BOX") {
          ctor.constant = geo::make_box(values[0], values[1], values[2], values[3]);
        } else {
          ctor.constant = geo::make_polygon(values);
        }
      } catch (const geo::GeometryError& err) {
        fail(e.pos, fmt::format("invalid {}: {}", f.name, err.what()));
      }
      v.sql = quote_string(geo::format(*ctor.constant));
    } else {
      v.sql = fmt::format("adql_{}({})", lower(f.name), fmt::join(ctor.args, ", "));
    }
    v.ctor = std::move(ctor);
    return v;
  }

  Val geometry_value(const Expr& a, Ctx& ctx, const std::string& fn) {
    Val x = expr(a, ctx);
    if (!is_geometry(x.type)) {
      fail(a.pos, fmt::format("{} needs geometry arguments (POINT, CIRCLE, BOX, POLYGON or a region column), found {}",
                              fn, x.type == AdqlType::unknown ? "NULL" : type_name(x.type)));
    }
    return x;
  }

  Val spatial_predicate(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    auto args = geometry_args(f, e.pos, 2);
    Val a = geometry_value(*args[0], ctx, f.name);
    Val b = geometry_value(*args[1], ctx, f.name);
    const bool contains = f.name == "CONTAINS";
    const bool a_point = a.ctor && a.ctor->kind == "POINT";
    const bool b_point = b.ctor && b.ctor->kind == "POINT";
    Val v;
    v.type = AdqlType::integer;
    v.aggregate = a.aggregate || b.aggregate;
    if (a_point && b.ctor && b.ctor->kind == "CIRCLE") {
      v.sql = fmt::format("adql_contains_point_circle({}, {}, {}, {}, {})", a.ctor->args[0], a.ctor->args[1],
                          b.ctor->args[0], b.ctor->args[1], b.ctor->args[2]);
    } else if (a_point) {
      v.sql = fmt::format("adql_contains_point({}, {}, {})", a.ctor->args[0], a.ctor->args[1], b.sql);
    } else if (!contains && b_point) {
      // INTERSECTS with a point is CONTAINS of that point (ADQL 2.1 4.2.8).
      v.sql = fmt::format("adql_contains_point({}, {}, {})", b.ctor->args[0], b.ctor->args[1], a.sql);
    } else {
      v.sql = fmt::format("adql_{}({}, {})", contains ? "contains" : "intersects", a.sql, b.sql);
    }
    v.spatial = spatial_candidate(contains, a, b, e.pos);
    if (!v.spatial && !contains) v.spatial = spatial_candidate(false, b, a, e.pos);
    return v;
  }

  // A hint for `col_side` tested against the constant `shape_side`.
  std::optional<SpatialCandidate> spatial_candidate(bool contains, const Val& col_side, const Val& shape_side,
                                                    Position pos) {
    SpatialCandidate c;
    c.hint.pos = pos;
    auto from_origin = [&](const ColumnOrigin& o) {
      c.hint.table = o.table->qualified_name();
      c.hint.sql_alias = o.sql_alias;
      c.hint.columns.push_back(o.column->name);
      c.indexed = c.indexed || o.column->indexed;
    };
    auto constant_shape = [](const Val& v) -> std::optional<geo::Geometry> {
      if (v.ctor && v.ctor->constant) return v.ctor->constant;
      return std::nullopt;
    };
    if (const auto shape = constant_shape(shape_side)) {
      if (col_side.ctor && col_side.ctor->kind == "POINT") {
        const auto& o0 = col_side.ctor->origins[0];
        const auto& o1 = col_side.ctor->origins[1];
        if (!o0 || !o1 || o0->sql_alias != o1->sql_alias) return std::nullopt;
        from_origin(*o0);
        c.hint.columns.push_back(o1->column->name);
        c.indexed = c.indexed || o1->column->indexed;
        c.hint.kind = SpatialHint::Kind::point_in_shape;
        c.hint.shape = geo::to_shape(*shape);
        return c;
      }
      if (col_side.origin) {
        from_origin(*col_side.origin);
        c.hint.kind = contains ? SpatialHint::Kind::region_in_shape : SpatialHint::Kind::region_intersects_shape;
        c.hint.shape = geo::to_shape(*shape);
        return c;
      }
      return std::nullopt;
    }
    // CONTAINS(constant, region_col): the region must meet the constant.
    if (contains) {
      if (const auto inner = constant_shape(col_side); inner && shape_side.origin) {
        from_origin(*shape_side.origin);
        c.hint.kind = SpatialHint::Kind::region_contains_shape;
        c.hint.shape = geo::to_shape(*inner);
        return c;
      }
    }
    return std::nullopt;
  }

  Val distance(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    std::vector<const Expr*> args = geometry_args(f, e.pos, 0, true);
    Val v;
    v.type = AdqlType::double_precision;
    if (args.size() == 4) {
      std::vector<Val> n;
      for (const Expr* a : args) {
        n.push_back(expr(*a, ctx));
        need_numeric(n.back(), a->pos, "DISTANCE");
      }
      v.aggregate = combine(n).aggregate;
      v.sql = fmt::format("adql_distance({})", join_sql(n));
      return v;
    }
    if (args.size() != 2) fail(e.pos, fmt::format("DISTANCE takes two points or four numbers, not {} arguments", args.size()));
    Val a = geometry_value(*args[0], ctx, "DISTANCE");
    Val b = geometry_value(*args[1], ctx, "DISTANCE");
    for (const Val* p : {&a, &b}) {
      if (p->type != AdqlType::point) fail(e.pos, fmt::format("DISTANCE needs points, found {}", type_name(p->type)));
    }
    v.aggregate = a.aggregate || b.aggregate;
    if (a.ctor && b.ctor) {
      v.sql = fmt::format("adql_distance({}, {}, {}, {})", a.ctor->args[0], a.ctor->args[1], b.ctor->args[0],
                          b.ctor->args[1]);
    } else {
      v.sql = fmt::format("adql_point_distance({}, {})", a.sql, b.sql);
    }
    return v;
  }

  Val geometry_accessor(const FunctionCall& f, const Expr& e, Ctx& ctx) {
    auto args = arguments(f, ctx, 1, 1, e.pos);
    Val& g = args[0];
    if (!is_geometry(g.type)) {
      fail(f.args[0]->pos, fmt::format("{} needs a geometry argument, found {}", f.name,
                                       g.type == AdqlType::unknown ? "NULL" : type_name(g.type)));
    }
    Val v;
    v.aggregate = g.aggregate;
    if (f.name == "AREA") {
      v.type = AdqlType::double_precision;
      v.sql = fmt::format("adql_area({})", g.sql);
    } else if (f.name == "COORD1" || f.name == "COORD2") {
      if (g.type != AdqlType::point) fail(e.pos, fmt::format("{} needs a point, found {}", f.name, type_name(g.type)));
      v.type = AdqlType::double_precision;
      const std::size_t k = f.name == "COORD1" ? 0 : 1;
      v.sql = g.ctor ? "(" + g.ctor->args[k] + ")" : fmt::format("adql_{}({})", lower(f.name), g.sql);
      if (g.ctor && g.ctor->origins[k]) {
        v.origin = g.ctor->origins[k];
      }
    } else if (f.name == "COORDSYS") {
      v.type = AdqlType::varchar;
      v.sql = g.ctor ? "'ICRS'" : fmt::format("adql_coordsys({})", g.sql);
    } else {
      v.type = AdqlType::point;
      v.sql = fmt::format("adql_centroid({})", g.sql);
    }
    return v;
  }

  const Catalog& catalog_;
  const TranslateOptions& o_;
  std::vector<SpatialHint> hints_;
  int table_counter_ = 0;
  int cte_counter_ = 0;
  int wrap_counter_ = 0;
};

constexpr LanguageFeature kFeatures[] = {
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "POINT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CIRCLE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "BOX"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "POLYGON"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CENTROID"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CONTAINS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "INTERSECTS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "DISTANCE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "AREA"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORD1"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORD2"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORDSYS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "LOWER"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "UPPER"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "ILIKE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "EXCEPT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "INTERSECT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-common-table", "WITH"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-type", "CAST"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-offset", "OFFSET"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-conditional", "COALESCE"},
};

}  // namespace

Translation translate(const Query& query, const Catalog& catalog, const TranslateOptions& options) {
  return Translator(catalog, options).run(query);
}

Translation translate(std::string_view adql, const Catalog& catalog, const TranslateOptions& options) {
  return translate(parse(adql, options.parse), catalog, options);
}

std::span<const LanguageFeature> supported_features() { return kFeatures; }

}  // namespace pixserve::adql
