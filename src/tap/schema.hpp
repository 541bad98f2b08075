// What TAP serves, described once: the schemas, tables, columns and foreign
// keys of TAP_SCHEMA. From this one description come
//   - the ADQL catalogue (only these tables can be read, under their SQL
//     names: the per-connection views of tap_query.cpp),
//   - the rows of the TAP_SCHEMA tables (schemas, tables, columns, keys,
//     key_columns, TAP 1.1 columns),
//   - the VOSI tables document (/api/tap/tables),
//   - the VOTable FIELD metadata of result columns (types, units, UCDs,
//     utypes, xtypes).
//
// Tables: ivoa.obscore (ObsCore 1.1 plus the survey columns, from
// repo::obscore_columns()), survey.datasets, survey.visits (observing
// conditions per visit), survey.provenance (inputs of each dataset),
// survey.patches (the sky map: the geometry of each tract's patches),
// survey.coadds (each coadd patch's provenance: inputs, coverage, depth), the
// R-EFD tables efd.weather and efd.visit_summary (repo/efd.hpp), the CAOM2
// tables caom2.Observation, Plane, Artifact, Part, Chunk (tap/caom2.hpp), and the
// five TAP_SCHEMA tables. Every data table is a view restricted to the
// rows the caller may see (visibility_predicate()).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adql/catalog.hpp"
#include "db/dialect.hpp"
#include "auth/identity.hpp"
#include "votable/model.hpp"

namespace pixserve::tap {

struct TapColumn {
  adql::ColumnDef def;  // ADQL name and type, SQL name, unit, UCD, utype, description, flags
  // TAP_SCHEMA.columns.column_name when it differs from def.name (a
  // reserved word such as "size" is written as a delimited identifier).
  std::string tap_name{};
};

struct TapTable {
  adql::TableDef def;           // schema, name, SQL name, description, columns
  std::string type = "table";   // TAP_SCHEMA.tables.table_type: table or view
  std::string utype{};
  std::vector<TapColumn> columns{};  // same order as def.columns
};

struct TapKey {
  std::string id{};
  std::string from_table{};    // qualified
  std::string target_table{};  // qualified
  std::string description{};
  std::vector<std::pair<std::string, std::string>> columns{};  // from, target
};

struct TapSchemaInfo {
  std::string name{};
  std::string description{};
};

// The VOTable datatype, arraysize and xtype of an ADQL type (TAP 1.1
// TAP_SCHEMA.columns and result FIELDs): INTEGER -> int, BIGINT -> long,
// VARCHAR -> char *, TIMESTAMP -> char * timestamp, POINT -> double 2
// point, CIRCLE -> double 3 circle, POLYGON -> double * polygon, REGION ->
// char * adql:REGION (STC-S), ...
struct VotableType {
  votable::Datatype datatype = votable::Datatype::char_;
  std::string arraysize{};
  std::string xtype{};
};
VotableType votable_type(adql::AdqlType type);

// The FIELD of a result column: type from `type`, metadata from the
// catalogue column when the output is one as is.
votable::Field result_field(const std::string& name, adql::AdqlType type, const adql::ColumnDef* source);

class TapMetadata {
 public:
  TapMetadata();

  const std::vector<TapSchemaInfo>& schemas() const noexcept { return schemas_; }
  const std::vector<TapTable>& tables() const noexcept { return tables_; }
  const std::vector<TapKey>& keys() const noexcept { return keys_; }
  // The ADQL catalogue of exactly these tables.
  const adql::Catalog& catalog() const noexcept { return catalog_; }

  // VOSI tables 1.1 (<vosi:tableset>); detail_min leaves out the columns.
  std::string vosi_tables_xml(bool detail_min = false) const;

 private:
  std::vector<TapSchemaInfo> schemas_;
  std::vector<TapTable> tables_;
  std::vector<TapKey> keys_;
  adql::SimpleCatalog catalog_;
};

// Who runs a query: the caller's identity (sync) or the job owner's (async).
// The data tables are read through TEMP views restricted to the rows the
// viewer may see, printed from the one rights policy (auth::visibility_sql),
// so TAP filters rows inside SQL, before TOP and MAXREC, exactly as every
// other service does. A connection rebuilds its views whenever it serves a
// different viewer (viewer_key()).
using Viewer = auth::Identity;

// What the views depend on: user, groups, data rights, staff.
std::string viewer_key(const Viewer& viewer);

// SQL condition on a `dataset` row aliased `alias`: true when the viewer
// may see it. The policy's parameters are inlined as SQL literals (views
// cannot hold bound parameters) and its "now" is the database's clock, so a
// view kept across queries stays right as embargoes end.
std::string visibility_predicate(const Viewer& viewer, std::string_view alias, db::Dialect dialect);

// The views the catalogue's data tables are read through, restricted to the
// viewer's rows: each table's SQL name and the SELECT behind it.
// datalink_links: the path (or URL) of DataLink's links endpoint;
// ivoa.obscore's access_url is it followed by ?ID=<the dataset's DID>.
struct ViewDefinition {
  std::string name;    // tap_ivoa_obscore, tap_survey_*
  std::string select;  // SELECT ... FROM the registry's tables WHERE visible
};
// wanted: when set, only the views it accepts (by name) are returned, and
// the EFD and CAOM2 ones it refuses are not even written (the CAOM2 ones are
// long): a PostgreSQL query carries only the views it names.
std::vector<ViewDefinition> view_definitions(const Viewer& viewer, std::string_view datalink_links, db::Dialect dialect,
                                             const std::function<bool(std::string_view)>& wanted = {});

// The statements that create them as TEMP views on one query connection
// (SQLite); run whenever the viewer changes, after drop_views_sql().
// PostgreSQL queries carry them as common table expressions instead
// (tap/query.cpp), which a read-only standby can run.
std::vector<std::string> views_sql(const Viewer& viewer, std::string_view datalink_links, db::Dialect dialect);
std::vector<std::string> drop_views_sql(db::Dialect dialect);

}  // namespace pixserve::tap
