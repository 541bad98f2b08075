// Errors raised on user queries. Every one names where in the query it was
// found, so the TAP layer can hand the message back unchanged:
// "line 1, column 17: expected FROM, found 'FORM'".
#pragma once

#include <stdexcept>
#include <string>

#include "adql/ast.hpp"

namespace pixserve::adql {

class AdqlError : public std::runtime_error {
 public:
  AdqlError(Position pos, const std::string& message);
  Position position() const noexcept { return pos_; }
  int line() const noexcept { return pos_.line; }
  int column() const noexcept { return pos_.column; }
  // The message without the "line L, column C: " prefix.
  const std::string& message() const noexcept { return message_; }

 private:
  Position pos_;
  std::string message_;
};

// The text is not ADQL (lexical or syntax errors, limits).
class ParseError : public AdqlError {
 public:
  using AdqlError::AdqlError;
};

// Well-formed ADQL that cannot be run: unknown table or column, ambiguous
// name, type mismatch, unsupported feature.
class SemanticError : public AdqlError {
 public:
  using AdqlError::AdqlError;
};

}  // namespace pixserve::adql
