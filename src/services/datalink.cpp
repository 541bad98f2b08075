#include "services/datalink.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/policy.hpp"
#include "dali/descriptor.hpp"
#include "db/database.hpp"
#include "fits/fits.hpp"
#include "http/files.hpp"
#include "http/params.hpp"
#include "repo/astro_units.hpp"
#include "repo/coadd_mosaics.hpp"
#include "repo/dataset.hpp"
#include "services/links.hpp"
#include "services/photometry.hpp"
#include "services/preview.hpp"
#include "services/sia.hpp"
#include "services/soda_params.hpp"

namespace pixserve::services {
namespace {

constexpr std::string_view kSodaDescriptorId = "soda-sync";
constexpr std::string_view kPhotometryDescriptorId = "photometry-sync";

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

// The error row of an unknown ID (DataLink 1.0 section 3.4).
std::string not_found(const std::string& id) {
  return dali::error_text(dali::NotFound(id + " is not a known dataset"), dali::ErrorVocabulary::datalink);
}

// The provenance of a dataset in the DataLink core vocabulary
// (http://www.ivoa.net/rdf/datalink/core): what it was made from, including
// calibrations already applied to it, is #progenitor; what was made from it
// is #derivation; calibrations that can still be applied to it (a raw's bias
// and flat) are #bias and #flat (narrower terms of #calibration).
// local_semantics says which kind of relative each link is.
struct RelatedDataset {
  std::string dataset_id;
  std::string semantics;
  std::string local_semantics;
};

std::string local_semantics_of_input(std::string_view role) {
  if (role == "input") return "coadd-input";
  if (role == "compressed-from") return "uncompressed";
  return std::string(role);
}

// What was made from `record` and what it was made from, with the
// calibrations a raw can still take from the calexp made of it.
std::vector<RelatedDataset> related_datasets(SharedRepository& repository, const repo::DatasetRecord& record) {
  std::vector<RelatedDataset> related;
  for (const auto& input : record.inputs)
    related.push_back({input.input_id, "#progenitor", local_semantics_of_input(input.role)});
  const auto outputs = repository.read([&](repo::Registry& registry) {
    std::vector<std::pair<std::string, std::vector<repo::ProvenanceLink>>> found;
    for (auto& output : registry.outputs_of(record.dataset_id))
      found.emplace_back(output, record.type == repo::DatasetType::raw ? registry.inputs_of(output)
                                                                         : std::vector<repo::ProvenanceLink>{});
    return found;
  });
  for (const auto& [output, its_inputs] : outputs) {
    related.push_back({output, "#derivation", "made-from-this"});
    for (const auto& calibration : its_inputs)
      if (calibration.role == "bias" || calibration.role == "flat")
        related.push_back({calibration.input_id, "#" + calibration.role, calibration.role});
  }
  return related;
}

// Links to the related datasets the caller may see, each to its own links
// (it has its own #this), in the order of `related` with duplicates dropped.
void add_related(SharedRepository& repository, const repo::DatasetRecord& record, const std::string& id,
                 const std::string& base_url, const auth::Identity& caller, std::vector<Link>& out) {
  const auto related = related_datasets(repository, record);
  repo::DatasetQuery q;
  for (const auto& r : related) q.dataset_ids.push_back(r.dataset_id);
  if (q.dataset_ids.empty()) return;
  std::map<std::string, repo::DatasetRecord, std::less<>> visible;
  for (auto& v : repository.find_visible(std::move(q), caller)) visible.emplace(v.dataset_id, std::move(v));
  std::set<std::pair<std::string, std::string>> seen;
  const double now = repo::mjd_now();
  for (const auto& r : related) {
    const auto found = visible.find(r.dataset_id);
    if (found == visible.end() || !seen.emplace(r.dataset_id, r.semantics).second) continue;
    out.push_back({.id = id,
                   .access_url = datalink_url(base_url, repository.publisher_did(r.dataset_id)),
                   .semantics = r.semantics,
                   .description = fmt::format("{} {} ({})", repo::to_string(found->second.type), r.dataset_id,
                                              r.local_semantics),
                   .content_type = std::string(kDatalinkFormat),
                   .content_qualifier = "image",
                   .local_semantics = r.local_semantics,
                   .needs_auth = !auth::may_read(auth::Identity{}, found->second, now)});
  }
}

// Every HDU's header as stored, one 80-column card per line, each HDU ended
// by END and a blank line (the form of `fitsheader`-style listings).
std::string fits_header_text(const std::filesystem::path& path) {
  auto file = fits::File::open(path);
  std::string text;
  const int hdus = file.hdu_count();
  for (int hdu = 1; hdu <= hdus; ++hdu) {
    file.move_to_hdu(hdu);
    int nkeys = 0;
    const std::string records = file.stored_header_records(nkeys);
    for (int i = 0; i < nkeys; ++i) {
      std::string card = records.substr(static_cast<size_t>(i) * 80, 80);
      card.erase(card.find_last_not_of(' ') + 1);
      text += card;
      text += '\n';
    }
    text += "END\n\n";
  }
  return text;
}

dali::NotFound no_such_dataset() { return dali::NotFound("no such dataset"); }

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
      error ? votable::Value() : votable::Value(link.needs_auth ? "true" : "false"),
      error ? votable::Value() : votable::Value(true),
  };
}

std::string file_url(const std::string& base_url, const std::string& dataset_id) {
  return base_url + links::files() + "/" + http::percent_encode(dataset_id);
}

std::vector<Link> links_of(SharedRepository& repository, const std::string& id, const std::string& base_url,
                           const auth::Identity& caller) {
  const auto dataset_id = repository.dataset_id_from(id);
  const auto record = dataset_id ? repository.find_visible_by_id(*dataset_id, caller) : std::nullopt;
  if (!record) return {{.id = id, .error_message = not_found(id)}};

  const std::string type(repo::to_string(record->type));
  std::vector<Link> out;
  if (repo::is_coadd_mosaic(*record)) {
    // No file: any region of it, as one image, through SODA.
    out.push_back({.id = id,
                   .service_def = std::string(kSodaDescriptorId),
                   .semantics = "#cutout",
                   .description = fmt::format("Mosaic of any region of the {} coadd of band {} across patches and tracts "
                                              "(SODA; optional GRID_CENTER, GRID_SCALE, GRID_ROTATION, KERNEL)",
                                              type, record->data_id.band),
                   .content_type = "application/fits",
                   .content_qualifier = "image"});
    out.push_back({.id = id,
                   .access_url = file_url(base_url, record->dataset_id) + "/recipe",
                   .semantics = "#provenance",
                   .description = "The patches this logical coadd stands for, by dataset ID and checksum (JSON)",
                   .content_type = "application/json",
                   .local_semantics = "recipe"});
    const bool needs_auth = !auth::may_read(auth::Identity{}, *record, repo::mjd_now());
    for (auto& link : out) link.needs_auth = needs_auth;
    return out;
  }
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
  if (record->type == repo::DatasetType::calexp || record->type == repo::DatasetType::calexp_comp ||
      record->type == repo::DatasetType::diffim) {
    out.push_back({.id = id,
                   .service_def = std::string(kPhotometryDescriptorId),
                   .semantics = "#proc",
                   .description = "Forced photometry on this image at any positions (aperture or PSF; POS ra dec)",
                   .content_type = "application/x-votable+xml",
                   .local_semantics = "forced-photometry"});
  }
  out.push_back({.id = id,
                 .access_url = file_url(base_url, record->dataset_id) + "/header",
                 .semantics = "#detached-header",
                 .description = "The FITS headers of every HDU, as text",
                 .content_type = "text/plain",
                 .local_semantics = "fits-header"});
  if (record->storage == repo::Storage::virtual_) {
    out.push_back({.id = id,
                   .access_url = file_url(base_url, record->dataset_id) + "/recipe",
                   .semantics = "#provenance",
                   .description = "How this product is re-created on request: its inputs by dataset ID and checksum, "
                                  "the algorithm and software versions, the configuration, and what its last "
                                  "re-creation measured (JSON)",
                   .content_type = "application/json",
                   .local_semantics = "recipe"});
  }
  // The dataset's own links need credentials when it is not public.
  const bool needs_auth = !auth::may_read(auth::Identity{}, *record, repo::mjd_now());
  for (auto& link : out) link.needs_auth = needs_auth;
  add_related(repository, *record, id, base_url, caller, out);
  return out;
}

dali::Endpoint datalink_links_declaration(const dali::ResultLimits& limits) {
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
                     "#detached-header (the FITS headers as text), #progenitor (what it was made from: the raw, bias "
                     "and flat of a calexp, the calexps of a coadd), #derivation (what was made from it), and for a "
                     "raw the #bias and #flat that calibrate it. "
                     "Unknown IDs get an error_message row; the call does not fail.",
      .params = std::move(params),
      .standard_id = "ivo://ivoa.net/std/DataLink#links-1.1",
      .interface_version = "1.1",
  };
  return links;
}

void write_datalink_descriptor(votable::VotableWriter& writer, const dali::ResultLimits& limits,
                               const std::string& base_url, const std::string& id_field) {
  dali::write_service_descriptor(writer, datalink_links_declaration(limits),
                                 {.id = std::string(kDatalinkDescriptorId),
                                  .access_url = base_url + links::endpoint(links::kDatalink, "links"),
                                  .description = "DataLink links of the dataset in the column " + id_field,
                                  .refs = {{"ID", id_field}},
                                  .omit = {"MAXREC", "RESPONSEFORMAT"}});
}

dali::Service datalink_service(std::shared_ptr<SharedRepository> repository, const dali::ResultLimits& limits,
                               const PhotometryLimits& photometry_limits, std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint links = datalink_links_declaration(limits);
  links.handler = [repository, limits, photometry_limits](const http::Request& request,
                                                          const dali::ParsedParams& params) {
    const std::string base = request.base_url();
    auto rows = std::make_shared<std::vector<Link>>();
    for (const auto& id : params.all_as<std::string>("ID")) {
      auto links_of_id = links_of(*repository, id, base, params.caller());
      std::move(links_of_id.begin(), links_of_id.end(), std::back_inserter(*rows));
    }
    const bool photometry = std::any_of(rows->begin(), rows->end(), [](const Link& link) {
      return link.service_def == kPhotometryDescriptorId;
    });
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
             [base, limits, photometry, photometry_limits](votable::VotableWriter& writer) {
               dali::write_service_descriptor(writer, soda_sync_declaration(),
                                              {.id = std::string(kSodaDescriptorId),
                                               .access_url = base + links::endpoint(links::kSoda, "sync"),
                                               .description = "SODA sync cutouts of the dataset in the ID column",
                                               .refs = {{"ID", "ID"}}});
               // Only when a row offers it: a raw's or a coadd's links do not.
               if (!photometry) return;
               dali::write_service_descriptor(
                   writer, photometry_sync_declaration(limits, photometry_limits),
                   {.id = std::string(kPhotometryDescriptorId),
                    .access_url = base + links::endpoint(links::kPhotometry, "sync"),
                    .description = "Forced photometry on the image in the ID column at the positions POS",
                    .refs = {{"ID", "ID"}}});
             }});
  };
  return dali::Service{
      .name = std::string(links::kDatalink),
      .title = "Dataset links (DataLink 1.1)",
      .description = "The files, previews, cutout service, progenitors and calibrations of each dataset.",
      .endpoints = {std::move(links)},
      .checks = std::move(checks),
      .live_examples =
          [repository] {
            const auto record = example_dataset(*repository);
            return dali::RawParams{{"ID", record ? repository->publisher_did(record->dataset_id) : std::string()}};
          },
  };
}

void add_file_routes(http::Router& router, std::shared_ptr<SharedRepository> repository, dali::IdentifyHook identify) {
  // The ID is looked up in the registry (safe identifiers only) and the path
  // comes from the record: a request never names a path.
  router.get(links::files() + "/{id}", dali::with_identity(identify, [repository](const http::Request& request, const auth::Identity& caller) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")), caller);
    if (!record) throw no_such_dataset();
    auto response = http::serve_file(request, repository->file_of(*record), record->content_type);
    response.headers.set("Content-Disposition", fmt::format("inline; filename=\"{}.fits\"", record->dataset_id));
    return response;
  }, dali::ErrorVocabulary::datalink));
  router.get(links::files() + "/{id}/header", dali::with_identity(identify, [repository](const http::Request& request, const auth::Identity& caller) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")), caller);
    if (!record) throw no_such_dataset();
    try {
      return http::Response::text(200, fits_header_text(repository->file_of(*record)), "text/plain; charset=us-ascii");
    } catch (const dali::DaliError&) {
      throw;  // a virtual product that cannot be re-created, a logical coadd: they say why
    } catch (const db::Unavailable&) {
      throw;  // the database is away (re-creating a virtual product looks up its inputs)
    } catch (const std::exception& e) {
      spdlog::warn("headers of {} unreadable: {}", record->dataset_id, e.what());
      throw dali::NotFound("the file of this dataset cannot be read");
    }
  }, dali::ErrorVocabulary::datalink));
  // A virtual product's recipe and kept measurements: its provenance in
  // the survey's sense (inputs, pipeline parameters, software versions).
  router.get(links::files() + "/{id}/recipe", dali::with_identity(identify, [repository](const http::Request& request, const auth::Identity& caller) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")), caller);
    if (!record) throw no_such_dataset();
    if (record->storage != repo::Storage::virtual_) {
      throw dali::NotFound(record->dataset_id + " is a stored file: it has no recipe");
    }
    nlohmann::json doc = {{"dataset_id", record->dataset_id},
                          {"recipe_hash", record->checksum},
                          {"recipe", nlohmann::json::parse(record->recipe)}};
    const auto measured = repository->product_measurements(*record);
    doc["measurements"] = measured ? *measured : nlohmann::json(nullptr);
    return http::Response::text(200, doc.dump(2) + "\n", "application/json");
  }, dali::ErrorVocabulary::datalink));
  router.get(links::files() + "/{id}/preview.png", dali::with_identity(identify, [repository](const http::Request& request, const auth::Identity& caller) {
    const auto record = repository->find_visible_by_id(std::string(request.path_param("id")), caller);
    if (!record) throw no_such_dataset();
    try {
      const auto png = cached_preview(repository->root(), record->dataset_id, repository->file_of(*record));
      return http::serve_file(request, png, "image/png");
    } catch (const dali::DaliError&) {
      throw;  // a virtual product that cannot be re-created, a logical coadd: they say why
    } catch (const db::Unavailable&) {
      throw;  // the database is away (re-creating a virtual product looks up its inputs)
    } catch (const std::exception& e) {
      spdlog::warn("preview of {} failed: {}", record->dataset_id, e.what());
      throw dali::NotFound("no preview for this dataset");
    }
  }, dali::ErrorVocabulary::datalink));
}

}  // namespace pixserve::services
