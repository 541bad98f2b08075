#include "votable/writer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <optional>
#include <stdexcept>
#include <utility>

namespace pixserve::votable {

using detail::Layout;
using detail::Shape;
using detail::TextMode;

namespace {

// VOTable 1.4 keeps the 1.3 namespace (IVOA note "XML Schema Versioning
// Policies"); only the schema location names 1.4.
constexpr std::string_view document_start =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\""
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
    " xsi:schemaLocation=\"http://www.ivoa.net/xml/VOTable/v1.3"
    " http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd\">\n";

// BINARY and BINARY2 encode every value big-endian. With N known at compile
// time the loop becomes one byte swap and one store.
template <std::size_t N>
void store_be(char* at, std::uint64_t bits) {
  for (std::size_t k = 0; k < N; ++k) at[k] = static_cast<char>((bits >> (8 * (N - 1 - k))) & 0xFF);
}

void store_be(char* at, std::uint64_t bits, std::size_t nbytes) {
  switch (nbytes) {
    case 1: return store_be<1>(at, bits);
    case 2: return store_be<2>(at, bits);
    case 4: return store_be<4>(at, bits);
    default: return store_be<8>(at, bits);
  }
}

using detail::RowBytes;

void put_be(RowBytes& b, std::uint64_t bits, std::size_t nbytes) { store_be(b.extend(nbytes), bits, nbytes); }

void put_real_be(RowBytes& b, Datatype t, double v) {
  if (t == Datatype::float_)
    store_be<4>(b.extend(4), std::bit_cast<std::uint32_t>(detail::to_float(v)));
  else
    store_be<8>(b.extend(8), std::bit_cast<std::uint64_t>(v));
}

// One numeric element; integers into a float column are converted.
void put_number_be(RowBytes& b, Datatype t, std::int64_t v) {
  if (detail::is_real(t))
    put_real_be(b, t, static_cast<double>(v));
  else
    put_be(b, static_cast<std::uint64_t>(v), element_size(t));
}

// What a null element occupies: NaN for floating point, the field's VALUES
// null for integers (BINARY), else zeros (BINARY2, where the null flag says
// it is null; readers that ignore the flags still see NaN for reals).
void put_null_be(RowBytes& b, Datatype t, std::optional<std::int64_t> null_int) {
  if (detail::is_real(t)) {
    put_real_be(b, t, std::numeric_limits<double>::quiet_NaN());
  } else if (null_int) {
    put_be(b, static_cast<std::uint64_t>(*null_int), element_size(t));
  } else {
    const std::size_t n = element_size(t);
    std::fill_n(b.extend(n), n, '\0');
  }
}

// The null value BINARY declares for an integer FIELD that has none.
std::int64_t default_binary_null(Datatype t) {
  switch (t) {
    case Datatype::unsignedByte: return 255;
    case Datatype::short_: return std::numeric_limits<std::int16_t>::min();
    case Datatype::int_: return std::numeric_limits<std::int32_t>::min();
    default: return std::numeric_limits<std::int64_t>::min();
  }
}

bool is_printable_ascii(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x20 && u < 0x80;
}

// char: ASCII bytes; unicodeChar: UCS-2 code units. Variable length: a 4-byte
// count of characters first; fixed length: padded with NULs.
void encode_string(RowBytes& b, const Layout& layout, const std::string* s) {
  const bool wide = layout.type == Datatype::unicodeChar;
  const std::size_t unit = wide ? 2 : 1;
  const std::size_t count_at = b.size();
  if (layout.shape == Shape::variable) b.extend(4);
  std::size_t chars = 0;
  if (s) {
    const detail::Charset cs = detail::charset_of(layout.type);
    const std::string_view text = *s;
    // Every character takes at least one input byte: this is the most that
    // can be written.
    const std::size_t most = std::min(text.size(), layout.max_chars());
    char* dst = b.room(most * unit);
    std::size_t i = 0, w = 0;
    while (chars < most && i < text.size()) {
      // Printable ASCII stands for itself in every charset: in char columns
      // a run of it is copied at once.
      if (!wide) {
        const std::size_t run_end = i + std::min(text.size() - i, most - chars);
        std::size_t j = i;
        while (j < run_end && is_printable_ascii(text[j])) ++j;
        std::copy_n(text.data() + i, j - i, dst + w);
        w += j - i;
        chars += j - i;
        i = j;
        if (i == run_end) continue;
      }
      char32_t cp = static_cast<unsigned char>(text[i]);
      if (is_printable_ascii(text[i])) {
        ++i;
      } else {
        const detail::Char c = detail::next_char(text, i, cs);
        cp = c.cp;
        i += c.len;
      }
      if (wide) {
        store_be<2>(dst + w, cp);
        w += 2;
      } else {
        dst[w++] = static_cast<char>(cp);
      }
      ++chars;
    }
    b.commit(w);
  }
  if (layout.shape == Shape::variable) {
    store_be<4>(b.data() + count_at, chars);
  } else {
    const std::size_t pad = (layout.count - chars) * unit;
    std::fill_n(b.extend(pad), pad, '\0');
  }
}

// One checked cell of a BINARY/BINARY2 row.
void encode_cell(RowBytes& b, const Layout& layout, const Field& field, const Value& v) {
  const Datatype t = layout.type;
  const std::optional<std::int64_t> null_int = field.values.null;
  if (layout.is_string()) return encode_string(b, layout, v.get_if<std::string>());
  if (t == Datatype::boolean) {
    const bool* x = v.get_if<bool>();
    *b.extend(1) = x ? (*x ? 'T' : 'F') : '?';
    return;
  }
  if (layout.shape == Shape::scalar) {
    if (const auto* d = v.get_if<double>())
      put_real_be(b, t, *d);
    else if (const auto* i = v.get_if<std::int64_t>())
      put_number_be(b, t, *i);
    else
      put_null_be(b, t, null_int);
    return;
  }
  const auto* reals = v.get_if<std::vector<double>>();
  const auto* ints = v.get_if<std::vector<std::int64_t>>();
  const std::size_t n = reals ? reals->size() : ints ? ints->size() : 0;
  if (layout.shape == Shape::variable) put_be(b, n, 4);
  if (reals) {
    if (t == Datatype::double_) {
      // The common array (DALI polygons): one reservation for all of it.
      char* at = b.extend(8 * n);
      for (std::size_t k = 0; k < n; ++k) store_be<8>(at + 8 * k, std::bit_cast<std::uint64_t>((*reals)[k]));
    } else {
      for (const double x : *reals) put_real_be(b, t, x);
    }
  }
  if (ints)
    for (const std::int64_t x : *ints) put_number_be(b, t, x);
  // Only a null has fewer elements than a fixed arraysize (check_value).
  if (layout.shape == Shape::fixed)
    for (std::size_t k = n; k < layout.count; ++k) put_null_be(b, t, null_int);
}

// In BINARY a real integer equal to its column's null value would be read
// back as null: refuse the row instead of changing the data.
void check_not_binary_null(const Field& field, const Value& v) {
  if (!field.values.null) return;
  const std::int64_t null = *field.values.null;
  const auto refuse = [&] {
    throw std::out_of_range(fmt::format(
        "votable: FIELD {} holds {}, the value that stands for null in its BINARY serialisation; "
        "use TABLEDATA or BINARY2 for this result",
        field.name, null));
  };
  if (const auto* i = v.get_if<std::int64_t>(); i && *i == null) refuse();
  if (const auto* a = v.get_if<std::vector<std::int64_t>>())
    for (const std::int64_t x : *a)
      if (x == null) refuse();
}

constexpr std::size_t base64_line = 76;
// A row larger than this does not keep its scratch buffer for the rest of the table.
constexpr std::size_t max_kept_row_bytes = 1 << 20;

}  // namespace

VotableWriter::VotableWriter(Sink sink, WriterOptions options)
    : out_(std::move(sink), options.buffer_size), options_(options) {}

void VotableWriter::misuse(std::string_view call) const {
  std::string_view where = "here";
  if (done_) {
    where = "after end_document()";
  } else {
    const Phase p = stack_.empty() ? Phase::head : stack_.back().phase;
    switch (current()) {
      case Element::none: where = "before begin_document()"; break;
      case Element::votable:
        where = p == Phase::head ? "in VOTABLE before any RESOURCE"
                : p == Phase::body ? "in VOTABLE after a RESOURCE"
                                   : "in VOTABLE after the closing INFOs";
        break;
      case Element::resource:
        where = p == Phase::head     ? "at the start of a RESOURCE"
                : p == Phase::params ? "in a RESOURCE after PARAM/GROUP (INFO may come only first or after a TABLE)"
                                     : "in a RESOURCE after a TABLE/RESOURCE";
        break;
      case Element::group: where = "in a GROUP"; break;
      case Element::table: where = "inside a TABLE"; break;
    }
  }
  throw std::logic_error(fmt::format("votable: {} is not allowed {}", call, where));
}

void VotableWriter::child_finished() {
  if (!stack_.empty()) phase() = Phase::body;
}

void VotableWriter::indent(std::size_t extra) {
  for (std::size_t k = 0; k < stack_.size() + extra; ++k) out_.put(' ');
}

void VotableWriter::attr(std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out_.put(' ');
  out_.put(name);
  out_.put("=\"");
  detail::put_text(out_, value, TextMode::xml_attribute);
  out_.put('"');
}

void VotableWriter::description(std::string_view text, std::size_t extra) {
  if (text.empty()) return;
  indent(extra);
  out_.put("<DESCRIPTION>");
  detail::put_text(out_, text, TextMode::xml_text);
  out_.put("</DESCRIPTION>\n");
}

void VotableWriter::field_element(std::string_view tag, const Field& f, const Layout& layout, const Value* value) {
  indent();
  out_.put('<');
  out_.put(tag);
  // name and datatype are required, and always non-empty here.
  out_.put(" name=\"");
  detail::put_text(out_, f.name, TextMode::xml_attribute);
  out_.put('"');
  attr("ID", f.id);
  attr("datatype", datatype_name(f.datatype));
  attr("arraysize", f.arraysize);
  attr("unit", f.unit);
  attr("ucd", f.ucd);
  attr("utype", f.utype);
  attr("xtype", f.xtype);
  attr("ref", f.ref);
  if (value) {
    // Required on PARAM; a null is the empty string.
    out_.put(" value=\"");
    detail::put_value_text(out_, layout, *value, TextMode::xml_attribute);
    out_.put('"');
  }
  if (f.description.empty() && f.values.empty()) {
    out_.put("/>\n");
    return;
  }
  out_.put(">\n");
  description(f.description, 1);
  values_element(f, layout);
  indent();
  out_.put("</");
  out_.put(tag);
  out_.put(">\n");
}

void VotableWriter::values_element(const Field& f, const Layout& layout) {
  if (f.values.empty()) return;
  indent(1);
  out_.put("<VALUES");
  if (f.values.null) attr("null", std::to_string(*f.values.null));
  if (f.values.min.is_null() && f.values.max.is_null() && f.values.options.empty()) {
    out_.put("/>\n");
    return;
  }
  out_.put(">\n");
  const auto bound = [&](std::string_view tag, const Value& v, std::string_view name) {
    indent(2);
    out_.put('<');
    out_.put(tag);
    out_.put(" value=\"");
    const bool repeat = layout.shape == Shape::fixed && detail::is_per_element_bound(layout, v);
    for (std::uint32_t k = 0; k < (repeat ? layout.count : 1); ++k) {
      if (k) out_.put(' ');
      detail::put_value_text(out_, layout, v, TextMode::xml_attribute);
    }
    out_.put('"');
    attr("name", name);
    out_.put("/>\n");
  };
  if (!f.values.min.is_null()) bound("MIN", f.values.min, {});
  if (!f.values.max.is_null()) bound("MAX", f.values.max, {});
  for (const Option& o : f.values.options) bound("OPTION", o.value, o.name);
  indent(1);
  out_.put("</VALUES>\n");
}

void VotableWriter::begin_document(std::string_view desc) {
  if (done_ || current() != Element::none) misuse("begin_document()");
  out_.put(document_start);
  stack_.push_back({Element::votable, Phase::head});
  description(desc);
}

void VotableWriter::end_document() {
  if (current() != Element::votable || phase() == Phase::head) misuse("end_document()");
  stack_.pop_back();
  done_ = true;
  out_.put("</VOTABLE>\n");
  out_.flush();
}

void VotableWriter::info(std::string_view name, std::string_view value, std::string_view text) {
  const Element e = current();
  if (e == Element::votable) {
    if (phase() == Phase::body) phase() = Phase::tail;
  } else if (e != Element::resource || phase() == Phase::params) {
    misuse("INFO");
  }
  indent();
  out_.put("<INFO name=\"");
  detail::put_text(out_, name, TextMode::xml_attribute);
  out_.put("\" value=\"");
  detail::put_text(out_, value, TextMode::xml_attribute);
  out_.put('"');
  if (text.empty()) {
    out_.put("/>\n");
  } else {
    out_.put('>');
    detail::put_text(out_, text, TextMode::xml_text);
    out_.put("</INFO>\n");
  }
}

void VotableWriter::param(const Param& p) {
  const Element e = current();
  const bool allowed = e == Element::group || (e == Element::votable && phase() == Phase::head) ||
                       (e == Element::resource && phase() != Phase::body);
  if (!allowed) misuse("PARAM");
  if (p.name.empty()) throw std::invalid_argument("votable: PARAM without a name");
  const Layout layout = detail::check_field(p);
  detail::check_value(p, layout, p.value);
  if (e == Element::resource) phase() = Phase::params;
  field_element("PARAM", p, layout, &p.value);
}

void VotableWriter::begin_group(const Group& g) {
  const Element e = current();
  const bool allowed = e == Element::group || (e == Element::votable && phase() == Phase::head) ||
                       (e == Element::resource && phase() != Phase::body);
  if (!allowed) misuse("GROUP");
  if (e == Element::resource) phase() = Phase::params;
  indent();
  out_.put("<GROUP");
  attr("name", g.name);
  attr("ID", g.id);
  attr("ref", g.ref);
  attr("ucd", g.ucd);
  attr("utype", g.utype);
  out_.put(">\n");
  stack_.push_back({Element::group, Phase::head});
  description(g.description);
}

void VotableWriter::end_group() {
  if (current() != Element::group) misuse("end_group()");
  stack_.pop_back();
  indent();
  out_.put("</GROUP>\n");
}

void VotableWriter::begin_resource(const Resource& r) {
  const Element e = current();
  if (!(e == Element::resource || (e == Element::votable && phase() != Phase::tail))) misuse("RESOURCE");
  indent();
  out_.put("<RESOURCE type=\"");
  out_.put(r.type == ResourceType::results ? "results" : "meta");
  out_.put('"');
  attr("name", r.name);
  attr("ID", r.id);
  attr("utype", r.utype);
  out_.put(">\n");
  stack_.push_back({Element::resource, Phase::head});
  description(r.description);
}

void VotableWriter::end_resource() {
  if (current() != Element::resource) misuse("end_resource()");
  stack_.pop_back();
  indent();
  out_.put("</RESOURCE>\n");
  child_finished();
}

void VotableWriter::begin_table(const Table& t) {
  if (current() != Element::resource) misuse("TABLE");
  if (t.fields.empty()) throw std::invalid_argument("votable: a TABLE needs at least one FIELD");
  // Everything is checked before the first byte so a bad table writes nothing.
  std::vector<Field> fields = t.fields;
  std::vector<Layout> layouts;
  layouts.reserve(fields.size());
  for (Field& f : fields) {
    if (f.name.empty()) throw std::invalid_argument("votable: FIELD without a name");
    layouts.push_back(detail::check_field(f));
    // BINARY has no null flags: an integer column says which value is null.
    if (options_.serialization == Serialization::binary && detail::is_integer(f.datatype) && !f.values.null)
      f.values.null = default_binary_null(f.datatype);
  }
  std::vector<Layout> param_layouts;
  for (const Param& p : t.params) {
    if (p.name.empty()) throw std::invalid_argument("votable: PARAM without a name");
    param_layouts.push_back(detail::check_field(p));
    detail::check_value(p, param_layouts.back(), p.value);
  }

  indent();
  out_.put("<TABLE");
  attr("name", t.name);
  attr("ID", t.id);
  attr("ucd", t.ucd);
  attr("utype", t.utype);
  out_.put(">\n");
  stack_.push_back({Element::table, Phase::head});
  description(t.description);
  for (std::size_t k = 0; k < t.params.size(); ++k) field_element("PARAM", t.params[k], param_layouts[k], &t.params[k].value);
  for (std::size_t k = 0; k < fields.size(); ++k) field_element("FIELD", fields[k], layouts[k], nullptr);
  indent();
  switch (options_.serialization) {
    case Serialization::tabledata: out_.put("<DATA><TABLEDATA>\n"); break;
    case Serialization::binary: out_.put("<DATA><BINARY><STREAM encoding=\"base64\">\n"); break;
    case Serialization::binary2: out_.put("<DATA><BINARY2><STREAM encoding=\"base64\">\n"); break;
  }

  fields_ = std::move(fields);
  layouts_ = std::move(layouts);
  rows_ = 0;
}

void VotableWriter::row(std::span<const Value> cells) {
  if (current() != Element::table) misuse("row()");
  if (cells.size() != fields_.size())
    throw std::invalid_argument(fmt::format("votable: row of {} cells for {} fields", cells.size(), fields_.size()));
  for (std::size_t k = 0; k < cells.size(); ++k) {
    detail::check_value(fields_[k], layouts_[k], cells[k]);
    if (options_.serialization == Serialization::binary) check_not_binary_null(fields_[k], cells[k]);
  }
  if (options_.serialization == Serialization::tabledata)
    tabledata_row(cells);
  else
    binary_row(cells);
  ++rows_;
}

void VotableWriter::tabledata_row(std::span<const Value> cells) {
  out_.put("<TR>");
  for (std::size_t k = 0; k < cells.size(); ++k) {
    if (cells[k].is_null()) {
      out_.put("<TD/>");  // VOTable 1.3+: an empty cell is null for every datatype
      continue;
    }
    out_.put("<TD>");
    detail::put_value_text(out_, layouts_[k], cells[k], TextMode::xml_text);
    out_.put("</TD>");
  }
  out_.put("</TR>\n");
}

void VotableWriter::binary_row(std::span<const Value> cells) {
  // BINARY2 row: a null-flag bitmap (first field = most significant bit of
  // the first byte), then every field, null or not, in its binary form.
  // BINARY row: just the fields, nulls in their in-band form.
  row_bytes_.clear();
  if (options_.serialization == Serialization::binary2) {
    const std::size_t nflags = (cells.size() + 7) / 8;
    char* flags = row_bytes_.extend(nflags);
    std::fill_n(flags, nflags, '\0');
    for (std::size_t k = 0; k < cells.size(); ++k)
      if (cells[k].is_null()) flags[k / 8] = static_cast<char>(flags[k / 8] | (0x80 >> (k % 8)));
  }
  for (std::size_t k = 0; k < cells.size(); ++k) encode_cell(row_bytes_, layouts_[k], fields_[k], cells[k]);
  base64_.write(row_bytes_.view(), out_);
  if (row_bytes_.capacity() > max_kept_row_bytes) row_bytes_.release();
}

void detail::RowBytes::grow(std::size_t n) {
  // Doubling keeps a table of growing rows at amortised constant cost.
  bytes_.resize(std::max(size_ + n, 2 * bytes_.size()));
}

void VotableWriter::end_table() {
  if (current() != Element::table) misuse("end_table()");
  if (options_.serialization == Serialization::tabledata) {
    indent();
    out_.put("</TABLEDATA></DATA>\n");
  } else {
    base64_.finish(out_);
    indent();
    out_.put(options_.serialization == Serialization::binary ? "</STREAM></BINARY></DATA>\n"
                                                             : "</STREAM></BINARY2></DATA>\n");
  }
  stack_.pop_back();
  indent();
  out_.put("</TABLE>\n");
  fields_.clear();
  layouts_.clear();
  row_bytes_.release();
  child_finished();
}

namespace {

constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The two characters of every 12-bit value: a 3-byte group is two lookups
// instead of four.
constexpr auto base64_pairs = [] {
  std::array<std::array<char, 2>, 4096> pairs{};
  for (std::size_t v = 0; v < pairs.size(); ++v) pairs[v] = {base64_alphabet[v >> 6], base64_alphabet[v & 63]};
  return pairs;
}();

// n (1 to 3) bytes as four characters, '=' standing for the missing ones.
void base64_quad(const unsigned char* in, std::size_t n, char* dst) {
  const std::uint32_t v =
      (std::uint32_t{in[0]} << 16) | (n > 1 ? std::uint32_t{in[1]} << 8 : 0u) | (n > 2 ? in[2] : 0u);
  dst[0] = base64_alphabet[(v >> 18) & 63];
  dst[1] = base64_alphabet[(v >> 12) & 63];
  dst[2] = n > 1 ? base64_alphabet[(v >> 6) & 63] : '=';
  dst[3] = n > 2 ? base64_alphabet[v & 63] : '=';
}

}  // namespace

void VotableWriter::Base64::encode(const unsigned char* in, std::size_t groups, OutputBuffer& out) {
  // Encoded in a stack buffer a line at a time, the inner loop free of the
  // line and buffer bookkeeping, then handed on in one put().
  char stage[1024];
  std::size_t used = 0;
  while (groups > 0) {
    const std::size_t stage_room = (sizeof stage - 1 - used) / 4;  // one byte kept for a line break
    if (stage_room == 0) {
      out.put(std::string_view(stage, used));
      used = 0;
      continue;
    }
    const std::size_t n = std::min({groups, (base64_line - column_) / 4, stage_room});
    for (std::size_t g = 0; g < n; ++g, in += 3, used += 4) {
      const std::uint32_t v = (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | in[2];
      std::copy_n(base64_pairs[v >> 12].data(), 2, stage + used);
      std::copy_n(base64_pairs[v & 0xFFF].data(), 2, stage + used + 2);
    }
    groups -= n;
    column_ += 4 * n;
    if (column_ == base64_line) {
      stage[used++] = '\n';
      column_ = 0;
    }
  }
  out.put(std::string_view(stage, used));
}

void VotableWriter::Base64::write(std::string_view bytes, OutputBuffer& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size();
  if (ncarry_ > 0) {
    // Complete the group the previous row left unfinished.
    while (ncarry_ < 3 && n > 0) {
      carry_[ncarry_++] = *p++;
      --n;
    }
    if (ncarry_ < 3) return;
    encode(carry_, 1, out);
    ncarry_ = 0;
  }
  encode(p, n / 3, out);
  p += n / 3 * 3;
  n %= 3;
  while (n > 0) {
    carry_[ncarry_++] = *p++;
    --n;
  }
}

void VotableWriter::Base64::finish(OutputBuffer& out) {
  if (ncarry_ > 0) {
    char q[4];
    base64_quad(carry_, ncarry_, q);
    out.put(std::string_view(q, 4));
    column_ += 4;
  }
  if (column_ > 0) out.put('\n');
  ncarry_ = 0;
  column_ = 0;
}

void write_error_document(Sink sink, std::string_view message) {
  VotableWriter w(std::move(sink));
  w.begin_document();
  w.begin_resource({.type = ResourceType::results});
  w.info("QUERY_STATUS", "ERROR", message);
  w.end_resource();
  w.end_document();
}

}  // namespace pixserve::votable
