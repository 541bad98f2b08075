#include "services/preview.hpp"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>

#include "fits/fits.hpp"
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

struct PngFile {
  std::FILE* file = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngFile() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
    if (file) std::fclose(file);
  }
};

void write_png(const std::filesystem::path& path, long width, long height, const std::vector<unsigned char>& grey) {
  PngFile out;
  out.file = std::fopen(path.c_str(), "wb");
  if (!out.file) throw std::runtime_error("cannot write preview " + path.filename().string());
  out.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (!out.png) throw std::runtime_error("libpng: out of memory");
  out.info = png_create_info_struct(out.png);
  if (!out.info) throw std::runtime_error("libpng: out of memory");
  // libpng reports errors by longjmp: nothing with a destructor lives between
  // here and the end of the writing below.
  if (setjmp(png_jmpbuf(out.png))) throw std::runtime_error("libpng failed writing " + path.filename().string());
  png_init_io(out.png, out.file);
  png_set_IHDR(out.png, out.info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8,
               PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(out.png, out.info);
  for (long row = 0; row < height; ++row) {
    png_write_row(out.png, grey.data() + row * width);
  }
  png_write_end(out.png, nullptr);
  if (std::fflush(out.file) != 0) throw std::runtime_error("cannot write preview " + path.filename().string());
}

}  // namespace

void render_preview(const std::filesystem::path& fits_path, const std::filesystem::path& png, int max_size) {
  const auto full = read_first_image(fits_path);
  const long factor = std::max<long>(1, (std::max(full.width, full.height) + max_size - 1) / max_size);
  const auto small = block_average(full, factor);

  const auto stats = image::estimate_background(small);
  const double sky = stats.level;
  const double noise = stats.rms > 0.0 ? stats.rms : 1.0;
  // asinh stretch: linear near the sky, logarithmic for bright sources;
  // black at sky - 2 sigma, white at sky + 500 sigma.
  const double lo = sky - 2.0 * noise, soft = 3.0 * noise;
  const double top = std::asinh((sky + 500.0 * noise - lo) / soft);
  std::vector<unsigned char> grey(static_cast<std::size_t>(small.width * small.height));
  for (long y = 0; y < small.height; ++y) {
    const long out_row = small.height - 1 - y;  // PNG rows run top-down
    for (long x = 0; x < small.width; ++x) {
      const float v = small.at(x, y);
      double t = std::isfinite(v) ? std::asinh(std::max(0.0, v - lo) / soft) / top : 0.0;
      t = std::clamp(t, 0.0, 1.0);
      grey[static_cast<std::size_t>(out_row * small.width + x)] = static_cast<unsigned char>(std::lround(t * 255.0));
    }
  }
  std::filesystem::create_directories(png.parent_path());
  std::random_device random;
  const auto tmp = png.parent_path() / fmt::format(".{}.{:08x}.tmp", png.filename().string(), random());
  try {
    write_png(tmp, small.width, small.height, grey);
    std::filesystem::rename(tmp, png);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
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
