// What the VO registry records of the services say about who publishes
// them (section `publishing` of the configuration file): the organisation,
// its contact, the survey's subjects and wavebands, the OAI-PMH page size,
// and the hips_status the HiPS maps announce. The defaults are the member
// initialisers; publishing_section() declares the keys
// (settings/settings.hpp).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "settings/settings.hpp"

namespace pixserve::publishing {

struct PublishingSettings {
  std::string organisation{};   // vr:Organisation title; empty: the authority
  std::string publisher{};      // curation/publisher of every record; empty: the organisation
  std::string contact_name{};   // empty: "<organisation> help desk"
  std::string contact_email{};  // empty: no email (harvesting registries ask for one)
  std::string creator{};        // curation/creator; empty: the organisation
  std::vector<std::string> subjects{"Sky surveys", "Direct imaging"};
  std::string description{};    // of the survey, before each service's own; empty: the server's
  std::string reference_url{};  // content/referenceURL; empty: the server's landing page
  std::vector<std::string> wavebands{"Optical"};
  std::string registry_short_name = "pixserve reg";
  std::size_t page_size = 100;  // records of one ListRecords / ListIdentifiers answer
  std::string hips_status_public = "public master clonableOnce";
  std::string hips_status_rights = "private master unclonable";
  friend bool operator==(const PublishingSettings&, const PublishingSettings&) = default;
};

const settings::Section<PublishingSettings>& publishing_section();

// Why a HiPS 1.0 hips_status value is refused ("public master clonableOnce"),
// or empty.
std::string hips_status_problem(const std::string& status);

}  // namespace pixserve::publishing
