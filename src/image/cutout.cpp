#include "image/cutout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
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

// Boxes come from the first plane's WCS (IMAGE in calexps); every plane is
// cut with the same box, each keeping its own WCS.
std::vector<Planned> plan_source(const Source& src, const CutoutRequest& request) {
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

struct Patch {
  fits::File file;
  Source source;
  long ox = 0, oy = 0;  // origin of the patch in the reference patch's grid
};

struct Mosaic {
  std::vector<Patch> patches;  // sorted by path; the first is the reference grid
  fits::PixelBox bounds;       // union of the patches, reference grid
  wcs::Wcs grid_wcs;           // WCS of the union (pixel (0,0) = bounds origin)
};

Mosaic open_mosaic(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw std::invalid_argument("coadd cutout: no patch files given");
  std::vector<std::filesystem::path> sorted = files;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<Patch> patches;
  for (const auto& f : sorted) {
    auto file = fits::File::open(f);
    Source s = describe(file);
    patches.push_back({std::move(file), std::move(s), 0, 0});
  }
  const Source& ref = patches.front().source;
  if (!ref.planes.front().wcs) throw UnsupportedDataset(fmt::format("{}: no celestial WCS", sorted.front().string()));
  const auto [ref_sig, ref_crpix] = pixel_grid_signature(*ref.planes.front().wcs);
  long x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  for (auto& p : patches) {
    const Source& s = p.source;
    const auto name = s.path.filename().string();
    if (s.planes.size() != ref.planes.size()) {
      throw std::invalid_argument(fmt::format("coadd cutout: {} has {} image planes, {} has {}", name,
                                              s.planes.size(), sorted.front().filename().string(), ref.planes.size()));
    }
    for (size_t i = 0; i < s.planes.size(); ++i) {
      if (s.planes[i].extname != ref.planes[i].extname || s.planes[i].bitpix != ref.planes[i].bitpix) {
        throw std::invalid_argument(fmt::format("coadd cutout: plane {} of {} ({}, BITPIX {}) differs from {} ({}, BITPIX {})",
                                                i + 1, name, s.planes[i].extname, s.planes[i].bitpix,
                                                sorted.front().filename().string(), ref.planes[i].extname,
                                                ref.planes[i].bitpix));
      }
    }
    if (!s.planes.front().wcs) throw std::invalid_argument(fmt::format("coadd cutout: {} has no celestial WCS", name));
    const auto [sig, crpix] = pixel_grid_signature(*s.planes.front().wcs);
    const double dx = ref_crpix.first - crpix.first, dy = ref_crpix.second - crpix.second;
    if (sig != ref_sig || std::abs(dx - std::round(dx)) > 1e-6 || std::abs(dy - std::round(dy)) > 1e-6) {
      throw std::invalid_argument(fmt::format(
          "coadd cutout: {} and {} are not on one pixel grid (their WCSs differ by more than an integer CRPIX shift)",
          name, sorted.front().filename().string()));
    }
    p.ox = std::lround(dx);
    p.oy = std::lround(dy);
    const auto& pl = s.planes.front();
    if (&p == &patches.front()) {
      x0 = p.ox, y0 = p.oy, x1 = p.ox + pl.width, y1 = p.oy + pl.height;
    } else {
      x0 = std::min(x0, p.ox), y0 = std::min(y0, p.oy);
      x1 = std::max(x1, p.ox + pl.width), y1 = std::max(y1, p.oy + pl.height);
    }
  }
  fits::PixelBox bounds{x0, y0, x1 - x0, y1 - y0};
  wcs::Wcs grid = ref.planes.front().wcs->shifted(static_cast<double>(x0), static_cast<double>(y0));
  return {std::move(patches), bounds, std::move(grid)};
}

// Which patch each pixel of `box` (union grid) comes from: the one in which
// it lies farthest from the patch edge; -1 where no patch covers it.
std::vector<int> owners(const Mosaic& m, const fits::PixelBox& box) {
  std::vector<int> owner(static_cast<size_t>(box.width * box.height), -1);
  std::vector<long> best(owner.size(), -1);
  for (size_t k = 0; k < m.patches.size(); ++k) {
    const auto& p = m.patches[k];
    const auto& pl = p.source.planes.front();
    // Patch box in the union grid.
    const fits::PixelBox pb{p.ox - m.bounds.x0, p.oy - m.bounds.y0, pl.width, pl.height};
    const auto inter = intersect(pb, box);
    if (!inter) continue;
    for (long y = inter->y0; y < inter->y0 + inter->height; ++y) {
      const long dy = std::min(y - pb.y0, pb.y0 + pb.height - 1 - y);
      for (long x = inter->x0; x < inter->x0 + inter->width; ++x) {
        const long score = std::min(dy, std::min(x - pb.x0, pb.x0 + pb.width - 1 - x));
        const size_t i = static_cast<size_t>((y - box.y0) * box.width + (x - box.x0));
        if (score > best[i]) {  // strictly: ties keep the earlier patch
          best[i] = score;
          owner[i] = static_cast<int>(k);
        }
      }
    }
  }
  return owner;
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

}  // namespace

namespace {

std::vector<CutoutPiece> cut_mosaic(Mosaic& m, const std::vector<Planned>& planned, const CutoutRequest& request,
                                    fits::File& out, std::string_view dataset_id, int extver_start) {
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    const auto owner = owners(m, p.box);
    // Per patch, the bounding box of the pixels it supplies (union grid).
    std::vector<std::optional<fits::PixelBox>> supply(m.patches.size());
    for (long y = 0; y < p.box.height; ++y) {
      for (long x = 0; x < p.box.width; ++x) {
        const int k = owner[static_cast<size_t>(y * p.box.width + x)];
        if (k < 0) continue;
        auto& s = supply[static_cast<size_t>(k)];
        const long ux = p.box.x0 + x, uy = p.box.y0 + y;
        if (!s) {
          s = fits::PixelBox{ux, uy, 1, 1};
        } else {
          const long sx1 = std::max(s->x0 + s->width, ux + 1), sy1 = std::max(s->y0 + s->height, uy + 1);
          s->x0 = std::min(s->x0, ux);
          s->y0 = std::min(s->y0, uy);
          s->width = sx1 - s->x0;
          s->height = sy1 - s->y0;
        }
      }
    }
    // Metadata from the first supplying patch; the list of patches used as provenance.
    size_t meta = 0;
    std::string patch_list;
    for (size_t k = m.patches.size(); k-- > 0;) {
      if (supply[k]) meta = k;
    }
    int used = 0;
    for (size_t k = 0; k < m.patches.size(); ++k) {
      if (!supply[k]) continue;
      ++used;
      const auto id = card_string(m.patches[k].source.primary, "PATCH")
                          .value_or(m.patches[k].source.path.filename().string());
      patch_list += (patch_list.empty() ? "" : " ") + id;
    }
    std::vector<TypedCard> metadata = m.patches[meta].source.primary;
    if (used > 1) std::erase_if(metadata, [](const TypedCard& c) { return c.keyword == "PATCH"; });
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    for (size_t pi = 0; pi < m.patches[meta].source.planes.size(); ++pi) {
      const Plane& plane = m.patches[meta].source.planes[pi];
      with_pixel_type(plane.bitpix, m.patches[meta].source.path, [&]<typename T>(T) {
        fits::Image<T> img(p.box.width, p.box.height, fill_value<T>(plane));
        for (size_t k = 0; k < m.patches.size(); ++k) {
          if (!supply[k]) continue;
          auto& patch = m.patches[k];
          const fits::PixelBox& s = *supply[k];
          // Union grid -> this patch's own pixels.
          const long px = s.x0 + m.bounds.x0 - patch.ox, py = s.y0 + m.bounds.y0 - patch.oy;
          patch.file.move_to_hdu(patch.source.planes[pi].hdu);
          const auto part = patch.file.read_subset<T>({px, py, s.width, s.height});
          for (long y = 0; y < s.height; ++y) {
            for (long x = 0; x < s.width; ++x) {
              const long ox = s.x0 - p.box.x0 + x, oy = s.y0 - p.box.y0 + y;
              if (owner[static_cast<size_t>(oy * p.box.width + ox)] == static_cast<int>(k)) img.at(ox, oy) = part.at(x, y);
            }
          }
        }
        fits::ImageWriteOptions o;
        o.extname = plane.extname;
        o.header_reserve = header_reserve(img.pixels.size() * sizeof(T), metadata, plane, 1);  // + PSPATCHS
        out.append_image(img, o);
      });
      // Each plane's own WCS, moved to the union grid, then to the box.
      std::optional<wcs::Wcs> grid_wcs;
      if (plane.wcs) {
        const auto& meta_patch = m.patches[meta];
        grid_wcs = plane.wcs->shifted(static_cast<double>(m.bounds.x0 - meta_patch.ox),
                                      static_cast<double>(m.bounds.y0 - meta_patch.oy));
      }
      Plane shown = plane;
      shown.ltv1 = 0.0;  // the union grid is the parent of this cutout
      shown.ltv2 = 0.0;
      write_plane_header(out, metadata, shown, grid_wcs, {dataset_id, &request, &p}, extver);
      if (used > 1) out.write_string("PSPATCHS", patch_list, "patches the pixels come from");
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
  Mosaic m = open_mosaic(patch_files);
  const auto planned = plan(request, &m.grid_wcs, m.bounds.width, m.bounds.height, "coadd");
  return cut_mosaic(m, planned, request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_coadd_cutout(const std::vector<std::filesystem::path>& patch_files,
                                            const CutoutRequest& request, const std::filesystem::path& out_path,
                                            std::string_view dataset_id) {
  Mosaic m = open_mosaic(patch_files);
  const auto planned = plan(request, &m.grid_wcs, m.bounds.width, m.bounds.height, "coadd");
  std::vector<TypedCard> primary = m.patches.front().source.primary;
  if (m.patches.size() > 1) std::erase_if(primary, [](const TypedCard& c) { return c.keyword == "PATCH"; });
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(primary, dataset_id));
  auto pieces = cut_mosaic(m, planned, request, out, dataset_id, 1);
  out.close();
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
