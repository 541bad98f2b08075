#include "votable/cells.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>
#include <variant>

namespace pixserve::votable::detail {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

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

// Bytes that leave the fast path of put_text: controls, non-ASCII, and the
// characters the mode escapes.
bool needs_care(unsigned char c, TextMode mode) {
  if (c < 0x20 || c >= 0x80) return true;
  switch (mode) {
    case TextMode::xml_text: return c == '&' || c == '<' || c == '>';
    case TextMode::xml_attribute: return c == '&' || c == '<' || c == '>' || c == '"';
    case TextMode::csv: return c == '"';
    case TextMode::tsv: return false;
  }
  return true;
}

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
  const Datatype t = f.datatype;
  const bool scalar = layout.shape == Shape::scalar;
  std::visit(Overloaded{
                 [](const std::monostate&) {},
                 [&](bool) {
                   if (t != Datatype::boolean) reject(f, "got a boolean");
                 },
                 [&](std::int64_t v) {
                   if (!scalar) reject(f, "got a scalar for an array field");
                   if (is_integer(t))
                     check_int(f, v);
                   else if (!is_real(t))
                     reject(f, "got an integer");
                 },
                 [&](double) {
                   if (!scalar || !is_real(t)) reject(f, "got a floating-point scalar");
                 },
                 [&](const std::string&) {
                   if (!layout.is_string()) reject(f, "got a string");
                 },
                 [&](const std::vector<double>& v) {
                   if (scalar || !is_real(t)) reject(f, "got a floating-point array");
                   check_length(f, layout, v.size());
                 },
                 [&](const std::vector<std::int64_t>& v) {
                   if (scalar || !is_integer(t)) reject(f, "got an integer array");
                   check_length(f, layout, v.size());
                   for (const std::int64_t x : v) check_int(f, x);
                 },
             },
             value.storage());
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
  std::size_t i = 0, run = 0, chars = 0;
  while (i < s.size() && chars < max_chars) {
    // Plain ASCII is copied in runs: the common case for catalogue strings.
    if (!needs_care(static_cast<unsigned char>(s[i]), mode)) {
      ++i;
      ++chars;
      continue;
    }
    out.put(s.substr(run, i - run));
    const Char c = next_char(s, i, charset);
    put_escaped_char(out, c.cp, mode);
    i += c.len;
    ++chars;
    run = i;
  }
  out.put(s.substr(run, i - run));
}

void put_csv_string(OutputBuffer& out, std::string_view s, Charset charset, std::size_t max_chars) {
  const bool quote = s.empty() || s.find_first_of(",\"\r\n") != std::string_view::npos;
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
  char buf[40];
  // fmt's "{}" is the shortest representation that reads back exactly.
  fmt::format_to_n_result<char*> r;
  if (type == Datatype::float_) {
    const float f = to_float(v);
    if (std::isinf(f)) return out.put(f > 0 ? "+Inf" : "-Inf");
    r = fmt::format_to_n(buf, sizeof buf, "{}", f);
  } else {
    r = fmt::format_to_n(buf, sizeof buf, "{}", v);
  }
  out.put(std::string_view(buf, r.size));
}

void put_value_text(OutputBuffer& out, const Layout& layout, const Value& value, TextMode mode) {
  const bool xml = mode == TextMode::xml_text || mode == TextMode::xml_attribute;
  const bool real = is_real(layout.type);
  std::visit(Overloaded{
                 [](const std::monostate&) {},
                 [&](bool b) { out.put(xml ? (b ? "T" : "F") : (b ? "true" : "false")); },
                 [&](std::int64_t v) {
                   if (real)
                     put_real(out, static_cast<double>(v), layout.type);
                   else
                     put_int(out, v);
                 },
                 [&](double v) { put_real(out, v, layout.type); },
                 [&](const std::string& s) {
                   const Charset cs = charset_of(layout.type);
                   if (mode == TextMode::csv)
                     put_csv_string(out, s, cs, layout.max_chars());
                   else
                     put_text(out, s, mode, cs, layout.max_chars());
                 },
                 [&](const std::vector<double>& v) {
                   for (std::size_t k = 0; k < v.size(); ++k) {
                     if (k) out.put(' ');
                     put_real(out, v[k], layout.type);
                   }
                 },
                 [&](const std::vector<std::int64_t>& v) {
                   for (std::size_t k = 0; k < v.size(); ++k) {
                     if (k) out.put(' ');
                     put_int(out, v[k]);
                   }
                 },
             },
             value.storage());
}

}  // namespace pixserve::votable::detail
