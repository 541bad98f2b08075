#include "services/tap.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <pugixml.hpp>
#include <spdlog/spdlog.h>

#include "adql/translator.hpp"
#include "dali/errors.hpp"
#include "dali/vosi.hpp"
#include "db/database.hpp"
#include "http/headers.hpp"
#include "http/params.hpp"
#include "services/datalink.hpp"
#include "services/links.hpp"
#include "tap/fetch.hpp"
#include "uws/job_service.hpp"

namespace pixserve::services {

using dali::text_element;
using dali::to_xml;
namespace {

constexpr std::string_view kTapStandardId = "ivo://ivoa.net/std/TAP";
constexpr std::string_view kExamplesStandardId = "ivo://ivoa.net/std/DALI#examples";

// ------------------------------------------------------------ parameters

std::vector<dali::ParamSpec> tap_params(const dali::ResultLimits& limits) {
  std::vector<dali::ParamSpec> p = {
      {.name = "LANG",
       .type = dali::ParamType::text,
       .description = "Query language: ADQL (ADQL-2.0 and ADQL-2.1 name the versions; both are served by the ADQL 2.1 "
                      "parser).",
       .required = true,
       .example = "ADQL",
       .standard = true},
      {.name = "QUERY",
       .type = dali::ParamType::text,
       .description = "The ADQL query. Tables: ivoa.obscore, survey.datasets, survey.visits, survey.provenance, survey.patches, "
                      "survey.coadds, efd.weather and efd.visit_summary (engineering telemetry: join on visit or by "
                      "time), caom2.Observation, caom2.Plane, caom2.Artifact, caom2.Part and caom2.Chunk (CAOM 2.4: "
                      "join caom2.Plane to ivoa.obscore on publisherID = obs_publisher_did), TAP_SCHEMA.*, and TAP_UPLOAD.<name> for uploaded tables.",
       .required = true,
       .example = "SELECT TOP 10 obs_id, s_ra, s_dec FROM ivoa.obscore",
       .standard = true},
      {.name = "REQUEST",
       .type = dali::ParamType::text,
       .description = "doQuery (optional in TAP 1.1).",
       .example = "doQuery",
       .standard = true},
      {.name = "VERSION",
       .type = dali::ParamType::text,
       .description = "TAP version requested: 1.0 or 1.1 (optional).",
       .example = "1.1",
       .standard = true},
      {.name = "FORMAT",
       .type = dali::ParamType::text,
       .description = "Synonym of RESPONSEFORMAT (TAP 1.0).",
       .example = "votable",
       .standard = true},
      {.name = "UPLOAD",
       .type = dali::ParamType::text,
       .description = "Tables to upload as TAP_UPLOAD.<name>: 'name,param:part' pairs separated by ';', the VOTable "
                      "sent as the multipart part 'part' of the same request, or name,http://... fetched from a "
                      "public host.",
       .multiple = true,
       .example = "mine,param:mine",
       .standard = true},
      {.name = "RUNID",
       .type = dali::ParamType::text,
       .description = "Identifier of the request, echoed for the client's bookkeeping.",
       .standard = true},
  };
  for (auto& r : dali::result_params(limits)) p.push_back(std::move(r));
  return p;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return std::string(s);
}

// What a request or job asks, checked.
struct TapCall {
  std::string adql;
  dali::ResponseFormat format;
  std::int64_t maxrec = 0;
  std::vector<tap::Upload> uploads;
};

using UploadSource = std::function<std::optional<std::string>(std::string_view part)>;

TapCall prepare_call(const dali::ParsedParams& p, const dali::ResultLimits& limits, const tap::TapSettings& options,
                     const UploadSource& upload_source) {
  if (auto request = p.first<std::string>("REQUEST"); request && !http::iequals(trim(*request), "doQuery")) {
    throw dali::usage_error(fmt::format("REQUEST: '{}' is not supported; use doQuery", request->substr(0, 40)));
  }
  if (auto version = p.first<std::string>("VERSION"); version && *version != "1.0" && *version != "1.1") {
    throw dali::usage_error(fmt::format("VERSION: '{}' is not supported; this service speaks TAP 1.1 (and 1.0)",
                                        version->substr(0, 20)));
  }
  const std::string lang = trim(p.first<std::string>("LANG").value_or(""));
  if (!http::iequals(lang, "ADQL") && !http::iequals(lang, "ADQL-2.0") && !http::iequals(lang, "ADQL-2.1")) {
    std::string shown = lang.substr(0, 40);
    for (auto& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    throw dali::usage_error(fmt::format("LANG: '{}' is not supported; use ADQL, ADQL-2.0 or ADQL-2.1", shown));
  }
  TapCall call;
  call.adql = p.first<std::string>("QUERY").value_or("");
  if (trim(call.adql).empty()) throw dali::usage_error("QUERY: empty query");
  if (call.adql.size() > options.max_query_length) {
    throw dali::usage_error(fmt::format("QUERY is longer than the limit of {} characters", options.max_query_length));
  }
  if (auto rf = p.first<std::string>("RESPONSEFORMAT")) {
    call.format = dali::parse_response_format(*rf);
  } else if (auto f = p.first<std::string>("FORMAT")) {
    call.format = dali::parse_response_format(*f);
  }
  call.maxrec = dali::effective_maxrec(p, limits);

  votable::ReadLimits read_limits;
  read_limits.max_bytes = options.max_upload_bytes;
  read_limits.max_rows = options.max_upload_rows;
  for (const auto& value : p.all_as<std::string>("UPLOAD")) {
    std::size_t start = 0;
    while (start <= value.size()) {
      auto end = value.find(';', start);
      if (end == std::string::npos) end = value.size();
      const std::string item = trim(std::string_view(value).substr(start, end - start));
      start = end + 1;
      if (item.empty()) {
        if (end == value.size()) break;
        continue;
      }
      const auto comma = item.find(',');
      if (comma == std::string::npos) {
        throw dali::usage_error(fmt::format("UPLOAD: '{}' is not 'name,URI'", item.substr(0, 80)));
      }
      tap::Upload upload;
      upload.name = trim(std::string_view(item).substr(0, comma));
      const std::string uri = trim(std::string_view(item).substr(comma + 1));
      std::optional<std::string> content;
      if (uri.rfind("param:", 0) == 0) {
        content = upload_source(uri.substr(6));
      } else if (uri.rfind("http://", 0) == 0 || uri.rfind("https://", 0) == 0) {
        content = tap::fetch_upload(uri, options);
      } else {
        throw dali::usage_error(fmt::format("UPLOAD {}: '{}' is neither param:<part> nor an http:// URL",
                                            upload.name.substr(0, 64), uri.substr(0, 80)));
      }
      const std::string part = uri.substr(0, 80);
      if (!content) {
        throw dali::usage_error(
            fmt::format("UPLOAD {}: no part '{}' in the request", upload.name.substr(0, 64), part));
      }
      if (content->size() > options.max_upload_bytes) {
        throw dali::usage_error(fmt::format("UPLOAD {}: the table is larger than the limit of {} bytes",
                                            upload.name.substr(0, 64), options.max_upload_bytes));
      }
      try {
        upload.table = votable::read_votable(*content, read_limits);
      } catch (const votable::ReadError& e) {
        throw dali::usage_error(fmt::format("UPLOAD {}: {}", upload.name.substr(0, 64), e.what()));
      }
      call.uploads.push_back(std::move(upload));
      if (end == value.size()) break;
    }
  }
  return call;
}

// `who` reads the data tables: the caller (sync) or the job's owner (async).
tap::QueryRequest query_request(TapCall& call, const auth::Identity& who) {
  tap::QueryRequest q;
  q.adql = call.adql;
  q.maxrec = call.maxrec;
  q.uploads = std::move(call.uploads);
  q.viewer = who;
  return q;
}

// Writes a query's rows in the requested format as the cursor gives them.
// A failure after the first row (the time limit, an abort, the database
// lost) ends the table early with the error in the stats (and, in a
// VOTable, its QUERY_STATUS ERROR).
//
// A result with a column of publisher DIDs (ivoa.obscore.obs_publisher_did,
// caom2.Plane.publisherID) carries the DataLink service descriptor of its
// datasets, as SIAv2's rows carry their access_url: pyvo's iter_datalinks()
// and TOPCAT's activation actions follow it from a TAP table.
dali::TableStats write_result(votable::Sink sink, const dali::ResponseFormat& format, tap::QueryCursor& cursor,
                              std::int64_t maxrec, const std::string& adql, const dali::ResultLimits& limits,
                              const std::string& base_url) {
  dali::TableResult table;
  table.name = "result";
  table.description = "Result of the ADQL query";
  table.fields = cursor.fields();
  table.infos = {{"QUERY", adql.substr(0, 10'000)}};
  const auto did = std::find_if(table.fields.begin(), table.fields.end(), [](const votable::Field& f) {
    return http::iequals(f.utype, "obscore:Curation.publisherDID") || http::iequals(f.utype, "caom2:Plane.publisherID");
  });
  if (did != table.fields.end()) {
    did->id = "publisher_did";
    table.more_resources = [&limits, &base_url](votable::VotableWriter& writer) {
      write_datalink_descriptor(writer, limits, base_url, "publisher_did");
    };
  }
  table.rows = [&cursor](const dali::RowSink& emit) {
    try {
      while (const auto* row = cursor.next()) {
        if (!emit(*row)) return;
      }
    } catch (const tap::QueryInterrupted& e) {
      throw dali::RowsFailed(e.what());
    } catch (const db::Unavailable& e) {
      throw dali::database_lost_mid_stream("tap", e);
    } catch (const dali::DaliError& e) {
      throw dali::RowsFailed(e.what());  // an error of the query met on a later row
    }
  };
  // The cursor stops at MAXREC and knows whether more matched.
  table.overflowed = [&cursor] { return cursor.overflow(); };
  return dali::write_table(std::move(sink), format, maxrec, table);
}

std::string file_extension(const dali::ResponseFormat& f) {
  switch (f.format) {
    case dali::TableFormat::csv: return "csv";
    case dali::TableFormat::tsv: return "tsv";
    default: return "xml";
  }
}

// ------------------------------------------------------------ capabilities

void simple_capability(pugi::xml_node root, std::string_view standard_id, const std::string& url,
                       const char* interface_type = "vs:ParamHTTP") {
  auto cap = root.append_child("capability");
  cap.append_attribute("standardID") = std::string(standard_id).c_str();
  dali::interface_element(cap, std::string_view(interface_type) == "vs:ParamHTTP", {}, url, "full", interface_type);
}

std::string capabilities_document(const std::string& base, const dali::ResultLimits& limits, const tap::TapSettings& options,
                                  const uws::JobSettings& jobs) {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto root = doc.append_child("vosi:capabilities");
  root.append_attribute("xmlns:vosi") = std::string(dali::vosi_capabilities_ns).c_str();
  root.append_attribute("xmlns:vs") = std::string(dali::vodataservice_ns).c_str();
  root.append_attribute("xmlns:xsi") = std::string(dali::xsi_ns).c_str();
  root.append_attribute("xmlns:tr") = std::string(dali::tapregext_ns).c_str();
  root.append_attribute("xmlns:vr") = std::string(dali::voresource_ns).c_str();

  auto tap = root.append_child("capability");
  tap.append_attribute("standardID") = std::string(kTapStandardId).c_str();
  tap.append_attribute("xsi:type") = "tr:TableAccess";
  text_element(tap, "description",
               "ObsTAP: ADQL queries over the ObsCore table of the survey's images and the survey tables "
               "(synchronous at /sync, asynchronous UWS jobs at /async).");
  dali::interface_element(tap, true, "1.1", base, "base");

  auto dm = tap.append_child("dataModel");
  dm.append_attribute("ivo-id") = "ivo://ivoa.net/std/ObsCore#core-1.1";
  dm.text().set("ObsCore-1.1");

  auto lang = tap.append_child("language");
  text_element(lang, "name", "ADQL");
  auto v20 = lang.append_child("version");
  v20.append_attribute("ivo-id") = "ivo://ivoa.net/std/ADQL#v2.0";
  v20.text().set("2.0");
  auto v21 = lang.append_child("version");
  v21.append_attribute("ivo-id") = "ivo://ivoa.net/std/ADQL#v2.1";
  v21.text().set("2.1");
  text_element(lang, "description",
               "ADQL 2.1 (2.0 queries are accepted too). Geometry is ICRS only and evaluated exactly on the sphere; "
               "CONTAINS and INTERSECTS on ivoa.obscore positions and footprints use the HEALPix index.");
  std::string current_type;
  pugi::xml_node features;
  for (const auto& f : adql::supported_features()) {
    // ADQL 2.1 puts COALESCE under features-adql-conditional, a key newer
    // than TAPRegExt 1.0: STILTS 3.4 (Debian 12) taplint reports it as an
    // unknown standard key, an error. COALESCE works; it is just not declared.
    if (f.type == "ivo://ivoa.net/std/TAPRegExt#features-adql-conditional") continue;
    if (f.type != current_type) {
      features = lang.append_child("languageFeatures");
      features.append_attribute("type") = std::string(f.type).c_str();
      current_type = std::string(f.type);
    }
    auto feature = features.append_child("feature");
    text_element(feature, "form", f.name);
  }

  struct Format {
    const char* ivo_id;
    const char* mime;
    std::vector<const char*> aliases;
  };
  const std::vector<Format> formats = {
      {"ivo://ivoa.net/std/TAPRegExt#output-votable-td", "application/x-votable+xml", {"votable"}},
      {"ivo://ivoa.net/std/TAPRegExt#output-votable-binary2", "application/x-votable+xml;serialization=BINARY2",
       {"votable/b2"}},
      {"ivo://ivoa.net/std/TAPRegExt#output-votable-binary", "application/x-votable+xml;serialization=BINARY",
       {"votable/b"}},
      {nullptr, "text/csv", {"csv"}},
      {nullptr, "text/tab-separated-values", {"tsv"}},
  };
  for (const auto& f : formats) {
    auto of = tap.append_child("outputFormat");
    if (f.ivo_id) of.append_attribute("ivo-id") = f.ivo_id;
    text_element(of, "mime", f.mime);
    for (const auto* a : f.aliases) text_element(of, "alias", a);
  }
  for (const char* method : {"ivo://ivoa.net/std/TAPRegExt#upload-inline", "ivo://ivoa.net/std/TAPRegExt#upload-http"}) {
    tap.append_child("uploadMethod").append_attribute("ivo-id") = method;
  }

  const auto seconds = [](std::chrono::milliseconds ms) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(ms).count());
  };
  auto retention = tap.append_child("retentionPeriod");
  text_element(retention, "default", seconds(jobs.retention));
  text_element(retention, "hard", seconds(jobs.max_retention));
  auto duration = tap.append_child("executionDuration");
  text_element(duration, "default", seconds(jobs.execution_duration));
  text_element(duration, "hard", seconds(jobs.max_execution_duration));
  auto output = tap.append_child("outputLimit");
  auto od = output.append_child("default");
  od.append_attribute("unit") = "row";
  od.text().set(std::to_string(limits.default_maxrec).c_str());
  auto oh = output.append_child("hard");
  oh.append_attribute("unit") = "row";
  oh.text().set(std::to_string(limits.max_maxrec).c_str());
  auto ul = tap.append_child("uploadLimit");
  auto uh = ul.append_child("hard");
  uh.append_attribute("unit") = "byte";
  uh.text().set(std::to_string(options.max_upload_bytes).c_str());

  simple_capability(root, "ivo://ivoa.net/std/VOSI#capabilities", base + "/capabilities");
  simple_capability(root, "ivo://ivoa.net/std/VOSI#availability", base + "/availability");
  simple_capability(root, "ivo://ivoa.net/std/VOSI#tables-1.1", base + "/tables");
  simple_capability(root, kExamplesStandardId, base + "/examples", "vr:WebBrowser");
  return to_xml(doc);
}

// ------------------------------------------------------------ examples

struct Example {
  const char* id;
  const char* name;
  const char* description;
  const char* query;
};

constexpr Example kExamples[] = {
    {"cone", "Images around a position",
     "Processed visit images whose centre lies within 0.5 degrees of a position (a cone search on the HEALPix "
     "index).",
     "SELECT TOP 100 obs_id, dataproduct_subtype, band, s_ra, s_dec, t_min, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), CIRCLE('ICRS', 53.0, -28.0, 0.5)) = 1\n"
     "  AND dataproduct_subtype = 'calexp'"},
    {"footprint", "Every image covering a point",
     "All images whose footprint contains a position: the epochs of one object (a light curve in pixels), oldest "
     "first.",
     "SELECT obs_id, dataproduct_subtype, band, t_min, s_region, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE CONTAINS(POINT('ICRS', 53.0, -28.0), s_region) = 1\n"
     "ORDER BY t_min"},
    {"counts", "Images per band and type", "How many images of each type the survey holds in each band.",
     "SELECT band, dataproduct_subtype, COUNT(*) AS n_images\n"
     "FROM ivoa.obscore\n"
     "GROUP BY band, dataproduct_subtype\n"
     "ORDER BY band, dataproduct_subtype"},
    {"seeing", "Images taken in good seeing",
     "Processed visit images joined with the observing conditions of their visit, best seeing first.",
     "SELECT TOP 50 o.obs_id, o.band, v.seeing, v.airmass, v.t_min\n"
     "FROM ivoa.obscore AS o JOIN survey.visits AS v ON o.visit = v.visit\n"
     "WHERE o.dataproduct_subtype = 'calexp'\n"
     "ORDER BY 3"},
    {"coadd-inputs", "Inputs of the coadds", "The number of input images of each coadd, from the provenance table.",
     "SELECT p.dataset_id, COUNT(*) AS n_inputs\n"
     "FROM survey.provenance AS p JOIN ivoa.obscore AS o ON o.obs_id = p.dataset_id\n"
     "WHERE o.dataproduct_subtype = 'deepCoadd'\n"
     "GROUP BY p.dataset_id"},
    {"skymap", "Tracts of the sky map", "The tracts of the sky map with their number of patches and coadds.",
     "SELECT skymap, tract, COUNT(*) AS n_patches, SUM(n_datasets) AS n_coadds\n"
     "FROM survey.patches\n"
     "GROUP BY skymap, tract\n"
     "ORDER BY skymap, tract"},
    // The survey portal's requirements, one query each (docs/portal.md).
    {"prtl-0035-visit-list", "Single-epoch images of a list of visits (DMS-PRTL-REQ-0035)",
     "Every processed visit image (PVI) of the visits listed; dataproduct_subtype = 'raw' or 'diffim' gives their raw "
     "or difference images instead.",
     "SELECT obs_id, visit, detector, raft, band, t_min, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE visit IN (1000001, 1000002, 1000003)\n"
     "  AND dataproduct_subtype = 'calexp'\n"
     "ORDER BY visit, detector"},
    {"prtl-0035-visit-selection", "Single-epoch images of a selection of visits (DMS-PRTL-REQ-0035)",
     "The processed visit images of the visits that a query on survey.visits selects: here the r-band visits taken "
     "below airmass 1.5.",
     "SELECT obs_id, visit, detector, band, t_min, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE dataproduct_subtype = 'calexp'\n"
     "  AND visit IN (SELECT visit FROM survey.visits WHERE band = 'r' AND airmass < 1.5)\n"
     "ORDER BY visit, detector"},
    {"prtl-0036-raft", "The images of one raft (DMS-PRTL-REQ-0036)",
     "The raw images of one visit limited to one raft of the focal plane.",
     "SELECT obs_id, visit, raft, detector, detector_name, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE visit = 1000001 AND raft = 'R22'\n"
     "  AND dataproduct_subtype = 'raw'\n"
     "ORDER BY detector"},
    {"prtl-0037-ccd", "The images of one CCD (DMS-PRTL-REQ-0037)",
     "The processed visit images of one detector over all visits, oldest first.",
     "SELECT obs_id, visit, detector, band, t_min, access_url\n"
     "FROM ivoa.obscore\n"
     "WHERE detector = 94 AND dataproduct_subtype = 'calexp'\n"
     "ORDER BY t_min"},
    {"prtl-0038-efd-visit", "Visits by engineering data (DMS-PRTL-REQ-0038)",
     "Processed visit images of the visits whose Reformatted EFD summary reports good DIMM seeing and little wind, "
     "joined by visit number.",
     "SELECT o.obs_id, o.visit, o.band, e.dimm_seeing, e.wind_speed, e.dome_temperature, e.airmass\n"
     "FROM ivoa.obscore AS o JOIN efd.visit_summary AS e ON e.visit = o.visit\n"
     "WHERE o.dataproduct_subtype = 'calexp'\n"
     "  AND e.dimm_seeing < 1.5 AND e.wind_speed < 15\n"
     "ORDER BY 4, 1"},
    {"prtl-0038-efd-interval", "Images by telemetry during their exposure (DMS-PRTL-REQ-0038)",
     "The EFD weather samples taken while each raw image was exposed, joined by time interval, averaged per image.",
     "SELECT o.obs_id, COUNT(*) AS n_samples, AVG(w.wind_speed) AS wind_speed, MAX(w.dimm_seeing) AS worst_seeing\n"
     "FROM ivoa.obscore AS o JOIN efd.weather AS w ON w.time_mjd BETWEEN o.t_min AND o.t_max\n"
     "WHERE o.dataproduct_subtype = 'raw' AND o.detector = 94\n"
     "GROUP BY o.obs_id\n"
     "ORDER BY 1"},
    {"prtl-0039-coadd-provenance", "Coadds by their provenance (DMS-PRTL-REQ-0039)",
     "Deep coadd patches over a position by band, with at least two input images, some coverage and depth, inputs "
     "taken before a date; deepest first.",
     "SELECT o.obs_id, c.band, c.tract, c.patch, c.n_inputs, c.t_min, c.t_max, c.coverage_fraction, c.depth_5sigma\n"
     "FROM survey.coadds AS c JOIN ivoa.obscore AS o ON o.obs_id = c.dataset_id\n"
     "WHERE c.dataset_type = 'deepCoadd' AND c.band IN ('g', 'r', 'i')\n"
     "  AND c.n_inputs >= 2 AND c.coverage_fraction > 0.001 AND c.depth_5sigma > 20\n"
     "  AND c.t_max < 61100\n"
     "  AND CONTAINS(POINT('ICRS', 53.0, -28.0), o.s_region) = 1\n"
     "ORDER BY 9 DESC"},
    {"caom2-planes-obscore", "CAOM2 planes with their ObsCore rows",
     "The CAOM2 planes of the processed visit images of one visit, joined with ivoa.obscore by publisher ID, with "
     "their observation and provenance.",
     "SELECT p.planeURI, o.obs_id, p.calibrationLevel, p.energy_bandpassName, p.time_bounds_lower, "
     "p.provenance_inputs\n"
     "FROM caom2.Plane AS p JOIN ivoa.obscore AS o ON o.obs_publisher_did = p.publisherID\n"
     "WHERE o.visit = 1000001 AND p.productID = 'calexp'\n"
     "ORDER BY 1"},
    {"caom2-artifacts", "The files and HDUs of a plane (CAOM2)",
     "The artifacts of the planes of one observation with their checksums and sizes, and each file's HDUs (parts) "
     "with the size and reference point of their image arrays (chunks).",
     "SELECT a.uri, a.contentChecksum, a.contentLength, pt.name, pt.productType, c.naxis, "
     "c.position_axis_function_dimension_naxis1, c.position_axis_function_refCoord_coord1_val\n"
     "FROM caom2.Plane AS p JOIN caom2.Artifact AS a ON a.planeID = p.planeID\n"
     "JOIN caom2.Part AS pt ON pt.artifactID = a.artifactID\n"
     "LEFT OUTER JOIN caom2.Chunk AS c ON c.partID = pt.partID\n"
     "WHERE p.productID = 'calexp'\n"
     "ORDER BY 1, 4"},
    {"region", "Footprints meeting a polygon",
     "Coadd patches whose footprint intersects a polygon on the sky, with the area of each footprint.",
     "SELECT obs_id, band, tract, patch, AREA(s_region) AS area_deg2\n"
     "FROM ivoa.obscore\n"
     "WHERE INTERSECTS(s_region, POLYGON('ICRS', 52.8, -28.2, 53.2, -28.2, 53.2, -27.8, 52.8, -27.8)) = 1\n"
     "  AND dataproduct_subtype = 'deepCoadd'"},
};

std::string xml_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<tap::TapEngine> make_tap_engine(SharedRepository& repository, const tap::TapSettings& options) {
  tap::EngineOptions eo;
  const auto database = repository.registry_database();
  eo.registry_file = database.sqlite_file;
  eo.registry_url = database.postgresql_url;
  eo.index_order = repository.with([](repo::Repository& r) { return r.registry().index_order(); });
  eo.standbys = repository.standbys();
  eo.settings = options;
  eo.datalink_links = links::endpoint(links::kDatalink, "links");
  return std::make_shared<tap::TapEngine>(std::make_shared<const tap::TapMetadata>(), eo);
}

std::string tap_examples_xhtml() {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\">\n"
      "<head><title>pixserve ObsTAP examples</title></head>\n"
      "<body vocab=\"ivo://ivoa.net/std/DALI-examples#\">\n"
      "<h1>Example queries for the ObsTAP service</h1>\n"
      "<p>ADQL queries over ivoa.obscore and the survey tables. Run them with any TAP client, e.g. "
      "pyvo.dal.TAPService(url).search(query).</p>\n";
  for (const auto& e : kExamples) {
    out += fmt::format(
        "<div typeof=\"example\" id=\"{0}\" resource=\"#{0}\">\n"
        "<h2 property=\"name\">{1}</h2>\n"
        "<p>{2}</p>\n"
        "<pre class=\"dali-example-query\" property=\"query\">{3}</pre>\n"
        "</div>\n",
        e.id, xml_escape(e.name), xml_escape(e.description), xml_escape(e.query));
  }
  out += "</body>\n</html>\n";
  return out;
}

dali::Service tap_service(std::shared_ptr<tap::TapEngine> engine, std::shared_ptr<uws::JobEngine> job_engine,
                          const dali::ResultLimits& limits, const tap::TapSettings& options,
                          const uws::JobSettings& jobs, std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint sync{
      .path = "sync",
      .summary = "Synchronous ADQL query (TAP 1.1)",
      .description =
          "Runs an ADQL query and returns its result at once. Rows are those the caller may see (anonymous: public "
          "datasets whose embargo has ended). Queries are interrupted after the synchronous time limit; use /async for longer ones.",
      .params = tap_params(limits),
      .result_types = dali::table_result_types(),
      .standard_id = std::string(kTapStandardId),
      .interface_version = "1.1",
  };
  dali::Endpoint async{
      .path = "async",
      .summary = "Asynchronous ADQL query (TAP 1.1, UWS 1.1)",
      .description = "The parameters of /sync create a UWS job that runs the query; its result is the job's result "
                     "'result'. Rows are those the job's owner may see.",
      .params = tap_params(limits),
      .methods = {"POST"},
      .result_types = dali::table_result_types(),
      .interface_version = "1.1",
      .binding = dali::Binding::uws,
  };
  // One function for /sync and /async: a sync query has the sync time
  // limit, a job its execution duration (cancel()).
  const auto run_query = [engine, limits, options](uws::JobRun& run) {
    TapCall call = prepare_call(run.params(), limits, options, [&run](std::string_view part) { return run.upload(part); });
    tap::QueryRequest q = query_request(call, run.caller());
    q.base_url = run.base_url();  // ivoa.obscore's access_url, absolute as SIAv2's
    q.deadline = run.deadline();
    q.cancelled = [cancel = run.cancel()] { return cancel.cancelled(); };
    if (!run.synchronous()) run.progress().report(0.0, "running the query");
    // The query runs to its first row here, so that what fails before it
    // is the usual error answer (sync) or an ERROR job; the rows then
    // stream from the database into the response or the job's file.
    std::shared_ptr<tap::QueryCursor> cursor;
    try {
      cursor = std::make_shared<tap::QueryCursor>(database_outages_to_unavailable([&] { return engine->open(q); }));
    } catch (const tap::QueryInterrupted& e) {
      if (run.synchronous()) {
        throw dali::usage_error(fmt::format(
            "QUERY: {} ({} s for /sync); run it as an asynchronous job at /async, which may run longer", e.what(),
            std::chrono::duration_cast<std::chrono::seconds>(options.sync_time_limit).count()));
      }
      if (run.cancel().cancelled()) throw uws::Cancelled();
      throw uws::JobError(e.what());
    }
    run.cancel().throw_if_cancelled();
    // The producer owns the cursor and keeps the engine (whose pool the
    // cursor's connection goes back to) alive: a sync response streams
    // after this function has returned.
    run.results().add_stream(
        {.id = "result",
         .file_name = "result." + file_extension(call.format),
         .mime_type = call.format.content_type,
         .size = std::nullopt,
         .produce =
             [engine, cursor, format = call.format, maxrec = call.maxrec, adql = call.adql,
              synchronous = run.synchronous(), cancel = run.cancel(), limits,
              base_url = run.base_url()](const http::ByteSink& sink) {
               struct Gone {};
               dali::TableStats stats;
               try {
                 stats = write_result(
                     [&sink](std::string_view chunk) {
                       if (!sink(chunk)) throw Gone{};
                     },
                     format, *cursor, maxrec, adql, limits, base_url);
               } catch (const Gone&) {
                 return false;
               }
               if (stats.error && !synchronous) {
                 // Not a COMPLETED job with part of the rows: the file is
                 // discarded and the job ends in ERROR (ABORTED when
                 // cancelled, like an abort before the first row).
                 if (cancel.cancelled()) throw uws::Cancelled();
                 throw uws::JobError(*stats.error);
               }
               dali::end_failed_stream(format, stats);
               return true;
             },
         .consumed_files = {},
         .attachment = false});
  };

  dali::Endpoint examples{
      .path = "examples",
      .summary = "DALI examples: useful ObsCore queries",
      .methods = {"GET"},
      .result_types = {"application/xhtml+xml"},
  };
  examples.handler = [](const http::Request&, const dali::ParsedParams&) {
    return http::Response::text(200, tap_examples_xhtml(), "application/xhtml+xml; charset=utf-8");
  };

  dali::Service service{
      .name = std::string(links::kTap),
      .title = "ObsTAP (TAP 1.1)",
      .description = "ADQL queries over the ObsCore table of the survey's images and the survey tables.",
      .endpoints = {},
      .checks = std::move(checks),
  };
  uws::add_job_endpoints(service, std::move(job_engine),
                         {.kind = "tap",
                          .sync = std::move(sync),
                          .async = std::move(async),
                          .run = run_query,
                          // TAP reports bad queries as ERROR jobs (TAP 1.1 section 2.7.1).
                          .check_on_create = false,
                          .check = {},
                          .sync_time_limit = options.sync_time_limit,
                          .sync_without_result = {},
                          .spool = {},
                          .max_inline_upload_bytes = options.max_upload_bytes});
  service.endpoints.push_back(std::move(examples));
  service.tables = [engine](const http::Request& req) {
    const bool min = http::iequals(req.params().first("detail").value_or(""), "min");
    return http::Response::text(200, engine->metadata().vosi_tables_xml(min), "text/xml; charset=utf-8");
  };
  service.capabilities = [limits, options, jobs](const http::Request& req) {
    return http::Response::text(200, capabilities_document(req.base_url() + links::service(links::kTap), limits, options, jobs),
                                "text/xml; charset=utf-8");
  };
  return service;
}

}  // namespace pixserve::services
