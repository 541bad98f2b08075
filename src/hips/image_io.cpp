#include "hips/image_io.hpp"

#include <fstream>
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

}  // namespace

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  atomically(path, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write " + path.string());
  });
}

void write_png(const std::filesystem::path& path, const image::Raster& img) {
  write_file_atomic(path, image::encode_png(img, image::PngColorSpace::srgb));
}

void write_jpeg(const std::filesystem::path& path, const image::Raster& img, int quality) {
  write_file_atomic(path, image::encode_jpeg(img, quality));
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
