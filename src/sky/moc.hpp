// Multi-Order Coverage maps (IVOA MOC 2.0): space MOCs (HEALPix NESTED
// cells, ICRS), time MOCs (microseconds since JD 0, TCB) and space-time MOCs
// (each time range with the sky it covers), with the standard
// serialisations: FITS (NUNIQ for space, RANGE for space-time), ASCII and
// JSON.
//
// A MOC is held as sorted, disjoint half-open ranges of cells at the deepest
// order of its dimension (29 for space, 61 for time) plus the order it was
// built at (MOCORD_S / MOCORD_T); the hierarchical cell list of the NUNIQ and
// ASCII forms is derived from the ranges, so every output is well formed
// (no redundant cells, no four (two) siblings instead of their parent).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sky/geometry.hpp"
#include "sky/healpix.hpp"

namespace pixserve::sky {

enum class MocDimension { space, time };

inline constexpr int kMaxTimeOrder = 61;

// A half-open range [first, last) of cells at the deepest order.
struct MocRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  friend bool operator==(const MocRange&, const MocRange&) = default;
};

// One cell of the hierarchical form.
struct MocCell {
  int order = 0;
  std::uint64_t index = 0;
  friend bool operator==(const MocCell&, const MocCell&) = default;
};

class Moc {
 public:
  // An empty MOC of `order` (0..29 for space, 0..61 for time). Throws
  // std::invalid_argument for an order outside the dimension's range.
  explicit Moc(int order = 0, MocDimension dimension = MocDimension::space);

  MocDimension dimension() const noexcept { return dimension_; }
  int order() const noexcept { return order_; }
  static int max_order(MocDimension d) noexcept { return d == MocDimension::space ? kMaxHealpixOrder : kMaxTimeOrder; }

  // Adds one cell of `cell_order` (<= order()); throws std::invalid_argument
  // for an order or index out of range.
  void add_cell(int cell_order, std::uint64_t index);
  // Adds the cells [first, last] (inclusive, as sky::CellRange) of cell_order.
  void add_cells(int cell_order, std::uint64_t first, std::uint64_t last);
  void add(const Moc& other);  // union (orders must match, dimension too)

  bool empty() const noexcept { return ranges_.empty(); }
  const std::vector<MocRange>& ranges() const noexcept { return ranges_; }
  // True when the cell (at any order <= 29/61) overlaps the coverage.
  bool overlaps_cell(int cell_order, std::uint64_t index) const;
  // True when the whole cell is covered.
  bool contains_cell(int cell_order, std::uint64_t index) const;
  bool contains(const SkyPoint& p) const;  // space MOCs

  // The well-formed hierarchical cell list, sorted by order then index.
  std::vector<MocCell> cells() const;
  // NUNIQ values (4 * 4^order + index; 2 * 2^order + index for time),
  // ascending.
  std::vector<std::uint64_t> nuniq() const;
  // Fraction of the sky (space) or of the whole time axis covered.
  double coverage_fraction() const;
  // Number of cells at order() covered.
  std::uint64_t cell_count() const;

  // "3/1-4 7 5/100 12/" (the trailing "order/" when order() is deeper than
  // the deepest stored cell), optionally prefixed "s" or "t".
  std::string to_ascii(bool with_prefix = false) const;
  // {"3":[1,2,3,4,7],"5":[100],"12":[]}
  std::string to_json() const;
  // Parses the ASCII form (throws std::invalid_argument naming the problem).
  static Moc from_ascii(std::string_view text, MocDimension dimension = MocDimension::space);

  friend bool operator==(const Moc&, const Moc&) = default;

 private:
  int shift_of(int cell_order) const;  // bits per level times levels below cell_order
  void normalize_tail();
  int order_ = 0;
  MocDimension dimension_ = MocDimension::space;
  std::vector<MocRange> ranges_;
};

// The cells of `order` that share at least one point with the polygon: the
// exact cover (sky::cover's candidates, each tested against the polygon with
// its boundary sampled along the curved edges), as a MOC.
Moc moc_of(const Polygon& polygon, int order);

// Optional metadata written into the FITS header.
struct MocFitsInfo {
  std::string moc_id{};    // MOCID, e.g. the publisher DID of the selection
  std::string tool = "pixserve";
  std::string type = "IMAGE";  // MOCTYPE
  std::string extname = "MOC";
  std::string date{};  // DATE (ISO 8601); empty: none
};

// The MOC 2.0 FITS serialisation: an empty primary HDU and a BINTABLE with
// one 64-bit column UNIQ (ORDERING NUNIQ, MOCDIM SPACE or TIME, MOCORD_S or
// MOCORD_T, COORDSYS C or TIMESYS TCB, MOCVERS 2.0). The bytes of the file.
std::string to_fits(const Moc& moc, const MocFitsInfo& info = {});

// --- space-time MOC ---

// Microseconds since JD 0 of an MJD, as MOC time cells at order 61.
std::uint64_t mjd_to_moc_time(double mjd);

class StMoc {
 public:
  StMoc(int time_order, int space_order);
  int time_order() const noexcept { return time_order_; }
  int space_order() const noexcept { return space_order_; }

  // Adds the coverage `space` during [t_min, t_max] (MJD). space's order
  // must be space_order().
  void add(double t_min_mjd, double t_max_mjd, const Moc& space);

  // The canonical form: disjoint time MOCs in ascending order, each with the
  // space MOC covered during it; consecutive time ranges with the same sky
  // merged.
  std::vector<std::pair<Moc, Moc>> entries() const;

  std::string to_ascii() const;  // "t31/... s12/... t31/... s12/..."
  std::string to_json() const;   // [{"t":{...},"s":{...}}, ...]
  // FITS RANGE packaging, MOCDIM TIME.SPACE, time values with the 64th bit set.
  std::string to_fits(const MocFitsInfo& info = {}) const;

 private:
  struct Item {
    std::uint64_t t0 = 0, t1 = 0;  // half-open, at order 61
    Moc space;
  };
  int time_order_ = 31;
  int space_order_ = 12;
  std::vector<Item> items_;
};

}  // namespace pixserve::sky
