// Pixel cutouts of survey images: the engine behind SODA. Given sky shapes
// (circle, polygon, RA/Dec range) and/or pixel ranges, finds the pixel box of
// each shape on an image and writes every image plane of the source (IMAGE,
// MASK, VARIANCE, ...) cut identically to a multi-extension FITS file, each
// with its WCS shifted to the box (SIP kept) and provenance keywords.
//
// Box convention: whole pixels, 0-based, half-open (fits::PixelBox). A pixel
// belongs to the box of a shape when its square area (centre +- 0.5) overlaps
// the part of the shape inside the image. The box is exactly the array that
// astropy's Cutout2D(data, position=((x0+x1)/2, (y0+y1)/2), size=(h, w),
// mode='trim') returns, with x1 = x0 + w - 1 and y1 = y0 + h - 1 the last
// pixels: Cutout2D's edges are ceil(pos -+ size/2), i.e. [x0, x1+1) exactly,
// for odd and even sizes alike (box_center() gives that position).
//
// Only what is needed is read: the header, and each plane's pixel subset
// (cfitsio decompresses only the touched tiles of tile-compressed planes).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fits/fits.hpp"
#include "image/exposure.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::image {

// Base of the cutout failures that are the request's or the data's fault
// rather than I/O errors (those stay fits::FitsError / wcs::WcsError).
class CutoutError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The requested region does not overlap the image (SODA: "NoOverlap").
class NoOverlap : public CutoutError {
 public:
  using CutoutError::CutoutError;
};

// The dataset cannot be cut (e.g. raw amplifier files, header-only files).
class UnsupportedDataset : public CutoutError {
 public:
  using CutoutError::CutoutError;
};

// None of the image's planes is among those asked (CutoutRequest::planes);
// the message names the planes it has.
class NoWantedPlane : public CutoutError {
 public:
  using CutoutError::CutoutError;
};

// One inclusive, 1-based pixel range along an axis, as in DaCHS's PIXEL_n
// parameters and FITS sections ("[first:last]").
struct PixelRange {
  long first = 1;
  long last = 1;
};

// SODA-style pixel ranges; an absent axis means the whole axis.
struct PixelRanges {
  std::optional<PixelRange> x{};  // NAXIS1
  std::optional<PixelRange> y{};  // NAXIS2
};

// What to cut. Each shape gives one cutout; pixel ranges, when given,
// restrict every shape's box (all constraints apply together, as in DaCHS),
// or on their own (no shapes) give one cutout. Neither: the whole image.
struct CutoutRequest {
  std::vector<sky::Shape> shapes{};
  std::optional<PixelRanges> pixels{};
  // The planes to cut, by EXTNAME (IMAGE, MASK, VARIANCE; a plane without
  // an EXTNAME counts as IMAGE), in the image's own order whatever the
  // order here; empty: every plane.
  std::vector<std::string> planes{};

  bool wants(std::string_view extname) const;
};

// The pixel box of `shape` on a width x height image with this WCS, clipped
// to the image; nullopt when they do not overlap. Throws
// std::invalid_argument for a malformed shape.
std::optional<fits::PixelBox> pixel_bounds(const wcs::Wcs& wcs, long width, long height, const sky::Shape& shape);

// The box of pixel ranges clipped to the image; nullopt when outside it.
// Throws std::invalid_argument for first < 1 or first > last.
std::optional<fits::PixelBox> pixel_bounds(long width, long height, const PixelRanges& ranges);

// Intersection of two boxes (nullopt when empty).
std::optional<fits::PixelBox> intersect(const fits::PixelBox& a, const fits::PixelBox& b);

// Cutout2D's position (x, y) for a box: the centre of its first and last pixels.
wcs::PixelPoint box_center(const fits::PixelBox& box);

// The DALI/SODA text of a shape: "CIRCLE ra dec r", "POLYGON ra1 dec1 ...",
// "RANGE ra_min ra_max dec_min dec_max" (shortest round-trip numbers).
std::string region_text(const sky::Shape& shape);

// Checks a shape (finite values, radius in (0, 180], declinations in range,
// polygon with vertices); throws std::invalid_argument naming the problem.
void validate_shape(const sky::Shape& shape);

// One cut image plane written to the output.
struct CutoutPlane {
  std::string extname;  // the source plane's EXTNAME (may be empty)
  int hdu = 0;          // its HDU number in the output file (1-based)
};

// One cutout (one shape, or the pixel ranges alone) with all its planes.
struct CutoutPiece {
  fits::PixelBox box;      // in the source's pixel grid (a coadd: the patches' union grid)
  std::string region;      // region_text of the shape; empty for pixel ranges only
  size_t shape_index = 0;  // which of the request's shapes
  int extver = 1;         // EXTVER of its planes in the output
  std::vector<CutoutPlane> planes;
};

// Appends the cutouts of `source` to `out` (an open, writable file): for each
// shape, one HDU per image plane of the source, EXTNAME kept and EXTVER =
// extver_start, extver_start + 1, ... per cutout. Each HDU carries the source
// primary's metadata, the plane's own keywords (e.g. BUNIT, MP_* mask bits),
// the shifted WCS and provenance keywords:
//   PSDSID  source dataset ID        PSREGION region (DALI text)
//   PSPIXEL pixel ranges asked       PSBOX    "[x1:x2,y1:y2]" box in the source (1-based)
//   LTV1/2, LTM1_1/LTM2_2            IRAF/LSST physical offset: source = cutout - LTV
// Shapes that miss the image give no cutout (several IDs x several shapes is
// the normal SODA case); NoOverlap is thrown, with nothing appended, when no
// shape (or the pixel ranges) overlaps. UnsupportedDataset for raw files.
std::vector<CutoutPiece> append_cutouts(const std::filesystem::path& source, const CutoutRequest& request,
                                        fits::File& out, std::string_view dataset_id, int extver_start = 1);

// Writes a complete cutout file at out_path (truncating it): primary header =
// the source's metadata plus PSDSID, then append_cutouts' extensions.
std::vector<CutoutPiece> write_cutout(const std::filesystem::path& source, const CutoutRequest& request,
                                      const std::filesystem::path& out_path, std::string_view dataset_id);

// A run of pixels of one row of a coadd cutout across patches: `width`
// pixels from patch `patch` (the caller's number for it), starting at its
// own pixel (src_x, src_y) in the band's first row (a band's later rows
// follow on the patch's later rows), or the fill value when patch is -1.
struct PatchRun {
  int patch = -1;
  long width = 0;
  long src_x = 0, src_y = 0;
};

// Consecutive rows of a cutout made of the same runs.
struct RowBand {
  long rows = 0;
  std::vector<PatchRun> runs{};
};

// Where the pixels of one plane HDU come from.
struct PlanePixels {
  int source_hdu = 0;  // HDU number (1-based) of the plane in the source file
  int bitpix = 0;      // its equivalent BITPIX, which the output HDU has
  fits::PixelBox box;  // in the source's pixel grid
  // A coadd cutout across patches (coadd_cutout_headers): the box's rows,
  // top to bottom, as bands of runs; the plane's HDU in each patch
  // (indexed like the patches given); one pixel of the fill value as FITS
  // stores it. Empty bands: every pixel comes from `box` of the one source.
  std::vector<RowBand> bands{};
  std::vector<int> patch_hdus{};
  std::string fill{};
};

// One plane HDU of a cutout whose pixels the writer sends itself: its whole
// header (fits::HeaderText::bytes()) and where its pixels come from.
struct PlaneHeader {
  PlanePixels pixels;
  std::string header;
};

// A source file read once for many cutouts: its planes, metadata and WCS
// (SODA keeps the recently used ones). Cutouts of one source may be made
// from several threads at once.
class CutoutSource {
 public:
  // Opens and describes `path` with the checks and exceptions of
  // append_cutouts (UnsupportedDataset for raw data or a file without image
  // planes; fits::FitsError when it cannot be read).
  explicit CutoutSource(const std::filesystem::path& path);
  ~CutoutSource();
  CutoutSource(const CutoutSource&) = delete;
  CutoutSource& operator=(const CutoutSource&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend std::vector<CutoutPiece> cutout_headers(const CutoutSource&, const CutoutRequest&, std::string_view, int,
                                                 std::vector<PlaneHeader>&);
  friend std::vector<CutoutPiece> coadd_cutout_headers(const std::vector<const CutoutSource*>&, const CutoutRequest&,
                                                       std::string_view, int, std::vector<PlaneHeader>&);
};

// For writers that send pixels themselves (SODA's streamed responses): the
// plane headers append_cutouts(path of source, ...) writes, byte for byte,
// built in memory, with the same checks and exceptions. `planes` holds the
// plane HDUs written so far after a primary HDU; one entry is appended per
// new HDU (their numbers follow). fits::UnsupportedCard when a header needs
// a card that fits::HeaderText does not write: then append_cutouts makes it.
std::vector<CutoutPiece> cutout_headers(const CutoutSource& source, const CutoutRequest& request,
                                        std::string_view dataset_id, int extver_start,
                                        std::vector<PlaneHeader>& planes);

// An exposure whose pixels are computed on demand (a virtual product), cut
// as if it were the full file that write_exposure() writes from the same
// headers and pixels: the output is byte for byte the cutout of that file.
struct ComputedExposure {
  // A header-only exposure file (write_exposure_headers(): IMAGE, MASK and
  // VARIANCE HDUs with NAXIS = 0) whose primary header has DETSIZE giving
  // the full image size.
  std::filesystem::path headers;
  // The three planes over a box of the full image (0-based, inside it), as
  // an exposure of the box's size. Called once per cutout box.
  std::function<Exposure(const fits::PixelBox&)> pixels;
};

// As the file versions above, planned from the header-only file (so
// NoOverlap, UnsupportedDataset for raw data and invalid shapes happen
// before any pixel is computed). UnsupportedDataset also when the header
// file has no DETSIZE or no IMAGE/MASK/VARIANCE header HDUs;
// std::logic_error when pixels() returns planes of another size than the box.
std::vector<CutoutPiece> append_cutouts(const ComputedExposure& source, const CutoutRequest& request,
                                        fits::File& out, std::string_view dataset_id, int extver_start = 1);
std::vector<CutoutPiece> write_cutout(const ComputedExposure& source, const CutoutRequest& request,
                                      const std::filesystem::path& out_path, std::string_view dataset_id);

// The WCS header records with the CRPIX cards taken out, and the CRPIX
// values: images on one pixel grid (the patches of a tract) have equal
// records and CRPIX values differing by whole pixels.
std::pair<std::string, std::pair<double, double>> pixel_grid_signature(const wcs::Wcs& w);

// Coadd cutouts across patches of one tract. The patches must share one pixel
// grid (WCSs equal but for integer CRPIX offsets; checked, std::invalid_argument
// otherwise) and the same planes. Boxes are found on the union of the patches
// (in the first patch's pixel grid); each output pixel comes from the patch in
// which it lies farthest from the edge (ties: the earlier path in sorted
// order), i.e. from the patch's inner region, never from overlapping borders
// twice. Pixels no patch covers are NaN (float planes) or the NO_DATA bit
// (MASK planes with MP_NO_DATA; else 0).
std::vector<CutoutPiece> append_coadd_cutouts(const std::vector<std::filesystem::path>& patch_files,
                                              const CutoutRequest& request, fits::File& out,
                                              std::string_view dataset_id, int extver_start = 1);
std::vector<CutoutPiece> write_coadd_cutout(const std::vector<std::filesystem::path>& patch_files,
                                            const CutoutRequest& request, const std::filesystem::path& out_path,
                                            std::string_view dataset_id);

// For writers that send pixels themselves: the plane headers
// append_coadd_cutouts(paths of `patches`, ...) writes, byte for byte, built
// in memory, with the same checks and exceptions, and where each row's
// pixels come from (PlanePixels::bands, runs numbered like `patches`).
// `planes` as for cutout_headers.
std::vector<CutoutPiece> coadd_cutout_headers(const std::vector<const CutoutSource*>& patches,
                                              const CutoutRequest& request, std::string_view dataset_id,
                                              int extver_start, std::vector<PlaneHeader>& planes);

}  // namespace pixserve::image
