#include "adql/lexer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <string_view>

#include "adql/errors.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace {

// Sorted so that lookups are a binary search.
constexpr std::array kReserved = std::to_array<std::string_view>({
    "ABS", "ABSOLUTE", "ACOS", "ACTION", "ADD", "ALL", "ALLOCATE", "ALTER", "AND", "ANY", "ARE", "AREA", "AS",
    "ASC", "ASIN", "ASSERTION", "AT", "ATAN", "ATAN2", "AUTHORIZATION", "AVG", "BEGIN", "BETWEEN", "BIGINT", "BIT",
    "BIT_LENGTH", "BOTH", "BOX", "BY", "CASCADE", "CASCADED", "CASE", "CAST", "CATALOG", "CEILING", "CENTROID",
    "CHAR", "CHARACTER", "CHARACTER_LENGTH", "CHAR_LENGTH", "CHECK", "CIRCLE", "CLOSE", "COALESCE", "COLLATE",
    "COLLATION", "COLUMN", "COMMIT", "CONNECT", "CONNECTION", "CONSTRAINT", "CONSTRAINTS", "CONTAINS", "CONTINUE",
    "CONVERT", "COORD1", "COORD2", "COORDSYS", "CORRESPONDING", "COS", "COT", "COUNT", "CREATE", "CROSS", "CURRENT",
    "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "CURSOR", "DATE", "DAY", "DEALLOCATE",
    "DECIMAL", "DECLARE", "DEFAULT", "DEFERRABLE", "DEFERRED", "DEGREES", "DELETE", "DESC", "DESCRIBE",
    "DESCRIPTOR", "DIAGNOSTICS", "DISCONNECT", "DISTANCE", "DISTINCT", "DOMAIN", "DOUBLE", "DROP", "ELSE", "END",
    "END-EXEC", "ESCAPE", "EXCEPT", "EXCEPTION", "EXEC", "EXECUTE", "EXISTS", "EXP", "EXTERNAL", "EXTRACT", "FALSE",
    "FETCH", "FIRST", "FLOAT", "FLOOR", "FOR", "FOREIGN", "FOUND", "FROM", "FULL", "GET", "GLOBAL", "GO", "GOTO",
    "GRANT", "GROUP", "HAVING", "HOUR", "IDENTITY", "ILIKE", "IMMEDIATE", "IN", "INDICATOR", "INITIALLY", "INNER",
    "INPUT", "INSENSITIVE", "INSERT", "INT", "INTEGER", "INTERSECT", "INTERSECTS", "INTERVAL", "INTO", "IN_UNIT",
    "IS", "ISOLATION", "JOIN", "KEY", "LANGUAGE", "LAST", "LEADING", "LEFT", "LEVEL", "LIKE", "LOCAL", "LOG",
    "LOG10", "LOWER", "MATCH", "MAX", "MIN", "MINUTE", "MOD", "MODULE", "MONTH", "NAMES", "NATIONAL", "NATURAL",
    "NCHAR", "NEXT", "NO", "NOT", "NULL", "NULLIF", "NUMERIC", "OCTET_LENGTH", "OF", "OFFSET", "ON", "ONLY", "OPEN",
    "OPTION", "OR", "ORDER", "OUTER", "OUTPUT", "OVERLAPS", "PAD", "PARTIAL", "PI", "POINT", "POLYGON", "POSITION",
    "POWER", "PRECISION", "PREPARE", "PRESERVE", "PRIMARY", "PRIOR", "PRIVILEGES", "PROCEDURE", "PUBLIC",
    "RADIANS", "RAND", "READ", "REAL", "REFERENCES", "REGION", "RELATIVE", "RESTRICT", "REVOKE", "RIGHT",
    "ROLLBACK", "ROUND", "ROWS", "SCHEMA", "SCROLL", "SECOND", "SECTION", "SELECT", "SESSION", "SESSION_USER",
    "SET", "SIN", "SIZE", "SMALLINT", "SOME", "SPACE", "SQL", "SQLCODE", "SQLERROR", "SQLSTATE", "SQRT",
    "SUBSTRING", "SUM", "SYSTEM_USER", "TABLE", "TAN", "TEMPORARY", "THEN", "TIME", "TIMESTAMP", "TIMEZONE_HOUR",
    "TIMEZONE_MINUTE", "TO", "TOP", "TRAILING", "TRANSACTION", "TRANSLATE", "TRANSLATION", "TRIM", "TRUE",
    "TRUNCATE", "UNION", "UNIQUE", "UNKNOWN", "UPDATE", "UPPER", "USAGE", "USER", "USING", "VALUE", "VALUES",
    "VARCHAR", "VARYING", "VIEW", "WHEN", "WHENEVER", "WHERE", "WITH", "WORK", "WRITE", "YEAR", "ZONE",
});

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_letter(c) || is_digit(c) || c == '_'; }

// Length of the UTF-8 sequence starting at s[i], or 0 when it is invalid
// (overlong forms, surrogates and code points above U+10FFFF included).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  std::size_t n;
  unsigned cp;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)) return 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  std::vector<Token> run() {
    std::vector<Token> out;
    for (;;) {
      skip_space_and_comments();
      Token t;
      t.pos = here();
      t.offset = i_;
      if (i_ >= s_.size()) {
        t.kind = TokenKind::end;
        t.end = i_;
        out.push_back(std::move(t));
        return out;
      }
      lex_one(t);
      t.end = i_;
      out.push_back(std::move(t));
    }
  }

 private:
  Position here() const { return {line_, static_cast<int>(i_ - line_start_) + 1}; }

  [[noreturn]] void fail(Position pos, const std::string& msg) const { throw ParseError(pos, msg); }

  void advance() {
    if (s_[i_] == '\n') {
      ++line_;
      line_start_ = i_ + 1;
    }
    ++i_;
  }

  void skip_space_and_comments() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
        advance();
      } else if (c == '-' && i_ + 1 < s_.size() && s_[i_ + 1] == '-') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  // Body of a quoted token: the closing quote doubled stands for itself.
  std::string quoted(char quote, const Position& start, const char* what) {
    std::string value;
    ++i_;  // opening quote
    for (;;) {
      if (i_ >= s_.size()) fail(start, fmt::format("unterminated {}", what));
      const char c = s_[i_];
      if (c == quote) {
        if (i_ + 1 < s_.size() && s_[i_ + 1] == quote) {
          value += quote;
          i_ += 2;
          continue;
        }
        ++i_;
        return value;
      }
      value += c;
      advance();
    }
  }

  void lex_number(Token& t) {
    const std::size_t start = i_;
    if (s_[i_] == '0' && i_ + 1 < s_.size() && (s_[i_ + 1] == 'x' || s_[i_ + 1] == 'X')) {
      i_ += 2;
      const std::size_t digits = i_;
      while (i_ < s_.size() && std::isxdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ == digits) fail(t.pos, "malformed hexadecimal literal: no digits after 0x");
      t.kind = TokenKind::hex;
    } else {
      bool dot = false;
      bool exponent = false;
      while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
      if (i_ < s_.size() && s_[i_] == '.') {
        dot = true;
        ++i_;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
      }
      if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
        exponent = true;
        ++i_;
        if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
        const std::size_t digits = i_;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
        if (i_ == digits) fail(t.pos, "malformed number: no digits in the exponent");
      }
      t.kind = exponent ? TokenKind::real : dot ? TokenKind::decimal : TokenKind::integer;
    }
    // "12abc" is neither a number nor an identifier.
    if (i_ < s_.size() && (is_ident_char(s_[i_]) || s_[i_] == '.')) {
      fail(t.pos, fmt::format("malformed number '{}'", s_.substr(start, i_ - start + 1)));
    }
    t.text = std::string(s_.substr(start, i_ - start));
  }

  void lex_one(Token& t) {
    const char c = s_[i_];
    if (is_letter(c)) {
      const std::size_t start = i_;
      while (i_ < s_.size() && is_ident_char(s_[i_])) ++i_;
      t.kind = TokenKind::identifier;
      t.text = std::string(s_.substr(start, i_ - start));
      t.upper = ascii_upper(t.text);
      return;
    }
    if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) {
      lex_number(t);
      return;
    }
    if (c == '\'') {
      t.kind = TokenKind::string;
      t.text = quoted('\'', t.pos, "string literal");
      return;
    }
    if (c == '"') {
      t.kind = TokenKind::delimited_identifier;
      t.text = quoted('"', t.pos, "delimited identifier");
      if (t.text.empty()) fail(t.pos, "empty delimited identifier \"\"");
      return;
    }
    static constexpr std::array<std::string_view, 5> kTwo = {"<>", "!=", "<=", ">=", "||"};
    for (const auto op : kTwo) {
      if (s_.substr(i_, 2) == op) {
        t.kind = TokenKind::op;
        t.text = std::string(op);
        i_ += 2;
        return;
      }
    }
    if (std::string_view("+-*/=<>(),.;").find(c) != std::string_view::npos) {
      t.kind = TokenKind::op;
      t.text = std::string(1, c);
      ++i_;
      return;
    }
    const auto uc = static_cast<unsigned char>(c);
    if (uc >= 0x80) {
      const std::size_t n = utf8_length(s_, i_);
      fail(t.pos, fmt::format("unexpected character '{}'", s_.substr(i_, n ? n : 1)));
    }
    if (uc < 0x20 || uc == 0x7F) fail(t.pos, fmt::format("unexpected control character (code {})", int(uc)));
    fail(t.pos, fmt::format("unexpected character '{}'", c));
  }

  std::string_view s_;
  std::size_t i_ = 0;
  int line_ = 1;
  std::size_t line_start_ = 0;
};

}  // namespace

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokenKind::end: return "end of query";
    case TokenKind::string: return fmt::format("string '{}'", t.text.size() > 40 ? t.text.substr(0, 40) + "..." : t.text);
    case TokenKind::delimited_identifier: return fmt::format("\"{}\"", t.text);
    default: return fmt::format("'{}'", t.text);
  }
}

std::vector<Token> tokenize(std::string_view text, std::size_t max_length) {
  if (text.size() > max_length) {
    throw ParseError({1, 1}, fmt::format("query is too long ({} bytes, the limit is {})", text.size(), max_length));
  }
  // Validate the encoding first: a database (PostgreSQL) must never see
  // bytes that are not UTF-8, and errors then point at the bad byte.
  int line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (text[i] == '\0') throw ParseError({line, int(i - line_start) + 1}, "unexpected NUL character");
    const std::size_t n = utf8_length(text, i);
    if (n == 0) throw ParseError({line, int(i - line_start) + 1}, "query is not valid UTF-8");
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
    i += n;
  }
  return Lexer(text).run();
}

bool is_reserved_word(std::string_view upper) {
  return std::binary_search(kReserved.begin(), kReserved.end(), upper);
}

}  // namespace pixserve::adql
