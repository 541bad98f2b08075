// HEALPix NESTED indexing (over healpix_cxx) for the registry's spatial index
// and for MOCs: which cells of a given order cover a shape.
#pragma once

#include <cstdint>
#include <vector>

#include "sky/geometry.hpp"

namespace pixserve::sky {

constexpr int kMaxHealpixOrder = 29;

// An inclusive range [first, last] of NESTED cell numbers at one order.
struct CellRange {
  std::int64_t first = 0;
  std::int64_t last = 0;
  friend bool operator==(const CellRange&, const CellRange&) = default;
};

std::int64_t cell_of(const SkyPoint& p, int order);
SkyPoint cell_center(std::int64_t cell, int order);
double cell_size_deg(int order);  // sqrt of the cell area

// Cells of `order` that may intersect the shape (a superset: every cell that
// touches the shape is included; a few that do not may be). Sorted, merged.
std::vector<CellRange> cover(const Circle& c, int order);
std::vector<CellRange> cover(const Polygon& p, int order);
std::vector<CellRange> cover(const RaDecRange& r, int order);
std::vector<CellRange> cover(const Shape& s, int order);

// Expands ranges to the list of individual cells (for storing per-cell rows).
std::vector<std::int64_t> expand(const std::vector<CellRange>& ranges);

}  // namespace pixserve::sky
