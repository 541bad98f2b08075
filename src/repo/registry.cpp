#include "repo/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <span>
#include <sstream>
#include <tuple>
#include <type_traits>
#include <unordered_set>

#include <fmt/format.h>

#include "db/copy.hpp"
#include "repo/efd.hpp"
#include "repo/hdu_parts.hpp"
#include "sky/healpix.hpp"

namespace pixserve::repo {
namespace {

// 2: dataset.storage and dataset.recipe (virtual datasets); ivoa_obscore's
// access_url without the DataLink path. A version-1 registry is upgraded in
// place when opened (kUpgradeFrom1, then the schema again for the view).
// 3: center_cell, the index of the datasets' centres (s_ra, s_dec); a
// version-2 registry gets it filled when opened (fill_center_cells).
// 4: the coadds' provenance columns (n_inputs, coverage_fraction,
// depth_5sigma; kUpgradeFrom3) and the engineering data's tables (efd_*,
// made by the schema itself).
// 5: dataset_part, the HDUs of each dataset's file (CAOM2 Part and Chunk);
// made empty by the schema, filled for the datasets of a version-4 registry
// by the repository that opens it (registry_meta.dataset_part_pending).
constexpr int kSchemaVersion = 5;
constexpr const char* kUpgradeFrom1 = R"SQL(
ALTER TABLE dataset ADD COLUMN storage TEXT NOT NULL DEFAULT 'file' CHECK (storage IN ('file', 'virtual'));
ALTER TABLE dataset ADD COLUMN recipe TEXT;
DROP VIEW IF EXISTS ivoa_obscore;
UPDATE registry_meta SET value = '2' WHERE key = 'schema_version';
)SQL";
constexpr const char* kUpgradeFrom3 = R"SQL(
ALTER TABLE dataset ADD COLUMN n_inputs {integer};
ALTER TABLE dataset ADD COLUMN coverage_fraction {real};
ALTER TABLE dataset ADD COLUMN depth_5sigma {real};
)SQL";

// The registry schema. `dataset` holds everything; `ivoa_obscore` presents
// it with ObsCore 1.1 names and units plus the survey columns; TAP exposes
// the view as ivoa.obscore. access_url holds the dataset's DataLink ID
// (its publisher DID, percent-encoded): where DataLink lives is the service
// catalogue's to say (services/links.hpp), so TAP's view of this one
// (tap/schema.cpp) prefixes the links endpoint it is given.
constexpr std::string_view kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS registry_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dataset (
  dataset_key      {key},
  dataset_id       TEXT NOT NULL UNIQUE,
  dataset_type     TEXT NOT NULL,
  collection       TEXT NOT NULL,
  instrument       TEXT,
  visit            {integer},
  exposure         {integer},
  detector         {integer},
  detector_name    TEXT,
  raft             TEXT,
  band             TEXT,
  physical_filter  TEXT,
  skymap           TEXT,
  tract            {integer},
  patch            TEXT,
  file_path        TEXT NOT NULL,
  file_size        {integer} NOT NULL,
  checksum         TEXT NOT NULL,
  content_type     TEXT NOT NULL,
  storage          TEXT NOT NULL DEFAULT 'file' CHECK (storage IN ('file', 'virtual')),
  recipe           TEXT,
  s_ra             {real},
  s_dec            {real},
  s_fov            {real},
  s_region         TEXT,
  s_resolution     {real},
  pixel_scale      {real},
  s_xel1           {integer},
  s_xel2           {integer},
  t_min            {real},
  t_max            {real},
  t_exptime        {real},
  em_min           {real},
  em_max           {real},
  em_res_power     {real},
  facility_name    TEXT,
  instrument_name  TEXT,
  target_name      TEXT,
  seeing           {real},
  airmass          {real},
  sky_background   {real},
  zero_point       {real},
  psf_fwhm         {real},
  telescope_ra     {real},
  telescope_dec    {real},
  n_inputs         {integer},
  coverage_fraction {real},
  depth_5sigma     {real},
  calib_level      {integer} NOT NULL,
  software_version TEXT,
  owner            TEXT NOT NULL,
  read_policy      TEXT NOT NULL,
  read_groups      TEXT NOT NULL DEFAULT '',
  release_mjd      {real},
  ingest_mjd       {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS dataset_type_idx ON dataset (dataset_type, collection);
CREATE INDEX IF NOT EXISTS dataset_visit_idx ON dataset (visit, detector);
CREATE INDEX IF NOT EXISTS dataset_time_idx ON dataset (t_min);
CREATE INDEX IF NOT EXISTS dataset_coadd_idx ON dataset (tract, patch, band);

-- HEALPix NESTED cells (at the order in registry_meta.index_order) touched
-- by each footprint: the spatial index, a plain B-tree on an integer.
CREATE TABLE IF NOT EXISTS footprint_cell (
  cell        {integer} NOT NULL,
  dataset_key {integer} NOT NULL REFERENCES dataset (dataset_key) ON DELETE CASCADE,
  PRIMARY KEY (cell, dataset_key)
) {without_rowid};
CREATE INDEX IF NOT EXISTS footprint_cell_dataset_idx ON footprint_cell (dataset_key);

-- The HEALPix NESTED cell at order 29 (kCenterCellOrder) of each dataset's
-- centre (s_ra, s_dec): the index of ADQL's CONTAINS(POINT(s_ra, s_dec), ...)
-- cones, whose candidates from footprint_cell would be every footprint
-- around the cone rather than the few centres inside it.
CREATE TABLE IF NOT EXISTS center_cell (
  cell        {integer} NOT NULL,
  dataset_key {integer} NOT NULL REFERENCES dataset (dataset_key) ON DELETE CASCADE,
  PRIMARY KEY (cell, dataset_key)
) {without_rowid};
CREATE INDEX IF NOT EXISTS center_cell_dataset_idx ON center_cell (dataset_key);

-- Inputs of each dataset, by dataset ID; an input need not be registered
-- (yet), so this is not a foreign key on input_id.
CREATE TABLE IF NOT EXISTS provenance (
  dataset_id TEXT NOT NULL REFERENCES dataset (dataset_id) ON DELETE CASCADE,
  input_id   TEXT NOT NULL,
  role       TEXT NOT NULL,
  PRIMARY KEY (dataset_id, input_id)
);
CREATE INDEX IF NOT EXISTS provenance_input_idx ON provenance (input_id);

-- The HDUs of each dataset's file, read from its headers at ingest: the
-- CAOM2 Part (one per HDU) and Chunk (one per image array) rows of TAP
-- (docs/caom2.md). hdu counts from 0, the primary HDU; naxis 0: no image
-- array; the celestial WCS columns are NULL where the header has none.
CREATE TABLE IF NOT EXISTS dataset_part (
  dataset_key  {integer} NOT NULL REFERENCES dataset (dataset_key) ON DELETE CASCADE,
  hdu          {integer} NOT NULL,
  name         TEXT NOT NULL,
  product_type TEXT NOT NULL,
  naxis        {integer} NOT NULL,
  naxis1       {integer},
  naxis2       {integer},
  ctype1       TEXT,
  ctype2       TEXT,
  cunit1       TEXT,
  cunit2       TEXT,
  crpix1       {real},
  crpix2       {real},
  crval1       {real},
  crval2       {real},
  cd11         {real},
  cd12         {real},
  cd21         {real},
  cd22         {real},
  coordsys     TEXT,
  equinox      {real},
  PRIMARY KEY (dataset_key, hdu)
);

-- The R-EFD tables (efd_weather, efd_visit_summary: CREATE TABLE IF NOT
-- EXISTS), written from their one description in repo/efd.cpp. Plain
-- tables without a foreign key to dataset: telemetry is loaded whether or
-- not the visit's images are registered yet.
{efd_tables}

{create_view} ivoa_obscore AS
SELECT
  'image'                                   AS dataproduct_type,
  d.dataset_type                            AS dataproduct_subtype,
  d.calib_level                             AS calib_level,
  d.collection                              AS obs_collection,
  d.dataset_id                              AS obs_id,
  'ivo://' || (SELECT value FROM registry_meta WHERE key = 'authority') || '/' ||
    (SELECT value FROM registry_meta WHERE key = 'name') || '?' || d.dataset_id
                                            AS obs_publisher_did,
  'ivo%3A%2F%2F' || (SELECT value FROM registry_meta WHERE key = 'authority') ||
    '%2F' || (SELECT value FROM registry_meta WHERE key = 'name') || '%3F' || d.dataset_id
                                            AS access_url,
  'application/x-votable+xml;content=datalink' AS access_format,
  (d.file_size + 1023) / 1024               AS access_estsize,
  d.target_name                             AS target_name,
  d.s_ra                                    AS s_ra,
  d.s_dec                                   AS s_dec,
  d.s_fov                                   AS s_fov,
  d.s_region                                AS s_region,
  d.s_resolution                            AS s_resolution,
  d.s_xel1                                  AS s_xel1,
  d.s_xel2                                  AS s_xel2,
  d.t_min                                   AS t_min,
  d.t_max                                   AS t_max,
  d.t_exptime                               AS t_exptime,
  d.t_exptime                               AS t_resolution,
  1                                         AS t_xel,
  d.em_min                                  AS em_min,
  d.em_max                                  AS em_max,
  d.em_res_power                            AS em_res_power,
  1                                         AS em_xel,
  'phot.count'                              AS o_ucd,
  NULL                                      AS pol_states,
  0                                         AS pol_xel,
  d.facility_name                           AS facility_name,
  d.instrument_name                         AS instrument_name,
  d.pixel_scale                             AS s_pixel_scale,
  CASE WHEN d.release_mjd IS NULL THEN NULL ELSE {release_date} END
                                            AS obs_release_date,
  CASE d.read_policy WHEN 'public' THEN 'public' ELSE 'proprietary' END
                                            AS data_rights,
  d.visit                                   AS visit,
  d.exposure                                AS exposure,
  d.detector                                AS detector,
  d.detector_name                           AS detector_name,
  d.raft                                    AS raft,
  d.band                                    AS band,
  d.physical_filter                         AS physical_filter,
  d.skymap                                  AS skymap,
  d.tract                                   AS tract,
  d.patch                                   AS patch,
  d.seeing                                  AS seeing,
  d.airmass                                 AS airmass,
  d.sky_background                          AS sky_background,
  d.zero_point                              AS zero_point,
  d.psf_fwhm                                AS psf_fwhm
FROM dataset d;
)SQL";

// The schema in a backend's words: SQLite's flexible INTEGER and REAL are
// PostgreSQL's BIGINT (HEALPix cells at order 16 and identity keys need 64
// bits) and DOUBLE PRECISION; PostgreSQL has no rowid to leave out and no
// CREATE VIEW IF NOT EXISTS.
std::string schema_sql(db::Dialect dialect) {
  const bool pg = dialect == db::Dialect::postgresql;
  return fmt::format(
      fmt::runtime(kSchema), fmt::arg("key", pg ? "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" : "INTEGER PRIMARY KEY"),
      fmt::arg("integer", db::integer_type(dialect)), fmt::arg("real", db::real_type(dialect)),
      fmt::arg("without_rowid", pg ? "" : "WITHOUT ROWID"), fmt::arg("efd_tables", efd::schema_sql(dialect)),
      fmt::arg("create_view", pg ? "CREATE OR REPLACE VIEW" : "CREATE VIEW IF NOT EXISTS"),
      // ISO 8601 with milliseconds, as DALI writes a timestamp.
      fmt::arg("release_date", mjd_timestamp_sql(dialect, "d.release_mjd")));
}

// A PostgreSQL array literal ({1,2,3}) of cell numbers, bound as one
// parameter where SQLite's statements take the values one by one.
template <typename Integers>
std::string bigint_array(const Integers& values) {
  return fmt::format("{{{}}}", fmt::join(values, ","));
}

// The same integers as a JSON array ([1,2,3]): SQLite's json_each() makes a
// table of it, so that a list of any length is one bound parameter there too.
template <typename Integers>
std::string json_array(const Integers& values) {
  return fmt::format("[{}]", fmt::join(values, ","));
}

// FROM and WHERE of a statement on the datasets of a list of keys, bound as
// its first parameter: on SQLite json_array(); on PostgreSQL bigint_array(),
// as the ARRAY of a subquery: a value computed once when the statement
// runs, which the primary key's index scan takes in order, so that ORDER BY
// dataset_key costs nothing. (As = ANY of the parameter itself, planning
// alone took 10-13 ms for 10^4 keys, the planner estimating each element;
// joined to unnest() of it, the rows were sorted again: 5,500 whole rows
// took 48 ms in the server, 14 ms so; their footprints 31 ms, 14 ms so.)
std::string datasets_of_keys(bool postgresql) {
  return postgresql ? "dataset WHERE dataset_key = ANY (ARRAY(SELECT unnest(CAST(? AS BIGINT[]))))"
                    : "dataset WHERE dataset_key IN (SELECT value FROM json_each(?))";
}


std::string join(const std::vector<std::string>& items, char sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Column order of kSelectColumns, read back by read_record().
constexpr const char* kSelectColumns =
    "dataset_key, dataset_id, dataset_type, collection, instrument, visit, exposure, detector, detector_name, raft, "
    "band, physical_filter, skymap, tract, patch, file_path, file_size, checksum, content_type, storage, recipe, "
    "s_ra, s_dec, s_fov, "
    "s_region, s_resolution, pixel_scale, s_xel1, s_xel2, t_min, t_max, t_exptime, em_min, em_max, em_res_power, "
    "facility_name, instrument_name, target_name, seeing, airmass, sky_background, zero_point, psf_fwhm, "
    "telescope_ra, telescope_dec, software_version, owner, read_policy, read_groups, release_mjd, calib_level, "
    "n_inputs, coverage_fraction, depth_5sigma";

DatasetRecord read_record(db::Statement& s) {
  DatasetRecord r;
  int c = 1;  // column 0 is dataset_key
  r.dataset_id = s.get_text(c++);
  r.type = dataset_type_from_string(s.get_text(c++)).value_or(DatasetType::user);
  r.collection = s.get_text(c++);
  r.data_id.instrument = s.get_optional_text(c++).value_or("");
  r.data_id.visit = s.get_optional_int(c++);
  r.data_id.exposure = s.get_optional_int(c++);
  r.data_id.detector = s.get_optional_int(c++);
  r.data_id.detector_name = s.get_optional_text(c++).value_or("");
  r.data_id.raft = s.get_optional_text(c++).value_or("");
  r.data_id.band = s.get_optional_text(c++).value_or("");
  r.data_id.physical_filter = s.get_optional_text(c++).value_or("");
  r.data_id.skymap = s.get_optional_text(c++).value_or("");
  r.data_id.tract = s.get_optional_int(c++);
  r.data_id.patch = s.get_optional_text(c++).value_or("");
  r.file_path = s.get_text(c++);
  r.file_size = s.get_int(c++);
  r.checksum = s.get_text(c++);
  r.content_type = s.get_text(c++);
  r.storage = storage_from_string(s.get_text(c++)).value_or(Storage::file);
  r.recipe = s.get_optional_text(c++).value_or("");
  r.s_ra = s.get_optional_double(c++);
  r.s_dec = s.get_optional_double(c++);
  r.s_fov = s.get_optional_double(c++);
  if (auto region = s.get_optional_text(c++)) r.footprint = polygon_from_stcs(*region);
  r.s_resolution = s.get_optional_double(c++);
  r.pixel_scale_arcsec = s.get_optional_double(c++);
  r.width = s.get_optional_int(c++).value_or(0);
  r.height = s.get_optional_int(c++).value_or(0);
  r.t_min = s.get_optional_double(c++);
  r.t_max = s.get_optional_double(c++);
  r.t_exptime = s.get_optional_double(c++);
  r.em_min = s.get_optional_double(c++);
  r.em_max = s.get_optional_double(c++);
  r.em_res_power = s.get_optional_double(c++);
  r.facility_name = s.get_optional_text(c++).value_or("");
  r.instrument_name = s.get_optional_text(c++).value_or("");
  r.target_name = s.get_optional_text(c++).value_or("");
  r.seeing = s.get_optional_double(c++);
  r.airmass = s.get_optional_double(c++);
  r.sky_background = s.get_optional_double(c++);
  r.zero_point = s.get_optional_double(c++);
  r.psf_fwhm = s.get_optional_double(c++);
  r.telescope_ra = s.get_optional_double(c++);
  r.telescope_dec = s.get_optional_double(c++);
  r.software_version = s.get_optional_text(c++).value_or("");
  r.rights.owner = s.get_text(c++);
  r.rights.policy = read_policy_from_string(s.get_text(c++)).value_or(ReadPolicy::owner);
  r.rights.groups = split(s.get_text(c++), ',');
  r.rights.release_mjd = s.get_optional_double(c++);
  r.calib_level = static_cast<int>(s.get_int(c++));
  r.n_inputs = s.get_optional_int(c++);
  r.coverage_fraction = s.get_optional_double(c++);
  r.depth_5sigma = s.get_optional_double(c++);
  return r;
}

// The center_cell of a dataset centred at (ra, dec), none without a valid
// centre (a calibration, or coordinates no sky point has).
std::optional<std::int64_t> center_cell_of(std::optional<double> ra, std::optional<double> dec) {
  if (!ra || !dec || !std::isfinite(*ra) || !std::isfinite(*dec) || *dec < -90.0 || *dec > 90.0) return std::nullopt;
  return sky::cell_of({sky::normalize_ra(*ra), *dec}, kCenterCellOrder);
}

// Fills center_cell from the datasets' s_ra and s_dec (the upgrade of a
// version-2 registry), a slice of 10^4 datasets at a time in key order (the
// primary key's index gives each slice), so that memory stays the same
// whatever the registry's size (all centres at once: 16 GB at 10^9 rows);
// each slice is written as one statement of two arrays on PostgreSQL, so a
// statement's cost is spread over 10^4 rows either way.
void fill_center_cells(db::Connection& conn) {
  constexpr std::int64_t kSlice = 10'000;
  const bool pg = conn.dialect() == db::Dialect::postgresql;
  auto read = conn.prepare(fmt::format(
      "SELECT dataset_key, s_ra, s_dec FROM dataset WHERE dataset_key > ? ORDER BY dataset_key LIMIT {}", kSlice));
  auto insert = conn.prepare(
      pg ? "INSERT INTO center_cell (cell, dataset_key) SELECT * FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[]))"
         : "INSERT INTO center_cell (cell, dataset_key) VALUES (?, ?)");
  std::vector<std::int64_t> keys, cells;
  std::optional<std::int64_t> after = std::numeric_limits<std::int64_t>::min();
  while (after) {
    keys.clear();
    cells.clear();
    std::int64_t rows = 0, last = 0;
    read->bind(1, *after);
    while (read->step()) {
      ++rows;
      last = read->get_int(0);
      if (const auto cell = center_cell_of(read->get_optional_double(1), read->get_optional_double(2))) {
        keys.push_back(last);
        cells.push_back(*cell);
      }
    }
    read->reset();
    after = rows == kSlice ? std::optional(last) : std::nullopt;
    if (pg) {
      if (keys.empty()) continue;
      insert->bind(1, bigint_array(cells)).bind(2, bigint_array(keys)).run();
      insert->reset();
    } else {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        insert->bind(1, cells[i]).bind(2, keys[i]).run();
        insert->reset();
      }
    }
  }
}

}  // namespace

std::string mjd_timestamp_sql(db::Dialect dialect, std::string_view mjd) {
  // ISO 8601 with milliseconds, as DALI writes a timestamp.
  return dialect == db::Dialect::postgresql
             ? fmt::format("to_char(TIMESTAMP '1858-11-17' + ({}) * INTERVAL '1 day', "
                           "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", mjd)
             : fmt::format("strftime('%Y-%m-%dT%H:%M:%fZ', ({}) + 2400000.5)", mjd);
}

std::vector<sky::CellRange> center_cell_ranges(const sky::Shape& shape) {
  // The shape's extent (deg): a circle's diameter, a polygon's bounding
  // circle's, a range's geometric mean of its sides.
  const double extent = std::visit(
      [](const auto& s) -> double {
        using S = std::decay_t<decltype(s)>;
        if constexpr (std::is_same_v<S, sky::Circle>) {
          return 2.0 * s.radius_deg;
        } else if constexpr (std::is_same_v<S, sky::Polygon>) {
          return 2.0 * s.bounding_circle().radius_deg;
        } else {
          const double width = s.ra_min <= s.ra_max ? s.ra_max - s.ra_min : 360.0 - s.ra_min + s.ra_max;
          const double cos_dec =
              std::max(std::cos(std::max(std::abs(s.dec_min), std::abs(s.dec_max)) * std::numbers::pi / 180.0), 1e-3);
          return std::sqrt(std::max(width * cos_dec, 0.0) * std::max(s.dec_max - s.dec_min, 0.0));
        }
      },
      shape);
  // Cells of about a quarter of the extent: a cone's cover has a few dozen
  // cells, so its candidates are about its own centres, at any size.
  int order = kCenterCellOrder;
  while (order > 0 && sky::cell_size_deg(order) < extent / 4.0) --order;
  const int shift = 2 * (kCenterCellOrder - order);
  auto ranges = sky::cover(shape, order);
  for (auto& r : ranges) {
    r.first <<= shift;
    r.last = ((r.last + 1) << shift) - 1;
  }
  return ranges;
}

sky::Polygon polygon_from_stcs(const std::string& stcs) {
  // Read for every row a spatial query returns: tokens by hand and numbers
  // with from_chars (no stream, no exception per token).
  const char* p = stcs.data();
  const char* const end = p + stcs.size();
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  const auto next_token = [&]() -> std::string_view {
    while (p < end && blank(*p)) ++p;
    const char* start = p;
    while (p < end && !blank(*p)) ++p;
    return {start, static_cast<size_t>(p - start)};
  };
  if (next_token() != "POLYGON") throw std::invalid_argument("s_region is not an STC-S POLYGON: " + stcs.substr(0, 80));
  std::vector<double> numbers;
  for (std::string_view token = next_token(); !token.empty(); token = next_token()) {
    double v = 0.0;
    const auto [used, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
    if (ec != std::errc() || used != token.data() + token.size()) {
      if (numbers.empty()) continue;  // the frame name (ICRS) after POLYGON
      throw std::invalid_argument("s_region has a non-numeric coordinate: " + std::string(token));
    }
    numbers.push_back(v);
  }
  if (numbers.size() % 2 != 0) throw std::invalid_argument("s_region has an odd number of coordinates");
  std::vector<sky::SkyPoint> vertices;
  vertices.reserve(numbers.size() / 2);
  for (size_t i = 0; i + 1 < numbers.size(); i += 2) vertices.push_back({numbers[i], numbers[i + 1]});
  if (vertices.size() < 3) throw std::invalid_argument("s_region has fewer than 3 vertices");
  return sky::Polygon(std::move(vertices), sky::Polygon::Checked{});
}

Registry::Registry(std::unique_ptr<db::Connection> conn, int index_order_if_new, Access access)
    : conn_(std::move(conn)) {
  if (access == Access::read_only) {
    open_read_only();
    return;
  }
  const bool pg = conn_->dialect() == db::Dialect::postgresql;
  // Replicas opening one PostgreSQL registry at the same time: one of them
  // creates the schema and its first rows while the others wait (an
  // advisory lock held to the end of the transaction); SQLite's BEGIN
  // IMMEDIATE does the same for processes sharing one file.
  db::Transaction setup(*conn_);
  if (pg) conn_->exec("SELECT pg_advisory_xact_lock(7291553032)");
  conn_->exec(schema_sql(conn_->dialect()));
  auto get = conn_->prepare("SELECT value FROM registry_meta WHERE key = ?");
  get->bind(1, "index_order");
  if (get->step()) {
    index_order_ = std::stoi(get->get_text(0));
    get->reset();
    get->bind(1, "schema_version");
    int version = get->step() ? std::stoi(get->get_text(0)) : kSchemaVersion;
    get->reset();
    if (version == 1 && !pg) {  // version 1 existed on SQLite only
      conn_->exec(kUpgradeFrom1);
      conn_->exec(schema_sql(conn_->dialect()));  // the view as version 2 defines it
      version = 2;
    }
    const int opened_version = version;
    if (version == 2) {  // the schema above made center_cell, empty
      fill_center_cells(*conn_);
      version = 3;
    }
    if (version == 3) {  // the schema above made the efd_* tables
      conn_->exec(fmt::format(fmt::runtime(kUpgradeFrom3), fmt::arg("integer", db::integer_type(conn_->dialect())),
                              fmt::arg("real", db::real_type(conn_->dialect()))));
      version = 4;
    }
    if (version == 4) {  // the schema above made dataset_part, empty: the files' headers fill it
      conn_->exec("INSERT INTO registry_meta (key, value) VALUES ('dataset_part_pending', '1')");
      version = 5;
    }
    if (version != opened_version && version == kSchemaVersion) {
      auto put = conn_->prepare("UPDATE registry_meta SET value = ? WHERE key = 'schema_version'");
      put->bind(1, std::to_string(kSchemaVersion)).run();
    }
    if (version != kSchemaVersion) {
      throw db::DbError(
          fmt::format("registry schema version {} is not the supported version {}", version, kSchemaVersion));
    }
  } else {
    if (index_order_if_new < 0 || index_order_if_new > 16) {
      throw std::invalid_argument("index order must be between 0 and 16");
    }
    index_order_ = index_order_if_new;
    auto put = conn_->prepare("INSERT INTO registry_meta (key, value) VALUES (?, ?)");
    put->bind(1, "index_order").bind(2, std::to_string(index_order_)).run();
    put->reset();
    put->bind(1, "schema_version").bind(2, std::to_string(kSchemaVersion)).run();
  }
  setup.commit();
}

void Registry::open_read_only() {
  // What the primary wrote, read as it is: no CREATE, no upgrade.
  const auto meta = [&](const char* key) -> std::optional<std::string> {
    auto get = conn_->prepare("SELECT value FROM registry_meta WHERE key = ?");
    get->bind(1, key);
    if (!get->step()) return std::nullopt;
    return get->get_text(0);
  };
  if (!db::table_exists(*conn_, "registry_meta")) {
    throw db::DbError("registry: the database has no registry (read-only: it is not created here)");
  }
  const auto order = meta("index_order");
  const auto version = meta("schema_version");
  if (!order || !version) throw db::DbError("registry: the database's registry is incomplete");
  if (std::stoi(*version) != kSchemaVersion) {
    throw db::DbError(fmt::format("registry schema version {} is not the supported version {} (read-only: it is "
                                  "upgraded where it is written)",
                                  *version, kSchemaVersion));
  }
  index_order_ = std::stoi(*order);
}

void Registry::insert(const DatasetRecord& r) {
  // Cached: an ingest inserts thousands of records with the same three
  // statements, and parsing them anew cost a fifth of SQLite's time per row.
  auto s = conn_->prepare_cached(
      "INSERT INTO dataset (dataset_id, dataset_type, collection, instrument, visit, exposure, detector, "
      "detector_name, raft, band, physical_filter, skymap, tract, patch, file_path, file_size, checksum, "
      "content_type, storage, recipe, s_ra, s_dec, s_fov, s_region, s_resolution, pixel_scale, s_xel1, s_xel2, t_min, t_max, "
      "t_exptime, em_min, em_max, em_res_power, facility_name, instrument_name, target_name, seeing, airmass, "
      "sky_background, zero_point, psf_fwhm, telescope_ra, telescope_dec, calib_level, software_version, owner, "
      "read_policy, read_groups, release_mjd, n_inputs, coverage_fraction, depth_5sigma, ingest_mjd) VALUES (?, ?, ?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " +
      std::string(db::mjd_now_sql(conn_->dialect())) + ") RETURNING dataset_key");
  int c = 1;
  auto text_or_null = [&](const std::string& v) {
    if (v.empty()) {
      s->bind_null(c++);
    } else {
      s->bind(c++, v);
    }
  };
  s->bind(c++, r.dataset_id);
  s->bind(c++, std::string(to_string(r.type)));
  s->bind(c++, r.collection);
  text_or_null(r.data_id.instrument);
  s->bind(c++, r.data_id.visit);
  s->bind(c++, r.data_id.exposure);
  s->bind(c++, r.data_id.detector);
  text_or_null(r.data_id.detector_name);
  text_or_null(r.data_id.raft);
  text_or_null(r.data_id.band);
  text_or_null(r.data_id.physical_filter);
  text_or_null(r.data_id.skymap);
  s->bind(c++, r.data_id.tract);
  text_or_null(r.data_id.patch);
  s->bind(c++, r.file_path);
  s->bind(c++, r.file_size);
  s->bind(c++, r.checksum);
  s->bind(c++, r.content_type);
  s->bind(c++, std::string(to_string(r.storage)));
  text_or_null(r.recipe);
  s->bind(c++, r.s_ra);
  s->bind(c++, r.s_dec);
  s->bind(c++, r.s_fov);
  if (r.footprint) {
    s->bind(c++, sky::to_stcs(*r.footprint));
  } else {
    s->bind_null(c++);
  }
  s->bind(c++, r.s_resolution);
  s->bind(c++, r.pixel_scale_arcsec);
  if (r.footprint) {
    s->bind(c++, r.width);
    s->bind(c++, r.height);
  } else {
    s->bind(c++, r.width > 0 ? std::optional<std::int64_t>(r.width) : std::nullopt);
    s->bind(c++, r.height > 0 ? std::optional<std::int64_t>(r.height) : std::nullopt);
  }
  s->bind(c++, r.t_min);
  s->bind(c++, r.t_max);
  s->bind(c++, r.t_exptime);
  s->bind(c++, r.em_min);
  s->bind(c++, r.em_max);
  s->bind(c++, r.em_res_power);
  text_or_null(r.facility_name);
  text_or_null(r.instrument_name);
  text_or_null(r.target_name);
  s->bind(c++, r.seeing);
  s->bind(c++, r.airmass);
  s->bind(c++, r.sky_background);
  s->bind(c++, r.zero_point);
  s->bind(c++, r.psf_fwhm);
  s->bind(c++, r.telescope_ra);
  s->bind(c++, r.telescope_dec);
  s->bind(c++, calib_level(r));
  text_or_null(r.software_version);
  s->bind(c++, r.rights.owner);
  s->bind(c++, std::string(to_string(r.rights.policy)));
  s->bind(c++, join(r.rights.groups, ','));
  s->bind(c++, r.rights.release_mjd);
  s->bind(c++, r.n_inputs);
  s->bind(c++, r.coverage_fraction);
  s->bind(c++, r.depth_5sigma);
  if (!s->step()) throw db::DbError("registry: INSERT ... RETURNING gave no key");
  const std::int64_t key = s->get_int(0);
  s->reset();

  if (r.footprint && conn_->dialect() == db::Dialect::postgresql) {
    // All cells in one statement (an array), not a round trip per cell.
    const auto cells = sky::expand(sky::cover(*r.footprint, index_order_));
    auto cell_insert = conn_->prepare_cached(
        "INSERT INTO footprint_cell (cell, dataset_key) SELECT c, ? FROM unnest(CAST(? AS BIGINT[])) AS c");
    cell_insert->bind(1, key).bind(2, bigint_array(cells)).run();
  } else if (r.footprint) {
    auto cell_insert = conn_->prepare_cached("INSERT INTO footprint_cell (cell, dataset_key) VALUES (?, ?)");
    for (const auto cell : sky::expand(sky::cover(*r.footprint, index_order_))) {
      cell_insert->bind(1, static_cast<std::int64_t>(cell)).bind(2, key).run();
      cell_insert->reset();
    }
  }
  if (const auto cell = center_cell_of(r.s_ra, r.s_dec)) {
    auto center_insert = conn_->prepare_cached("INSERT INTO center_cell (cell, dataset_key) VALUES (?, ?)");
    center_insert->bind(1, *cell).bind(2, key).run();
    center_insert->reset();
  }
  auto prov = conn_->prepare_cached("INSERT INTO provenance (dataset_id, input_id, role) VALUES (?, ?, ?)");
  for (const auto& link : r.inputs) {
    prov->bind(1, r.dataset_id).bind(2, link.input_id).bind(3, link.role).run();
    prov->reset();
  }
  insert_hdu_parts(*conn_, key, r.parts);
}

std::optional<std::string> Registry::checksum_of(const std::string& dataset_id) {
  auto s = conn_->prepare("SELECT checksum FROM dataset WHERE dataset_id = ?");
  s->bind(1, dataset_id);
  if (!s->step()) return std::nullopt;
  return s->get_text(0);
}

std::optional<DatasetRecord> Registry::find_by_id(const std::string& dataset_id) {
  DatasetQuery q;
  q.dataset_ids = {dataset_id};
  auto found = find(q);
  if (found.empty()) return std::nullopt;
  auto rec = std::move(found.front());
  rec.inputs = inputs_of(dataset_id);
  return rec;
}

std::optional<std::vector<std::int64_t>> footprint_candidates(db::Connection& conn, int index_order,
                                                              const std::vector<sky::Shape>& regions,
                                                              std::optional<std::size_t> max_index_rows) {
  std::vector<std::int64_t> keys;
  // One more row than allowed tells that there are too many.
  const std::int64_t limit =
      max_index_rows ? static_cast<std::int64_t>(*max_index_rows) + 1 : std::numeric_limits<std::int64_t>::max();
  if (conn.dialect() == db::Dialect::postgresql) {
    // One statement: the cell ranges travel as two arrays joined to the
    // index (one index range scan each).
    std::vector<std::int64_t> lows, highs;
    for (const auto& region : regions) {
      for (const auto& range : sky::cover(region, index_order)) {
        lows.push_back(static_cast<std::int64_t>(range.first));
        highs.push_back(static_cast<std::int64_t>(range.last));
      }
    }
    if (lows.empty()) return keys;
    // (LIMIT only when asked for: the generic plan of a statement with a
    // parameter as its LIMIT is made for a tenth of the rows.)
    auto s = conn.prepare_cached(fmt::format(
        "SELECT f.dataset_key FROM footprint_cell AS f JOIN unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[])) AS r "
        "(lo, hi) ON f.cell BETWEEN r.lo AND r.hi{}",
        max_index_rows ? " LIMIT ?" : ""));
    s->bind(1, bigint_array(lows)).bind(2, bigint_array(highs));
    if (max_index_rows) s->bind(3, limit);
    while (s->step()) keys.push_back(s->get_int(0));
  } else {
    auto s = conn.prepare_cached("SELECT dataset_key FROM footprint_cell WHERE cell BETWEEN ? AND ? LIMIT ?");
    for (const auto& region : regions) {
      for (const auto& range : sky::cover(region, index_order)) {
        const auto left = limit - static_cast<std::int64_t>(keys.size());
        if (left <= 0) break;
        s->bind(1, static_cast<std::int64_t>(range.first)).bind(2, static_cast<std::int64_t>(range.last)).bind(3, left);
        while (s->step()) keys.push_back(s->get_int(0));
        s->reset();
      }
    }
  }
  if (max_index_rows && keys.size() > *max_index_rows) return std::nullopt;
  // A dataset has a row per cell of its footprint: once each, in order.
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

namespace {

// The conditions of a query on the dataset table besides its regions, as
// " AND ..." with their parameters.
SqlFilter dataset_conditions(const DatasetQuery& q) {
  std::string sql;
  std::vector<db::Value> params;
  auto add_in = [&](const char* column, const auto& values) {
    if (values.empty()) return;
    sql += fmt::format(" AND {} IN (", column);
    for (size_t i = 0; i < values.size(); ++i) {
      sql += i ? ", ?" : "?";
      params.emplace_back(values[i]);
    }
    sql += ")";
  };
  add_in("dataset_type", q.dataset_types);
  add_in("collection", q.collections);
  add_in("band", q.bands);
  add_in("visit", q.visits);
  add_in("detector", q.detectors);
  add_in("raft", q.rafts);
  add_in("tract", q.tracts);
  add_in("patch", q.patches);
  add_in("dataset_id", q.dataset_ids);
  add_in("facility_name", q.facilities);
  add_in("instrument_name", q.instruments);
  add_in("target_name", q.targets);
  add_in("content_type", q.content_types);
  add_in("calib_level", q.calib_levels);
  if (q.patches_only) {
    sql += fmt::format(" AND NOT (dataset_type IN ('{}', '{}') AND tract IS NULL)", to_string(DatasetType::deepCoadd),
                       to_string(DatasetType::goodSeeingCoadd));
  }
  // (lo_column >= ... ) conditions for a list of ranges, OR'ed; an infinite
  // end is no condition (a NULL column then still fails the other end, or
  // matches when both ends are open: an unconstrained range).
  auto add_ranges = [&](const char* lo_column, const char* hi_column, const std::vector<Range>& ranges) {
    if (ranges.empty()) return;
    std::string any;
    for (const auto& r : ranges) {
      std::string one = fmt::format("{} IS NOT NULL AND {} IS NOT NULL", lo_column, hi_column);
      if (std::isfinite(r.lo)) {
        one += fmt::format(" AND {} >= ?", hi_column);
        params.emplace_back(r.lo);
      }
      if (std::isfinite(r.hi)) {
        one += fmt::format(" AND {} <= ?", lo_column);
        params.emplace_back(r.hi);
      }
      any += fmt::format("{}({})", any.empty() ? "" : " OR ", one);
    }
    sql += " AND (" + any + ")";
  };
  add_ranges("t_min", "t_max", q.times);
  add_ranges("em_min", "em_max", q.wavelengths);
  add_ranges("t_exptime", "t_exptime", q.exptimes);
  add_ranges("s_fov", "s_fov", q.fovs);
  add_ranges("s_resolution", "s_resolution", q.spatial_resolutions);
  add_ranges("t_exptime", "t_exptime", q.time_resolutions);
  add_ranges("em_res_power", "em_res_power", q.resolving_powers);
  if (q.public_at) {
    sql += " AND read_policy = 'public' AND (release_mjd IS NULL OR release_mjd <= ?)";
    params.emplace_back(*q.public_at);
  }
  if (q.access) {
    sql += " AND (" + q.access->sql + ")";
    for (const auto& v : q.access->params) params.push_back(v);
  }
  return {std::move(sql), std::move(params)};
}

// Binds `params` from parameter number `first` on.
void bind_all(db::Statement& s, int first, const std::vector<db::Value>& params) {
  for (const auto& v : params) s.bind(first++, v);
}

}  // namespace

std::vector<DatasetRecord> Registry::find(const DatasetQuery& q) {
  std::vector<DatasetRecord> out;
  for_each(q, [&out](DatasetRecord&& r) {
    out.push_back(std::move(r));
    return true;
  });
  return out;
}

void Registry::for_each(const DatasetQuery& q, const RecordVisitor& visit) {
  const SqlFilter filter = dataset_conditions(q);
  if (q.regions.empty()) {
    // One pass. The same kinds of query come again and again (a service's
    // lookups by ID under the caller's visibility): prepared once per
    // connection.
    auto s = conn_->prepare_cached(fmt::format("SELECT {} FROM dataset WHERE 1 = 1{} ORDER BY dataset_key",
                                               kSelectColumns, filter.sql));
    s->binary_results();
    bind_all(*s, 1, filter.params);
    std::size_t n = 0;
    while (s->step()) {
      if (!visit(read_record(*s))) return;
      if (q.limit && ++n >= *q.limit) return;
    }
    return;
  }
  const auto hits = region_hits(q, filter);
  visit_keys(hits, filter, visit);
}

std::vector<std::int64_t> Registry::find_keys(const DatasetQuery& q) {
  const SqlFilter filter = dataset_conditions(q);
  if (!q.regions.empty()) return region_hits(q, filter);
  auto s = conn_->prepare_cached(
      fmt::format("SELECT dataset_key FROM dataset WHERE 1 = 1{} ORDER BY dataset_key", filter.sql));
  bind_all(*s, 1, filter.params);
  std::vector<std::int64_t> keys;
  while (s->step()) {
    keys.push_back(s->get_int(0));
    if (q.limit && keys.size() >= *q.limit) break;
  }
  return keys;
}

void Registry::for_each_of(const DatasetQuery& q, std::span<const std::int64_t> keys, const RecordVisitor& visit) {
  visit_keys(keys, dataset_conditions(q), visit);
}

std::vector<std::int64_t> Registry::region_hits(const DatasetQuery& q, const SqlFilter& conditions) {
  // Two passes. The first reads of each candidate of the footprint index
  // only its key and footprint, in the order of the result, for the exact
  // test, up to the limit; the second reads the whole rows of the datasets
  // that passed. Most candidates fail the exact test (a cone's cells reach
  // beyond it) and a limit may keep a few rows of thousands: reading and
  // decoding every column of them all was most of the time of a query.
  const auto candidates = *footprint_candidates(*conn_, index_order_, q.regions);
  if (candidates.empty()) return {};

  // Pass 1: the keys of the datasets whose footprint meets a region, in
  // the order of the result (the order of the keys: of registration), up
  // to the limit (SIAv2's MAXREC).
  std::size_t tested = 0;
  return matching_footprints(*conn_, candidates, tested, q.limit.value_or(candidates.size()), conditions,
                             [&](const std::string& s_region) {
                               const auto footprint = polygon_from_stcs(s_region);
                               return std::any_of(q.regions.begin(), q.regions.end(), [&](const sky::Shape& shape) {
                                 return sky::intersects(footprint, shape);
                               });
                             });
}

std::vector<std::int64_t> matching_footprints(db::Connection& conn, std::span<const std::int64_t> candidates,
                                              std::size_t& tested, std::size_t wanted, const SqlFilter& conditions,
                                              const FootprintTest& test) {
  std::vector<std::int64_t> passed;
  for (std::size_t chunk = std::max<std::size_t>(2 * wanted, 64); passed.size() < wanted && tested < candidates.size();
       chunk *= 2) {
    // The chunk's keys travel as one parameter.
    const auto keys = candidates.subspan(tested, std::min(chunk, candidates.size() - tested));
    tested += keys.size();
    visit_footprints(conn, keys, conditions, [&](std::int64_t key, const std::string& s_region) {
      if (test(s_region)) passed.push_back(key);
      if (passed.size() < wanted) return true;
      // Stopped within the chunk: the next search begins after this key.
      tested = static_cast<std::size_t>(std::upper_bound(candidates.begin(), candidates.end(), key) -
                                        candidates.begin());
      return false;
    });
  }
  return passed;
}

std::string keys_parameter(db::Dialect dialect, std::span<const std::int64_t> keys) {
  return dialect == db::Dialect::postgresql ? bigint_array(keys) : json_array(keys);
}

void visit_footprints(db::Connection& conn, std::span<const std::int64_t> keys, const SqlFilter& conditions,
                      const FootprintVisitor& visit) {
  if (keys.empty()) return;
  const bool pg = conn.dialect() == db::Dialect::postgresql;
  auto s = conn.prepare_cached(fmt::format("SELECT dataset_key, s_region FROM {}{} ORDER BY dataset_key",
                                           datasets_of_keys(pg), conditions.sql));
  s->binary_results();
  s->bind(1, keys_parameter(conn.dialect(), keys));
  bind_all(*s, 2, conditions.params);
  while (s->step()) {
    if (s->is_null(1)) continue;
    if (!visit(s->get_int(0), s->get_text(1))) break;
  }
  s->reset();
}

void Registry::visit_keys(std::span<const std::int64_t> keys, const SqlFilter& conditions, const RecordVisitor& visit) {
  if (keys.empty()) return;
  // Pass 2: their rows, in the same order. The conditions are applied
  // again: a dataset whose rights changed in between is not returned.
  const bool pg = conn_->dialect() == db::Dialect::postgresql;
  auto s = conn_->prepare_cached(
      fmt::format("SELECT {} FROM {}{} ORDER BY dataset_key", kSelectColumns, datasets_of_keys(pg), conditions.sql));
  s->binary_results();
  s->bind(1, keys_parameter(conn_->dialect(), keys));
  bind_all(*s, 2, conditions.params);
  while (s->step()) {
    if (!visit(read_record(*s))) return;
  }
}

std::vector<ProvenanceLink> Registry::inputs_of(const std::string& dataset_id) {
  auto s = conn_->prepare("SELECT input_id, role FROM provenance WHERE dataset_id = ? ORDER BY input_id");
  s->bind(1, dataset_id);
  std::vector<ProvenanceLink> out;
  while (s->step()) out.push_back({s->get_text(0), s->get_text(1)});
  return out;
}

std::vector<std::string> Registry::outputs_of(const std::string& dataset_id) {
  auto s = conn_->prepare("SELECT dataset_id FROM provenance WHERE input_id = ? ORDER BY dataset_id");
  s->bind(1, dataset_id);
  std::vector<std::string> out;
  while (s->step()) out.push_back(s->get_text(0));
  return out;
}

bool Registry::set_rights(const std::string& dataset_id, const Rights& rights) {
  auto s = conn_->prepare("UPDATE dataset SET owner = ?, read_policy = ?, read_groups = ?, release_mjd = ? WHERE dataset_id = ?");
  s->bind(1, rights.owner).bind(2, std::string(to_string(rights.policy))).bind(3, join(rights.groups, ','));
  s->bind(4, rights.release_mjd).bind(5, dataset_id);
  s->run();
  return conn_->changes() > 0;
}

bool Registry::remove(const std::string& dataset_id) {
  auto s = conn_->prepare("DELETE FROM dataset WHERE dataset_id = ?");
  s->bind(1, dataset_id).run();
  return conn_->changes() > 0;
}

std::pair<std::int64_t, std::int64_t> Registry::owned_bytes(const std::string& owner, DatasetType type) {
  auto s = conn_->prepare("SELECT coalesce(sum(file_size), 0), count(*) FROM dataset WHERE owner = ? AND dataset_type = ?");
  s->bind(1, owner).bind(2, std::string(to_string(type)));
  if (!s->step()) return {0, 0};
  return {s->get_int(0), s->get_int(1)};
}

std::size_t Registry::fill_pending_parts(
    const PartsReader& read, const std::function<void(const std::string& dataset_id, const std::string& why)>& skipped) {
  db::Transaction tx(*conn_);
  // Whoever deletes the mark fills the table; a writer opening the registry
  // at the same time waits for the row (PostgreSQL) or the database
  // (SQLite), then finds nothing to do.
  conn_->exec("DELETE FROM registry_meta WHERE key = 'dataset_part_pending'");
  if (conn_->changes() == 0) return 0;
  std::vector<std::tuple<std::int64_t, std::string, std::string>> stored;
  {
    auto s = conn_->prepare(
        "SELECT dataset_key, dataset_id, file_path FROM dataset AS d WHERE storage = 'file' AND NOT EXISTS "
        "(SELECT 1 FROM dataset_part AS p WHERE p.dataset_key = d.dataset_key) ORDER BY dataset_key");
    while (s->step()) stored.emplace_back(s->get_int(0), s->get_text(1), s->get_text(2));
  }
  std::size_t filled = 0;
  for (const auto& [key, id, path] : stored) {
    try {
      insert_hdu_parts(*conn_, key, read(path));
      ++filled;
    } catch (const std::exception& e) {
      if (skipped) skipped(id, e.what());
    }
  }
  tx.commit();
  return filled;
}

RegistryStats Registry::stats() {
  RegistryStats st;
  auto s = conn_->prepare("SELECT (SELECT count(*) FROM dataset), (SELECT count(*) FROM footprint_cell)");
  if (s->step()) {
    st.datasets = s->get_int(0);
    st.index_cells = s->get_int(1);
  }
  return st;
}

}  // namespace pixserve::repo
