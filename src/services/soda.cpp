#include "services/soda.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "fits/fits.hpp"
#include "fits/header_text.hpp"
#include "http/headers.hpp"
#include "http/response.hpp"
#include "services/links.hpp"
#include "repo/coadd_mosaics.hpp"
#include "services/soda_archive.hpp"
#include "services/soda_params.hpp"
#include "services/soda_stream.hpp"
#include "uws/job_service.hpp"

namespace pixserve::services {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kJobKind = "soda";

dali::UsageError bad(std::string message) { return dali::UsageError(std::move(message)); }

// An identifier as it may be echoed in a message: printable ASCII only, short.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 120)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (text.size() > 120) out += "...";
  return out;
}

dali::NotFound unknown_id(std::string_view id) {
  return dali::NotFound(fmt::format("ID '{}' is not a known dataset", printable(id)));
}

std::optional<sky::Shape> as_shape(const dali::Value& v) {
  if (const auto* c = std::get_if<sky::Circle>(&v)) return sky::Shape(*c);
  if (const auto* p = std::get_if<sky::Polygon>(&v)) return sky::Shape(*p);
  if (const auto* r = std::get_if<sky::RaDecRange>(&v)) return sky::Shape(*r);
  return std::nullopt;
}

std::string format_of(SodaFormat f) {
  switch (f) {
    case SodaFormat::fits: return std::string(kSodaFits);
    case SodaFormat::tar: return std::string(kSodaTar);
    case SodaFormat::zip: return std::string(kSodaZip);
  }
  return std::string(kSodaFits);
}

long parse_pixel(std::string_view text, std::string_view whole) {
  long v = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end) {
    throw bad(fmt::format("PIXEL: '{}' in '{}' is not a whole pixel number", printable(text), printable(whole)));
  }
  return v;
}

std::optional<image::PixelRange> parse_axis(std::string_view axis, std::string_view whole) {
  while (!axis.empty() && axis.front() == ' ') axis.remove_prefix(1);
  while (!axis.empty() && axis.back() == ' ') axis.remove_suffix(1);
  if (axis == "*") return std::nullopt;
  const auto colon = axis.find(':');
  if (colon == std::string_view::npos) {
    throw bad(fmt::format("PIXEL: '{}' is not [x1:x2,y1:y2] (1-based, inclusive; * for a whole axis)",
                          printable(whole)));
  }
  image::PixelRange r{.first = parse_pixel(axis.substr(0, colon), whole),
                      .last = parse_pixel(axis.substr(colon + 1), whole)};
  if (r.first < 1) throw bad(fmt::format("PIXEL: pixel numbers start at 1, not {}", r.first));
  if (r.first > r.last) throw bad(fmt::format("PIXEL: range {}:{} has its first pixel after its last", r.first, r.last));
  return r;
}

fs::path spool_root(const SharedRepository& repository, const SodaOptions& options) {
  return options.spool_dir.empty() ? repository.root() / "cache" / "soda-spool" : options.spool_dir;
}

std::string entry_name(std::size_t n, const std::string& dataset_id, std::optional<std::size_t> shape) {
  return fmt::format("{:04}-{}{}.fits", n, dataset_id.substr(0, 80), shape ? fmt::format("_s{}", *shape + 1) : "");
}

void progress(const SodaMonitor& m, double f) {
  if (m.progress) m.progress(f);
}
void check(const SodaMonitor& m) {
  if (m.check_cancelled) m.check_cancelled();
}

http::Response no_content(std::string why) {
  auto res = http::Response::empty(204);
  res.headers.set("X-SODA-Status", "NoOverlap: " + std::move(why));
  return res;
}

}  // namespace

// ---------------------------------------------------------------- requests

namespace {

MosaicOptions mosaic_options(const dali::ParsedParams& params) {
  MosaicOptions o;
  if (auto c = params.first<sky::SkyPoint>("GRID_CENTER")) o.center = *c;
  if (auto s = params.first<double>("GRID_SCALE")) {
    if (!(std::isfinite(*s) && *s > 0.0)) {
      throw dali::UsageError(fmt::format("GRID_SCALE: the pixel scale must be a positive number of arcsec, not {}", *s));
    }
    o.scale_arcsec = *s;
  }
  if (auto r = params.first<double>("GRID_ROTATION")) {
    if (!std::isfinite(*r)) throw dali::UsageError("GRID_ROTATION: the rotation must be a finite angle in degrees");
    o.rotation_deg = *r;
  }
  if (auto m = params.first<std::string>("MOSAIC")) o.visit = *m == "visit";
  if (auto k = params.first<std::string>("KERNEL")) {
    o.kernel = image::parse_kernel(*k);
    if (!o.kernel) throw dali::UsageError("KERNEL: expected lanczos3, bilinear or nearest");
  }
  return o;
}

}  // namespace

image::PixelRanges parse_pixel_section(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  if (!t.empty() && t.front() == '[') {
    if (t.back() != ']') throw bad(fmt::format("PIXEL: '{}' lacks its closing ]", printable(text)));
    t = t.substr(1, t.size() - 2);
  }
  const auto comma = t.find(',');
  if (comma == std::string_view::npos || t.find(',', comma + 1) != std::string_view::npos) {
    throw bad(fmt::format("PIXEL: '{}' is not [x1:x2,y1:y2] (two axes)", printable(text)));
  }
  return {.x = parse_axis(t.substr(0, comma), text), .y = parse_axis(t.substr(comma + 1), text)};
}

SodaRequest soda_request(const dali::ParsedParams& params, const SodaLimits& limits) {
  SodaRequest r;
  r.ids = params.all_as<std::string>("ID");
  if (r.ids.empty()) throw bad("ID is required");
  if (r.ids.size() > limits.max_ids) {
    throw bad(fmt::format("{} IDs in one request; at most {} are accepted: split the request", r.ids.size(),
                          limits.max_ids));
  }
  for (const char* name : {"POS", "CIRCLE", "POLYGON"}) {
    for (const auto& v : params.all(name)) {
      auto shape = as_shape(v);
      if (!shape) throw bad(fmt::format("{}: not a shape", name));
      try {
        image::validate_shape(*shape);
      } catch (const std::invalid_argument& e) {
        throw bad(fmt::format("{}: {}", name, e.what()));
      }
      r.shapes.push_back(std::move(*shape));
    }
  }
  if (r.shapes.size() > limits.max_shapes) {
    throw bad(fmt::format("{} shapes in one request; at most {} are accepted", r.shapes.size(), limits.max_shapes));
  }
  if (r.cutouts() > limits.max_cutouts) {
    throw bad(fmt::format("{} IDs x {} shapes = {} cutouts in one request; at most {} are accepted", r.ids.size(),
                          r.shapes.size(), r.cutouts(), limits.max_cutouts));
  }
  if (auto pixel = params.first<std::string>("PIXEL")) r.pixels = parse_pixel_section(*pixel);
  r.bands = params.all_as<dali::Interval>("BAND");
  r.times = params.all_as<dali::Interval>("TIME");
  r.pols = params.all_as<std::string>("POL");
  for (auto& plane : params.all_as<std::string>("PLANE")) {
    if (std::find(r.planes.begin(), r.planes.end(), plane) == r.planes.end()) r.planes.push_back(std::move(plane));
  }
  r.mosaic = mosaic_options(params);
  if (auto format = params.first<std::string>("RESPONSEFORMAT")) {
    if (*format == "tar" || *format == kSodaTar) {
      r.format = SodaFormat::tar;
    } else if (*format == "zip" || *format == kSodaZip) {
      r.format = SodaFormat::zip;
    }
  }
  return r;
}

// ---------------------------------------------------------------- engine

namespace {
// Source files kept open and described for streamed responses: enough for
// every epoch of an object (or the detectors of a visit) asked at once.
constexpr std::size_t kStreamSourceFiles = 128;
}  // namespace

SodaEngine::SodaEngine(std::shared_ptr<SharedRepository> repository, SodaLimits limits)
    : repository_(std::move(repository)), limits_(limits), stream_sources_(kStreamSourceFiles) {}

fs::path SodaEngine::file_of(const repo::DatasetRecord& record) const { return repository_->file_of(record); }

std::vector<SodaSource> SodaEngine::resolve(const SodaRequest& request) {
  std::vector<std::string> wanted;
  wanted.reserve(request.ids.size());
  for (const auto& id : request.ids) {
    auto dataset_id = repository_->dataset_id_from(id);
    if (!dataset_id || !repo::is_safe_identifier(*dataset_id)) throw unknown_id(id);
    wanted.push_back(std::move(*dataset_id));
  }
  std::vector<std::string> unique = wanted;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  std::map<std::string, repo::DatasetRecord, std::less<>> found;
  constexpr std::size_t kChunk = 500;
  for (std::size_t i = 0; i < unique.size(); i += kChunk) {
    repo::DatasetQuery q;
    q.dataset_ids.assign(unique.begin() + static_cast<std::ptrdiff_t>(i),
                         unique.begin() + static_cast<std::ptrdiff_t>(std::min(unique.size(), i + kChunk)));
    for (auto& r : repository_->find_visible(std::move(q), request.caller)) found.emplace(r.dataset_id, std::move(r));
  }
  std::vector<SodaSource> out;
  out.reserve(wanted.size());
  for (std::size_t i = 0; i < wanted.size(); ++i) {
    const auto it = found.find(wanted[i]);
    if (it == found.end()) throw unknown_id(request.ids[i]);
    SodaSource s{.id = request.ids[i], .record = it->second, .rejected = {}};
    const auto& r = s.record;
    if (!request.bands.empty()) {
      const bool ok = r.em_min && r.em_max && std::any_of(request.bands.begin(), request.bands.end(), [&](const auto& b) {
                        return b.overlaps(*r.em_min, *r.em_max);
                      });
      if (!ok) s.rejected = fmt::format("{} is outside BAND", r.dataset_id);
    }
    if (s.rejected.empty() && !request.times.empty()) {
      const bool ok = r.t_min && r.t_max && std::any_of(request.times.begin(), request.times.end(), [&](const auto& t) {
                        return t.overlaps(*r.t_min, *r.t_max);
                      });
      if (!ok) s.rejected = fmt::format("{} is outside TIME", r.dataset_id);
    }
    if (s.rejected.empty() && !request.pols.empty() &&
        std::find(request.pols.begin(), request.pols.end(), "I") == request.pols.end()) {
      s.rejected = fmt::format("{} is unpolarized (POL I only)", r.dataset_id);
    }
    out.push_back(std::move(s));
  }
  return out;
}

void SodaEngine::check_sync_recreations(const SodaRequest& request, const std::vector<SodaSource>& sources) const {
  const bool whole = request.shapes.empty() && !request.pixels;
  std::size_t to_make = 0;
  for (const auto& src : sources) {
    if (!src.rejected.empty() || repository_->has_file_now(src.record)) continue;
    if (whole || !repository_->has_part_now(src.record)) ++to_make;
  }
  const std::size_t limit = repository_->sync_max_recreations();
  if (to_make > limit) {
    throw bad(fmt::format("{} of the requested datasets are virtual and must be re-created first, more than the {} a "
                          "/sync request may re-create; submit the request to /async (UWS), which reports progress "
                          "per dataset and can be aborted",
                          to_make, limit));
  }
}

std::vector<image::CutoutPiece> SodaEngine::append_cutouts(const repo::DatasetRecord& record,
                                                           const image::CutoutRequest& cut, fits::File& out,
                                                           int extver) {
  if (const auto part = repository_->part_of(record)) {
    return recreation_faults_to_server([&] { return image::append_cutouts(part->exposure(), cut, out, record.dataset_id, extver); });
  }
  return image::append_cutouts(file_of(record), cut, out, record.dataset_id, extver);
}

void SodaEngine::write_cutout(const repo::DatasetRecord& record, const image::CutoutRequest& cut, const fs::path& file) {
  if (const auto part = repository_->part_of(record)) {
    recreation_faults_to_server([&] { return image::write_cutout(part->exposure(), cut, file, record.dataset_id); });
    return;
  }
  image::write_cutout(file_of(record), cut, file, record.dataset_id);
}

std::vector<fs::path> SodaEngine::coadd_patches(const repo::DatasetRecord& record, const sky::Shape& shape,
                                                const auth::Identity& caller) {
  repo::DatasetQuery q;
  q.regions = {shape};
  q.dataset_types = {std::string(repo::to_string(record.type))};
  q.collections = {record.collection};
  if (!record.data_id.band.empty()) q.bands = {record.data_id.band};
  if (record.data_id.tract) q.tracts = {*record.data_id.tract};
  q.patches_only = true;
  const auto patches = repository_->find_visible(std::move(q), caller);
  std::vector<fs::path> files;
  bool own = false;
  for (const auto& p : patches) {
    if (p.data_id.skymap != record.data_id.skymap || p.data_id.tract != record.data_id.tract) continue;
    own = own || p.dataset_id == record.dataset_id;
    files.push_back(file_of(p));
  }
  if (!own) return {};
  return files;
}

namespace {

dali::UsageError cannot_cut(const repo::DatasetRecord& r) {
  return bad(fmt::format("{} ({}) cannot be cut out: it has no image planes with a celestial WCS to cut",
                         r.dataset_id, repo::to_string(r.type)));
}

dali::UsageError no_wanted_plane(const repo::DatasetRecord& r, const image::NoWantedPlane& e) {
  return bad(fmt::format("PLANE: {} has none of the planes asked: {}", r.dataset_id, e.what()));
}

// The text of a cutout without pixels (a result entry of its own in a job,
// SODA 1.0 section 6): a usage error in SODA's words.
std::string no_overlap(const std::string& why) {
  return dali::error_text(dali::UsageError("NoOverlap: " + why), dali::ErrorVocabulary::soda);
}

bool coadd_assembly(const SodaRequest& request, const repo::DatasetRecord& r) {
  return repo::is_coadd(r.type) && !request.pixels;
}

}  // namespace

std::size_t SodaEngine::write_fits(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                   const fs::path& path, const SodaMonitor& monitor) {
  auto out = fits::File::create(path);
  out.write_string("ORIGIN", "pixserve SODA", "cutout service");
  int extver = 1;
  std::size_t count = 0;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    check(monitor);
    const auto& src = sources[i];
    if (!src.rejected.empty()) continue;
    const auto& r = src.record;
    try {
      if (coadd_assembly(request, r) && !request.shapes.empty()) {
        for (const auto& shape : request.shapes) {
          const auto patches = coadd_patches(r, shape, request.caller);
          if (patches.empty()) continue;
          try {
            const auto pieces = image::append_coadd_cutouts(patches, {.shapes = {shape}, .pixels = std::nullopt, .planes = request.planes}, out,
                                                            r.dataset_id, extver);
            extver += static_cast<int>(pieces.size());
            count += pieces.size();
          } catch (const image::NoOverlap&) {
          }
        }
      } else {
        const auto pieces = append_cutouts(r, {.shapes = request.shapes, .pixels = request.pixels, .planes = request.planes}, out, extver);
        extver += static_cast<int>(pieces.size());
        count += pieces.size();
      }
    } catch (const image::NoOverlap&) {
    } catch (const image::UnsupportedDataset&) {
      throw cannot_cut(r);
    } catch (const image::NoWantedPlane& e) {
      throw no_wanted_plane(r, e);
    }
    progress(monitor, static_cast<double>(i + 1) / static_cast<double>(sources.size()));
  }
  if (count == 0) {
    out.close();
    std::error_code ec;
    fs::remove(path, ec);
    return 0;
  }
  out.move_to_hdu(1);
  out.write_int("PSNCUT", static_cast<long long>(count), "number of cutouts in this file");
  out.close();
  return count;
}

std::optional<SodaEngine::FitsStream> SodaEngine::stream_fits(const SodaRequest& request,
                                                              const std::vector<SodaSource>& sources,
                                                              const SodaMonitor& monitor) {
  for (const auto& src : sources) {
    if (!src.rejected.empty()) continue;
    // Virtual products (cached or cut from parts) keep the engine's path.
    if (src.record.storage == repo::Storage::virtual_) return std::nullopt;
  }
  try {
    return stream_layout(request, sources, monitor);
  } catch (const fits::UnsupportedCard&) {
    return std::nullopt;
  }
}

std::optional<SodaEngine::FitsStream> SodaEngine::stream_layout(const SodaRequest& request,
                                                                const std::vector<SodaSource>& sources,
                                                                 const SodaMonitor& monitor) {
  auto primary = fits::HeaderText::primary();
  primary.write_string("ORIGIN", "pixserve SODA", "cutout service");
  std::vector<image::PlaneHeader> planes;
  std::vector<PlaneSource> plane_sources;
  int extver = 1;
  std::size_t count = 0;
  // Whether the planes from `first` on can be copied from their raw HDUs
  // (uncompressed, as the header says, rows inside the HDU); fills in
  // their plane sources.
  const auto raw_planes = [&](std::size_t first, const std::vector<std::shared_ptr<const SourceCache::Entry>>& from) {
    const auto usable = [](const RawHdu& raw, int bitpix, long x0, long y0, long width, long height) {
      return raw.plain && raw.bitpix == bitpix && raw.naxis.size() >= 2 && x0 >= 0 && y0 >= 0 &&
             x0 + width <= raw.naxis[0] && y0 + height <= raw.naxis[1];
    };
    for (std::size_t k = first; k < planes.size(); ++k) {
      const auto& c = planes[k].pixels;
      PlaneSource plane;
      if (c.bands.empty()) {
        const auto& hdus = from.front()->hdus();
        const auto h = static_cast<std::size_t>(c.source_hdu - 1);
        if (h >= hdus.size() || !usable(hdus[h], c.bitpix, c.box.x0, c.box.y0, c.box.width, c.box.height)) return false;
        plane.file = from.front()->file();
        plane.hdu = hdus[h];
      } else {
        plane.patches.resize(from.size());
        for (std::size_t j = 0; j < from.size(); ++j) {
          if (c.patch_hdus.at(j) == 0) continue;
          const auto& hdus = from[j]->hdus();
          const auto h = static_cast<std::size_t>(c.patch_hdus[j] - 1);
          if (h >= hdus.size()) return false;
          plane.patches[j] = {from[j]->file(), hdus[h]};
        }
        long row = 0;
        for (const auto& band : c.bands) {
          for (const auto& run : band.runs) {
            if (run.patch < 0) continue;
            const auto& p = plane.patches.at(static_cast<std::size_t>(run.patch));
            if (!p.file || !usable(p.hdu, c.bitpix, run.src_x, run.src_y, run.width, band.rows)) return false;
          }
          row += band.rows;
        }
        if (row != c.box.height) throw std::logic_error("streamed FITS: a coadd plane's bands are not its rows");
      }
      plane_sources.push_back(std::move(plane));
    }
    return true;
  };
  for (std::size_t i = 0; i < sources.size(); ++i) {
    check(monitor);
    const auto& src = sources[i];
    if (!src.rejected.empty()) continue;
    const auto& r = src.record;
    const std::size_t before = planes.size();
    try {
      if (coadd_assembly(request, r) && !request.shapes.empty()) {
        // Each shape from the patches it meets, as write_fits does.
        for (const auto& shape : request.shapes) {
          const auto paths = coadd_patches(r, shape, request.caller);
          if (paths.empty()) continue;
          std::vector<std::shared_ptr<const SourceCache::Entry>> entries;
          std::vector<const image::CutoutSource*> patches;
          for (const auto& path : paths) {
            entries.push_back(stream_sources_.get(path));
            patches.push_back(&entries.back()->cutout);
          }
          const std::size_t shape_first = planes.size();
          try {
            const auto pieces = image::coadd_cutout_headers(patches, {.shapes = {shape}, .pixels = std::nullopt, .planes = request.planes},
                                                            r.dataset_id, extver, planes);
            extver += static_cast<int>(pieces.size());
            count += pieces.size();
          } catch (const image::NoOverlap&) {
          }
          if (!raw_planes(shape_first, entries)) return std::nullopt;
        }
      } else {
        auto source = stream_sources_.get(file_of(r));
        const auto pieces = image::cutout_headers(source->cutout, {.shapes = request.shapes, .pixels = request.pixels, .planes = request.planes},
                                                  r.dataset_id, extver, planes);
        extver += static_cast<int>(pieces.size());
        count += pieces.size();
        if (!raw_planes(before, {source})) return std::nullopt;
      }
    } catch (const image::NoOverlap&) {
    } catch (const image::UnsupportedDataset&) {
      throw cannot_cut(r);
    } catch (const image::NoWantedPlane& e) {
      throw no_wanted_plane(r, e);
    }
    progress(monitor, static_cast<double>(i + 1) / static_cast<double>(sources.size()));
  }
  FitsStream stream;
  stream.count = count;
  if (count > 0) {
    primary.write_int("PSNCUT", static_cast<long long>(count), "number of cutouts in this file");
    auto layout = std::make_shared<const FitsLayout>(layout_planes(primary.bytes(), planes, plane_sources));
    stream.size = layout->size();
    stream.produce = [layout](const http::ByteSink& sink) { return layout->write(sink); };
  }
  return stream;
}

std::vector<SodaPiece> SodaEngine::write_each(const SodaRequest& request, const std::vector<SodaSource>& sources,
                                              const std::function<fs::path(const std::string&)>& place,
                                              const SodaMonitor& monitor) {
  std::vector<SodaPiece> out;
  std::vector<std::optional<std::size_t>> shapes;
  for (std::size_t k = 0; k < request.shapes.size(); ++k) shapes.emplace_back(k);
  if (shapes.empty()) shapes.emplace_back(std::nullopt);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const auto& src = sources[i];
    const auto& r = src.record;
    for (const auto& shape : shapes) {
      check(monitor);
      SodaPiece piece{.id = src.id, .dataset_id = r.dataset_id, .shape = shape};
      piece.name = entry_name(out.size() + 1, r.dataset_id, shape);
      const std::string what = shape ? image::region_text(request.shapes[*shape]) : std::string("the request");
      if (!src.rejected.empty()) {
        piece.message = no_overlap(src.rejected);
        out.push_back(std::move(piece));
        continue;
      }
      const fs::path file = place(piece.name);
      try {
        if (shape && coadd_assembly(request, r)) {
          const auto patches = coadd_patches(r, request.shapes[*shape], request.caller);
          if (patches.empty()) throw image::NoOverlap("no patch");
          image::write_coadd_cutout(patches, {.shapes = {request.shapes[*shape]}, .pixels = std::nullopt, .planes = request.planes}, file,
                                    r.dataset_id);
        } else {
          image::CutoutRequest cut{.shapes = {}, .pixels = request.pixels, .planes = request.planes};
          if (shape) cut.shapes.push_back(request.shapes[*shape]);
          write_cutout(r, cut, file);
        }
        piece.file = file;
      } catch (const image::NoOverlap&) {
        std::error_code ec;
        fs::remove(file, ec);
        piece.message = no_overlap(fmt::format("{} has no pixels in {}", r.dataset_id, printable(what)));
      } catch (const image::UnsupportedDataset&) {
        throw cannot_cut(r);
      } catch (const image::NoWantedPlane& e) {
        std::error_code ec;
        fs::remove(file, ec);
        throw no_wanted_plane(r, e);
      }
      out.push_back(std::move(piece));
    }
    progress(monitor, static_cast<double>(i + 1) / static_cast<double>(sources.size()));
  }
  return out;
}

bool SodaEngine::asks_for_mosaics(const SodaRequest& request, const std::vector<SodaSource>& sources) {
  return request.mosaic.visit || std::any_of(sources.begin(), sources.end(), [](const SodaSource& s) {
           return repo::is_coadd_mosaic(s.record);
         });
}

std::vector<SodaEngine::MosaicPiece> SodaEngine::plan_mosaics(const SodaRequest& request,
                                                              const std::vector<SodaSource>& sources,
                                                              const SodaMonitor& monitor) {
  const bool visit = request.mosaic.visit;
  for (const auto& src : sources) {
    if (!visit && !repo::is_coadd_mosaic(src.record)) {
      throw bad(fmt::format("ID {} is a single dataset while other IDs are logical coadds (mosaics): ask for them in "
                            "separate requests", printable(src.id)));
    }
  }
  const std::string& first = sources.front().record.dataset_id;
  if (request.pixels) {
    throw bad(fmt::format("PIXEL does not apply to a mosaic ({}): it has no pixel grid of its own; give POS, CIRCLE "
                          "or POLYGON", first));
  }
  if (!request.planes.empty()) {
    throw bad(fmt::format("PLANE does not apply to a mosaic ({}): a mosaic is made with its image, mask and variance "
                          "together; leave PLANE out",
                          first));
  }
  if (request.shapes.empty() && !visit) {
    throw bad(fmt::format("{} is the whole coadd of band {}: give the region to mosaic with POS, CIRCLE or POLYGON",
                          first, sources.front().record.data_id.band));
  }
  if (request.format != SodaFormat::fits) {
    throw bad("mosaics of logical coadds come as FITS: RESPONSEFORMAT=application/fits");
  }
  std::vector<std::optional<std::size_t>> shapes;
  for (std::size_t k = 0; k < request.shapes.size(); ++k) shapes.emplace_back(k);
  if (shapes.empty()) shapes.emplace_back(std::nullopt);  // a visit's whole focal plane
  std::vector<MosaicPiece> out;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const auto& src = sources[i];
    for (const auto& k : shapes) {
      check(monitor);
      MosaicPiece piece{.name = entry_name(out.size() + 1, src.record.dataset_id, k), .plan = {}, .message = {}};
      if (!src.rejected.empty()) {
        piece.message = no_overlap(src.rejected);
      } else {
        try {
          const std::optional<sky::Shape> shape = k ? std::optional(request.shapes[*k]) : std::nullopt;
          piece.plan = visit ? plan_visit_mosaic(*repository_, src.record, shape, request.mosaic,
                                                 limits_.mosaic_max_pixels, request.caller)
                             : plan_coadd_mosaic(*repository_, src.record, *shape, request.mosaic,
                                                 limits_.mosaic_max_pixels, request.caller);
        } catch (const image::NoOverlap& e) {
          piece.message = no_overlap(fmt::format("{} has no pixels in {}: {}", src.record.dataset_id,
                                                 k ? printable(image::region_text(request.shapes[*k])) : "its visit",
                                                 e.what()));
        }
      }
      out.push_back(std::move(piece));
    }
  }
  return out;
}

// ---------------------------------------------------------------- service

namespace {

// The SODA job function, for /sync and /async alike. A sync run answers with
// one document: all cutouts in one FITS file, or one archive streamed from
// the cutout files; a job gives one result per ID x shape (SODA 1.0 section
// 6: a text entry for a combination without pixels), or one archive.
// Mosaics of logical coadds: sync, one FITS file with every mosaic, made
// while it is sent; a job, one result per ID x shape (a text entry for one
// without pixels), each written as it is made.
void run_mosaics(SodaEngine& engine, uws::JobRun& run, const SodaRequest& request,
                 const std::vector<SodaSource>& sources, const SodaMonitor& monitor) {
  auto pieces = engine.plan_mosaics(request, sources, monitor);
  auto& results = run.results();
  const fs::path scratch = results.path("mosaic.fits").parent_path();
  if (run.synchronous()) {
    std::vector<MosaicPlan> plans;
    for (auto& p : pieces) {
      if (p.plan) plans.push_back(std::move(*p.plan));
    }
    if (plans.empty()) return;  // no result: 204
    auto file = std::make_shared<const MosaicFile>(std::move(plans), scratch);
    const auto limit = engine.limits().mosaic_sync_max_pixels;
    if (file->pixels() > limit) {
      throw bad(fmt::format("the mosaic is {} pixels ({:.0f} MB with its three planes); /sync makes at most {} pixels: "
                            "submit the same parameters to /async",
                            file->pixels(), static_cast<double>(file->size()) / 1e6, limit));
    }
    results.add_stream({.id = "cutouts",
                        .file_name = "mosaic.fits",
                        .mime_type = std::string(kSodaFits),
                        .size = file->size(),
                        .produce = [file](const http::ByteSink& sink) { return file->write(sink); },
                        .consumed_files = {},
                        .attachment = true});
    return;
  }
  const double n = static_cast<double>(pieces.size());
  bool with_pixels = false;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    auto& p = pieces[i];
    const std::string id = fmt::format("cutout-{}", i + 1);
    if (!p.plan) {
      results.write(id, fmt::format("cutout-{}.txt", i + 1), "text/plain; charset=utf-8", p.message + "\n");
      continue;
    }
    with_pixels = true;
    auto file = std::make_shared<const MosaicFile>(std::vector<MosaicPlan>{std::move(*p.plan)}, scratch);
    const auto progress = [&monitor, i, n](double f) { monitor.progress((static_cast<double>(i) + f) / n); };
    results.add_stream({.id = id,
                        .file_name = p.name,
                        .mime_type = std::string(kSodaFits),
                        .size = file->size(),
                        .produce = [file, progress, &monitor](const http::ByteSink& sink) {
                          return file->write(sink, progress, monitor.check_cancelled);
                        },
                        .consumed_files = {},
                        .attachment = true});
  }
  if (!with_pixels) throw dali::UsageError("NoOverlap: no mosaic has pixels");
  run.progress().report(1.0);
}

void run_cutouts(SodaEngine& engine, uws::JobRun& run) {
  SodaRequest request = soda_request(run.params(), engine.limits());
  request.caller = run.caller();
  const auto sources = engine.resolve(request);
  if (SodaEngine::asks_for_mosaics(request, sources)) {
    const SodaMonitor monitor{.progress = [&run](double f) { run.progress().report(f); },
                              .check_cancelled = [&run] { run.cancel().throw_if_cancelled(); }};
    run_mosaics(engine, run, request, sources, monitor);
    return;
  }
  if (request.mosaic.any()) {
    throw bad("GRID_CENTER, GRID_SCALE, GRID_ROTATION and KERNEL apply to mosaics: of logical coadds (IDs such as "
              "<collection>.deepCoadd.<band>) or of a visit (MOSAIC=visit)");
  }
  if (run.synchronous()) engine.check_sync_recreations(request, sources);
  auto& results = run.results();
  const SodaMonitor monitor{.progress = [&run](double f) { run.progress().report(f); },
                            .check_cancelled = [&run] { run.cancel().throw_if_cancelled(); }};
  if (request.format == SodaFormat::fits && run.synchronous()) {
    if (auto stream = engine.stream_fits(request, sources, monitor)) {
      if (stream->count > 0) {
        results.add_stream({.id = "cutouts",
                            .file_name = "cutouts.fits",
                            .mime_type = std::string(kSodaFits),
                            .size = stream->size,
                            .produce = std::move(stream->produce),
                            .consumed_files = {},
                            .attachment = true});
      }
      return;  // no result: 204 (sync_without_result)
    }
    if (engine.write_fits(request, sources, results.path("cutouts.fits"), monitor) > 0) {
      results.add_file("cutouts", "cutouts.fits", std::string(kSodaFits));
    }
    return;  // no result: 204 (sync_without_result)
  }
  const auto pieces =
      engine.write_each(request, sources, [&results](const std::string& name) { return results.path(name); }, monitor);
  std::vector<ArchiveEntry> entries;
  for (const auto& p : pieces) {
    if (!p.file.empty()) entries.push_back(archive_entry(p.name, p.file));
  }
  if (request.format == SodaFormat::fits) {
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const auto& p = pieces[i];
      const std::string id = fmt::format("cutout-{}", i + 1);
      if (!p.file.empty()) {
        results.add_file(id, p.name, std::string(kSodaFits));
      } else {
        results.write(id, fmt::format("cutout-{}.txt", i + 1), "text/plain; charset=utf-8", p.message + "\n");
      }
    }
  }
  const bool with_pixels = !entries.empty();
  if (request.format != SodaFormat::fits && with_pixels) {
    const bool tar = request.format == SodaFormat::tar;
    const auto size = tar ? tar_size(entries) : zip_size(entries);
    if (!tar && size > 0xffffffffULL) throw bad("the zip archive would exceed 4 GiB; ask for RESPONSEFORMAT=application/x-tar");
    uws::StreamResult archive{.id = "cutouts",
                              .file_name = tar ? "cutouts.tar" : "cutouts.zip",
                              .mime_type = format_of(request.format),
                              .size = size,
                              .produce = {},
                              .consumed_files = {},
                              .attachment = true};
    for (const auto& e : entries) archive.consumed_files.push_back(e.name);
    archive.produce = [entries = std::move(entries), tar](const http::ByteSink& sink) {
      try {
        return tar ? write_tar(entries, sink) : write_zip(entries, sink);
      } catch (const ArchiveTooLarge& e) {
        throw dali::UsageError(e.what());
      }
    };
    results.add_stream(std::move(archive));
  }
  if (!with_pixels && !run.synchronous()) throw dali::UsageError("NoOverlap: no cutout has pixels");
  run.progress().report(1.0);
}

}  // namespace

dali::Service soda_service(std::shared_ptr<SharedRepository> repository, std::shared_ptr<uws::JobEngine> jobs,
                           std::vector<dali::AvailabilityCheck> checks, const SodaOptions& options) {
  auto spool = uws::SpoolArea::open({.root = spool_root(*repository, options),
                                     .max_age = options.spool_max_age,
                                     .sweep_interval = options.spool_sweep_interval});
  checks.push_back({.name = "spool", .run = [spool] {
                      const auto u = spool->usage();
                      return dali::CheckResult{
                          .ok = true,
                          .note = fmt::format("{} spool file(s), {:.1f} MB; {} response(s) streaming", u.files,
                                              static_cast<double>(u.bytes) / 1e6, u.requests)};
                    }});
  auto engine = std::make_shared<SodaEngine>(repository, options.limits);

  dali::Service service{
      .name = std::string(links::kSoda),
      .title = "Image cutouts (SODA 1.0)",
      .description = "Cutouts of survey images by sky region or pixel section, every plane cut alike with its WCS, "
                     "synchronously or as UWS jobs.",
      .endpoints = {},
      .checks = std::move(checks),
      // A dataset that exists, and a circle around its centre so the
      // example cuts something out.
      .live_examples =
          [repository] {
            const auto record = example_dataset(*repository);
            if (!record || !record->s_ra || !record->s_dec) return dali::RawParams{{"ID", ""}};
            return dali::RawParams{{"ID", repository->publisher_did(record->dataset_id)},
                                   {"POS", fmt::format("CIRCLE {:.6f} {:.6f} {:.6f}", *record->s_ra, *record->s_dec,
                                                       record->s_fov.value_or(0.04) / 4.0)}};
          },
  };
  uws::add_job_endpoints(
      service, std::move(jobs),
      {.kind = std::string(kJobKind),
       .sync = soda_sync_declaration(),
       .async = soda_async_declaration(),
       .run = [engine](uws::JobRun& run) { database_outages_to_unavailable([&] { run_cutouts(*engine, run); }); },
       // Bad parameters never make a job.
       .check_on_create = true,
       .check = [limits = options.limits](const dali::ParsedParams& params) { soda_request(params, limits); },
       .sync_time_limit = {},
       .sync_without_result = [] { return no_content("no cutout has pixels"); },
       .spool = std::move(spool),
       .max_inline_upload_bytes = 0});
  return service;
}

}  // namespace pixserve::services
