// Normalised ADQL output. Every compound expression is parenthesised and
// negative numbers are written as (-n), so the text re-parses to the same
// tree whatever the precedence rules and never forms a "--" comment.
#include <fmt/format.h>

#include <cmath>
#include <string>

#include "adql/parser.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace {

std::string ident(const Identifier& id) { return id.delimited ? quote_identifier(id.text) : id.text; }

std::string dotted(const std::vector<Identifier>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '.';
    out += ident(parts[i]);
  }
  return out;
}

const char* compare_text(CompareOp op) {
  switch (op) {
    case CompareOp::eq: return "=";
    case CompareOp::ne: return "<>";
    case CompareOp::lt: return "<";
    case CompareOp::le: return "<=";
    case CompareOp::gt: return ">";
    case CompareOp::ge: return ">=";
  }
  return "=";
}

const char* binary_text(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "+";
    case BinaryOp::subtract: return "-";
    case BinaryOp::multiply: return "*";
    case BinaryOp::divide: return "/";
    case BinaryOp::concat: return "||";
  }
  return "+";
}

const char* cast_text(CastKind k) {
  switch (k) {
    case CastKind::smallint: return "SMALLINT";
    case CastKind::integer: return "INTEGER";
    case CastKind::bigint: return "BIGINT";
    case CastKind::real: return "REAL";
    case CastKind::double_precision: return "DOUBLE PRECISION";
    case CastKind::char_: return "CHAR";
    case CastKind::varchar: return "VARCHAR";
    case CastKind::timestamp: return "TIMESTAMP";
  }
  return "INTEGER";
}

class Printer {
 public:
  std::string expr(const Expr& e) {
    return std::visit([&](const auto& n) { return print(n); }, e.node);
  }

  std::string query(const Query& q) {
    std::string out;
    if (!q.with.empty()) {
      out += "WITH ";
      for (std::size_t i = 0; i < q.with.size(); ++i) {
        const auto& w = q.with[i];
        if (i) out += ", ";
        out += ident(w.name);
        if (!w.columns.empty()) out += "(" + list(w.columns) + ")";
        out += " AS (" + query(*w.query) + ")";
      }
      out += " ";
    }
    if (const auto* s = std::get_if<Box<Select>>(&q.body)) {
      out += select(**s);
    } else if (const auto* op = std::get_if<SetOperation>(&q.body)) {
      const char* kw = op->kind == SetOpKind::union_ ? "UNION" : op->kind == SetOpKind::intersect ? "INTERSECT" : "EXCEPT";
      // Operands the parser grouped with parentheses carry a parenthesised
      // body and print their own; the others follow precedence already.
      out += query(*op->left) + " " + kw + (op->all ? " ALL " : " ") + query(*op->right);
    } else {
      out += "(" + query(*std::get<QueryPtr>(q.body)) + ")";
    }
    if (!q.order_by.empty()) {
      out += " ORDER BY ";
      for (std::size_t i = 0; i < q.order_by.size(); ++i) {
        if (i) out += ", ";
        out += expr(*q.order_by[i].expr) + (q.order_by[i].descending ? " DESC" : " ASC");
      }
    }
    if (q.offset) out += fmt::format(" OFFSET {}", *q.offset);
    return out;
  }

 private:
  std::string list(const std::vector<Identifier>& ids) {
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + ident(ids[i]);
    return out;
  }
  std::string list(const std::vector<ExprPtr>& es) {
    std::string out;
    for (std::size_t i = 0; i < es.size(); ++i) out += (i ? ", " : "") + expr(*es[i]);
    return out;
  }

  std::string select(const Select& s) {
    std::string out = "SELECT ";
    if (s.quantifier == Quantifier::distinct) out += "DISTINCT ";
    if (s.quantifier == Quantifier::all) out += "ALL ";
    if (s.top) out += fmt::format("TOP {} ", *s.top);
    for (std::size_t i = 0; i < s.items.size(); ++i) {
      if (i) out += ", ";
      out += expr(*s.items[i].expr);
      if (s.items[i].alias) out += " AS " + ident(*s.items[i].alias);
    }
    out += " FROM ";
    for (std::size_t i = 0; i < s.from.size(); ++i) out += (i ? ", " : "") + table(s.from[i]);
    if (s.where) out += " WHERE " + expr(*s.where);
    if (!s.group_by.empty()) out += " GROUP BY " + list(s.group_by);
    if (s.having) out += " HAVING " + expr(*s.having);
    return out;
  }

  std::string table(const TableRef& t) {
    if (const auto* n = std::get_if<NamedTable>(&t.node)) {
      return dotted(n->name) + (n->alias ? " AS " + ident(*n->alias) : "");
    }
    if (const auto* d = std::get_if<DerivedTable>(&t.node)) return "(" + query(*d->query) + ") AS " + ident(d->alias);
    const auto& j = std::get<Join>(t.node);
    std::string kw;
    switch (j.kind) {
      case JoinKind::inner: kw = "INNER JOIN"; break;
      case JoinKind::left: kw = "LEFT OUTER JOIN"; break;
      case JoinKind::right: kw = "RIGHT OUTER JOIN"; break;
      case JoinKind::full: kw = "FULL OUTER JOIN"; break;
      case JoinKind::cross: kw = "CROSS JOIN"; break;
    }
    if (j.natural) kw = "NATURAL " + kw;
    // Joins nest to the left; the right side is parenthesised when it is a
    // join itself so that the grouping survives.
    std::string right = table(*j.right);
    if (std::holds_alternative<Join>(j.right->node)) right = "(" + right + ")";
    std::string out = table(*j.left) + " " + kw + " " + right;
    if (j.on) out += " ON " + expr(*j.on);
    if (!j.using_columns.empty()) out += " USING (" + list(j.using_columns) + ")";
    return out;
  }

  std::string print(const NullLiteral&) { return "NULL"; }
  std::string print(const IntegerLiteral& l) {
    return l.value < 0 ? fmt::format("({})", l.value) : fmt::format("{}", l.value);
  }
  std::string print(const RealLiteral& l) {
    const std::string s = format_real(l.value);
    return l.value < 0 || (l.value == 0 && std::signbit(l.value)) ? "(" + s + ")" : s;
  }
  std::string print(const StringLiteral& l) { return quote_string(l.value); }
  std::string print(const ColumnRef& c) { return dotted(c.parts); }
  std::string print(const Star& s) { return s.qualifier.empty() ? "*" : dotted(s.qualifier) + ".*"; }
  // The operand is parenthesised so that -(0.5) stays a negation and does
  // not re-parse as the literal -0.5.
  std::string print(const Negate& n) { return "(-(" + expr(*n.operand) + "))"; }
  std::string print(const Binary& b) {
    return "(" + expr(*b.left) + " " + binary_text(b.op) + " " + expr(*b.right) + ")";
  }
  std::string print(const Comparison& c) {
    return "(" + expr(*c.left) + " " + compare_text(c.op) + " " + expr(*c.right) + ")";
  }
  std::string print(const Between& b) {
    return "(" + expr(*b.value) + (b.negated ? " NOT" : "") + " BETWEEN " + expr(*b.low) + " AND " +
           expr(*b.high) + ")";
  }
  std::string print(const Like& l) {
    return "(" + expr(*l.value) + (l.negated ? " NOT" : "") + (l.case_insensitive ? " ILIKE " : " LIKE ") +
           expr(*l.pattern) + ")";
  }
  std::string print(const InList& in) {
    return "(" + expr(*in.value) + (in.negated ? " NOT" : "") + " IN (" + list(in.items) + "))";
  }
  std::string print(const InQuery& in) {
    return "(" + expr(*in.value) + (in.negated ? " NOT" : "") + " IN (" + query(*in.query) + "))";
  }
  std::string print(const Exists& e) { return "EXISTS (" + query(*e.query) + ")"; }
  std::string print(const IsNull& n) { return "(" + expr(*n.value) + (n.negated ? " IS NOT NULL)" : " IS NULL)"); }
  std::string print(const Not& n) { return "(NOT " + expr(*n.operand) + ")"; }
  std::string print(const Logical& l) {
    std::string out = "(";
    for (std::size_t i = 0; i < l.operands.size(); ++i) {
      if (i) out += l.op == LogicalOp::and_ ? " AND " : " OR ";
      out += expr(*l.operands[i]);
    }
    return out + ")";
  }
  std::string print(const FunctionCall& f) {
    if (f.star) return f.name + "(*)";
    return f.name + "(" + (f.distinct ? "DISTINCT " : "") + list(f.args) + ")";
  }
  std::string print(const Case& c) {
    std::string out = "CASE";
    if (c.operand) out += " " + expr(*c.operand);
    for (const auto& w : c.whens) out += " WHEN " + expr(*w.when) + " THEN " + expr(*w.then);
    if (c.otherwise) out += " ELSE " + expr(*c.otherwise);
    return out + " END";
  }
  std::string print(const Cast& c) {
    std::string type = cast_text(c.type.kind);
    if (c.type.length) type += fmt::format("({})", *c.type.length);
    return "CAST(" + expr(*c.operand) + " AS " + type + ")";
  }
  std::string print(const ScalarSubquery& s) { return "(" + query(*s.query) + ")"; }
};

}  // namespace

std::string to_adql(const Query& q) { return Printer().query(q); }
std::string to_adql(const Expr& e) { return Printer().expr(e); }

}  // namespace pixserve::adql
