#include "votable/reader.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <array>
#include <cctype>
#include <optional>

#include <fmt/format.h>
#include <pugixml.hpp>

namespace pixserve::votable {
namespace {

std::string_view local_name(const char* name) {
  std::string_view n(name);
  const auto colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

pugi::xml_node child(pugi::xml_node parent, std::string_view name) {
  for (auto c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && local_name(c.name()) == name) return c;
  }
  return {};
}

// The first TABLE in document order, searched without recursion.
pugi::xml_node find_table(pugi::xml_node root) {
  std::vector<pugi::xml_node> stack{root};
  std::size_t visited = 0;
  while (!stack.empty()) {
    const auto node = stack.back();
    stack.pop_back();
    if (++visited > 1'000'000) throw ReadError("VOTable: too many elements");
    if (node.type() == pugi::node_element && local_name(node.name()) == "TABLE") return node;
    // Children in reverse so that the first child is visited first.
    std::vector<pugi::xml_node> children;
    for (auto c = node.first_child(); c; c = c.next_sibling()) {
      if (c.type() == pugi::node_element || c.type() == pugi::node_document) children.push_back(c);
    }
    for (auto it = children.rbegin(); it != children.rend(); ++it) stack.push_back(*it);
  }
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

struct ArrayExtent {
  bool scalar = true;
  bool variable = false;
  std::size_t fixed = 1;  // elements of a fixed array (product of the fixed dimensions)
};

ArrayExtent parse_arraysize(std::string_view text, std::string_view field) {
  ArrayExtent s;
  text = trim(text);
  if (text.empty()) return s;
  s.scalar = false;
  s.fixed = 1;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('x', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view dim = text.substr(start, end - start);
    const bool last = end == text.size();
    if (!dim.empty() && dim.back() == '*') {
      if (!last) throw ReadError(fmt::format("FIELD {}: bad arraysize '{}'", field, text));
      s.variable = true;
      dim.remove_suffix(1);
      if (dim.empty()) break;
      // n*: at most n; the bound is not needed to read the data.
    } else {
      std::size_t n = 0;
      const auto r = std::from_chars(dim.data(), dim.data() + dim.size(), n);
      if (dim.empty() || r.ec != std::errc{} || r.ptr != dim.data() + dim.size() || n == 0 || n > 1'000'000) {
        throw ReadError(fmt::format("FIELD {}: bad arraysize '{}'", field, text));
      }
      if (!last || !s.variable) s.fixed *= n;
      if (s.fixed > 1'000'000) throw ReadError(fmt::format("FIELD {}: arraysize '{}' is too large", field, text));
    }
    if (last) break;
    start = end + 1;
  }
  if (s.variable) {
    // A variable last dimension: fixed holds the product of the others.
  }
  return s;
}

struct Column {
  Field field;
  ArrayExtent shape;
  std::optional<std::int64_t> null_int;
  std::optional<std::string> null_text;
  bool is_string() const { return field.datatype == Datatype::char_ || field.datatype == Datatype::unicodeChar; }
  bool is_integer() const {
    return field.datatype == Datatype::short_ || field.datatype == Datatype::int_ || field.datatype == Datatype::long_ ||
           field.datatype == Datatype::unsignedByte;
  }
  bool is_float() const { return field.datatype == Datatype::float_ || field.datatype == Datatype::double_; }
};

std::optional<std::int64_t> parse_int(std::string_view t) {
  t = trim(t);
  if (t.empty()) return std::nullopt;
  bool negative = false;
  if (t.front() == '+' || t.front() == '-') {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  int base = 10;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) {
    base = 16;
    t.remove_prefix(2);
  }
  std::uint64_t v = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v, base);
  if (t.empty() || r.ec != std::errc{} || r.ptr != t.data() + t.size()) return std::nullopt;
  if (base == 16 && !negative) return static_cast<std::int64_t>(v);  // two's complement as written
  if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + (negative ? 1u : 0u)) return std::nullopt;
  return negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
}

std::optional<double> parse_double(std::string_view t) {
  t = trim(t);
  if (t.empty()) return std::nullopt;
  if (t == "NaN" || t == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (t == "+Inf" || t == "Inf" || t == "inf" || t == "+inf" || t == "Infinity") return std::numeric_limits<double>::infinity();
  if (t == "-Inf" || t == "-inf" || t == "-Infinity") return -std::numeric_limits<double>::infinity();
  if (t.front() == '+') t.remove_prefix(1);
  double v = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc{} || r.ptr != t.data() + t.size()) return std::nullopt;
  return v;
}

[[noreturn]] void bad_cell(const Column& c, std::size_t row, std::string_view text) {
  std::string shown(text.substr(0, 40));
  for (auto& ch : shown) {
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
  }
  throw ReadError(fmt::format("row {}, column {}: '{}' is not a valid {}", row + 1, c.field.name, shown,
                              datatype_name(c.field.datatype)));
}

Value cell_from_text(const Column& c, std::string_view raw, std::size_t row, const ReadLimits& limits) {
  if (raw.size() > limits.max_array * 4 + 64) {
    throw ReadError(fmt::format("row {}, column {}: the cell is too large", row + 1, c.field.name));
  }
  if (c.is_string()) {
    if (raw.empty()) return {};
    if (c.null_text && raw == *c.null_text) return {};
    return Value(std::string(raw));
  }
  const std::string_view t = trim(raw);
  if (t.empty()) return {};
  if (c.field.datatype == Datatype::boolean && c.shape.scalar) {
    if (t == "T" || t == "t" || t == "true" || t == "TRUE" || t == "1") return Value(true);
    if (t == "F" || t == "f" || t == "false" || t == "FALSE" || t == "0") return Value(false);
    if (t == "?" || t == " ") return {};
    bad_cell(c, row, t);
  }
  if (c.shape.scalar) {
    if (c.is_integer()) {
      const auto v = parse_int(t);
      if (!v) bad_cell(c, row, t);
      if (c.null_int && *v == *c.null_int) return {};
      return Value(*v);
    }
    const auto v = parse_double(t);
    if (!v) bad_cell(c, row, t);
    if (std::isnan(*v)) return {};
    return Value(*v);
  }
  // A numeric (or boolean) array: blank-separated values.
  std::vector<double> doubles;
  std::vector<std::int64_t> ints;
  std::size_t pos = 0;
  while (pos < t.size()) {
    while (pos < t.size() && std::isspace(static_cast<unsigned char>(t[pos]))) ++pos;
    std::size_t end = pos;
    while (end < t.size() && !std::isspace(static_cast<unsigned char>(t[end]))) ++end;
    if (end == pos) break;
    const std::string_view item = t.substr(pos, end - pos);
    if (doubles.size() + ints.size() >= limits.max_array) {
      throw ReadError(fmt::format("row {}, column {}: the array is too large", row + 1, c.field.name));
    }
    if (c.is_integer()) {
      const auto v = parse_int(item);
      if (!v) bad_cell(c, row, item);
      ints.push_back(*v);
    } else if (c.field.datatype == Datatype::boolean) {
      ints.push_back(item == "T" || item == "t" || item == "1" || item == "true" ? 1 : 0);
    } else {
      const auto v = parse_double(item);
      if (!v) bad_cell(c, row, item);
      doubles.push_back(*v);
    }
    pos = end;
  }
  if (c.is_float()) return Value(std::move(doubles));
  return Value(std::move(ints));
}

// ---------------------------------------------------------------- binary

std::string base64_decode(std::string_view text, std::uint64_t max_bytes) {
  static constexpr auto kTable = [] {
    std::array<signed char, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<signed char>(i);
    return t;
  }();
  std::string out;
  out.reserve(std::min<std::uint64_t>(text.size() / 4 * 3, max_bytes));
  std::uint32_t acc = 0;
  int bits = 0;
  bool padding = false;
  for (const char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (std::isspace(u)) continue;
    if (ch == '=') {
      padding = true;
      continue;
    }
    if (padding) throw ReadError("VOTable STREAM: base64 data after padding");
    const int v = kTable[u];
    if (v < 0) throw ReadError("VOTable STREAM: invalid base64 character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
      if (out.size() > max_bytes) throw ReadError("VOTable STREAM: the decoded data are too large");
    }
  }
  return out;
}

class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }
  std::string_view take(std::size_t n) {
    if (n > data_.size() - pos_) throw ReadError("VOTable binary stream: truncated row");
    const auto out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  std::uint64_t be(std::size_t n) {
    const auto bytes = take(n);
    std::uint64_t v = 0;
    for (const char b : bytes) v = (v << 8) | static_cast<unsigned char>(b);
    return v;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

std::int64_t sign_extend(std::uint64_t v, std::size_t bytes) {
  if (bytes == 8) return static_cast<std::int64_t>(v);
  const std::uint64_t sign = std::uint64_t{1} << (bytes * 8 - 1);
  return static_cast<std::int64_t>((v ^ sign) - sign);
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

Value binary_cell(const Column& c, ByteReader& in, std::size_t row, const ReadLimits& limits) {
  std::size_t n = c.shape.scalar ? 1 : c.shape.fixed;
  if (c.shape.variable) {
    const std::uint64_t count = in.be(4);
    if (count > limits.max_array) throw ReadError(fmt::format("row {}, column {}: the array is too large", row + 1, c.field.name));
    n = static_cast<std::size_t>(count);
  }
  const std::size_t size = element_size(c.field.datatype);
  const std::string_view bytes = in.take(n * size);
  ByteReader r(bytes);
  if (c.field.datatype == Datatype::char_) {
    std::string s(bytes);
    if (const auto nul = s.find('\0'); nul != std::string::npos) s.resize(nul);
    if (c.shape.scalar && s.empty()) return {};
    if (c.null_text && s == *c.null_text) return {};
    return Value(std::move(s));
  }
  if (c.field.datatype == Datatype::unicodeChar) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      const auto cp = static_cast<std::uint32_t>(r.be(2));
      if (cp == 0) break;
      append_utf8(s, cp);
    }
    if (c.shape.scalar && s.empty()) return {};
    return Value(std::move(s));
  }
  const auto read_one = [&](Value& scalar_out, std::vector<double>& doubles, std::vector<std::int64_t>& ints) {
    switch (c.field.datatype) {
      case Datatype::boolean: {
        const char b = static_cast<char>(r.be(1));
        if (c.shape.scalar) {
          if (b == 'T' || b == 't' || b == '1') scalar_out = Value(true);
          else if (b == 'F' || b == 'f' || b == '0') scalar_out = Value(false);
          else scalar_out = Value();
        } else {
          ints.push_back(b == 'T' || b == 't' || b == '1' ? 1 : 0);
        }
        return;
      }
      case Datatype::unsignedByte:
      case Datatype::short_:
      case Datatype::int_:
      case Datatype::long_: {
        const std::uint64_t raw = r.be(size);
        const std::int64_t v = c.field.datatype == Datatype::unsignedByte ? static_cast<std::int64_t>(raw)
                                                                          : sign_extend(raw, size);
        if (c.shape.scalar) {
          scalar_out = c.null_int && v == *c.null_int ? Value() : Value(v);
        } else {
          ints.push_back(v);
        }
        return;
      }
      case Datatype::float_: {
        const auto bits = static_cast<std::uint32_t>(r.be(4));
        float f = 0;
        std::memcpy(&f, &bits, 4);
        if (c.shape.scalar) {
          scalar_out = std::isnan(f) ? Value() : Value(static_cast<double>(f));
        } else {
          doubles.push_back(static_cast<double>(f));
        }
        return;
      }
      case Datatype::double_: {
        const std::uint64_t bits = r.be(8);
        double d = 0;
        std::memcpy(&d, &bits, 8);
        if (c.shape.scalar) {
          scalar_out = std::isnan(d) ? Value() : Value(d);
        } else {
          doubles.push_back(d);
        }
        return;
      }
      case Datatype::char_:
      case Datatype::unicodeChar: return;
    }
  };
  Value scalar;
  std::vector<double> doubles;
  std::vector<std::int64_t> ints;
  for (std::size_t i = 0; i < n; ++i) read_one(scalar, doubles, ints);
  if (c.shape.scalar) return scalar;
  if (c.is_float()) return Value(std::move(doubles));
  return Value(std::move(ints));
}

}  // namespace

ReadTable read_votable(std::string_view document, const ReadLimits& limits) {
  if (document.size() > limits.max_bytes) {
    throw ReadError(fmt::format("the VOTable is larger than the limit of {} bytes", limits.max_bytes));
  }
  pugi::xml_document doc;
  // parse_doctype keeps a DOCTYPE as a node so that it can be refused;
  // pugixml never resolves external entities either way.
  const auto parsed = doc.load_buffer(document.data(), document.size(), pugi::parse_default | pugi::parse_doctype);
  if (!parsed) {
    throw ReadError(fmt::format("the VOTable is not well-formed XML: {} at byte {}", parsed.description(), parsed.offset));
  }
  for (auto n = doc.first_child(); n; n = n.next_sibling()) {
    if (n.type() == pugi::node_doctype) throw ReadError("VOTable documents with a DOCTYPE are not accepted");
  }
  const auto root = doc.document_element();
  if (!root || local_name(root.name()) != "VOTABLE") throw ReadError("the document is not a VOTable (no VOTABLE root element)");
  const auto table = find_table(root);
  if (!table) throw ReadError("the VOTable has no TABLE");

  ReadTable out;
  out.name = table.attribute("name").value();
  std::vector<Column> columns;
  for (auto f = table.first_child(); f; f = f.next_sibling()) {
    if (f.type() != pugi::node_element || local_name(f.name()) != "FIELD") continue;
    if (columns.size() >= limits.max_columns) {
      throw ReadError(fmt::format("the VOTable has more than {} columns", limits.max_columns));
    }
    Column c;
    c.field.name = f.attribute("name").value();
    if (c.field.name.empty()) c.field.name = f.attribute("ID").value();
    if (c.field.name.empty()) throw ReadError(fmt::format("FIELD {} has no name", columns.size() + 1));
    const std::string_view dt = f.attribute("datatype").value();
    const auto datatype = parse_datatype(dt);
    if (!datatype) {
      throw ReadError(fmt::format("FIELD {}: datatype '{}' is not supported", c.field.name, std::string(dt.substr(0, 40))));
    }
    c.field.datatype = *datatype;
    c.field.arraysize = f.attribute("arraysize").value();
    c.field.unit = f.attribute("unit").value();
    c.field.ucd = f.attribute("ucd").value();
    c.field.utype = f.attribute("utype").value();
    c.field.xtype = f.attribute("xtype").value();
    if (const auto d = child(f, "DESCRIPTION")) c.field.description = std::string(trim(d.child_value()));
    c.shape = parse_arraysize(c.field.arraysize, c.field.name);
    // A char field without arraysize is one character.
    if (const auto values = child(f, "VALUES")) {
      if (const auto null = values.attribute("null")) {
        if (c.is_string()) {
          c.null_text = null.value();
        } else if (c.is_integer()) {
          c.null_int = parse_int(null.value());
        }
      }
    }
    columns.push_back(std::move(c));
  }
  if (columns.empty()) throw ReadError("the VOTable TABLE has no FIELD");
  for (const auto& c : columns) out.fields.push_back(c.field);

  const auto data = child(table, "DATA");
  if (!data) return out;  // no rows
  const auto add_row = [&](std::vector<Value> row) {
    if (out.rows.size() >= limits.max_rows) {
      throw ReadError(fmt::format("the VOTable has more than {} rows", limits.max_rows));
    }
    out.rows.push_back(std::move(row));
  };

  if (const auto td = child(data, "TABLEDATA")) {
    for (auto tr = td.first_child(); tr; tr = tr.next_sibling()) {
      if (tr.type() != pugi::node_element) continue;
      if (local_name(tr.name()) != "TR") throw ReadError("TABLEDATA may only contain TR elements");
      std::vector<Value> row;
      row.reserve(columns.size());
      for (auto cell = tr.first_child(); cell; cell = cell.next_sibling()) {
        if (cell.type() != pugi::node_element) continue;
        if (local_name(cell.name()) != "TD") throw ReadError("TR may only contain TD elements");
        if (row.size() >= columns.size()) {
          throw ReadError(fmt::format("row {} has more cells than the {} FIELDs", out.rows.size() + 1, columns.size()));
        }
        row.push_back(cell_from_text(columns[row.size()], cell.child_value(), out.rows.size(), limits));
      }
      if (row.size() != columns.size()) {
        throw ReadError(fmt::format("row {} has {} cells, not {}", out.rows.size() + 1, row.size(), columns.size()));
      }
      add_row(std::move(row));
    }
    return out;
  }

  pugi::xml_node binary = child(data, "BINARY2");
  const bool binary2 = static_cast<bool>(binary);
  if (!binary) binary = child(data, "BINARY");
  if (!binary) {
    if (child(data, "FITS")) throw ReadError("VOTable FITS serialisation is not supported; use TABLEDATA or BINARY2");
    throw ReadError("VOTable DATA has no TABLEDATA, BINARY or BINARY2");
  }
  const auto stream = child(binary, "STREAM");
  if (!stream) throw ReadError("VOTable BINARY without STREAM");
  if (stream.attribute("href")) throw ReadError("remote VOTable streams (STREAM href) are not accepted");
  const std::string_view encoding = stream.attribute("encoding").value();
  if (encoding != "base64") throw ReadError("VOTable STREAM encoding must be base64");
  const std::string bytes = base64_decode(stream.child_value(), limits.max_bytes);
  ByteReader in(bytes);
  const std::size_t mask_bytes = (columns.size() + 7) / 8;
  while (!in.done()) {
    std::string_view mask;
    if (binary2) mask = in.take(mask_bytes);
    std::vector<Value> row;
    row.reserve(columns.size());
    for (std::size_t i = 0; i < columns.size(); ++i) {
      Value v = binary_cell(columns[i], in, out.rows.size(), limits);
      if (binary2 && (static_cast<unsigned char>(mask[i / 8]) & (0x80u >> (i % 8)))) v = Value();
      row.push_back(std::move(v));
    }
    add_row(std::move(row));
  }
  return out;
}

}  // namespace pixserve::votable
