// ADQL 2.1 lexical analysis: the query text becomes a token list with the
// line and column of each token. Keywords are not told apart from regular
// identifiers here (ADQL keywords are context-dependent, e.g. POINT is a
// function name and a reserved word); the parser compares upper-case text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "adql/ast.hpp"

namespace pixserve::adql {

enum class TokenKind {
  end,                   // end of the query
  identifier,            // regular identifier (or keyword)
  delimited_identifier,  // "..." with "" unescaped
  string,                // '...' with '' unescaped
  integer,               // 123
  decimal,               // 1.5, .5, 1.
  real,                  // 1e5, 1.5E-3
  hex,                   // 0x1F (ADQL 2.1)
  op,                    // punctuation and operators: + - * / || = != <> < > <= >= ( ) , . ;
};

struct Token {
  TokenKind kind = TokenKind::end;
  std::string text;   // as written, except for strings/delimited identifiers (unescaped value)
  std::string upper;  // upper-cased text for identifiers (keyword comparison)
  Position pos;
  std::size_t offset = 0;  // byte offset of the token in the query
  std::size_t end = 0;     // byte offset just after it
};

// The token text as shown in an error message: 'FORM', or "end of query".
std::string describe(const Token& t);

// Throws ParseError for characters that cannot start a token, unterminated
// strings or delimited identifiers, malformed numbers, text that is not
// UTF-8, and text longer than max_length bytes. The list ends with an `end`
// token.
std::vector<Token> tokenize(std::string_view text, std::size_t max_length = 100'000);

// The ADQL 2.1 reserved words (ADQL's own and the SQL-92 list it adopts),
// upper case. A regular identifier may not be one of them.
bool is_reserved_word(std::string_view upper);

}  // namespace pixserve::adql
