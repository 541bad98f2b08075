// The registry database: datasets with their ObsCore metadata, the HEALPix
// footprint index, provenance, and the ivoa_obscore view that TAP and SIA
// read. All SQL of the registry lives here.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "db/database.hpp"
#include "repo/dataset.hpp"
#include "sky/geometry.hpp"
#include "sky/healpix.hpp"

namespace pixserve::repo {

// A closed interval; infinite ends leave that side open.
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};

// An extra SQL condition on the dataset table (unqualified column names),
// its '?' placeholders bound to params in order. The access policy
// (auth::visibility_sql) arrives this way, so that what a caller may not see
// is filtered inside the SQL, before any LIMIT.
struct SqlFilter {
  std::string sql{};
  std::vector<db::Value> params{};
};

// Which datasets a search wants. Each vector is OR'ed within itself (empty:
// no constraint); different members are AND'ed. Everything but the exact
// footprint test is done in SQL.
struct DatasetQuery {
  std::vector<sky::Shape> regions;  // footprint intersects any of them
  std::vector<std::string> dataset_types;
  std::vector<std::string> collections;
  std::vector<std::string> bands;  // band letters
  std::vector<std::int64_t> visits;
  std::vector<std::int64_t> detectors;
  std::vector<std::string> rafts;
  std::vector<std::int64_t> tracts;
  std::vector<std::string> patches;
  std::vector<std::string> dataset_ids;
  std::vector<std::string> facilities;
  std::vector<std::string> instruments;
  std::vector<std::string> targets;
  std::vector<std::string> content_types;
  std::vector<std::int64_t> calib_levels;
  // Intervals the dataset's own interval overlaps: [t_min, t_max] (MJD) and
  // [em_min, em_max] (m).
  std::vector<Range> times;
  std::vector<Range> wavelengths;
  // Intervals containing a value of the dataset: t_exptime (s), s_fov (deg),
  // s_resolution (arcsec), time resolution (s, = t_exptime), em_res_power.
  std::vector<Range> exptimes;
  std::vector<Range> fovs;
  std::vector<Range> spatial_resolutions;
  std::vector<Range> time_resolutions;
  std::vector<Range> resolving_powers;
  // Anonymous access: only datasets with the public read policy whose
  // embargo has ended at this time (MJD).
  std::optional<double> public_at;
  // Leave out the logical coadds (repo/coadd_mosaics.hpp: a coadd type
  // without a tract): what chooses the inputs of a derived product (HiPS
  // maps, MOCs, templates, mosaics) wants the patches, whose footprints and
  // pixels are real, not the rows that stand for them.
  bool patches_only = false;
  // Identity-based access (auth::visibility_sql): AND'ed to the query.
  std::optional<SqlFilter> access;
  std::optional<std::size_t> limit;
};

struct RegistryStats {
  std::int64_t datasets = 0;
  std::int64_t index_cells = 0;
};

// SQL of the DALI timestamp (ISO 8601, UTC, milliseconds) of the MJD the
// expression `mjd` gives: ivoa.obscore's obs_release_date, CAOM2's releases.
std::string mjd_timestamp_sql(db::Dialect dialect, std::string_view mjd);

class Registry {
 public:
  // How a registry is opened: for reading and writing, creating the schema
  // when the database is new and upgrading an older one; or read-only, on a
  // database that only ever reads (a hot standby of the primary: streaming
  // replication), which must already hold the schema of this version and is
  // never altered.
  enum class Access { read_write, read_only };

  // Opens the registry on conn. The index order is fixed at creation and
  // read back afterwards.
  Registry(std::unique_ptr<db::Connection> conn, int index_order_if_new, Access access = Access::read_write);

  db::Connection& connection() { return *conn_; }
  int index_order() const noexcept { return index_order_; }

  // Inserts one dataset with its footprint cells and provenance. The caller
  // owns the transaction. Throws db::ConstraintError on a duplicate ID.
  void insert(const DatasetRecord& rec);

  // The registered checksum of a dataset, if it exists.
  std::optional<std::string> checksum_of(const std::string& dataset_id);

  std::optional<DatasetRecord> find_by_id(const std::string& dataset_id);

  // Datasets matching the query: candidates from the HEALPix index (never a
  // full scan when a region is given), then the exact spherical test.
  // In the order of registration (the datasets' keys): deterministic, and a
  // limit keeps the first registered. A query with regions and a limit reads
  // about as many candidates as it returns. A wrapper of for_each.
  std::vector<DatasetRecord> find(const DatasetQuery& query);

  // Receives one record (the visitor may keep it by moving it); false stops
  // the search.
  using RecordVisitor = std::function<bool(DatasetRecord&&)>;
  // find() without holding the result: each record is read from the
  // database, given to `visit` and dropped, in find()'s order. The registry
  // (its connection) is busy until it returns: `visit` must not use it.
  void for_each(const DatasetQuery& query, const RecordVisitor& visit);
  // The two halves of for_each for a caller that reads the records a chunk
  // at a time, letting others use the registry in between (a result
  // streamed to a slow client): the keys of the matching datasets in
  // find()'s order, up to the query's limit (only keys are held); then the
  // records of some of them, in that order. The query's conditions are
  // applied again to the records: a dataset removed, or whose rights
  // changed, in between is left out.
  std::vector<std::int64_t> find_keys(const DatasetQuery& query);
  void for_each_of(const DatasetQuery& query, std::span<const std::int64_t> keys, const RecordVisitor& visit);

  // Provenance: the inputs of a dataset and the datasets made from it.
  std::vector<ProvenanceLink> inputs_of(const std::string& dataset_id);
  std::vector<std::string> outputs_of(const std::string& dataset_id);

  RegistryStats stats();

  // The HDUs (dataset_part) of the stored datasets of a registry upgraded
  // from schema version 4, which knew none: once, by the first writer that
  // opens it, in one transaction. `read` gives the parts of the file at a
  // dataset's file_path, or throws (a file missing or unreadable: its
  // dataset keeps no parts, and `skipped` hears of it). Returns the number
  // of datasets filled; 0 when nothing was pending.
  using PartsReader = std::function<std::vector<HduPart>(const std::string& file_path)>;
  std::size_t fill_pending_parts(const PartsReader& read,
                                 const std::function<void(const std::string& dataset_id, const std::string& why)>& skipped);

  // Level-3 images: change a dataset's read policy and groups; remove a
  // dataset (its index cells and provenance go with it; the caller owns the
  // transaction and the file). Both return false when the ID is unknown.
  bool set_rights(const std::string& dataset_id, const Rights& rights);
  bool remove(const std::string& dataset_id);
  // Total file size and count of the datasets of one owner and type.
  std::pair<std::int64_t, std::int64_t> owned_bytes(const std::string& owner, DatasetType type);

 private:
  void open_read_only();
  // Pass 1 of a query with regions: the keys of the datasets whose
  // footprint meets one, up to the limit. `filter` is its other conditions
  // (" AND ..."), their parameters `params` (SqlFilter).
  std::vector<std::int64_t> region_hits(const DatasetQuery& query, const SqlFilter& filter);
  // Pass 2: the records of `keys` that still meet `filter`, in order.
  void visit_keys(std::span<const std::int64_t> keys, const SqlFilter& filter, const RecordVisitor& visit);
  std::unique_ptr<db::Connection> conn_;
  int index_order_ = 9;
};

// The footprint index of a registry, for any connection to it (the
// registry's own, or a TAP query's).
//
// The keys of the datasets having a cell (at the registry's `index_order`)
// in the cover of one of `regions`: sorted, each once. With
// `max_index_rows`, nothing (std::nullopt) when the index holds more rows
// than that for the regions: the caller searches another way.
std::optional<std::vector<std::int64_t>> footprint_candidates(db::Connection& conn, int index_order,
                                                              const std::vector<sky::Shape>& regions,
                                                              std::optional<std::size_t> max_index_rows = {});
// The index of datasets' centres (table center_cell): the HEALPix NESTED
// cell of (s_ra, s_dec) at this order, the finest, so that a cone of any
// size is covered closely.
constexpr int kCenterCellOrder = sky::kMaxHealpixOrder;
// Ranges of center_cell cells holding every point of `shape` (and few
// more): the shape covered at an order suited to its size, each cell as
// the range of its descendants at kCenterCellOrder. Sorted, disjoint.
std::vector<sky::CellRange> center_cell_ranges(const sky::Shape& shape);

// A list of dataset keys as one statement parameter: an array literal for
// CAST(? AS BIGINT[]) on PostgreSQL, a JSON array for json_each(?) on SQLite.
std::string keys_parameter(db::Dialect dialect, std::span<const std::int64_t> keys);
// Each dataset of `keys` (sorted) that has a footprint and meets
// `conditions`, in the order of the keys, given to `visit` as its key and
// s_region text, until `visit` returns false.
using FootprintVisitor = std::function<bool(std::int64_t key, const std::string& s_region)>;
void visit_footprints(db::Connection& conn, std::span<const std::int64_t> keys, const SqlFilter& conditions,
                      const FootprintVisitor& visit);

// The keys among `candidates` (sorted), from position `tested` on, of the
// datasets that meet `conditions` and whose footprint passes `test`, in
// order: read in chunks that grow (twice `wanted` at first, at least 64,
// then doubling) until `wanted` have passed or the candidates end; `tested`
// moves past the candidates read. A search with a limit thus reads about
// as many footprints as it returns, however many the index's cells hold.
using FootprintTest = std::function<bool(const std::string& s_region)>;
std::vector<std::int64_t> matching_footprints(db::Connection& conn, std::span<const std::int64_t> candidates,
                                              std::size_t& tested, std::size_t wanted, const SqlFilter& conditions,
                                              const FootprintTest& test);

// A registered footprint from its s_region text (ObsCore STC-S "POLYGON
// ICRS ra dec ..."), as the registry wrote it from a checked polygon: not
// checked again.
sky::Polygon polygon_from_stcs(const std::string& stcs);

}  // namespace pixserve::repo
