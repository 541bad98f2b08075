// DataLink service descriptors (DataLink 1.1 section 4) from an endpoint's
// declaration: <RESOURCE type="meta" utype="adhoc:service"> with the
// standardID and accessURL PARAMs and a GROUP "inputParams" holding one PARAM
// per declared parameter (datatype, arraysize, xtype, unit, ucd, VALUES with
// MIN/MAX/OPTION, DESCRIPTION). A parameter is pre-filled either from a
// column of the results table (ref to the FIELD's ID, e.g. ID ->
// obs_publisher_did) or with a fixed value (e.g. ID = one dataset's DID in a
// {links} response).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "dali/params.hpp"
#include "dali/service.hpp"
#include "votable/model.hpp"
#include "votable/writer.hpp"

namespace pixserve::dali {

struct DescriptorOptions {
  std::string id{};           // the RESOURCE's XML ID (unique in the document), e.g. "soda-sync"
  std::string name{};         // the RESOURCE's name (default: the id)
  std::string access_url{};   // absolute URL of the endpoint
  std::string description{};  // default: the endpoint's summary
  // Parameter name -> FIELD ID, overriding ParamSpec::ref.
  std::vector<std::pair<std::string, std::string>> refs{};
  // Parameter name -> fixed value (the PARAM's value attribute).
  std::vector<std::pair<std::string, std::string>> values{};
  // Parameters left out of inputParams (e.g. RESPONSEFORMAT, MAXREC).
  std::vector<std::string> omit{};
};

// The inputParams PARAM of one parameter, with an empty value, the spec's ref
// and VALUES from its bounds and options.
votable::Param descriptor_param(const ParamSpec& spec);

// Writes the descriptor RESOURCE. Call where the writer accepts a RESOURCE
// (inside VOTABLE after the results RESOURCE). Throws std::invalid_argument
// for an empty id or access_url.
void write_service_descriptor(votable::VotableWriter& writer, const Endpoint& endpoint, const DescriptorOptions& options);

}  // namespace pixserve::dali
