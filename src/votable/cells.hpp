// Internal to src/votable: how one Field's values are checked and turned into
// text. Shared by the VOTable writer (TABLEDATA cells, PARAM/VALUES
// attributes) and the CSV/TSV writer so that every format prints a value the
// same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "votable/model.hpp"
#include "votable/output_buffer.hpp"

namespace pixserve::votable::detail {

inline bool is_integer(Datatype t) {
  return t == Datatype::unsignedByte || t == Datatype::short_ || t == Datatype::int_ || t == Datatype::long_;
}
inline bool is_real(Datatype t) { return t == Datatype::float_ || t == Datatype::double_; }

enum class Shape { scalar, fixed, variable };

// A Field's arraysize, parsed once when a table starts.
struct Layout {
  Datatype type = Datatype::char_;
  Shape shape = Shape::scalar;
  // fixed: the element count; variable: the upper bound, 0 for none.
  std::uint32_t count = 0;

  bool is_string() const { return type == Datatype::char_ || type == Datatype::unicodeChar; }
  // The most characters a string cell may carry; longer strings are cut.
  std::size_t max_chars() const {
    return count == 0 ? std::numeric_limits<std::size_t>::max() : std::size_t{count};
  }
};

// Throws std::invalid_argument for an arraysize this writer does not support
// (multidimensional, malformed, arrays of booleans).
Layout make_layout(const Field& field);

// Throws std::invalid_argument when the value's kind or array length does not
// fit the field, std::out_of_range when an integer does not fit the datatype.
// Null always fits. Called for a whole row before any of it is written, so a
// rejected row leaves the output untouched.
void check_value(const Field& field, const Layout& layout, const Value& value);
// Checks the arraysize and the VALUES of a FIELD or PARAM; returns the layout.
// MIN/MAX/OPTION values follow the rules of cell values, except that a
// numeric array field also takes a scalar: a bound on every element (e.g. the
// wavelength range of SODA's BAND interval).
Layout check_field(const Field& field);
// True for such a scalar bound of an array field. The writer repeats it to
// the arraysize of a fixed-size array, because astropy parses MIN/MAX as a
// value of the field's type and fails on a scalar for a double[2].
bool is_per_element_bound(const Layout& layout, const Value& value);

// How characters are restricted before escaping. Strings are UTF-8; bytes that
// are not valid UTF-8 and characters XML 1.0 forbids (controls other than
// tab/LF/CR, U+FFFE, U+FFFF) become U+FFFD, or '?' for ascii. VOTable 1.4 char
// is ASCII (astropy decodes BINARY2 char as ASCII), so other characters in
// char cells also become '?'; unicodeChar is UCS-2, so characters outside the
// BMP become U+FFFD. Applied identically in every serialisation.
enum class Charset { utf8, ucs2, ascii };

inline Charset charset_of(Datatype type) {
  return type == Datatype::char_ ? Charset::ascii : type == Datatype::unicodeChar ? Charset::ucs2 : Charset::utf8;
}

// One character of a string after sanitising.
struct Char {
  char32_t cp;          // the code point to write (a replacement if invalid)
  std::size_t len;      // input bytes consumed
  bool replaced;        // cp differs from the input
};
Char next_char(std::string_view s, std::size_t pos, Charset charset);

enum class TextMode {
  xml_text,       // element content
  xml_attribute,  // inside "..."; tab/LF/CR as character references so they survive
  csv,            // doubles quotes; the caller adds the surrounding quotes
  tsv,            // tab, LF and CR become spaces (the format cannot quote)
};

// Writes at most max_chars characters of s, sanitised and escaped.
void put_text(OutputBuffer& out, std::string_view s, TextMode mode, Charset charset = Charset::utf8,
              std::size_t max_chars = std::numeric_limits<std::size_t>::max());

// A CSV field: quoted (RFC 4180) when it holds a comma, quote, CR or LF, and
// when empty so that an empty string differs from a null.
void put_csv_string(OutputBuffer& out, std::string_view s, Charset charset = Charset::utf8,
                    std::size_t max_chars = std::numeric_limits<std::size_t>::max());

// Numbers in the text forms: integers in decimal; floating point as the
// shortest text that reads back to the same value, with NaN, +Inf, -Inf.
void put_int(OutputBuffer& out, std::int64_t v);
// double -> float without the undefined behaviour of converting values beyond
// float's range: those become +-Inf, as IEEE arithmetic would give.
float to_float(double v);
void put_real(OutputBuffer& out, double v, Datatype type);

// The text form of a checked value (nothing for null): a TABLEDATA cell, a
// PARAM value, a CSV/TSV cell. Arrays are space-separated numbers. Booleans
// are T/F in XML and true/false in CSV/TSV.
void put_value_text(OutputBuffer& out, const Layout& layout, const Value& value, TextMode mode);

}  // namespace pixserve::votable::detail
