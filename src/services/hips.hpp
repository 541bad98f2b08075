// HiPS serving: the HiPS trees made by `pixserve hips` as static files, one
// tree per map and audience (hips/generate.hpp):
//
//   /api/hips/<map>/...        the public tree, <root>/<map>: tiles up to
//                              public_max_order, the properties rewritten
//                              to say so (hips_order capped, hips_status
//                              public)
//   /api/hips/full/<map>/...   the data-rights tree, <root>/full/<map>,
//                              every order (hips_status private); access
//                              decided by HipsOptions::authorize_full
//
// A tree is served only at its audience's endpoint (its properties'
// pixserve_audience); a tree without one, made by an earlier version from
// every coadd whatever its rights, is never served.
//
// plus the DALI service "hips": /api/hips/list (the HiPS list of all maps)
// and /api/hips/progenitors?MAP=&ORDER=&NPIX= (the coadds under a HEALPix
// cell of a map, with DataLink access URLs). Only the files a HiPS tree
// defines are served (properties, index.html, Moc.fits, Norder*/Allsky.*,
// Norder*/Dir*/Npix*.{fits,png,jpg}, HpxFinder/...); every path element is
// checked, so nothing else under the root can be reached.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "http/router.hpp"
#include "publishing/settings.hpp"
#include "publishing/voresource.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"

namespace pixserve::services {

struct HipsOptions {
  HipsSettings settings{};  // root, public_max_order (full_access: see authorize_full)
  // Decides whether a request may use the full endpoint: returns normally
  // to allow, throws auth::AuthError (answered with its WWW-Authenticate
  // challenge) or dali::DaliError (401 or 403) to refuse. make_app sets it
  // from settings.full_access: "the caller holds data rights" unless the
  // operator opened the endpoint (open); empty: everyone is refused (403).
  std::function<void(const http::Request&)> authorize_full{};
  std::filesystem::path aladin_lite_dir{};  // aladin-lite's dist/ for /web/aladin-lite/; empty: not served
  // The hips_status the served properties (and the maps' registry records)
  // give each tree: publishing.hips_status_public and _rights.
  std::string status_public = publishing::PublishingSettings{}.hips_status_public;
  std::string status_rights = publishing::PublishingSettings{}.hips_status_rights;
};

// The "hips" DALI service (list, progenitors).
dali::Service hips_service(std::shared_ptr<SharedRepository> repository, const HipsOptions& options,
                           const dali::ResultLimits& limits, std::vector<dali::AvailabilityCheck> checks);

// The static routes of the trees (and Aladin Lite's files). Install after
// dali::install so these patterns sit beside the service's endpoints.
void add_hips_routes(http::Router& router, std::shared_ptr<SharedRepository> repository, const HipsOptions& options);

// Every tree served (public ones, then data-rights ones), as the registry
// describes them: URLs under base_url, hips_status as served.
std::vector<publishing::HipsMap> hips_maps(const SharedRepository& repository, const HipsOptions& options,
                                           const std::string& base_url);

// aladin-lite's dist/ beside a web root (<web_root>/../node_modules/aladin-lite/dist); nullopt when absent.
std::optional<std::filesystem::path> find_aladin_lite(const std::filesystem::path& web_root);

}  // namespace pixserve::services
