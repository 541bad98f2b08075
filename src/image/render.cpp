#include "image/render.hpp"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include <fmt/format.h>

namespace pixserve::image {

Cut cut_from_background(double sky, double noise) {
  if (!(noise > 0.0) || !std::isfinite(noise)) noise = 1.0;
  if (!std::isfinite(sky)) sky = 0.0;
  return Cut{.lo = sky - 2.0 * noise, .hi = sky + 500.0 * noise, .soft = 3.0 * noise, .sky = sky, .noise = noise};
}

std::uint8_t grey_level(float value, const Cut& cut) {
  if (!std::isfinite(value)) return 0;
  const double top = std::asinh((cut.hi - cut.lo) / cut.soft);
  double t = std::asinh(std::max(0.0, static_cast<double>(value) - cut.lo) / cut.soft) / top;
  t = std::clamp(t, 0.0, 1.0);
  return static_cast<std::uint8_t>(std::lround(t * 255.0));
}

Raster grey_raster(const fits::Image<float>& image, const Cut& cut, BlankPixels blank) {
  const int channels = blank == BlankPixels::transparent ? 2 : 1;
  Raster out{.width = image.width, .height = image.height, .channels = channels, .pixels = {}};
  out.pixels.resize(static_cast<std::size_t>(image.width * image.height * channels));
  for (long y = 0; y < image.height; ++y) {
    const long row = image.height - 1 - y;  // PNG rows run top-down
    for (long x = 0; x < image.width; ++x) {
      const float v = image.at(x, y);
      const auto i = static_cast<std::size_t>((row * image.width + x) * channels);
      out.pixels[i] = grey_level(v, cut);
      if (channels == 2) out.pixels[i + 1] = std::isfinite(v) ? 255 : 0;
    }
  }
  return out;
}

Raster color_raster(const fits::Image<float>& red, const fits::Image<float>& green, const fits::Image<float>& blue,
                    const std::array<Cut, 3>& cuts) {
  if (red.width != green.width || red.width != blue.width || red.height != green.height || red.height != blue.height) {
    throw std::invalid_argument("colour bands of different sizes");
  }
  const std::array<const fits::Image<float>*, 3> bands{&red, &green, &blue};
  Raster out{.width = red.width, .height = red.height, .channels = 4, .pixels = {}};
  out.pixels.resize(static_cast<std::size_t>(red.width * red.height * 4));
  // Softening and white point in noise units, as the grey stretch.
  const double q = 3.0, white = std::asinh(500.0 / q);
  for (long y = 0; y < red.height; ++y) {
    const long row = red.height - 1 - y;
    for (long x = 0; x < red.width; ++x) {
      std::array<double, 3> v{};
      int finite = 0;
      for (int c = 0; c < 3; ++c) {
        const float p = bands[static_cast<std::size_t>(c)]->at(x, y);
        if (std::isfinite(p)) {
          ++finite;
          v[static_cast<std::size_t>(c)] =
              std::max(0.0, (p - cuts[static_cast<std::size_t>(c)].sky) / cuts[static_cast<std::size_t>(c)].noise);
        }
      }
      const auto i = static_cast<std::size_t>((row * red.width + x) * 4);
      if (finite == 0) {
        out.pixels[i] = out.pixels[i + 1] = out.pixels[i + 2] = out.pixels[i + 3] = 0;
        continue;
      }
      const double mean = (v[0] + v[1] + v[2]) / 3.0;
      const double f = mean > 0.0 ? std::asinh(mean / q) / white / mean : 0.0;
      double m = 0.0;
      for (auto& c : v) {
        c *= f;
        m = std::max(m, c);
      }
      const double scale = m > 1.0 ? 1.0 / m : 1.0;
      for (int c = 0; c < 3; ++c) {
        out.pixels[i + static_cast<std::size_t>(c)] =
            static_cast<std::uint8_t>(std::lround(std::clamp(v[static_cast<std::size_t>(c)] * scale, 0.0, 1.0) * 255.0));
      }
      out.pixels[i + 3] = 255;
    }
  }
  return out;
}

namespace {

void check_raster(const Raster& img) {
  if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4 ||
      img.pixels.size() != static_cast<std::size_t>(img.width * img.height * img.channels)) {
    throw std::invalid_argument("bad raster shape");
  }
}

// ---------------------------------------------------------------- PNG

struct PngWrite {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::string* out = nullptr;
  std::string error;
  ~PngWrite() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

[[noreturn]] void png_error_exit(png_structp png, png_const_charp message) {
  static_cast<PngWrite*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

void png_warning_ignored(png_structp, png_const_charp) {}

void png_append(png_structp png, png_bytep data, std::size_t size) {
  auto* w = static_cast<PngWrite*>(png_get_io_ptr(png));
  try {
    w->out->append(reinterpret_cast<const char*>(data), size);
  } catch (const std::bad_alloc&) {
    png_error(png, "out of memory");
  }
}

void png_flush_nothing(png_structp) {}

// The longjmp target lives in this function, which holds no object with a
// destructor between setjmp and the end of writing: the state and the output
// are owned by the caller. The calls are those of libpng's simplified writer
// (png_image_write_*) for 8-bit input, so that a tile written by either is
// the same file.
bool write_png_rows(PngWrite& w, const Raster& img, PngColorSpace color_space) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_set_write_fn(w.png, &w, png_append, png_flush_nothing);
  const int color_type = img.channels == 1   ? PNG_COLOR_TYPE_GRAY
                         : img.channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                         : img.channels == 3 ? PNG_COLOR_TYPE_RGB
                                             : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(w.png, w.info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height), 8, color_type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_BASE, PNG_FILTER_TYPE_BASE);
  if (color_space == PngColorSpace::srgb) png_set_sRGB(w.png, w.info, PNG_sRGB_INTENT_PERCEPTUAL);
  png_write_info(w.png, w.info);
  const auto row_bytes = static_cast<std::size_t>(img.width * img.channels);
  for (long row = 0; row < img.height; ++row) {
    png_write_row(w.png, img.pixels.data() + static_cast<std::size_t>(row) * row_bytes);
  }
  png_write_end(w.png, w.info);
  return true;
}

// ---------------------------------------------------------------- JPEG

struct JpegError {
  jpeg_error_mgr mgr{};
  std::jmp_buf jump{};
};

[[noreturn]] void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  std::longjmp(err->jump, 1);
}

struct JpegCompress {
  jpeg_compress_struct info{};
  bool created = false;
  ~JpegCompress() {
    if (created) jpeg_destroy_compress(&info);
  }
};

struct MallocBuffer {
  unsigned char* data = nullptr;
  unsigned long size = 0;
  ~MallocBuffer() { std::free(data); }
};

// The longjmp target lives in this function, which holds no object with a
// destructor between setjmp and the end of compression: the buffers are
// owned by the caller.
bool compress_jpeg(JpegCompress& c, JpegError& err, MallocBuffer& out, const Raster& img, int quality,
                   const std::vector<std::uint8_t>& rows, int components) {
  c.info.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  if (setjmp(err.jump)) return false;
  jpeg_create_compress(&c.info);
  c.created = true;
  jpeg_mem_dest(&c.info, &out.data, &out.size);
  c.info.image_width = static_cast<JDIMENSION>(img.width);
  c.info.image_height = static_cast<JDIMENSION>(img.height);
  c.info.input_components = components;
  c.info.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c.info);
  jpeg_set_quality(&c.info, quality, TRUE);
  jpeg_start_compress(&c.info, TRUE);
  while (c.info.next_scanline < c.info.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rows.data() + static_cast<std::size_t>(c.info.next_scanline) *
                                                          static_cast<std::size_t>(img.width * components));
    jpeg_write_scanlines(&c.info, &row, 1);
  }
  jpeg_finish_compress(&c.info);
  return true;
}

}  // namespace

std::string encode_png(const Raster& img, PngColorSpace color_space) {
  check_raster(img);
  std::string out;
  PngWrite w;
  w.out = &out;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &w, png_error_exit, png_warning_ignored);
  if (!w.png) throw std::runtime_error("cannot encode PNG: out of memory");
  w.info = png_create_info_struct(w.png);
  if (!w.info) throw std::runtime_error("cannot encode PNG: out of memory");
  if (!write_png_rows(w, img, color_space)) throw std::runtime_error("cannot encode PNG: " + w.error);
  return out;
}

std::string encode_jpeg(const Raster& img, int quality) {
  check_raster(img);
  const int components = img.channels <= 2 ? 1 : 3;
  std::vector<std::uint8_t> rows(static_cast<std::size_t>(img.width * img.height * components));
  for (std::size_t p = 0, n = static_cast<std::size_t>(img.width * img.height); p < n; ++p) {
    for (int c = 0; c < components; ++c) {
      rows[p * static_cast<std::size_t>(components) + static_cast<std::size_t>(c)] =
          img.pixels[p * static_cast<std::size_t>(img.channels) + static_cast<std::size_t>(c)];
    }
  }
  JpegCompress c;
  JpegError err;
  MallocBuffer out;
  if (!compress_jpeg(c, err, out, img, quality, rows, components)) {
    char message[JMSG_LENGTH_MAX] = {};
    err.mgr.format_message(reinterpret_cast<j_common_ptr>(&c.info), message);
    throw std::runtime_error(fmt::format("cannot encode JPEG: {}", message));
  }
  return std::string(reinterpret_cast<const char*>(out.data), out.size);
}

Raster read_png_rgba(const std::filesystem::path& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    throw std::runtime_error(fmt::format("cannot read PNG {}: {}", path.string(), image.message));
  }
  image.format = PNG_FORMAT_RGBA;
  Raster out{.width = image.width, .height = image.height, .channels = 4, .pixels = {}};
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    const std::string message = image.message;
    png_image_free(&image);
    throw std::runtime_error(fmt::format("cannot read PNG {}: {}", path.string(), message));
  }
  return out;
}

}  // namespace pixserve::image
