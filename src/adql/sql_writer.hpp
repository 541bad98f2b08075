// SQL generation from the bound tree (bound_tree.hpp) for one dialect. The
// tree is checked already: writing never fails, it only chooses the text
// each dialect needs (functions, casts, LIKE, LIMIT/OFFSET).
#pragma once

#include <functional>
#include <string>

#include "adql/bound_tree.hpp"
#include "db/dialect.hpp"

namespace pixserve::adql {

// `index_filter` (may be empty) is called for each spatial index hint of a
// WHERE clause; non-empty SQL it returns is ANDed into that clause.
std::string write_sql(const BoundQuery& query, db::Dialect dialect,
                      const std::function<IndexFilter(const SpatialHint&)>& index_filter);

}  // namespace pixserve::adql
