#include "publishing/voresource.hpp"

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "dali/directory.hpp"
#include "dali/vosi.hpp"

namespace pixserve::publishing {
namespace {


// What every record shares, resolved once per request.
struct Common {
  const Publisher* publisher = nullptr;
  std::string base_url;
  std::string organisation;  // title
  std::string publisher_name;
  std::string creator;
  std::string contact_name;
  std::string contact_email;
  std::string description;  // of the survey
  std::string reference_url;
  Clock::time_point updated{};  // of the service records: when this server took its configuration

  std::string id(std::string_view name) const {
    return name.empty() ? "ivo://" + publisher->authority : "ivo://" + publisher->authority + "/" + std::string(name);
  }
};

void text_element(pugi::xml_node parent, const char* name, std::string_view text) {
  parent.append_child(name).text().set(std::string(text).c_str());
}

std::string short_name(std::string text) {
  // VOResource: at most 16 characters.
  if (text.size() > 16) text.resize(16);
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

std::string upper(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// <ri:Resource> with the namespaces its xsi:type values and copied
// capabilities use. xmlns="" because VOResource's elements are unqualified
// and the record sits inside OAI-PMH's default namespace.
pugi::xml_node resource_element(pugi::xml_node parent, std::string_view type, Clock::time_point created,
                                Clock::time_point updated) {
  auto r = parent.append_child("ri:Resource");
  r.append_attribute("xmlns") = "";
  r.append_attribute("xmlns:ri") = std::string(dali::registry_interface_ns).c_str();
  r.append_attribute("xmlns:vr") = std::string(dali::voresource_ns).c_str();
  r.append_attribute("xmlns:vs") = std::string(dali::vodataservice_ns).c_str();
  r.append_attribute("xmlns:vg") = std::string(dali::voregistry_ns).c_str();
  r.append_attribute("xmlns:tr") = std::string(dali::tapregext_ns).c_str();
  r.append_attribute("xmlns:sia") = std::string(dali::sia_ns).c_str();
  r.append_attribute("xmlns:xsi") = std::string(dali::xsi_ns).c_str();
  r.append_attribute("xsi:schemaLocation") =
      fmt::format("{0} {0} {1} {1} {2} {2} {3} {3} {4} {4} {5} {5}", dali::registry_interface_ns,
                  dali::voresource_ns, dali::vodataservice_ns, dali::voregistry_ns, dali::tapregext_ns, dali::sia_ns)
          .c_str();
  r.append_attribute("xsi:type") = std::string(type).c_str();
  r.append_attribute("created") = format_datestamp(std::min(created, updated)).c_str();
  r.append_attribute("updated") = format_datestamp(updated).c_str();
  r.append_attribute("status") = "active";
  return r;
}

void identity(pugi::xml_node r, std::string_view title, std::string_view short_text, std::string_view identifier) {
  text_element(r, "title", title);
  if (!short_text.empty()) text_element(r, "shortName", short_name(std::string(short_text)));
  text_element(r, "identifier", identifier);
}

void curation(pugi::xml_node r, const Common& c) {
  auto cur = r.append_child("curation");
  auto pub = cur.append_child("publisher");
  pub.append_attribute("ivo-id") = c.id("org").c_str();
  pub.text().set(c.publisher_name.c_str());
  text_element(cur.append_child("creator"), "name", c.creator);
  auto contact = cur.append_child("contact");
  text_element(contact, "name", c.contact_name);
  if (!c.contact_email.empty()) text_element(contact, "email", c.contact_email);
}

struct Relation {
  std::string type;  // VOResource 1.1 relationship type, e.g. "IsServedBy"
  std::string ivo_id;
  std::string name;
};

void content(pugi::xml_node r, const Common& c, std::string_view own_description, std::string_view type,
             const std::vector<Relation>& relations = {}) {
  auto con = r.append_child("content");
  for (const auto& s : c.publisher->settings.subjects) text_element(con, "subject", s);
  std::string description = c.description;
  if (!own_description.empty()) description += (description.empty() ? "" : "\n\n") + std::string(own_description);
  text_element(con, "description", description);
  text_element(con, "referenceURL", c.reference_url);
  if (!type.empty()) text_element(con, "type", type);
  text_element(con, "contentLevel", "Research");
  for (const auto& rel : relations) {
    auto e = con.append_child("relationship");
    text_element(e, "relationshipType", rel.type);
    auto related = e.append_child("relatedResource");
    related.append_attribute("ivo-id") = rel.ivo_id.c_str();
    related.text().set(rel.name.c_str());
  }
}

void coverage(pugi::xml_node r, const Common& c, const std::string& footprint_url, const std::string& footprint_id) {
  auto cov = r.append_child("coverage");
  if (!footprint_url.empty()) {
    auto f = cov.append_child("footprint");
    if (!footprint_id.empty()) f.append_attribute("ivo-id") = footprint_id.c_str();
    f.text().set(footprint_url.c_str());
  }
  for (const auto& w : c.publisher->settings.wavebands) text_element(cov, "waveband", w);
}

// Copies the capabilities of a VOSI capabilities document into the record,
// with the namespace declarations they rely on. The SIA query capability
// becomes the sia:SimpleImageAccess SimpleDALRegExt defines for registry
// records, with its required imageServiceType.
void copy_capabilities(pugi::xml_node r, const std::string& capabilities_xml, const Common& c) {
  pugi::xml_document doc;
  if (!doc.load_buffer(capabilities_xml.data(), capabilities_xml.size())) {
    throw std::runtime_error("a service's capabilities document does not parse");
  }
  const auto root = doc.document_element();
  for (const auto& a : root.attributes()) {
    const std::string_view name = a.name();
    if (name.starts_with("xmlns:") && !r.attribute(a.name())) r.append_attribute(a.name()) = a.value();
  }
  for (const auto& cap : root.children("capability")) {
    auto copy = r.append_copy(cap);
    if (std::string_view(cap.attribute("standardID").value()) == kSiaQueryStandardId) {
      copy.prepend_attribute("xsi:type") = "sia:SimpleImageAccess";
      // The survey's images are stored frames (visits, coadd patches)
      // found by position: SIA's "Pointed".
      text_element(copy, "imageServiceType", "Pointed");
      if (c.publisher->max_records > 0) text_element(copy, "maxRecords", std::to_string(c.publisher->max_records));
    }
  }
}

void copy_tableset(pugi::xml_node r, const std::string& tables_xml) {
  pugi::xml_document doc;
  if (!doc.load_buffer(tables_xml.data(), tables_xml.size())) {
    throw std::runtime_error("a service's tables document does not parse");
  }
  auto tableset = r.append_child("tableset");
  for (const auto& schema : doc.document_element().children("schema")) tableset.append_copy(schema);
}

Record service_record(const dali::ServiceCatalog& catalog, const http::Request& request, const dali::Service& service,
                      std::shared_ptr<const Common> common) {
  const std::string identifier = common->id(service.name);
  return Record{
      .identifier = identifier,
      .datestamp = common->updated,
      .write =
          [&catalog, &request, &service, common, identifier](pugi::xml_node parent) {
            const Common& c = *common;
            const Publisher& p = *c.publisher;
            auto r = resource_element(parent, service.tables ? "vs:CatalogService" : "vs:DataService", p.created,
                                      c.updated);
            identity(r, fmt::format("{}: {}", p.repository_name, service.title),
                     fmt::format("{} {}", p.repository_name, upper(service.name)).size() <= 16
                         ? fmt::format("{} {}", p.repository_name, upper(service.name))
                         : upper(service.name),
                     identifier);
            curation(r, c);
            content(r, c, service.description, "Survey");
            copy_capabilities(r, dali::service_capabilities(catalog, service, request), c);
            const bool footprint = !p.coverage_service.empty() && catalog.find(p.coverage_service) != nullptr;
            coverage(r, c, footprint ? c.base_url + p.coverage_path : std::string(),
                     footprint ? c.id(p.coverage_service) : std::string());
            if (service.tables) {
              const auto res = service.tables(request);
              if (res.status != 200) throw std::runtime_error("the TAP tables document failed");
              copy_tableset(r, dali::response_text(res));
            }
          },
  };
}

Record hips_record(const HipsMap& map, std::shared_ptr<const Common> common, std::string hips_service) {
  const std::string identifier = common->id(map.data_rights ? "hips/full/" + map.name : "hips/" + map.name);
  return Record{
      .identifier = identifier,
      .datestamp = map.updated,
      .write =
          [map, common, identifier, hips_service](pugi::xml_node parent) {
            const Common& c = *common;
            const Publisher& p = *c.publisher;
            auto r = resource_element(parent, "vs:CatalogService", p.created, map.updated);
            identity(r, map.data_rights ? map.title + " (all orders, data rights)" : map.title, map.name, identifier);
            curation(r, c);
            std::vector<Relation> relations;
            if (!hips_service.empty()) relations.push_back({"IsServedBy", c.id(hips_service), "HiPS all-sky maps"});
            content(r, c,
                    map.description.empty() ? fmt::format("HiPS 1.0 map {} of the survey.", map.name)
                                            : map.description,
                    "Survey", relations);
            auto cap = r.append_child("capability");
            cap.append_attribute("standardID") = std::string(kHipsStandardId).c_str();
            // hips_status tells the HiPS network whether it may mirror the
            // map; a capability has no element for it, so its description
            // carries it with the properties' URL.
            text_element(cap, "description",
                         fmt::format("HiPS 1.0 map; properties: {}/properties; hips_status: {}", map.url, map.status));
            dali::interface_element(cap, true, "1.0", map.url, "base");
            coverage(r, c, map.url + "/Moc.fits", {});
          },
  };
}

}  // namespace

RecordList registry_records(const dali::ServiceCatalog& catalog, const http::Request& request,
                            const Publisher& publisher, std::vector<HipsMap> maps) {
  const auto& s = publisher.settings;
  auto common = std::make_shared<Common>();
  common->publisher = &publisher;
  common->base_url = request.base_url();
  common->organisation = s.organisation.empty() ? publisher.authority : s.organisation;
  common->publisher_name = s.publisher.empty() ? common->organisation : s.publisher;
  common->creator = s.creator.empty() ? common->organisation : s.creator;
  common->contact_name = s.contact_name.empty() ? common->organisation + " help desk" : s.contact_name;
  common->contact_email = s.contact_email;
  common->description = s.description.empty() ? catalog.options().description : s.description;
  common->reference_url = s.reference_url.empty() ? common->base_url + publisher.landing_path : s.reference_url;
  common->updated = std::max(publisher.created, catalog.options().up_since);

  const std::string endpoint = common->base_url + publisher.endpoint_path;
  const auto fixed = [&](std::string name, std::function<void(pugi::xml_node, const Common&)> body) {
    return Record{.identifier = common->id(name),
                  .datestamp = common->updated,
                  .write = [common, body = std::move(body)](pugi::xml_node parent) { body(parent, *common); }};
  };

  RecordList list{
      .repository_name = fmt::format("{} publishing registry", common->organisation),
      .base_url = endpoint,
      .admin_emails = {s.contact_email.empty() ? "registry@" + publisher.authority : s.contact_email},
      .page_size = s.page_size,
      .records = {},
      .describe = {},
  };
  list.records.push_back(fixed("", [](pugi::xml_node parent, const Common& c) {
    auto r = resource_element(parent, "vg:Authority", c.publisher->created, c.updated);
    identity(r, fmt::format("The {} authority", c.publisher->authority), "", c.id(""));
    curation(r, c);
    content(r, c, fmt::format("The IVOA authority {} of the services of {}.", c.publisher->authority, c.organisation),
            "");
    auto org = r.append_child("managingOrg");
    org.append_attribute("ivo-id") = c.id("org").c_str();
    org.text().set(c.organisation.c_str());
  }));
  list.records.push_back(fixed("org", [](pugi::xml_node parent, const Common& c) {
    auto r = resource_element(parent, "vr:Organisation", c.publisher->created, c.updated);
    identity(r, c.organisation, "", c.id("org"));
    curation(r, c);
    content(r, c, fmt::format("{}, publisher of the survey's IVOA services.", c.organisation), "Organisation");
  }));
  const auto write_registry = [endpoint](pugi::xml_node parent, const Common& c) {
    auto r = resource_element(parent, "vg:Registry", c.publisher->created, c.updated);
    identity(r, fmt::format("{} publishing registry", c.organisation), c.publisher->settings.registry_short_name,
             c.id("registry"));
    curation(r, c);
    content(r, c, "The publishing registry of these services: their VOResource records over OAI-PMH.", "Registry");
    auto cap = r.append_child("capability");
    cap.append_attribute("xsi:type") = "vg:Harvest";
    cap.append_attribute("standardID") = std::string(kRegistryStandardId).c_str();
    text_element(cap, "description", "OAI-PMH 2.0 harvesting of the VOResource records (ivo_vor, set ivo_managed)");
    dali::interface_element(cap, true, "1.0", endpoint, "base", "vg:OAIHTTP");
    text_element(cap, "maxRecords", std::to_string(c.publisher->settings.page_size));
    text_element(r, "full", "false");
    text_element(r, "managedAuthority", c.publisher->authority);
  };
  list.records.push_back(fixed("registry", write_registry));
  list.describe = [common, write_registry](pugi::xml_node description) { write_registry(description, *common); };

  for (const auto& service : catalog.services()) {
    list.records.push_back(service_record(catalog, request, service, common));
  }
  // The HiPS maps' records say which service serves them.
  const std::string hips_service = catalog.find(publisher.hips_service) ? publisher.hips_service : std::string();
  std::stable_sort(maps.begin(), maps.end(),
                   [](const HipsMap& a, const HipsMap& b) { return a.data_rights < b.data_rights; });
  for (const auto& map : maps) list.records.push_back(hips_record(map, common, hips_service));
  return list;
}

}  // namespace pixserve::publishing
