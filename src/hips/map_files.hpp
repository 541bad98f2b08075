// Internal to src/hips: the files of a map directory besides its pixels,
// shared by the band and the colour map builders (generate.cpp): the journal
// of finished tiles, tile files per format, stale tiles and progenitor
// index entries, index.html, and small helpers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "hips/image_io.hpp"
#include "hips/properties.hpp"
#include "hips/tile.hpp"
#include "image/render.hpp"

namespace pixserve::hips::detail {

inline constexpr const char* kJournal = ".pixserve-tiles";

// A short stable hash of text (FNV-1a, hex), for the journal.
std::string fnv_hash(std::string_view text);

// --- the journal of finished tiles ---
class Journal {
 public:
  explicit Journal(std::filesystem::path file) : file_(std::move(file)) {
    std::ifstream in(file_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream s(line);
      int order = 0;
      std::int64_t npix = 0;
      std::string hash;
      int empty = 0;
      if (s >> order >> npix >> hash >> empty) entries_[{order, npix}] = {hash, empty != 0};
    }
    out_.open(file_, std::ios::app);
  }

  struct Entry {
    std::string hash;
    bool empty = false;
  };

  std::optional<Entry> get(const TileId& t) const {
    const std::lock_guard lock(mutex_);
    auto it = entries_.find(t);
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }

  void record(const TileId& t, const std::string& hash, bool empty) {
    const std::lock_guard lock(mutex_);
    entries_[t] = {hash, empty};
    out_ << t.order << ' ' << t.npix << ' ' << hash << ' ' << (empty ? 1 : 0) << '\n';
    out_.flush();
  }

  // Drops a tile (it is no longer part of the map); compact() writes it out.
  void forget(const TileId& t) {
    const std::lock_guard lock(mutex_);
    entries_.erase(t);
  }

  // Rewrites the file with one line per tile (the log grows by appends).
  void compact() {
    const std::lock_guard lock(mutex_);
    out_.close();
    std::string text;
    for (const auto& [t, e] : entries_) text += fmt::format("{} {} {} {}\n", t.order, t.npix, e.hash, e.empty ? 1 : 0);
    write_file_atomic(file_, text);
    out_.open(file_, std::ios::app);
  }

  std::map<TileId, Entry> snapshot() const {
    const std::lock_guard lock(mutex_);
    return entries_;
  }

 private:
  std::filesystem::path file_;
  mutable std::mutex mutex_;
  std::map<TileId, Entry> entries_;
  std::ofstream out_;
};

struct TileFormats {
  bool fits = true;
  bool png = false;
  bool jpeg = false;
};

// Now as ISO 8601 UTC (hips_release_date).
std::string iso_now();
// Size of a directory tree in KiB (hips_estsize).
std::uintmax_t directory_kb(const std::filesystem::path& dir);
// hips_tile_format's value for the formats made.
std::string formats_of(bool fits, bool png, bool jpeg);
void write_index_html(const std::filesystem::path& dir, const Properties& p);
// Removes the progenitor index files of HpxFinder folder `root` other than
// those of cells `keep` at `order`.
void prune_finder(const std::filesystem::path& root, int order, const std::set<std::int64_t>& keep);
bool files_exist(const std::filesystem::path& dir, const TileId& t, const TileFormats& f);
void remove_tile_files(const std::filesystem::path& dir, const TileId& t);
// Removes the tiles of `order` an earlier run made that this one no longer
// has (files and journal entries); returns how many.
std::size_t drop_stale_tiles(Journal& journal, const std::filesystem::path& dir, int order,
                             const std::set<std::int64_t>& keep);
void write_grey_tile(const std::filesystem::path& dir, const TileId& t, const fits::Image<float>& img,
                     const TileFormats& f, const image::Cut& cut);
// Creates the output directory (it must be named).
void check_out(const std::filesystem::path& out);

}  // namespace pixserve::hips::detail
