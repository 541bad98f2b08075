// HiPS generation from the coadds of a repository.
//
// A band map: every deepCoadd patch of one band resampled (bilinear, the
// patches that overlap averaged) onto the 512 x 512 pixel tiles of the
// deepest order, then each lower order by 2 x 2 averaging of the order
// below, down to order 0. FITS tiles (BITPIX -32, NaN blank, HPX WCS) always
// (lower orders and colour maps are built from them), PNG and/or JPEG with
// one asinh cut for the whole map. Norder3/Allsky.*, properties, Moc.fits,
// index.html and the HpxFinder progenitor index come with it.
//
// A colour map: three band maps (red, green, blue) combined tile by tile at
// every order with a Lupton asinh stretch, as PNG and/or JPEG.
//
// Restartable and incremental: every finished tile is recorded in
// DIR/.pixserve-tiles with a hash of what it was made from (the input
// datasets and their checksums, or its children's hashes, and the
// settings); a run skips tiles whose hash is unchanged and whose files
// exist, so an interrupted run resumes and new coadds rebuild only the
// tiles they touch (and their ancestors). The cut levels are kept from the
// first run (stored in properties) unless `force` is set, so PNG/JPEG tiles
// stay consistent across incremental runs.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "auth/policy.hpp"
#include "parallel/progress.hpp"
#include "repo/repository.hpp"

namespace pixserve::hips {

// The properties key naming the audience a tree was made for
// (auth::to_string of it); the server serves a tree only to its audience.
inline constexpr std::string_view kAudienceKey = "pixserve_audience";

struct BandMapOptions {
  std::string band{};                       // band letter
  // Whose tree it is: only coadds every member of the audience may read
  // (auth::find_readable with auth::audience_identity) go into it.
  auth::Audience audience = auth::Audience::public_;
  std::string dataset_type = "deepCoadd";   // coadds (deepCoadd or goodSeeingCoadd)
  std::vector<std::string> collections{};   // empty: all
  std::filesystem::path out{};              // the HiPS directory
  int max_order = -1;                       // -1: the order matching the coadd pixel scale
  bool png = true;
  bool jpeg = false;
  unsigned threads = 0;  // 0: one per core
  bool force = false;    // rebuild every tile and recompute the cut
  std::string version = "0.1.0";
};

struct ColorMapOptions {
  std::array<std::filesystem::path, 3> bands{};  // band map directories: red, green, blue
  std::filesystem::path out{};
  bool png = true;
  bool jpeg = true;
  unsigned threads = 0;
  bool force = false;
  std::string version = "0.1.0";
};

struct HipsReport {
  int max_order = 0;
  std::size_t inputs = 0;          // coadds (band map) or bands (colour map)
  std::size_t tiles_written = 0;   // tiles (re)made in this run, all orders
  std::size_t tiles_skipped = 0;   // unchanged since an earlier run
  std::size_t tiles_total = 0;     // non-empty tiles of the map, all orders
  double seconds = 0.0;
  std::vector<std::string> left_out{};  // coadds not in the map, counted by reason ("3 deepCoadd dataset(s) restricted to groups")
  bool removed = false;                 // the audience may read none of the coadds: no map (an earlier one removed)
};

// The tile order whose pixels (order + 9) best match a pixel scale: the one
// with the smallest |log(pixel size / scale)|, at least 3 (Allsky needs
// order 3) and at most kMaxHipsOrder.
int order_for_pixel_scale(double arcsec);

// Builds or updates a band map for options.audience. Progress stages
// "hips-load", "hips-tiles", "hips-order". Throws std::runtime_error when the
// repository has no such coadds, std::invalid_argument for bad options.
// When the audience may read none of them, the map is not made and a map
// left in options.out by an earlier run is removed (report.removed). Tiles,
// index entries and coverage of coadds that left the map since an earlier
// run (removed, or no longer readable by the audience) are removed.
HipsReport build_band_map(repo::Repository& repository, const BandMapOptions& options,
                          const ProgressCallback& progress = {});

// Removes a map folder made by pixserve (it has the tile journal, or
// properties whose hips_builder is pixserve); nothing when `dir` does not
// exist. Throws std::runtime_error for any other folder, which it leaves.
void remove_map(const std::filesystem::path& dir);

// Builds or updates a colour map from three band maps made by build_band_map.
HipsReport build_color_map(const ColorMapOptions& options, const ProgressCallback& progress = {});

}  // namespace pixserve::hips
