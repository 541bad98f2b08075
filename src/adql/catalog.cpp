#include "adql/catalog.hpp"

#include <cctype>
#include <string>

namespace pixserve::adql {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool is_numeric(AdqlType t) {
  return t == AdqlType::smallint || t == AdqlType::integer || t == AdqlType::bigint || t == AdqlType::real ||
         t == AdqlType::double_precision;
}
bool is_integer(AdqlType t) { return t == AdqlType::smallint || t == AdqlType::integer || t == AdqlType::bigint; }
bool is_string(AdqlType t) { return t == AdqlType::char_ || t == AdqlType::varchar || t == AdqlType::clob; }
bool is_geometry(AdqlType t) {
  return t == AdqlType::point || t == AdqlType::circle || t == AdqlType::polygon || t == AdqlType::region;
}

std::string_view type_name(AdqlType t) {
  switch (t) {
    case AdqlType::unknown: return "UNKNOWN";
    case AdqlType::smallint: return "SMALLINT";
    case AdqlType::integer: return "INTEGER";
    case AdqlType::bigint: return "BIGINT";
    case AdqlType::real: return "REAL";
    case AdqlType::double_precision: return "DOUBLE";
    case AdqlType::char_: return "CHAR";
    case AdqlType::varchar: return "VARCHAR";
    case AdqlType::timestamp: return "TIMESTAMP";
    case AdqlType::boolean: return "BOOLEAN";
    case AdqlType::binary: return "VARBINARY";
    case AdqlType::clob: return "CLOB";
    case AdqlType::point: return "POINT";
    case AdqlType::circle: return "CIRCLE";
    case AdqlType::polygon: return "POLYGON";
    case AdqlType::region: return "REGION";
  }
  return "UNKNOWN";
}

AdqlType parse_type_name(std::string_view datatype, std::string_view xtype) {
  if (!xtype.empty()) {
    if (iequals(xtype, "point")) return AdqlType::point;
    if (iequals(xtype, "circle")) return AdqlType::circle;
    if (iequals(xtype, "polygon")) return AdqlType::polygon;
    if (iequals(xtype, "adql:REGION") || iequals(xtype, "region") || iequals(xtype, "shape")) return AdqlType::region;
    if (iequals(xtype, "timestamp") || iequals(xtype, "adql:TIMESTAMP")) return AdqlType::timestamp;
    if (iequals(xtype, "adql:POINT")) return AdqlType::point;
    if (iequals(xtype, "adql:CLOB")) return AdqlType::clob;
  }
  struct Entry {
    std::string_view name;
    AdqlType type;
  };
  static constexpr Entry kNames[] = {
      {"SMALLINT", AdqlType::smallint}, {"short", AdqlType::smallint},     {"INTEGER", AdqlType::integer},
      {"INT", AdqlType::integer},       {"BIGINT", AdqlType::bigint},      {"long", AdqlType::bigint},
      {"REAL", AdqlType::real},         {"float", AdqlType::real},         {"DOUBLE", AdqlType::double_precision},
      {"DOUBLE PRECISION", AdqlType::double_precision},                    {"CHAR", AdqlType::char_},
      {"VARCHAR", AdqlType::varchar},   {"unicodeChar", AdqlType::varchar}, {"TIMESTAMP", AdqlType::timestamp},
      {"BOOLEAN", AdqlType::boolean},   {"BINARY", AdqlType::binary},      {"VARBINARY", AdqlType::binary},
      {"BLOB", AdqlType::binary},       {"unsignedByte", AdqlType::smallint}, {"CLOB", AdqlType::clob},
      {"POINT", AdqlType::point},       {"CIRCLE", AdqlType::circle},      {"POLYGON", AdqlType::polygon},
      {"REGION", AdqlType::region},
  };
  for (const auto& e : kNames) {
    if (iequals(e.name, datatype)) return e.type;
  }
  return AdqlType::unknown;
}

bool name_matches(const Identifier& id, std::string_view name) {
  return id.delimited ? id.text == name : iequals(id.text, name);
}

std::vector<const TableDef*> Catalog::find(const std::optional<Identifier>& schema, const Identifier& table) const {
  std::vector<const TableDef*> out;
  for (const TableDef* t : tables()) {
    if (!name_matches(table, t->name)) continue;
    if (schema && !name_matches(*schema, t->schema)) continue;
    out.push_back(t);
  }
  return out;
}

SimpleCatalog& SimpleCatalog::add(TableDef table) {
  tables_.push_back(std::make_unique<TableDef>(std::move(table)));
  return *this;
}

std::vector<const TableDef*> SimpleCatalog::tables() const {
  std::vector<const TableDef*> out;
  out.reserve(tables_.size());
  for (const auto& t : tables_) out.push_back(t.get());
  return out;
}

}  // namespace pixserve::adql
