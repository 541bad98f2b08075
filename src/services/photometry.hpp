// Forced photometry on demand (/api/photometry/sync and /async): at given
// sky positions, on every calexp or difference image the caller may read
// that contains them, stored or virtual alike. One job function on the job
// engine (uws/job_service.hpp) serves both endpoints; the measurements are
// those of image/photometry.hpp on a small box of pixels around each
// position, converted to nJy with the image's MAGZERO and EXPTIME, and
// returned as a DALI table (one row per position x image).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dali/params.hpp"
#include "dali/results.hpp"
#include "dali/service.hpp"
#include "repo/registry.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"
#include "sky/geometry.hpp"
#include "uws/engine.hpp"

namespace pixserve::services {

enum class PhotometryMethod { aperture, psf };

// A request as the parameters give it, checked against the limits that do
// not depend on the images found.
struct PhotometryRequest {
  std::vector<sky::SkyPoint> positions;
  std::vector<std::string> ids;  // as sent (publisher DIDs or dataset IDs)
  std::string subtype = "calexp";
  PhotometryMethod method = PhotometryMethod::aperture;
  double radius_arcsec = 2.0;
  std::vector<std::string> collections;
  std::vector<repo::Range> times;        // MJD
  std::vector<repo::Range> wavelengths;  // m
};

// The declared parameters of /sync and /async (the same).
std::vector<dali::ParamSpec> photometry_params(const dali::ResultLimits& limits, const PhotometryLimits& photometry);
// The sync endpoint as declared, without a handler: what DataLink's service
// descriptor is written from.
dali::Endpoint photometry_sync_declaration(const dali::ResultLimits& limits, const PhotometryLimits& photometry);

// The content of an inline upload part by name (uws::JobRun::upload).
using PhotometryUploads = std::function<std::optional<std::string>(std::string_view part)>;

// Throws dali::UsageError for a request outside the limits; on /sync
// (synchronous) also for more positions than /sync takes, naming /async.
// UPLOAD=name,param:part adds the positions of a VOTable's ra and dec
// columns (by name or UCD) after the POS values; without `uploads` (a job's
// parameters checked at creation) only the UPLOAD value's form is checked.
PhotometryRequest photometry_request(const dali::ParsedParams& params, const PhotometryLimits& limits,
                                     bool synchronous, const PhotometryUploads& uploads = {});

// The refusal of a /sync request of `measurements` positions x images.
void check_sync_measurements(std::size_t measurements, const PhotometryLimits& limits);

dali::Service photometry_service(std::shared_ptr<SharedRepository> repository, std::shared_ptr<uws::JobEngine> jobs,
                                 const dali::ResultLimits& limits, const PhotometryLimits& photometry,
                                 std::vector<dali::AvailabilityCheck> checks);

}  // namespace pixserve::services
