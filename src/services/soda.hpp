// SODA 1.0 cutouts (/api/soda/sync, /api/soda/async, VOSI capabilities and
// availability under /api/soda). The parameters are declared once in
// soda_params.hpp; this is the logic between them and the cutout engine
// (image/cutout.hpp).
//
// Requests: ID (one or many) x shapes (POS, CIRCLE, POLYGON; none: the whole
// image) -> one cutout each, with PIXEL ranges restricting every shape (or,
// alone, giving the cutout). BAND, TIME and POL select or reject whole
// images (a rejected image gives no cutout). A coadd patch's cutout of a
// shape is assembled from every patch of the same tract, band, dataset type
// and collection the shape touches (the registry's footprints say which), so
// a shape over a patch boundary is cut seamlessly; with PIXEL, the ranges are
// in the pixel grid of the patch named by ID and only that patch is read.
//
// Responses (RESPONSEFORMAT):
//   application/fits   one multi-extension FITS: a primary HDU with ORIGIN and
//                      PSNCUT (number of cutouts), then for each cutout every
//                      plane of its source (EXTNAME kept, EXTVER 1, 2, ... per
//                      cutout over the whole file, PSDSID naming the source);
//   application/x-tar, application/zip: one FITS per cutout named
//                      <n>-<dataset id>[_s<shape>].fits.
//
// Sync and async are one job function (uws/job_service.hpp) called twice.
//
// Streaming: a sync FITS response whose cutouts all come from plain
// (uncompressed, unscaled) stored files is laid out before its first byte
// (headers from the engine, so Content-Length is exact and every error is
// known) and sent with the pixels copied from the sources by pread
// (services/soda_stream.hpp); the same bytes as the file the engine writes.
// Any other sync response (archives, virtual products, coadds assembled
// across patches, compressed planes, header cards the stream does not make)
// is written to a file in a per-request spool
// directory (<repository>/cache/soda-spool/<process>/<request>/ by default) and then
// streamed from it with Content-Length (an archive is made from the cutout
// files while it streams); the directory is removed when the
// response is finished or abandoned; what a killed process left is removed
// at the next start and by a background sweep (uws/spool.hpp), and the
// spool's size is the "spool" availability check on /status. Writing first keeps cfitsio's
// seek-heavy output on a real file, gives an exact Content-Length, and lets a
// failing cut become a proper error status instead of a truncated body.
//
// Errors (SODA 1.0 section 5.2 and DALI): a DALI error document (VOTable,
// QUERY_STATUS=ERROR) whose message starts with a SODA error label:
//   400 UsageError       bad parameter, bad shape or PIXEL, too many IDs or
//                        cutouts, a dataset that cannot be cut (raw)
//   404 UsageError       an ID that is unknown or not visible to the caller
//                        (embargoed, restricted): the same message for both
//   204 (no body)        no cutout has any pixel (SODA: "NoOverlap"); the
//                        X-SODA-Status header says why
//   503 ServiceUnavailable  the server's disk is full (Retry-After; a
//                        transient UWS error for jobs)
//
// Async (UWS 1.1 at /api/soda/async, job kind "soda"): the parameters are
// checked when the job is created (400, text/plain); each ID x shape gives one
// result (cutout-<n>: a FITS file, or a text/plain "UsageError: NoOverlap..."
// entry when the combination has no pixels, as SODA 1.0 section 6 asks), or a
// single "cutouts" result for tar/zip. Unknown IDs and requests without any
// pixel make the job ERROR. Progress is the fraction of IDs done.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.hpp"
#include "dali/params.hpp"
#include "dali/service.hpp"
#include "http/files.hpp"
#include "http/router.hpp"
#include "image/cutout.hpp"
#include "image/resample.hpp"
#include "repo/dataset.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"
#include "services/soda_mosaic.hpp"
#include "services/soda_stream.hpp"
#include "uws/engine.hpp"

namespace pixserve::services {

struct SodaOptions {
  SodaLimits limits{};
  std::filesystem::path spool_dir{};  // empty: <repository>/cache/soda-spool
  std::chrono::seconds spool_max_age{std::chrono::hours(24)};           // uws/spool.hpp
  std::chrono::seconds spool_sweep_interval{std::chrono::minutes(10)};
};

enum class SodaFormat { fits, tar, zip };

// The grid and kernel of mosaics of logical coadds (services/soda_mosaic.hpp),
// all optional: GRID_CENTER, GRID_SCALE, GRID_ROTATION, KERNEL.
struct MosaicOptions {
  std::optional<sky::SkyPoint> center{};
  std::optional<double> scale_arcsec{};
  std::optional<double> rotation_deg{};
  std::optional<image::Kernel> kernel{};
  bool visit = false;  // MOSAIC=visit: all CCDs of the ID's visit on one grid
  bool any() const noexcept { return center || scale_arcsec || rotation_deg || kernel; }
};

// A request's parameters, checked without the registry.
struct SodaRequest {
  std::vector<std::string> ids{};          // as given (publisher DIDs or dataset IDs)
  std::vector<sky::Shape> shapes{};        // POS, CIRCLE, POLYGON in that order
  std::optional<image::PixelRanges> pixels{};
  std::vector<dali::Interval> bands{};     // m
  std::vector<dali::Interval> times{};     // MJD
  std::vector<std::string> pols{};
  std::vector<std::string> planes{};       // PLANE: EXTNAMEs to cut; empty: all
  SodaFormat format = SodaFormat::fits;
  MosaicOptions mosaic{};
  // Who asks: the request's caller (sync) or the job's owner (async). Set by
  // the service, never parsed from a parameter; datasets are found with it.
  auth::Identity caller{};

  std::size_t cutouts() const noexcept { return ids.size() * std::max<std::size_t>(shapes.size(), 1); }
};

// From parameters parsed against soda_sync_params(). Throws
// dali::UsageError (the endpoint labels it "UsageError: ").
SodaRequest soda_request(const dali::ParsedParams& params, const SodaLimits& limits);

// "[x1:x2,y1:y2]" (1-based, inclusive; "*" for a whole axis; the brackets
// are optional). Throws dali::UsageError.
image::PixelRanges parse_pixel_section(std::string_view text);

// One dataset of a request, resolved through the visibility rules.
struct SodaSource {
  std::string id{};               // as given
  repo::DatasetRecord record{};
  std::string rejected{};         // why BAND/TIME/POL reject it; empty: selected
};

// One (ID, shape) combination written to its own file.
struct SodaPiece {
  std::string id{};                     // as given
  std::string dataset_id{};
  std::optional<std::size_t> shape{};   // index into SodaRequest::shapes
  std::string name{};                   // file name (archive entry / result file)
  std::filesystem::path file{};         // empty: no pixels
  std::string message{};                // why there is no file ("UsageError: NoOverlap ...")
};

// Progress (fraction of sources done) and cancellation (throws to stop).
struct SodaMonitor {
  std::function<void(double)> progress{};
  std::function<void()> check_cancelled{};
};

// The cutting logic shared by /sync and /async.
class SodaEngine {
 public:
  SodaEngine(std::shared_ptr<SharedRepository> repository, SodaLimits limits);

  const SodaLimits& limits() const noexcept { return limits_; }

  // Looks every ID up (caller's visibility); dali::NotFound naming the first
  // unknown or invisible ID. Applies BAND, TIME and POL.
  std::vector<SodaSource> resolve(const SodaRequest& request);
  // For /sync: refuses (UsageError naming /async) requests that would
  // re-create more whole virtual products than the configured number: those
  // neither cached nor computable as a part (products/parts.hpp), and every
  // uncached one a request asks for whole (no region, no pixel ranges).
  void check_sync_recreations(const SodaRequest& request, const std::vector<SodaSource>& sources) const;

  // All cutouts in one multi-extension FITS at `out`; the number of cutouts
  // (0: none had pixels, and `out` is removed).
  std::size_t write_fits(const SodaRequest& request, const std::vector<SodaSource>& sources,
                         const std::filesystem::path& out, const SodaMonitor& monitor = {});

  // write_fits' file as a stream laid out up front (services/soda_stream.hpp):
  // the same bytes and the same exceptions, but the headers are made in
  // memory and the pixels are copied from the source files while the
  // response is sent. nullopt when some cutout needs the engine's own
  // writing (a virtual product's part, a coadd assembled from patches, a
  // compressed or scaled plane, a header card fits::HeaderText does not
  // write): write_fits then makes the file.
  struct FitsStream {
    std::size_t count = 0;  // 0: no cutout had pixels
    std::uint64_t size = 0;
    std::function<bool(const http::ByteSink&)> produce{};
  };
  std::optional<FitsStream> stream_fits(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                        const SodaMonitor& monitor = {});

  // One file per (ID, shape); `place(name)` gives where a file named `name`
  // goes. Combinations without pixels come back with a message and no file.
  std::vector<SodaPiece> write_each(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                    const std::function<std::filesystem::path(const std::string&)>& place,
                                    const SodaMonitor& monitor = {});

  // A request for logical coadds (repo/coadd_mosaics.hpp) or with
  // MOSAIC=visit: one mosaic per ID x shape (services/soda_mosaic.hpp; a
  // visit without a shape: its whole focal plane), planned; a combination
  // without pixels has no plan and a message. UsageError for a request that
  // mixes logical coadds with other IDs, has no shape (coadds), gives PIXEL
  // or asks for an archive.
  struct MosaicPiece {
    std::string name{};
    std::optional<MosaicPlan> plan{};
    std::string message{};
  };
  static bool asks_for_mosaics(const SodaRequest& request, const std::vector<SodaSource>& sources);
  std::vector<MosaicPiece> plan_mosaics(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                        const SodaMonitor& monitor = {});

 private:
  // The patch files a coadd cutout of `shape` reads: every visible patch of
  // the same tract, band, type and collection whose footprint the shape
  // touches; empty when the source's own patch is not among them.
  std::vector<std::filesystem::path> coadd_patches(const repo::DatasetRecord& record, const sky::Shape& shape,
                                                   const auth::Identity& caller);
  std::filesystem::path file_of(const repo::DatasetRecord& record) const;
  // The cutouts of one dataset: from the part of a virtual product that is
  // not cached, computed over the boxes asked only, else from its file.
  std::vector<image::CutoutPiece> append_cutouts(const repo::DatasetRecord& record, const image::CutoutRequest& cut,
                                                 fits::File& out, int extver);
  void write_cutout(const repo::DatasetRecord& record, const image::CutoutRequest& cut,
                    const std::filesystem::path& file);

  std::optional<FitsStream> stream_layout(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                          const SodaMonitor& monitor);

  std::shared_ptr<SharedRepository> repository_;
  SodaLimits limits_;
  // The source files of streamed responses, opened and described once.
  SourceCache stream_sources_;
};

// The SODA service: /sync and /async from one job function
// (uws/job_service.hpp), run by `jobs` for jobs. Opens the spool
// (uws/spool.hpp) of sync responses, which removes what processes that are
// gone left there.
dali::Service soda_service(std::shared_ptr<SharedRepository> repository, std::shared_ptr<uws::JobEngine> jobs,
                           std::vector<dali::AvailabilityCheck> checks, const SodaOptions& options = {});

}  // namespace pixserve::services
