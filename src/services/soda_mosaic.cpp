#include "services/soda_mosaic.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <utility>

#include "dali/errors.hpp"
#include "fits/fits.hpp"
#include "fits/header_text.hpp"
#include "image/cutout.hpp"
#include "repo/coadd_mosaics.hpp"
#include "services/soda.hpp"

namespace pixserve::services {
// Named (not anonymous): the folder is compiled as unity batches.
namespace soda_mosaic_detail {

namespace fs = std::filesystem;

constexpr std::uint64_t kFitsBlock = 2880;
// Pixels per strip (a strip's state is under 10 MB). Measured on a 3.2
// Mpixel mosaic of 12 patches: 2^18 took 1.1 s, mostly page faults for the
// freshly allocated state of each strip (freed memory above glibc's trim
// threshold goes back to the system); 2^16 0.73 s; 2^15 1.7 s (each strip
// opens and reads the patches it touches again).
constexpr std::uint64_t kStripPixels = std::uint64_t{1} << 16;
// A copy (the tract's own grid) keeps no per-pixel state: larger strips
// read each patch fewer times (a 100 MB mosaic of 4 patches: 0.6 s).
constexpr std::uint64_t kCopyStripPixels = std::uint64_t{1} << 18;
// Input patches listed one by one in the IMAGE header (NPATCH counts all).
constexpr std::size_t kListedPatches = 999;

std::uint64_t fits_block_padded(std::uint64_t n) { return (n + kFitsBlock - 1) / kFitsBlock * kFitsBlock; }

// The 80-character records of one HDU of a file whose keys `keep` accepts.
template <typename Keep>
std::string records_of(fits::File& file, std::string_view extname, Keep keep) {
  if (!file.move_to_named_hdu(extname)) return {};
  int nkeys = 0;
  const std::string all = file.header_records(nkeys);
  std::string out;
  for (std::size_t i = 0; i + 80 <= all.size(); i += 80) {
    std::string_view card(all.data() + i, 80);
    std::string_view key = card.substr(0, 8);
    if (card.starts_with("HIERARCH ")) {
      key = card.substr(9);
      key = key.substr(0, key.find_first_of(" ="));
    } else {
      key = key.substr(0, key.find(' '));
    }
    if (keep(key)) out += card;
  }
  return out;
}

bool primary_card_to_keep(std::string_view key) {
  static constexpr std::array<std::string_view, 10> kKeys = {"DSTYPE", "INSTRUME", "TELESCOP", "OBJECT", "BAND",
                                                             "FILTER", "SKYMAP",   "MAGZERO",  "BGSUB",  "VISIT"};
  return std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end();
}

std::string plane_header(const MosaicPlan& plan, std::string_view extname, int bitpix, int extver,
                         const std::string& cards, bool with_provenance) {
  auto h = fits::HeaderText::image(bitpix, plan.grid.width, plan.grid.height, extname);
  h.write_int("EXTVER", extver, "mosaic number in this file");
  h.write_string("PSDSID", plan.dataset_id, "logical coadd this mosaic is cut from");
  plan.grid.wcs.write_to(h);
  h.add_records(cards);
  h.write_string("RESAMPK", image::kernel_name(plan.kernel), "resampling kernel");
  if (with_provenance) {
    h.write_string("MOSVER", "pixserve-mosaic-1", "mosaic algorithm");
    h.write_int("NPATCH", static_cast<long long>(plan.inputs.size()), "input coadd patches the grid touches");
    for (std::size_t i = 0; i < plan.inputs.size() && i < kListedPatches; ++i) {
      h.write_string(fmt::format("PATCH{:03}", i + 1), plan.inputs[i]);
    }
    if (plan.inputs.size() > kListedPatches) {
      h.write_comment(fmt::format("PATCH001 .. PATCH{} list the first {} of {} input patches", kListedPatches,
                                  kListedPatches, plan.inputs.size()));
    }
  }
  return h.bytes();
}

// The grid of a mosaic: `tract_grid`'s pixels around the region when given
// (no grid option was), else a TAN grid from the options, at the inputs'
// nominal scale (their CD matrix) by default.
image::MosaicGrid mosaic_grid(const sky::Shape& region, const MosaicOptions& options,
                              const std::optional<wcs::Wcs>& tract_grid, const fs::path& first_input,
                              std::optional<double> record_scale, std::uint64_t max_pixels) {
  auto grid_error = [](const std::string& what) {
    return dali::UsageError(fmt::format("the mosaic's grid (POS/CIRCLE/POLYGON, GRID_CENTER, GRID_SCALE): {}", what));
  };
  try {
    if (tract_grid) return image::grid_covering(region, *tract_grid, max_pixels);
    double scale = options.scale_arcsec.value_or(record_scale.value_or(0.0));
    if (!options.scale_arcsec) {
      auto file = fits::File::open(first_input);
      if (file.move_to_named_hdu("IMAGE")) scale = wcs::Wcs::from_fits(file).linear_scale_deg() * 3600.0;
    }
    return image::tan_grid_covering(region, options.center.value_or(image::region_center(region)), scale,
                                    options.rotation_deg.value_or(0.0), max_pixels);
  } catch (const std::invalid_argument& e) {
    throw grid_error(e.what());
  } catch (const wcs::WcsError& e) {
    throw grid_error(e.what());
  }
}

// A plan of `record` over `region` without inputs yet: its grid (as
// mosaic_grid()) and kernel.
MosaicPlan empty_plan(const repo::DatasetRecord& record, const sky::Shape& region, const MosaicOptions& options,
                      const std::optional<wcs::Wcs>& tract_grid, const fs::path& first_input,
                      std::uint64_t max_pixels) {
  return MosaicPlan{.dataset_id = record.dataset_id,
                    .grid = mosaic_grid(region, options, tract_grid, first_input, record.pixel_scale_arcsec, max_pixels),
                    .kernel = options.kernel.value_or(image::Kernel::lanczos3),
                    .tracts = {},
                    .inputs = {},
                    .image_cards = {},
                    .mask_cards = {},
                    .variance_cards = {}};
}

// The cards a mosaic copies from its first input: units, mask planes, and
// the primary header's description of the data (band, filter, zero point).
void copy_cards(const fs::path& first_input, MosaicPlan& plan) {
  auto file = fits::File::open(first_input);
  plan.image_cards = records_of(file, "IMAGE", [](std::string_view k) { return k == "BUNIT"; });
  plan.mask_cards = records_of(file, "MASK", [](std::string_view k) { return k.starts_with("MP_"); });
  plan.variance_cards = records_of(file, "VARIANCE", [](std::string_view k) { return k == "BUNIT"; });
  file.move_to_hdu(1);
  int nkeys = 0;
  const std::string primary = file.header_records(nkeys);
  for (std::size_t i = 0; i + 80 <= primary.size(); i += 80) {
    const std::string_view card(primary.data() + i, 80);
    if (primary_card_to_keep(card.substr(0, card.substr(0, 8).find(' ')))) plan.image_cards += card;
  }
}

// Big-endian bytes of n 32-bit values into out (4 n bytes); their view.
template <typename T>
std::string_view big_endian(std::vector<char>& out, const T* values, std::size_t n) {
  static_assert(sizeof(T) == 4);
  if (out.size() < 4 * n) out.resize(4 * n);  // once per size: the buffer is reused for every strip
  char* dst = out.data();
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t w = 0;
    std::memcpy(&w, values + i, 4);
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap32(w);
    std::memcpy(dst + 4 * i, &w, 4);
  }
  return {out.data(), 4 * n};
}

// Scratch files removed on every way out.
struct ScratchFiles {
  std::vector<fs::path> paths;
  ~ScratchFiles() {
    for (const auto& p : paths) {
      std::error_code ec;
      fs::remove(p, ec);
    }
  }
};

}  // namespace soda_mosaic_detail

using namespace soda_mosaic_detail;

MosaicPlan plan_coadd_mosaic(SharedRepository& repository, const repo::DatasetRecord& record, const sky::Shape& shape,
                             const MosaicOptions& options, std::uint64_t max_pixels, const auth::Identity& caller) {
  auto patches_over = [&](const sky::Shape& region) {
    repo::DatasetQuery q;
    q.regions = {region};
    q.dataset_types = {std::string(repo::to_string(record.type))};
    q.collections = {record.collection};
    q.bands = {record.data_id.band};
    q.patches_only = true;
    return repository.find_visible(std::move(q), caller);
  };
  using TractKey = std::pair<std::string, std::int64_t>;
  auto by_tract = [](const std::vector<repo::DatasetRecord>& patches) {
    std::map<TractKey, std::vector<const repo::DatasetRecord*>> tracts;
    for (const auto& p : patches) tracts[{p.data_id.skymap, p.data_id.tract.value_or(0)}].push_back(&p);
    return tracts;
  };
  const auto touched = patches_over(shape);
  if (touched.empty()) {
    throw image::NoOverlap(fmt::format("no patch of {} that the caller may read touches the region", record.dataset_id));
  }
  const auto touched_tracts = by_tract(touched);

  const fs::path first_file = repository.file_of(touched.front());
  std::optional<wcs::Wcs> tract_grid;
  if (touched_tracts.size() == 1 && !options.any()) {
    // The tract's own grid: patch pixels at integer offsets, which the
    // kernel copies unchanged.
    auto file = fits::File::open(repository.file_of(*touched_tracts.begin()->second.front()));
    if (!file.move_to_named_hdu("IMAGE")) throw image::NoOverlap("a patch without an IMAGE plane");
    tract_grid = wcs::Wcs::from_fits(file);
  }
  MosaicPlan plan = empty_plan(record, shape, options, tract_grid, first_file, max_pixels);
  // Every readable patch the grid's pixels touch (the grid is the box
  // around the region, so more than the region's).
  const auto inputs = patches_over(plan.grid.wcs.footprint(plan.grid.width, plan.grid.height));
  for (const auto& [key, members] : by_tract(inputs.empty() ? touched : inputs)) {
    std::vector<fs::path> files;
    for (const auto* p : members) {
      files.push_back(repository.file_of(*p));
      plan.inputs.push_back(p->dataset_id);
    }
    plan.tracts.push_back(std::move(files));
  }
  std::sort(plan.inputs.begin(), plan.inputs.end());
  copy_cards(first_file, plan);
  return plan;
}

MosaicPlan plan_visit_mosaic(SharedRepository& repository, const repo::DatasetRecord& record,
                             const std::optional<sky::Shape>& shape, const MosaicOptions& options,
                             std::uint64_t max_pixels, const auth::Identity& caller) {
  if (!record.data_id.visit || !repo::is_visit_based(record.type)) {
    throw dali::UsageError(fmt::format("MOSAIC=visit: {} ({}) is not an image of a visit", record.dataset_id,
                                       repo::to_string(record.type)));
  }
  // A raw's pixels have no sky grid until ISR: its visit's calexps.
  const repo::DatasetType type = record.type == repo::DatasetType::raw ? repo::DatasetType::calexp : record.type;
  repo::DatasetQuery q;
  q.dataset_types = {std::string(repo::to_string(type))};
  q.collections = {record.collection};
  q.visits = {*record.data_id.visit};
  if (shape) q.regions = {*shape};
  auto ccds = repository.find_visible(std::move(q), caller);
  std::erase_if(ccds, [](const repo::DatasetRecord& r) { return !r.footprint; });
  if (ccds.empty()) {
    throw image::NoOverlap(fmt::format("no {} of visit {} that the caller may read touches the region",
                                       repo::to_string(type), *record.data_id.visit));
  }
  // Without a region: the whole focal plane (the CCDs' hull).
  std::optional<sky::Shape> region = shape;
  if (!region) {
    std::vector<sky::Polygon> footprints;
    for (const auto& c : ccds) footprints.push_back(*c.footprint);
    auto hull = repo::convex_hull(footprints);
    if (!hull) throw dali::UsageError("MOSAIC=visit: the visit's CCDs span more than a hemisphere");
    region = sky::Shape(std::move(*hull));
  }
  const fs::path first_file = repository.file_of(ccds.front());
  MosaicPlan plan = empty_plan(record, *region, options, std::nullopt, first_file, max_pixels);
  // Each CCD is its own grid: a tract of one image (image/mosaic.hpp).
  const auto grid_footprint = plan.grid.wcs.footprint(plan.grid.width, plan.grid.height);
  for (const auto& c : ccds) {
    if (!sky::intersects(*c.footprint, sky::Shape(grid_footprint))) continue;
    plan.tracts.push_back({repository.file_of(c)});
    plan.inputs.push_back(c.dataset_id);
  }
  std::sort(plan.inputs.begin(), plan.inputs.end());
  copy_cards(first_file, plan);
  return plan;
}

MosaicFile::MosaicFile(std::vector<MosaicPlan> plans, fs::path scratch)
    : plans_(std::move(plans)), scratch_(std::move(scratch)) {
  auto primary = fits::HeaderText::primary();
  primary.write_string("ORIGIN", "pixserve SODA", "cutout service");
  primary.write_int("PSNCUT", static_cast<long long>(plans_.size()), "number of cutouts in this file");
  primary_ = primary.bytes();
  size_ = primary_.size();
  int extver = 1;
  for (const auto& p : plans_) {
    headers_.push_back({plane_header(p, "IMAGE", -32, extver, p.image_cards, true),
                        plane_header(p, "MASK", 32, extver, p.mask_cards, false),
                        plane_header(p, "VARIANCE", -32, extver, p.variance_cards, false)});
    ++extver;
    for (const auto& h : headers_.back()) size_ += h.size() + fits_block_padded(p.grid.pixels() * 4);
  }
}

std::uint64_t MosaicFile::pixels() const noexcept {
  std::uint64_t n = 0;
  for (const auto& p : plans_) n += p.grid.pixels();
  return n;
}

bool MosaicFile::write(const http::ByteSink& sink, const std::function<void(double)>& progress,
                       const std::function<void()>& check_cancelled) const {
  if (!sink(primary_)) return false;
  const double total = static_cast<double>(std::max<std::uint64_t>(pixels(), 1));
  std::uint64_t done = 0;
  const std::string zeros(kFitsBlock, '\0');
  auto pad = [&](std::uint64_t bytes) {
    const auto n = fits_block_padded(bytes) - bytes;
    return n == 0 || sink(std::string_view(zeros).substr(0, static_cast<std::size_t>(n)));
  };
  for (std::size_t k = 0; k < plans_.size(); ++k) {
    const MosaicPlan& plan = plans_[k];
    const image::CoaddMosaic mosaic(plan.tracts, plan.kernel);
    ScratchFiles scratch{{scratch_ / fmt::format("mosaic-{}-mask.tmp", k + 1),
                          scratch_ / fmt::format("mosaic-{}-variance.tmp", k + 1)}};
    std::ofstream mask(scratch.paths[0], std::ios::binary | std::ios::trunc);
    std::ofstream variance(scratch.paths[1], std::ios::binary | std::ios::trunc);
    if (!mask || !variance) throw std::runtime_error("cannot write the mosaic's scratch files in " + scratch_.string());
    if (!sink(headers_[k][0])) return false;
    const auto width = static_cast<std::uint64_t>(plan.grid.width);
    const std::uint64_t strip = mosaic.resamples(plan.grid) ? kStripPixels : kCopyStripPixels;
    const long rows = static_cast<long>(std::max<std::uint64_t>(1, strip / width));
    std::vector<char> bytes;
    for (long y0 = 0; y0 < plan.grid.height; y0 += rows) {
      if (check_cancelled) check_cancelled();
      const fits::PixelBox box{0, y0, plan.grid.width, std::min(rows, plan.grid.height - y0)};
      const image::Exposure strip = mosaic.warp(plan.grid, box);
      const std::size_t n = strip.image.pixels.size();
      const auto m = big_endian(bytes, strip.mask.pixels.data(), n);
      mask.write(m.data(), static_cast<std::streamsize>(m.size()));
      const auto v = big_endian(bytes, strip.variance.pixels.data(), n);
      variance.write(v.data(), static_cast<std::streamsize>(v.size()));
      if (!mask || !variance) throw std::runtime_error("cannot write the mosaic's scratch files in " + scratch_.string());
      if (!sink(big_endian(bytes, strip.image.pixels.data(), n))) return false;
      done += n;
      if (progress) progress(0.95 * static_cast<double>(done) / total);
    }
    mask.close();
    variance.close();
    const std::uint64_t plane_bytes = plan.grid.pixels() * 4;
    if (!pad(plane_bytes)) return false;
    if (!sink(headers_[k][1]) || !http::copy_file_to(scratch.paths[0], plane_bytes, sink) || !pad(plane_bytes)) {
      return false;
    }
    if (!sink(headers_[k][2]) || !http::copy_file_to(scratch.paths[1], plane_bytes, sink) || !pad(plane_bytes)) {
      return false;
    }
  }
  if (progress) progress(1.0);
  return true;
}

}  // namespace pixserve::services
