// The recursive-descent parser behind parse() (parser.hpp), shared by its two
// source files: parser.cpp reads tokens, names, numbers, queries and FROM;
// parser_expressions.cpp reads value expressions and conditions. The two
// halves call each other (subqueries inside expressions, expressions inside
// queries), hence one class. Not part of the library's interface.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adql/ast.hpp"
#include "adql/errors.hpp"
#include "adql/lexer.hpp"
#include "adql/parser.hpp"

namespace pixserve::adql {

template <typename T>
ExprPtr make_expr(Position pos, T node) {
  return ExprPtr(Expr{pos, std::move(node)});
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const ParseOptions& options) : t_(std::move(tokens)), options_(options) {}

  Query parse_statement();

 private:
  // ---------------------------------------------------------------- tokens
  const Token& peek(std::size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  const Token& next() {
    const Token& t = t_[i_];
    if (i_ + 1 < t_.size()) ++i_;
    return t;
  }
  bool at_keyword(std::string_view kw, std::size_t k = 0) const {
    return peek(k).kind == TokenKind::identifier && peek(k).upper == kw;
  }
  bool at_op(std::string_view op, std::size_t k = 0) const { return peek(k).kind == TokenKind::op && peek(k).text == op; }
  // accept_*: consume the token when it is there; expect_*: it must be.
  bool accept_keyword(std::string_view kw) { return at_keyword(kw) && (next(), true); }
  bool accept_op(std::string_view op) { return at_op(op) && (next(), true); }
  void expect_keyword(std::string_view kw) {
    if (!accept_keyword(kw)) expected(std::string(kw));
  }
  void expect_op(std::string_view op) {
    if (!accept_op(op)) expected(fmt::format("'{}'", op));
  }

  [[noreturn]] void fail(const std::string& msg) const { throw ParseError(peek().pos, msg); }
  [[noreturn]] void expected(const std::string& what) const;
  static bool is_structural(std::string_view u);

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

  // ---------------------------------------------------------------- names, numbers, queries (parser.cpp)
  bool at_name() const;
  Identifier parse_name(const char* what);
  std::optional<Identifier> parse_optional_alias();
  Query parse_query();
  Query parse_set_operations(bool union_level);
  Query parse_query_primary();
  std::int64_t parse_unsigned(const char* what);
  std::int64_t integer_value(const Token& t, bool negative) const;
  double real_value(const Token& t) const;
  Select parse_select();
  bool at_qualified_star() const;
  SelectItem parse_select_item();
  TableRef parse_table_reference();
  TableRef parse_table_primary();

  // ---------------------------------------------------------------- expressions (parser_expressions.cpp)
  ExprPtr parse_condition(const char* what);
  ExprPtr parse_value(const char* what);
  void require_condition(const Expr& e, const char* context) const;
  void require_value(const Expr& e, const char* context) const;
  ExprPtr parse_logical(LogicalOp op);
  ExprPtr parse_or();
  ExprPtr parse_not();
  static std::optional<CompareOp> compare_op(const Token& t);
  ExprPtr parse_predicate();
  bool starts_query_in_parens() const;
  ExprPtr binary(Position pos, BinaryOp op, ExprPtr l, ExprPtr r);
  ExprPtr parse_concat();
  ExprPtr parse_arithmetic(bool additive);
  static bool is_number(const Token& t);
  ExprPtr number_literal(const Token& t, bool negative);
  ExprPtr parse_factor();
  ExprPtr parse_primary();
  ExprPtr parse_column_ref();
  ExprPtr parse_function();
  ExprPtr parse_case();
  ExprPtr parse_cast();

  std::vector<Token> t_;
  std::size_t i_ = 0;
  ParseOptions options_;
  int depth_ = 0;
};

}  // namespace pixserve::adql
