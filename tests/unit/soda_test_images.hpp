// Synthetic images for the SODA tests: a tract grid of known pixel values
// (value = x + 10000 y) with its TAN WCS, IMAGE/MASK/VARIANCE files on it,
// and registry records for them.
#pragma once

#include <filesystem>
#include <string>

#include "fits/fits.hpp"
#include "repo/dataset.hpp"
#include "sky/geometry.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::services {

namespace fs = std::filesystem;

inline constexpr double kScale = 0.2 / 3600.0;

inline wcs::Wcs grid_wcs(double crpix_x, double crpix_y) {
  wcs::TanParameters t;
  t.crval = {53.0, -28.0};
  t.crpix = {crpix_x, crpix_y};
  t.cd = {-kScale, 0.0, 0.0, kScale};
  return wcs::Wcs::tan(t);
}

// value(x, y) in the tract grid (x, y of the grid, 0-based)
inline float grid_value(long x, long y) { return static_cast<float>(x) + 10000.0F * static_cast<float>(y); }

inline void write_image(const fs::path& path, const wcs::Wcs& w, long size, long gx0, long gy0, const char* dstype) {
  fits::Image<float> image(size, size), variance(size, size, 1.0F);
  fits::Image<std::int32_t> mask(size, size, 0);
  for (long y = 0; y < size; ++y)
    for (long x = 0; x < size; ++x) image.at(x, y) = grid_value(x + gx0, y + gy0);
  fs::create_directories(path.parent_path());
  auto f = fits::File::create(path);
  f.write_string("DSTYPE", dstype);
  f.append_image(image, {.extname = "IMAGE"});
  w.write_to(f);
  f.append_image(mask, {.extname = "MASK"});
  w.write_to(f);
  f.append_image(variance, {.extname = "VARIANCE"});
  w.write_to(f);
  f.close();
}

inline sky::Polygon footprint(const wcs::Wcs& w, long size) {
  const double e = static_cast<double>(size) - 0.5;
  auto pts = w.pixel_to_sky(std::vector<wcs::PixelPoint>{{-0.5, -0.5}, {e, -0.5}, {e, e}, {-0.5, e}});
  return sky::Polygon(pts);
}

inline repo::DatasetRecord record_for(repo::DatasetType type, const std::string& id, const std::string& rel,
                               const sky::Polygon& fp, long size) {
  repo::DatasetRecord r;
  r.type = type;
  r.collection = "DR1";
  r.dataset_id = id;
  r.file_path = rel;
  r.file_size = 1;
  r.checksum = "00";
  r.footprint = fp;
  r.width = r.height = size;
  r.data_id.instrument = "LSSTSim";
  r.data_id.band = "r";
  r.em_min = 552e-9;
  r.em_max = 691e-9;
  r.t_min = 61000.0;
  r.t_max = 61000.001;
  return r;
}

}  // namespace pixserve::services
