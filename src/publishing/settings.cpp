#include "publishing/settings.hpp"

#include <algorithm>
#include <array>
#include <sstream>
#include <string_view>

namespace pixserve::publishing {

std::string hips_status_problem(const std::string& status) {
  // HiPS 1.0 section 4.4.1: one word of each group at most, in any order.
  static constexpr std::array<std::array<std::string_view, 3>, 3> kGroups{{
      {"public", "private", ""},
      {"master", "mirror", "partial"},
      {"clonable", "unclonable", "clonableOnce"},
  }};
  std::array<bool, kGroups.size()> seen{};
  std::istringstream words(status);
  bool any = false;
  for (std::string word; words >> word;) {
    any = true;
    std::size_t group = kGroups.size();
    for (std::size_t g = 0; g < kGroups.size(); ++g) {
      if (std::find(kGroups[g].begin(), kGroups[g].end(), word) != kGroups[g].end() && !word.empty()) group = g;
    }
    if (group == kGroups.size()) {
      return "'" + word + "' is not a hips_status word (public|private, master|mirror|partial, "
                          "clonable|unclonable|clonableOnce)";
    }
    if (seen[group]) return "'" + status + "' has two words of the same kind";
    seen[group] = true;
  }
  return any ? std::string() : "expected words such as 'public master clonableOnce'";
}

const settings::Section<PublishingSettings>& publishing_section() {
  using namespace settings;
  // The vocabulary of VODataService 1.2's waveband (IVOA messenger vocabulary).
  static constexpr std::array<std::string_view, 12> kWavebands{
      "Radio", "Millimeter", "Infrared", "Optical", "UV", "EUV", "X-ray", "Gamma-ray",
      "Neutrino", "Gravitational-wave", "Photon", "Particle"};
  static const auto section = make_section<PublishingSettings>(
      "publishing",
      "The VO registry records of the services, harvested by the IVOA registries over OAI-PMH at "
      "/api/registry/oai (docs/registry.md).",
      {
          text("organisation", &PublishingSettings::organisation,
               "title of the organisation publishing the services (its vr:Organisation record); empty: the "
               "repository's authority")
              .with_example("Example Observatory Data Centre"),
          text("publisher", &PublishingSettings::publisher,
               "the publisher every record names; empty: the organisation")
              .with_example("Example Observatory Data Centre"),
          text("contact_name", &PublishingSettings::contact_name,
               "whom users of the services contact; empty: the organisation's help desk")
              .with_example("Archive help desk"),
          text("contact_email", &PublishingSettings::contact_email,
               "their email address, also the OAI-PMH adminEmail (registries ask for one); empty: "
               "registry@<authority>")
              .with_example("archive@example.org")
              .with_check([](PublishingSettings& p) {
                const auto at = p.contact_email.find('@');
                return p.contact_email.empty() || (at != std::string::npos && at > 0 && at + 1 < p.contact_email.size())
                           ? std::string()
                           : "expected an email address, got '" + p.contact_email + "'";
              }),
          text("creator", &PublishingSettings::creator,
               "who made the data (the survey's team); empty: the organisation")
              .with_example("The Example Survey collaboration"),
          list("subjects", &PublishingSettings::subjects,
               "subjects of every record (Unified Astronomy Thesaurus concepts)")
              .with_check([](PublishingSettings& p) {
                return p.subjects.empty() ? std::string("give at least one subject") : std::string();
              }),
          text("description", &PublishingSettings::description,
               "what the survey is, opening every record's description; empty: the server's description")
              .with_example("Images of the Example Survey: raw exposures, calibrated visits and coadds."),
          text("reference_url", &PublishingSettings::reference_url,
               "page about the survey and its services (content/referenceURL); empty: the server's landing page")
              .with_example("https://example.org/survey"),
          list("waveband", &PublishingSettings::wavebands, "wavebands of the data (VODataService vocabulary)")
              .with_check([](PublishingSettings& p) {
                for (const auto& w : p.wavebands) {
                  if (std::find(kWavebands.begin(), kWavebands.end(), w) == kWavebands.end()) {
                    return "'" + w + "' is not a waveband (Radio, Millimeter, Infrared, Optical, UV, EUV, X-ray, "
                                     "Gamma-ray, ...)";
                  }
                }
                return std::string();
              }),
          text("registry_short_name", &PublishingSettings::registry_short_name,
               "shortName of the registry's own record (16 characters at most)")
              .with_check([](PublishingSettings& p) {
                return !p.registry_short_name.empty() && p.registry_short_name.size() <= 16
                           ? std::string()
                           : "expected 1 to 16 characters";
              }),
          integer("page_size", &PublishingSettings::page_size, {.max = 10000, .min = 1},
                  "records in one ListRecords or ListIdentifiers answer; the rest follow a resumptionToken"),
          text("hips_status_public", &PublishingSettings::hips_status_public,
               "hips_status of the public HiPS maps (/api/hips/<map>): whether the CDS HiPS network may mirror them")
              .with_check([](PublishingSettings& p) { return hips_status_problem(p.hips_status_public); }),
          text("hips_status_rights", &PublishingSettings::hips_status_rights,
               "hips_status of the data-rights HiPS maps (/api/hips/full/<map>)")
              .with_check([](PublishingSettings& p) { return hips_status_problem(p.hips_status_rights); }),
      });
  return section;
}

}  // namespace pixserve::publishing
