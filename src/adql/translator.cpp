// translate(): parse, bind against the catalogue (binder.hpp), write SQL for
// the dialect (sql_writer.hpp).
#include "adql/translator.hpp"

#include "adql/binder.hpp"
#include "adql/sql_writer.hpp"

namespace pixserve::adql {

namespace {

constexpr LanguageFeature kFeatures[] = {
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "POINT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CIRCLE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "BOX"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "POLYGON"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CENTROID"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "CONTAINS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "INTERSECTS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "DISTANCE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "AREA"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORD1"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORD2"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adqlgeo", "COORDSYS"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "LOWER"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "UPPER"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-string", "ILIKE"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "UNION"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "EXCEPT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-sets", "INTERSECT"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-common-table", "WITH"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-type", "CAST"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-offset", "OFFSET"},
    {"ivo://ivoa.net/std/TAPRegExt#features-adql-conditional", "COALESCE"},
};

// SpatialHint::row_limit for the hint of a query that is a plain selection
// of rows of its table.
void mark_row_selection(BoundQuery& q) {
  auto* s = std::get_if<BoundSelect>(&q.body);
  if (!s || !q.with.empty() || !q.order_by.empty() || q.offset || !q.limit) return;
  if (s->distinct || s->aggregated || !s->group_by.empty() || s->having || s->index_hints.size() != 1) return;
  if (s->from.size() != 1 || !std::holds_alternative<BoundTable>(s->from[0].node)) return;
  s->index_hints[0].hint.row_limit = q.limit;
}

}  // namespace

Translation translate(const Query& query, const Catalog& catalog, const TranslateOptions& options) {
  Binder binder(catalog);
  BoundQuery bound = binder.bind_statement(query, options.max_rows);
  mark_row_selection(bound);
  Translation translation;
  translation.sql = write_sql(bound, options.dialect, options.index_filter);
  translation.columns = bound.columns;
  translation.hints = binder.take_hints();
  return translation;
}

Translation translate(std::string_view adql, const Catalog& catalog, const TranslateOptions& options) {
  return translate(parse(adql, options.parse), catalog, options);
}

std::span<const LanguageFeature> supported_features() { return kFeatures; }

}  // namespace pixserve::adql
