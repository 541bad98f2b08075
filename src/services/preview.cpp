#include "services/preview.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "fits/fits.hpp"
#include "hips/image_io.hpp"
#include "image/render.hpp"
#include "image/statistics.hpp"

namespace pixserve::services {
namespace {

fits::Image<float> read_first_image(const std::filesystem::path& path) {
  auto file = fits::File::open(path);
  if (file.move_to_named_hdu("IMAGE") && !file.image_shape().empty()) return file.read_image<float>();
  for (int hdu = 1; hdu <= file.hdu_count(); ++hdu) {
    file.move_to_hdu(hdu);
    if (!file.current_is_image()) continue;
    const auto shape = file.image_shape();
    if (shape.size() == 2 && shape[0] > 0 && shape[1] > 0) return file.read_image<float>();
  }
  throw std::runtime_error("no 2-d image in " + path.filename().string());
}

// Mean of finite pixels over factor x factor blocks.
fits::Image<float> block_average(const fits::Image<float>& in, long factor) {
  if (factor <= 1) return in;
  const long w = (in.width + factor - 1) / factor, h = (in.height + factor - 1) / factor;
  fits::Image<float> out(w, h, std::numeric_limits<float>::quiet_NaN());
  for (long by = 0; by < h; ++by) {
    for (long bx = 0; bx < w; ++bx) {
      double sum = 0.0;
      long n = 0;
      for (long y = by * factor; y < std::min(in.height, (by + 1) * factor); ++y) {
        for (long x = bx * factor; x < std::min(in.width, (bx + 1) * factor); ++x) {
          const float v = in.at(x, y);
          if (std::isfinite(v)) {
            sum += v;
            ++n;
          }
        }
      }
      if (n > 0) out.at(bx, by) = static_cast<float>(sum / static_cast<double>(n));
    }
  }
  return out;
}

}  // namespace

void render_preview(const std::filesystem::path& fits_path, const std::filesystem::path& png, int max_size) {
  const auto full = read_first_image(fits_path);
  const long factor = std::max<long>(1, (std::max(full.width, full.height) + max_size - 1) / max_size);
  const auto small = block_average(full, factor);

  const auto stats = image::estimate_background(small);
  const auto grey = image::grey_raster(small, image::cut_from_background(stats.level, stats.rms),
                                       image::BlankPixels::black);
  hips::write_file_atomic(png, image::encode_png(grey, image::PngColorSpace::unstated));
}

std::filesystem::path cached_preview(const std::filesystem::path& repository_root, const std::string& dataset_id,
                                     const std::filesystem::path& fits) {
  const auto png = repository_root / "cache" / "preview" / (dataset_id + ".png");
  std::error_code ec;
  const auto png_time = std::filesystem::last_write_time(png, ec);
  if (ec || png_time < std::filesystem::last_write_time(fits)) render_preview(fits, png);
  return png;
}

}  // namespace pixserve::services
