#include "adql/parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adql/errors.hpp"
#include "adql/lexer.hpp"

namespace pixserve::adql {

bool is_condition(const Expr& e) {
  return std::holds_alternative<Comparison>(e.node) || std::holds_alternative<Between>(e.node) ||
         std::holds_alternative<Like>(e.node) || std::holds_alternative<InList>(e.node) ||
         std::holds_alternative<InQuery>(e.node) || std::holds_alternative<Exists>(e.node) ||
         std::holds_alternative<IsNull>(e.node) || std::holds_alternative<Not>(e.node) ||
         std::holds_alternative<Logical>(e.node);
}

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

template <typename T>
ExprPtr make_expr(Position pos, T node) {
  return ExprPtr(Expr{pos, std::move(node)});
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options) : t_(std::move(tokens)), options_(options) {}

  Query parse_statement() {
    Query q = parse_query();
    accept_op(";");
    if (peek().kind != TokenKind::end) {
      // The most common reasons for leftovers get a pointed message.
      if (at_op(")")) fail("unbalanced ')'");
      expected("end of query");
    }
    return q;
  }

 private:
  // ---------------------------------------------------------------- tokens
  const Token& peek(std::size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool at_keyword(std::string_view kw, std::size_t k = 0) const {
    const Token& t = peek(k);
    return t.kind == TokenKind::identifier && t.upper == kw;
  }
  bool accept_keyword(std::string_view kw) {
    if (!at_keyword(kw)) return false;
    next();
    return true;
  }
  void expect_keyword(std::string_view kw) {
    if (!accept_keyword(kw)) expected(std::string(kw));
  }
  bool at_op(std::string_view op, std::size_t k = 0) const {
    const Token& t = peek(k);
    return t.kind == TokenKind::op && t.text == op;
  }
  bool accept_op(std::string_view op) {
    if (!at_op(op)) return false;
    next();
    return true;
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) expected(fmt::format("'{}'", op));
  }

  [[noreturn]] void fail(const std::string& msg) const { throw ParseError(peek().pos, msg); }
  [[noreturn]] void expected(const std::string& what) const {
    const Token& t = peek();
    std::string msg = fmt::format("expected {}, found {}", what, describe(t));
    if (t.kind == TokenKind::identifier && is_reserved_word(t.upper) && !is_structural(t.upper)) {
      msg += fmt::format(" (a reserved word: write \"{}\" to use it as a name)", t.text);
    }
    throw ParseError(t.pos, msg);
  }

  // Keywords that shape a query; naming them in a hint about delimited
  // identifiers would only confuse.
  static bool is_structural(std::string_view u) {
    static constexpr auto kWords = std::to_array<std::string_view>({
        "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "BY", "OFFSET", "TOP", "UNION", "INTERSECT",
        "EXCEPT", "WITH", "AS", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS",
        "NATURAL", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "EXISTS", "CASE", "WHEN",
        "THEN", "ELSE", "END", "ALL", "DISTINCT", "ASC", "DESC", "CAST",
    });
    return std::find(kWords.begin(), kWords.end(), u) != kWords.end();
  }

  // ---------------------------------------------------------------- depth
  // Every recursive entry, and every link of an operator chain, counts one
  // level: the depth bound is then a bound on the depth of the tree built.
  class Depth {
   public:
    explicit Depth(Parser& p, bool step_now = true) : p_(p) {
      if (step_now) step();
    }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
    ~Depth() { p_.depth_ -= n_; }
    void step() {
      ++n_;
      if (++p_.depth_ > p_.options_.max_depth) {
        p_.fail(fmt::format("query is nested too deeply (more than {} levels)", p_.options_.max_depth));
      }
    }

   private:
    Parser& p_;
    int n_ = 0;
  };

  // ---------------------------------------------------------------- names
  bool at_name() const {
    const Token& t = peek();
    return t.kind == TokenKind::delimited_identifier ||
           (t.kind == TokenKind::identifier && !is_reserved_word(t.upper));
  }

  Identifier parse_name(const char* what) {
    const Token& t = peek();
    if (t.kind == TokenKind::delimited_identifier) {
      next();
      return {t.text, true, t.pos};
    }
    if (t.kind == TokenKind::identifier) {
      if (is_reserved_word(t.upper)) {
        fail(fmt::format("expected {}, found reserved word '{}' (write \"{}\" to use it as a name)", what, t.text,
                         t.text));
      }
      next();
      return {t.text, false, t.pos};
    }
    expected(what);
  }

  std::optional<Identifier> parse_optional_alias() {
    if (accept_keyword("AS")) return parse_name("an alias");
    if (at_name()) return parse_name("an alias");
    return std::nullopt;
  }

  // ---------------------------------------------------------------- queries
  Query parse_query() {
    Depth depth(*this);
    Query q;
    q.pos = peek().pos;
    if (accept_keyword("WITH")) {
      do {
        WithItem w;
        w.name = parse_name("a common table expression name");
        if (accept_op("(")) {
          do w.columns.push_back(parse_name("a column name"));
          while (accept_op(","));
          expect_op(")");
        }
        expect_keyword("AS");
        expect_op("(");
        w.query = QueryPtr(parse_query());
        expect_op(")");
        q.with.push_back(std::move(w));
      } while (accept_op(","));
    }
    Query body = parse_set_expression();
    q.body = std::move(body.body);
    if (at_keyword("ORDER")) {
      next();
      expect_keyword("BY");
      do {
        OrderItem item;
        item.expr = parse_value("an ORDER BY expression");
        if (accept_keyword("DESC")) {
          item.descending = true;
        } else {
          accept_keyword("ASC");
        }
        q.order_by.push_back(std::move(item));
      } while (accept_op(","));
    }
    if (accept_keyword("OFFSET")) q.offset = parse_unsigned("a row count after OFFSET");
    return q;
  }

  Query parse_set_expression() {
    Depth chain(*this, false);
    Query left = parse_intersect_term();
    while (at_keyword("UNION") || at_keyword("EXCEPT")) {
      chain.step();
      const Position pos = peek().pos;
      SetOperation op;
      op.kind = next().upper == "UNION" ? SetOpKind::union_ : SetOpKind::except;
      op.all = accept_keyword("ALL");
      if (!op.all) accept_keyword("DISTINCT");
      op.left = QueryPtr(std::move(left));
      op.right = QueryPtr(parse_intersect_term());
      left = Query{};
      left.pos = pos;
      left.body = std::move(op);
    }
    return left;
  }

  Query parse_intersect_term() {
    Depth chain(*this, false);
    Query left = parse_query_primary();
    while (at_keyword("INTERSECT")) {
      chain.step();
      const Position pos = next().pos;
      SetOperation op;
      op.kind = SetOpKind::intersect;
      op.all = accept_keyword("ALL");
      if (!op.all) accept_keyword("DISTINCT");
      op.left = QueryPtr(std::move(left));
      op.right = QueryPtr(parse_query_primary());
      left = Query{};
      left.pos = pos;
      left.body = std::move(op);
    }
    return left;
  }

  Query parse_query_primary() {
    Query q;
    q.pos = peek().pos;
    if (accept_op("(")) {
      Depth depth(*this);
      q.body = QueryPtr(parse_query());
      expect_op(")");
      return q;
    }
    if (!at_keyword("SELECT")) expected("SELECT");
    q.body = Box<Select>(parse_select());
    return q;
  }

  std::int64_t parse_unsigned(const char* what) {
    const Token& t = peek();
    if (t.kind != TokenKind::integer && t.kind != TokenKind::hex) expected(what);
    next();
    return integer_value(t, false);
  }

  std::int64_t integer_value(const Token& t, bool negative) const {
    std::string_view digits = t.text;
    int base = 10;
    if (t.kind == TokenKind::hex) {
      digits.remove_prefix(2);
      base = 16;
    }
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    const std::uint64_t limit = negative ? std::uint64_t(std::numeric_limits<std::int64_t>::max()) + 1
                                         : std::uint64_t(std::numeric_limits<std::int64_t>::max());
    if (ec != std::errc() || ptr != digits.data() + digits.size() || v > limit) {
      throw ParseError(t.pos, fmt::format("integer literal {}{} is out of range", negative ? "-" : "", t.text));
    }
    if (!negative) return static_cast<std::int64_t>(v);
    return v == limit ? std::numeric_limits<std::int64_t>::min() : -static_cast<std::int64_t>(v);
  }

  double real_value(const Token& t) const {
    double v = 0.0;
    const char* end = t.text.data() + t.text.size();
    const auto [ptr, ec] = std::from_chars(t.text.data(), end, v);
    if (ec != std::errc() || ptr != end) {
      throw ParseError(t.pos, fmt::format("numeric literal {} is out of range", t.text));
    }
    return v;
  }

  Select parse_select() {
    Select s;
    s.pos = peek().pos;
    expect_keyword("SELECT");
    if (accept_keyword("DISTINCT")) {
      s.quantifier = Quantifier::distinct;
    } else if (accept_keyword("ALL")) {
      s.quantifier = Quantifier::all;
    }
    if (accept_keyword("TOP")) s.top = parse_unsigned("a row count after TOP");
    std::optional<Token> implicit_alias;  // the last item's alias written without AS
    do {
      implicit_alias.reset();
      const bool plain = !at_op("*");
      s.items.push_back(parse_select_item());
      if (plain && s.items.back().alias && !at_keyword("AS", 0)) {
        const auto& a = *s.items.back().alias;
        if (t_[i_ - 1].pos.line == a.pos.line && t_[i_ - 1].pos.column == a.pos.column) implicit_alias = t_[i_ - 1];
      }
    } while (accept_op(","));
    if (!at_keyword("FROM")) {
      // "SELECT a FORM t": FORM was read as an alias of a; a name right
      // after it can only mean the alias was a misspelt FROM.
      if (implicit_alias && (peek().kind == TokenKind::identifier || peek().kind == TokenKind::delimited_identifier)) {
        throw ParseError(implicit_alias->pos, fmt::format("expected FROM, found {}", describe(*implicit_alias)));
      }
      expected("FROM");
    }
    next();
    do s.from.push_back(parse_table_reference());
    while (accept_op(","));
    if (accept_keyword("WHERE")) s.where = parse_condition("a condition after WHERE");
    if (at_keyword("GROUP")) {
      next();
      expect_keyword("BY");
      do s.group_by.push_back(parse_value("a GROUP BY expression"));
      while (accept_op(","));
    }
    if (accept_keyword("HAVING")) s.having = parse_condition("a condition after HAVING");
    return s;
  }

  // `t.*` / `s.t.*`: a name chain ending in ".*".
  bool at_qualified_star() const {
    std::size_t k = 0;
    for (;;) {
      const Token& t = peek(k);
      if (t.kind != TokenKind::identifier && t.kind != TokenKind::delimited_identifier) return false;
      if (!at_op(".", k + 1)) return false;
      if (at_op("*", k + 2)) return true;
      k += 2;
    }
  }

  SelectItem parse_select_item() {
    SelectItem item;
    const Position pos = peek().pos;
    if (accept_op("*")) {
      item.expr = make_expr(pos, Star{});
      return item;
    }
    if (at_qualified_star()) {
      Star star;
      while (!at_op("*")) {
        star.qualifier.push_back(parse_name("a table name"));
        expect_op(".");
      }
      next();
      item.expr = make_expr(pos, std::move(star));
      return item;
    }
    item.expr = parse_value("a select list item");
    item.alias = parse_optional_alias();
    return item;
  }

  // ---------------------------------------------------------------- FROM
  TableRef parse_table_reference() {
    Depth chain(*this, false);
    TableRef left = parse_table_primary();
    for (;;) {
      const Position pos = peek().pos;
      Join j;
      if (accept_keyword("CROSS")) {
        expect_keyword("JOIN");
        j.kind = JoinKind::cross;
      } else {
        const bool natural = accept_keyword("NATURAL");
        if (accept_keyword("INNER")) {
          j.kind = JoinKind::inner;
        } else if (accept_keyword("LEFT")) {
          j.kind = JoinKind::left;
          accept_keyword("OUTER");
        } else if (accept_keyword("RIGHT")) {
          j.kind = JoinKind::right;
          accept_keyword("OUTER");
        } else if (accept_keyword("FULL")) {
          j.kind = JoinKind::full;
          accept_keyword("OUTER");
        } else if (!at_keyword("JOIN")) {
          if (natural) expected("JOIN");
          return left;
        }
        expect_keyword("JOIN");
        j.natural = natural;
      }
      chain.step();
      j.left = TableRefPtr(std::move(left));
      j.right = TableRefPtr(parse_table_primary());
      if (j.kind != JoinKind::cross && !j.natural) {
        if (accept_keyword("ON")) {
          j.on = parse_condition("a join condition after ON");
        } else if (accept_keyword("USING")) {
          expect_op("(");
          do j.using_columns.push_back(parse_name("a column name"));
          while (accept_op(","));
          expect_op(")");
        } else {
          expected("ON or USING");
        }
      }
      left = TableRef{pos, std::move(j)};
    }
  }

  TableRef parse_table_primary() {
    const Position pos = peek().pos;
    if (at_op("(")) {
      Depth depth(*this);
      // A derived table starts with SELECT/WITH after the parentheses; a
      // parenthesised join with a table name.
      std::size_t k = 0;
      while (at_op("(", k)) ++k;
      if (at_keyword("SELECT", k) || at_keyword("WITH", k)) {
        next();
        DerivedTable d;
        d.query = QueryPtr(parse_query());
        expect_op(")");
        accept_keyword("AS");
        if (!at_name()) expected("an alias for the subquery (ADQL requires one)");
        d.alias = parse_name("an alias");
        return TableRef{pos, std::move(d)};
      }
      next();
      TableRef inner = parse_table_reference();
      expect_op(")");
      return inner;
    }
    NamedTable t;
    t.name.push_back(parse_name("a table name"));
    while (accept_op(".")) t.name.push_back(parse_name("a table name"));
    if (t.name.size() > 3) throw ParseError(pos, "a table name has at most three parts (catalog.schema.table)");
    t.alias = parse_optional_alias();
    return TableRef{pos, std::move(t)};
  }

  // ---------------------------------------------------------------- expressions
  ExprPtr parse_condition(const char* what) {
    const Position pos = peek().pos;
    if (peek().kind == TokenKind::end || at_keyword("ORDER") || at_keyword("GROUP") || at_keyword("HAVING")) {
      expected(what);
    }
    ExprPtr e = parse_or();
    if (!is_condition(*e)) throw ParseError(pos, fmt::format("expected {}, found a value expression", what));
    return e;
  }

  ExprPtr parse_value(const char* what) {
    const Position pos = peek().pos;
    if (at_keyword("FROM") || at_keyword("WHERE") || peek().kind == TokenKind::end) expected(what);
    ExprPtr e = parse_or();
    if (is_condition(*e)) throw ParseError(pos, fmt::format("expected {}, found a condition", what));
    return e;
  }

  void require_condition(const Expr& e, const char* context) const {
    if (!is_condition(e)) throw ParseError(e.pos, fmt::format("expected a condition {}, found a value expression", context));
  }
  void require_value(const Expr& e, const char* context) const {
    if (is_condition(e)) throw ParseError(e.pos, fmt::format("expected a value {}, found a condition", context));
  }

  ExprPtr parse_logical(LogicalOp op) {
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

  ExprPtr parse_or() { return parse_logical(LogicalOp::or_); }

  ExprPtr parse_not() {
    if (at_keyword("NOT")) {
      Depth depth(*this);
      const Position pos = next().pos;
      ExprPtr operand = parse_not();
      require_condition(*operand, "after NOT");
      return make_expr(pos, Not{std::move(operand)});
    }
    return parse_predicate();
  }

  static std::optional<CompareOp> compare_op(const Token& t) {
    if (t.kind != TokenKind::op) return std::nullopt;
    if (t.text == "=") return CompareOp::eq;
    if (t.text == "<>" || t.text == "!=") return CompareOp::ne;
    if (t.text == "<") return CompareOp::lt;
    if (t.text == "<=") return CompareOp::le;
    if (t.text == ">") return CompareOp::gt;
    if (t.text == ">=") return CompareOp::ge;
    return std::nullopt;
  }

  ExprPtr parse_predicate() {
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

  bool starts_query_in_parens() const {
    std::size_t k = 0;
    while (at_op("(", k)) ++k;
    return at_keyword("SELECT", k) || at_keyword("WITH", k);
  }

  ExprPtr binary(Position pos, BinaryOp op, ExprPtr l, ExprPtr r) {
    require_value(*l, "before an arithmetic or || operator");
    require_value(*r, "after an arithmetic or || operator");
    return make_expr(pos, Binary{op, std::move(l), std::move(r)});
  }

  // || binds more loosely than + and - (as in PostgreSQL), so a || b + c is
  // a || (b + c); the translator always emits parentheses anyway.
  ExprPtr parse_concat() {
    Depth chain(*this, false);
    const Position pos = peek().pos;
    ExprPtr left = parse_additive();
    while (accept_op("||")) {
      chain.step();
      left = binary(pos, BinaryOp::concat, std::move(left), parse_additive());
    }
    return left;
  }

  ExprPtr parse_additive() {
    Depth chain(*this, false);
    const Position pos = peek().pos;
    ExprPtr left = parse_term();
    while (at_op("+") || at_op("-")) {
      chain.step();
      const BinaryOp op = next().text == "+" ? BinaryOp::add : BinaryOp::subtract;
      left = binary(pos, op, std::move(left), parse_term());
    }
    return left;
  }

  ExprPtr parse_term() {
    Depth chain(*this, false);
    const Position pos = peek().pos;
    ExprPtr left = parse_factor();
    while (at_op("*") || at_op("/")) {
      chain.step();
      const BinaryOp op = next().text == "*" ? BinaryOp::multiply : BinaryOp::divide;
      left = binary(pos, op, std::move(left), parse_factor());
    }
    return left;
  }

  static bool is_number(const Token& t) {
    return t.kind == TokenKind::integer || t.kind == TokenKind::decimal || t.kind == TokenKind::real ||
           t.kind == TokenKind::hex;
  }

  ExprPtr number_literal(const Token& t, bool negative) {
    if (t.kind == TokenKind::integer || t.kind == TokenKind::hex) {
      return make_expr(t.pos, IntegerLiteral{integer_value(t, negative)});
    }
    const double v = real_value(t);
    return make_expr(t.pos, RealLiteral{negative ? -v : v});
  }

  ExprPtr parse_factor() {
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

  ExprPtr parse_primary() {
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

  ExprPtr parse_column_ref() {
    const Position pos = peek().pos;
    ColumnRef c;
    c.parts.push_back(parse_name("a column name"));
    while (accept_op(".")) c.parts.push_back(parse_name("a column name"));
    if (c.parts.size() > 4) throw ParseError(pos, "a column reference has at most four parts");
    return make_expr(pos, std::move(c));
  }

  ExprPtr parse_function() {
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

  ExprPtr parse_case() {
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

  ExprPtr parse_cast() {
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

  std::vector<Token> t_;
  std::size_t i_ = 0;
  ParseOptions options_;
  int depth_ = 0;
};

}  // namespace

Query parse(std::string_view adql, const ParseOptions& options) {
  Parser p(tokenize(adql, options.max_length), options);
  return p.parse_statement();
}

}  // namespace pixserve::adql
