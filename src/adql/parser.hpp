// Recursive-descent parser for ADQL 2.1 (IVOA Recommendation 2023-12-15),
// hand-written so that every error names the line, the column, what was
// found and what was expected.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "adql/ast.hpp"

namespace pixserve::adql {

struct ParseOptions {
  // Hostile input limits: the text length, and the nesting depth of the tree
  // (parentheses, subqueries, operator chains), so that no input can exhaust
  // the stack of the parser, the printer or the translator.
  std::size_t max_length = 100'000;
  int max_depth = 200;
};

// Parses one query (an optional trailing ';' is accepted). Throws ParseError.
Query parse(std::string_view adql, const ParseOptions& options = {});

// Normalised ADQL text of a tree: keywords upper case, every compound
// expression parenthesised, so parse(to_adql(q)) == q.
std::string to_adql(const Query& q);
std::string to_adql(const Expr& e);

}  // namespace pixserve::adql
