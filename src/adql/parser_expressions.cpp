// Value expressions and conditions of the ADQL parser (the class is in
// parser_internal.hpp).
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adql/parser_internal.hpp"

namespace pixserve::adql {

namespace {

// Functions with their own syntax or reserved names; any other reserved word
// followed by '(' is an error, any non-reserved identifier a user function.
constexpr auto kBuiltinFunctions = std::to_array<std::string_view>({
    "ABS", "ACOS", "AREA", "ASIN", "ATAN", "ATAN2", "AVG", "BOX", "CEILING", "CENTROID", "CIRCLE", "COALESCE",
    "CONTAINS", "COORD1", "COORD2", "COORDSYS", "COS", "COT", "COUNT", "DEGREES", "DISTANCE", "EXP", "FLOOR",
    "INTERSECTS", "IN_UNIT", "LOG", "LOG10", "LOWER", "MAX", "MIN", "MOD", "PI", "POINT", "POLYGON", "POWER",
    "RADIANS", "RAND", "REGION", "ROUND", "SIN", "SQRT", "SUM", "TAN", "TRUNCATE", "UPPER",
});

bool is_builtin_function(std::string_view upper) {
  return std::find(kBuiltinFunctions.begin(), kBuiltinFunctions.end(), upper) != kBuiltinFunctions.end();
}

bool is_aggregate(std::string_view upper) {
  return upper == "COUNT" || upper == "SUM" || upper == "AVG" || upper == "MIN" || upper == "MAX";
}

}  // namespace

ExprPtr Parser::parse_condition(const char* what) {
  const Position pos = peek().pos;
  if (peek().kind == TokenKind::end || at_keyword("ORDER") || at_keyword("GROUP") || at_keyword("HAVING")) {
    expected(what);
  }
  ExprPtr e = parse_or();
  if (!is_condition(*e)) throw ParseError(pos, fmt::format("expected {}, found a value expression", what));
  return e;
}

ExprPtr Parser::parse_value(const char* what) {
  const Position pos = peek().pos;
  if (at_keyword("FROM") || at_keyword("WHERE") || peek().kind == TokenKind::end) expected(what);
  ExprPtr e = parse_or();
  if (is_condition(*e)) throw ParseError(pos, fmt::format("expected {}, found a condition", what));
  return e;
}

void Parser::require_condition(const Expr& e, const char* context) const {
  if (!is_condition(e)) throw ParseError(e.pos, fmt::format("expected a condition {}, found a value expression", context));
}
void Parser::require_value(const Expr& e, const char* context) const {
  if (is_condition(e)) throw ParseError(e.pos, fmt::format("expected a value {}, found a condition", context));
}

ExprPtr Parser::parse_logical(LogicalOp op) {
  Depth chain(*this, false);
  const Position pos = peek().pos;
  const char* kw = op == LogicalOp::or_ ? "OR" : "AND";
  ExprPtr first = op == LogicalOp::or_ ? parse_logical(LogicalOp::and_) : parse_not();
  if (!at_keyword(kw)) return first;
  Logical l;
  l.op = op;
  require_condition(*first, op == LogicalOp::or_ ? "before OR" : "before AND");
  l.operands.push_back(std::move(first));
  while (accept_keyword(kw)) {
    ExprPtr e = op == LogicalOp::or_ ? parse_logical(LogicalOp::and_) : parse_not();
    require_condition(*e, op == LogicalOp::or_ ? "after OR" : "after AND");
    l.operands.push_back(std::move(e));
  }
  return make_expr(pos, std::move(l));
}

ExprPtr Parser::parse_or() { return parse_logical(LogicalOp::or_); }

ExprPtr Parser::parse_not() {
  if (at_keyword("NOT")) {
    Depth depth(*this);
    const Position pos = next().pos;
    ExprPtr operand = parse_not();
    require_condition(*operand, "after NOT");
    return make_expr(pos, Not{std::move(operand)});
  }
  return parse_predicate();
}

std::optional<CompareOp> Parser::compare_op(const Token& t) {
  if (t.kind != TokenKind::op) return std::nullopt;
  if (t.text == "=") return CompareOp::eq;
  if (t.text == "<>" || t.text == "!=") return CompareOp::ne;
  if (t.text == "<") return CompareOp::lt;
  if (t.text == "<=") return CompareOp::le;
  if (t.text == ">") return CompareOp::gt;
  if (t.text == ">=") return CompareOp::ge;
  return std::nullopt;
}

ExprPtr Parser::parse_predicate() {
  const Position pos = peek().pos;
  ExprPtr left = parse_concat();
  if (auto op = compare_op(peek())) {
    require_value(*left, "before a comparison operator");
    next();
    ExprPtr right = parse_concat();
    require_value(*right, "after a comparison operator");
    return make_expr(pos, Comparison{*op, std::move(left), std::move(right)});
  }
  const bool negated = at_keyword("NOT") &&
                       (at_keyword("BETWEEN", 1) || at_keyword("LIKE", 1) || at_keyword("ILIKE", 1) ||
                        at_keyword("IN", 1));
  if (negated) {
    next();
  } else if (at_keyword("NOT") && !is_condition(*left)) {
    next();
    expected("BETWEEN, LIKE, ILIKE or IN after NOT");
  }
  if (accept_keyword("BETWEEN")) {
    require_value(*left, "before BETWEEN");
    ExprPtr low = parse_concat();
    require_value(*low, "after BETWEEN");
    expect_keyword("AND");
    ExprPtr high = parse_concat();
    require_value(*high, "after BETWEEN ... AND");
    return make_expr(pos, Between{negated, std::move(left), std::move(low), std::move(high)});
  }
  if (at_keyword("LIKE") || at_keyword("ILIKE")) {
    const bool ci = next().upper == "ILIKE";
    require_value(*left, "before LIKE");
    ExprPtr pattern = parse_concat();
    require_value(*pattern, "after LIKE");
    return make_expr(pos, Like{negated, ci, std::move(left), std::move(pattern)});
  }
  if (accept_keyword("IN")) {
    require_value(*left, "before IN");
    expect_op("(");
    if (at_keyword("SELECT") || at_keyword("WITH") || (at_op("(") && starts_query_in_parens())) {
      InQuery in{negated, std::move(left), QueryPtr(parse_query())};
      expect_op(")");
      return make_expr(pos, std::move(in));
    }
    InList in{negated, std::move(left), {}};
    do {
      ExprPtr item = parse_concat();
      require_value(*item, "in an IN list");
      in.items.push_back(std::move(item));
    } while (accept_op(","));
    expect_op(")");
    return make_expr(pos, std::move(in));
  }
  if (negated) expected("BETWEEN, LIKE, ILIKE or IN");
  if (at_keyword("IS")) {
    next();
    require_value(*left, "before IS NULL");
    const bool neg = accept_keyword("NOT");
    expect_keyword("NULL");
    return make_expr(pos, IsNull{neg, std::move(left)});
  }
  return left;
}

bool Parser::starts_query_in_parens() const {
  std::size_t k = 0;
  while (at_op("(", k)) ++k;
  return at_keyword("SELECT", k) || at_keyword("WITH", k);
}

ExprPtr Parser::binary(Position pos, BinaryOp op, ExprPtr l, ExprPtr r) {
  require_value(*l, "before an arithmetic or || operator");
  require_value(*r, "after an arithmetic or || operator");
  return make_expr(pos, Binary{op, std::move(l), std::move(r)});
}

// || binds more loosely than + and - (as in PostgreSQL), so a || b + c is
// a || (b + c); the translator always emits parentheses anyway.
ExprPtr Parser::parse_concat() {
  Depth chain(*this, false);
  const Position pos = peek().pos;
  ExprPtr left = parse_arithmetic(true);
  while (accept_op("||")) {
    chain.step();
    left = binary(pos, BinaryOp::concat, std::move(left), parse_arithmetic(true));
  }
  return left;
}

// + and - (additive) chain * and / terms, which bind more tightly; both
// chains are left-associative.
ExprPtr Parser::parse_arithmetic(bool additive) {
  Depth chain(*this, false);
  const Position pos = peek().pos;
  auto operand = [&] { return additive ? parse_arithmetic(false) : parse_factor(); };
  ExprPtr left = operand();
  while (additive ? at_op("+") || at_op("-") : at_op("*") || at_op("/")) {
    chain.step();
    const std::string& symbol = next().text;
    const BinaryOp op = symbol == "+"   ? BinaryOp::add
                        : symbol == "-" ? BinaryOp::subtract
                        : symbol == "*" ? BinaryOp::multiply
                                        : BinaryOp::divide;
    left = binary(pos, op, std::move(left), operand());
  }
  return left;
}

bool Parser::is_number(const Token& t) {
  return t.kind == TokenKind::integer || t.kind == TokenKind::decimal || t.kind == TokenKind::real ||
         t.kind == TokenKind::hex;
}

ExprPtr Parser::number_literal(const Token& t, bool negative) {
  if (t.kind == TokenKind::integer || t.kind == TokenKind::hex) {
    return make_expr(t.pos, IntegerLiteral{integer_value(t, negative)});
  }
  const double v = real_value(t);
  return make_expr(t.pos, RealLiteral{negative ? -v : v});
}

ExprPtr Parser::parse_factor() {
  Depth depth(*this);
  if (at_op("-")) {
    const Position pos = next().pos;
    // A minus directly before a number is part of the literal (so that
    // -9223372036854775808 and geometry constants stay literals).
    if (is_number(peek())) {
      const Token& t = next();
      ExprPtr lit = number_literal(t, true);
      lit->pos = pos;
      return lit;
    }
    ExprPtr operand = parse_factor();
    require_value(*operand, "after unary minus");
    return make_expr(pos, Negate{std::move(operand)});
  }
  if (accept_op("+")) {
    ExprPtr operand = parse_factor();
    require_value(*operand, "after unary plus");
    return operand;
  }
  return parse_primary();
}

ExprPtr Parser::parse_primary() {
  const Token& t = peek();
  const Position pos = t.pos;
  switch (t.kind) {
    case TokenKind::string: {
      std::string value;
      while (peek().kind == TokenKind::string) value += next().text;  // 'a' 'b' is 'ab'
      return make_expr(pos, StringLiteral{std::move(value)});
    }
    case TokenKind::integer:
    case TokenKind::hex:
    case TokenKind::decimal:
    case TokenKind::real:
      return number_literal(next(), false);
    case TokenKind::delimited_identifier:
      return parse_column_ref();
    case TokenKind::op:
      if (at_op("(")) {
        next();
        Depth depth(*this);
        // Only "(SELECT" starts a scalar subquery: "((SELECT ...) > 1)" is
        // a parenthesised condition around one.
        if (at_keyword("SELECT") || at_keyword("WITH")) {
          ExprPtr e = make_expr(pos, ScalarSubquery{QueryPtr(parse_query())});
          expect_op(")");
          return e;
        }
        ExprPtr e = parse_or();
        expect_op(")");
        return e;
      }
      expected("an expression");
    case TokenKind::identifier:
      break;
    case TokenKind::end:
      expected("an expression");
  }
  const std::string& u = t.upper;
  if (u == "NULL") {
    next();
    return make_expr(pos, NullLiteral{});
  }
  if (u == "CASE") return parse_case();
  if (u == "CAST") return parse_cast();
  if (u == "EXISTS") {
    next();
    expect_op("(");
    ExprPtr e = make_expr(pos, Exists{QueryPtr(parse_query())});
    expect_op(")");
    return e;
  }
  if (at_op("(", 1)) {
    if (is_builtin_function(u) || !is_reserved_word(u)) return parse_function();
  }
  if (is_reserved_word(u)) expected("an expression");
  return parse_column_ref();
}

ExprPtr Parser::parse_column_ref() {
  const Position pos = peek().pos;
  ColumnRef c;
  c.parts.push_back(parse_name("a column name"));
  while (accept_op(".")) c.parts.push_back(parse_name("a column name"));
  if (c.parts.size() > 4) throw ParseError(pos, "a column reference has at most four parts");
  return make_expr(pos, std::move(c));
}

ExprPtr Parser::parse_function() {
  Depth depth(*this);
  const Token& name = next();
  const Position pos = name.pos;
  FunctionCall f;
  f.name = name.upper;
  expect_op("(");
  if (is_aggregate(f.name)) {
    if (f.name == "COUNT" && accept_op("*")) {
      f.star = true;
      expect_op(")");
      return make_expr(pos, std::move(f));
    }
    if (accept_keyword("DISTINCT")) {
      f.distinct = true;
    } else {
      accept_keyword("ALL");
    }
    f.args.push_back(parse_value("an aggregate argument"));
    expect_op(")");
    return make_expr(pos, std::move(f));
  }
  if (!accept_op(")")) {
    do f.args.push_back(parse_value("a function argument"));
    while (accept_op(","));
    expect_op(")");
  }
  return make_expr(pos, std::move(f));
}

ExprPtr Parser::parse_case() {
  Depth depth(*this);
  const Position pos = next().pos;
  Case c;
  if (at_keyword("END")) expected("WHEN");
  const bool simple = !at_keyword("WHEN");
  if (simple) c.operand = parse_value("a CASE operand");
  if (!at_keyword("WHEN")) expected("WHEN");
  while (accept_keyword("WHEN")) {
    WhenClause w;
    w.when = simple ? parse_value("a value after WHEN") : parse_condition("a condition after WHEN");
    expect_keyword("THEN");
    w.then = parse_value("a value after THEN");
    c.whens.push_back(std::move(w));
  }
  if (accept_keyword("ELSE")) c.otherwise = parse_value("a value after ELSE");
  expect_keyword("END");
  return make_expr(pos, std::move(c));
}

ExprPtr Parser::parse_cast() {
  Depth depth(*this);
  const Position pos = next().pos;
  expect_op("(");
  Cast c;
  c.operand = parse_value("a value to CAST");
  expect_keyword("AS");
  const Token& t = peek();
  if (t.kind != TokenKind::identifier) expected("a type name");
  const std::string u = t.upper;
  const Position type_pos = t.pos;
  next();
  bool takes_length = false;
  if (u == "SMALLINT") {
    c.type.kind = CastKind::smallint;
  } else if (u == "INTEGER" || u == "INT") {
    c.type.kind = CastKind::integer;
  } else if (u == "BIGINT") {
    c.type.kind = CastKind::bigint;
  } else if (u == "REAL") {
    c.type.kind = CastKind::real;
  } else if (u == "DOUBLE") {
    expect_keyword("PRECISION");
    c.type.kind = CastKind::double_precision;
  } else if (u == "CHAR" || u == "CHARACTER") {
    c.type.kind = CastKind::char_;
    takes_length = true;
  } else if (u == "VARCHAR") {
    c.type.kind = CastKind::varchar;
    takes_length = true;
  } else if (u == "TIMESTAMP") {
    c.type.kind = CastKind::timestamp;
  } else if (u == "POINT" || u == "CIRCLE" || u == "POLYGON" || u == "REGION" || u == "BOX") {
    throw ParseError(type_pos, fmt::format("CAST to {} is not supported", u));
  } else {
    throw ParseError(type_pos, fmt::format("expected a type name (SMALLINT, INTEGER, BIGINT, REAL, DOUBLE "
                                           "PRECISION, CHAR, VARCHAR, TIMESTAMP), found {}",
                                           describe(t)));
  }
  if (takes_length && accept_op("(")) {
    const Position lpos = peek().pos;
    const std::int64_t n = parse_unsigned("a length");
    if (n < 1 || n > 65535) throw ParseError(lpos, "a CHAR/VARCHAR length must be between 1 and 65535");
    c.type.length = n;
    expect_op(")");
  }
  expect_op(")");
  return make_expr(pos, std::move(c));
}

}  // namespace pixserve::adql
