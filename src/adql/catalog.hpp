// What the translator may read: tables with their columns and ADQL types.
// The TAP service fills a Catalog from TAP_SCHEMA; tests use SimpleCatalog.
// Only tables found here can appear in the SQL, and every name in the SQL
// is the catalogue's own (sql_name), never text from the query.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adql/ast.hpp"

namespace pixserve::adql {

// ADQL 2.1 / TAP 1.1 column types. Geometry values (point, circle, polygon,
// region) are stored as STC-S text ("POLYGON ICRS 10 20 ...").
enum class AdqlType {
  unknown,  // NULL literals and anything not inferred
  smallint,
  integer,
  bigint,
  real,
  double_precision,
  char_,
  varchar,
  timestamp,
  boolean,
  binary,  // BINARY, VARBINARY, BLOB
  clob,
  point,
  circle,
  polygon,
  region,
};

bool is_numeric(AdqlType t);
bool is_integer(AdqlType t);
bool is_string(AdqlType t);  // char, varchar, clob
bool is_geometry(AdqlType t);
std::string_view type_name(AdqlType t);  // "DOUBLE", "VARCHAR", "POINT", ...
// TAP_SCHEMA.columns datatype (TAP 1.1: "SMALLINT", "DOUBLE", "VARCHAR",
// "POINT", "REGION", ...) or VOTable datatype with xtype ("double", "char" +
// "adql:REGION"/"polygon"/"point"/"circle"/"timestamp"); unknown names give
// AdqlType::unknown.
AdqlType parse_type_name(std::string_view datatype, std::string_view xtype = {});

struct ColumnDef {
  std::string name;      // ADQL name (as in TAP_SCHEMA.columns.column_name)
  AdqlType type = AdqlType::unknown;
  std::string sql_name;  // the database column; empty means same as name
  std::string unit, ucd, utype, description;
  std::optional<int> arraysize;  // CHAR(n) / VARCHAR(n)
  // Backed by the spatial index (HEALPix cells of the row's footprint): a
  // CONTAINS/INTERSECTS on it in a WHERE conjunction yields a SpatialHint.
  bool indexed = false;
  bool principal = false;
  bool std = false;
  const std::string& sql() const { return sql_name.empty() ? name : sql_name; }
};

struct TableDef {
  std::string schema;      // ADQL schema name ("ivoa"); may be empty
  std::string name;        // ADQL table name ("obscore")
  std::string sql_schema;  // database schema, empty for none (SQLite)
  std::string sql_name;    // database table/view ("ivoa_obscore"); empty means name
  std::string description;
  std::vector<ColumnDef> columns;
  std::string qualified_name() const { return schema.empty() ? name : schema + "." + name; }
  const std::string& sql() const { return sql_name.empty() ? name : sql_name; }
};

// True when an identifier as written names `name`: delimited identifiers
// exactly, regular ones case-insensitively (ADQL 2.1 section 2.1.3).
bool name_matches(const Identifier& id, std::string_view name);

class Catalog {
 public:
  virtual ~Catalog() = default;
  // Every readable table. Pointers stay valid for the catalogue's lifetime.
  virtual std::vector<const TableDef*> tables() const = 0;
  // Tables matching [schema.]table (several when the name is ambiguous).
  std::vector<const TableDef*> find(const std::optional<Identifier>& schema, const Identifier& table) const;
};

// An in-memory catalogue.
class SimpleCatalog : public Catalog {
 public:
  SimpleCatalog& add(TableDef table);
  std::vector<const TableDef*> tables() const override;

 private:
  std::vector<std::unique_ptr<TableDef>> tables_;  // stable addresses across add()
};

}  // namespace pixserve::adql
