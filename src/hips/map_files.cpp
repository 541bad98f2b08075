#include "hips/map_files.hpp"

#include <chrono>
#include <ctime>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "hips/image_io.hpp"

namespace pixserve::hips::detail {

std::string fnv_hash(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%MZ", &tm);
  return buf;
}

std::uintmax_t directory_kb(const std::filesystem::path& dir) {
  std::uintmax_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += it->file_size(ec);
  }
  return (bytes + 1023) / 1024;
}

std::string formats_of(bool fits, bool png, bool jpeg) {
  std::vector<std::string> f;
  if (jpeg) f.push_back("jpeg");
  if (png) f.push_back("png");
  if (fits) f.push_back("fits");
  return fmt::format("{}", fmt::join(f, " "));
}

void write_index_html(const std::filesystem::path& dir, const Properties& p) {
  std::string rows;
  for (const auto& [k, v] : p.entries()) {
    std::string esc;
    for (char c : v) {
      if (c == '<') esc += "&lt;";
      else if (c == '>') esc += "&gt;";
      else if (c == '&') esc += "&amp;";
      else esc += c;
    }
    rows += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", k, esc);
  }
  const auto name = dir.filename().string();
  const std::string html = fmt::format(
      "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{0}</title></head>\n<body>\n"
      "<h1>HiPS {0}</h1>\n<p>{1}</p>\n"
      "<p>A HiPS (IVOA Hierarchical Progressive Survey 1.0) tree made by pixserve. View it in the "
      "<a href=\"../../../web/hips.html?map={0}\">pixserve viewer</a> (Aladin Lite), or point Aladin at this "
      "folder's URL. Files: <a href=\"properties\">properties</a>, <a href=\"Moc.fits\">Moc.fits</a>, "
      "<a href=\"Norder3/\">Norder3/Allsky</a>.</p>\n<table>\n{2}</table>\n</body>\n</html>\n",
      name, p.get("obs_title").value_or(name), rows);
  write_file_atomic(dir / "index.html", html);
}

// Removes the progenitor index files of HpxFinder folder `root` other than
// those of cells `keep` at `order`: they would name coadds the map no longer
// holds (or may no longer show).
void prune_finder(const std::filesystem::path& root, int order, const std::set<std::int64_t>& keep) {
  const std::string order_dir = fmt::format("Norder{}", order);
  std::vector<std::filesystem::path> stale;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    std::error_code e2;
    const auto name = it->path().filename().string();
    if (!it->is_regular_file(e2) || !name.starts_with("Npix")) continue;
    const auto npix = std::strtoll(name.c_str() + 4, nullptr, 10);
    if (it->path().parent_path().parent_path().filename() != order_dir || !keep.contains(npix)) {
      stale.push_back(it->path());
    }
  }
  for (const auto& f : stale) std::filesystem::remove(f, ec);
}

bool files_exist(const std::filesystem::path& dir, const TileId& t, const TileFormats& f) {
  std::error_code ec;
  if (f.fits && !std::filesystem::exists(dir / tile_path(t, "fits"), ec)) return false;
  if (f.png && !std::filesystem::exists(dir / tile_path(t, "png"), ec)) return false;
  if (f.jpeg && !std::filesystem::exists(dir / tile_path(t, "jpg"), ec)) return false;
  return true;
}

void remove_tile_files(const std::filesystem::path& dir, const TileId& t) {
  std::error_code ec;
  for (const char* ext : {"fits", "png", "jpg"}) std::filesystem::remove(dir / tile_path(t, ext), ec);
}

// Removes the tiles of `order` that an earlier run made and this one no
// longer has (their inputs are gone or may no longer be shown to the map's
// audience), files and journal entries, so that neither a request nor a
// lower order or Allsky built from them can show their pixels again.
std::size_t drop_stale_tiles(Journal& journal, const std::filesystem::path& dir, int order,
                             const std::set<std::int64_t>& keep) {
  std::size_t dropped = 0;
  for (const auto& [t, e] : journal.snapshot()) {
    if (t.order != order || keep.contains(t.npix)) continue;
    remove_tile_files(dir, t);
    journal.forget(t);
    ++dropped;
  }
  return dropped;
}

void write_grey_tile(const std::filesystem::path& dir, const TileId& t, const fits::Image<float>& img,
                     const TileFormats& f, const image::Cut& cut) {
  if (f.fits) write_fits_tile(dir / tile_path(t, "fits"), t, img);
  if (f.png || f.jpeg) {
    const auto raster = image::grey_raster(img, cut, image::BlankPixels::transparent);
    if (f.png) write_png(dir / tile_path(t, "png"), raster);
    if (f.jpeg) write_jpeg(dir / tile_path(t, "jpg"), raster);
  }
}

void check_out(const std::filesystem::path& out) {
  if (out.empty()) throw std::invalid_argument("no output directory given");
  std::filesystem::create_directories(out);
}

}  // namespace pixserve::hips::detail
