#include "votable/cells.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace pixserve::votable::detail {

namespace {

std::pair<std::int64_t, std::int64_t> int_range(Datatype t) {
  switch (t) {
    case Datatype::unsignedByte: return {0, 255};
    case Datatype::short_: return {std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int16_t>::max()};
    case Datatype::int_: return {std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()};
    default: return {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()};
  }
}

std::string describe(const Field& f) {
  return fmt::format("votable: field '{}' (datatype {}, arraysize \"{}\")", f.name, datatype_name(f.datatype),
                     f.arraysize);
}

[[noreturn]] void reject(const Field& f, std::string_view why) {
  throw std::invalid_argument(fmt::format("{}: {}", describe(f), why));
}

void check_int(const Field& f, std::int64_t v) {
  const auto [lo, hi] = int_range(f.datatype);
  if (v < lo || v > hi) throw std::out_of_range(fmt::format("{}: value {} out of range", describe(f), v));
}

void check_length(const Field& f, const Layout& layout, std::size_t n) {
  if (layout.shape == Shape::fixed && n != layout.count)
    reject(f, fmt::format("array of {} elements where {} are declared", n, layout.count));
  if (layout.shape == Shape::variable && layout.count != 0 && n > layout.count)
    reject(f, fmt::format("array of {} elements exceeds the bound {}", n, layout.count));
}

bool is_xml_char(char32_t cp) {
  return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) || (cp >= 0xE000 && cp <= 0xFFFD) ||
         (cp >= 0x10000 && cp <= 0x10FFFF);
}

// Bytes that leave the copying loop of put_text: controls, non-ASCII, and
// the characters the mode escapes.
constexpr bool needs_care(unsigned char c, TextMode mode) {
  if (c < 0x20 || c >= 0x80) return true;
  switch (mode) {
    case TextMode::xml_text: return c == '&' || c == '<' || c == '>';
    case TextMode::xml_attribute: return c == '&' || c == '<' || c == '>' || c == '"';
    case TextMode::csv: return c == '"';
    case TextMode::tsv: return false;
  }
  return true;
}

// needs_care as one table per mode: put_text asks it for every byte of every
// string cell, and a load beats the branches.
using ByteSet = std::array<bool, 256>;

constexpr ByteSet care_set(TextMode mode) {
  ByteSet set{};
  for (std::size_t c = 0; c < set.size(); ++c) set[c] = needs_care(static_cast<unsigned char>(c), mode);
  return set;
}

constexpr std::array<ByteSet, 4> kCareSets = {care_set(TextMode::xml_text), care_set(TextMode::xml_attribute),
                                               care_set(TextMode::csv), care_set(TextMode::tsv)};

const ByteSet& care_set_of(TextMode mode) { return kCareSets[static_cast<std::size_t>(mode)]; }

// RFC 4180: a field holding one of these is quoted.
constexpr bool needs_csv_quotes(unsigned char c) { return c == ',' || c == '"' || c == '\r' || c == '\n'; }

void put_utf8(OutputBuffer& out, char32_t cp) {
  char b[4];
  std::size_t n;
  if (cp < 0x80) {
    b[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    b[0] = static_cast<char>(0xC0 | (cp >> 6));
    b[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = static_cast<char>(0xE0 | (cp >> 12));
    b[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = static_cast<char>(0xF0 | (cp >> 18));
    b[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    b[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.put(std::string_view(b, n));
}

void put_escaped_char(OutputBuffer& out, char32_t cp, TextMode mode) {
  const bool xml = mode == TextMode::xml_text || mode == TextMode::xml_attribute;
  const bool attr = mode == TextMode::xml_attribute;
  if (xml) {
    switch (cp) {
      case '&': return out.put("&amp;");
      case '<': return out.put("&lt;");
      // '>' only matters in "]]>", but escaping it always is simpler than tracking that.
      case '>': return out.put("&gt;");
      // A literal CR would be turned into LF by any XML parser.
      case '\r': return out.put("&#13;");
      default: break;
    }
    if (attr) {
      // Attribute-value normalisation would turn literal tab/LF into spaces.
      switch (cp) {
        case '"': return out.put("&quot;");
        case '\t': return out.put("&#9;");
        case '\n': return out.put("&#10;");
        default: break;
      }
    }
  } else if (mode == TextMode::csv) {
    if (cp == '"') return out.put("\"\"");
  } else if (cp == '\t' || cp == '\n' || cp == '\r') {
    return out.put(' ');
  }
  put_utf8(out, cp);
}

}  // namespace

Layout make_layout(const Field& field) {
  Layout layout;
  layout.type = field.datatype;
  const std::string_view a = field.arraysize;
  if (a.empty()) {
    // A char without arraysize is one character: treat it as char[1].
    if (layout.is_string()) {
      layout.shape = Shape::fixed;
      layout.count = 1;
    }
    return layout;
  }
  if (a == "*") {
    layout.shape = Shape::variable;
  } else {
    const bool bounded = a.back() == '*';
    const std::string_view digits = bounded ? a.substr(0, a.size() - 1) : a;
    std::uint32_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || n == 0)
      reject(field, "arraysize must be empty, \"*\", \"n\" or \"n*\" (multidimensional arrays are not supported)");
    layout.shape = bounded ? Shape::variable : Shape::fixed;
    layout.count = n;
  }
  if (layout.type == Datatype::boolean) reject(field, "boolean arrays are not supported");
  return layout;
}

void check_value(const Field& f, const Layout& layout, const Value& value) {
  // Called for every cell: the alternatives are tested in the order of
  // their frequency in results, without a visitor's indirect call.
  const Datatype t = f.datatype;
  const bool scalar = layout.shape == Shape::scalar;
  if (value.is_null()) return;
  if (value.get_if<double>()) {
    if (!scalar || !is_real(t)) reject(f, "got a floating-point scalar");
  } else if (value.get_if<std::string>()) {
    if (!layout.is_string()) reject(f, "got a string");
  } else if (const auto* i = value.get_if<std::int64_t>()) {
    if (!scalar) reject(f, "got a scalar for an array field");
    if (is_integer(t))
      check_int(f, *i);
    else if (!is_real(t))
      reject(f, "got an integer");
  } else if (const auto* reals = value.get_if<std::vector<double>>()) {
    if (scalar || !is_real(t)) reject(f, "got a floating-point array");
    check_length(f, layout, reals->size());
  } else if (value.get_if<bool>()) {
    if (t != Datatype::boolean) reject(f, "got a boolean");
  } else if (const auto* ints = value.get_if<std::vector<std::int64_t>>()) {
    if (scalar || !is_integer(t)) reject(f, "got an integer array");
    check_length(f, layout, ints->size());
    for (const std::int64_t x : *ints) check_int(f, x);
  }
}

bool is_per_element_bound(const Layout& layout, const Value& value) {
  return layout.shape != Shape::scalar && !layout.is_string() &&
         (value.get_if<std::int64_t>() != nullptr || value.get_if<double>() != nullptr);
}

Layout check_field(const Field& f) {
  const Layout layout = make_layout(f);
  const auto check_bound = [&](const Value& v) {
    check_value(f, is_per_element_bound(layout, v) ? Layout{layout.type, Shape::scalar, 0} : layout, v);
  };
  check_bound(f.values.min);
  check_bound(f.values.max);
  for (const Option& o : f.values.options) check_bound(o.value);
  if (f.values.null) {
    if (!is_integer(f.datatype)) reject(f, "VALUES null is for integer fields (other types have their own null)");
    check_int(f, *f.values.null);
  }
  return layout;
}

Char next_char(std::string_view s, std::size_t pos, Charset charset) {
  const auto byte = [&](std::size_t k) -> unsigned {
    return pos + k < s.size() ? static_cast<unsigned char>(s[pos + k]) : 0u;
  };
  const auto cont = [&](std::size_t k) { return (byte(k) & 0xC0) == 0x80; };
  const unsigned b0 = byte(0);
  char32_t cp = 0;
  std::size_t len = 0;  // 0: not valid UTF-8
  if (b0 < 0x80) {
    cp = b0;
    len = 1;
  } else if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (cont(1)) {
      cp = ((b0 & 0x1F) << 6) | (byte(1) & 0x3F);
      len = 2;
    }
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    // Excludes overlong forms (E0 80..9F) and UTF-16 surrogates (ED A0..BF).
    const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
    if (byte(1) >= lo && byte(1) <= hi && cont(2)) {
      cp = ((b0 & 0x0F) << 12) | ((byte(1) & 0x3F) << 6) | (byte(2) & 0x3F);
      len = 3;
    }
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (byte(1) >= lo && byte(1) <= hi && cont(2) && cont(3)) {
      cp = ((b0 & 0x07) << 18) | ((byte(1) & 0x3F) << 12) | ((byte(2) & 0x3F) << 6) | (byte(3) & 0x3F);
      len = 4;
    }
  }
  bool ok = len != 0 && is_xml_char(cp);
  if (ok && charset == Charset::ascii && cp >= 0x80) ok = false;
  if (ok && charset == Charset::ucs2 && cp > 0xFFFF) ok = false;
  if (ok) return {cp, len, false};
  // An invalid byte is replaced on its own so that the next one is read afresh.
  return {charset == Charset::ascii ? U'?' : U'\uFFFD', len == 0 ? 1 : len, true};
}

void put_text(OutputBuffer& out, std::string_view s, TextMode mode, Charset charset, std::size_t max_chars) {
  const ByteSet& care = care_set_of(mode);
  std::size_t i = 0, chars = 0;
  while (i < s.size() && chars < max_chars) {
    // Plain ASCII is copied in runs (a byte is a character there): the
    // common case for catalogue strings.
    const std::size_t run_end = i + std::min(s.size() - i, max_chars - chars);
    std::size_t j = i;
    while (j < run_end && !care[static_cast<unsigned char>(s[j])]) ++j;
    out.put(s.substr(i, j - i));
    chars += j - i;
    i = j;
    if (i == run_end) continue;  // the end of s or of max_chars: the loop ends
    const Char c = next_char(s, i, charset);
    put_escaped_char(out, c.cp, mode);
    i += c.len;
    ++chars;
  }
}

void put_csv_string(OutputBuffer& out, std::string_view s, Charset charset, std::size_t max_chars) {
  const auto special = [](char c) { return needs_csv_quotes(static_cast<unsigned char>(c)); };
  const bool quote = s.empty() || std::any_of(s.begin(), s.end(), special);
  if (quote) out.put('"');
  put_text(out, s, TextMode::csv, charset, max_chars);
  if (quote) out.put('"');
}

void put_int(OutputBuffer& out, std::int64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.put(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

float to_float(double v) {
  if (std::isnan(v)) return std::numeric_limits<float>::quiet_NaN();
  if (std::fabs(v) > std::numeric_limits<float>::max())
    return v > 0 ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
  return static_cast<float>(v);
}

void put_real(OutputBuffer& out, double v, Datatype type) {
  if (std::isnan(v)) return out.put("NaN");
  if (std::isinf(v)) return out.put(v > 0 ? "+Inf" : "-Inf");
  // fmt's "{}" is the shortest text that reads back exactly (Dragonbox). The
  // compiled form is the same formatting without parsing "{}" for each of
  // millions of cells. It never exceeds 24 characters (sign, 17 digits,
  // point, "e-308"), so the buffer cannot overflow.
  char buf[32];
  char* end = nullptr;
  if (type == Datatype::float_) {
    const float f = to_float(v);
    if (std::isinf(f)) return out.put(f > 0 ? "+Inf" : "-Inf");
    end = fmt::format_to(buf, FMT_COMPILE("{}"), f);
  } else {
    end = fmt::format_to(buf, FMT_COMPILE("{}"), v);
  }
  out.put(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

void put_value_text(OutputBuffer& out, const Layout& layout, const Value& value, TextMode mode) {
  // Called for every cell: the alternatives are tested in the order of
  // their frequency in results, without a visitor's indirect call.
  if (const auto* d = value.get_if<double>()) {
    put_real(out, *d, layout.type);
  } else if (const auto* s = value.get_if<std::string>()) {
    const Charset cs = charset_of(layout.type);
    if (mode == TextMode::csv)
      put_csv_string(out, *s, cs, layout.max_chars());
    else
      put_text(out, *s, mode, cs, layout.max_chars());
  } else if (const auto* i = value.get_if<std::int64_t>()) {
    if (is_real(layout.type))
      put_real(out, static_cast<double>(*i), layout.type);
    else
      put_int(out, *i);
  } else if (const auto* reals = value.get_if<std::vector<double>>()) {
    for (std::size_t k = 0; k < reals->size(); ++k) {
      if (k) out.put(' ');
      put_real(out, (*reals)[k], layout.type);
    }
  } else if (const auto* b = value.get_if<bool>()) {
    const bool xml = mode == TextMode::xml_text || mode == TextMode::xml_attribute;
    out.put(xml ? (*b ? "T" : "F") : (*b ? "true" : "false"));
  } else if (const auto* ints = value.get_if<std::vector<std::int64_t>>()) {
    for (std::size_t k = 0; k < ints->size(); ++k) {
      if (k) out.put(' ');
      put_int(out, (*ints)[k]);
    }
  }
}

}  // namespace pixserve::votable::detail
