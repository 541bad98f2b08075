// DataLink 1.1 links (/api/datalink/links, standardID
// ivo://ivoa.net/std/DataLink#links-1.1) and the file endpoints they point
// to: /api/files/<dataset id> (the FITS file, with ranges and ETags) and
// /api/files/<dataset id>/preview.png (a PNG rendering, cached in the
// repository), /api/files/<dataset id>/header (the FITS headers as text) and,
// for virtual products, /api/files/<dataset id>/recipe (JSON).
//
// Per ID: #this, #preview, #cutout (service descriptor of SODA sync, ID
// taken from the ID column), #detached-header, #provenance (the recipe of a
// virtual product), #progenitor (what it was made from: a calexp's raw, bias
// and flat; a coadd's inputs; a difference image's calexp and template
// patches), #derivation (what was made from it), #bias and #flat (the
// calibrations a raw can still take); unknown or
// invisible IDs get one NotFoundFault error_message row, the same for both.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "http/router.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"
#include "votable/model.hpp"
#include "votable/writer.hpp"

namespace pixserve::services {

// The DataLink 1.1 columns: ID, access_url, service_def, error_message,
// semantics, description, content_type, content_length, content_qualifier,
// local_semantics, link_auth, link_authorized.
const std::vector<votable::Field>& datalink_fields();

// One link (a row of the links table).
struct Link {
  std::string id;  // the ID as asked for
  std::string access_url{};
  std::string service_def{};
  std::string error_message{};
  std::string semantics{};
  std::string description{};
  std::string content_type{};
  std::optional<std::int64_t> content_length{};
  std::string content_qualifier{};
  std::string local_semantics{};
  // DataLink 1.1 link_auth: whether the linked resource needs credentials
  // (it is not readable anonymously). Only links the caller may follow are
  // listed, so link_authorized is always true.
  bool needs_auth = false;
};

std::vector<votable::Value> link_row(const Link& link);

// The links of one ID (a publisher DID or a bare dataset ID), as `caller`
// may see them: an invisible dataset gets the same error row as an unknown
// one, and invisible relatives get no link.
std::vector<Link> links_of(SharedRepository& repository, const std::string& id, const std::string& base_url,
                           const auth::Identity& caller = {});

// The absolute URL of a dataset's file.
std::string file_url(const std::string& base_url, const std::string& dataset_id);

// The links endpoint as declared, without a handler: what DataLink service
// descriptors in other services' results (TAP) are written from.
dali::Endpoint datalink_links_declaration(const dali::ResultLimits& limits);

// The XML ID of the links descriptor in a results table.
inline constexpr std::string_view kDatalinkDescriptorId = "datalink-links";

// Writes the DataLink links service descriptor (DataLink 1.1 section 4),
// its ID taken from the results FIELD whose XML ID is `id_field`: what
// pyvo's iter_datalinks() and TOPCAT follow from a table of datasets.
void write_datalink_descriptor(votable::VotableWriter& writer, const dali::ResultLimits& limits,
                               const std::string& base_url, const std::string& id_field);

// photometry_limits: the forced photometry descriptor offered with a
// calexp's or a difference image's links declares them.
dali::Service datalink_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               const PhotometryLimits& photometry_limits, std::vector<dali::AvailabilityCheck> checks);

// GET /api/files/{id}, /api/files/{id}/preview.png, /api/files/{id}/header
// and /api/files/{id}/recipe,
// for the caller `identify` resolves (no hook: anonymous).
void add_file_routes(http::Router& router, std::shared_ptr<SharedRepository> repository,
                     dali::IdentifyHook identify = {});

}  // namespace pixserve::services
