#include "image/mask.hpp"

#include <string>

namespace pixserve::image {

void write_mask_keywords(fits::File& file) {
  for (const auto& info : kMaskPlanes) {
    // MP_DETECTED_NEGATIVE is longer than 8 characters: cfitsio writes it as
    // a HIERARCH card, which astropy and cfitsio read back by the same name.
    file.write_int("MP_" + std::string(info.name), static_cast<int>(info.plane), info.description);
  }
}

std::optional<int> read_mask_bit(fits::File& file, std::string_view name) {
  const auto v = file.read_int("MP_" + std::string(name));
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

}  // namespace pixserve::image
