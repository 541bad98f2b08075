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
#include "adql/parser_internal.hpp"

namespace pixserve::adql {

bool is_condition(const Expr& e) {
  return std::holds_alternative<Comparison>(e.node) || std::holds_alternative<Between>(e.node) ||
         std::holds_alternative<Like>(e.node) || std::holds_alternative<InList>(e.node) ||
         std::holds_alternative<InQuery>(e.node) || std::holds_alternative<Exists>(e.node) ||
         std::holds_alternative<IsNull>(e.node) || std::holds_alternative<Not>(e.node) ||
         std::holds_alternative<Logical>(e.node);
}

Query Parser::parse_statement() {
  Query q = parse_query();
  accept_op(";");
  if (peek().kind != TokenKind::end) {
    // The most common reasons for leftovers get a pointed message.
    if (at_op(")")) fail("unbalanced ')'");
    expected("end of query");
  }
  return q;
}

void Parser::expected(const std::string& what) const {
  const Token& t = peek();
  std::string msg = fmt::format("expected {}, found {}", what, describe(t));
  if (t.kind == TokenKind::identifier && is_reserved_word(t.upper) && !is_structural(t.upper)) {
    msg += fmt::format(" (a reserved word: write \"{}\" to use it as a name)", t.text);
  }
  throw ParseError(t.pos, msg);
}

// Keywords that shape a query; naming them in a hint about delimited
// identifiers would only confuse.
bool Parser::is_structural(std::string_view u) {
  static constexpr auto kWords = std::to_array<std::string_view>({
      "SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "BY", "OFFSET", "TOP", "UNION", "INTERSECT",
      "EXCEPT", "WITH", "AS", "ON", "USING", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS",
      "NATURAL", "AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "BETWEEN", "EXISTS", "CASE", "WHEN",
      "THEN", "ELSE", "END", "ALL", "DISTINCT", "ASC", "DESC", "CAST",
  });
  return std::find(kWords.begin(), kWords.end(), u) != kWords.end();
}

// ---------------------------------------------------------------- names
bool Parser::at_name() const {
  const Token& t = peek();
  return t.kind == TokenKind::delimited_identifier ||
         (t.kind == TokenKind::identifier && !is_reserved_word(t.upper));
}

Identifier Parser::parse_name(const char* what) {
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

std::optional<Identifier> Parser::parse_optional_alias() {
  if (accept_keyword("AS")) return parse_name("an alias");
  if (at_name()) return parse_name("an alias");
  return std::nullopt;
}

// ---------------------------------------------------------------- queries
Query Parser::parse_query() {
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
  Query body = parse_set_operations(true);
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

// UNION and EXCEPT (union_level) chain INTERSECT terms, which bind more
// tightly; both chains are left-associative.
Query Parser::parse_set_operations(bool union_level) {
  Depth chain(*this, false);
  auto operand = [&] { return union_level ? parse_set_operations(false) : parse_query_primary(); };
  Query left = operand();
  while (union_level ? at_keyword("UNION") || at_keyword("EXCEPT") : at_keyword("INTERSECT")) {
    chain.step();
    const Position pos = peek().pos;
    const std::string& keyword = next().upper;
    SetOperation op;
    op.kind = keyword == "UNION" ? SetOpKind::union_ : keyword == "EXCEPT" ? SetOpKind::except : SetOpKind::intersect;
    op.all = accept_keyword("ALL");
    if (!op.all) accept_keyword("DISTINCT");
    op.left = QueryPtr(std::move(left));
    op.right = QueryPtr(operand());
    left = Query{};
    left.pos = pos;
    left.body = std::move(op);
  }
  return left;
}

Query Parser::parse_query_primary() {
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

std::int64_t Parser::parse_unsigned(const char* what) {
  const Token& t = peek();
  if (t.kind != TokenKind::integer && t.kind != TokenKind::hex) expected(what);
  next();
  return integer_value(t, false);
}

std::int64_t Parser::integer_value(const Token& t, bool negative) const {
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

double Parser::real_value(const Token& t) const {
  double v = 0.0;
  const char* end = t.text.data() + t.text.size();
  const auto [ptr, ec] = std::from_chars(t.text.data(), end, v);
  if (ec != std::errc() || ptr != end) {
    throw ParseError(t.pos, fmt::format("numeric literal {} is out of range", t.text));
  }
  return v;
}

Select Parser::parse_select() {
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
bool Parser::at_qualified_star() const {
  std::size_t k = 0;
  for (;;) {
    const Token& t = peek(k);
    if (t.kind != TokenKind::identifier && t.kind != TokenKind::delimited_identifier) return false;
    if (!at_op(".", k + 1)) return false;
    if (at_op("*", k + 2)) return true;
    k += 2;
  }
}

SelectItem Parser::parse_select_item() {
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
TableRef Parser::parse_table_reference() {
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

TableRef Parser::parse_table_primary() {
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

Query parse(std::string_view adql, const ParseOptions& options) {
  Parser p(tokenize(adql, options.max_length), options);
  return p.parse_statement();
}

}  // namespace pixserve::adql
