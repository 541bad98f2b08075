#include "repo/hdu_parts.hpp"

#include <array>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace pixserve::repo {
namespace {

// The planes that qualify the science image rather than being it.
bool is_auxiliary_plane(const std::string& extname) { return extname == "MASK" || extname == "VARIANCE"; }

std::string header_text(fits::File& file, const char* key) {
  auto value = file.read_string(key);
  if (!value) return {};
  while (!value->empty() && value->back() == ' ') value->pop_back();
  return *value;
}

// CDi_j of the header, else PCi_j (the unit matrix when absent) times
// CDELTi, else nothing: a header with neither has no linear WCS to give.
std::array<std::optional<double>, 4> cd_matrix(fits::File& file) {
  static constexpr std::array<const char*, 4> kCd{"CD1_1", "CD1_2", "CD2_1", "CD2_2"};
  static constexpr std::array<const char*, 4> kPc{"PC1_1", "PC1_2", "PC2_1", "PC2_2"};
  std::array<std::optional<double>, 4> cd{};
  bool any_cd = false;
  for (std::size_t k = 0; k < 4; ++k) {
    cd[k] = file.read_double(kCd[k]);
    any_cd = any_cd || cd[k].has_value();
  }
  if (any_cd) {
    for (auto& v : cd) v = v.value_or(0.0);  // a missing CD element is 0 (FITS WCS paper I)
    return cd;
  }
  const auto cdelt1 = file.read_double("CDELT1");
  const auto cdelt2 = file.read_double("CDELT2");
  if (!cdelt1 || !cdelt2) return cd;
  for (std::size_t k = 0; k < 4; ++k) {
    const double pc = file.read_double(kPc[k]).value_or(k == 0 || k == 3 ? 1.0 : 0.0);
    cd[k] = pc * (k < 2 ? *cdelt1 : *cdelt2);
  }
  return cd;
}

}  // namespace

std::vector<HduPart> read_hdu_parts(fits::File& file) {
  std::vector<HduPart> parts;
  const int count = file.hdu_count();
  if (count > kMaxHdus) {
    throw TooManyHdus(fmt::format("{} HDUs: at most {} are registered", count, kMaxHdus));
  }
  for (int number = 1; number <= count; ++number) {
    file.move_to_hdu(number);
    HduPart part;
    part.hdu = number - 1;
    const std::string extname = header_text(file, "EXTNAME");
    part.name = extname.empty() ? std::to_string(part.hdu) : extname;
    const bool image = file.current_is_image();
    part.product_type = !image || is_auxiliary_plane(extname) ? "auxiliary" : "this";
    if (image) {
      const auto shape = file.image_shape();
      part.naxis = static_cast<int>(shape.size());
      if (!shape.empty()) part.naxis1 = shape[0];
      if (shape.size() > 1) part.naxis2 = shape[1];
    }
    if (part.naxis > 0) {
      part.ctype1 = header_text(file, "CTYPE1");
      part.ctype2 = header_text(file, "CTYPE2");
      if (!part.ctype1.empty() && !part.ctype2.empty()) {
        part.cunit1 = header_text(file, "CUNIT1");
        part.cunit2 = header_text(file, "CUNIT2");
        part.crpix1 = file.read_double("CRPIX1");
        part.crpix2 = file.read_double("CRPIX2");
        part.crval1 = file.read_double("CRVAL1");
        part.crval2 = file.read_double("CRVAL2");
        const auto cd = cd_matrix(file);
        part.cd11 = cd[0];
        part.cd12 = cd[1];
        part.cd21 = cd[2];
        part.cd22 = cd[3];
        const auto equinox = file.read_double("EQUINOX");
        part.coordsys = header_text(file, "RADESYS");
        if (part.coordsys.empty()) part.coordsys = header_text(file, "RADECSYS");  // the older spelling
        if (part.coordsys.empty()) part.coordsys = !equinox ? "ICRS" : *equinox < 1984.0 ? "FK4" : "FK5";
        if (part.coordsys == "FK4" || part.coordsys == "FK5") {
          part.equinox = equinox.value_or(part.coordsys == "FK4" ? 1950.0 : 2000.0);
        }
      } else {
        part.ctype1.clear();
        part.ctype2.clear();
      }
    }
    parts.push_back(std::move(part));
  }
  return parts;
}

std::vector<HduPart> read_hdu_parts(const std::filesystem::path& file) {
  auto f = fits::File::open(file);
  return read_hdu_parts(f);
}

void insert_hdu_parts(db::Connection& conn, std::int64_t dataset_key, std::span<const HduPart> parts) {
  if (parts.empty()) return;
  auto s = conn.prepare_cached(
      "INSERT INTO dataset_part (dataset_key, hdu, name, product_type, naxis, naxis1, naxis2, ctype1, ctype2, cunit1, "
      "cunit2, crpix1, crpix2, crval1, crval2, cd11, cd12, cd21, cd22, coordsys, equinox) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  for (const auto& p : parts) {
    int c = 1;
    const auto text_or_null = [&](const std::string& v) {
      if (v.empty()) {
        s->bind_null(c++);
      } else {
        s->bind(c++, v);
      }
    };
    s->bind(c++, dataset_key);
    s->bind(c++, static_cast<std::int64_t>(p.hdu));
    s->bind(c++, p.name);
    s->bind(c++, p.product_type);
    s->bind(c++, static_cast<std::int64_t>(p.naxis));
    s->bind(c++, p.naxis > 0 ? std::optional<std::int64_t>(p.naxis1) : std::nullopt);
    s->bind(c++, p.naxis > 1 ? std::optional<std::int64_t>(p.naxis2) : std::nullopt);
    for (const auto* text : {&p.ctype1, &p.ctype2, &p.cunit1, &p.cunit2}) text_or_null(*text);
    for (const auto* v : {&p.crpix1, &p.crpix2, &p.crval1, &p.crval2, &p.cd11, &p.cd12, &p.cd21, &p.cd22}) {
      s->bind(c++, *v);
    }
    text_or_null(p.coordsys);
    s->bind(c++, p.equinox);
    s->run();
    s->reset();
  }
}

}  // namespace pixserve::repo
