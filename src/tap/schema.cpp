#include "tap/schema.hpp"

#include <sstream>
#include <stdexcept>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <pugixml.hpp>

#include "adql/sql_text.hpp"
#include "auth/policy.hpp"
#include "dali/vosi.hpp"
#include "repo/efd.hpp"
#include "tap/caom2.hpp"
#include "repo/obscore_schema.hpp"

namespace pixserve::tap {

using dali::text_element;
using dali::to_xml;
namespace {

using adql::AdqlType;

struct ColumnSpec {
  std::string_view name;
  AdqlType type = AdqlType::varchar;
  std::string_view unit{};
  std::string_view ucd{};
  std::string_view description{};
  bool principal = false;
  bool indexed = false;
  bool std = false;
};

TapColumn make_column(const ColumnSpec& s) {
  TapColumn c;
  c.def.name = std::string(s.name);
  c.def.type = s.type;
  c.def.unit = std::string(s.unit);
  c.def.ucd = std::string(s.ucd);
  c.def.description = std::string(s.description);
  c.def.principal = s.principal;
  c.def.indexed = s.indexed;
  c.def.std = s.std;
  return c;
}

TapTable make_table(std::string schema, std::string name, std::string sql_name, std::string type,
                    std::string description, std::vector<TapColumn> columns) {
  TapTable t;
  t.def.schema = std::move(schema);
  t.def.name = std::move(name);
  t.def.sql_name = std::move(sql_name);
  t.def.description = std::move(description);
  t.type = std::move(type);
  t.columns = std::move(columns);
  for (const auto& c : t.columns) t.def.columns.push_back(c.def);
  return t;
}

AdqlType obscore_type(const repo::ColumnDescription& c) {
  // ObsCore 1.1: s_region is an STC-S region (adql:REGION); every
  // footprint is a polygon, and ADQL sees it as a REGION column.
  if (c.name == "s_region") return AdqlType::region;
  if (c.xtype == "timestamp") return AdqlType::timestamp;
  if (c.datatype == "int") return AdqlType::integer;
  if (c.datatype == "long") return AdqlType::bigint;
  if (c.datatype == "double") return AdqlType::double_precision;
  return AdqlType::varchar;
}

TapTable obscore_table() {
  std::vector<TapColumn> columns;
  for (const auto& d : repo::obscore_columns()) {
    TapColumn c;
    c.def.name = std::string(d.name);
    c.def.type = obscore_type(d);
    c.def.unit = std::string(d.unit);
    c.def.ucd = std::string(d.ucd);
    c.def.utype = std::string(d.utype);
    c.def.description = std::string(d.description);
    if (d.name == "s_region") {
      // STC-S text carries its own units; ObsCore gives s_region none.
      c.def.unit.clear();
      c.def.description = "Footprint of the image on the sky from its WCS, as an STC-S polygon (ICRS, degrees)";
    }
    c.def.principal = d.principal;
    c.def.indexed = d.indexed;
    c.def.std = d.standard;
    columns.push_back(std::move(c));
  }
  TapTable t = make_table("ivoa", "obscore", "tap_ivoa_obscore", "view",
                          "ObsCore 1.1 description of every image of the survey (raw, calibrations, processed visit "
                          "images, difference images, coadds) with the survey's own columns: visit, detector, "
                          "raft, band, tract, patch and observing conditions.",
                          std::move(columns));
  t.utype = "ivo://ivoa.net/std/obscore#table-1.1";
  return t;
}

TapTable datasets_table() {
  return make_table(
      "survey", "datasets", "tap_survey_datasets", "view",
      "Every registered dataset of the repository with its data ID, file and processing facts (one row per "
      "dataset; obs_id in ivoa.obscore).",
      {
          make_column({"dataset_id", AdqlType::varchar, "", "meta.id;meta.main", "Dataset identifier (obs_id of ivoa.obscore)", true, true}),
          make_column({"dataset_type", AdqlType::varchar, "", "meta.code.class", "Dataset type: raw, bias, flat, calexp, calexp_comp, diffim, deepCoadd, goodSeeingCoadd, user", true, true}),
          make_column({"collection", AdqlType::varchar, "", "meta.id", "Collection: data release (DR1, ...) or prompt", true, true}),
          make_column({"instrument", AdqlType::varchar, "", "meta.id;instr", "Instrument of the data ID", false}),
          make_column({"visit", AdqlType::bigint, "", "meta.id;obs", "Visit number", true, true}),
          make_column({"exposure", AdqlType::bigint, "", "meta.id;obs", "Exposure number", false}),
          make_column({"detector", AdqlType::integer, "", "meta.id;instr.det", "Detector number", true, true}),
          make_column({"detector_name", AdqlType::varchar, "", "meta.id;instr.det", "Detector name within its raft", false}),
          make_column({"raft", AdqlType::varchar, "", "meta.id;instr.det", "Raft name", false}),
          make_column({"band", AdqlType::varchar, "", "instr.bandpass", "Band: u, g, r, i, z or y", true}),
          make_column({"physical_filter", AdqlType::varchar, "", "meta.id;instr.filter", "Physical filter", false}),
          make_column({"skymap", AdqlType::varchar, "", "meta.id", "Sky map of coadds", false}),
          make_column({"tract", AdqlType::integer, "", "meta.id", "Sky map tract of coadds", true, true}),
          make_column({"patch", AdqlType::varchar, "", "meta.id", "Patch within the tract, as x,y", true, true}),
          make_column({"calib_level", AdqlType::integer, "", "meta.code;obs.calib", "ObsCore calibration level", false}),
          make_column({"content_type", AdqlType::varchar, "", "meta.code.mime", "MIME type of the file", false}),
          make_column({"file_size", AdqlType::bigint, "byte", "phys.size;meta.file", "Size of the file", false}),
          make_column({"storage", AdqlType::varchar, "", "meta.code", "file: a stored file; virtual: re-created on request from its recipe (raw, calibrations, templates), the same file each time", true}),
          make_column({"checksum", AdqlType::varchar, "", "meta.code", "Checksum of the file (SHA-256, hex); of a virtual dataset, of its recipe", false}),
          make_column({"software_version", AdqlType::varchar, "", "meta.version;meta.software", "Software that made the dataset", false}),
          make_column({"release_mjd", AdqlType::double_precision, "d", "time.release", "End of the embargo (MJD UTC); null: never embargoed", false}),
          make_column({"ingest_mjd", AdqlType::double_precision, "d", "time.processing", "Time of ingestion into the repository (MJD UTC)", false}),
      });
}

TapTable visits_table() {
  return make_table(
      "survey", "visits", "tap_survey_visits", "view",
      "One row per visit: pointing, band, times and observing conditions, from the visit's visible "
      "exposure-level datasets (raw, calexp, ...).",
      {
          make_column({"visit", AdqlType::bigint, "", "meta.id;obs;meta.main", "Visit number", true, true}),
          make_column({"exposure", AdqlType::bigint, "", "meta.id;obs", "Exposure number of the visit", false}),
          make_column({"instrument", AdqlType::varchar, "", "meta.id;instr", "Instrument", false}),
          make_column({"band", AdqlType::varchar, "", "instr.bandpass", "Band: u, g, r, i, z or y", true}),
          make_column({"physical_filter", AdqlType::varchar, "", "meta.id;instr.filter", "Physical filter", false}),
          make_column({"target_name", AdqlType::varchar, "", "meta.id;src", "Survey field observed", false}),
          make_column({"t_min", AdqlType::double_precision, "d", "time.start;obs.exposure", "Start of the exposure, MJD (TAI)", true}),
          make_column({"t_max", AdqlType::double_precision, "d", "time.end;obs.exposure", "End of the exposure, MJD (TAI)", false}),
          make_column({"exptime", AdqlType::double_precision, "s", "time.duration;obs.exposure", "Exposure time", true}),
          make_column({"telescope_ra", AdqlType::double_precision, "deg", "pos.eq.ra;instr.tel", "Telescope pointing, ICRS right ascension", true}),
          make_column({"telescope_dec", AdqlType::double_precision, "deg", "pos.eq.dec;instr.tel", "Telescope pointing, ICRS declination", true}),
          make_column({"seeing", AdqlType::double_precision, "arcsec", "instr.obsty.seeing", "Site seeing FWHM", true}),
          make_column({"airmass", AdqlType::double_precision, "", "obs.airMass", "Airmass at the start of the exposure", true}),
          make_column({"sky_background", AdqlType::double_precision, "ct", "instr.skyLevel", "Mean sky background level over the detectors", false}),
          make_column({"zero_point", AdqlType::double_precision, "mag", "phot.mag;arith.zp", "Mean photometric zero point over the detectors", false}),
          make_column({"n_detectors", AdqlType::integer, "", "meta.number;instr.det", "Number of detectors with data", false}),
      });
}

TapTable provenance_table() {
  return make_table(
      "survey", "provenance", "tap_survey_provenance", "view",
      "Provenance: the inputs each dataset was made from (coadd -> calexps, calexp -> raw and calibrations).",
      {
          make_column({"dataset_id", AdqlType::varchar, "", "meta.id", "The dataset made (obs_id in ivoa.obscore)", true, true}),
          make_column({"input_id", AdqlType::varchar, "", "meta.id", "One of its inputs (obs_id in ivoa.obscore when registered)", true, true}),
          make_column({"role", AdqlType::varchar, "", "meta.code", "What the input is for: raw, bias, flat, calexp, ...", true}),
      });
}

// The coadd patches with their provenance, for searches by the number,
// time span and reach of their inputs and by depth (DMS-PRTL-REQ-0039);
// position, band and the rest are ivoa.obscore's (join on obs_id).
TapTable coadds_table() {
  return make_table(
      "survey", "coadds", "tap_survey_coadds", "view",
      "One row per coadd patch (deepCoadd, goodSeeingCoadd, ...) with its provenance: the number of input images, "
      "their time span, the fraction of the patch they cover and the 5-sigma depth reached. Join ivoa.obscore on "
      "dataset_id = obs_id for position and footprint, survey.provenance for the inputs themselves.",
      {
          make_column({"dataset_id", AdqlType::varchar, "", "meta.id;meta.main", "Coadd dataset identifier (obs_id in ivoa.obscore)", true, true}),
          make_column({"dataset_type", AdqlType::varchar, "", "meta.code.class", "Coadd kind: deepCoadd, goodSeeingCoadd, ...", true, true}),
          make_column({"band", AdqlType::varchar, "", "instr.bandpass", "Band: u, g, r, i, z or y", true}),
          make_column({"skymap", AdqlType::varchar, "", "meta.id", "Sky map name", false}),
          make_column({"tract", AdqlType::integer, "", "meta.id", "Sky map tract", true, true}),
          make_column({"patch", AdqlType::varchar, "", "meta.id", "Patch within the tract, as x,y", true, true}),
          make_column({"n_inputs", AdqlType::bigint, "", "meta.number", "Number of input images (calexps) combined", true}),
          make_column({"t_min", AdqlType::double_precision, "d", "time.start", "Start of the first input exposure, MJD (TAI)", true}),
          make_column({"t_max", AdqlType::double_precision, "d", "time.end", "End of the last input exposure, MJD (TAI)", true}),
          make_column({"coverage_fraction", AdqlType::double_precision, "", "obs.field;arith.ratio", "Fraction of the patch's pixels that some input reached (0 to 1)", true}),
          make_column({"depth_5sigma", AdqlType::double_precision, "mag", "phot.mag;stat.snr", "5-sigma point-source depth, AB magnitude", true}),
      });
}

// The sky map as the registry knows it: one row per patch that holds a
// coadd the viewer may see, its geometry from those coadds' rows (every
// band of a patch shares the patch's pixel grid). A tract is the union of
// its patches: aggregate on tract.
TapTable patches_table() {
  return make_table(
      "survey", "patches", "tap_survey_patches", "view",
      "The sky map: one row per tract and patch with coadds, with the patch's footprint, centre, size and "
      "pixel scale (the same in every band) and the bands and coadd kinds it holds. A tract is the union of "
      "its patches; each tract is one TAN projection, so a mosaic across tracts is resampled.",
      {
          make_column({"skymap", AdqlType::varchar, "", "meta.id", "Sky map name", true, true}),
          make_column({"tract", AdqlType::integer, "", "meta.id", "Tract: one TAN projection about its own centre", true, true}),
          make_column({"patch", AdqlType::varchar, "", "meta.id", "Patch within the tract, as x,y", true, true}),
          make_column({"s_ra", AdqlType::double_precision, "deg", "pos.eq.ra", "Centre of the patch, ICRS right ascension", true}),
          make_column({"s_dec", AdqlType::double_precision, "deg", "pos.eq.dec", "Centre of the patch, ICRS declination", true}),
          make_column({"s_region", AdqlType::region, "deg", "pos.outline;obs.field", "Footprint of the patch (with its overlap with neighbours), STC-S polygon", true}),
          make_column({"s_xel1", AdqlType::bigint, "", "meta.number", "Patch width in pixels", false}),
          make_column({"s_xel2", AdqlType::bigint, "", "meta.number", "Patch height in pixels", false}),
          make_column({"pixel_scale", AdqlType::double_precision, "arcsec", "phys.angSize;instr.pixel", "Pixel scale of the tract's grid", true}),
          make_column({"bands", AdqlType::varchar, "", "instr.bandpass", "Bands with a coadd of the patch, comma-separated, in alphabetical order", true}),
          make_column({"coadd_types", AdqlType::varchar, "", "meta.code.class", "Coadd kinds of the patch (deepCoadd, goodSeeingCoadd, ...), comma-separated", false}),
          make_column({"n_datasets", AdqlType::integer, "", "meta.number", "Number of coadd datasets of the patch", false}),
      });
}

// The R-EFD tables, from their one description (repo/efd.hpp).
TapTable efd_table(const repo::efd::Table& table) {
  std::vector<TapColumn> columns;
  for (const auto& c : table.columns) {
    columns.push_back(make_column({c.name, c.type == repo::efd::ColumnType::bigint ? AdqlType::bigint
                                                                                    : AdqlType::double_precision,
                                   c.unit, c.ucd, c.description, c.principal, c.indexed}));
  }
  return make_table(std::string(repo::efd::kTapSchema), std::string(table.name), table.view_name(), "table",
                    std::string(table.description), std::move(columns));
}

// The CAOM2 tables, from their one description (tap/caom2.hpp).
TapTable caom2_table(const caom2::Table& table) {
  std::vector<TapColumn> columns;
  for (const auto& c : table.columns) {
    TapColumn column = make_column({c.name, c.type, c.unit, c.ucd, c.description, c.principal, c.indexed});
    column.def.utype = std::string(c.utype);
    column.def.sql_name = caom2::sql_name(c.name);
    columns.push_back(std::move(column));
  }
  return make_table(std::string(caom2::kTapSchema), std::string(table.name), table.view_name(), "view",
                    std::string(table.description), std::move(columns));
}

// TAP 1.1 section 4.
std::vector<TapTable> tap_schema_tables() {
  const auto v = AdqlType::varchar;
  const auto i = AdqlType::integer;
  std::vector<TapTable> out;
  out.push_back(make_table("TAP_SCHEMA", "schemas", "tap_schema_schemas", "table", "Schemas of this service",
                           {make_column({"schema_name", v, "", "", "Schema name", true, false, true}),
                            make_column({"utype", v, "", "", "Utype of the schema", true, false, true}),
                            make_column({"description", v, "", "", "Description of the schema", true, false, true}),
                            make_column({"schema_index", i, "", "", "Recommended sort order", false, false, true})}));
  out.push_back(make_table("TAP_SCHEMA", "tables", "tap_schema_tables", "table", "Tables of this service",
                           {make_column({"schema_name", v, "", "", "Schema of the table", true, false, true}),
                            make_column({"table_name", v, "", "", "Qualified table name", true, false, true}),
                            make_column({"table_type", v, "", "", "table or view", true, false, true}),
                            make_column({"utype", v, "", "", "Utype of the table", true, false, true}),
                            make_column({"description", v, "", "", "Description of the table", true, false, true}),
                            make_column({"table_index", i, "", "", "Recommended sort order", false, false, true})}));
  TapTable columns = make_table(
      "TAP_SCHEMA", "columns", "tap_schema_columns", "table", "Columns of the tables of this service",
      {make_column({"table_name", v, "", "", "Qualified table name", true, false, true}),
       make_column({"column_name", v, "", "", "Column name", true, false, true}),
       make_column({"utype", v, "", "", "Utype of the column", true, false, true}),
       make_column({"ucd", v, "", "", "UCD of the column", true, false, true}),
       make_column({"unit", v, "", "", "Unit (VOUnit)", true, false, true}),
       make_column({"description", v, "", "", "Description of the column", true, false, true}),
       make_column({"datatype", v, "", "", "VOTable datatype", true, false, true}),
       make_column({"arraysize", v, "", "", "VOTable arraysize", true, false, true}),
       make_column({"xtype", v, "", "", "VOTable/DALI xtype", true, false, true}),
       make_column({"size", i, "", "", "Deprecated array size (TAP 1.0)", false, false, true}),
       make_column({"principal", i, "", "", "1: a principal column", true, false, true}),
       make_column({"indexed", i, "", "", "1: indexed", true, false, true}),
       make_column({"std", i, "", "", "1: defined by a standard", true, false, true}),
       make_column({"column_index", i, "", "", "Recommended sort order", false, false, true})});
  columns.columns[9].tap_name = "\"size\"";
  out.push_back(std::move(columns));
  out.push_back(make_table("TAP_SCHEMA", "keys", "tap_schema_keys", "table", "Foreign keys between tables",
                           {make_column({"key_id", v, "", "", "Key identifier", true, false, true}),
                            make_column({"from_table", v, "", "", "Table with the foreign key", true, false, true}),
                            make_column({"target_table", v, "", "", "Table the key refers to", true, false, true}),
                            make_column({"utype", v, "", "", "Utype of the key", true, false, true}),
                            make_column({"description", v, "", "", "Description of the key", true, false, true})}));
  out.push_back(make_table("TAP_SCHEMA", "key_columns", "tap_schema_key_columns", "table", "Columns of the foreign keys",
                           {make_column({"key_id", v, "", "", "Key identifier", true, false, true}),
                            make_column({"from_column", v, "", "", "Column in from_table", true, false, true}),
                            make_column({"target_column", v, "", "", "Column in target_table", true, false, true})}));
  return out;
}

}  // namespace

VotableType votable_type(adql::AdqlType type) {
  using votable::Datatype;
  switch (type) {
    case AdqlType::smallint: return {Datatype::short_, "", ""};
    case AdqlType::integer: return {Datatype::int_, "", ""};
    case AdqlType::bigint: return {Datatype::long_, "", ""};
    case AdqlType::real: return {Datatype::float_, "", ""};
    case AdqlType::double_precision: return {Datatype::double_, "", ""};
    case AdqlType::boolean: return {Datatype::boolean, "", ""};
    case AdqlType::binary: return {Datatype::unsignedByte, "*", ""};
    case AdqlType::timestamp: return {Datatype::char_, "*", "timestamp"};
    case AdqlType::point: return {Datatype::double_, "2", "point"};
    case AdqlType::circle: return {Datatype::double_, "3", "circle"};
    case AdqlType::polygon: return {Datatype::double_, "*", "polygon"};
    case AdqlType::region: return {Datatype::char_, "*", "adql:REGION"};
    case AdqlType::clob: return {Datatype::char_, "*", "adql:CLOB"};
    case AdqlType::unknown:
    case AdqlType::char_:
    case AdqlType::varchar: return {Datatype::char_, "*", ""};
  }
  return {Datatype::char_, "*", ""};
}

votable::Field result_field(const std::string& name, adql::AdqlType type, const adql::ColumnDef* source) {
  const VotableType vt = votable_type(type);
  votable::Field f;
  f.name = name;
  f.datatype = vt.datatype;
  f.arraysize = vt.arraysize;
  f.xtype = vt.xtype;
  if (source) {
    f.unit = source->unit;
    f.ucd = source->ucd;
    f.utype = source->utype;
    f.description = source->description;
  }
  return f;
}

TapMetadata::TapMetadata() {
  schemas_ = {
      {"ivoa", "IVOA data models: the ObsCore 1.1 table of the survey's images"},
      {"survey", "Survey tables to join with ivoa.obscore: datasets, visits with observing conditions, provenance, the sky map's "
       "patches, the coadds' provenance"},
      {std::string(repo::efd::kTapSchema), std::string(repo::efd::kTapSchemaDescription)},
      {std::string(caom2::kTapSchema), std::string(caom2::kTapSchemaDescription)},
      {"TAP_SCHEMA", "Metadata of the tables of this service (TAP 1.1)"},
  };
  tables_.push_back(obscore_table());
  tables_.push_back(datasets_table());
  tables_.push_back(visits_table());
  tables_.push_back(provenance_table());
  tables_.push_back(patches_table());
  tables_.push_back(coadds_table());
  for (const auto& t : repo::efd::tables()) tables_.push_back(efd_table(t));
  for (const auto& t : caom2::tables()) tables_.push_back(caom2_table(t));
  for (auto& t : tap_schema_tables()) tables_.push_back(std::move(t));
  keys_ = {
      {"provenance_dataset", "survey.provenance", "ivoa.obscore", "The dataset made from the inputs",
       {{"dataset_id", "obs_id"}}},
      {"datasets_obscore", "survey.datasets", "ivoa.obscore", "The ObsCore row of the dataset", {{"dataset_id", "obs_id"}}},
      {"obscore_visit", "ivoa.obscore", "survey.visits", "The visit of an exposure-level image", {{"visit", "visit"}}},
      {"coadds_obscore", "survey.coadds", "ivoa.obscore", "The ObsCore row of the coadd", {{"dataset_id", "obs_id"}}},
      {"datasets_patch", "survey.datasets", "survey.patches", "The sky map patch of a coadd",
       {{"skymap", "skymap"}, {"tract", "tract"}, {"patch", "patch"}}},
      {"efd_visit_summary_visit", "efd.visit_summary", "survey.visits", "The visit whose exposure is summarised",
       {{"visit", "visit"}}},
      {"caom2_plane_observation", "caom2.Plane", "caom2.Observation", "The observation of the plane",
       {{"obsID", "obsID"}}},
      {"caom2_artifact_plane", "caom2.Artifact", "caom2.Plane", "The plane of the artifact", {{"planeID", "planeID"}}},
      {"caom2_part_artifact", "caom2.Part", "caom2.Artifact", "The artifact (file) of the part",
       {{"artifactID", "artifactID"}}},
      {"caom2_chunk_part", "caom2.Chunk", "caom2.Part", "The part (HDU) of the chunk", {{"partID", "partID"}}},
      {"caom2_plane_obscore", "caom2.Plane", "ivoa.obscore", "The ObsCore row of the plane's dataset",
       {{"publisherID", "obs_publisher_did"}}},
      {"tables_schema", "TAP_SCHEMA.tables", "TAP_SCHEMA.schemas", "The schema of the table",
       {{"schema_name", "schema_name"}}},
      {"columns_table", "TAP_SCHEMA.columns", "TAP_SCHEMA.tables", "The table of the column",
       {{"table_name", "table_name"}}},
      {"keys_from", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", "The table with the key", {{"from_table", "table_name"}}},
      {"keys_target", "TAP_SCHEMA.keys", "TAP_SCHEMA.tables", "The table the key refers to",
       {{"target_table", "table_name"}}},
      {"key_columns_key", "TAP_SCHEMA.key_columns", "TAP_SCHEMA.keys", "The key of the columns", {{"key_id", "key_id"}}},
  };
  for (const auto& t : tables_) catalog_.add(t.def);
  // The description must hold together: every key names known tables and columns.
  for (const auto& k : keys_) {
    for (const auto& [from, target] : k.columns) {
      bool ok_from = false, ok_target = false;
      for (const auto& t : tables_) {
        for (const auto& c : t.def.columns) {
          if (t.def.qualified_name() == k.from_table && c.name == from) ok_from = true;
          if (t.def.qualified_name() == k.target_table && c.name == target) ok_target = true;
        }
      }
      if (!ok_from || !ok_target) throw std::logic_error("TAP_SCHEMA key " + k.id + " names an unknown column");
    }
  }
}

std::string TapMetadata::vosi_tables_xml(bool detail_min) const {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto root = doc.append_child("vosi:tableset");
  root.append_attribute("xmlns:vosi") = "http://www.ivoa.net/xml/VOSITables/v1.0";
  root.append_attribute("xmlns:vs") = std::string(dali::vodataservice_ns).c_str();
  root.append_attribute("xmlns:xsi") = std::string(dali::xsi_ns).c_str();
  for (const auto& s : schemas_) {
    auto schema = root.append_child("schema");
    text_element(schema, "name", s.name);
    text_element(schema, "description", s.description);
    for (const auto& t : tables_) {
      if (t.def.schema != s.name) continue;
      auto table = schema.append_child("table");
      table.append_attribute("type") = t.type.c_str();
      text_element(table, "name", t.def.qualified_name());
      text_element(table, "description", t.def.description);
      if (!t.utype.empty()) text_element(table, "utype", t.utype);
      if (detail_min) continue;
      for (const auto& c : t.columns) {
        auto col = table.append_child("column");
        if (c.def.std) col.append_attribute("std") = "true";
        text_element(col, "name", c.tap_name.empty() ? c.def.name : c.tap_name);
        if (!c.def.description.empty()) text_element(col, "description", c.def.description);
        if (!c.def.unit.empty()) text_element(col, "unit", c.def.unit);
        if (!c.def.ucd.empty()) text_element(col, "ucd", c.def.ucd);
        if (!c.def.utype.empty()) text_element(col, "utype", c.def.utype);
        const VotableType vt = votable_type(c.def.type);
        auto dt = col.append_child("dataType");
        dt.append_attribute("xsi:type") = "vs:VOTableType";
        if (!vt.arraysize.empty()) dt.append_attribute("arraysize") = vt.arraysize.c_str();
        if (!vt.xtype.empty()) dt.append_attribute("extendedType") = vt.xtype.c_str();
        dt.text().set(std::string(votable::datatype_name(vt.datatype)).c_str());
        if (c.def.indexed) text_element(col, "flag", "indexed");
        if (c.def.principal) text_element(col, "flag", "principal");
      }
      for (const auto& k : keys_) {
        if (k.from_table != t.def.qualified_name()) continue;
        auto fk = table.append_child("foreignKey");
        text_element(fk, "targetTable", k.target_table);
        for (const auto& [from, target] : k.columns) {
          auto fc = fk.append_child("fkColumn");
          text_element(fc, "fromColumn", from);
          text_element(fc, "targetColumn", target);
        }
        text_element(fk, "description", k.description);
      }
    }
  }
  return to_xml(doc);
}

std::string viewer_key(const Viewer& viewer) {
  std::string k = "user=" + viewer.user + ";rights=" + (viewer.data_rights ? "1" : "0") +
                  ";staff=" + (viewer.staff ? "1" : "0") + ";groups=";
  for (const auto& g : viewer.groups) k += g + ",";
  return k;
}

std::string visibility_predicate(const Viewer& viewer, std::string_view alias, db::Dialect dialect) {
  // Any time serves to build the rule: its only time-dependent term
  // (release_mjd <= now) gets the database's clock below.
  const auto filter = auth::visibility_sql(viewer, 0.0, dialect, std::string(alias) + ".");
  std::string sql;
  std::size_t next = 0;
  for (const char c : filter.sql) {
    if (c != '?') {
      sql += c;
      continue;
    }
    if (next >= filter.params.size()) throw std::logic_error("tap: visibility filter has more '?' than values");
    const auto& value = filter.params[next++];
    if (const auto* text = std::get_if<std::string>(&value)) {
      sql += adql::quote_string(*text);
    } else if (std::holds_alternative<double>(value)) {
      sql += db::mjd_now_sql(dialect);
    } else {
      throw std::logic_error("tap: unexpected value type in the visibility filter");
    }
  }
  if (next != filter.params.size()) throw std::logic_error("tap: visibility filter has fewer '?' than values");
  return "(" + sql + ")";
}

std::vector<ViewDefinition> view_definitions(const Viewer& viewer, std::string_view datalink_links, db::Dialect dialect,
                                             const std::function<bool(std::string_view)>& wanted) {
  const auto skip = [&wanted](const std::string& name) { return wanted && !wanted(name); };
  const std::string d = visibility_predicate(viewer, "d", dialect);
  const std::string i = visibility_predicate(viewer, "i", dialect);
  const std::string e = visibility_predicate(viewer, "e", dialect);
  // The registry's view holds the DataLink ID in access_url; the link is the
  // catalogue's endpoint with it.
  const std::string prefix = adql::quote_string(std::string(datalink_links) + "?ID=");
  std::string columns;
  for (const auto& c : repo::obscore_columns()) {
    if (!columns.empty()) columns += ", ";
    columns += c.name == "access_url" ? fmt::format("{} || o.access_url AS access_url", prefix)
                                      : fmt::format("o.{}", c.name);
  }
  const std::string main = std::string(db::main_schema(dialect)) + ".";
  const std::string agg(db::string_agg_function(dialect));
  const std::string same(db::null_safe_equal(dialect));
  std::vector<ViewDefinition> views{
      {"tap_ivoa_obscore", "SELECT " + columns + ", d.dataset_key AS dataset_key FROM " + main +
          "dataset AS d JOIN " + main + "ivoa_obscore AS o ON o.obs_id = d.dataset_id WHERE " + d},
      {"tap_survey_datasets", "SELECT d.dataset_key AS dataset_key, d.dataset_id AS dataset_id, "
      "d.dataset_type AS dataset_type, d.collection AS collection, d.instrument AS instrument, d.visit AS visit, "
      "d.exposure AS exposure, d.detector AS detector, d.detector_name AS detector_name, d.raft AS raft, "
      "d.band AS band, d.physical_filter AS physical_filter, d.skymap AS skymap, d.tract AS tract, d.patch AS patch, "
      "d.calib_level AS calib_level, d.content_type AS content_type, d.file_size AS file_size, d.storage AS storage, "
      "d.checksum AS checksum, d.software_version AS software_version, d.release_mjd AS release_mjd, "
      "d.ingest_mjd AS ingest_mjd FROM " + main + "dataset AS d WHERE " + d},
      {"tap_survey_visits", "SELECT d.visit AS visit, MIN(d.exposure) AS exposure, "
      "MIN(d.instrument) AS instrument, MIN(d.band) AS band, MIN(d.physical_filter) AS physical_filter, "
      "MIN(d.target_name) AS target_name, MIN(d.t_min) AS t_min, MAX(d.t_max) AS t_max, MAX(d.t_exptime) AS exptime, "
      "MIN(d.telescope_ra) AS telescope_ra, MIN(d.telescope_dec) AS telescope_dec, MIN(d.seeing) AS seeing, "
      "MIN(d.airmass) AS airmass, AVG(d.sky_background) AS sky_background, AVG(d.zero_point) AS zero_point, "
      "COUNT(DISTINCT d.detector) AS n_detectors FROM " + main + "dataset AS d WHERE d.visit IS NOT NULL AND " + d +
          " GROUP BY d.visit"},
      {"tap_survey_provenance", "SELECT p.dataset_id AS dataset_id, p.input_id AS input_id, "
      "p.role AS role FROM " + main + "provenance AS p JOIN " + main + "dataset AS d ON d.dataset_id = p.dataset_id "
      "WHERE " + d + " AND NOT EXISTS (SELECT 1 FROM " + main + "dataset AS i WHERE i.dataset_id = p.input_id AND NOT " +
          i + ")"},
      {"tap_survey_coadds", "SELECT d.dataset_id AS dataset_id, d.dataset_type AS dataset_type, d.band AS band, "
      "d.skymap AS skymap, d.tract AS tract, d.patch AS patch, d.n_inputs AS n_inputs, d.t_min AS t_min, "
      "d.t_max AS t_max, d.coverage_fraction AS coverage_fraction, d.depth_5sigma AS depth_5sigma FROM " + main +
          "dataset AS d WHERE d.tract IS NOT NULL AND d.patch IS NOT NULL AND " + d},
      // The lists are built from ordered DISTINCT subqueries over the same
      // visible rows, so they read the same whatever order the rows have.
      {"tap_survey_patches", "SELECT d.skymap AS skymap, d.tract AS tract, d.patch AS patch, "
      "MIN(d.s_ra) AS s_ra, MIN(d.s_dec) AS s_dec, MIN(d.s_region) AS s_region, MIN(d.s_xel1) AS s_xel1, "
      "MIN(d.s_xel2) AS s_xel2, MIN(d.pixel_scale) AS pixel_scale, "
      "(SELECT " + agg + "(b, ',') FROM (SELECT DISTINCT e.band AS b FROM " + main + "dataset AS e WHERE "
      "e.tract = d.tract AND e.patch = d.patch AND e.skymap " + same + " d.skymap AND e.band IS NOT NULL AND " + e +
          " ORDER BY b) AS bands_of_patch) AS bands, "
      "(SELECT " + agg + "(k, ',') FROM (SELECT DISTINCT e.dataset_type AS k FROM " + main + "dataset AS e WHERE "
      "e.tract = d.tract AND e.patch = d.patch AND e.skymap " + same + " d.skymap AND " + e +
          " ORDER BY k) AS kinds_of_patch) AS coadd_types, "
      "COUNT(*) AS n_datasets FROM " + main + "dataset AS d WHERE d.tract IS NOT NULL AND d.patch IS NOT NULL AND " + d +
          " GROUP BY d.skymap, d.tract, d.patch"},
  };
  std::erase_if(views, [&skip](const ViewDefinition& v) { return skip(v.name); });
  // The R-EFD tables. Weather is site telemetry, public like the sky; a
  // visit's summary tells when and how a visit was observed, so it is seen
  // by whoever may see a dataset of that visit (an embargoed visit's
  // summary stays hidden with its images).
  for (const auto& t : repo::efd::tables()) {
    if (skip(t.view_name())) continue;
    std::string columns;
    for (const auto& c : t.columns) columns += fmt::format("{}e.{} AS {}", columns.empty() ? "" : ", ", c.name, c.name);
    std::string select = fmt::format("SELECT {} FROM {}{} AS e", columns, main, t.registry_name);
    if (t.rows_follow_visit) {
      select += " WHERE EXISTS (SELECT 1 FROM " + main + "dataset AS d WHERE d.visit = e.visit AND " + d + ")";
    }
    views.push_back({t.view_name(), std::move(select)});
  }
  // CAOM2: a plane and its files with its dataset; an observation with any
  // of its planes (tap/caom2.hpp).
  for (const auto& t : caom2::tables()) {
    if (!skip(t.view_name())) views.push_back({t.view_name(), caom2::view_select(t, dialect, d, i)});
  }
  return views;
}

std::vector<std::string> views_sql(const Viewer& viewer, std::string_view datalink_links, db::Dialect dialect) {
  std::vector<std::string> out;
  for (const auto& view : view_definitions(viewer, datalink_links, dialect)) {
    out.push_back("CREATE TEMP VIEW " + view.name + " AS " + view.select);
  }
  return out;
}

std::vector<std::string> drop_views_sql(db::Dialect dialect) {
  std::vector<std::string> out;
  for (const char* view : {"tap_ivoa_obscore", "tap_survey_datasets", "tap_survey_visits", "tap_survey_provenance",
                           "tap_survey_patches", "tap_survey_coadds"}) {
    out.push_back(fmt::format("DROP VIEW IF EXISTS {}.{}", db::temp_schema(dialect), view));
  }
  for (const auto& t : repo::efd::tables()) {
    out.push_back(fmt::format("DROP VIEW IF EXISTS {}.{}", db::temp_schema(dialect), t.view_name()));
  }
  for (const auto& t : caom2::tables()) {
    out.push_back(fmt::format("DROP VIEW IF EXISTS {}.{}", db::temp_schema(dialect), t.view_name()));
  }
  return out;
}

}  // namespace pixserve::tap
