// FITS image sections, the "[x1:x2,y1:y2]" strings of DATASEC, BIASSEC,
// DETSEC and DETSIZE: 1-based, inclusive, and an axis written backwards
// (x1 > x2) means the pixels run in the opposite direction, which is how
// amplifier readout flips are encoded.
#pragma once

#include <string>
#include <string_view>

#include "fits/fits.hpp"

namespace pixserve::image {

struct Section {
  long x1 = 1, x2 = 1, y1 = 1, y2 = 1;  // as written: 1-based, inclusive

  long width() const noexcept { return (x1 <= x2 ? x2 - x1 : x1 - x2) + 1; }
  long height() const noexcept { return (y1 <= y2 ? y2 - y1 : y1 - y2) + 1; }
  bool x_reversed() const noexcept { return x1 > x2; }
  bool y_reversed() const noexcept { return y1 > y2; }

  // The 0-based image column of the i-th pixel along x, counting from x1
  // towards x2 (so i = 0 is x1 even for a reversed axis); likewise rows.
  long column(long i) const noexcept { return x1 <= x2 ? x1 - 1 + i : x1 - 1 - i; }
  long row(long j) const noexcept { return y1 <= y2 ? y1 - 1 + j : y1 - 1 - j; }

  // The pixels covered, whatever the direction: 0-based, half-open.
  fits::PixelBox box() const noexcept;
  // "[x1:x2,y1:y2]"
  std::string str() const;

  friend bool operator==(const Section&, const Section&) = default;
};

// Parses "[x1:x2,y1:y2]" (blanks allowed around numbers). Throws
// std::invalid_argument naming the text for anything else, including zero or
// negative indices.
Section parse_section(std::string_view text);

// The section of a 0-based box, optionally written with reversed axes.
Section section_of(const fits::PixelBox& box, bool x_reversed = false, bool y_reversed = false);

}  // namespace pixserve::image
