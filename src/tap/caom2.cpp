#include "tap/caom2.hpp"

#include <array>
#include <cctype>

#include <fmt/format.h>

#include "repo/dataset.hpp"
#include "repo/registry.hpp"

namespace pixserve::tap::caom2 {
namespace {

using adql::AdqlType;
constexpr auto V = AdqlType::varchar;
constexpr auto L = AdqlType::bigint;
constexpr auto I = AdqlType::integer;
constexpr auto D = AdqlType::double_precision;
constexpr auto T = AdqlType::timestamp;

// The expressions name, besides the aliases of their table's FROM:
//   {main}            the registry's schema, with its dot
//   {obs_key_d}       a dataset's observationID (its exposure's group for
//                     the visit-based types, else its own ID), of alias d
//   {obs_key_i}       the same of alias i
//   {visible_d/i}     the viewer's visibility predicate on alias d/i
//   {agg}             the dialect's string_agg / group_concat
//   {did_prefix}      ivo://<authority>/<name>? (the publisher DIDs' prefix)
//   {visit_types}, {coadd_types}, {calibration_types}: quoted lists
//   {ts_*}            DALI timestamps of MJDs (see view_select)

// Observation: one row per group of visible datasets (alias g).
constexpr std::array<Column, 16> kObservationColumns{{
    {"obsID", V, "", "meta.id", "caom2:Observation.id",
     "Identifier of the observation (its observationURI; CADC uses a UUID)", "'caom:' || g.collection || '/' || g.obs_key",
     false, true},
    {"observationURI", V, "", "meta.ref.uri;meta.main", "caom2:Observation.uri",
     "URI of the observation: caom:<collection>/<observationID>", "'caom:' || g.collection || '/' || g.obs_key", true,
     true},
    {"collection", V, "", "meta.id", "caom2:Observation.collection",
     "Collection: data release (DR1, ...) or prompt", "g.collection", true, true},
    {"observationID", V, "", "meta.id", "caom2:Observation.observationID",
     "Observation within the collection: <instrument>.v<visit>.d<detector> for an exposure of one detector (its "
     "raw, calexp, diffim planes), else the dataset ID (calibrations, coadds, user images)",
     "g.obs_key", true, true},
    {"algorithm_name", V, "", "meta.code", "caom2:Observation.algorithm.name",
     "exposure for a simple observation; the coadd kind (deepCoadd, goodSeeingCoadd) for a composite one",
     "CASE WHEN g.kind IN ({coadd_types}) THEN g.kind ELSE 'exposure' END", true},
    {"type", V, "", "meta.code.class", "caom2:Observation.type",
     "Type of observation: object, bias or flat (null for user images)",
     "CASE WHEN g.kind IN ({calibration_types}) THEN g.kind WHEN g.kind = 'user' THEN NULL ELSE 'object' END", true},
    {"intent", V, "", "meta.code.class", "caom2:Observation.intent", "science or calibration",
     "CASE WHEN g.kind IN ({calibration_types}) THEN 'calibration' ELSE 'science' END", true},
    {"sequenceNumber", L, "", "meta.id;obs", "caom2:Observation.sequenceNumber",
     "Visit number of an exposure's observation", "CASE WHEN g.kind IN ({visit_types}) THEN g.visit END", true},
    {"metaRelease", T, "", "time.release", "caom2:Observation.metaRelease",
     "When the observation's description becomes public (the earliest of its planes'); null: not embargoed",
     "{ts_obs_release}", false},
    {"telescope_name", V, "", "meta.id;instr.tel", "caom2:Observation.telescope.name", "Telescope",
     "g.telescope_name", true},
    {"instrument_name", V, "", "meta.id;instr", "caom2:Observation.instrument.name", "Instrument (camera)",
     "g.instrument_name", true},
    {"target_name", V, "", "meta.id;src", "caom2:Observation.target.name", "Survey field observed", "g.target_name",
     true},
    {"environment_seeing", D, "arcsec", "instr.obsty.seeing", "caom2:Observation.environment.seeing",
     "Site seeing FWHM during the exposure", "g.seeing", false},
    {"environment_elevation", D, "deg", "pos.az.alt", "caom2:Observation.environment.elevation",
     "Elevation of the pointing above the horizon at the start of the exposure, from its airmass (1 / sin of the "
     "elevation)",
     "CASE WHEN g.airmass >= 1 THEN {degrees}({asin}(1.0 / g.airmass)) END", false},
    {"members", V, "", "meta.id", "caom2:Observation.members",
     "Of a coadd: the observationURIs of the observations of its inputs, space-separated (those the caller may see)",
     "CASE WHEN g.kind IN ({coadd_types}) THEN (SELECT {agg}(u, ' ') FROM (SELECT DISTINCT 'caom:' || i.collection || "
     "'/' || {obs_key_i} AS u FROM {main}provenance AS pr JOIN {main}dataset AS i ON i.dataset_id = pr.input_id "
     "WHERE pr.dataset_id = g.obs_key AND {visible_i} ORDER BY u) AS coadd_members) END",
     false},
    {"lastModified", T, "", "time.processing", "caom2:Observation.lastModified",
     "When the observation last changed (the latest ingest of its planes)", "{ts_obs_modified}", false},
}};

constexpr std::string_view kObservationFrom =
    "FROM (SELECT d.collection AS collection, {obs_key_d} AS obs_key, MIN(d.dataset_type) AS kind, "
    "MIN(d.visit) AS visit, MIN(d.instrument_name) AS instrument_name, MIN(d.facility_name) AS telescope_name, "
    "MIN(d.target_name) AS target_name, MIN(d.seeing) AS seeing, MIN(d.airmass) AS airmass, "
    "CASE WHEN COUNT(d.release_mjd) < COUNT(*) THEN NULL ELSE MIN(d.release_mjd) END AS release_mjd, "
    "MAX(d.ingest_mjd) AS ingest_mjd FROM {main}dataset AS d WHERE {visible_d} "
    "GROUP BY d.collection, {obs_key_d}) AS g";

// Plane: one row per visible dataset (alias d), with its ObsCore row (o).
constexpr std::array<Column, 30> kPlaneColumns{{
    {"obsID", V, "", "meta.id", "caom2:Observation.id", "The plane's observation (caom2.Observation.obsID)",
     "'caom:' || d.collection || '/' || {obs_key_d}", false, true},
    {"planeID", L, "", "meta.id", "caom2:Plane.id", "Identifier of the plane (the registry's dataset key)",
     "d.dataset_key", false, true},
    {"planeURI", V, "", "meta.ref.uri;meta.main", "caom2:Plane.uri",
     "URI of the plane: <observationURI>/<productID>",
     "'caom:' || d.collection || '/' || {obs_key_d} || '/' || d.dataset_type", true, true},
    {"publisherID", V, "", "meta.ref.ivoid", "caom2:Plane.publisherID",
     "IVOA publisher DID of the plane's dataset: ivoa.obscore.obs_publisher_did", "o.obs_publisher_did", true, true},
    {"productID", V, "", "meta.id", "caom2:Plane.productID",
     "Product within the observation: the dataset type (raw, calexp, diffim, deepCoadd, bias, ...)", "d.dataset_type",
     true},
    {"metaRelease", T, "", "time.release", "caom2:Plane.metaRelease",
     "When the plane's description becomes public (the end of the embargo); null: not embargoed", "{ts_release_d}",
     false},
    {"dataRelease", T, "", "time.release", "caom2:Plane.dataRelease",
     "When the plane's data become public (the end of the embargo); null: not embargoed", "{ts_release_d}", true},
    {"dataProductType", V, "", "meta.code.class", "caom2:Plane.dataProductType", "Data product type: image",
     "o.dataproduct_type", true},
    {"calibrationLevel", I, "", "meta.code;obs.calib", "caom2:Plane.calibrationLevel",
     "Calibration level (ObsCore calib_level)", "o.calib_level", true},
    {"provenance_name", V, "", "meta.id", "caom2:Plane.provenance.name",
     "What made the plane: its dataset type", "d.dataset_type", false},
    {"provenance_version", V, "", "meta.version", "caom2:Plane.provenance.version",
     "Version of the software that made it", "d.software_version", false},
    {"provenance_inputs", V, "", "meta.id", "caom2:Plane.provenance.inputs",
     "Its inputs (survey.provenance) as publisher IDs (caom2.Plane.publisherID), space-separated",
     "(SELECT {agg}(u, ' ') FROM (SELECT {did_prefix} || pr.input_id AS u FROM {main}provenance AS pr "
     "WHERE pr.dataset_id = d.dataset_id AND NOT EXISTS (SELECT 1 FROM {main}dataset AS i WHERE "
     "i.dataset_id = pr.input_id AND NOT {visible_i}) ORDER BY u) AS plane_inputs)",
     false},
    {"position_bounds", AdqlType::polygon, "deg", "obs.field", "caom2:Plane.position.bounds",
     "Footprint on the sky (ICRS): the dataset's ObsCore s_region", "o.s_region", true},
    {"position_bounds_size", D, "deg", "phys.angSize;obs.field", "caom2:Plane.position.bounds.size",
     "Diameter of the smallest circle holding the footprint (ObsCore s_fov)", "o.s_fov", false},
    {"position_resolution", D, "arcsec", "pos.angResolution", "caom2:Plane.position.resolution",
     "Spatial resolution", "o.s_resolution", false},
    {"position_sampleSize", D, "arcsec", "instr.pixel", "caom2:Plane.position.sampleSize", "Pixel scale",
     "o.s_pixel_scale", false},
    {"position_dimension_naxis1", L, "", "meta.number", "caom2:Plane.position.dimension.naxis1",
     "Pixels along the first axis", "o.s_xel1", false},
    {"position_dimension_naxis2", L, "", "meta.number", "caom2:Plane.position.dimension.naxis2",
     "Pixels along the second axis", "o.s_xel2", false},
    {"energy_emBand", V, "", "instr.bandpass", "caom2:Plane.energy.emBand", "Band of the spectrum: Optical",
     "CASE WHEN o.em_min IS NULL THEN NULL ELSE 'Optical' END", true},
    {"energy_bounds_lower", D, "m", "em.wl;stat.min", "caom2:Plane.energy.bounds.lower",
     "Shortest wavelength of the band (ObsCore em_min)", "o.em_min", true},
    {"energy_bounds_upper", D, "m", "em.wl;stat.max", "caom2:Plane.energy.bounds.upper",
     "Longest wavelength of the band (ObsCore em_max)", "o.em_max", true},
    {"energy_bounds_width", D, "m", "instr.bandwidth", "caom2:Plane.energy.bounds.width",
     "Width of the band: energy_bounds_upper - energy_bounds_lower", "o.em_max - o.em_min", false},
    {"energy_bandpassName", V, "", "instr.bandpass;instr.filter", "caom2:Plane.energy.bandpassName",
     "Filter: the physical filter, else the band", "COALESCE(d.physical_filter, d.band)", true},
    {"energy_resolvingPower", D, "", "spect.resolution", "caom2:Plane.energy.resolvingPower",
     "Spectral resolving power (ObsCore em_res_power)", "o.em_res_power", false},
    {"time_bounds_lower", D, "d", "time.start;obs.exposure", "caom2:Plane.time.bounds.lower",
     "Start of the data, MJD (TAI) (ObsCore t_min)", "o.t_min", true},
    {"time_bounds_upper", D, "d", "time.end;obs.exposure", "caom2:Plane.time.bounds.upper",
     "End of the data, MJD (TAI) (ObsCore t_max)", "o.t_max", true},
    {"time_bounds_width", D, "d", "time.duration", "caom2:Plane.time.bounds.width",
     "Time span of the data: time_bounds_upper - time_bounds_lower", "o.t_max - o.t_min", false},
    {"time_exposure", D, "s", "time.duration;obs.exposure", "caom2:Plane.time.exposure",
     "Exposure time (of a coadd, of its inputs together)", "o.t_exptime", true},
    {"dataset_id", V, "", "meta.id", "",
     "The plane's dataset (ivoa.obscore.obs_id, survey.datasets.dataset_id); not part of CAOM", "d.dataset_id", false,
     true},
    {"lastModified", T, "", "time.processing", "caom2:Plane.lastModified", "When the plane was ingested",
     "{ts_modified_d}", false},
}};

constexpr std::string_view kPlaneFrom =
    "FROM {main}dataset AS d JOIN {main}ivoa_obscore AS o ON o.obs_id = d.dataset_id WHERE {visible_d}";

// Artifact: the plane's one file (alias d).
constexpr std::array<Column, 9> kArtifactColumns{{
    {"planeID", L, "", "meta.id", "caom2:Plane.id", "The artifact's plane (caom2.Plane.planeID)", "d.dataset_key",
     false, true},
    {"artifactID", L, "", "meta.id", "caom2:Artifact.id",
     "Identifier of the artifact (the dataset key: a plane has one file)", "d.dataset_key", false, true},
    {"uri", V, "", "meta.ref.uri;meta.main", "caom2:Artifact.uri",
     "URI of the file: pixserve:<path of the file under the repository root>; of a file made on request (a virtual "
     "dataset), pixserve:virtual/<dataset ID>",
     "CASE WHEN d.storage = 'file' THEN 'pixserve:' || d.file_path ELSE 'pixserve:virtual/' || d.dataset_id END", true,
     true},
    {"productType", V, "", "meta.code", "caom2:Artifact.productType", "this: the plane's data", "'this'", true},
    {"releaseType", V, "", "meta.code", "caom2:Artifact.releaseType", "data", "'data'", true},
    {"contentType", V, "", "meta.code.mime", "caom2:Artifact.contentType", "MIME type of the file", "d.content_type",
     true},
    {"contentLength", L, "byte", "phys.size;meta.file", "caom2:Artifact.contentLength",
     "Size of the stored file; null for a file made on request (a virtual dataset)",
     "CASE WHEN d.storage = 'file' THEN d.file_size END", true},
    {"contentChecksum", V, "", "meta.checksum", "caom2:Artifact.contentChecksum",
     "Checksum of the stored file's bytes, sha256:<hex>; null for a file made on request (a virtual dataset)",
     "CASE WHEN d.storage = 'file' THEN 'sha256:' || d.checksum END", true},
    {"lastModified", T, "", "time.processing", "caom2:Artifact.lastModified", "When the file was ingested",
     "{ts_modified_d}", false},
}};

constexpr std::string_view kArtifactFrom = "FROM {main}dataset AS d WHERE {visible_d}";

// Part: one per HDU of the file (alias p, its dataset d).
constexpr std::array<Column, 4> kPartColumns{{
    {"artifactID", L, "", "meta.id", "caom2:Artifact.id", "The part's artifact (caom2.Artifact.artifactID)",
     "p.dataset_key", false, true},
    {"partID", L, "", "meta.id", "caom2:Part.id",
     "Identifier of the part: 1000 x the artifact's ID + the HDU's number (0: the primary HDU)",
     "p.dataset_key * 1000 + p.hdu", false, true},
    {"name", V, "", "meta.id;meta.main", "caom2:Part.name", "The HDU's EXTNAME, else its number (0: the primary HDU)",
     "p.name", true},
    {"productType", V, "", "meta.code", "caom2:Part.productType",
     "this for the image (or a raw's amplifier); auxiliary for MASK, VARIANCE and tables", "p.product_type", true},
}};

constexpr std::string_view kPartFrom =
    "FROM {main}dataset_part AS p JOIN {main}dataset AS d ON d.dataset_key = p.dataset_key WHERE {visible_d}";

// Chunk: the image array of a part, with its linear celestial WCS.
constexpr std::array<Column, 23> kChunkColumns{{
    {"partID", L, "", "meta.id", "caom2:Part.id", "The chunk's part (caom2.Part.partID)",
     "p.dataset_key * 1000 + p.hdu", false, true},
    {"chunkID", L, "", "meta.id", "caom2:Chunk.id", "Identifier of the chunk (its part's: one chunk per part)",
     "p.dataset_key * 1000 + p.hdu", false, true},
    {"naxis", I, "", "meta.number", "caom2:Chunk.naxis", "Number of axes of the array (NAXIS)", "p.naxis", true},
    {"positionAxis1", I, "", "meta.number", "caom2:Chunk.positionAxis1",
     "Array axis of the first celestial coordinate (1), null without a celestial WCS",
     "CASE WHEN p.ctype1 IS NULL THEN NULL ELSE 1 END", false},
    {"positionAxis2", I, "", "meta.number", "caom2:Chunk.positionAxis2",
     "Array axis of the second celestial coordinate (2), null without a celestial WCS",
     "CASE WHEN p.ctype2 IS NULL THEN NULL ELSE 2 END", false},
    {"position_coordsys", V, "", "meta.code;pos.frame", "caom2:Chunk.position.coordsys",
     "Celestial frame of the WCS: RADESYS, else ICRS, FK4 or FK5 from EQUINOX (FITS WCS); null without a celestial "
     "WCS", "p.coordsys", false},
    {"position_equinox", D, "yr", "time.equinox", "caom2:Chunk.position.equinox",
     "Equinox of an FK4 or FK5 frame (Besselian or Julian years); null for ICRS", "p.equinox", false},
    {"position_axis_axis1_ctype", V, "", "meta.code", "caom2:Chunk.position.axis.axis1.ctype", "CTYPE1",
     "p.ctype1", true},
    {"position_axis_axis1_cunit", V, "", "meta.unit", "caom2:Chunk.position.axis.axis1.cunit", "CUNIT1", "p.cunit1",
     false},
    {"position_axis_axis2_ctype", V, "", "meta.code", "caom2:Chunk.position.axis.axis2.ctype", "CTYPE2",
     "p.ctype2", true},
    {"position_axis_axis2_cunit", V, "", "meta.unit", "caom2:Chunk.position.axis.axis2.cunit", "CUNIT2", "p.cunit2",
     false},
    {"position_axis_function_dimension_naxis1", L, "", "meta.number",
     "caom2:Chunk.position.axis.function.dimension.naxis1", "NAXIS1 (of the array: of any image, WCS or not)",
     "p.naxis1", true},
    {"position_axis_function_dimension_naxis2", L, "", "meta.number",
     "caom2:Chunk.position.axis.function.dimension.naxis2", "NAXIS2", "p.naxis2", true},
    {"position_axis_function_refCoord_coord1_pix", D, "", "pos.wcs.crpix",
     "caom2:Chunk.position.axis.function.refCoord.coord1.pix", "CRPIX1", "p.crpix1", false},
    {"position_axis_function_refCoord_coord1_val", D, "deg", "pos.wcs.crval",
     "caom2:Chunk.position.axis.function.refCoord.coord1.val", "CRVAL1", "p.crval1", false},
    {"position_axis_function_refCoord_coord2_pix", D, "", "pos.wcs.crpix",
     "caom2:Chunk.position.axis.function.refCoord.coord2.pix", "CRPIX2", "p.crpix2", false},
    {"position_axis_function_refCoord_coord2_val", D, "deg", "pos.wcs.crval",
     "caom2:Chunk.position.axis.function.refCoord.coord2.val", "CRVAL2", "p.crval2", false},
    {"position_axis_function_cd11", D, "deg", "pos.wcs.cdmatrix", "caom2:Chunk.position.axis.function.cd11",
     "CD1_1 (deg/pixel; PC1_1 x CDELT1 for a header without CD)", "p.cd11", false},
    {"position_axis_function_cd12", D, "deg", "pos.wcs.cdmatrix", "caom2:Chunk.position.axis.function.cd12",
     "CD1_2", "p.cd12", false},
    {"position_axis_function_cd21", D, "deg", "pos.wcs.cdmatrix", "caom2:Chunk.position.axis.function.cd21",
     "CD2_1", "p.cd21", false},
    {"position_axis_function_cd22", D, "deg", "pos.wcs.cdmatrix", "caom2:Chunk.position.axis.function.cd22",
     "CD2_2", "p.cd22", false},
    {"hdu", I, "", "meta.number", "", "The HDU's number in the file (0: the primary HDU); not part of CAOM", "p.hdu",
     false},
    {"name", V, "", "meta.id", "", "The HDU's name (its part's name); not part of CAOM", "p.name", false},
}};

constexpr std::string_view kChunkFrom =
    "FROM {main}dataset_part AS p JOIN {main}dataset AS d ON d.dataset_key = p.dataset_key WHERE p.naxis > 0 AND "
    "{visible_d}";

const std::array<Table, 5> kTables{{
    {"Observation",
     "CAOM2 observations: one per exposure of one detector (its raw, calexp and diffim planes), one per "
     "calibration, coadd patch or user image. Visible when at least one of its planes is.",
     kObservationColumns, kObservationFrom},
    {"Plane",
     "CAOM2 planes: one per dataset, with its footprint, wavelength and time bounds (those of ivoa.obscore), "
     "provenance and releases; join ivoa.obscore on publisherID = obs_publisher_did.",
     kPlaneColumns, kPlaneFrom},
    {"Artifact",
     "CAOM2 artifacts: the file of each plane with its MIME type, size and SHA-256 checksum (none for files made on "
     "request).",
     kArtifactColumns, kArtifactFrom},
    {"Part", "CAOM2 parts: one per HDU of each stored file, named by EXTNAME (else the HDU's number).", kPartColumns,
     kPartFrom},
    {"Chunk",
     "CAOM2 chunks: the image array of each part that has one, with its size and its header's linear celestial WCS "
     "(CTYPE, CUNIT, CRPIX, CRVAL, CD).",
     kChunkColumns, kChunkFrom},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The quoted names of the dataset types `pick` selects, as an SQL list.
template <typename Pick>
std::string types_where(Pick pick) {
  std::string out;
  for (const auto t : repo::dataset_types()) {
    if (pick(t)) out += fmt::format("{}'{}'", out.empty() ? "" : ", ", repo::to_string(t));
  }
  return out;
}

// The observationID of the dataset aliased `a`.
std::string observation_key(std::string_view a, const std::string& visit_types) {
  return fmt::format("(CASE WHEN {0}.dataset_type IN ({1}) AND {0}.visit IS NOT NULL AND {0}.detector IS NOT NULL "
                     "THEN COALESCE({0}.instrument, 'instrument') || '.v' || CAST({0}.visit AS TEXT) || '.d' || "
                     "CAST({0}.detector AS TEXT) ELSE {0}.dataset_id END)",
                     a, visit_types);
}

}  // namespace

std::string Table::view_name() const { return "tap_caom2_" + lower(name); }

std::span<const Table> tables() { return kTables; }

std::string sql_name(std::string_view column) { return lower(column); }

std::string view_select(const Table& table, db::Dialect dialect, const std::string& visible_d,
                        const std::string& visible_i) {
  const std::string main = std::string(db::main_schema(dialect)) + ".";
  const std::string visit_types = types_where(repo::is_visit_based);
  const auto meta = [&](std::string_view key) {
    return fmt::format("(SELECT value FROM {}registry_meta WHERE key = '{}')", main, key);
  };
  const auto format = [&](std::string_view text) {
    return fmt::format(
        fmt::runtime(text), fmt::arg("main", main), fmt::arg("visible_d", visible_d),
        fmt::arg("visible_i", visible_i), fmt::arg("agg", db::string_agg_function(dialect)),
        // SQLite has them as the ADQL functions the TAP engine registers.
        fmt::arg("degrees", dialect == db::Dialect::sqlite ? "adql_degrees" : "degrees"),
        fmt::arg("asin", dialect == db::Dialect::sqlite ? "adql_asin" : "asin"),
        fmt::arg("obs_key_d", observation_key("d", visit_types)), fmt::arg("obs_key_i", observation_key("i", visit_types)),
        fmt::arg("did_prefix", fmt::format("'ivo://' || {} || '/' || {} || '?'", meta("authority"), meta("name"))),
        fmt::arg("visit_types", visit_types), fmt::arg("coadd_types", types_where(repo::is_coadd)),
        fmt::arg("calibration_types", types_where(repo::is_calibration)),
        fmt::arg("ts_release_d", repo::mjd_timestamp_sql(dialect, "d.release_mjd")),
        fmt::arg("ts_modified_d", repo::mjd_timestamp_sql(dialect, "d.ingest_mjd")),
        fmt::arg("ts_obs_release", repo::mjd_timestamp_sql(dialect, "g.release_mjd")),
        fmt::arg("ts_obs_modified", repo::mjd_timestamp_sql(dialect, "g.ingest_mjd")));
  };
  std::string select = "SELECT ";
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    select += fmt::format("{}{} AS {}", c ? ", " : "", format(table.columns[c].sql), sql_name(table.columns[c].name));
  }
  return select + " " + format(table.from);
}

}  // namespace pixserve::tap::caom2
