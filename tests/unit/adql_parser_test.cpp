// Lexer and parser: tokens with positions, the tree for each construct,
// error messages with line/column/expected, hostile-input limits, and the
// round trip parse -> to_adql -> parse.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adql/errors.hpp"
#include "adql/lexer.hpp"
#include "adql/parser.hpp"

namespace pixserve::adql {
namespace {

std::vector<TokenKind> kinds(std::string_view q) {
  std::vector<TokenKind> out;
  for (const auto& t : tokenize(q)) out.push_back(t.kind);
  return out;
}

TEST(AdqlLexer, TokenKindsAndPositions) {
  const auto t = tokenize("SELECT a,\n  \"B c\" FROM t -- comment\nWHERE x <> 'it''s' || 1.5e-3");
  ASSERT_GE(t.size(), 13u);
  EXPECT_EQ(t[0].kind, TokenKind::identifier);
  EXPECT_EQ(t[0].upper, "SELECT");
  EXPECT_EQ(t[3].kind, TokenKind::delimited_identifier);
  EXPECT_EQ(t[3].text, "B c");
  EXPECT_EQ(t[3].pos.line, 2);
  EXPECT_EQ(t[3].pos.column, 3);
  EXPECT_EQ(t[6].upper, "WHERE");
  EXPECT_EQ(t[6].pos.line, 3);
  EXPECT_EQ(t[8].text, "<>");
  EXPECT_EQ(t[9].kind, TokenKind::string);
  EXPECT_EQ(t[9].text, "it's");
  EXPECT_EQ(t[10].text, "||");
  EXPECT_EQ(t[11].kind, TokenKind::real);
  EXPECT_EQ(t.back().kind, TokenKind::end);
}

TEST(AdqlLexer, Numbers) {
  EXPECT_EQ(kinds("1 1.5 .5 1. 1e5 1.5E+3 0x1F"),
            (std::vector<TokenKind>{TokenKind::integer, TokenKind::decimal, TokenKind::decimal, TokenKind::decimal,
                                    TokenKind::real, TokenKind::real, TokenKind::hex, TokenKind::end}));
  EXPECT_THROW(tokenize("12abc"), ParseError);
  EXPECT_THROW(tokenize("1e"), ParseError);
  EXPECT_THROW(tokenize("0x"), ParseError);
}

TEST(AdqlLexer, Errors) {
  try {
    tokenize("SELECT 'abc");
    FAIL();
  } catch (const ParseError& e) {
    EXPECT_EQ(e.line(), 1);
    EXPECT_EQ(e.column(), 8);
    EXPECT_NE(std::string(e.what()).find("unterminated string"), std::string::npos);
  }
  EXPECT_THROW(tokenize("SELECT \"abc"), ParseError);
  EXPECT_THROW(tokenize("SELECT \"\""), ParseError);
  EXPECT_THROW(tokenize("SELECT #"), ParseError);
  EXPECT_THROW(tokenize(std::string("SELECT \0 x", 10)), ParseError);
  EXPECT_THROW(tokenize("SELECT '\xff'"), ParseError);        // not UTF-8
  EXPECT_NO_THROW(tokenize("SELECT 'd\xc3\xa9j\xc3\xa0'"));  // UTF-8 in strings is fine
  EXPECT_THROW(tokenize(std::string(200, ' '), 100), ParseError);
}

TEST(AdqlLexer, ReservedWords) {
  EXPECT_TRUE(is_reserved_word("SELECT"));
  EXPECT_TRUE(is_reserved_word("POINT"));
  EXPECT_TRUE(is_reserved_word("SIZE"));
  EXPECT_TRUE(is_reserved_word("TOP"));
  EXPECT_FALSE(is_reserved_word("S_RA"));
  EXPECT_FALSE(is_reserved_word("OBSCORE"));
}

const Select& only_select(const Query& q) { return *std::get<Box<Select>>(q.body); }

TEST(AdqlParser, SelectStructure) {
  const Query q = parse("SELECT DISTINCT TOP 10 a AS x, t.b, t.* FROM s.t AS u WHERE a > 1 ORDER BY x DESC OFFSET 5");
  const Select& s = only_select(q);
  EXPECT_EQ(s.quantifier, Quantifier::distinct);
  EXPECT_EQ(s.top, 10);
  ASSERT_EQ(s.items.size(), 3u);
  EXPECT_EQ(s.items[0].alias->text, "x");
  EXPECT_TRUE(std::holds_alternative<Star>(s.items[2].expr->node));
  const auto& t = std::get<NamedTable>(s.from[0].node);
  EXPECT_EQ(t.name.size(), 2u);
  EXPECT_EQ(t.alias->text, "u");
  EXPECT_TRUE(std::holds_alternative<Comparison>(s.where->node));
  ASSERT_EQ(q.order_by.size(), 1u);
  EXPECT_TRUE(q.order_by[0].descending);
  EXPECT_EQ(q.offset, 5);
}

TEST(AdqlParser, Precedence) {
  const Query q = parse("SELECT a FROM t WHERE a + b * c = 1 OR NOT d = 2 AND e = 3");
  const auto& w = only_select(q).where;
  const auto& orl = std::get<Logical>(w->node);
  EXPECT_EQ(orl.op, LogicalOp::or_);
  ASSERT_EQ(orl.operands.size(), 2u);
  const auto& cmp = std::get<Comparison>(orl.operands[0]->node);
  const auto& add = std::get<Binary>(cmp.left->node);
  EXPECT_EQ(add.op, BinaryOp::add);
  EXPECT_EQ(std::get<Binary>(add.right->node).op, BinaryOp::multiply);
  const auto& andl = std::get<Logical>(orl.operands[1]->node);
  EXPECT_EQ(andl.op, LogicalOp::and_);
  EXPECT_TRUE(std::holds_alternative<Not>(andl.operands[0]->node));
}

TEST(AdqlParser, NegativeLiteralsAndMinMax) {
  const Query q = parse("SELECT -9223372036854775808, -1.5, - -2, -(3) FROM t");
  const auto& items = only_select(q).items;
  EXPECT_EQ(std::get<IntegerLiteral>(items[0].expr->node).value, INT64_MIN);
  EXPECT_EQ(std::get<RealLiteral>(items[1].expr->node).value, -1.5);
  EXPECT_TRUE(std::holds_alternative<Negate>(items[2].expr->node));
  EXPECT_TRUE(std::holds_alternative<Negate>(items[3].expr->node));
  EXPECT_THROW(parse("SELECT 9223372036854775808 FROM t"), ParseError);
  EXPECT_EQ(std::get<IntegerLiteral>(only_select(parse("SELECT 0xFF FROM t")).items[0].expr->node).value, 255);
}

TEST(AdqlParser, AdjacentStringsJoin) {
  const Query q = parse("SELECT 'ab'\n 'cd' FROM t");
  EXPECT_EQ(std::get<StringLiteral>(only_select(q).items[0].expr->node).value, "abcd");
}

TEST(AdqlParser, Joins) {
  const Query q = parse(
      "SELECT * FROM a NATURAL JOIN b LEFT OUTER JOIN c USING (x, y) CROSS JOIN d "
      "FULL JOIN (SELECT 1 AS one FROM e) AS sub ON sub.one = a.x");
  const auto& j = std::get<Join>(only_select(q).from[0].node);
  EXPECT_EQ(j.kind, JoinKind::full);
  EXPECT_TRUE(std::holds_alternative<DerivedTable>(j.right->node));
  const auto& cross = std::get<Join>(j.left->node);
  EXPECT_EQ(cross.kind, JoinKind::cross);
  const auto& left = std::get<Join>(cross.left->node);
  EXPECT_EQ(left.kind, JoinKind::left);
  EXPECT_EQ(left.using_columns.size(), 2u);
  EXPECT_TRUE(std::get<Join>(left.left->node).natural);
}

TEST(AdqlParser, SetOperationsPrecedence) {
  const Query q = parse("SELECT a FROM t UNION SELECT a FROM u INTERSECT SELECT a FROM v ORDER BY 1");
  const auto& u = std::get<SetOperation>(q.body);
  EXPECT_EQ(u.kind, SetOpKind::union_);
  EXPECT_EQ(std::get<SetOperation>(u.right->body).kind, SetOpKind::intersect);
  EXPECT_EQ(q.order_by.size(), 1u);
}

TEST(AdqlParser, WithAndSubqueries) {
  const Query q = parse(
      "WITH c(x) AS (SELECT a FROM t) SELECT x FROM c WHERE x IN (SELECT a FROM u) "
      "AND EXISTS (SELECT 1 FROM v) AND x > (SELECT MAX(a) FROM w)");
  ASSERT_EQ(q.with.size(), 1u);
  EXPECT_EQ(q.with[0].columns.size(), 1u);
  const auto& conj = std::get<Logical>(only_select(q).where->node);
  EXPECT_TRUE(std::holds_alternative<InQuery>(conj.operands[0]->node));
  EXPECT_TRUE(std::holds_alternative<Exists>(conj.operands[1]->node));
  const auto& cmp = std::get<Comparison>(conj.operands[2]->node);
  EXPECT_TRUE(std::holds_alternative<ScalarSubquery>(cmp.right->node));
}

TEST(AdqlParser, FunctionsCaseCast) {
  const Query q = parse(
      "SELECT COUNT(*), COUNT(DISTINCT a), CASE WHEN a > 1 THEN 'x' ELSE 'y' END, CASE a WHEN 1 THEN 2 END, "
      "CAST(a AS DOUBLE PRECISION), CAST(b AS VARCHAR(10)), my_udf(a, 2) FROM t");
  const auto& items = only_select(q).items;
  EXPECT_TRUE(std::get<FunctionCall>(items[0].expr->node).star);
  EXPECT_TRUE(std::get<FunctionCall>(items[1].expr->node).distinct);
  EXPECT_FALSE(std::get<Case>(items[2].expr->node).operand);
  EXPECT_TRUE(std::get<Case>(items[3].expr->node).operand);
  EXPECT_EQ(std::get<Cast>(items[4].expr->node).type.kind, CastKind::double_precision);
  EXPECT_EQ(std::get<Cast>(items[5].expr->node).type.length, 10);
  EXPECT_EQ(std::get<FunctionCall>(items[6].expr->node).name, "MY_UDF");
}

void expect_error(const std::string& q, int line, int column, const std::string& fragment) {
  try {
    parse(q);
    ADD_FAILURE() << "no error for: " << q;
  } catch (const ParseError& e) {
    EXPECT_EQ(e.line(), line) << e.what();
    EXPECT_EQ(e.column(), column) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(AdqlParser, ErrorMessages) {
  expect_error("SELECT a, b, c FORM t", 1, 16, "expected FROM, found 'FORM'");  // FORM is taken as an alias of c
  expect_error("SELECT * FORM t", 1, 10, "expected FROM, found 'FORM'");
  expect_error("SELECT a FROM t WHERE", 1, 22, "expected a condition after WHERE, found end of query");
  expect_error("SELECT a FROM t\nWHERE a = ", 2, 11, "found end of query");
  expect_error("SELECT a FROM t WHERE a", 1, 23, "expected a condition after WHERE, found a value");
  expect_error("SELECT size FROM t", 1, 8, "reserved word");
  expect_error("SELECT a FROM t AS select", 1, 20, "expected an alias");
  expect_error("SELECT a FROM (SELECT b FROM t)", 1, 32, "alias for the subquery");
  expect_error("SELECT a FROM t JOIN u", 1, 23, "expected ON or USING");
  expect_error("SELECT a FROM t WHERE a BETWEEN 1", 1, 34, "expected AND");
  expect_error("SELECT a FROM t ORDER a", 1, 23, "expected BY");
  expect_error("SELECT TOP x a FROM t", 1, 12, "row count after TOP");
  expect_error("SELECT a FROM t)", 1, 16, "unbalanced ')'");
  expect_error("SELECT CAST(a AS POINT) FROM t", 1, 18, "not supported");
  expect_error("SELECT a FROM t WHERE NOT a", 1, 27, "expected a condition after NOT");
  expect_error("SELECT (a = 1) + 2 FROM t", 1, 9, "expected a value");
  expect_error("SELECT FROM t", 1, 8, "expected a select list item, found 'FROM'");
}

TEST(AdqlParser, NestingLimit) {
  std::string deep = "SELECT " + std::string(5000, '(') + "1" + std::string(5000, ')') + " FROM t";
  try {
    parse(deep);
    FAIL();
  } catch (const ParseError& e) {
    EXPECT_NE(std::string(e.what()).find("nested too deeply"), std::string::npos) << e.what();
  }
}

TEST(AdqlParser, NestingLimitNoStackOverflow) {
  for (const std::string unit : {"(", "-", "NOT ", "(SELECT a FROM t WHERE ", "a + "}) {
    std::string q = "SELECT a FROM t WHERE ";
    for (int i = 0; i < 20000; ++i) q += unit;
    try {
      parse(q);
      ADD_FAILURE();
    } catch (const ParseError& e) {
      SUCCEED();
    }
  }
  // Long flat chains are bounded too (each link is one tree level).
  std::string chain = "SELECT 1";
  for (int i = 0; i < 10000; ++i) chain += " + 1";
  EXPECT_THROW(parse(chain + " FROM t"), ParseError);
  // but n-ary AND/OR are flat: 1000 conditions parse fine.
  std::string conj = "SELECT a FROM t WHERE a = 0";
  for (int i = 0; i < 1000; ++i) conj += " AND a = " + std::to_string(i);
  EXPECT_NO_THROW(parse(conj));
}

TEST(AdqlParser, LengthLimit) {
  const std::string q = "SELECT a FROM t WHERE a = '" + std::string(200000, 'x') + "'";
  EXPECT_THROW(parse(q), ParseError);
  ParseOptions big;
  big.max_length = 1'000'000;
  EXPECT_NO_THROW(parse(q, big));
}

TEST(AdqlParser, RoundTrip) {
  const char* queries[] = {
      "SELECT a FROM t",
      "select distinct top 5 a as \"Alias\", b from s.t as x where a between -1 and 2.5e3 order by 1 desc offset 2",
      "SELECT * FROM a JOIN b ON a.x = b.x LEFT JOIN c USING (y) NATURAL RIGHT JOIN d CROSS JOIN e",
      "SELECT * FROM a JOIN (b JOIN c ON b.x = c.x) ON a.x = b.x",
      "SELECT a FROM t UNION ALL SELECT a FROM u EXCEPT SELECT a FROM v INTERSECT SELECT a FROM w",
      "(SELECT a FROM t ORDER BY a OFFSET 1) UNION (SELECT a FROM u)",
      "WITH x AS (SELECT a FROM t), y(b) AS (SELECT a FROM x) SELECT b FROM y",
      "SELECT CASE WHEN a IS NULL THEN 'n' WHEN a NOT LIKE 'x%' THEN 'y' ELSE a || 'z' END FROM t",
      "SELECT COUNT(*), SUM(DISTINCT a), AVG(b) FROM t GROUP BY c HAVING COUNT(*) > 1",
      "SELECT CAST(a AS CHAR(3)), CAST(b AS BIGINT) FROM t",
      "SELECT a FROM t WHERE a IN (1, 2, 3) AND b NOT IN (SELECT b FROM u) OR NOT EXISTS (SELECT 1 FROM v)",
      "SELECT a - -1, - a, -(-1.5), 1 - -0.0 FROM t",
      "SELECT a FROM t WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, -20.5, 0.1)) = 1",
      "SELECT DISTANCE(POINT(1, 2), POINT(3, 4)), AREA(s_region), COORD1(p) FROM t",
      "SELECT 'it''s', \"we\"\"ird\" FROM t WHERE x ILIKE '%A_'",
      "SELECT a FROM t WHERE a > (SELECT MAX(b) FROM u WHERE u.c = t.c)",
      "SELECT a / 2 * 3 + 4 - 5 || 'x' FROM t",
      "SELECT 0x7FFFFFFFFFFFFFFF, 1e308, 4.9e-324 FROM t",
  };
  for (const char* text : queries) {
    SCOPED_TRACE(text);
    const Query q1 = parse(text);
    const std::string printed = to_adql(q1);
    const Query q2 = parse(printed);
    EXPECT_TRUE(q1 == q2) << printed;
    EXPECT_EQ(to_adql(q2), printed);
  }
}

}  // namespace
}  // namespace pixserve::adql
