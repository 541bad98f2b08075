// SODA mosaics of logical coadds (repo/coadd_mosaics.hpp): ID=DR1.deepCoadd.r
// with POS / CIRCLE / POLYGON gives one image of the region made from every
// patch of that band the caller may read, across tracts (image/mosaic.hpp).
//
// The output grid: by default, when every patch the region touches lies in
// one tract, that tract's own pixel grid (the patch pixels as they are, no
// resampling: the coadd cutout of image/cutout.hpp); otherwise a TAN grid
// centred on the region, north up, at the patches' pixel scale. Extension
// parameters (declared in soda_params.hpp, so the DataLink descriptor and
// OpenAPI show them) choose another: GRID_CENTER (ra dec), GRID_SCALE
// (arcsec per pixel), GRID_ROTATION (degrees east of north of the +y axis),
// KERNEL (lanczos3, bilinear, nearest); any of them makes a TAN grid and
// resamples every pixel.
//
// The file: a primary HDU (ORIGIN, PSNCUT) and, per mosaic, IMAGE, MASK and
// VARIANCE HDUs (EXTVER 1, 2, ...) with the grid's TAN WCS, the patches'
// units and mask-plane cards, PSDSID (the logical ID), RESAMPK (the kernel),
// NPATCH and PATCHnnn (the input patches: every readable patch the grid
// touches). Its size is known before any pixel is made, so the response
// has a Content-Length. It is made strip by strip while it is sent: the
// IMAGE rows go out as each strip is made and its MASK and VARIANCE rows
// are kept in two scratch files that follow; memory holds one strip.
//
// Visit mosaics (MOSAIC=visit with the ID of an image of a visit): the same
// engine and file, the CCDs of the visit as inputs (plan_visit_mosaic).
//
// Limits (services/settings.hpp, SodaLimits): a grid of more than mosaic_max_pixels pixels is a
// usage error naming its size; /sync makes grids up to
// mosaic_sync_max_pixels and sends larger ones to /async (UWS progress is
// the fraction of rows made; ABORT stops between strips).
#pragma once

#include <cstdint>
#include <array>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "auth/identity.hpp"
#include "http/files.hpp"
#include "image/mosaic.hpp"
#include "image/resample.hpp"
#include "repo/dataset.hpp"
#include "services/repository_access.hpp"

namespace pixserve::services {

// One mosaic, planned: its grid, its inputs, its header cards.
struct MosaicPlan {
  std::string dataset_id{};  // the logical coadd
  image::MosaicGrid grid;
  image::Kernel kernel = image::Kernel::lanczos3;
  std::vector<std::vector<std::filesystem::path>> tracts{};  // patch files per tract
  std::vector<std::string> inputs{};                          // their dataset IDs, sorted
  std::string image_cards{}, mask_cards{}, variance_cards{};  // 80-character records from a patch
};

// Plans the mosaic of `shape` of logical coadd `record` from the patches the
// caller may read: on the tract's own grid when they all lie in one tract
// and no grid option is given (the kernel then copies the patch pixels
// unchanged: they sit at whole-pixel offsets), else on a TAN grid. Throws
// image::NoOverlap when no such patch touches the region, dali::UsageError
// for a grid that cannot be made (too large, too wide for one TAN grid: the
// message says why).
struct MosaicOptions;
MosaicPlan plan_coadd_mosaic(SharedRepository& repository, const repo::DatasetRecord& record, const sky::Shape& shape,
                             const MosaicOptions& options, std::uint64_t max_pixels, const auth::Identity& caller);

// MOSAIC=visit: the CCD images of the visit of `record` (a raw: its visit's
// calexps; a calexp, calexp_comp or difference image: those of its type)
// that the caller may read, onto one TAN grid (each CCD a grid of its own,
// each output pixel from the CCD that holds it): over `shape`, or without
// one over the whole focal plane (the CCDs' hull). Same exceptions; a
// UsageError for a dataset that is not an image of a visit.
MosaicPlan plan_visit_mosaic(SharedRepository& repository, const repo::DatasetRecord& record,
                             const std::optional<sky::Shape>& shape, const MosaicOptions& options,
                             std::uint64_t max_pixels, const auth::Identity& caller);

// The FITS file of one or more mosaics, laid out before it is made.
class MosaicFile {
 public:
  // `scratch` is a directory for the MASK and VARIANCE rows (two files per
  // mosaic while it is written, removed afterwards).
  MosaicFile(std::vector<MosaicPlan> plans, std::filesystem::path scratch);
  std::uint64_t size() const noexcept { return size_; }
  std::uint64_t pixels() const noexcept;
  // Makes and sends every byte; false when the sink refused them.
  // `progress` gets the fraction of rows made; `check_cancelled`, called
  // between strips, may throw to stop. Both may be empty.
  bool write(const http::ByteSink& sink, const std::function<void(double)>& progress = {},
             const std::function<void()>& check_cancelled = {}) const;

 private:
  std::vector<MosaicPlan> plans_;
  std::filesystem::path scratch_;
  std::string primary_;
  std::vector<std::array<std::string, 3>> headers_;  // per plan: IMAGE, MASK, VARIANCE
  std::uint64_t size_ = 0;
};

}  // namespace pixserve::services
