#include "hips/generate.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "hips/image_io.hpp"
#include "hips/map_files.hpp"
#include "hips/properties.hpp"
#include "hips/tile.hpp"
#include "auth/policy.hpp"
#include "image/render.hpp"
#include "image/resample.hpp"
#include "image/statistics.hpp"
#include "parallel/parallel_for.hpp"
#include "repo/astro_units.hpp"
#include "sky/moc.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::hips {
namespace {

using namespace detail;  // the map directory's files (map_files.hpp)

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kAllskyOrder = 3;
constexpr long kAllskyTile = 64;
constexpr long kAllskyColumns = 27;

// --- the coadds ---
struct Input {
  std::string dataset_id;
  std::string checksum;
  std::filesystem::path file;
  sky::Polygon footprint;
  double pixel_scale_arcsec = 0.0;
  sky::SkyPoint center;
  std::optional<double> t_min{}, t_max{};
};

struct LoadedCoadd {
  fits::Image<float> pixels;
  wcs::Wcs wcs;
};

fits::Image<float> read_science_plane(fits::File& file) {
  if (file.move_to_named_hdu("IMAGE") && file.image_shape().size() == 2) return file.read_image<float>();
  for (int hdu = 1; hdu <= file.hdu_count(); ++hdu) {
    file.move_to_hdu(hdu);
    if (file.current_is_image() && file.image_shape().size() == 2) return file.read_image<float>();
  }
  throw std::runtime_error("no 2-d image in " + file.path().string());
}

std::shared_ptr<const LoadedCoadd> load_coadd(const std::filesystem::path& path) {
  auto file = fits::File::open(path);
  auto pixels = read_science_plane(file);
  auto w = wcs::Wcs::from_fits(file);
  return std::make_shared<const LoadedCoadd>(LoadedCoadd{std::move(pixels), std::move(w)});
}

// A bounded LRU cache of loaded coadds shared by the worker threads.
class CoaddCache {
 public:
  explicit CoaddCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  std::shared_ptr<const LoadedCoadd> get(const Input& in) {
    {
      const std::lock_guard lock(mutex_);
      if (auto it = map_.find(in.dataset_id); it != map_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return it->second.first;
      }
    }
    auto loaded = load_coadd(in.file);  // outside the lock: other threads keep going
    const std::lock_guard lock(mutex_);
    if (auto it = map_.find(in.dataset_id); it != map_.end()) return it->second.first;
    lru_.push_front(in.dataset_id);
    map_[in.dataset_id] = {loaded, lru_.begin()};
    bytes_ += bytes_of(*loaded);
    while (bytes_ > max_bytes_ && lru_.size() > 1) {
      const auto victim = lru_.back();
      lru_.pop_back();
      bytes_ -= bytes_of(*map_[victim].first);
      map_.erase(victim);
    }
    return loaded;
  }

 private:
  static std::size_t bytes_of(const LoadedCoadd& c) { return c.pixels.pixels.size() * sizeof(float); }
  std::size_t max_bytes_;
  std::mutex mutex_;
  std::list<std::string> lru_;
  std::unordered_map<std::string, std::pair<std::shared_ptr<const LoadedCoadd>, std::list<std::string>::iterator>> map_;
  std::size_t bytes_ = 0;
};

// Resamples the inputs onto one tile: each coadd warped (bilinear) by the
// image library's resampling engine, averaged over the coadds that cover a
// pixel.
fits::Image<float> resample_tile(const TileId& id, const std::vector<const Input*>& inputs, CoaddCache& cache) {
  const TileGeometry geometry(id);
  const auto n = static_cast<std::size_t>(kTileWidth * kTileWidth);
  std::vector<float> sum(n, 0.0F);
  std::vector<std::uint16_t> count(n, 0);
  // Exact positions every 8 pixels, bilinear in between: far below a pixel
  // of error over 8 HEALPix pixels at the orders coadds need.
  const long step = id.order >= 8 ? 16 : 8;
  for (const auto* in : inputs) {
    const auto coadd = cache.get(*in);
    const wcs::Wcs w = coadd->wcs;  // each thread its own wcslib structures
    const image::GridMapping map(fits::PixelBox{0, 0, kTileWidth, kTileWidth}, step,
                                 [&](double x, double y) -> std::optional<wcs::PixelPoint> {
                                   try {
                                     return w.sky_to_pixel(
                                         geometry.center(static_cast<long>(x), static_cast<long>(y)));
                                   } catch (const wcs::WcsError&) {
                                     return std::nullopt;
                                   }
                                 });
    const auto extent = map.extent();
    const double width = static_cast<double>(coadd->pixels.width), height = static_cast<double>(coadd->pixels.height);
    if (!extent || extent->x_max < -1.0 || extent->y_max < -1.0 || extent->x_min > width || extent->y_min > height) {
      continue;
    }
    const auto warped = image::Resampler(image::Kernel::bilinear, coadd->pixels).warp_image(map, map.box());
    for (std::size_t i = 0; i < n; ++i) {
      const float v = warped.pixels[i];
      if (!std::isfinite(v)) continue;
      sum[i] += v;
      ++count[i];
    }
  }
  fits::Image<float> out(kTileWidth, kTileWidth, kNaN);
  for (std::size_t i = 0; i < n; ++i) {
    if (count[i] > 0) out.pixels[i] = sum[i] / static_cast<float>(count[i]);
  }
  return out;
}

bool any_finite(const fits::Image<float>& img) {
  return std::any_of(img.pixels.begin(), img.pixels.end(), [](float v) { return std::isfinite(v); });
}

// Writes a tile, or removes an earlier run's files of it when it holds no
// data, and records which in the journal.
void store_grey_tile(const std::filesystem::path& out, const TileId& id, const fits::Image<float>& img,
                     const TileFormats& formats, const image::Cut& cut, Journal& journal, const std::string& hash) {
  const bool empty = !any_finite(img);
  if (empty) {
    remove_tile_files(out, id);
  } else {
    write_grey_tile(out, id, img, formats, cut);
  }
  journal.record(id, hash, empty);
}

// 2 x 2 averaging of the four children (absent ones leave NaN).
fits::Image<float> average_children(const std::array<std::optional<fits::Image<float>>, 4>& children) {
  fits::Image<float> out(kTileWidth, kTileWidth, kNaN);
  const long half = kTileWidth / 2;
  for (int q = 0; q < 4; ++q) {
    const auto& child = children[static_cast<std::size_t>(q)];
    if (!child) continue;
    const auto [x0, y0] = child_offset(q);
    for (long y = 0; y < half; ++y) {
      for (long x = 0; x < half; ++x) {
        double s = 0.0;
        int k = 0;
        for (const auto& [dx, dy] : {std::pair{0L, 0L}, {1L, 0L}, {0L, 1L}, {1L, 1L}}) {
          const float v = child->at(2 * x + dx, 2 * y + dy);
          if (std::isfinite(v)) {
            s += v;
            ++k;
          }
        }
        if (k > 0) out.at(x0 + x, y0 + y) = static_cast<float>(s / k);
      }
    }
  }
  return out;
}

// Block-averages a tile by `factor` (Allsky thumbnails).
fits::Image<float> shrink(const fits::Image<float>& in, long factor) {
  fits::Image<float> out(in.width / factor, in.height / factor, kNaN);
  for (long y = 0; y < out.height; ++y) {
    for (long x = 0; x < out.width; ++x) {
      double s = 0.0;
      long k = 0;
      for (long j = 0; j < factor; ++j) {
        for (long i = 0; i < factor; ++i) {
          const float v = in.at(x * factor + i, y * factor + j);
          if (std::isfinite(v)) {
            s += v;
            ++k;
          }
        }
      }
      if (k > 0) out.at(x, y) = static_cast<float>(s / static_cast<double>(k));
    }
  }
  return out;
}

// The Allsky image in FITS orientation: the 768 order-3 tiles as 64 x 64
// thumbnails, 27 per row, tile 0 top-left as drawn (so the last FITS rows).
fits::Image<float> allsky_from(const std::filesystem::path& dir) {
  const long count = tiles_at(kAllskyOrder);
  const long rows = (count + kAllskyColumns - 1) / kAllskyColumns;
  fits::Image<float> sky(kAllskyColumns * kAllskyTile, rows * kAllskyTile, kNaN);
  for (long k = 0; k < count; ++k) {
    const auto tile = read_fits_tile(dir / tile_path({kAllskyOrder, k}, "fits"));
    if (!tile) continue;
    const auto small = shrink(*tile, kTileWidth / kAllskyTile);
    const long col = k % kAllskyColumns, row = k / kAllskyColumns;
    const long y_base = sky.height - kAllskyTile * (row + 1);
    for (long y = 0; y < kAllskyTile; ++y) {
      for (long x = 0; x < kAllskyTile; ++x) sky.at(col * kAllskyTile + x, y_base + y) = small.at(x, y);
    }
  }
  return sky;
}

// HpxFinder: for each tile of the deepest order, one JSON line per coadd
// under it (name, path, ra, dec, stc), the layout Aladin reads for its
// progenitor view.
void write_hpx_finder(const std::filesystem::path& dir, int order,
                      const std::map<std::int64_t, std::vector<const Input*>>& tiles, const std::string& creator_did) {
  const auto root = dir / "HpxFinder";
  for (const auto& [npix, inputs] : tiles) {
    std::string text;
    for (const auto* in : inputs) {
      std::string stc = "POLYGON ICRS";
      for (const auto& v : in->footprint.vertices()) stc += fmt::format(" {:.7f} {:.7f}", v.ra, v.dec);
      nlohmann::json j{{"name", in->dataset_id},
                       {"path", in->dataset_id},
                       {"ra", fmt::format("{:.7f}", in->center.ra)},
                       {"dec", fmt::format("{:.7f}", in->center.dec)},
                       {"stc", stc}};
      text += j.dump() + "\n";
    }
    const TileId t{order, npix};
    auto path = root / tile_path(t, "x");
    path.replace_extension();
    write_file_atomic(path, text);
  }
  std::set<std::int64_t> keep;
  for (const auto& [npix, inputs] : tiles) keep.insert(npix);
  prune_finder(root, order, keep);
  Properties p;
  p.set("creator_did", creator_did + "/HpxFinder");
  p.set("obs_title", "Progenitor index");
  p.set("dataproduct_type", "meta");
  p.set("hips_version", "1.4");
  p.set("hips_release_date", iso_now());
  p.set("hips_status", "public master unclonable");
  p.set("hips_tile_format", "json");
  p.set("hips_order", std::to_string(order));
  p.set("hips_order_min", std::to_string(order));
  p.set("hips_frame", "equatorial");
  p.save(root / "properties");
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

void remove_map(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  const auto p = Properties::load(dir / "properties");
  const bool ours = std::filesystem::is_empty(dir, ec) || std::filesystem::exists(dir / kJournal, ec) ||
                    (p && p->get("hips_builder").value_or("").starts_with("pixserve"));
  if (!ours) throw std::runtime_error(fmt::format("{} is not a HiPS map made by pixserve: not removed", dir.string()));
  std::filesystem::remove_all(dir);
}

int order_for_pixel_scale(double arcsec) {
  if (!(arcsec > 0.0) || !std::isfinite(arcsec)) throw std::invalid_argument("pixel scale must be positive");
  int best = 3;
  double best_err = std::numeric_limits<double>::infinity();
  for (int k = 3; k <= kMaxHipsOrder; ++k) {
    const double size = sky::cell_size_deg(k + kTileOrderShift) * 3600.0;
    const double err = std::abs(std::log(size / arcsec));
    if (err < best_err) {
      best_err = err;
      best = k;
    }
  }
  return best;
}

HipsReport build_band_map(repo::Repository& repository, const BandMapOptions& options, const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  if (!repo::band_limits(options.band)) throw std::invalid_argument(fmt::format("'{}' is not a band", options.band));
  const auto type = repo::dataset_type_from_string(options.dataset_type);
  if (!type || !repo::is_coadd(*type)) {
    throw std::invalid_argument(fmt::format("'{}' is not a coadd dataset type", options.dataset_type));
  }
  if (options.max_order != -1 && (options.max_order < kAllskyOrder || options.max_order > kMaxHipsOrder)) {
    throw std::invalid_argument(fmt::format("HiPS order must be within [{}, {}]", kAllskyOrder, kMaxHipsOrder));
  }
  check_out(options.out);
  const TileFormats formats{.fits = true, .png = options.png, .jpeg = options.jpeg};

  repo::DatasetQuery q;
  q.dataset_types = {options.dataset_type};
  q.bands = {options.band};
  q.patches_only = true;
  q.collections = options.collections;
  HipsReport report;
  // The inputs are what the map's audience may read, chosen by the one
  // rights filter; the rest is only counted, by reason, for the report.
  const double now = repo::mjd_now();
  const auto audience = auth::audience_identity(options.audience);
  const auto readable = auth::find_readable(repository.registry(), q, audience, now);
  const auto all = repository.registry().find(q);
  if (all.empty()) {
    throw std::runtime_error(fmt::format("no {} datasets of band {} in {}", options.dataset_type, options.band,
                                         repository.root().string()));
  }
  {
    std::set<std::string> chosen;
    for (const auto& r : readable) chosen.insert(r.dataset_id);
    std::map<std::string, std::size_t> reasons;
    for (const auto& r : all) {
      if (!chosen.contains(r.dataset_id)) ++reasons[auth::why_unreadable(audience, r, now)];
    }
    for (const auto& [why, n] : reasons) {
      report.left_out.push_back(fmt::format("{} {} dataset(s) {}", n, options.dataset_type, why));
    }
  }
  std::vector<Input> inputs;
  for (const auto& r : readable) {
    if (!r.footprint) continue;
    inputs.push_back({.dataset_id = r.dataset_id,
                      .checksum = r.checksum,
                      .file = repository.file_of(r),
                      .footprint = *r.footprint,
                      .pixel_scale_arcsec = r.pixel_scale_arcsec.value_or(0.0),
                      .center = r.footprint->centroid(),
                      .t_min = r.t_min,
                      .t_max = r.t_max});
  }
  if (inputs.empty()) {
    // Nothing this audience may see: no tree at all, and an earlier one (made
    // when some coadds were readable) must not stay behind.
    remove_map(options.out);
    report.removed = true;
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
  }
  int max_order = options.max_order;
  if (max_order < 0) {
    std::vector<double> scales;
    for (const auto& in : inputs) {
      if (in.pixel_scale_arcsec > 0) scales.push_back(in.pixel_scale_arcsec);
    }
    max_order = order_for_pixel_scale(scales.empty() ? 0.2 : median(scales));
  }

  // Which coadds lie under which tile of the deepest order (exact cover).
  std::map<std::int64_t, std::vector<const Input*>> tiles;
  for (const auto& in : inputs) {
    for (const auto& c : sky::moc_of(in.footprint, max_order).cells()) {
      if (c.order != max_order) {
        // A bigger cell: expand to the tiles inside it.
        const int shift = 2 * (max_order - c.order);
        for (std::uint64_t k = c.index << shift; k < (c.index + 1) << shift; ++k) {
          tiles[static_cast<std::int64_t>(k)].push_back(&in);
        }
      } else {
        tiles[static_cast<std::int64_t>(c.index)].push_back(&in);
      }
    }
  }

  CoaddCache cache(std::size_t{768} << 20);
  const auto properties_file = options.out / "properties";
  auto previous = Properties::load(properties_file);

  // One cut for the whole map: the median sky level and noise of the coadds.
  image::Cut cut;
  bool have_cut = false;
  if (!options.force && previous) {
    if (auto c = previous->get("pixserve_sky_noise")) {
      double sky = 0, noise = 0;
      if (std::sscanf(c->c_str(), "%lf %lf", &sky, &noise) == 2) {
        cut = image::cut_from_background(sky, noise);
        have_cut = true;
      }
    }
  }
  if (!have_cut) {
    std::vector<double> levels(inputs.size()), noises(inputs.size());
    std::atomic<std::size_t> done{0};
    parallel::parallel_for(inputs.size(), options.threads, [&](std::size_t i) {
      const auto stats = image::estimate_background(cache.get(inputs[i])->pixels);
      levels[i] = stats.level;
      noises[i] = stats.rms;
      if (progress) progress("hips-load", ++done, inputs.size());
    });
    cut = image::cut_from_background(median(levels), median(noises));
  }
  const std::string settings = fmt::format("band-v1 {} {} {} {:.9g} {:.9g}", options.band, max_order,
                                           formats_of(true, formats.png, formats.jpeg), cut.sky, cut.noise);

  Journal journal(options.out / kJournal);
  report.max_order = max_order;
  report.inputs = inputs.size();
  std::atomic<std::size_t> written{0}, skipped{0}, done{0};

  // The deepest order, from the coadds.
  std::vector<std::pair<std::int64_t, std::vector<const Input*>>> todo(tiles.begin(), tiles.end());
  parallel::parallel_for(todo.size(), options.threads, [&](std::size_t i) {
    const TileId id{max_order, todo[i].first};
    auto ins = todo[i].second;
    std::sort(ins.begin(), ins.end(), [](const Input* a, const Input* b) { return a->dataset_id < b->dataset_id; });
    std::string key = settings;
    for (const auto* in : ins) key += " " + in->dataset_id + ":" + in->checksum;
    const auto hash = fnv_hash(key);
    const auto prev = journal.get(id);
    if (!options.force && prev && prev->hash == hash && (prev->empty || files_exist(options.out, id, formats))) {
      ++skipped;
    } else {
      store_grey_tile(options.out, id, resample_tile(id, ins, cache), formats, cut, journal, hash);
      ++written;
    }
    if (progress) progress("hips-tiles", ++done, todo.size());
  });

  // Lower orders by 2 x 2 averaging.
  std::set<std::int64_t> level;
  for (const auto& [npix, ins] : tiles) level.insert(npix);
  drop_stale_tiles(journal, options.out, max_order, level);
  std::size_t total_nonempty = 0;
  auto count_nonempty = [&](int order, const std::set<std::int64_t>& cells) {
    for (auto npix : cells) {
      const auto e = journal.get({order, npix});
      if (e && !e->empty) ++total_nonempty;
    }
  };
  count_nonempty(max_order, level);
  std::set<std::int64_t> deepest = level;
  for (int order = max_order - 1; order >= 0; --order) {
    std::set<std::int64_t> parents;
    for (auto c : level) parents.insert(c >> 2);
    std::vector<std::int64_t> list(parents.begin(), parents.end());
    done = 0;
    parallel::parallel_for(list.size(), options.threads, [&](std::size_t i) {
      const TileId id{order, list[i]};
      std::string key = settings;
      std::array<bool, 4> present{};
      for (int q = 0; q < 4; ++q) {
        const auto e = journal.get({order + 1, list[i] * 4 + q});
        key += " " + (e ? e->hash + (e->empty ? "e" : "") : std::string("-"));
        present[static_cast<std::size_t>(q)] = e && !e->empty;
      }
      const auto hash = fnv_hash(key);
      const auto prev = journal.get(id);
      if (!options.force && prev && prev->hash == hash && (prev->empty || files_exist(options.out, id, formats))) {
        ++skipped;
      } else {
        std::array<std::optional<fits::Image<float>>, 4> children;
        for (int q = 0; q < 4; ++q) {
          if (present[static_cast<std::size_t>(q)]) {
            children[static_cast<std::size_t>(q)] =
                read_fits_tile(options.out / tile_path({order + 1, list[i] * 4 + q}, "fits"));
          }
        }
        store_grey_tile(options.out, id, average_children(children), formats, cut, journal, hash);
        ++written;
      }
      if (progress) progress(fmt::format("hips-order{}", order), ++done, list.size());
    });
    drop_stale_tiles(journal, options.out, order, parents);
    count_nonempty(order, parents);
    level = std::move(parents);
  }
  // Orders deeper than this run's (an earlier run with a larger --order).
  for (const auto& [t, e] : journal.snapshot()) {
    if (t.order > max_order) {
      remove_tile_files(options.out, t);
      journal.forget(t);
    }
  }
  journal.compact();

  // Allsky (order 3).
  const auto allsky = allsky_from(options.out);
  const auto allsky_dir = options.out / fmt::format("Norder{}", kAllskyOrder);
  write_fits_image(allsky_dir / "Allsky.fits", allsky, {{"ORDER", kAllskyOrder}});
  if (formats.png || formats.jpeg) {
    const auto raster = image::grey_raster(allsky, cut, image::BlankPixels::transparent);
    if (formats.png) write_png(allsky_dir / "Allsky.png", raster);
    if (formats.jpeg) write_jpeg(allsky_dir / "Allsky.jpg", raster);
  }

  // Coverage: the non-empty tiles of the deepest order.
  sky::Moc moc(max_order);
  for (auto npix : deepest) {
    const auto e = journal.get({max_order, npix});
    if (e && !e->empty) moc.add_cell(max_order, static_cast<std::uint64_t>(npix));
  }
  const std::string name = options.out.filename().string();
  const auto& config = repository.config();
  const std::string creator_did = fmt::format("ivo://{}/{}/hips/{}", config.authority, config.name, name);
  write_file_atomic(options.out / "Moc.fits",
                    sky::to_fits(moc, {.moc_id = creator_did, .tool = "pixserve " + options.version, .type = "IMAGE",
                                       .extname = "MOC", .date = iso_now()}));
  write_hpx_finder(options.out, max_order, tiles, creator_did);

  // properties
  double ra_sum_x = 0, ra_sum_y = 0, dec_sum = 0, radius = 0;
  for (const auto& in : inputs) {
    ra_sum_x += std::cos(in.center.ra * M_PI / 180);
    ra_sum_y += std::sin(in.center.ra * M_PI / 180);
    dec_sum += in.center.dec;
  }
  const sky::SkyPoint center{sky::normalize_ra(std::atan2(ra_sum_y, ra_sum_x) * 180 / M_PI),
                             dec_sum / static_cast<double>(inputs.size())};
  for (const auto& in : inputs) {
    for (const auto& v : in.footprint.vertices()) radius = std::max(radius, sky::angular_distance_deg(center, v));
  }
  const auto limits = repo::band_limits(options.band);
  Properties p;
  p.set("creator_did", creator_did);
  p.set("obs_title", fmt::format("{} {} {} band", config.name, options.dataset_type, options.band));
  p.set("obs_description", fmt::format("The {} patches of band {} of repository {} resampled onto HEALPix tiles "
                                       "(bilinear, overlapping patches averaged)",
                                       options.dataset_type, options.band, config.name));
  p.set("obs_collection", options.collections.empty() ? config.name : fmt::format("{}", fmt::join(options.collections, " ")));
  p.set("obs_regime", "Optical");
  p.set("dataproduct_type", "image");
  p.set("dataproduct_subtype", "live");
  p.set("hips_version", "1.4");
  p.set("hips_builder", "pixserve " + options.version);
  p.set("hips_creator", "pixserve");
  p.set("hips_creation_date", previous ? previous->get("hips_creation_date").value_or(iso_now()) : iso_now());
  p.set("hips_release_date", iso_now());
  p.set("hips_status", "public master clonableOnce");
  p.set("hips_tile_format", formats_of(true, formats.png, formats.jpeg));
  p.set("hips_order", std::to_string(max_order));
  p.set("hips_order_min", "0");
  p.set("hips_tile_width", std::to_string(kTileWidth));
  p.set("hips_frame", "equatorial");
  p.set("hips_pixel_bitpix", "-32");
  p.set("data_pixel_bitpix", "-32");
  p.set("hips_pixel_cut", fmt::format("{:.6g} {:.6g}", cut.lo, cut.hi));
  p.set("hips_pixel_func", "asinh");
  p.set("hips_pixel_scale", fmt::format("{:.6g}", sky::cell_size_deg(max_order + kTileOrderShift)));
  p.set("hips_initial_ra", fmt::format("{:.6f}", center.ra));
  p.set("hips_initial_dec", fmt::format("{:.6f}", center.dec));
  p.set("hips_initial_fov", fmt::format("{:.4f}", std::max(0.05, 2.2 * radius)));
  // hips_progenitor_url needs an absolute URL: the server adds it (HpxFinder/ is beside this file).
  p.set("prov_progenitor", fmt::format("{} {} patches of repository {}", inputs.size(), options.dataset_type,
                                       config.name));
  p.set("moc_sky_fraction", fmt::format("{:.6g}", moc.coverage_fraction()));
  {
    double t0 = std::numeric_limits<double>::infinity(), t1 = -t0;
    for (const auto& in : inputs) {
      if (in.t_min) t0 = std::min(t0, *in.t_min);
      if (in.t_max) t1 = std::max(t1, *in.t_max);
    }
    if (t0 <= t1) {
      p.set("t_min", fmt::format("{:.6f}", t0));
      p.set("t_max", fmt::format("{:.6f}", t1));
    }
  }
  if (limits) {
    p.set("em_min", fmt::format("{:.4g}", limits->em_min));
    p.set("em_max", fmt::format("{:.4g}", limits->em_max));
  }
  p.set("client_category", "Image/Optical");
  p.set("pixserve_dataset_type", options.dataset_type);
  p.set("pixserve_bands", options.band);
  p.set(std::string(kAudienceKey), std::string(auth::to_string(options.audience)));
  p.set("pixserve_sky_noise", fmt::format("{:.9g} {:.9g}", cut.sky, cut.noise));
  write_index_html(options.out, p);
  p.set("hips_estsize", std::to_string(directory_kb(options.out)));
  p.save(properties_file);

  report.tiles_written = written;
  report.tiles_skipped = skipped;
  report.tiles_total = total_nonempty;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

HipsReport build_color_map(const ColorMapOptions& options, const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  if (!options.png && !options.jpeg) throw std::invalid_argument("a colour map needs PNG or JPEG tiles");
  check_out(options.out);
  std::array<Properties, 3> props;
  std::array<image::Cut, 3> cuts;
  std::array<std::map<TileId, Journal::Entry>, 3> band_tiles;
  int max_order = -1;
  std::vector<std::string> band_names;
  for (std::size_t b = 0; b < 3; ++b) {
    auto p = Properties::load(options.bands[b] / "properties");
    if (!p) throw std::runtime_error("no HiPS band map in " + options.bands[b].string());
    props[b] = *p;
    double sky = 0, noise = 0;
    const auto sn = p->get("pixserve_sky_noise").value_or("");
    if (std::sscanf(sn.c_str(), "%lf %lf", &sky, &noise) != 2) {
      throw std::runtime_error("band map " + options.bands[b].string() + " has no pixserve_sky_noise");
    }
    cuts[b] = image::cut_from_background(sky, noise);
    const int order = std::stoi(p->get("hips_order").value_or("0"));
    max_order = max_order < 0 ? order : std::min(max_order, order);
    band_tiles[b] = Journal(options.bands[b] / kJournal).snapshot();
    band_names.push_back(p->get("pixserve_bands").value_or("?"));
  }
  // One audience for the three: a colour tile shows what each band shows.
  const auto audience = props[0].get(std::string(kAudienceKey)).value_or("");
  for (std::size_t b = 1; b < 3; ++b) {
    if (props[b].get(std::string(kAudienceKey)).value_or("") != audience) {
      throw std::runtime_error(fmt::format("band maps {} and {} were made for different audiences",
                                           options.bands[0].string(), options.bands[b].string()));
    }
  }
  const TileFormats formats{.fits = false, .png = options.png, .jpeg = options.jpeg};
  const std::string settings = fmt::format("color-v1 {} {} {}", max_order, formats_of(false, options.png, options.jpeg),
                                           fmt::join(band_names, ","));
  std::set<TileId> all;
  for (const auto& bt : band_tiles) {
    for (const auto& [t, e] : bt) {
      if (!e.empty && t.order <= max_order) all.insert(t);
    }
  }
  std::vector<TileId> list(all.begin(), all.end());
  Journal journal(options.out / kJournal);
  for (const auto& [t, e] : journal.snapshot()) {
    if (!all.contains(t)) {
      remove_tile_files(options.out, t);
      journal.forget(t);
    }
  }
  std::atomic<std::size_t> written{0}, skipped{0}, done{0};
  parallel::parallel_for(list.size(), options.threads, [&](std::size_t i) {
    const TileId id = list[i];
    std::string key = settings;
    for (const auto& bt : band_tiles) {
      auto it = bt.find(id);
      key += " " + (it == bt.end() || it->second.empty ? std::string("-") : it->second.hash);
    }
    const auto hash = fnv_hash(key);
    const auto prev = journal.get(id);
    if (!options.force && prev && prev->hash == hash && files_exist(options.out, id, formats)) {
      ++skipped;
    } else {
      std::array<fits::Image<float>, 3> planes;
      for (std::size_t b = 0; b < 3; ++b) {
        auto img = read_fits_tile(options.bands[b] / tile_path(id, "fits"));
        planes[b] = img ? std::move(*img) : fits::Image<float>(kTileWidth, kTileWidth, kNaN);
      }
      const auto raster = image::color_raster(planes[0], planes[1], planes[2], cuts);
      if (options.png) write_png(options.out / tile_path(id, "png"), raster);
      if (options.jpeg) write_jpeg(options.out / tile_path(id, "jpg"), raster);
      journal.record(id, hash, false);
      ++written;
    }
    if (progress) progress("hips-color", ++done, list.size());
  });
  journal.compact();

  // Allsky from the bands' Allsky.fits.
  std::array<fits::Image<float>, 3> sky_planes;
  for (std::size_t b = 0; b < 3; ++b) {
    auto img = read_fits_tile(options.bands[b] / fmt::format("Norder{}", kAllskyOrder) / "Allsky.fits");
    if (!img) throw std::runtime_error("band map " + options.bands[b].string() + " has no Allsky.fits");
    sky_planes[b] = std::move(*img);
  }
  const auto allsky = image::color_raster(sky_planes[0], sky_planes[1], sky_planes[2], cuts);
  const auto allsky_dir = options.out / fmt::format("Norder{}", kAllskyOrder);
  if (options.png) write_png(allsky_dir / "Allsky.png", allsky);
  if (options.jpeg) write_jpeg(allsky_dir / "Allsky.jpg", allsky);

  // Coverage: the union of the bands' deepest tiles; progenitors: the bands'.
  sky::Moc moc(max_order);
  std::map<std::int64_t, std::string> finder;
  for (std::size_t b = 0; b < 3; ++b) {
    for (const auto& [t, e] : band_tiles[b]) {
      if (t.order == max_order && !e.empty) moc.add_cell(max_order, static_cast<std::uint64_t>(t.npix));
    }
    auto dir = options.bands[b] / "HpxFinder" / fmt::format("Norder{}", max_order);
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
         it.increment(ec)) {
      const auto fname = it->path().filename().string();
      if (!it->is_regular_file(ec) || !fname.starts_with("Npix")) continue;
      std::ifstream in(it->path());
      std::ostringstream s;
      s << in.rdbuf();
      finder[std::stoll(fname.substr(4))] += s.str();
    }
  }
  const std::string name = options.out.filename().string();
  const auto base_did = props[0].get("creator_did").value_or("ivo://pixserve.example/hips/x");
  const auto slash = base_did.rfind('/');
  const std::string creator_did = base_did.substr(0, slash) + "/" + name;
  write_file_atomic(options.out / "Moc.fits", sky::to_fits(moc, {.moc_id = creator_did,
                                                                 .tool = "pixserve " + options.version,
                                                                 .type = "IMAGE",
                                                                 .extname = "MOC",
                                                                 .date = iso_now()}));
  std::set<std::int64_t> finder_cells;
  for (const auto& [npix, text] : finder) {
    auto path = options.out / "HpxFinder" / tile_path({max_order, npix}, "x");
    path.replace_extension();
    write_file_atomic(path, text);
    finder_cells.insert(npix);
  }
  prune_finder(options.out / "HpxFinder", max_order, finder_cells);
  if (auto hp = Properties::load(options.bands[0] / "HpxFinder" / "properties")) {
    hp->set("creator_did", creator_did + "/HpxFinder");
    hp->save(options.out / "HpxFinder" / "properties");
  }

  Properties p;
  p.set("creator_did", creator_did);
  p.set("obs_title", fmt::format("{} colour ({})", props[0].get("obs_title").value_or("coadd"),
                                 fmt::join(band_names, ",")));
  p.set("obs_description", fmt::format("Colour composite of the band maps {} (red, green, blue) with an asinh "
                                       "(Lupton) stretch",
                                       fmt::join(band_names, ", ")));
  for (const char* k : {"obs_collection", "obs_regime", "hips_initial_ra", "hips_initial_dec", "hips_initial_fov",
                        "hips_pixel_scale"}) {
    if (auto v = props[0].get(k)) p.set(k, *v);
  }
  p.set("dataproduct_type", "image");
  p.set("dataproduct_subtype", "color");
  p.set("hips_version", "1.4");
  p.set("hips_builder", "pixserve " + options.version);
  p.set("hips_creator", "pixserve");
  p.set("hips_release_date", iso_now());
  p.set("hips_status", "public master clonableOnce");
  p.set("hips_tile_format", formats_of(false, options.png, options.jpeg));
  p.set("hips_order", std::to_string(max_order));
  p.set("hips_order_min", "0");
  p.set("hips_tile_width", std::to_string(kTileWidth));
  p.set("hips_frame", "equatorial");
  p.set("moc_sky_fraction", fmt::format("{:.6g}", moc.coverage_fraction()));
  p.set("client_category", "Image/Optical");
  if (auto v = props[0].get("pixserve_dataset_type")) p.set("pixserve_dataset_type", *v);
  p.set("pixserve_bands", fmt::format("{}", fmt::join(band_names, "")));
  if (!audience.empty()) p.set(std::string(kAudienceKey), audience);
  write_index_html(options.out, p);
  p.set("hips_estsize", std::to_string(directory_kb(options.out)));
  p.save(options.out / "properties");

  HipsReport report;
  report.max_order = max_order;
  report.inputs = 3;
  report.tiles_written = written;
  report.tiles_skipped = skipped;
  report.tiles_total = list.size();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace pixserve::hips
