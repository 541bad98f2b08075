// The ADQL 2.1 abstract syntax tree. Nodes own their children through Box<T>
// (a unique_ptr with value equality), so whole trees compare with ==; that is
// what the parser round-trip tests rely on. Source positions are carried on
// every node for error messages but are deliberately NOT part of equality:
// the same query printed and re-parsed has the same tree at other columns.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pixserve::adql {

// 1-based line and column (in bytes) of a node's first token.
struct Position {
  int line = 1;
  int column = 1;
  // Positions never make two trees different (see the file comment).
  friend bool operator==(const Position&, const Position&) { return true; }
};

// An owning pointer compared by value. Never null in a tree built by the
// parser unless the field is documented as optional.
template <typename T>
class Box {
 public:
  Box() = default;
  explicit Box(std::unique_ptr<T> p) : p_(std::move(p)) {}
  Box(T value) : p_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit by design
  T& operator*() const { return *p_; }
  T* operator->() const { return p_.get(); }
  T* get() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }
  friend bool operator==(const Box& a, const Box& b) {
    if (!a.p_ || !b.p_) return !a.p_ && !b.p_;
    return *a.p_ == *b.p_;
  }

 private:
  std::unique_ptr<T> p_;
};

// A name as written: regular identifiers match case-insensitively, delimited
// ("quoted") ones exactly.
struct Identifier {
  std::string text;
  bool delimited = false;
  Position pos;
  friend bool operator==(const Identifier&, const Identifier&) = default;
};

struct Expr;
struct Query;
using ExprPtr = Box<Expr>;
using QueryPtr = Box<Query>;

struct NullLiteral {
  friend bool operator==(const NullLiteral&, const NullLiteral&) = default;
};
struct IntegerLiteral {  // decimal or hexadecimal (ADQL 2.1) integers
  std::int64_t value = 0;
  friend bool operator==(const IntegerLiteral&, const IntegerLiteral&) = default;
};
struct RealLiteral {  // decimals (1.5, .5, 1.) and exponent forms (1e-3)
  double value = 0.0;
  friend bool operator==(const RealLiteral&, const RealLiteral&) = default;
};
struct StringLiteral {
  std::string value;  // quotes removed, '' unescaped, adjacent parts joined
  friend bool operator==(const StringLiteral&, const StringLiteral&) = default;
};
// column, table.column, schema.table.column (catalog.schema.table.column is
// parsed and refused later).
struct ColumnRef {
  std::vector<Identifier> parts;
  friend bool operator==(const ColumnRef&, const ColumnRef&) = default;
};
// `*` or `t.*` in a select list.
struct Star {
  std::vector<Identifier> qualifier;  // empty for a bare *
  friend bool operator==(const Star&, const Star&) = default;
};

struct Negate {  // unary minus (unary plus leaves no node)
  ExprPtr operand;
  friend bool operator==(const Negate&, const Negate&) = default;
};

enum class BinaryOp { add, subtract, multiply, divide, concat };
struct Binary {
  BinaryOp op = BinaryOp::add;
  ExprPtr left, right;
  friend bool operator==(const Binary&, const Binary&) = default;
};

enum class CompareOp { eq, ne, lt, le, gt, ge };
struct Comparison {
  CompareOp op = CompareOp::eq;
  ExprPtr left, right;
  friend bool operator==(const Comparison&, const Comparison&) = default;
};

struct Between {
  bool negated = false;
  ExprPtr value, low, high;
  friend bool operator==(const Between&, const Between&) = default;
};

struct Like {
  bool negated = false;
  bool case_insensitive = false;  // ILIKE
  ExprPtr value, pattern;
  friend bool operator==(const Like&, const Like&) = default;
};

struct InList {
  bool negated = false;
  ExprPtr value;
  std::vector<ExprPtr> items;
  friend bool operator==(const InList&, const InList&) = default;
};

struct InQuery {
  bool negated = false;
  ExprPtr value;
  QueryPtr query;
  friend bool operator==(const InQuery&, const InQuery&) = default;
};

struct Exists {
  QueryPtr query;
  friend bool operator==(const Exists&, const Exists&) = default;
};

struct IsNull {
  bool negated = false;
  ExprPtr value;
  friend bool operator==(const IsNull&, const IsNull&) = default;
};

struct Not {
  ExprPtr operand;
  friend bool operator==(const Not&, const Not&) = default;
};

// AND / OR are n-ary so that long generated conjunctions do not make deep
// trees (the depth limit guards recursion, not clause counts).
enum class LogicalOp { and_, or_ };
struct Logical {
  LogicalOp op = LogicalOp::and_;
  std::vector<ExprPtr> operands;  // two or more
  friend bool operator==(const Logical&, const Logical&) = default;
};

// Any function: built-in (name upper-cased) or user-defined. COUNT(*) has
// star set and no arguments.
struct FunctionCall {
  std::string name;  // upper case
  bool distinct = false;
  bool star = false;
  std::vector<ExprPtr> args;
  friend bool operator==(const FunctionCall&, const FunctionCall&) = default;
};

struct WhenClause {
  ExprPtr when;  // a condition (searched CASE) or a value (simple CASE)
  ExprPtr then;
  friend bool operator==(const WhenClause&, const WhenClause&) = default;
};
struct Case {
  ExprPtr operand;  // null for a searched CASE
  std::vector<WhenClause> whens;
  ExprPtr otherwise;  // null when there is no ELSE
  friend bool operator==(const Case&, const Case&) = default;
};

// The ADQL 2.1 CAST target types.
enum class CastKind { smallint, integer, bigint, real, double_precision, char_, varchar, timestamp };
struct CastType {
  CastKind kind = CastKind::integer;
  std::optional<std::int64_t> length;  // CHAR(n) / VARCHAR(n)
  friend bool operator==(const CastType&, const CastType&) = default;
};
struct Cast {
  ExprPtr operand;
  CastType type;
  friend bool operator==(const Cast&, const Cast&) = default;
};

struct ScalarSubquery {
  QueryPtr query;
  friend bool operator==(const ScalarSubquery&, const ScalarSubquery&) = default;
};

struct Expr {
  Position pos;
  std::variant<NullLiteral, IntegerLiteral, RealLiteral, StringLiteral, ColumnRef, Star, Negate, Binary,
               Comparison, Between, Like, InList, InQuery, Exists, IsNull, Not, Logical, FunctionCall, Case,
               Cast, ScalarSubquery>
      node;
  friend bool operator==(const Expr&, const Expr&) = default;
};

// True for the node kinds that are conditions (search conditions) rather
// than values; ADQL keeps the two apart and so do the parser and translator.
bool is_condition(const Expr& e);

// ---------------------------------------------------------------------------
// Queries

struct SelectItem {
  ExprPtr expr;  // may hold a Star
  std::optional<Identifier> alias;
  friend bool operator==(const SelectItem&, const SelectItem&) = default;
};

struct TableRef;
using TableRefPtr = Box<TableRef>;

struct NamedTable {
  std::vector<Identifier> name;  // [[catalog.]schema.]table
  std::optional<Identifier> alias;
  friend bool operator==(const NamedTable&, const NamedTable&) = default;
};

struct DerivedTable {
  QueryPtr query;
  Identifier alias;  // mandatory in ADQL
  friend bool operator==(const DerivedTable&, const DerivedTable&) = default;
};

enum class JoinKind { inner, left, right, full, cross };
struct Join {
  JoinKind kind = JoinKind::inner;
  bool natural = false;
  TableRefPtr left, right;
  ExprPtr on;                               // JOIN ... ON
  std::vector<Identifier> using_columns;    // JOIN ... USING (...)
  friend bool operator==(const Join&, const Join&) = default;
};

struct TableRef {
  Position pos;
  std::variant<NamedTable, DerivedTable, Join> node;
  friend bool operator==(const TableRef&, const TableRef&) = default;
};

enum class Quantifier { none, all, distinct };

struct Select {
  Position pos;
  Quantifier quantifier = Quantifier::none;
  std::optional<std::int64_t> top;
  std::vector<SelectItem> items;
  std::vector<TableRef> from;  // comma-separated references (a cross join)
  ExprPtr where;               // optional
  std::vector<ExprPtr> group_by;
  ExprPtr having;  // optional
  friend bool operator==(const Select&, const Select&) = default;
};

enum class SetOpKind { union_, intersect, except };
struct SetOperation {
  SetOpKind kind = SetOpKind::union_;
  bool all = false;
  QueryPtr left, right;
  friend bool operator==(const SetOperation&, const SetOperation&) = default;
};

struct OrderItem {
  ExprPtr expr;  // an output column name, an ordinal (integer) or an expression
  bool descending = false;
  friend bool operator==(const OrderItem&, const OrderItem&) = default;
};

struct WithItem {
  Identifier name;
  std::vector<Identifier> columns;  // optional column list
  QueryPtr query;
  friend bool operator==(const WithItem&, const WithItem&) = default;
};

// A query expression: [WITH ...] body [ORDER BY ...] [OFFSET n]. The body is
// one SELECT, a set operation between two queries, or a parenthesised query.
struct Query {
  Position pos;
  std::vector<WithItem> with;
  std::variant<Box<Select>, SetOperation, QueryPtr> body;
  std::vector<OrderItem> order_by;
  std::optional<std::int64_t> offset;
  friend bool operator==(const Query&, const Query&) = default;
};

}  // namespace pixserve::adql
