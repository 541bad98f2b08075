// The binder's value expressions, conditions and non-geometric functions:
// each node's operands are bound, their types checked and the node's type
// inferred.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "adql/binder.hpp"
#include "adql/lexer.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace {

void check_comparable(const BoundExpression& l, const BoundExpression& r, Position pos) {
  if (!comparable(l.type, r.type)) {
    fail(pos, fmt::format("cannot compare {} with {}", type_name(l.type), type_name(r.type)));
  }
}

// May two results of one CASE or COALESCE be mixed?
bool results_compatible(AdqlType a, AdqlType b) {
  if (a == AdqlType::unknown || b == AdqlType::unknown) return true;
  if (is_geometry(a) && is_geometry(b)) return true;
  return comparable(a, b);
}

// On PostgreSQL the functions whose result may be no finite number are the
// adql_* ones of postgresql_functions.sql, which give NULL there as the C++
// ones do on SQLite rather than an error.
constexpr auto kMathFunctions = std::to_array<MathFunction>({
    {"ABS", 1, "abs", "abs"},
    {"CEILING", 1, "ceiling", "adql_ceiling"},
    {"DEGREES", 1, "degrees", "adql_degrees"},
    {"EXP", 1, "adql_exp", "adql_exp"},
    {"FLOOR", 1, "floor", "adql_floor"},
    {"LOG", 1, "adql_log", "adql_log"},
    {"LOG10", 1, "adql_log10", "adql_log10"},
    {"PI", 0, "pi", "adql_pi"},
    {"POWER", 2, "adql_power", "adql_power"},
    {"RADIANS", 1, "radians", "adql_radians"},
    {"SQRT", 1, "adql_sqrt", "adql_sqrt"},
    {"ACOS", 1, "adql_acos", "adql_acos"},
    {"ASIN", 1, "adql_asin", "adql_asin"},
    {"ATAN", 1, "atan", "adql_atan"},
    {"ATAN2", 2, "atan2", "adql_atan2"},
    {"COS", 1, "cos", "adql_cos"},
    {"SIN", 1, "sin", "adql_sin"},
    {"TAN", 1, "tan", "adql_tan"},
    {"COT", 1, "adql_cot", "adql_cot"},
});

}  // namespace

const MathFunction* math_function(std::string_view name) {
  for (const auto& fn : kMathFunctions) {
    if (fn.name == name) return &fn;
  }
  return nullptr;
}

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

void need_numeric(const BoundExpression& v, Position pos, const char* what) {
  if (v.type != AdqlType::unknown && !is_numeric(v.type)) {
    fail(pos, fmt::format("{} needs a number, found {}", what, type_name(v.type)));
  }
}

BoundExpressionPtr Binder::bind(const Expr& e, ExpressionContext& ctx) {
  return std::visit([&](const auto& n) { return node(n, e, ctx); }, e.node);
}

BoundExpressionPtr Binder::node(const NullLiteral&, const Expr&, ExpressionContext&) {
  return make_bound(AdqlType::unknown, BoundNull{});
}

BoundExpressionPtr Binder::node(const IntegerLiteral& l, const Expr&, ExpressionContext&) {
  const bool fits_integer =
      l.value >= std::numeric_limits<std::int32_t>::min() && l.value <= std::numeric_limits<std::int32_t>::max();
  auto v = make_bound(fits_integer ? AdqlType::integer : AdqlType::bigint, BoundInteger{l.value});
  v->constant_number = static_cast<double>(l.value);
  return v;
}

BoundExpressionPtr Binder::node(const RealLiteral& l, const Expr&, ExpressionContext&) {
  auto v = make_bound(AdqlType::double_precision, BoundReal{l.value});
  v->constant_number = l.value;
  return v;
}

BoundExpressionPtr Binder::node(const StringLiteral& l, const Expr&, ExpressionContext&) {
  return make_bound(AdqlType::varchar, BoundString{l.value});
}

BoundExpressionPtr Binder::node(const Star&, const Expr& e, ExpressionContext&) {
  fail(e.pos, "'*' is only allowed in a select list and in COUNT(*)");
}

BoundExpressionPtr Binder::node(const Negate& n, const Expr& e, ExpressionContext& ctx) {
  auto a = bind(*n.operand, ctx);
  need_numeric(*a, e.pos, "unary minus");
  const AdqlType type = a->type;
  std::optional<double> number;
  if (a->constant_number) number = -*a->constant_number;
  auto v = make_bound(type, BoundNegate{std::move(a)});
  v->constant_number = number;
  return v;
}

BoundExpressionPtr Binder::node(const Binary& b, const Expr& e, ExpressionContext& ctx) {
  auto l = bind(*b.left, ctx);
  auto r = bind(*b.right, ctx);
  if (b.op == BinaryOp::concat) {
    for (const auto* x : {l.get(), r.get()}) {
      if (is_geometry(x->type)) fail(e.pos, "|| cannot concatenate geometry values");
    }
    return make_bound(AdqlType::varchar, BoundBinary{b.op, std::move(l), std::move(r)});
  }
  static constexpr const char* kOps[] = {"+", "-", "*", "/"};
  const char* op = kOps[static_cast<int>(b.op)];
  need_numeric(*l, b.left->pos, fmt::format("operator {}", op).c_str());
  need_numeric(*r, b.right->pos, fmt::format("operator {}", op).c_str());
  AdqlType type = unify(l->type, r->type);
  if (is_integer(l->type) && is_integer(r->type)) type = std::max(l->type, r->type);
  return make_bound(type, BoundBinary{b.op, std::move(l), std::move(r)});
}

BoundExpressionPtr Binder::node(const Comparison& c, const Expr& e, ExpressionContext& ctx) {
  auto l = bind(*c.left, ctx);
  auto r = bind(*c.right, ctx);
  check_comparable(*l, *r, e.pos);
  return make_bound(AdqlType::unknown, BoundComparison{c.op, std::move(l), std::move(r)});
}

BoundExpressionPtr Binder::node(const Between& b, const Expr& e, ExpressionContext& ctx) {
  auto x = bind(*b.value, ctx);
  auto lo = bind(*b.low, ctx);
  auto hi = bind(*b.high, ctx);
  check_comparable(*x, *lo, e.pos);
  check_comparable(*x, *hi, e.pos);
  return make_bound(AdqlType::unknown, BoundBetween{b.negated, std::move(x), std::move(lo), std::move(hi)});
}

BoundExpressionPtr Binder::node(const Like& l, const Expr& e, ExpressionContext& ctx) {
  auto x = bind(*l.value, ctx);
  auto p = bind(*l.pattern, ctx);
  for (const auto* s : {x.get(), p.get()}) {
    if (s->type != AdqlType::unknown && !is_string(s->type)) {
      fail(e.pos, fmt::format("{} needs string operands, found {}", l.case_insensitive ? "ILIKE" : "LIKE",
                              type_name(s->type)));
    }
  }
  return make_bound(AdqlType::unknown, BoundLike{l.negated, l.case_insensitive, std::move(x), std::move(p)});
}

BoundExpressionPtr Binder::node(const InList& in, const Expr&, ExpressionContext& ctx) {
  BoundInList list{in.negated, bind(*in.value, ctx), {}};
  for (const auto& item : in.items) {
    auto i = bind(*item, ctx);
    check_comparable(*list.value, *i, item->pos);
    list.items.push_back(std::move(i));
  }
  return make_bound(AdqlType::unknown, std::move(list));
}

BoundQuery Binder::subquery(const Query& q, ExpressionContext& ctx) {
  return bind_query(q, ctx.scope, ctx.common_tables, std::nullopt);
}

BoundExpressionPtr Binder::node(const InQuery& in, const Expr& e, ExpressionContext& ctx) {
  auto x = bind(*in.value, ctx);
  auto sub = std::make_unique<BoundQuery>(subquery(*in.query, ctx));
  const auto& columns = sub->columns;
  if (columns.size() != 1) fail(e.pos, fmt::format("the subquery of IN must return one column, not {}", columns.size()));
  if (!comparable(x->type, columns[0].type)) {
    fail(e.pos, fmt::format("cannot compare {} with {}", type_name(x->type), type_name(columns[0].type)));
  }
  return make_bound(AdqlType::unknown, BoundInSubquery{in.negated, std::move(x), std::move(sub)});
}

BoundExpressionPtr Binder::node(const Exists& ex, const Expr&, ExpressionContext& ctx) {
  return make_bound(AdqlType::unknown, BoundExists{std::make_unique<BoundQuery>(subquery(*ex.query, ctx))});
}

BoundExpressionPtr Binder::node(const ScalarSubquery& s, const Expr& e, ExpressionContext& ctx) {
  auto sub = std::make_unique<BoundQuery>(subquery(*s.query, ctx));
  if (sub->columns.size() != 1) {
    fail(e.pos, fmt::format("a scalar subquery must return one column, not {}", sub->columns.size()));
  }
  const AdqlType type = sub->columns[0].type;
  return make_bound(type, BoundScalarSubquery{std::move(sub)});
}

BoundExpressionPtr Binder::node(const IsNull& n, const Expr&, ExpressionContext& ctx) {
  return make_bound(AdqlType::unknown, BoundIsNull{n.negated, bind(*n.value, ctx)});
}

BoundExpressionPtr Binder::node(const Not& n, const Expr&, ExpressionContext& ctx) {
  return make_bound(AdqlType::unknown, BoundNot{bind(*n.operand, ctx)});
}

BoundExpressionPtr Binder::node(const Logical& l, const Expr&, ExpressionContext& ctx) {
  BoundLogical logical{l.op, {}};
  for (const auto& operand : l.operands) logical.operands.push_back(bind(*operand, ctx));
  return make_bound(AdqlType::unknown, std::move(logical));
}

BoundExpressionPtr Binder::node(const Case& c, const Expr&, ExpressionContext& ctx) {
  BoundCase bound;
  AdqlType type = AdqlType::unknown;
  auto add_result = [&](const Expr& e) {
    auto result = bind(e, ctx);
    if (!results_compatible(type, result->type)) {
      fail(e.pos, fmt::format("CASE results mix {} and {}", type_name(type), type_name(result->type)));
    }
    type = unify(type, result->type);
    return result;
  };
  if (c.operand) bound.operand = bind(*c.operand, ctx);
  for (const auto& w : c.whens) {
    auto when = bind(*w.when, ctx);
    if (bound.operand) check_comparable(*bound.operand, *when, w.when->pos);
    bound.whens.push_back({std::move(when), add_result(*w.then)});
  }
  if (c.otherwise) bound.otherwise = add_result(*c.otherwise);
  return make_bound(type, std::move(bound));
}

BoundExpressionPtr Binder::node(const Cast& c, const Expr& e, ExpressionContext& ctx) {
  auto x = bind(*c.operand, ctx);
  if (is_geometry(x->type)) fail(e.pos, "geometry values cannot be CAST");
  static constexpr AdqlType kTypes[] = {AdqlType::smallint, AdqlType::integer,          AdqlType::bigint,
                                        AdqlType::real,     AdqlType::double_precision, AdqlType::char_,
                                        AdqlType::varchar,  AdqlType::timestamp};
  return make_bound(kTypes[static_cast<int>(c.type.kind)], BoundCast{c.type, std::move(x)});
}

// ---------------------------------------------------------------- functions
BoundExpressionPtr Binder::node(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  const std::string& name = f.name;
  if (name == "COUNT" || name == "SUM" || name == "AVG" || name == "MIN" || name == "MAX") {
    return aggregate(f, e, ctx);
  }
  if (name == "POINT" || name == "CIRCLE" || name == "BOX" || name == "POLYGON") {
    return geometry_constructor(f, e, ctx);
  }
  if (name == "CONTAINS" || name == "INTERSECTS") return spatial_predicate(f, e, ctx);
  if (name == "DISTANCE") return distance(f, e, ctx);
  if (name == "AREA" || name == "COORD1" || name == "COORD2" || name == "COORDSYS" || name == "CENTROID") {
    return geometry_accessor(f, e, ctx);
  }
  if (name == "REGION") fail(e.pos, "REGION is not supported (it was removed in ADQL 2.1)");
  if (name == "IN_UNIT") fail(e.pos, "IN_UNIT is not supported by this service");
  if (name == "LOWER" || name == "UPPER") {
    auto args = arguments(f, ctx, 1, 1, e.pos);
    if (args[0]->type != AdqlType::unknown && !is_string(args[0]->type)) {
      fail(e.pos, fmt::format("{} needs a string, found {}", name, type_name(args[0]->type)));
    }
    return make_bound(AdqlType::varchar, BoundFunction{name, std::move(args)});
  }
  if (name == "COALESCE") {
    auto args = arguments(f, ctx, 1, 1000, e.pos);
    AdqlType type = AdqlType::unknown;
    for (const auto& a : args) {
      if (!results_compatible(type, a->type)) fail(e.pos, "COALESCE arguments have incompatible types");
      type = unify(type, a->type);
    }
    return make_bound(type, BoundFunction{name, std::move(args)});
  }
  return math(f, e, ctx);
}

std::vector<BoundExpressionPtr> Binder::arguments(const FunctionCall& f, ExpressionContext& ctx, std::size_t min,
                                                  std::size_t max, Position pos) {
  if (f.args.size() < min || f.args.size() > max) {
    const std::string range = min == max ? fmt::format("{}", min)
                              : max >= 1000 ? fmt::format("at least {}", min)
                                            : fmt::format("{} to {}", min, max);
    fail(pos, fmt::format("{} takes {} argument{}, not {}", f.name, range, max == 1 && min == 1 ? "" : "s",
                          f.args.size()));
  }
  if (f.distinct) fail(pos, fmt::format("DISTINCT is only allowed in aggregate functions, not {}", f.name));
  std::vector<BoundExpressionPtr> out;
  for (const auto& a : f.args) out.push_back(bind(*a, ctx));
  return out;
}

BoundExpressionPtr Binder::aggregate(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  if (!ctx.allow_aggregate) fail(e.pos, fmt::format("aggregate function {} is not allowed in {}", f.name, ctx.clause));
  if (ctx.in_aggregate) fail(e.pos, fmt::format("aggregate function {} cannot be nested in another", f.name));
  if (ctx.aggregate_seen) *ctx.aggregate_seen = true;
  if (f.star) return make_bound(AdqlType::bigint, BoundAggregate{f.name, false, nullptr});
  if (f.args.size() != 1) fail(e.pos, fmt::format("{} takes one argument", f.name));
  ExpressionContext inner = ctx;
  inner.in_aggregate = true;
  auto a = bind(*f.args[0], inner);
  AdqlType type = AdqlType::bigint;  // COUNT
  std::optional<ColumnDef> source;
  std::string source_table;
  if (f.name == "SUM" || f.name == "AVG") {
    need_numeric(*a, e.pos, f.name.c_str());
    type = f.name == "SUM" && is_integer(a->type) ? AdqlType::bigint : AdqlType::double_precision;
  } else if (f.name != "COUNT") {
    // MIN and MAX keep the type and metadata of their argument.
    if (is_geometry(a->type)) fail(e.pos, fmt::format("{} cannot be applied to geometry values", f.name));
    type = a->type;
    source = a->source;
    source_table = a->source_table;
  }
  auto v = make_bound(type, BoundAggregate{f.name, f.distinct, std::move(a)});
  v->source = std::move(source);
  v->source_table = std::move(source_table);
  return v;
}

BoundExpressionPtr Binder::math(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  const std::string& name = f.name;
  if (name == "RAND") {
    if (!f.args.empty()) fail(e.pos, "RAND with a seed is not supported; use RAND()");
    return make_bound(AdqlType::double_precision, BoundFunction{name, {}});
  }
  if (name == "MOD" || name == "ROUND" || name == "TRUNCATE") {
    auto args = arguments(f, ctx, name == "MOD" ? 2 : 1, 2, e.pos);
    for (std::size_t i = 0; i < args.size(); ++i) need_numeric(*args[i], f.args[i]->pos, name.c_str());
    if (name != "MOD" && args.size() == 2 && args[1]->type != AdqlType::unknown && !is_integer(args[1]->type)) {
      fail(f.args[1]->pos, fmt::format("the second argument of {} must be an integer", name));
    }
    AdqlType type = AdqlType::double_precision;
    if (name == "MOD" && is_integer(args[0]->type) && is_integer(args[1]->type)) type = AdqlType::bigint;
    return make_bound(type, BoundFunction{name, std::move(args)});
  }
  if (const MathFunction* fn = math_function(name)) {
    auto args = arguments(f, ctx, fn->arity, fn->arity, e.pos);
    for (std::size_t i = 0; i < args.size(); ++i) need_numeric(*args[i], f.args[i]->pos, name.c_str());
    AdqlType type = AdqlType::double_precision;
    if (name == "ABS" && args[0]->type != AdqlType::unknown) type = args[0]->type;
    return make_bound(type, BoundFunction{name, std::move(args)});
  }
  if (is_reserved_word(name)) fail(e.pos, fmt::format("{} is not a function", name));
  fail(e.pos, fmt::format("unknown function '{}'", ascii_lower(name)));
}

}  // namespace pixserve::adql
