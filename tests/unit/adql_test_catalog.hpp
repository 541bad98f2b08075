// The catalogue shared by the ADQL tests: an ObsCore-like table, survey
// tables to join, TAP_SCHEMA.columns (with the reserved column name "size")
// and a table with case-sensitive (delimited) names. create_sqlite_schema()
// makes matching empty tables so translated SQL can be prepared.
#pragma once

#include <string>

#include "adql/catalog.hpp"
#include "db/database.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql::testing {

inline ColumnDef col(std::string name, AdqlType type, bool indexed = false) {
  ColumnDef c;
  c.name = std::move(name);
  c.type = type;
  c.indexed = indexed;
  return c;
}

inline SimpleCatalog make_test_catalog() {
  SimpleCatalog cat;
  TableDef obscore;
  obscore.schema = "ivoa";
  obscore.name = "obscore";
  obscore.sql_name = "ivoa_obscore";
  obscore.columns = {
      col("dataproduct_type", AdqlType::varchar), col("calib_level", AdqlType::integer),
      col("obs_collection", AdqlType::varchar),   col("obs_id", AdqlType::varchar),
      col("s_ra", AdqlType::double_precision, true), col("s_dec", AdqlType::double_precision, true),
      col("s_fov", AdqlType::double_precision),   col("s_region", AdqlType::region, true),
      col("t_min", AdqlType::double_precision),   col("t_max", AdqlType::double_precision),
      col("em_min", AdqlType::double_precision),  col("band", AdqlType::varchar),
      col("visit", AdqlType::bigint),             col("detector", AdqlType::integer),
      col("obs_release_date", AdqlType::timestamp), col("target_name", AdqlType::varchar),
  };
  obscore.columns[4].unit = "deg";
  obscore.columns[4].ucd = "pos.eq.ra";
  cat.add(obscore);

  TableDef visits;
  visits.schema = "survey";
  visits.name = "visits";
  visits.sql_name = "survey_visits";
  visits.columns = {col("visit", AdqlType::bigint), col("band", AdqlType::varchar),
                    col("seeing", AdqlType::double_precision), col("airmass", AdqlType::double_precision),
                    col("exptime", AdqlType::double_precision)};
  cat.add(visits);

  TableDef prov;
  prov.schema = "survey";
  prov.name = "provenance";
  prov.sql_name = "survey_provenance";
  prov.columns = {col("obs_id", AdqlType::varchar), col("input_id", AdqlType::varchar), col("role", AdqlType::varchar)};
  cat.add(prov);

  TableDef columns;
  columns.schema = "TAP_SCHEMA";
  columns.name = "columns";
  columns.sql_name = "tap_schema_columns";
  columns.columns = {col("table_name", AdqlType::varchar), col("column_name", AdqlType::varchar),
                     col("datatype", AdqlType::varchar), col("size", AdqlType::integer),
                     col("indexed", AdqlType::integer)};
  cat.add(columns);

  TableDef mixed;
  mixed.schema = "survey";
  mixed.name = "MixedCase";
  mixed.sql_name = "survey_mixed";
  mixed.columns = {col("Flux", AdqlType::double_precision), col("id", AdqlType::integer),
                   col("pos", AdqlType::point)};
  cat.add(mixed);
  return cat;
}

inline void create_sqlite_schema(db::Connection& db, const Catalog& cat) {
  for (const TableDef* t : cat.tables()) {
    std::string sql = "CREATE TABLE " + quote_identifier(t->sql()) + " (";
    for (std::size_t i = 0; i < t->columns.size(); ++i) {
      const auto& c = t->columns[i];
      sql += (i ? ", " : "") + quote_identifier(c.sql()) + " " +
             (is_integer(c.type) ? "INTEGER" : is_numeric(c.type) ? "REAL" : "TEXT");
    }
    if (t->name == "obscore") sql += ", dataset_key INTEGER";
    db.exec(sql + ")");
  }
}

}  // namespace pixserve::adql::testing
