#include "services/datalink.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "dali/descriptor.hpp"
#include "http/files.hpp"
#include "http/params.hpp"
#include "repo/dataset.hpp"
#include "services/preview.hpp"
#include "services/sia.hpp"
#include "services/soda_params.hpp"

namespace pixserve::services {
namespace {

constexpr std::string_view kSodaDescriptorId = "soda-sync";

votable::Field text_field(std::string name, std::string ucd, std::string description) {
  votable::Field f;
  f.id = name;
  f.name = std::move(name);
  f.datatype = votable::Datatype::char_;
  f.arraysize = "*";
  f.ucd = std::move(ucd);
  f.description = std::move(description);
  return f;
}

std::string not_found(const std::string& id) { return "NotFoundFault: " + id + " is not a known dataset"; }

// Links to the datasets a record was made from, of the given roles: those
// visible to the caller, each to its own links (it has its own #this).
void add_inputs(SharedRepository& repository, const repo::DatasetRecord& record, const std::string& id,
                const std::string& base_url, std::initializer_list<std::string_view> roles, const char* semantics,
                std::vector<Link>& out) {
  repo::DatasetQuery q;
  for (const auto& input : record.inputs) {
    if (std::find(roles.begin(), roles.end(), input.role) != roles.end()) q.dataset_ids.push_back(input.input_id);
  }
  if (q.dataset_ids.empty()) return;
  for (const auto& input : repository.find_visible(std::move(q))) {
    out.push_back({.id = id,
                   .access_url = datalink_url(base_url, repository.publisher_did(input.dataset_id)),
                   .semantics = semantics,
                   .description = fmt::format("{} {} ({})", repo::to_string(input.type), input.dataset_id,
                                              std::string_view(semantics).substr(1)),
                   .content_type = std::string(kDatalinkFormat),
                   .content_qualifier = "image"});
  }
}

http::Response not_found_response() { return dali::error_response(404, "NotFoundFault: no such dataset"); }

}  // namespace

const std::vector<votable::Field>& datalink_fields() {
  static const std::vector<votable::Field> kFields = [] {
    std::vector<votable::Field> f{
        text_field("ID", "meta.id;meta.main", "The identifier the links are for, as given"),
        text_field("access_url", "meta.ref.url", "URL of the linked resource"),
        text_field("service_def", "meta.ref", "ID of the service descriptor RESOURCE to use"),
        text_field("error_message", "meta.code.error", "Why there is no link for this ID"),
        text_field("semantics", "meta.code", "What the link is, from the IVOA DataLink vocabulary"),
        text_field("description", "meta.note", "Human-readable description of the link"),
        text_field("content_type", "meta.code.mime", "MIME type of the linked resource"),
    };
    votable::Field length;
    length.name = length.id = "content_length";
    length.datatype = votable::Datatype::long_;
    length.unit = "byte";
    length.ucd = "phys.size;meta.file";
    length.description = "Size of the linked resource";
    f.push_back(std::move(length));
    f.push_back(text_field("content_qualifier", "meta.code.class", "Product type of the linked resource"));
    f.push_back(text_field("local_semantics", "meta.code", "Service-specific kind of link"));
    f.push_back(text_field("link_auth", "meta.code", "Whether authentication is needed: false, optional, true"));
    votable::Field authorized;
    authorized.name = authorized.id = "link_authorized";
    authorized.datatype = votable::Datatype::boolean;
    authorized.ucd = "meta.code";
    authorized.description = "Whether the caller may follow the link";
    f.push_back(std::move(authorized));
    return f;
  }();
  return kFields;
}

std::vector<votable::Value> link_row(const Link& link) {
  const bool error = !link.error_message.empty();
  return {
      votable::Value(link.id),
      votable::text_or_null(link.access_url),
      votable::text_or_null(link.service_def),
      votable::text_or_null(link.error_message),
      // DataLink: an error row still has the #this semantics.
      votable::Value(error ? std::string("#this") : link.semantics),
      votable::text_or_null(link.description),
      votable::text_or_null(link.content_type),
      link.content_length ? votable::Value(*link.content_length) : votable::Value(),
      votable::text_or_null(link.content_qualifier),
      votable::text_or_null(link.local_semantics),
      error ? votable::Value() : votable::Value("false"),
      error ? votable::Value() : votable::Value(true),
  };
}

std::string file_url(const std::string& base_url, const std::string& dataset_id) {
  return base_url + "/api/files/" + http::percent_encode(dataset_id);
}

std::vector<Link> links_of(SharedRepository& repository, const std::string& id, const std::string& base_url) {
  const auto dataset_id = repository.dataset_id_from(id);
  const auto record = dataset_id ? repository.find_visible_by_id(*dataset_id) : std::nullopt;
  if (!record) return {{.id = id, .error_message = not_found(id)}};

  const std::string type(repo::to_string(record->type));
  std::vector<Link> out;
  out.push_back({.id = id,
                 .access_url = file_url(base_url, record->dataset_id),
                 .semantics = "#this",
                 .description = fmt::format("The {} image {} (FITS)", type, record->dataset_id),
                 .content_type = record->content_type,
                 .content_length = record->file_size,
                 .content_qualifier = "image",
                 .local_semantics = type});
  out.push_back({.id = id,
                 .access_url = file_url(base_url, record->dataset_id) + "/preview.png",
                 .semantics = "#preview",
                 .description = "PNG preview (asinh stretch, at most 512 pixels on a side)",
                 .content_type = "image/png",
                 .content_qualifier = "image"});
  out.push_back({.id = id,
                 .service_def = std::string(kSodaDescriptorId),
                 .semantics = "#cutout",
                 .description = "Cutout of the image by position, circle, polygon or pixel section (SODA)",
                 .content_type = "application/fits",
                 .content_qualifier = "image"});
  if (repo::is_coadd(record->type)) add_inputs(repository, *record, id, base_url, {"input"}, "#progenitor", out);
  add_inputs(repository, *record, id, base_url, {"raw"}, "#derivation", out);
  add_inputs(repository, *record, id, base_url, {"bias", "flat"}, "#calibration", out);
  return out;
}

dali::Service datalink_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               std::vector<dali::AvailabilityCheck> checks) {
  std::vector<dali::ParamSpec> params{
      {.name = "ID",
       .type = dali::ParamType::text,
       .description = "Publisher DID (obs_publisher_did) or dataset ID of a dataset; repeat for several.",
       .ucd = "meta.id;meta.main",
       .multiple = true,
       .required = true,
       .example = "ivo://pixserve.example/repo?DR1.calexp.v1000000.d004",
       .standard = true},
  };
  for (auto& r : dali::result_params(limits)) params.push_back(std::move(r));
  dali::Endpoint links{
      .path = "links",
      .summary = "Links of datasets: file, preview, cutout service, provenance and calibrations (DataLink 1.1)",
      .description = "For each ID: #this (the FITS file), #preview (PNG), #cutout (SODA service descriptor), "
                     "#progenitor (coadd inputs), #derivation (the raw of a calexp), #calibration (bias and flat). "
                     "Unknown IDs get an error_message row; the call does not fail.",
      .params = std::move(params),
      .standard_id = "ivo://ivoa.net/std/DataLink#links-1.1",
      .interface_version = "1.1",
  };
  links.handler = [repository, limits](const http::Request& request, const dali::ParsedParams& params) {
    const std::string base = request.base_url();
    auto rows = std::make_shared<std::vector<Link>>();
    for (const auto& id : params.all_as<std::string>("ID")) {
      auto links_of_id = links_of(*repository, id, base);
      std::move(links_of_id.begin(), links_of_id.end(), std::back_inserter(*rows));
    }
    return dali::table_response(
        params, limits,
        {.name = "links",
         .description = "DataLink links",
         .fields = datalink_fields(),
         .rows =
             [rows](const dali::RowSink& emit) {
               for (const auto& link : *rows) {
                 if (!emit(link_row(link))) return;
               }
             },
         .more_resources =
             [base](votable::VotableWriter& writer) {
               dali::write_service_descriptor(writer, soda_sync_declaration(),
                                              {.id = std::string(kSodaDescriptorId),
                                               .access_url = base + std::string(kSodaSyncPath),
                                               .description = "SODA sync cutouts of the dataset in the ID column",
                                               .refs = {{"ID", "ID"}}});
             }});
  };
  return dali::Service{
      .name = "datalink",
      .title = "Dataset links (DataLink 1.1)",
      .description = "The files, previews, cutout service, progenitors and calibrations of each dataset.",
      .endpoints = {std::move(links)},
      .checks = std::move(checks),
  };
}

void add_file_routes(http::Router& router, std::shared_ptr<SharedRepository> repository) {
  // The ID is looked up in the registry (safe identifiers only) and the path
  // comes from the record: a request never names a path.
  router.get("/api/files/{id}", [repository](const http::Request& request) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")));
    if (!record) return not_found_response();
    auto response = http::serve_file(request, repository->file_of(*record), record->content_type);
    response.headers.set("Content-Disposition", fmt::format("inline; filename=\"{}.fits\"", record->dataset_id));
    return response;
  });
  router.get("/api/files/{id}/preview.png", [repository](const http::Request& request) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")));
    if (!record) return not_found_response();
    try {
      const auto png = cached_preview(repository->root(), record->dataset_id, repository->file_of(*record));
      return http::serve_file(request, png, "image/png");
    } catch (const std::exception& e) {
      spdlog::warn("preview of {} failed: {}", record->dataset_id, e.what());
      return dali::error_response(404, "NotFoundFault: no preview for this dataset");
    }
  });
}

}  // namespace pixserve::services
