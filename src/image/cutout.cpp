#include "image/cutout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <type_traits>
#include <variant>

#include "fits/cards.hpp"
#include "fits/header_text.hpp"
#include "image/section.hpp"

namespace pixserve::image {

using fits::card_number;
using fits::card_string;
using fits::TypedCard;
using fits::write_cards;

// Named (not anonymous): CutoutSource::Impl holds a Source, and the folder
// is compiled as unity batches.
namespace cutout_detail {

// ---------------------------------------------------------------------------
// Sources: the image planes of a file
// ---------------------------------------------------------------------------

struct Plane {
  int hdu = 0;
  std::string extname;
  int bitpix = 0;  // equivalent BITPIX
  long width = 0, height = 0;
  std::vector<TypedCard> cards;
  std::optional<wcs::Wcs> wcs;
  // Physical offset already recorded in the source (a cutout of a cutout).
  double ltv1 = 0.0, ltv2 = 0.0;
};

struct Source {
  std::filesystem::path path;
  std::vector<TypedCard> primary;  // metadata of the primary HDU
  std::vector<Plane> planes;
};

}  // namespace cutout_detail

namespace {

using cutout_detail::Plane;
using cutout_detail::Source;

// The pixel type (equivalent BITPIX) of the exposure planes that a
// header-only file describes; 0 for any other HDU name.
int computed_plane_bitpix(std::string_view extname) {
  if (extname == "IMAGE" || extname == "VARIANCE") return -32;
  if (extname == "MASK") return 32;
  return 0;
}

// The full size a header-only exposure file describes: its primary DETSIZE.
std::pair<long, long> header_only_size(fits::File& file) {
  file.move_to_hdu(1);
  const auto text = file.read_string("DETSIZE");
  if (!text) {
    throw UnsupportedDataset(
        fmt::format("{}: a header-only exposure file without DETSIZE (its image size is unknown)",
                    file.path().filename().string()));
  }
  try {
    const auto box = parse_section(*text).box();
    return {box.width, box.height};
  } catch (const std::invalid_argument& e) {
    throw UnsupportedDataset(fmt::format("{}: DETSIZE: {}", file.path().filename().string(), e.what()));
  }
}

// Opens `path` and describes its image planes (HDUs with 2-D pixels). Raw
// amplifier files are refused: their pixels are not on the sky grid until
// assembled and calibrated.
//
// header_only: the file is the header of a computed exposure
// (write_exposure_headers): its IMAGE, MASK and VARIANCE HDUs have no pixels
// (NAXIS = 0) and are described as the planes of the full file would be
// (size from DETSIZE, float/int32/float), so that cutting computed pixels
// plans and writes exactly what cutting that full file does.
Source describe(fits::File& file, bool header_only = false) {
  Source s;
  s.path = file.path();
  std::pair<long, long> full_size{0, 0};
  if (header_only) full_size = header_only_size(file);
  const int n = file.hdu_count();
  for (int h = 1; h <= n; ++h) {
    file.move_to_hdu(h);
    int nkeys = 0;
    std::string records;
    if (h == 1) {
      records = fits::image_header_records(file, nkeys);
      s.primary = fits::copyable_cards(records, nkeys);
    }
    if (!file.current_is_image()) continue;
    const auto shape = file.image_shape();
    Plane p;
    p.hdu = h;
    p.extname = file.read_string("EXTNAME").value_or("");
    if (header_only) {
      if (!shape.empty() || computed_plane_bitpix(p.extname) == 0) continue;
      p.bitpix = computed_plane_bitpix(p.extname);
      p.width = full_size.first;
      p.height = full_size.second;
    } else {
      if (shape.size() < 2 || shape[0] <= 0 || shape[1] <= 0) continue;
      bool plane2d = true;
      for (size_t i = 2; i < shape.size(); ++i) plane2d = plane2d && shape[i] == 1;
      if (!plane2d) continue;
      p.bitpix = file.image_bitpix();
      p.width = shape[0];
      p.height = shape[1];
    }
    if (file.has_key("DATASEC") || file.has_key("BIASSEC")) {
      throw UnsupportedDataset(fmt::format(
          "{}: cutouts of raw amplifier data are not supported; cut the calexp (processed visit image) of the "
          "same visit and detector instead",
          s.path.filename().string()));
    }
    if (h != 1) records = fits::image_header_records(file, nkeys);
    p.cards = fits::copyable_cards(records, nkeys);
    p.ltv1 = file.read_double("LTV1").value_or(0.0);
    p.ltv2 = file.read_double("LTV2").value_or(0.0);
    try {
      p.wcs = wcs::Wcs::from_header(records, nkeys);
    } catch (const wcs::WcsError&) {
      // No celestial WCS: the plane can still be cut by pixel ranges.
    }
    s.planes.push_back(std::move(p));
  }
  if (card_string(s.primary, "DSTYPE") == "raw") {
    throw UnsupportedDataset(fmt::format(
        "{}: cutouts of raw data are not supported; cut the calexp (processed visit image) of the same visit and "
        "detector instead",
        s.path.filename().string()));
  }
  if (s.planes.empty()) {
    throw UnsupportedDataset(fmt::format("{}: the file holds no image pixels to cut", s.path.filename().string()));
  }
  for (const auto& p : s.planes) {
    if (p.width != s.planes.front().width || p.height != s.planes.front().height) {
      throw UnsupportedDataset(fmt::format("{}: image planes differ in size (HDU {} is {}x{}, HDU {} is {}x{})",
                                           s.path.filename().string(), s.planes.front().hdu, s.planes.front().width,
                                           s.planes.front().height, p.hdu, p.width, p.height));
    }
  }
  return s;
}

// Calls f(T{}) with the pixel type of an equivalent BITPIX.
template <typename F>
void with_pixel_type(int bitpix, const std::filesystem::path& path, F&& f) {
  switch (bitpix) {
    case 8: f(std::uint8_t{}); break;
    case 10: f(std::int8_t{}); break;
    case 16: f(std::int16_t{}); break;
    case 20: f(std::uint16_t{}); break;
    case 32: f(std::int32_t{}); break;
    case 40: f(std::uint32_t{}); break;
    case 64: f(std::int64_t{}); break;
    case -32: f(float{}); break;
    case -64: f(double{}); break;
    default: throw UnsupportedDataset(fmt::format("{}: unsupported BITPIX {}", path.filename().string(), bitpix));
  }
}

// ---------------------------------------------------------------------------
// Planning: one box per shape
// ---------------------------------------------------------------------------

struct Planned {
  fits::PixelBox box;
  std::string region;
  size_t shape_index = 0;
};

std::string pixel_text(const PixelRanges& r) {
  auto axis = [](const std::optional<PixelRange>& a) {
    return a ? fmt::format("{} {}", a->first, a->last) : std::string("* *");
  };
  return fmt::format("{} {}", axis(r.x), axis(r.y));
}

// Boxes for every shape that overlaps a width x height image; NoOverlap when none does.
std::vector<Planned> plan(const CutoutRequest& request, const wcs::Wcs* wcs, long width, long height,
                          std::string_view what) {
  for (const auto& s : request.shapes) validate_shape(s);
  std::optional<fits::PixelBox> limit = fits::PixelBox{0, 0, width, height};
  if (request.pixels) limit = pixel_bounds(width, height, *request.pixels);
  if (!limit) throw NoOverlap(fmt::format("{}: the pixel ranges {} lie outside the {}x{} image", what,
                                          pixel_text(*request.pixels), width, height));
  std::vector<Planned> out;
  if (request.shapes.empty()) {
    out.push_back({*limit, {}, 0});
    return out;
  }
  if (wcs == nullptr) throw UnsupportedDataset(fmt::format("{}: no celestial WCS, only pixel cutouts are possible", what));
  for (size_t i = 0; i < request.shapes.size(); ++i) {
    auto box = pixel_bounds(*wcs, width, height, request.shapes[i]);
    if (box) box = intersect(*box, *limit);
    if (box) out.push_back({*box, region_text(request.shapes[i]), i});
  }
  if (out.empty()) {
    throw NoOverlap(request.shapes.size() == 1
                        ? fmt::format("{}: {} does not overlap the image", what, region_text(request.shapes[0]))
                        : fmt::format("{}: none of the {} regions overlaps the image", what, request.shapes.size()));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

std::string section_text(const fits::PixelBox& b) {
  return fmt::format("[{}:{},{}:{}]", b.x0 + 1, b.x0 + b.width, b.y0 + 1, b.y0 + b.height);
}

struct Provenance {
  std::string_view dataset_id;
  const CutoutRequest* request = nullptr;
  const Planned* planned = nullptr;
};

// Header of one cut plane, after its pixels: metadata, the plane's own
// cards, WCS shifted to the box, provenance.
void write_plane_header(fits::KeywordWriter& out, const std::vector<TypedCard>& primary, const Plane& plane,
                        const std::optional<wcs::Wcs>& wcs, const Provenance& prov, int extver) {
  const auto& box = prov.planned->box;
  out.write_int("EXTVER", extver, "cutout number within this file");
  write_cards(out, primary);
  write_cards(out, plane.cards);
  if (wcs) wcs->write_shifted_to(out, static_cast<double>(box.x0), static_cast<double>(box.y0));
  out.write_string("PSDSID", prov.dataset_id, "source dataset ID");
  if (!prov.planned->region.empty()) out.write_string("PSREGION", prov.planned->region, "cutout region (DALI)");
  if (prov.request->pixels) out.write_string("PSPIXEL", pixel_text(*prov.request->pixels), "pixel ranges asked (x, y)");
  out.write_string("PSBOX", section_text(box), "cutout pixels in the source");
  // IRAF/LSST: physical = image - LTV, so the source (parent) pixel of a
  // cutout pixel follows from the file alone; offsets compose.
  out.write_double("LTV1", plane.ltv1 - static_cast<double>(box.x0), "source pixel = cutout pixel - LTV1");
  out.write_double("LTV2", plane.ltv2 - static_cast<double>(box.y0), "source pixel = cutout pixel - LTV2");
  out.write_double("LTM1_1", 1.0, "pixel scale relative to the source");
  out.write_double("LTM2_2", 1.0, "pixel scale relative to the source");
}

// Room for the cards write_plane_header writes after the pixels (the copied
// metadata and plane cards, EXTVER, a WCS with SIP, provenance), so that
// cfitsio need not shift the pixels for each header block they add: that
// made a 200 MB cutout ~15x slower than reading it. Stamps (< 1 MB) skip
// it, where shifting costs nothing and unused room would grow the file.
int header_reserve(size_t pixel_bytes, const std::vector<TypedCard>& primary, const Plane& plane, int extra = 0) {
  if (pixel_bytes < (std::size_t{1} << 20)) return 0;
  constexpr int wcs_cards = 160;  // wcslib's TAN-SIP output with high-order polynomials, generously
  constexpr int provenance_cards = 10;
  return static_cast<int>(primary.size() + plane.cards.size()) + 1 + wcs_cards + provenance_cards + extra;
}

template <typename T>
size_t box_bytes(const fits::PixelBox& box) {
  return static_cast<size_t>(box.width) * static_cast<size_t>(box.height) * sizeof(T);
}

std::vector<TypedCard> primary_for_output(const std::vector<TypedCard>& metadata, std::string_view dataset_id) {
  std::vector<TypedCard> cards = metadata;
  cards.push_back({"PSDSID", std::string(dataset_id), "source dataset ID"});
  return cards;
}

}  // namespace

bool CutoutRequest::wants(std::string_view extname) const {
  if (planes.empty()) return true;
  const std::string_view name = extname.empty() ? std::string_view("IMAGE") : extname;
  return std::find(planes.begin(), planes.end(), name) != planes.end();
}

// ---------------------------------------------------------------------------
// Public: single files
// ---------------------------------------------------------------------------

namespace {

// Cuts every planned box from every plane of a described source. The
// pixels come from read_box(box), called once per planned box, which returns
// a callable with_plane(i, write) that calls write(const fits::Image<T>&)
// with plane i's pixels over that box (in the plane's pixel type).
template <typename ReadBox>
std::vector<CutoutPiece> cut_planes(const Source& src, const std::vector<Planned>& planned,
                                    const CutoutRequest& request, fits::File& out, std::string_view dataset_id,
                                    int extver_start, ReadBox&& read_box) {
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    auto with_plane = read_box(p.box);
    for (size_t i = 0; i < src.planes.size(); ++i) {
      const Plane& plane = src.planes[i];
      if (!request.wants(plane.extname)) continue;
      with_plane(i, [&]<typename T>(const fits::Image<T>& pixels) {
        fits::ImageWriteOptions o;
        o.extname = plane.extname;
        o.header_reserve = header_reserve(box_bytes<T>(p.box), src.primary, plane);
        out.append_image(pixels, o);
      });
      write_plane_header(out, src.primary, plane, plane.wcs, {dataset_id, &request, &p}, extver);
      piece.planes.push_back({plane.extname, out.current_hdu()});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

// Cuts from the planes of an open file: each plane's box read from disk.
std::vector<CutoutPiece> cut_file_planes(fits::File& in, const Source& src, const std::vector<Planned>& planned,
                                         const CutoutRequest& request, fits::File& out, std::string_view dataset_id,
                                         int extver_start) {
  return cut_planes(src, planned, request, out, dataset_id, extver_start, [&](const fits::PixelBox& box) {
    return [&in, &src, box](size_t i, auto&& write) {
      const Plane& plane = src.planes[i];
      in.move_to_hdu(plane.hdu);
      with_pixel_type(plane.bitpix, src.path, [&]<typename T>(T) { write(in.read_subset<T>(box)); });
    };
  });
}

// Cuts from computed pixels: one call of pixels(box) per box gives all planes.
std::vector<CutoutPiece> cut_computed_planes(const ComputedExposure& source, const Source& src,
                                             const std::vector<Planned>& planned, const CutoutRequest& request,
                                             fits::File& out, std::string_view dataset_id, int extver_start) {
  return cut_planes(src, planned, request, out, dataset_id, extver_start, [&](const fits::PixelBox& box) {
    Exposure e = source.pixels(box);
    if (e.image.width != box.width || e.image.height != box.height || e.mask.width != box.width ||
        e.mask.height != box.height || e.variance.width != box.width || e.variance.height != box.height) {
      throw std::logic_error(fmt::format("{}: computed pixels for {} are not {}x{}", src.path.filename().string(),
                                         section_text(box), box.width, box.height));
    }
    return [e = std::move(e), &src](size_t i, auto&& write) {
      const std::string& name = src.planes[i].extname;
      if (name == "IMAGE") {
        write(e.image);
      } else if (name == "MASK") {
        write(e.mask);
      } else {
        write(e.variance);
      }
    };
  });
}

// NoWantedPlane unless the request wants one of the source's planes.
void check_wanted_planes(const Source& src, const CutoutRequest& request) {
  std::vector<std::string> names;
  for (const Plane& plane : src.planes) {
    if (request.wants(plane.extname)) return;
    names.push_back(plane.extname.empty() ? "IMAGE" : plane.extname);
  }
  throw NoWantedPlane(fmt::format("its plane{} {}, not {}", names.size() == 1 ? " is" : "s are", fmt::join(names, ", "),
                                  fmt::join(request.planes, ", ")));
}

// Boxes come from the first plane's WCS (IMAGE in calexps); every plane is
// cut with the same box, each keeping its own WCS.
std::vector<Planned> plan_source(const Source& src, const CutoutRequest& request) {
  check_wanted_planes(src, request);
  const Plane& first = src.planes.front();
  return plan(request, first.wcs ? &*first.wcs : nullptr, first.width, first.height, src.path.filename().string());
}

}  // namespace

std::vector<CutoutPiece> append_cutouts(const std::filesystem::path& source, const CutoutRequest& request,
                                        fits::File& out, std::string_view dataset_id, int extver_start) {
  auto in = fits::File::open(source);
  const Source src = describe(in);
  return cut_file_planes(in, src, plan_source(src, request), request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_cutout(const std::filesystem::path& source, const CutoutRequest& request,
                                      const std::filesystem::path& out_path, std::string_view dataset_id) {
  auto in = fits::File::open(source);
  const Source src = describe(in);
  // Planned before the output exists, so a failed request leaves no file behind.
  const auto planned = plan_source(src, request);
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(src.primary, dataset_id));
  auto pieces = cut_file_planes(in, src, planned, request, out, dataset_id, 1);
  out.close();
  return pieces;
}

struct CutoutSource::Impl {
  Source source;
  // A WCS may not be used by two threads at once (wcs/wcs.hpp): planning
  // takes turns; writing headers only reads it.
  std::mutex planning;
};

CutoutSource::CutoutSource(const std::filesystem::path& path) : impl_(std::make_unique<Impl>()) {
  auto in = fits::File::open(path);
  impl_->source = describe(in);
}

CutoutSource::~CutoutSource() = default;

std::vector<CutoutPiece> cutout_headers(const CutoutSource& source, const CutoutRequest& request,
                                        std::string_view dataset_id, int extver_start,
                                        std::vector<PlaneHeader>& planes) {
  const Source& src = source.impl_->source;
  std::vector<Planned> planned;
  {
    std::lock_guard lock(source.impl_->planning);
    planned = plan_source(src, request);
  }
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    for (const Plane& plane : src.planes) {
      if (!request.wants(plane.extname)) continue;
      int reserve = 0;
      with_pixel_type(plane.bitpix, src.path,
                      [&]<typename T>(T) { reserve = header_reserve(box_bytes<T>(p.box), src.primary, plane); });
      auto header = fits::HeaderText::image(plane.bitpix, p.box.width, p.box.height, plane.extname, reserve);
      write_plane_header(header, src.primary, plane, plane.wcs, {dataset_id, &request, &p}, extver);
      planes.push_back({{plane.hdu, plane.bitpix, p.box}, header.bytes()});
      piece.planes.push_back({plane.extname, static_cast<int>(planes.size()) + 1});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

namespace {

Source describe_computed(const ComputedExposure& source) {
  if (!source.pixels) throw std::invalid_argument("cutout: a computed exposure without a pixel function");
  auto in = fits::File::open(source.headers);
  return describe(in, true);
}

}  // namespace

std::vector<CutoutPiece> append_cutouts(const ComputedExposure& source, const CutoutRequest& request,
                                        fits::File& out, std::string_view dataset_id, int extver_start) {
  const Source src = describe_computed(source);
  return cut_computed_planes(source, src, plan_source(src, request), request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_cutout(const ComputedExposure& source, const CutoutRequest& request,
                                      const std::filesystem::path& out_path, std::string_view dataset_id) {
  const Source src = describe_computed(source);
  const auto planned = plan_source(src, request);
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(src.primary, dataset_id));
  auto pieces = cut_computed_planes(source, src, planned, request, out, dataset_id, 1);
  out.close();
  return pieces;
}

// ---------------------------------------------------------------------------
// Public: coadds across patches
// ---------------------------------------------------------------------------

namespace {

// A patch placed on the union grid of the patches of its tract.
struct GridPatch {
  const Source* source = nullptr;
  long ox = 0, oy = 0;  // origin of the patch in the reference patch's grid
};

struct PatchGrid {
  std::vector<GridPatch> patches;  // as given (sorted by path); the first is the reference grid
  fits::PixelBox bounds;           // union of the patches, reference grid
  wcs::Wcs grid_wcs;               // WCS of the union (pixel (0,0) = bounds origin)
};

// `sources`: sorted by path, no path twice.
PatchGrid patch_grid(const std::vector<const Source*>& sources) {
  if (sources.empty()) throw std::invalid_argument("coadd cutout: no patch files given");
  const Source& ref = *sources.front();
  const auto ref_name = ref.path.filename().string();
  if (!ref.planes.front().wcs) throw UnsupportedDataset(fmt::format("{}: no celestial WCS", ref.path.string()));
  const auto [ref_sig, ref_crpix] = pixel_grid_signature(*ref.planes.front().wcs);
  std::vector<GridPatch> patches;
  long x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  for (const Source* source : sources) {
    const Source& s = *source;
    const auto name = s.path.filename().string();
    if (s.planes.size() != ref.planes.size()) {
      throw std::invalid_argument(fmt::format("coadd cutout: {} has {} image planes, {} has {}", name,
                                              s.planes.size(), ref_name, ref.planes.size()));
    }
    for (size_t i = 0; i < s.planes.size(); ++i) {
      if (s.planes[i].extname != ref.planes[i].extname || s.planes[i].bitpix != ref.planes[i].bitpix) {
        throw std::invalid_argument(fmt::format("coadd cutout: plane {} of {} ({}, BITPIX {}) differs from {} ({}, BITPIX {})",
                                                i + 1, name, s.planes[i].extname, s.planes[i].bitpix, ref_name,
                                                ref.planes[i].extname, ref.planes[i].bitpix));
      }
    }
    if (!s.planes.front().wcs) throw std::invalid_argument(fmt::format("coadd cutout: {} has no celestial WCS", name));
    const auto [sig, crpix] = pixel_grid_signature(*s.planes.front().wcs);
    const double dx = ref_crpix.first - crpix.first, dy = ref_crpix.second - crpix.second;
    if (sig != ref_sig || std::abs(dx - std::round(dx)) > 1e-6 || std::abs(dy - std::round(dy)) > 1e-6) {
      throw std::invalid_argument(fmt::format(
          "coadd cutout: {} and {} are not on one pixel grid (their WCSs differ by more than an integer CRPIX shift)",
          name, ref_name));
    }
    GridPatch p{source, std::lround(dx), std::lround(dy)};
    const auto& pl = s.planes.front();
    if (patches.empty()) {
      x0 = p.ox, y0 = p.oy, x1 = p.ox + pl.width, y1 = p.oy + pl.height;
    } else {
      x0 = std::min(x0, p.ox), y0 = std::min(y0, p.oy);
      x1 = std::max(x1, p.ox + pl.width), y1 = std::max(y1, p.oy + pl.height);
    }
    patches.push_back(p);
  }
  fits::PixelBox bounds{x0, y0, x1 - x0, y1 - y0};
  wcs::Wcs grid = ref.planes.front().wcs->shifted(static_cast<double>(x0), static_cast<double>(y0));
  return {std::move(patches), bounds, std::move(grid)};
}

// A run of pixels of one row of a box from one patch (-1: none); x
// relative to the box.
struct OwnerRun {
  int patch = -1;
  long x0 = 0, width = 0;
  bool operator==(const OwnerRun&) const = default;
};

// Consecutive rows of a box (y0 relative to it) with the same runs.
struct OwnerBand {
  long y0 = 0, rows = 0;
  std::vector<OwnerRun> runs{};
};

// Which patch each pixel of `box` (union grid) comes from: the one in which
// it lies farthest from the patch edge (ties: the earlier patch), none where
// no patch covers it; as bands of rows with equal runs. Row by row: where
// one patch alone covers a stretch of the row it owns it, and only where
// patches overlap are the pixels weighed one by one, so a 4096 x 4096 box
// costs little more than its few overlaps.
std::vector<OwnerBand> owner_bands(const PatchGrid& g, const fits::PixelBox& box) {
  struct Candidate {
    int patch;
    long x0, x1;  // the patch's columns in the union grid
    long dy;      // distance of the row from the patch's top or bottom edge
  };
  const long bx0 = box.x0, bx1 = box.x0 + box.width;
  std::vector<OwnerBand> bands;
  std::vector<OwnerRun> runs;
  std::vector<Candidate> here;
  std::vector<long> cuts;
  const auto add_run = [&](int k, long x0, long width) {
    if (width <= 0) return;
    if (!runs.empty() && runs.back().patch == k) {
      runs.back().width += width;
    } else {
      runs.push_back({k, x0 - bx0, width});
    }
  };
  for (long y = box.y0; y < box.y0 + box.height; ++y) {
    here.clear();
    cuts = {bx0, bx1};
    for (size_t k = 0; k < g.patches.size(); ++k) {
      const auto& p = g.patches[k];
      const auto& pl = p.source->planes.front();
      const long px0 = p.ox - g.bounds.x0, py0 = p.oy - g.bounds.y0;
      const long px1 = px0 + pl.width, py1 = py0 + pl.height;
      if (y < py0 || y >= py1 || px1 <= bx0 || px0 >= bx1) continue;
      here.push_back({static_cast<int>(k), px0, px1, std::min(y - py0, py1 - 1 - y)});
      cuts.push_back(std::clamp(px0, bx0, bx1));
      cuts.push_back(std::clamp(px1, bx0, bx1));
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    runs.clear();
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      const long s0 = cuts[c], s1 = cuts[c + 1];
      int only = -1, covering = 0;
      for (const auto& cand : here) {
        if (cand.x0 <= s0 && cand.x1 >= s1) {
          only = cand.patch;
          ++covering;
        }
      }
      if (covering <= 1) {
        add_run(only, s0, s1 - s0);
        continue;
      }
      for (long x = s0; x < s1; ++x) {
        int owner = -1;
        long best = -1;
        for (const auto& cand : here) {  // in patch order: ties keep the earlier patch
          if (cand.x0 > x || cand.x1 <= x) continue;
          const long score = std::min(cand.dy, std::min(x - cand.x0, cand.x1 - 1 - x));
          if (score > best) {
            best = score;
            owner = cand.patch;
          }
        }
        add_run(owner, x, 1);
      }
    }
    if (!bands.empty() && bands.back().runs == runs) {
      ++bands.back().rows;
    } else {
      bands.push_back({y - box.y0, 1, runs});
    }
  }
  return bands;
}

// What one cutout box takes from the patches, and the metadata it carries.
struct BoxSupply {
  std::vector<OwnerBand> bands;                       // owner_bands()
  std::vector<std::optional<fits::PixelBox>> supply;  // per patch: bounding box of its pixels (union grid)
  size_t meta = 0;                                    // the first supplying patch: metadata and WCS
  int used = 0;                                       // number of supplying patches
  std::string patch_list;                             // their PATCH names (provenance)
  std::vector<TypedCard> metadata;
};

BoxSupply box_supply(const PatchGrid& g, const fits::PixelBox& box) {
  BoxSupply s;
  s.bands = owner_bands(g, box);
  s.supply.resize(g.patches.size());
  for (const auto& band : s.bands) {
    for (const auto& run : band.runs) {
      if (run.patch < 0) continue;
      auto& b = s.supply[static_cast<size_t>(run.patch)];
      const fits::PixelBox r{box.x0 + run.x0, box.y0 + band.y0, run.width, band.rows};
      if (!b) {
        b = r;
      } else {
        const long bx1 = std::max(b->x0 + b->width, r.x0 + r.width), by1 = std::max(b->y0 + b->height, r.y0 + r.height);
        b->x0 = std::min(b->x0, r.x0);
        b->y0 = std::min(b->y0, r.y0);
        b->width = bx1 - b->x0;
        b->height = by1 - b->y0;
      }
    }
  }
  for (size_t k = g.patches.size(); k-- > 0;) {
    if (s.supply[k]) s.meta = k;
  }
  for (size_t k = 0; k < g.patches.size(); ++k) {
    if (!s.supply[k]) continue;
    ++s.used;
    const auto& src = *g.patches[k].source;
    const auto id = card_string(src.primary, "PATCH").value_or(src.path.filename().string());
    s.patch_list += (s.patch_list.empty() ? "" : " ") + id;
  }
  s.metadata = g.patches[s.meta].source->primary;
  if (s.used > 1) std::erase_if(s.metadata, [](const TypedCard& c) { return c.keyword == "PATCH"; });
  return s;
}

// The cards of plane `pi` of a coadd cutout: the metadata patch's plane,
// its WCS moved to the union grid and then to the box, provenance, and the
// patches used when there are several.
void write_coadd_plane_header(fits::KeywordWriter& out, const PatchGrid& g, const BoxSupply& s, size_t pi,
                              const CutoutRequest& request, const Planned& p, std::string_view dataset_id,
                              int extver) {
  const auto& meta_patch = g.patches[s.meta];
  const Plane& plane = meta_patch.source->planes[pi];
  std::optional<wcs::Wcs> grid_wcs;
  if (plane.wcs) {
    grid_wcs = plane.wcs->shifted(static_cast<double>(g.bounds.x0 - meta_patch.ox),
                                  static_cast<double>(g.bounds.y0 - meta_patch.oy));
  }
  Plane shown = plane;
  shown.ltv1 = 0.0;  // the union grid is the parent of this cutout
  shown.ltv2 = 0.0;
  write_plane_header(out, s.metadata, shown, grid_wcs, {dataset_id, &request, &p}, extver);
  if (s.used > 1) out.write_string("PSPATCHS", s.patch_list, "patches the pixels come from");
}

int coadd_header_reserve(const BoxSupply& s, const Plane& plane, const fits::PixelBox& box,
                         const std::filesystem::path& path) {
  int reserve = 0;
  with_pixel_type(plane.bitpix, path, [&]<typename T>(T) {
    reserve = header_reserve(box_bytes<T>(box), s.metadata, plane, 1);  // + PSPATCHS
  });
  return reserve;
}

template <typename T>
T fill_value(const Plane& plane) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::numeric_limits<T>::quiet_NaN();
  } else {
    const auto bit = card_number(plane.cards, "MP_NO_DATA");
    if (bit && *bit >= 0 && *bit < static_cast<double>(sizeof(T) * 8 - (std::is_signed_v<T> ? 1 : 0))) {
      return static_cast<T>(T{1} << static_cast<int>(*bit));
    }
    return T{};
  }
}

// The bytes of one element of value v as FITS stores it (big-endian).
template <typename T>
std::string big_endian_bytes(T v) {
  std::array<char, sizeof(T)> b{};
  std::memcpy(b.data(), &v, sizeof(T));
  if constexpr (std::endian::native == std::endian::little) std::reverse(b.begin(), b.end());
  return std::string(b.data(), b.size());
}

// The box's bands with each run's source pixel in its patch for the band's
// first row. `index` maps a grid patch to the number the caller knows it by.
std::vector<RowBand> row_bands(const PatchGrid& g, const BoxSupply& s, const fits::PixelBox& box,
                               const std::vector<int>& index) {
  std::vector<RowBand> bands;
  for (const auto& b : s.bands) {
    RowBand band{.rows = b.rows};
    for (const auto& r : b.runs) {
      PatchRun run{.patch = -1, .width = r.width};
      if (r.patch >= 0) {
        const auto& p = g.patches[static_cast<size_t>(r.patch)];
        run.patch = index[static_cast<size_t>(r.patch)];
        run.src_x = box.x0 + r.x0 + g.bounds.x0 - p.ox;  // union grid -> the patch's own pixels
        run.src_y = box.y0 + b.y0 + g.bounds.y0 - p.oy;
      }
      band.runs.push_back(run);
    }
    bands.push_back(std::move(band));
  }
  return bands;
}

// Patch files open for reading with cfitsio, on their union grid.
struct Mosaic {
  std::vector<fits::File> files;  // sorted by path
  std::vector<Source> sources;    // parallel to files; the grid points into it (kept in place)
  std::optional<PatchGrid> grid;  // set by open_mosaic
};

std::unique_ptr<Mosaic> open_mosaic(const std::vector<std::filesystem::path>& paths) {
  if (paths.empty()) throw std::invalid_argument("coadd cutout: no patch files given");
  std::vector<std::filesystem::path> sorted = paths;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  auto m = std::make_unique<Mosaic>();
  m->sources.reserve(sorted.size());
  for (const auto& f : sorted) {
    m->files.push_back(fits::File::open(f));
    m->sources.push_back(describe(m->files.back()));
  }
  std::vector<const Source*> sources;
  for (const auto& s : m->sources) sources.push_back(&s);
  m->grid.emplace(patch_grid(sources));
  return m;
}

std::vector<CutoutPiece> cut_mosaic(Mosaic& m, const std::vector<Planned>& planned, const CutoutRequest& request,
                                    fits::File& out, std::string_view dataset_id, int extver_start) {
  const PatchGrid& g = *m.grid;
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    const BoxSupply s = box_supply(g, p.box);
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    const Source& meta = m.sources[s.meta];
    for (size_t pi = 0; pi < meta.planes.size(); ++pi) {
      const Plane& plane = meta.planes[pi];
      if (!request.wants(plane.extname)) continue;
      with_pixel_type(plane.bitpix, meta.path, [&]<typename T>(T) {
        fits::Image<T> img(p.box.width, p.box.height, fill_value<T>(plane));
        for (size_t k = 0; k < g.patches.size(); ++k) {
          if (!s.supply[k]) continue;
          const auto& patch = g.patches[k];
          const fits::PixelBox& b = *s.supply[k];
          // Union grid -> this patch's own pixels.
          const long px = b.x0 + g.bounds.x0 - patch.ox, py = b.y0 + g.bounds.y0 - patch.oy;
          m.files[k].move_to_hdu(m.sources[k].planes[pi].hdu);
          const auto part = m.files[k].read_subset<T>({px, py, b.width, b.height});
          for (const auto& band : s.bands) {
            for (const auto& run : band.runs) {
              if (run.patch != static_cast<int>(k)) continue;
              // Box-relative run -> the part read.
              const long sx = p.box.x0 + run.x0 - b.x0, sy = p.box.y0 + band.y0 - b.y0;
              for (long r = 0; r < band.rows; ++r) {
                std::copy_n(&part.at(sx, sy + r), run.width, &img.at(run.x0, band.y0 + r));
              }
            }
          }
        }
        fits::ImageWriteOptions o;
        o.extname = plane.extname;
        o.header_reserve = coadd_header_reserve(s, plane, p.box, meta.path);
        out.append_image(img, o);
      });
      write_coadd_plane_header(out, g, s, pi, request, p, dataset_id, extver);
      piece.planes.push_back({plane.extname, out.current_hdu()});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

}  // namespace

std::vector<CutoutPiece> append_coadd_cutouts(const std::vector<std::filesystem::path>& patch_files,
                                              const CutoutRequest& request, fits::File& out,
                                              std::string_view dataset_id, int extver_start) {
  const auto m = open_mosaic(patch_files);
  check_wanted_planes(m->sources.front(), request);
  const auto planned = plan(request, &m->grid->grid_wcs, m->grid->bounds.width, m->grid->bounds.height, "coadd");
  return cut_mosaic(*m, planned, request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_coadd_cutout(const std::vector<std::filesystem::path>& patch_files,
                                            const CutoutRequest& request, const std::filesystem::path& out_path,
                                            std::string_view dataset_id) {
  const auto m = open_mosaic(patch_files);
  check_wanted_planes(m->sources.front(), request);
  const auto planned = plan(request, &m->grid->grid_wcs, m->grid->bounds.width, m->grid->bounds.height, "coadd");
  std::vector<TypedCard> primary = m->sources.front().primary;
  if (m->sources.size() > 1) std::erase_if(primary, [](const TypedCard& c) { return c.keyword == "PATCH"; });
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(primary, dataset_id));
  auto pieces = cut_mosaic(*m, planned, request, out, dataset_id, 1);
  out.close();
  return pieces;
}

std::vector<CutoutPiece> coadd_cutout_headers(const std::vector<const CutoutSource*>& patches,
                                              const CutoutRequest& request, std::string_view dataset_id,
                                              int extver_start, std::vector<PlaneHeader>& planes) {
  // The grid takes the patches sorted by path, each once, as the cfitsio
  // writer does; `index` gives back the caller's numbers.
  std::vector<int> order(patches.size());
  for (size_t i = 0; i < patches.size(); ++i) order[i] = static_cast<int>(i);
  const auto path_of = [&](int i) -> const std::filesystem::path& {
    return patches[static_cast<size_t>(i)]->impl_->source.path;
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return path_of(a) < path_of(b); });
  order.erase(std::unique(order.begin(), order.end(), [&](int a, int b) { return path_of(a) == path_of(b); }),
              order.end());
  std::vector<const Source*> sources;
  for (const int i : order) sources.push_back(&patches[static_cast<size_t>(i)]->impl_->source);
  const PatchGrid g = patch_grid(sources);
  check_wanted_planes(*sources.front(), request);
  const auto planned = plan(request, &g.grid_wcs, g.bounds.width, g.bounds.height, "coadd");
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    const BoxSupply s = box_supply(g, p.box);
    const auto bands = row_bands(g, s, p.box, order);
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    const Source& meta = *g.patches[s.meta].source;
    for (size_t pi = 0; pi < meta.planes.size(); ++pi) {
      const Plane& plane = meta.planes[pi];
      if (!request.wants(plane.extname)) continue;
      auto header = fits::HeaderText::image(plane.bitpix, p.box.width, p.box.height, plane.extname,
                                            coadd_header_reserve(s, plane, p.box, meta.path));
      write_coadd_plane_header(header, g, s, pi, request, p, dataset_id, extver);
      PlanePixels pixels{.source_hdu = plane.hdu, .bitpix = plane.bitpix, .box = p.box};
      pixels.bands = bands;
      pixels.patch_hdus.assign(patches.size(), 0);
      for (size_t k = 0; k < g.patches.size(); ++k) {
        pixels.patch_hdus[static_cast<size_t>(order[k])] = g.patches[k].source->planes[pi].hdu;
      }
      with_pixel_type(plane.bitpix, meta.path, [&]<typename T>(T) { pixels.fill = big_endian_bytes(fill_value<T>(plane)); });
      planes.push_back({std::move(pixels), header.bytes()});
      piece.planes.push_back({plane.extname, static_cast<int>(planes.size()) + 1});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

std::pair<std::string, std::pair<double, double>> pixel_grid_signature(const wcs::Wcs& w) {
  const std::string records = w.header_records();
  std::string rest;
  double c1 = 0.0, c2 = 0.0;
  for (size_t i = 0; i + 80 <= records.size(); i += 80) {
    const std::string_view card(records.data() + i, 80);
    const std::string_view key = card.substr(0, 6);  // wcslib writes "CRPIXn  = value"
    if ((key == "CRPIX1" || key == "CRPIX2") && card.substr(6, 4) == "  = ") {
      const std::string v(card.substr(10));
      (key == "CRPIX1" ? c1 : c2) = std::strtod(v.c_str(), nullptr);
    } else {
      rest += card;
    }
  }
  return {rest, {c1, c2}};
}

}  // namespace pixserve::image
