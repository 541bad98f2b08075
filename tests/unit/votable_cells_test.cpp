// The pieces under the writers (cells.hpp, output_buffer.hpp): numbers in
// their text form (edge cases, and the shortest exact form on random bit
// patterns), escaping and sanitising against a plain per-character
// reference, CSV quoting, the output buffer's chunks, refilling a row's text
// cells in place, and the BINARY2 string and base64 encoding read back.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "votable/cells.hpp"
#include "votable/output_buffer.hpp"
#include "votable/reader.hpp"
#include "votable/writer.hpp"

namespace pixserve::votable {
namespace {

// What one formatting call writes.
template <class Write>
std::string output_of(Write&& write, std::size_t capacity = 64) {
  std::string out;
  OutputBuffer buffer([&out](std::string_view chunk) { out.append(chunk); }, capacity);
  write(buffer);
  buffer.flush();
  return out;
}

std::string real_text(double v, Datatype type = Datatype::double_) {
  return output_of([&](OutputBuffer& b) { detail::put_real(b, v, type); });
}

std::string int_text(std::int64_t v) {
  return output_of([&](OutputBuffer& b) { detail::put_int(b, v); });
}

// ---------------------------------------------------------------- numbers

TEST(VotableCellNumbers, DoubleEdgeCases) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  const std::vector<std::pair<double, std::string>> cases = {
      {std::nan(""), "NaN"},
      {-std::nan(""), "NaN"},
      {inf, "+Inf"},
      {-inf, "-Inf"},
      {0.0, "0"},
      {-0.0, "-0"},
      {1e300, "1e+300"},
      {-1e300, "-1e+300"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {std::numeric_limits<double>::min(), "2.2250738585072014e-308"},        // smallest normal
      {std::nextafter(std::numeric_limits<double>::min(), 0.0), "2.225073858507201e-308"},  // largest denormal
      {std::numeric_limits<double>::denorm_min(), "5e-324"},
      {1e-320, "1e-320"},
      // Integers near 2^53 and 2^63 as doubles.
      {9007199254740992.0, "9007199254740992"},
      {9223372036854775807.0, "9.223372036854776e+18"},
      {-9223372036854775808.0, "-9.223372036854776e+18"},
      // The switch between fixed and exponent notation: 1e-4 .. 1e16.
      {1e15, "1000000000000000"},
      {1e16, "1e+16"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {100.0, "100"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3.0, "0.3333333333333333"},
      {60000.001, "60000.001"},
      {552e-9, "5.52e-07"},
  };
  for (const auto& [v, text] : cases) EXPECT_EQ(real_text(v), text) << fmt::format("{:.17g}", v);
}

TEST(VotableCellNumbers, FloatEdgeCases) {
  const std::vector<std::pair<double, std::string>> cases = {
      {std::numeric_limits<float>::max(), "3.4028235e+38"},
      {std::numeric_limits<float>::min(), "1.1754944e-38"},
      {std::numeric_limits<float>::denorm_min(), "1e-45"},
      {1e-46, "0"},     // below float's range: rounds to zero
      {1e39, "+Inf"},   // beyond float's range: infinite, as IEEE conversion gives
      {-1e39, "-Inf"},
      {-0.0, "-0"},
      {0.1, "0.1"},
      {16777217.0, "16777216"},
      {1e15, "1000000000000000"},
      {1e16, "1e+16"},
      {std::nan(""), "NaN"},
  };
  for (const auto& [v, text] : cases) EXPECT_EQ(real_text(v, Datatype::float_), text) << fmt::format("{:.17g}", v);
}

TEST(VotableCellNumbers, IntegersAtTheirLimits) {
  EXPECT_EQ(int_text(0), "0");
  EXPECT_EQ(int_text(-1), "-1");
  EXPECT_EQ(int_text(std::numeric_limits<std::int64_t>::max()), "9223372036854775807");
  EXPECT_EQ(int_text(std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(int_text(std::numeric_limits<std::int64_t>::max() - 1023), "9223372036854774784");
  // An integer in a double column is written as that double.
  const detail::Layout real{Datatype::double_, detail::Shape::scalar, 0};
  const Value big(std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(output_of([&](OutputBuffer& b) { detail::put_value_text(b, real, big, detail::TextMode::xml_text); }),
            "9.223372036854776e+18");
}

// The number of significant digits of a formatted real ("-1.25e-07" has 3).
int significant_digits(std::string_view text) {
  const std::string_view mantissa = text.substr(0, text.find('e'));
  std::string digits;
  for (const char c : mantissa)
    if (c >= '0' && c <= '9') digits += c;
  const auto first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 1;
  const auto last = digits.find_last_not_of('0');
  // Trailing zeros of an integer written in full are not significant.
  return static_cast<int>(last - first + 1);
}

// On random bit patterns: every finite double and float reads back exactly,
// no text with one significant digit fewer would, and the text is fmt's
// "{}" (the format the writers have always used).
TEST(VotableCellNumbers, RandomRealsAreShortestAndExact) {
  std::mt19937_64 rng(20240607);
  for (int k = 0; k < 200'000; ++k) {
    const double d = std::bit_cast<double>(rng());
    const auto f = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isfinite(d)) {
      const std::string text = real_text(d);
      ASSERT_EQ(text, fmt::format("{}", d));
      ASSERT_EQ(std::bit_cast<std::uint64_t>(std::strtod(text.c_str(), nullptr)), std::bit_cast<std::uint64_t>(d))
          << text;
      if (k % 10 == 0) {
        const int n = significant_digits(text);
        if (n > 1) {
          const std::string shorter = fmt::format("{:.{}e}", d, n - 2);
          EXPECT_NE(std::strtod(shorter.c_str(), nullptr), d) << text << " vs " << shorter;
        }
      }
    }
    if (std::isfinite(f)) {
      const std::string text = real_text(static_cast<double>(f), Datatype::float_);
      ASSERT_EQ(text, fmt::format("{}", f));
      ASSERT_EQ(std::bit_cast<std::uint32_t>(std::strtof(text.c_str(), nullptr)), std::bit_cast<std::uint32_t>(f))
          << text;
    }
  }
}

// ---------------------------------------------------------------- text

// The sanitising and escaping rules of cells.hpp, one character at a time:
// the reference the copying fast paths must agree with.
void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string reference_text(std::string_view s, detail::TextMode mode, detail::Charset charset, std::size_t max_chars) {
  using detail::TextMode;
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size() && chars < max_chars; ++chars) {
    const detail::Char c = detail::next_char(s, i, charset);
    i += c.len;
    const char32_t cp = c.cp;
    const bool xml = mode == TextMode::xml_text || mode == TextMode::xml_attribute;
    if (xml && cp == '&') out += "&amp;";
    else if (xml && cp == '<') out += "&lt;";
    else if (xml && cp == '>') out += "&gt;";
    else if (xml && cp == '\r') out += "&#13;";
    else if (mode == TextMode::xml_attribute && cp == '"') out += "&quot;";
    else if (mode == TextMode::xml_attribute && cp == '\t') out += "&#9;";
    else if (mode == TextMode::xml_attribute && cp == '\n') out += "&#10;";
    else if (mode == TextMode::csv && cp == '"') out += "\"\"";
    else if (mode == TextMode::tsv && (cp == '\t' || cp == '\n' || cp == '\r')) out += ' ';
    else append_utf8(out, cp);
  }
  return out;
}

const std::vector<std::string>& text_pieces() {
  static const std::vector<std::string> kPieces = {
      "plain", "a longer run of plain ASCII text, long enough to cross a small buffer", " ", "&", "<", ">", "\"",
      "'", ",", "\t", "\n", "\r", std::string(1, '\0'), "\x01", "\x1f", "\x7f",
      "\xc3\xa9",          // é
      "\xe2\x82\xac",      // €
      "\xf0\x9f\x98\x80",  // U+1F600, outside the BMP
      "\xef\xbf\xbe",      // U+FFFE, not an XML character
      "\xed\xa0\x80",      // a UTF-16 surrogate
      "\xc0\xaf",          // an overlong '/'
      "\xff", "\x80", "\xe2\x82",  // a cut sequence
      "]]>"};
  return kPieces;
}

std::string random_text(std::mt19937_64& rng) {
  std::string s;
  const auto& pieces = text_pieces();
  for (std::size_t n = rng() % 8; n > 0; --n) s += pieces[rng() % pieces.size()];
  return s;
}

TEST(VotableCellText, EscapingMatchesTheReference) {
  using detail::TextMode;
  std::mt19937_64 rng(7);
  const TextMode modes[] = {TextMode::xml_text, TextMode::xml_attribute, TextMode::csv, TextMode::tsv};
  const detail::Charset charsets[] = {detail::Charset::utf8, detail::Charset::ucs2, detail::Charset::ascii};
  const std::size_t limits[] = {0, 1, 2, 3, 5, 8, 40, std::numeric_limits<std::size_t>::max()};
  for (int k = 0; k < 1500; ++k) {
    const std::string s = random_text(rng);
    for (const TextMode mode : modes) {
      for (const detail::Charset cs : charsets) {
        for (const std::size_t max_chars : limits) {
          // A 16-byte buffer also makes the runs cross chunk boundaries.
          const std::string got =
              output_of([&](OutputBuffer& b) { detail::put_text(b, s, mode, cs, max_chars); }, 16);
          ASSERT_EQ(got, reference_text(s, mode, cs, max_chars))
              << "mode " << static_cast<int>(mode) << " charset " << static_cast<int>(cs) << " max " << max_chars;
        }
      }
    }
  }
}

// TABLEDATA cells of strings with control characters and invalid UTF-8.
TEST(VotableCellText, ControlsAndInvalidUtf8InTabledata) {
  const std::string u_fffd = "\xef\xbf\xbd";
  const auto cell = [](Datatype type, std::string_view s) {
    const detail::Layout layout{type, detail::Shape::variable, 0};
    return output_of(
        [&](OutputBuffer& b) { detail::put_value_text(b, layout, Value(s), detail::TextMode::xml_text); });
  };
  EXPECT_EQ(cell(Datatype::char_, "a\x01" "b\x1f" "c"), "a?b?c");
  EXPECT_EQ(cell(Datatype::unicodeChar, "a\x01" "b"), "a" + u_fffd + "b");
  EXPECT_EQ(cell(Datatype::char_, std::string("nul\0here", 8)), "nul?here");
  EXPECT_EQ(cell(Datatype::char_, "tab\tlf\ncr\r"), "tab\tlf\ncr&#13;");
  EXPECT_EQ(cell(Datatype::unicodeChar, "\xff"), u_fffd);
  EXPECT_EQ(cell(Datatype::unicodeChar, "\xc0\xaf"), u_fffd + u_fffd);           // overlong: each byte replaced
  EXPECT_EQ(cell(Datatype::unicodeChar, "ab\xe2\x82"), "ab" + u_fffd + u_fffd);  // cut at the end
  EXPECT_EQ(cell(Datatype::unicodeChar, "\xed\xa0\x80"), u_fffd + u_fffd + u_fffd);  // surrogate
  EXPECT_EQ(cell(Datatype::unicodeChar, "\xef\xbf\xbe"), u_fffd);              // U+FFFE
  EXPECT_EQ(cell(Datatype::unicodeChar, "\xf0\x9f\x98\x80"), u_fffd);          // outside UCS-2
  EXPECT_EQ(cell(Datatype::char_, "caf\xc3\xa9 <&>"), "caf? &lt;&amp;&gt;");
}

TEST(VotableCellText, CsvQuoting) {
  const auto csv = [](std::string_view s, std::size_t max_chars = std::numeric_limits<std::size_t>::max()) {
    return output_of([&](OutputBuffer& b) { detail::put_csv_string(b, s, detail::Charset::utf8, max_chars); });
  };
  EXPECT_EQ(csv("plain"), "plain");
  EXPECT_EQ(csv(""), "\"\"");  // differs from a null, which is an empty field
  EXPECT_EQ(csv("a,b"), "\"a,b\"");
  EXPECT_EQ(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv("cr\r"), "\"cr\r\"");
  // Quoting is decided on the whole value, also when it is cut.
  EXPECT_EQ(csv("ab,c", 2), "\"ab\"");
}

// ---------------------------------------------------------------- buffer

TEST(VotableOutputBuffer, ChunksStayWithinTheCapacity) {
  std::vector<std::string> chunks;
  OutputBuffer b([&](std::string_view c) { chunks.emplace_back(c); }, 8);
  b.put("abc");
  b.put(std::string_view());  // empty, without data: nothing
  b.put('d');
  b.put("0123456789abcdefghij");  // longer than the capacity
  b.put("vwxyz");
  b.flush();
  std::string all;
  for (const auto& c : chunks) {
    EXPECT_LE(c.size(), 8u);
    EXPECT_FALSE(c.empty());
    all += c;
  }
  EXPECT_EQ(all, "abcd0123456789abcdefghijvwxyz");
  EXPECT_EQ(b.bytes_written(), all.size());
  EXPECT_LE(b.max_buffered(), 8u);
  EXPECT_EQ(b.max_buffered(), 8u);
}

TEST(VotableOutputBuffer, FlushesWhatItHoldsOnly) {
  std::vector<std::string> chunks;
  OutputBuffer b([&](std::string_view c) { chunks.emplace_back(c); }, 8);
  b.flush();  // nothing held: nothing sent
  EXPECT_TRUE(chunks.empty());
  b.put("123456");
  b.put("789");  // one byte past the capacity: a full chunk goes first
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0], "12345678");
  b.flush();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1], "9");
  EXPECT_EQ(b.bytes_written(), 9u);
  EXPECT_EQ(b.max_buffered(), 8u);
}

// ---------------------------------------------------------------- values

TEST(VotableCellValues, MakeTextKeepsTheStorage) {
  Value v(std::string(100, 'x'));
  const char* storage = v.get_if<std::string>()->data();
  std::string& s = v.make_text();
  EXPECT_TRUE(s.empty());
  s.assign("short");
  EXPECT_EQ(v, Value("short"));
  EXPECT_EQ(v.get_if<std::string>()->data(), storage);  // no new allocation

  Value null;
  null.make_text().assign("was null");
  EXPECT_EQ(null, Value("was null"));
  Value number(2.5);
  number.make_text();
  EXPECT_EQ(number, Value(""));
}

// ---------------------------------------------------------------- BINARY2

std::string write_document(Serialization ser, const std::vector<Field>& fields,
                           const std::vector<std::vector<Value>>& rows) {
  std::string out;
  VotableWriter w([&out](std::string_view c) { out.append(c); }, {.serialization = ser, .buffer_size = 1000});
  w.begin_document();
  w.begin_resource({});
  w.begin_table({.name = "t", .fields = fields});
  for (const auto& r : rows) w.row(r);
  w.end_table();
  w.end_resource();
  w.end_document();
  return out;
}

Field text_field(std::string name, Datatype type, std::string arraysize) {
  Field f;
  f.name = std::move(name);
  f.datatype = type;
  f.arraysize = std::move(arraysize);
  return f;
}

// The text BINARY2 carries for a string: sanitised like TABLEDATA, not
// escaped.
std::string sanitised(std::string_view s, Datatype type, std::size_t max_chars) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size() && chars < max_chars; ++chars) {
    const detail::Char c = detail::next_char(s, i, detail::charset_of(type));
    i += c.len;
    append_utf8(out, c.cp);
  }
  return out;
}

// Rows of every length (so that each row leaves 0, 1 or 2 bytes for the
// next base64 group) with sanitised and cut strings read back from BINARY2,
// whose base64 lines are 76 characters.
TEST(VotableBinary2, StringsAndBase64AcrossRows) {
  const std::vector<Field> fields = {
      text_field("c", Datatype::char_, "*"),  text_field("u", Datatype::unicodeChar, "*"),
      text_field("c5", Datatype::char_, "5"), text_field("u3", Datatype::unicodeChar, "3*"),
      text_field("d", Datatype::double_, "")};
  const std::size_t unbounded = std::numeric_limits<std::size_t>::max();
  const std::size_t max_chars[] = {unbounded, unbounded, 5, 3};
  std::mt19937_64 rng(11);
  std::vector<std::vector<Value>> rows;
  for (int k = 0; k < 600; ++k) {
    // Cells default to null; some are left so.
    std::vector<Value> row(fields.size());
    for (int c = 0; c < 4; ++c)
      if (k % 9 != c) row[static_cast<std::size_t>(c)] = random_text(rng);
    if (k % 5 != 0) row[4] = static_cast<double>(k) / 7.0;
    rows.push_back(std::move(row));
  }
  const std::string doc = write_document(Serialization::binary2, fields, rows);

  const std::string_view open = "<STREAM encoding=\"base64\">\n";
  const auto start = doc.find(open) + open.size();
  std::string_view stream(doc.data() + start, doc.find("</STREAM>") - start);
  stream.remove_suffix(stream.size() - stream.find_last_not_of(' ') - 1);  // the closing tag's indentation
  ASSERT_EQ(stream.back(), '\n');
  std::vector<std::size_t> lines;
  for (std::size_t at = 0; at < stream.size();) {
    const auto nl = stream.find('\n', at);
    lines.push_back(nl - at);
    at = nl + 1;
  }
  ASSERT_GT(lines.size(), 2u);
  for (std::size_t k = 0; k + 1 < lines.size(); ++k) EXPECT_EQ(lines[k], 76u) << "line " << k;
  EXPECT_LE(lines.back(), 76u);
  EXPECT_EQ(lines.back() % 4, 0u);

  ReadLimits limits;
  limits.max_bytes = 64u << 20;
  const ReadTable back = read_votable(doc, limits);
  ASSERT_EQ(back.rows.size(), rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < 4; ++c) {
      const auto* in = rows[r][c].get_if<std::string>();
      const auto* out = back.rows[r][c].get_if<std::string>();
      // An empty string may read back as null.
      EXPECT_EQ(out ? *out : "", in ? sanitised(*in, fields[c].datatype, max_chars[c]) : "")
          << "row " << r << " column " << c;
    }
    EXPECT_EQ(back.rows[r][4], rows[r][4]) << "row " << r;
  }
}

}  // namespace
}  // namespace pixserve::votable
