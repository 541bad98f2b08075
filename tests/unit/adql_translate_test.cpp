// Translation to SQL for SQLite and PostgreSQL: exact SQL for the main
// constructs, output column metadata, name resolution errors, and spatial
// hints for the HEALPix index.
#include <gtest/gtest.h>

#include <string>

#include "adql/errors.hpp"
#include "adql/translator.hpp"
#include "adql_test_catalog.hpp"

namespace pixserve::adql {
namespace {

const SimpleCatalog& cat() {
  static const SimpleCatalog c = testing::make_test_catalog();
  return c;
}

std::string sql(std::string_view q, db::Dialect d = db::Dialect::sqlite) {
  TranslateOptions o;
  o.dialect = d;
  return translate(q, cat(), o).sql;
}

std::string pg(std::string_view q) { return sql(q, db::Dialect::postgresql); }

void expect_semantic_error(std::string_view q, const std::string& fragment, int line = 0, int column = 0) {
  try {
    translate(q, cat());
    ADD_FAILURE() << "no error for " << q;
  } catch (const SemanticError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    if (line) {
      EXPECT_EQ(e.line(), line) << e.what();
      EXPECT_EQ(e.column(), column) << e.what();
    }
  }
}

TEST(AdqlTranslate, SimpleSelect) {
  EXPECT_EQ(sql("SELECT TOP 5 obs_id, s_ra FROM ivoa.obscore WHERE calib_level >= 2 ORDER BY s_ra DESC"),
            "SELECT t1.\"obs_id\" AS c1, t1.\"s_ra\" AS c2 FROM \"ivoa_obscore\" AS t1 WHERE (t1.\"calib_level\" >= 2) "
            "ORDER BY c2 DESC LIMIT 5");
  EXPECT_EQ(pg("SELECT obs_id FROM ivoa.obscore OFFSET 10"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 OFFSET 10");
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore OFFSET 10"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 LIMIT -1 OFFSET 10");
}

TEST(AdqlTranslate, ColumnsMetadata) {
  const auto t = translate("SELECT o.s_ra AS ra, COUNT(*), s_dec + 1, * FROM ivoa.obscore AS o", cat());
  ASSERT_EQ(t.columns.size(), 3u + 16u);
  EXPECT_EQ(t.columns[0].name, "ra");
  EXPECT_EQ(t.columns[0].type, AdqlType::double_precision);
  ASSERT_TRUE(t.columns[0].source);
  EXPECT_EQ(t.columns[0].source->ucd, "pos.eq.ra");
  EXPECT_EQ(t.columns[0].source_table, "ivoa.obscore");
  EXPECT_EQ(t.columns[1].name, "count");
  EXPECT_EQ(t.columns[1].type, AdqlType::bigint);
  EXPECT_EQ(t.columns[2].name, "col3");
  EXPECT_FALSE(t.columns[2].source);
  EXPECT_EQ(t.columns[3].name, "dataproduct_type");
  EXPECT_EQ(t.columns[10].type, AdqlType::region);
}

TEST(AdqlTranslate, NamesComeFromTheCatalogue) {
  // Regular identifiers match in any case and are re-emitted as catalogued.
  EXPECT_EQ(sql("SELECT OBS_ID FROM IVOA.ObsCore"), "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1");
  // Delimited identifiers are case-sensitive.
  expect_semantic_error("SELECT \"OBS_ID\" FROM ivoa.obscore", "unknown column 'OBS_ID'");
  EXPECT_EQ(sql("SELECT \"Flux\" FROM survey.\"MixedCase\""), "SELECT t1.\"Flux\" AS c1 FROM \"survey_mixed\" AS t1");
  expect_semantic_error("SELECT \"flux\" FROM survey.\"MixedCase\"", "unknown column 'flux'");
  expect_semantic_error("SELECT id FROM survey.\"mixedcase\"", "unknown table 'survey.mixedcase'");
  // The reserved column name of TAP_SCHEMA.
  EXPECT_EQ(sql("SELECT \"size\" FROM TAP_SCHEMA.columns"),
            "SELECT t1.\"size\" AS c1 FROM \"tap_schema_columns\" AS t1");
  // Aliases written by the user never reach SQL.
  const std::string s = sql("SELECT x.obs_id AS \"Robert'); DROP TABLE x;--\" FROM ivoa.obscore AS \"x\"\"y\" , ivoa.obscore AS x");
  EXPECT_EQ(s.find("DROP"), std::string::npos);
  EXPECT_EQ(sql("SELECT 'a''b' FROM ivoa.obscore"), "SELECT 'a''b' AS c1 FROM \"ivoa_obscore\" AS t1");
}

TEST(AdqlTranslate, ResolutionErrors) {
  expect_semantic_error("SELECT a FROM nosuch", "unknown table 'nosuch'", 1, 15);
  expect_semantic_error("SELECT nosuch FROM ivoa.obscore", "unknown column 'nosuch'", 1, 8);
  expect_semantic_error("SELECT visit FROM ivoa.obscore, survey.visits", "column name 'visit' is ambiguous");
  expect_semantic_error("SELECT x.obs_id FROM ivoa.obscore AS o", "unknown table 'x'");
  expect_semantic_error("SELECT * FROM ivoa.obscore, ivoa.obscore", "appears twice");
  expect_semantic_error("SELECT obscore.obs_id FROM ivoa.obscore AS o", "unknown table 'obscore'");
  expect_semantic_error("SELECT a.b.c.d FROM ivoa.obscore", "catalog-qualified");
  expect_semantic_error("SELECT nosuch(1) FROM ivoa.obscore", "unknown function 'nosuch'");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore WHERE COUNT(*) > 1", "not allowed in WHERE");
  expect_semantic_error("SELECT SUM(MAX(s_ra)) FROM ivoa.obscore", "cannot be nested");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore WHERE obs_id = 1", "cannot compare VARCHAR with INTEGER");
  expect_semantic_error("SELECT s_ra + obs_id FROM ivoa.obscore", "needs a number");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore WHERE s_ra LIKE 'a'", "LIKE needs string operands");
  expect_semantic_error("SELECT a FROM (SELECT obs_id FROM ivoa.obscore) AS s", "unknown column 'a'");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore UNION SELECT obs_id, s_ra FROM ivoa.obscore",
                        "different numbers of columns (1 and 2)");
  expect_semantic_error("SELECT IN_UNIT(s_ra, 'rad') FROM ivoa.obscore", "IN_UNIT is not supported");
  expect_semantic_error("SELECT RAND(3) FROM ivoa.obscore", "seed");
  expect_semantic_error("SELECT POINT('GALACTIC', 1, 2) FROM ivoa.obscore", "not supported");
  expect_semantic_error("SELECT CIRCLE(1, 95, 1) FROM ivoa.obscore", "invalid CIRCLE");
  expect_semantic_error("SELECT POLYGON(0, 0, 1, 1, 2, 2, 3) FROM ivoa.obscore", "POLYGON needs at least 3 vertices");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(s_ra, CIRCLE(1, 2, 3)) = 1",
                        "needs geometry arguments");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore ORDER BY 3", "out of range");
  expect_semantic_error("SELECT ABS(1, 2) FROM ivoa.obscore", "ABS takes 1 argument, not 2");
  expect_semantic_error("SELECT obs_id FROM ivoa.obscore JOIN survey.visits USING (seeing)", "not in both tables");
}

TEST(AdqlTranslate, JoinsAndUsing) {
  EXPECT_EQ(sql("SELECT visit, seeing FROM ivoa.obscore JOIN survey.visits USING (visit)"),
            "SELECT t1.\"visit\" AS c1, t2.\"seeing\" AS c2 FROM \"ivoa_obscore\" AS t1 JOIN \"survey_visits\" AS t2 "
            "ON (t1.\"visit\" = t2.\"visit\")");
  EXPECT_EQ(sql("SELECT visit FROM ivoa.obscore AS o FULL OUTER JOIN survey.visits AS v USING (visit)"),
            "SELECT COALESCE(t1.\"visit\", t2.\"visit\") AS c1 FROM \"ivoa_obscore\" AS t1 FULL OUTER JOIN "
            "\"survey_visits\" AS t2 ON (t1.\"visit\" = t2.\"visit\")");
  // NATURAL JOIN on visit and band; * lists them once.
  const auto t = translate("SELECT * FROM ivoa.obscore NATURAL JOIN survey.visits", cat());
  EXPECT_NE(t.sql.find("ON (t1.\"band\" = t2.\"band\" AND t1.\"visit\" = t2.\"visit\")"), std::string::npos) << t.sql;
  EXPECT_EQ(t.columns.size(), 16u + 3u);
  EXPECT_EQ(t.columns[0].name, "band");
  EXPECT_EQ(sql("SELECT o.obs_id FROM ivoa.obscore AS o CROSS JOIN survey.visits AS v"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 CROSS JOIN \"survey_visits\" AS t2");
}

TEST(AdqlTranslate, SubqueriesAndSetOperations) {
  EXPECT_EQ(sql("SELECT n FROM (SELECT COUNT(*) AS n FROM ivoa.obscore) AS s WHERE n > 0"),
            "SELECT t2.c1 AS c1 FROM (SELECT count(*) AS c1 FROM \"ivoa_obscore\" AS t1) AS t2 WHERE (t2.c1 > 0)");
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore AS o WHERE EXISTS (SELECT 1 FROM survey.provenance AS p WHERE "
                "p.obs_id = o.obs_id)"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE EXISTS (SELECT 1 AS c1 FROM "
            "\"survey_provenance\" AS t2 WHERE (t2.\"obs_id\" = t1.\"obs_id\"))");
  EXPECT_EQ(sql("SELECT band FROM ivoa.obscore UNION SELECT band FROM survey.visits ORDER BY band"),
            "SELECT t1.\"band\" AS c1 FROM \"ivoa_obscore\" AS t1 UNION SELECT t2.\"band\" AS c1 FROM "
            "\"survey_visits\" AS t2 ORDER BY c1 ASC");
  EXPECT_EQ(sql("SELECT band FROM ivoa.obscore EXCEPT (SELECT TOP 1 band FROM survey.visits)"),
            "SELECT t1.\"band\" AS c1 FROM \"ivoa_obscore\" AS t1 EXCEPT SELECT * FROM (SELECT t2.\"band\" AS c1 "
            "FROM \"survey_visits\" AS t2 LIMIT 1) AS s1");
  EXPECT_EQ(sql("WITH v AS (SELECT visit FROM survey.visits WHERE seeing < 1) SELECT COUNT(*) FROM ivoa.obscore "
                "AS o JOIN v ON o.visit = v.visit"),
            "WITH q1 AS (SELECT t1.\"visit\" AS c1 FROM \"survey_visits\" AS t1 WHERE (t1.\"seeing\" < 1)) SELECT "
            "count(*) AS c1 FROM \"ivoa_obscore\" AS t2 JOIN q1 AS t3 ON (t2.\"visit\" = t3.c1)");
}

TEST(AdqlTranslate, DialectDifferences) {
  const char* q = "SELECT LOG10(s_ra), LOG(s_ra), MOD(calib_level, 2), MOD(s_ra, 2), ROUND(s_ra, 2), TRUNCATE(s_ra), "
                  "PI(), RAND(), POWER(2, 10) FROM ivoa.obscore";
  EXPECT_EQ(sql(q),
            "SELECT adql_log10(t1.\"s_ra\") AS c1, adql_log(t1.\"s_ra\") AS c2, adql_mod(t1.\"calib_level\", 2) AS c3, "
            "adql_mod(t1.\"s_ra\", 2) AS c4, adql_round(t1.\"s_ra\", 2) AS c5, adql_truncate(t1.\"s_ra\", 0) AS c6, "
            "adql_pi() AS c7, adql_rand() AS c8, adql_power(2, 10) AS c9 FROM \"ivoa_obscore\" AS t1");
  EXPECT_EQ(pg(q),
            "SELECT adql_log10(t1.\"s_ra\") AS c1, adql_log(t1.\"s_ra\") AS c2, mod(t1.\"calib_level\", NULLIF(2, 0)) AS c3, "
            "CAST(mod(CAST(t1.\"s_ra\" AS numeric), NULLIF(CAST(2 AS numeric), 0)) AS double precision) AS c4, "
            "CAST(round(CAST(t1.\"s_ra\" AS numeric), 2) AS double precision) AS c5, "
            "CAST(trunc(CAST(t1.\"s_ra\" AS numeric), 0) AS double precision) AS c6, pi() AS c7, random() AS c8, "
            "adql_power(2, 10) AS c9 FROM \"ivoa_obscore\" AS t1");
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore WHERE obs_id LIKE 'a_b%*' AND band ILIKE 'G'"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE ((t1.\"obs_id\" GLOB 'a?b*[*]') AND "
            "(t1.\"band\" LIKE 'G'))");
  EXPECT_EQ(pg("SELECT obs_id FROM ivoa.obscore WHERE obs_id NOT LIKE 'a%' AND band ILIKE 'G'"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE ((NOT (t1.\"obs_id\" LIKE 'a%' ESCAPE '')) "
            "AND (t1.\"band\" ILIKE 'G' ESCAPE ''))");
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore WHERE obs_id LIKE band"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE (adql_like(t1.\"obs_id\", t1.\"band\") = 1)");
  EXPECT_EQ(sql("SELECT CAST(s_ra AS INTEGER), CAST(visit AS VARCHAR(4)), CAST(obs_id AS DOUBLE PRECISION) FROM ivoa.obscore"),
            "SELECT CAST(t1.\"s_ra\" AS INTEGER) AS c1, substr(CAST(t1.\"visit\" AS TEXT), 1, 4) AS c2, "
            "CAST(t1.\"obs_id\" AS REAL) AS c3 FROM \"ivoa_obscore\" AS t1");
  EXPECT_EQ(pg("SELECT CAST(s_ra AS SMALLINT), CAST(visit AS VARCHAR(4)), CAST(obs_id AS DOUBLE PRECISION) FROM ivoa.obscore"),
            "SELECT CAST(trunc(t1.\"s_ra\") AS smallint) AS c1, CAST(t1.\"visit\" AS varchar(4)) AS c2, "
            "CAST(t1.\"obs_id\" AS double precision) AS c3 FROM \"ivoa_obscore\" AS t1");
  EXPECT_EQ(pg("SELECT visit || '-' || detector FROM ivoa.obscore"),
            "SELECT ((CAST(t1.\"visit\" AS text) || '-') || CAST(t1.\"detector\" AS text)) AS c1 FROM "
            "\"ivoa_obscore\" AS t1");
  EXPECT_EQ(sql("SELECT visit || '-' || detector FROM ivoa.obscore"),
            "SELECT ((t1.\"visit\" || '-') || t1.\"detector\") AS c1 FROM \"ivoa_obscore\" AS t1");
}

TEST(AdqlTranslate, MaxRowsCombinesWithTop) {
  TranslateOptions o;
  o.max_rows = 100;
  EXPECT_EQ(translate("SELECT TOP 5 obs_id FROM ivoa.obscore", cat(), o).sql,
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 LIMIT 5");
  EXPECT_EQ(translate("SELECT TOP 500 obs_id FROM ivoa.obscore", cat(), o).sql,
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 LIMIT 100");
  EXPECT_EQ(translate("SELECT obs_id FROM ivoa.obscore UNION SELECT band FROM survey.visits", cat(), o).sql,
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 UNION SELECT t2.\"band\" AS c1 FROM "
            "\"survey_visits\" AS t2 LIMIT 100");
}

TEST(AdqlTranslate, GeometryFunctions) {
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 10, "
                "-20, 0.5)) = 1"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE (adql_contains_point_circle(t1.\"s_ra\", "
            "t1.\"s_dec\", 10, (-20), 0.5) = 1)");
  EXPECT_EQ(sql("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, POLYGON(10, 20, 11, 20, 11, 21)) = 1"),
            "SELECT t1.\"obs_id\" AS c1 FROM \"ivoa_obscore\" AS t1 WHERE (adql_intersects(t1.\"s_region\", "
            "'POLYGON ICRS 10.0 20.0 11.0 20.0 11.0 21.0') = 1)");
  EXPECT_EQ(sql("SELECT DISTANCE(POINT(s_ra, s_dec), POINT(1, 2)), DISTANCE(s_ra, s_dec, 1, 2), AREA(s_region), "
                "COORD1(POINT(s_ra, s_dec)), COORD2(pos), COORDSYS(s_region), CENTROID(s_region) "
                "FROM ivoa.obscore, survey.\"MixedCase\""),
            "SELECT adql_distance(t1.\"s_ra\", t1.\"s_dec\", 1, 2) AS c1, adql_distance(t1.\"s_ra\", t1.\"s_dec\", 1, 2) "
            "AS c2, adql_area(t1.\"s_region\") AS c3, (t1.\"s_ra\") AS c4, adql_coord2(t2.\"pos\") AS c5, "
            "adql_coordsys(t1.\"s_region\") AS c6, adql_centroid(t1.\"s_region\") AS c7 FROM \"ivoa_obscore\" AS t1, "
            "\"survey_mixed\" AS t2");
  EXPECT_EQ(sql("SELECT POINT(s_ra, s_dec), CIRCLE(POINT(1, 2), 3), BOX(1, 2, 3, 4) FROM ivoa.obscore"),
            "SELECT adql_point(t1.\"s_ra\", t1.\"s_dec\") AS c1, 'CIRCLE ICRS 1.0 2.0 3.0' AS c2, "
            "'BOX ICRS 1.0 2.0 3.0 4.0' AS c3 FROM \"ivoa_obscore\" AS t1");
  EXPECT_EQ(sql("SELECT id FROM survey.\"MixedCase\" WHERE CONTAINS(pos, CIRCLE(1, 2, 3)) = 1 AND "
                "INTERSECTS(POINT(1, 2), CIRCLE(pos, 1)) = 0")
                .substr(0, 10),
            "SELECT t1.");
}

TEST(AdqlTranslate, SpatialHints) {
  {
    const auto t = translate("SELECT obs_id FROM ivoa.obscore WHERE calib_level = 2 AND CONTAINS(POINT('ICRS', s_ra, "
                             "s_dec), CIRCLE('ICRS', 10, 20, 0.5)) = 1",
                             cat());
    ASSERT_EQ(t.hints.size(), 1u);
    const auto& h = t.hints[0];
    EXPECT_EQ(h.kind, SpatialHint::Kind::point_in_shape);
    EXPECT_EQ(h.table, "ivoa.obscore");
    EXPECT_EQ(h.sql_alias, "t1");
    EXPECT_EQ(h.columns, (std::vector<std::string>{"s_ra", "s_dec"}));
    const auto& c = std::get<sky::Circle>(h.shape);
    EXPECT_EQ(c.center.ra, 10);
    EXPECT_EQ(c.center.dec, 20);
    EXPECT_EQ(c.radius_deg, 0.5);
  }
  {
    const auto t = translate("SELECT obs_id FROM ivoa.obscore WHERE 1 = INTERSECTS(s_region, BOX(359.5, 0, 2, 1))", cat());
    ASSERT_EQ(t.hints.size(), 1u);
    EXPECT_EQ(t.hints[0].kind, SpatialHint::Kind::region_intersects_shape);
    const auto& r = std::get<sky::RaDecRange>(t.hints[0].shape);
    EXPECT_DOUBLE_EQ(r.ra_min, 358.5);
    EXPECT_DOUBLE_EQ(r.ra_max, 0.5);
  }
  {
    const auto t = translate("SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT(10, 20), s_region) = 1", cat());
    ASSERT_EQ(t.hints.size(), 1u);
    EXPECT_EQ(t.hints[0].kind, SpatialHint::Kind::region_contains_shape);
  }
  // No hint under OR, NOT, for non-constant shapes, or "= 0".
  for (const char* q : {
           "SELECT obs_id FROM ivoa.obscore WHERE calib_level = 2 OR INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1",
           "SELECT obs_id FROM ivoa.obscore WHERE NOT INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1",
           "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(s_ra, 2, 3)) = 1",
           "SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 0",
           "SELECT id FROM survey.\"MixedCase\" WHERE CONTAINS(pos, CIRCLE(1, 2, 3)) = 1",  // not indexed
       }) {
    EXPECT_TRUE(translate(q, cat()).hints.empty()) << q;
  }
  // The index filter callback adds the caller's SQL to that WHERE.
  TranslateOptions o;
  o.index_filter = [](const SpatialHint& h) { return h.sql_alias + ".dataset_key IN (SELECT k FROM cells)"; };
  const auto t = translate("SELECT o.obs_id FROM ivoa.obscore AS o JOIN survey.visits AS v ON o.visit = v.visit WHERE "
                           "v.seeing < 1 AND INTERSECTS(o.s_region, CIRCLE(1, 2, 3)) = 1",
                           cat(), o);
  EXPECT_NE(t.sql.find("= 1)) AND (t1.dataset_key IN (SELECT k FROM cells))"), std::string::npos) << t.sql;
}

// An exact index filter stands for its predicate, which is then written as
// the constant 1; the hint carries the constant geometry for that test.
TEST(AdqlTranslate, AnExactIndexFilterReplacesItsPredicate) {
  TranslateOptions o;
  std::vector<SpatialHint> seen;
  o.index_filter = [&](const SpatialHint& h) {
    seen.push_back(h);
    return IndexFilter(h.sql_alias + ".dataset_key IN (1, 2)", h.kind != SpatialHint::Kind::point_in_shape);
  };
  const auto t = translate("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1 AND "
                           "CONTAINS(POINT(s_ra, s_dec), CIRCLE(1, 2, 3)) = 1 AND INTERSECTS(s_region, "
                           "POLYGON(1, 2, 3, 2, 2, 4)) = 0",
                           cat(), o);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<sky::Circle>(seen[0].constant));
  EXPECT_EQ(t.sql.find("adql_intersects(t1.\"s_region\", 'CIRCLE"), std::string::npos) << t.sql;
  EXPECT_NE(t.sql.find("WHERE ((1 = 1) AND"), std::string::npos) << t.sql;
  // Not the point constraint (not exact) nor the one compared with 0 (no hint).
  EXPECT_NE(t.sql.find("adql_contains_point_circle("), std::string::npos) << t.sql;
  EXPECT_NE(t.sql.find("adql_intersects(t1.\"s_region\", 'POLYGON"), std::string::npos) << t.sql;
  EXPECT_NE(t.sql.find("AND (t1.dataset_key IN (1, 2)) AND (t1.dataset_key IN (1, 2))"), std::string::npos) << t.sql;
}

// The query is bound completely before any SQL is written: a semantic error
// anywhere means the caller's index filter (which may create temporary
// tables) is never called.
TEST(AdqlTranslate, IndexFilterOnlyForQueriesThatBind) {
  int calls = 0;
  TranslateOptions o;
  o.index_filter = [&](const SpatialHint&) {
    ++calls;
    return std::string("1 = 1");
  };
  EXPECT_THROW(translate("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1 "
                         "ORDER BY no_such_column",
                         cat(), o),
               SemanticError);
  EXPECT_EQ(calls, 0);
  const auto t = translate("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE(1, 2, 3)) = 1 AND "
                           "EXISTS (SELECT 1 FROM ivoa.obscore AS i WHERE CONTAINS(POINT(i.s_ra, i.s_dec), "
                           "CIRCLE(1, 2, 3)) = 1)",
                           cat(), o);
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(t.hints.size(), 2u);
  EXPECT_EQ(t.hints[0].sql_alias, "t2");  // the subquery's hint first: it is bound first
  EXPECT_EQ(t.hints[1].sql_alias, "t1");
}

TEST(AdqlTranslate, GroupByOrderByAliases) {
  EXPECT_EQ(sql("SELECT band AS b, COUNT(*) AS n FROM ivoa.obscore GROUP BY b ORDER BY n DESC, b"),
            "SELECT t1.\"band\" AS c1, count(*) AS c2 FROM \"ivoa_obscore\" AS t1 GROUP BY t1.\"band\" ORDER BY c2 "
            "DESC, c1 ASC");
  expect_semantic_error("SELECT COUNT(*) AS n FROM ivoa.obscore GROUP BY n", "not allowed in GROUP BY");
}

TEST(AdqlTranslate, Features) { EXPECT_GE(supported_features().size(), 20u); }

}  // namespace
}  // namespace pixserve::adql
