// The CAOM2 tables of TAP (caom2.Observation, Plane, Artifact, Part, Chunk),
// after CADC's CAOM 2.4 TAP schema where it applies to this survey's data
// (docs/caom2.md). Each table is described once, here: its columns with
// types, units, UCDs, utypes, descriptions and the SQL that computes each
// from the registry (dataset, provenance, dataset_part, ivoa_obscore). From
// that one description come TAP_SCHEMA (tap/schema.cpp) and the views the
// tables are read through, restricted to what the viewer may see: a Plane,
// Artifact, Part or Chunk row with its dataset, an Observation with at least
// one of its planes.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adql/catalog.hpp"
#include "db/dialect.hpp"

namespace pixserve::tap::caom2 {

struct Column {
  std::string_view name;  // as CADC names it (mixed case; the view's column is its lower case)
  adql::AdqlType type = adql::AdqlType::varchar;
  std::string_view unit{};
  std::string_view ucd{};
  std::string_view utype{};
  std::string_view description{};
  // The value, an SQL expression over the table's FROM (see caom2.cpp for
  // the aliases and the {placeholders} it may use).
  std::string_view sql{};
  bool principal = false;
  bool indexed = false;
};

struct Table {
  std::string_view name;  // Observation: the TAP table caom2.Observation
  std::string_view description;
  std::span<const Column> columns;
  std::string_view from;  // FROM ... WHERE ..., with the same placeholders

  std::string view_name() const;  // tap_caom2_observation
};

inline constexpr std::string_view kTapSchema = "caom2";
inline constexpr std::string_view kTapSchemaDescription =
    "Common Archive Observation Model 2.4 (CADC) of the survey's images: observations, their planes (one per "
    "dataset, joinable with ivoa.obscore on publisherID = obs_publisher_did), the planes' files (artifacts), their "
    "HDUs (parts) and the HDUs' image arrays with their WCS (chunks)";

// Observation, Plane, Artifact, Part, Chunk.
std::span<const Table> tables();

// A column's name in the view (lower case: PostgreSQL folds unquoted names).
std::string sql_name(std::string_view column);

// SELECT of the view of `table`: the rows the viewer may see. visible_d and
// visible_i: the visibility predicate on `dataset` rows aliased d and i.
std::string view_select(const Table& table, db::Dialect dialect, const std::string& visible_d,
                        const std::string& visible_i);

}  // namespace pixserve::tap::caom2
