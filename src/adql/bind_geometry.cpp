// The binder's geometry functions: the constructors POINT, CIRCLE, BOX and
// POLYGON (constant ones are evaluated here, so an invalid constant is a
// SemanticError), CONTAINS/INTERSECTS with the spatial index candidates
// they offer, DISTANCE and the accessors.
#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "adql/binder.hpp"
#include "adql/sql_text.hpp"

namespace pixserve::adql {

namespace geo = geometry;

namespace {

// A geometry value that is a constant, as a geometry.
std::optional<geo::Geometry> constant_shape(const BoundExpression& v) {
  if (const BoundGeometry* g = as_constructor(v)) return g->constant;
  return std::nullopt;
}

// A hint for `column_side` tested against the constant `shape_side`.
std::optional<SpatialCandidate> spatial_candidate(bool contains, const BoundExpression& column_side,
                                                  const BoundExpression& shape_side, Position pos) {
  SpatialCandidate c;
  c.hint.pos = pos;
  auto from_origin = [&](const ColumnOrigin& o) {
    c.hint.table = o.table->qualified_name();
    c.hint.sql_alias = table_alias(o.table_number);
    c.hint.columns.push_back(o.column->name);
    c.indexed = c.indexed || o.column->indexed;
  };
  if (const auto shape = constant_shape(shape_side)) {
    if (const BoundGeometry* point = as_point_constructor(column_side)) {
      const auto& ra = point->args[0]->origin;
      const auto& dec = point->args[1]->origin;
      if (!ra || !dec || ra->table_number != dec->table_number) return std::nullopt;
      from_origin(*ra);
      c.hint.columns.push_back(dec->column->name);
      c.indexed = c.indexed || dec->column->indexed;
      c.hint.kind = SpatialHint::Kind::point_in_shape;
      c.hint.shape = geo::to_shape(*shape);
      c.hint.constant = *shape;
      return c;
    }
    if (column_side.origin) {
      from_origin(*column_side.origin);
      c.hint.kind = contains ? SpatialHint::Kind::region_in_shape : SpatialHint::Kind::region_intersects_shape;
      c.hint.shape = geo::to_shape(*shape);
      c.hint.constant = *shape;
      return c;
    }
    return std::nullopt;
  }
  // CONTAINS(constant, region_col): the region must meet the constant.
  if (contains) {
    if (const auto inner = constant_shape(column_side); inner && shape_side.origin) {
      from_origin(*shape_side.origin);
      c.hint.kind = SpatialHint::Kind::region_contains_shape;
      c.hint.shape = geo::to_shape(*inner);
      c.hint.constant = *inner;
      return c;
    }
  }
  return std::nullopt;
}

std::string_view null_or_type_name(AdqlType t) { return t == AdqlType::unknown ? "NULL" : type_name(t); }

}  // namespace

// Drops the optional leading coordinate system argument ('ICRS', '').
std::vector<const Expr*> Binder::geometry_args(const FunctionCall& f, Position pos, std::size_t without_cs,
                                               bool variadic) {
  std::vector<const Expr*> args;
  for (const auto& a : f.args) args.push_back(a.get());
  if (!args.empty()) {
    if (const auto* s = std::get_if<StringLiteral>(&args[0]->node)) {
      const std::string cs = ascii_upper(s->value);
      if (!cs.empty() && cs.rfind("ICRS", 0) != 0) {
        fail(args[0]->pos, fmt::format("coordinate system '{}' is not supported: this service serves ICRS", s->value));
      }
      args.erase(args.begin());
    }
  }
  if (!variadic && args.size() != without_cs) {
    fail(pos, fmt::format("{} takes {} arguments (after the optional coordinate system), not {}", f.name, without_cs,
                          args.size()));
  }
  return args;
}

BoundExpressionPtr Binder::geometry_constructor(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  if (f.distinct) fail(e.pos, fmt::format("DISTINCT is only allowed in aggregate functions, not {}", f.name));
  BoundGeometry geometry{f.name, {}, std::nullopt};
  std::vector<std::optional<double>> numbers;  // the values of literal numbers
  auto add_arguments = [&](const std::vector<const Expr*>& args) {
    for (const Expr* a : args) {
      auto x = bind(*a, ctx);
      if (const BoundGeometry* point = as_point_constructor(*x); point && f.name != "POINT") {
        // ADQL 2.1: CIRCLE(point, r), BOX(point, w, h), POLYGON(p1, p2, ...).
        if (point->constant) {
          const auto& p = std::get<sky::SkyPoint>(*point->constant);
          numbers.insert(numbers.end(), {p.ra, p.dec});
        } else {
          numbers.insert(numbers.end(), {std::nullopt, std::nullopt});
        }
      } else if (x->type == AdqlType::point && f.name != "POINT") {
        // A point-valued column: its coordinates, taken apart in SQL.
        numbers.insert(numbers.end(), {std::nullopt, std::nullopt});
      } else {
        if (is_geometry(x->type)) {
          fail(a->pos, fmt::format("{} needs numbers (or POINT(...) calls) as arguments, found a {} value", f.name,
                                   type_name(x->type)));
        }
        need_numeric(*x, a->pos, f.name.c_str());
        numbers.push_back(x->constant_number);
      }
      geometry.args.push_back(std::move(x));
    }
  };
  AdqlType type = AdqlType::polygon;
  if (f.name == "POINT") {
    add_arguments(geometry_args(f, e.pos, 2));
    type = AdqlType::point;
  } else if (f.name == "CIRCLE") {
    auto a = geometry_args(f, e.pos, 0, true);
    if (a.size() != 2 && a.size() != 3) {
      fail(e.pos, fmt::format("CIRCLE takes (ra, dec, radius) or (point, radius), not {} arguments", a.size()));
    }
    add_arguments(a);
    if (numbers.size() != 3) fail(e.pos, "CIRCLE takes (ra, dec, radius) or (point, radius)");
    type = AdqlType::circle;
  } else if (f.name == "BOX") {
    auto a = geometry_args(f, e.pos, 0, true);
    if (a.size() != 3 && a.size() != 4) {
      fail(e.pos,
           fmt::format("BOX takes (ra, dec, width, height) or (point, width, height), not {} arguments", a.size()));
    }
    add_arguments(a);
    if (numbers.size() != 4) fail(e.pos, "BOX takes (ra, dec, width, height) or (point, width, height)");
    type = AdqlType::region;
  } else {
    add_arguments(geometry_args(f, e.pos, 0, true));
    if (numbers.size() < 6 || numbers.size() % 2 != 0) {
      fail(e.pos,
           fmt::format("POLYGON needs at least 3 vertices (6 numbers or 3 points), got {} numbers", numbers.size()));
    }
  }
  std::vector<double> values;
  for (const auto& n : numbers) {
    if (!n) return make_bound(type, std::move(geometry));
    values.push_back(*n);
  }
  try {
    if (f.name == "POINT") {
      geometry.constant = geo::make_point(values[0], values[1]);
    } else if (f.name == "CIRCLE") {
      geometry.constant = geo::make_circle(values[0], values[1], values[2]);
    } else if (f.name == "BOX") {
      geometry.constant = geo::make_box(values[0], values[1], values[2], values[3]);
    } else {
      geometry.constant = geo::make_polygon(values);
    }
  } catch (const geo::GeometryError& err) {
    fail(e.pos, fmt::format("invalid {}: {}", f.name, err.what()));
  }
  return make_bound(type, std::move(geometry));
}

BoundExpressionPtr Binder::geometry_value(const Expr& a, ExpressionContext& ctx, const std::string& fn) {
  auto x = bind(a, ctx);
  if (!is_geometry(x->type)) {
    fail(a.pos, fmt::format("{} needs geometry arguments (POINT, CIRCLE, BOX, POLYGON or a region column), found {}",
                            fn, null_or_type_name(x->type)));
  }
  return x;
}

BoundExpressionPtr Binder::spatial_predicate(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  auto args = geometry_args(f, e.pos, 2);
  BoundSpatialPredicate predicate;
  predicate.contains = f.name == "CONTAINS";
  predicate.first = geometry_value(*args[0], ctx, f.name);
  predicate.second = geometry_value(*args[1], ctx, f.name);
  predicate.index_candidate = spatial_candidate(predicate.contains, *predicate.first, *predicate.second, e.pos);
  if (!predicate.index_candidate && !predicate.contains) {
    predicate.index_candidate = spatial_candidate(false, *predicate.second, *predicate.first, e.pos);
  }
  return make_bound(AdqlType::integer, std::move(predicate));
}

BoundExpressionPtr Binder::distance(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  std::vector<const Expr*> args = geometry_args(f, e.pos, 0, true);
  BoundFunction distance{f.name, {}};
  if (args.size() == 4) {
    for (const Expr* a : args) {
      distance.args.push_back(bind(*a, ctx));
      need_numeric(*distance.args.back(), a->pos, "DISTANCE");
    }
    return make_bound(AdqlType::double_precision, std::move(distance));
  }
  if (args.size() != 2) {
    fail(e.pos, fmt::format("DISTANCE takes two points or four numbers, not {} arguments", args.size()));
  }
  distance.args.push_back(geometry_value(*args[0], ctx, "DISTANCE"));
  distance.args.push_back(geometry_value(*args[1], ctx, "DISTANCE"));
  for (const auto& p : distance.args) {
    if (p->type != AdqlType::point) fail(e.pos, fmt::format("DISTANCE needs points, found {}", type_name(p->type)));
  }
  return make_bound(AdqlType::double_precision, std::move(distance));
}

BoundExpressionPtr Binder::geometry_accessor(const FunctionCall& f, const Expr& e, ExpressionContext& ctx) {
  auto args = arguments(f, ctx, 1, 1, e.pos);
  const BoundExpression& g = *args[0];
  if (!is_geometry(g.type)) {
    fail(f.args[0]->pos, fmt::format("{} needs a geometry argument, found {}", f.name, null_or_type_name(g.type)));
  }
  AdqlType type = AdqlType::double_precision;  // AREA, COORD1, COORD2
  std::optional<ColumnOrigin> origin;
  if (f.name == "COORD1" || f.name == "COORD2") {
    if (g.type != AdqlType::point) fail(e.pos, fmt::format("{} needs a point, found {}", f.name, type_name(g.type)));
    // COORD1(POINT(ra, dec)) is ra itself, and still that column.
    if (const BoundGeometry* point = as_constructor(g)) origin = point->args[f.name == "COORD1" ? 0 : 1]->origin;
  } else if (f.name == "COORDSYS") {
    type = AdqlType::varchar;
  } else if (f.name == "CENTROID") {
    type = AdqlType::point;
  }
  auto v = make_bound(type, BoundFunction{f.name, std::move(args)});
  v->origin = std::move(origin);
  return v;
}

}  // namespace pixserve::adql
