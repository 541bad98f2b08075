// The SQL writer: one recursive walk over the bound tree, in the order the
// binder read the query, so that generated subquery names (s<n>) and index
// filter calls come in query order.
#include "adql/sql_writer.hpp"

#include <fmt/format.h>

#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace geo = geometry;

namespace {

std::string column_sql(const BoundColumn& c) {
  if (c.full_join_left) return fmt::format("COALESCE({}, {})", column_sql(*c.full_join_left), column_sql(*c.full_join_right));
  const ColumnAccess& a = c.access;
  if (!a.database_column.empty()) return table_alias(a.table_number) + "." + quote_identifier(a.database_column);
  return fmt::format("{}.c{}", table_alias(a.table_number), a.output_index + 1);
}

// The GLOB pattern matching what a LIKE pattern (without escape character)
// matches: % and _ become * and ?, GLOB's own wildcards are bracketed.
std::string like_to_glob(std::string_view pattern) {
  std::string glob;
  for (const char c : pattern) {
    if (c == '%') {
      glob += '*';
    } else if (c == '_') {
      glob += '?';
    } else if (c == '*' || c == '?' || c == '[') {
      glob += {'[', c, ']'};
    } else {
      glob += c;
    }
  }
  return glob;
}

const char* set_keyword(SetOpKind kind) {
  return kind == SetOpKind::union_ ? "UNION" : kind == SetOpKind::intersect ? "INTERSECT" : "EXCEPT";
}

// A query that SQLite can take as an operand of UNION/INTERSECT/EXCEPT as
// it is.
bool is_plain_select(const BoundQuery& q) {
  return std::holds_alternative<BoundSelect>(q.body) && q.with.empty() && q.order_by.empty() && !q.offset &&
         !q.limit;
}

class SqlWriter {
 public:
  SqlWriter(db::Dialect dialect, const std::function<IndexFilter(const SpatialHint&)>& index_filter)
      : pg_(dialect == db::Dialect::postgresql), index_filter_(index_filter) {}

  std::string query(const BoundQuery& q) {
    std::string with;
    for (const auto& c : q.with) {
      with += fmt::format("{}q{} AS ({})", with.empty() ? "WITH " : ", ", c.number, query(*c.query));
    }
    if (!with.empty()) with += " ";
    if (const auto* s = std::get_if<BoundSelect>(&q.body)) return with + select(*s, q);
    if (const auto* op = std::get_if<BoundSetOperation>(&q.body)) return with + set_operation(*op, q);
    const std::string inner = query(*std::get<BoundQueryPtr>(q.body));
    if (q.order_by.empty() && !q.offset && !q.limit) return with + inner;
    return with + wrapped(inner) + order_by(q.order_by) + limit_offset(q.limit, q.offset);
  }

 private:
  std::string wrapped(const std::string& sql) { return fmt::format("SELECT * FROM ({}) AS s{}", sql, ++wrap_counter_); }

  std::string set_operation(const BoundSetOperation& op, const BoundQuery& q) {
    const std::string left = query(*op.left);
    const std::string right = query(*op.right);
    // SQLite accepts neither parentheses around compound members nor
    // ORDER BY/LIMIT inside them, and gives all compound operators the same
    // precedence: operands other than plain SELECTs become subqueries. (The
    // right one is numbered first, as it always has been.)
    const std::string right_operand = is_plain_select(*op.right) ? right : wrapped(right);
    const std::string left_operand = is_plain_select(*op.left) ? left : wrapped(left);
    return fmt::format("{} {}{} {}", left_operand, set_keyword(op.kind), op.all ? " ALL" : "", right_operand) +
           order_by(q.order_by) + limit_offset(q.limit, q.offset);
  }

  std::string order_by(const std::vector<BoundOrderKey>& keys) {
    if (keys.empty()) return {};
    std::string out = " ORDER BY ";
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto& key = keys[i];
      const std::string sql = key.output_index ? fmt::format("c{}", *key.output_index + 1) : expr(*key.expression);
      out += fmt::format("{}{}{}", i ? ", " : "", sql, key.descending ? " DESC" : " ASC");
    }
    return out;
  }

  std::string limit_offset(std::optional<std::int64_t> limit, std::optional<std::int64_t> offset) const {
    std::string out;
    if (limit) out += fmt::format(" LIMIT {}", *limit);
    if (offset) {
      // SQLite has no OFFSET without LIMIT; -1 means no limit there.
      if (!limit && !pg_) out += " LIMIT -1";
      out += fmt::format(" OFFSET {}", *offset);
    }
    return out;
  }

  std::string select(const BoundSelect& s, const BoundQuery& q) {
    std::string from;
    for (const auto& t : s.from) from += (from.empty() ? "" : ", ") + table_reference(t);
    std::string sql = s.distinct ? "SELECT DISTINCT " : "SELECT ";
    for (std::size_t i = 0; i < s.items.size(); ++i) {
      sql += fmt::format("{}{} AS c{}", i ? ", " : "", expr(*s.items[i]), i + 1);
    }
    sql += " FROM " + from;
    if (s.where) {
      // The filters first: an exact one replaces its predicate in `where`.
      std::string filters;
      for (const auto& [hint, predicate] : s.index_hints) {
        if (!index_filter_) break;
        const IndexFilter filter = index_filter_(hint);
        if (filter.sql.empty()) continue;
        filters += " AND (" + filter.sql + ")";
        if (filter.exact) exact_predicates_.insert(predicate);
      }
      sql += " WHERE " + expr(*s.where) + filters;
    }
    for (std::size_t i = 0; i < s.group_by.size(); ++i) sql += (i ? ", " : " GROUP BY ") + expr(*s.group_by[i]);
    if (s.having) sql += " HAVING " + expr(*s.having);
    return sql + order_by(q.order_by) + limit_offset(q.limit, q.offset);
  }

  std::string table_reference(const BoundTableReference& t) {
    if (const auto* b = std::get_if<BoundTable>(&t.node)) {
      const TableDef& table = *b->table;
      const std::string name = table.sql_schema.empty()
                                   ? quote_identifier(table.sql())
                                   : quote_identifier(table.sql_schema) + "." + quote_identifier(table.sql());
      return name + " AS " + table_alias(b->number);
    }
    if (const auto* c = std::get_if<BoundCommonTableScan>(&t.node)) {
      return fmt::format("q{} AS {}", c->common_table_number, table_alias(c->number));
    }
    if (const auto* d = std::get_if<BoundDerivedTable>(&t.node)) {
      return fmt::format("({}) AS {}", query(*d->query), table_alias(d->number));
    }
    const auto& j = std::get<BoundJoin>(t.node);
    const std::string left = table_reference(*j.left);
    std::string right = table_reference(*j.right);
    if (std::holds_alternative<BoundJoin>(j.right->node)) right = "(" + right + ")";
    if (j.kind == JoinKind::cross) return left + " CROSS JOIN " + right;
    const char* kw = j.kind == JoinKind::inner  ? "JOIN"
                     : j.kind == JoinKind::left ? "LEFT OUTER JOIN"
                     : j.kind == JoinKind::right ? "RIGHT OUTER JOIN"
                                                 : "FULL OUTER JOIN";
    std::string on;
    if (j.on) {
      on = expr(*j.on);
    } else if (j.using_columns.empty()) {
      on = "1 = 1";
    } else {
      std::vector<std::string> equal;
      for (const auto& [l, r] : j.using_columns) equal.push_back(fmt::format("{} = {}", column_sql(l), column_sql(r)));
      on = fmt::format("({})", fmt::join(equal, " AND "));
    }
    return fmt::format("{} {} {} ON {}", left, kw, right, on);
  }

  // ---------------------------------------------------------------- expressions
  std::string expr(const BoundExpression& e) {
    return std::visit([&](const auto& n) { return node(n, e); }, e.node);
  }

  std::string list(const std::vector<BoundExpressionPtr>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + expr(*item);
    return out;
  }

  std::string node(const BoundNull&, const BoundExpression&) { return "NULL"; }
  std::string node(const BoundInteger& l, const BoundExpression&) {
    return l.value < 0 ? fmt::format("({})", l.value) : fmt::format("{}", l.value);
  }
  std::string node(const BoundReal& l, const BoundExpression&) {
    return l.value < 0 ? "(" + format_real(l.value) + ")" : format_real(l.value);
  }
  std::string node(const BoundString& l, const BoundExpression&) { return quote_string(l.value); }
  std::string node(const BoundColumn& c, const BoundExpression&) { return column_sql(c); }
  std::string node(const BoundNegate& n, const BoundExpression&) { return "(-" + expr(*n.operand) + ")"; }

  std::string node(const BoundBinary& b, const BoundExpression&) {
    if (b.op == BinaryOp::concat) {
      auto text = [&](const BoundExpression& x) {
        // PostgreSQL has no || between two numbers; make operands text.
        const std::string sql = expr(x);
        return pg_ && !is_string(x.type) && x.type != AdqlType::unknown ? "CAST(" + sql + " AS text)" : sql;
      };
      const std::string l = text(*b.left);
      return "(" + l + " || " + text(*b.right) + ")";
    }
    static constexpr const char* kOps[] = {"+", "-", "*", "/"};
    const std::string l = expr(*b.left);
    // Division by zero is NULL on SQLite and an error on PostgreSQL: NULL on both.
    if (pg_ && b.op == BinaryOp::divide) return fmt::format("({} / NULLIF({}, 0))", l, expr(*b.right));
    return fmt::format("({} {} {})", l, kOps[static_cast<int>(b.op)], expr(*b.right));
  }

  std::string node(const BoundComparison& c, const BoundExpression&) {
    static constexpr const char* kOps[] = {"=", "<>", "<", "<=", ">", ">="};
    const std::string l = expr(*c.left);
    return fmt::format("({} {} {})", l, kOps[static_cast<int>(c.op)], expr(*c.right));
  }

  std::string node(const BoundBetween& b, const BoundExpression&) {
    const std::string x = expr(*b.value);
    const std::string lo = expr(*b.low);
    return fmt::format("({}{} BETWEEN {} AND {})", x, b.negated ? " NOT" : "", lo, expr(*b.high));
  }

  std::string node(const BoundLike& l, const BoundExpression&) {
    const std::string x = expr(*l.value);
    const std::string p = expr(*l.pattern);
    std::string test;
    if (pg_) {
      // No escape character: ADQL has none, PostgreSQL's default is '\'.
      test = fmt::format("{} {} {} ESCAPE ''", x, l.case_insensitive ? "ILIKE" : "LIKE", p);
    } else if (l.case_insensitive) {
      test = fmt::format("{} LIKE {}", x, p);  // SQLite's LIKE ignores ASCII case
    } else if (const auto* literal = std::get_if<BoundString>(&l.pattern->node)) {
      // Case-sensitive LIKE with a literal pattern: the equivalent GLOB
      // (which SQLite can also serve from an index).
      test = fmt::format("{} GLOB {}", x, quote_string(like_to_glob(literal->value)));
    } else {
      test = fmt::format("adql_like({}, {}) = 1", x, p);
    }
    return l.negated ? "(NOT (" + test + "))" : "(" + test + ")";
  }

  std::string node(const BoundInList& in, const BoundExpression&) {
    const std::string x = expr(*in.value);
    return fmt::format("({}{} IN ({}))", x, in.negated ? " NOT" : "", list(in.items));
  }
  std::string node(const BoundInSubquery& in, const BoundExpression&) {
    const std::string x = expr(*in.value);
    return fmt::format("({}{} IN ({}))", x, in.negated ? " NOT" : "", query(*in.query));
  }
  std::string node(const BoundExists& ex, const BoundExpression&) { return "EXISTS (" + query(*ex.query) + ")"; }
  std::string node(const BoundScalarSubquery& s, const BoundExpression&) { return "(" + query(*s.query) + ")"; }
  std::string node(const BoundIsNull& n, const BoundExpression&) {
    return fmt::format("({} IS {}NULL)", expr(*n.value), n.negated ? "NOT " : "");
  }
  std::string node(const BoundNot& n, const BoundExpression&) { return "(NOT " + expr(*n.operand) + ")"; }

  std::string node(const BoundLogical& l, const BoundExpression&) {
    std::vector<std::string> parts;
    for (const auto& operand : l.operands) parts.push_back(expr(*operand));
    return fmt::format("({})", fmt::join(parts, l.op == LogicalOp::and_ ? " AND " : " OR "));
  }

  std::string node(const BoundCase& c, const BoundExpression&) {
    std::string sql = "CASE";
    if (c.operand) sql += " " + expr(*c.operand);
    for (const auto& w : c.whens) {
      sql += " WHEN " + expr(*w.when);
      sql += " THEN " + expr(*w.then);
    }
    if (c.otherwise) sql += " ELSE " + expr(*c.otherwise);
    return sql + " END";
  }

  std::string node(const BoundCast& c, const BoundExpression&) {
    const std::string x = expr(*c.operand);
    const auto len = c.target.length;
    switch (c.target.kind) {
      case CastKind::smallint:
      case CastKind::integer:
      case CastKind::bigint: {
        if (!pg_) return fmt::format("CAST({} AS INTEGER)", x);
        // SQLite truncates a real towards zero where PostgreSQL rounds it to
        // the nearest integer: truncate first, so that both give the same.
        const bool real_operand = is_numeric(c.operand->type) && !is_integer(c.operand->type);
        const char* type = c.target.kind == CastKind::smallint ? "smallint"
                           : c.target.kind == CastKind::integer ? "integer"
                                                                : "bigint";
        return fmt::format("CAST({} AS {})", real_operand ? "trunc(" + x + ")" : x, type);
      }
      case CastKind::real: return fmt::format("CAST({} AS {})", x, pg_ ? "real" : "REAL");
      case CastKind::double_precision: return fmt::format("CAST({} AS {})", x, pg_ ? "double precision" : "REAL");
      case CastKind::char_:
      case CastKind::varchar: {
        const bool fixed = c.target.kind == CastKind::char_;
        if (pg_) {
          // PostgreSQL's char(n) pads with blanks; CHAR here only truncates,
          // as on SQLite (and CHAR alone is CHAR(1)).
          if (fixed) return fmt::format("CAST({} AS varchar({}))", x, len ? *len : 1);
          return len ? fmt::format("CAST({} AS varchar({}))", x, *len) : fmt::format("CAST({} AS varchar)", x);
        }
        // SQLite has no lengths: truncate as PostgreSQL does (CHAR is not padded).
        if (fixed && !len) return fmt::format("substr(CAST({} AS TEXT), 1, 1)", x);
        return len ? fmt::format("substr(CAST({} AS TEXT), 1, {})", x, *len) : fmt::format("CAST({} AS TEXT)", x);
      }
      case CastKind::timestamp:
        return pg_ ? fmt::format("CAST({} AS timestamp)", x) : fmt::format("CAST({} AS TEXT)", x);
    }
    return x;
  }

  std::string node(const BoundAggregate& a, const BoundExpression&) {
    if (!a.argument) return "count(*)";
    return fmt::format("{}({}{})", ascii_lower(a.name), a.distinct ? "DISTINCT " : "", expr(*a.argument));
  }

  std::string node(const BoundFunction& f, const BoundExpression&) {
    const std::string& name = f.name;
    const auto& args = f.args;
    if (name == "LOWER" || name == "UPPER") return fmt::format("{}({})", ascii_lower(name), expr(*args[0]));
    // SQLite's coalesce() wants at least two arguments.
    if (name == "COALESCE") return args.size() == 1 ? expr(*args[0]) : fmt::format("coalesce({})", list(args));
    if (name == "RAND") return pg_ ? "random()" : "adql_rand()";
    if (name == "MOD") {
      const std::string a = expr(*args[0]);
      const std::string b = expr(*args[1]);
      if (!pg_) return fmt::format("adql_mod({}, {})", a, b);
      // A zero divisor gives NULL, as adql_mod does on SQLite.
      if (is_integer(args[0]->type) && is_integer(args[1]->type)) return fmt::format("mod({}, NULLIF({}, 0))", a, b);
      return fmt::format("CAST(mod(CAST({} AS numeric), NULLIF(CAST({} AS numeric), 0)) AS double precision)", a, b);
    }
    if (name == "ROUND" || name == "TRUNCATE") {
      const std::string x = expr(*args[0]);
      const std::string digits = args.size() == 2 ? expr(*args[1]) : "0";
      // round/trunc with a digit count exist for numeric only (and round on
      // numeric rounds half away from zero, as on SQLite).
      if (pg_) {
        return fmt::format("CAST({}(CAST({} AS numeric), {}) AS double precision)", name == "ROUND" ? "round" : "trunc",
                           x, digits);
      }
      return fmt::format("adql_{}({}, {})", ascii_lower(name), x, digits);
    }
    if (name == "DISTANCE") return distance(args);
    if (name == "AREA" || name == "COORD1" || name == "COORD2" || name == "COORDSYS" || name == "CENTROID") {
      const BoundGeometry* constructor = as_constructor(*args[0]);
      if (constructor && name == "COORDSYS") return "'ICRS'";
      if (constructor && name != "AREA" && name != "CENTROID") {
        return "(" + expr(*constructor->args[name == "COORD1" ? 0 : 1]) + ")";
      }
      return fmt::format("adql_{}({})", ascii_lower(name), expr(*args[0]));
    }
    const MathFunction& fn = *math_function(name);
    return fmt::format("{}({})", pg_ ? fn.postgresql : fn.sqlite, list(args));
  }

  // ---------------------------------------------------------------- geometry
  // The numbers of a geometry constructor, a point argument of CIRCLE, BOX
  // or POLYGON taken apart into its two coordinates.
  std::vector<std::string> geometry_numbers(const BoundGeometry& g) {
    std::vector<std::string> out;
    for (const auto& arg : g.args) {
      if (const BoundGeometry* point = as_point_constructor(*arg)) {
        for (auto& n : geometry_numbers(*point)) out.push_back(std::move(n));
      } else if (arg->type == AdqlType::point) {
        const std::string point_sql = expr(*arg);
        out.push_back(fmt::format("adql_coord1({})", point_sql));
        out.push_back(fmt::format("adql_coord2({})", point_sql));
      } else {
        out.push_back(expr(*arg));
      }
    }
    return out;
  }

  std::string node(const BoundGeometry& g, const BoundExpression&) {
    if (g.constant) return quote_string(geo::format(*g.constant));
    return fmt::format("adql_{}({})", ascii_lower(g.name), fmt::join(geometry_numbers(g), ", "));
  }

  // CONTAINS/INTERSECTS on a POINT(...) call pass its numbers, so that no
  // point text is built per row.
  std::string node(const BoundSpatialPredicate& p, const BoundExpression&) {
    if (exact_predicates_.contains(&p)) return "1";  // its index filter keeps exactly its rows
    const BoundGeometry* first_point = as_point_constructor(*p.first);
    const BoundGeometry* second_point = as_point_constructor(*p.second);
    const BoundGeometry* second = as_constructor(*p.second);
    if (first_point && second && second->name == "CIRCLE") {
      const auto a = geometry_numbers(*first_point);
      const auto b = geometry_numbers(*second);
      return fmt::format("adql_contains_point_circle({}, {}, {}, {}, {})", a[0], a[1], b[0], b[1], b[2]);
    }
    if (first_point) {
      const auto a = geometry_numbers(*first_point);
      return fmt::format("adql_contains_point({}, {}, {})", a[0], a[1], expr(*p.second));
    }
    if (!p.contains && second_point) {
      // INTERSECTS with a point is CONTAINS of that point (ADQL 2.1 4.2.8).
      const std::string region = expr(*p.first);
      const auto b = geometry_numbers(*second_point);
      return fmt::format("adql_contains_point({}, {}, {})", b[0], b[1], region);
    }
    const std::string a = expr(*p.first);
    return fmt::format("adql_{}({}, {})", p.contains ? "contains" : "intersects", a, expr(*p.second));
  }

  std::string distance(const std::vector<BoundExpressionPtr>& args) {
    if (args.size() == 4) return fmt::format("adql_distance({})", list(args));
    const BoundGeometry* a = as_constructor(*args[0]);
    const BoundGeometry* b = as_constructor(*args[1]);
    if (a && b) {
      const auto an = geometry_numbers(*a);
      const auto bn = geometry_numbers(*b);
      return fmt::format("adql_distance({}, {}, {}, {})", an[0], an[1], bn[0], bn[1]);
    }
    const std::string first = expr(*args[0]);
    return fmt::format("adql_point_distance({}, {})", first, expr(*args[1]));
  }

  bool pg_;
  const std::function<IndexFilter(const SpatialHint&)>& index_filter_;
  std::set<const BoundSpatialPredicate*> exact_predicates_;
  int wrap_counter_ = 0;
};

}  // namespace

std::string write_sql(const BoundQuery& query, db::Dialect dialect,
                      const std::function<IndexFilter(const SpatialHint&)>& index_filter) {
  return SqlWriter(dialect, index_filter).query(query);
}

}  // namespace pixserve::adql
