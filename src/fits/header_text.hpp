// The text of FITS header values, shared by the header writer (fits.cpp),
// the card reader (cards.cpp) and the WCS records (wcs/).
#pragma once

#include <string>
#include <string_view>

namespace pixserve::fits {

// s without its leading and trailing blanks.
std::string trim_blanks(std::string_view s);

// Shortest text that reads back as exactly the same double, in a form FITS
// accepts as a real value (always a decimal point, upper-case exponent).
std::string format_double(double value);

}  // namespace pixserve::fits
