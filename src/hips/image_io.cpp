#include "hips/image_io.hpp"

#include <jpeglib.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

namespace pixserve::hips {
namespace {

std::filesystem::path temp_beside(const std::filesystem::path& path) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  return path.parent_path() / fmt::format(".{}.{:016x}.tmp", path.filename().string(), random());
}

// Runs write(tmp) then renames tmp over path; removes tmp on failure.
template <typename F>
void atomically(const std::filesystem::path& path, F&& write) {
  std::filesystem::create_directories(path.parent_path());
  const auto tmp = temp_beside(path);
  try {
    write(tmp);
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

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

void check_raster(const Raster& img) {
  if (img.width <= 0 || img.height <= 0 || img.channels < 1 || img.channels > 4 ||
      img.pixels.size() != static_cast<std::size_t>(img.width * img.height * img.channels)) {
    throw std::invalid_argument("bad raster shape");
  }
}

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
  });
}

void write_png(const std::filesystem::path& path, const Raster& img) {
  check_raster(img);
  atomically(path, [&](const std::filesystem::path& tmp) {
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = static_cast<png_uint_32>(img.width);
    image.height = static_cast<png_uint_32>(img.height);
    image.format = img.channels == 1   ? PNG_FORMAT_GRAY
                   : img.channels == 2 ? PNG_FORMAT_GA
                   : img.channels == 3 ? PNG_FORMAT_RGB
                                       : PNG_FORMAT_RGBA;
    if (!png_image_write_to_file(&image, tmp.c_str(), 0, img.pixels.data(), 0, nullptr)) {
      const std::string message = image.message;
      png_image_free(&image);
      throw std::runtime_error(fmt::format("cannot write PNG {}: {}", path.string(), message));
    }
  });
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

void write_jpeg(const std::filesystem::path& path, const Raster& img, int quality) {
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
    throw std::runtime_error(fmt::format("cannot write JPEG {}: {}", path.string(), message));
  }
  write_file_atomic(path, std::string(reinterpret_cast<const char*>(out.data), out.size));
}

void write_fits_tile(const std::filesystem::path& path, const TileId& id, const fits::Image<float>& pixels) {
  atomically(path, [&](const std::filesystem::path& tmp) {
    auto file = fits::File::create(tmp);
    file.write_primary_image(pixels);
    for (const auto& k : tile_wcs(id)) {
      if (k.is_string) file.write_string(k.key, k.text);
      else if (k.key == "WCSAXES") file.write_int(k.key, static_cast<long long>(k.number));
      else file.write_double(k.key, k.number);
    }
    file.write_int("ORDER", id.order, "HiPS tile order");
    file.write_int("NPIX", id.npix, "HiPS tile index (NESTED)");
    file.write_string("ORIGIN", "pixserve", "HiPS generator");
    file.close();
  });
}

void write_fits_image(const std::filesystem::path& path, const fits::Image<float>& pixels,
                      const std::vector<std::pair<std::string, long long>>& int_keys) {
  atomically(path, [&](const std::filesystem::path& tmp) {
    auto file = fits::File::create(tmp);
    file.write_primary_image(pixels);
    for (const auto& [k, v] : int_keys) file.write_int(k, v);
    file.write_string("ORIGIN", "pixserve", "HiPS generator");
    file.close();
  });
}

std::optional<fits::Image<float>> read_fits_tile(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
  auto file = fits::File::open(path);
  return file.read_image<float>();
}

}  // namespace pixserve::hips
