// The parameters of the SODA sync endpoint (/api/soda/sync), declared once:
// the SODA service parses requests with them and DataLink writes its #cutout
// service descriptor from them, so the two cannot disagree.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "dali/params.hpp"
#include "dali/service.hpp"

namespace pixserve::services {

inline constexpr std::string_view kSodaSyncStandardId = "ivo://ivoa.net/std/SODA#sync-1.0";
inline constexpr std::string_view kSodaAsyncStandardId = "ivo://ivoa.net/std/SODA#async-1.0";

// The response formats (RESPONSEFORMAT values).
inline constexpr std::string_view kSodaFits = "application/fits";
inline constexpr std::string_view kSodaTar = "application/x-tar";
inline constexpr std::string_view kSodaZip = "application/zip";

// Most vertices of a POS or POLYGON polygon.
inline constexpr std::size_t kSodaMaxPolygonVertices = 1000;

// ID, POS, CIRCLE, POLYGON, BAND, TIME, POL, PIXEL (SODA 1.0 section 3.3
// plus PIXEL, a pixel section of the image, and PLANE, the image planes to
// cut), RESPONSEFORMAT (DALI). The
// /async endpoint takes the same parameters (SODA 1.0 section 3.3).
inline std::vector<dali::ParamSpec> soda_sync_params() {
  return {
      {.name = "ID",
       .type = dali::ParamType::text,
       .description = "Publisher DID of the dataset to cut out (as in obs_publisher_did).",
       .ucd = "meta.id;meta.main",
       .multiple = true,
       .required = true,
       .ref = "ID",
       .example = "ivo://pixserve.example/repo?DR1.calexp.v1000000.d004",
       .standard = true},
      {.name = "POS",
       .type = dali::ParamType::shape,
       .description = "Region to cut out: CIRCLE ra dec radius, RANGE ra1 ra2 dec1 dec2 or POLYGON ra1 dec1 ...",
       .unit = "deg",
       .ucd = "pos.outline;obs",
       .multiple = true,
       .example = "CIRCLE 53.0 -28.0 0.05",
       .standard = true,
       .max_vertices = kSodaMaxPolygonVertices},
      {.name = "CIRCLE",
       .type = dali::ParamType::circle,
       .description = "Circle to cut out: ra dec radius.",
       .unit = "deg",
       .ucd = "pos.outline;obs",
       .multiple = true,
       .example = "53.0 -28.0 0.05",
       .standard = true},
      {.name = "POLYGON",
       .type = dali::ParamType::polygon,
       .description = "Polygon to cut out: ra1 dec1 ra2 dec2 ra3 dec3 ...",
       .unit = "deg",
       .ucd = "pos.outline;obs",
       .multiple = true,
       .example = "53.0 -28.0 53.1 -28.0 53.1 -27.9",
       .standard = true,
       .max_vertices = kSodaMaxPolygonVertices},
      {.name = "BAND",
       .type = dali::ParamType::interval,
       .description = "Wavelength interval (vacuum, metres) the image must overlap; images have one band, so "
                      "this selects or rejects the whole image.",
       .unit = "m",
       .ucd = "em.wl",
       .min = 0.0,
       .multiple = true,
       .example = "5e-7 7e-7",
       .standard = true},
      {.name = "TIME",
       .type = dali::ParamType::interval,
       .description = "Time interval (MJD) the observation must overlap; selects or rejects the whole image.",
       .unit = "d",
       .ucd = "time.interval",
       .multiple = true,
       .example = "60000 60001",
       .standard = true},
      {.name = "POL",
       .type = dali::ParamType::enumerated,
       .description = "Polarization states; the survey's images are unpolarized (Stokes I).",
       .ucd = "meta.code;phys.polarization",
       .options = {"I", "Q", "U", "V", "RR", "LL", "RL", "LR", "XX", "YY", "XY", "YX", "POLI", "POLA"},
       .multiple = true,
       .example = "I",
       .standard = true},
      {.name = "PIXEL",
       .type = dali::ParamType::text,
       .description = "Pixel section of the image, FITS style [x1:x2,y1:y2] (1-based, inclusive; * for a whole "
                      "axis), in the pixel grid of the dataset given by ID.",
       .example = "[1:100,1:100]"},
      {.name = "PLANE",
       .type = dali::ParamType::enumerated,
       .description = "The image planes to cut, by EXTNAME: IMAGE (the pixels), MASK (their bit flags), VARIANCE; "
                      "repeat for several. Default: every plane of the image. A plane without a name is the IMAGE. "
                      "Mosaics (MOSAIC, logical coadds) always have all three.",
       .options = {"IMAGE", "MASK", "VARIANCE"},
       .multiple = true,
       .example = "IMAGE"},
      // Extensions for mosaics of logical coadds (IDs like DR1.deepCoadd.r;
      // services/soda_mosaic.hpp).
      {.name = "GRID_CENTER",
       .type = dali::ParamType::point,
       .description = "Mosaics of a logical coadd (ID <collection>.<coadd type>.<band>): the output TAN grid's "
                      "centre, ra dec. Default: the region's centre.",
       .unit = "deg",
       .ucd = "pos",
       .example = "53.0 -28.0"},
      {.name = "GRID_SCALE",
       .type = dali::ParamType::real,
       .description = "Mosaics: the output grid's pixel scale. Default: the coadd's. Without any GRID_ or KERNEL "
                      "parameter a region within one tract comes on that tract's grid, unresampled.",
       .unit = "arcsec",
       .ucd = "instr.scale",
       .example = "0.4"},
      {.name = "GRID_ROTATION",
       .type = dali::ParamType::real,
       .description = "Mosaics: position angle of the output grid's +y axis, east of north. Default 0 (north up, "
                      "east left).",
       .unit = "deg",
       .ucd = "pos.posAng",
       .example = "30"},
      {.name = "KERNEL",
       .type = dali::ParamType::enumerated,
       .description = "Mosaics: the resampling kernel (image and variance propagated, mask bits OR'ed over the "
                      "kernel's footprint). Default lanczos3.",
       .options = {"lanczos3", "bilinear", "nearest"},
       .example = "lanczos3"},
      {.name = "MOSAIC",
       .type = dali::ParamType::enumerated,
       .description = "visit: with the ID of an image of a visit (raw: its calexps; calexp, calexp_comp, diffim), "
                      "all CCDs of that visit the caller may read on one TAN grid, over the region or, without "
                      "one, the whole focal plane; GRID_ and KERNEL parameters apply.",
       .options = {"visit"},
       .example = "visit"},
      {.name = "RESPONSEFORMAT",
       .type = dali::ParamType::enumerated,
       .description = "application/fits (default): all cutouts in one multi-extension FITS file; application/x-tar "
                      "or application/zip: one FITS file per cutout (ID x shape). The short forms fits, tar and zip "
                      "are accepted.",
       .options = {std::string(kSodaFits), "fits", std::string(kSodaTar), "tar", std::string(kSodaZip), "zip"},
       .example = "application/fits",
       .standard = true},
  };
}

// The SODA sync endpoint as declared (without a handler): what service
// descriptors are written from. The SODA service adds its handler.
inline dali::Endpoint soda_sync_declaration() {
  return dali::Endpoint{
      .path = "sync",
      .summary = "Cutouts of images (SODA 1.0 sync)",
      .description = "Cuts the region out of each image given by ID and returns it as FITS with its WCS.",
      .params = soda_sync_params(),
      .result_types = {std::string(kSodaFits), std::string(kSodaTar), std::string(kSodaZip)},
      .standard_id = std::string(kSodaSyncStandardId),
      .interface_version = "1.0",
      .parse_options = {.reject_unknown = true},
      .errors = dali::ErrorVocabulary::soda,
  };
}

// The SODA async endpoint (a UWS job list): the same parameters; its routes
// are the UWS binding's (uws::install_routes), so it has no handler.
inline dali::Endpoint soda_async_declaration() {
  return dali::Endpoint{
      .path = "async",
      .summary = "Cutouts of images as asynchronous jobs (SODA 1.0 async, UWS 1.1)",
      .description = "The parameters of /sync create a UWS job; each ID x shape gives one result (a FITS file, or a "
                     "text/plain message starting with UsageError when it has no pixels), or one tar/zip result.",
      .params = soda_sync_params(),
      .methods = {"POST"},
      .result_types = {std::string(kSodaFits), std::string(kSodaTar), std::string(kSodaZip)},
      .standard_id = std::string(kSodaAsyncStandardId),
      .interface_version = "1.0",
      .parse_options = {.reject_unknown = true},
      .binding = dali::Binding::uws,
      .errors = dali::ErrorVocabulary::soda,
  };
}

}  // namespace pixserve::services
