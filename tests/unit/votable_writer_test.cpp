// VOTable (TABLEDATA, BINARY2) and CSV/TSV writers: escaping, nulls, every
// datatype decoded back from BINARY2 here, streaming with bounded memory,
// element-order checks. The Samples test also leaves documents in
// PIXSERVE_TEST_TMP for validation with `stilts votlint` and astropy.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "votable/reader.hpp"
#include "votable/text_table.hpp"
#include "votable/writer.hpp"

namespace pixserve::votable {
namespace {

// ---------------------------------------------------------------- helpers

struct Capture {
  std::string text;
  std::vector<std::size_t> chunks;
  Sink sink() {
    return [this](std::string_view c) {
      text.append(c);
      chunks.push_back(c.size());
    };
  }
};

std::string between(const std::string& s, std::string_view open, std::string_view close) {
  const auto a = s.find(open);
  if (a == std::string::npos) return {};
  const auto b = s.find(close, a + open.size());
  if (b == std::string::npos) return {};
  return s.substr(a + open.size(), b - a - open.size());
}

// The TD contents of a TABLEDATA document, "<null>" for <TD/>.
std::vector<std::string> cells_of(const std::string& doc) {
  std::vector<std::string> out;
  const std::string data = between(doc, "<TABLEDATA>", "</TABLEDATA>");
  for (std::size_t pos = 0;;) {
    const auto a = data.find("<TD", pos);
    if (a == std::string::npos) break;
    if (data.compare(a, 5, "<TD/>") == 0) {
      out.emplace_back("<null>");
      pos = a + 5;
      continue;
    }
    const auto b = data.find("</TD>", a);
    out.push_back(data.substr(a + 4, b - a - 4));
    pos = b + 5;
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

std::vector<unsigned char> base64_decode(std::string_view text) {
  std::vector<unsigned char> out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' || c == '\n' || c == ' ' || c == '\r' || c == '\t') continue;  // whitespace is allowed
    else throw std::runtime_error("bad base64 character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<unsigned char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// An independent BINARY2 reader: the writer's output decoded by the standard's
// rules, not by the writer's own code.
class Binary2Reader {
 public:
  explicit Binary2Reader(std::vector<unsigned char> bytes) : b_(std::move(bytes)) {}
  bool at_end() const { return pos_ == b_.size(); }
  std::uint64_t be(std::size_t n) {
    if (pos_ + n > b_.size()) throw std::runtime_error("BINARY2 stream ends inside a row");
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < n; ++k) v = (v << 8) | b_[pos_++];
    return v;
  }

  std::vector<std::vector<Value>> rows(const std::vector<Field>& fields) {
    std::vector<std::vector<Value>> out;
    while (!at_end()) {
      std::vector<bool> null(fields.size());
      const std::size_t nflag = (fields.size() + 7) / 8;
      for (std::size_t k = 0; k < nflag; ++k) {
        const auto byte = be(1);
        for (std::size_t bit = 0; bit < 8; ++bit) {
          const std::size_t i = k * 8 + bit;
          const bool set = byte & (0x80u >> bit);
          if (i < fields.size()) null[i] = set;
          else EXPECT_FALSE(set) << "padding bit set";
        }
      }
      std::vector<Value> row;
      for (std::size_t i = 0; i < fields.size(); ++i) {
        Value v = cell(fields[i]);
        row.push_back(null[i] ? Value() : v);
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  Value scalar(Datatype t) {
    switch (t) {
      case Datatype::boolean: {
        const auto c = static_cast<char>(be(1));
        return c == 'T' ? Value(true) : c == 'F' ? Value(false) : Value();
      }
      case Datatype::unsignedByte: return Value(static_cast<std::int64_t>(be(1)));
      case Datatype::short_: return Value(static_cast<std::int16_t>(be(2)));
      case Datatype::int_: return Value(static_cast<std::int32_t>(be(4)));
      case Datatype::long_: return Value(static_cast<std::int64_t>(be(8)));
      case Datatype::float_: return Value(std::bit_cast<float>(static_cast<std::uint32_t>(be(4))));
      case Datatype::double_: return Value(std::bit_cast<double>(be(8)));
      default: throw std::runtime_error("not a scalar type");
    }
  }

  Value cell(const Field& f) {
    const bool str = f.datatype == Datatype::char_ || f.datatype == Datatype::unicodeChar;
    std::size_t n = 1;
    bool variable = false, scalar_cell = f.arraysize.empty() && !str;
    if (!f.arraysize.empty() && f.arraysize.back() == '*') {
      variable = true;
    } else if (!f.arraysize.empty()) {
      n = std::stoul(f.arraysize);
    }
    if (variable) n = be(4);
    if (str) {
      std::string s;
      for (std::size_t k = 0; k < n; ++k) {
        const auto u = static_cast<char32_t>(be(f.datatype == Datatype::unicodeChar ? 2 : 1));
        if (u < 0x80) s.push_back(static_cast<char>(u));
        else if (u < 0x800) s += {static_cast<char>(0xC0 | (u >> 6)), static_cast<char>(0x80 | (u & 0x3F))};
        else s += {static_cast<char>(0xE0 | (u >> 12)), static_cast<char>(0x80 | ((u >> 6) & 0x3F)), static_cast<char>(0x80 | (u & 0x3F))};
      }
      if (!variable) s = s.substr(0, s.find('\0'));  // fixed strings are NUL-padded
      return Value(s);
    }
    if (scalar_cell) return scalar(f.datatype);
    const bool real = f.datatype == Datatype::float_ || f.datatype == Datatype::double_;
    std::vector<double> reals;
    std::vector<std::int64_t> ints;
    for (std::size_t k = 0; k < n; ++k) {
      const Value e = scalar(f.datatype);
      if (real) reals.push_back(*e.get_if<double>());
      else ints.push_back(*e.get_if<std::int64_t>());
    }
    return real ? Value(reals) : Value(ints);
  }

  std::vector<unsigned char> b_;
  std::size_t pos_ = 0;
};

// Value equality where NaN equals NaN (bitwise for doubles).
bool same(const Value& a, const Value& b) {
  if (a.storage().index() != b.storage().index()) return false;
  if (const auto* x = a.get_if<double>()) return std::bit_cast<std::uint64_t>(*x) == std::bit_cast<std::uint64_t>(*b.get_if<double>()) || (std::isnan(*x) && std::isnan(*b.get_if<double>()));
  if (const auto* x = a.get_if<std::vector<double>>()) {
    const auto& y = *b.get_if<std::vector<double>>();
    if (x->size() != y.size()) return false;
    for (std::size_t k = 0; k < x->size(); ++k)
      if (!((*x)[k] == y[k] || (std::isnan((*x)[k]) && std::isnan(y[k])))) return false;
    return true;
  }
  return a == b;
}

std::string show(const Value& v) {
  struct V {
    std::string operator()(std::monostate) const { return "null"; }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(double d) const { return std::to_string(d); }
    std::string operator()(const std::string& s) const { return "\"" + s + "\""; }
    std::string operator()(const std::vector<double>& a) const {
      std::string s = "[";
      for (double d : a) s += std::to_string(d) + " ";
      return s + "]";
    }
    std::string operator()(const std::vector<std::int64_t>& a) const {
      std::string s = "[";
      for (auto d : a) s += std::to_string(d) + " ";
      return s + "]";
    }
  };
  return std::visit(V{}, v.storage());
}

Field field(std::string name, Datatype t, std::string arraysize = "", std::string xtype = "") {
  Field f;
  f.name = std::move(name);
  f.datatype = t;
  f.arraysize = std::move(arraysize);
  f.xtype = std::move(xtype);
  return f;
}

// One field of every supported datatype and shape (17 fields: a 3-byte bitmap).
std::vector<Field> every_kind() {
  return {
      field("b", Datatype::boolean),
      field("ub", Datatype::unsignedByte),
      field("s", Datatype::short_),
      field("i", Datatype::int_),
      field("l", Datatype::long_),
      field("f", Datatype::float_),
      field("d", Datatype::double_),
      field("c1", Datatype::char_),
      field("cvar", Datatype::char_, "*"),
      field("c5", Datatype::char_, "5"),
      field("uvar", Datatype::unicodeChar, "*"),
      field("u3", Datatype::unicodeChar, "3"),
      field("poly", Datatype::double_, "*", "polygon"),
      field("circle", Datatype::double_, "3", "circle"),
      field("ivar", Datatype::int_, "*"),
      field("l2", Datatype::long_, "2"),
      field("f4b", Datatype::float_, "4*"),
  };
}

std::string write_table(Serialization ser, const std::vector<Field>& fields, const std::vector<std::vector<Value>>& rows) {
  Capture cap;
  VotableWriter w(cap.sink(), {.serialization = ser});
  w.begin_document();
  w.begin_resource({.type = ResourceType::results});
  w.begin_table({.name = "t", .fields = fields});
  for (const auto& r : rows) w.row(r);
  w.end_table();
  w.end_resource();
  w.end_document();
  return cap.text;
}

std::vector<std::vector<Value>> read_binary2(const std::string& doc, const std::vector<Field>& fields) {
  Binary2Reader r(base64_decode(between(doc, "<STREAM encoding=\"base64\">", "</STREAM>")));
  return r.rows(fields);
}

// ---------------------------------------------------------------- document structure

TEST(VotableWriter, TabledataDocumentShape) {
  Capture cap;
  VotableWriter w(cap.sink());
  w.begin_document();
  w.begin_resource({.type = ResourceType::results});
  w.info("QUERY_STATUS", "OK");
  Field ra = field("ra", Datatype::double_);
  ra.unit = "deg";
  ra.ucd = "pos.eq.ra;meta.main";
  Field id = field("obs_id", Datatype::char_, "*");
  id.description = "Observation ID";
  w.begin_table({.name = "result", .fields = {ra, id}});
  w.row({10.5, "v1"});
  w.row({Value(), "v2"});
  w.end_table();
  w.info("QUERY_STATUS", "OVERFLOW");
  w.end_resource();
  w.end_document();
  EXPECT_EQ(cap.text,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\" "
            "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
            "xsi:schemaLocation=\"http://www.ivoa.net/xml/VOTable/v1.3 http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd\">\n"
            " <RESOURCE type=\"results\">\n"
            "  <INFO name=\"QUERY_STATUS\" value=\"OK\"/>\n"
            "  <TABLE name=\"result\">\n"
            "   <FIELD name=\"ra\" datatype=\"double\" unit=\"deg\" ucd=\"pos.eq.ra;meta.main\"/>\n"
            "   <FIELD name=\"obs_id\" datatype=\"char\" arraysize=\"*\">\n"
            "    <DESCRIPTION>Observation ID</DESCRIPTION>\n"
            "   </FIELD>\n"
            "   <DATA><TABLEDATA>\n"
            "<TR><TD>10.5</TD><TD>v1</TD></TR>\n"
            "<TR><TD/><TD>v2</TD></TR>\n"
            "   </TABLEDATA></DATA>\n"
            "  </TABLE>\n"
            "  <INFO name=\"QUERY_STATUS\" value=\"OVERFLOW\"/>\n"
            " </RESOURCE>\n"
            "</VOTABLE>\n");
  EXPECT_EQ(w.rows_written(), 2u);
  EXPECT_EQ(w.bytes_written(), cap.text.size());
}

TEST(VotableWriter, ErrorDocument) {
  Capture cap;
  write_error_document(cap.sink(), "Bad POS: \"circle 1 2\" <not> & valid");
  EXPECT_NE(cap.text.find(" <RESOURCE type=\"results\">\n"
                          "  <INFO name=\"QUERY_STATUS\" value=\"ERROR\">Bad POS: \"circle 1 2\" &lt;not&gt; &amp; valid</INFO>\n"
                          " </RESOURCE>\n"
                          "</VOTABLE>\n"),
            std::string::npos)
      << cap.text;
}

// A DataLink {links} response with a SODA service descriptor.
std::string service_descriptor_document(Serialization ser) {
  Capture cap;
  VotableWriter w(cap.sink(), {.serialization = ser});
  w.begin_document();
  w.begin_resource({.type = ResourceType::results});
  w.info("QUERY_STATUS", "OK");
  Field id = field("ID", Datatype::char_, "*");
  id.ucd = "meta.id;meta.main";
  Field url = field("access_url", Datatype::char_, "*");
  url.ucd = "meta.ref.url";
  Field sdef = field("service_def", Datatype::char_, "*");
  sdef.ucd = "meta.ref";
  Field err = field("error_message", Datatype::char_, "*");
  err.ucd = "meta.code.error";
  Field sem = field("semantics", Datatype::char_, "*");
  sem.ucd = "meta.code";
  Field pubdid = field("obs_publisher_did", Datatype::char_, "*");
  pubdid.id = "pubdid";
  pubdid.ucd = "meta.id";
  w.begin_table({.name = "links", .fields = {id, url, sdef, err, sem, pubdid}});
  const std::string did = "ivo://pixserve.example/repo?DR1.calexp.v1234.d094";
  w.row({did, "http://host/api/files/DR1.calexp.v1234.d094.fits?x=1&y=2", Value(), Value(), "#this", did});
  w.row({did, Value(), "soda-sync", Value(), "#cutout", did});
  w.end_table();
  w.end_resource();

  w.begin_resource({.type = ResourceType::meta, .name = "soda", .id = "soda-sync", .utype = "adhoc:service"});
  Param std_id;
  std_id.name = "standardID";
  std_id.arraysize = "*";
  std_id.value = "ivo://ivoa.net/std/SODA#sync-1.0";
  w.param(std_id);
  Param access;
  access.name = "accessURL";
  access.arraysize = "*";
  access.value = "http://host/api/soda/sync";
  w.param(access);
  w.begin_group({.name = "inputParams"});
  Param pid;
  pid.name = "ID";
  pid.arraysize = "*";
  pid.ucd = "meta.id";
  pid.ref = "pubdid";
  pid.value = "";
  w.param(pid);
  Param circle;
  circle.name = "CIRCLE";
  circle.datatype = Datatype::double_;
  circle.arraysize = "3";
  circle.xtype = "circle";
  circle.unit = "deg";
  circle.ucd = "pos;obs.field";
  circle.description = "Circle (RA Dec radius) to cut out";
  circle.values.max = std::vector<double>{360.0, 90.0, 5.0};
  w.param(circle);
  Param poly;
  poly.name = "POLYGON";
  poly.datatype = Datatype::double_;
  poly.arraysize = "*";
  poly.xtype = "polygon";
  poly.unit = "deg";
  poly.ucd = "pos;obs.field";
  w.param(poly);
  Param band;
  band.name = "BAND";
  band.datatype = Datatype::double_;
  band.arraysize = "2";
  band.xtype = "interval";
  band.unit = "m";
  band.ucd = "em.wl";
  // A scalar bound applies to each element; it is written repeated to the
  // arraysize, the form astropy can parse.
  band.values.min = 3.0e-7;
  band.values.max = std::vector<double>{1.1e-6, 1.1e-6};
  w.param(band);
  Param pol;
  pol.name = "POL";
  pol.arraysize = "*";
  pol.ucd = "meta.code";
  pol.values.options = {{"I", ""}, {"Q", ""}};
  w.param(pol);
  w.end_group();
  w.end_resource();
  w.end_document();
  return cap.text;
}

TEST(VotableWriter, ServiceDescriptor) {
  const std::string doc = service_descriptor_document(Serialization::tabledata);
  EXPECT_NE(doc.find(" <RESOURCE type=\"meta\" name=\"soda\" ID=\"soda-sync\" utype=\"adhoc:service\">\n"
                     "  <PARAM name=\"standardID\" datatype=\"char\" arraysize=\"*\" value=\"ivo://ivoa.net/std/SODA#sync-1.0\"/>\n"
                     "  <PARAM name=\"accessURL\" datatype=\"char\" arraysize=\"*\" value=\"http://host/api/soda/sync\"/>\n"
                     "  <GROUP name=\"inputParams\">\n"
                     "   <PARAM name=\"ID\" datatype=\"char\" arraysize=\"*\" ucd=\"meta.id\" ref=\"pubdid\" value=\"\"/>\n"
                     "   <PARAM name=\"CIRCLE\" datatype=\"double\" arraysize=\"3\" unit=\"deg\" ucd=\"pos;obs.field\" xtype=\"circle\" value=\"\">\n"
                     "    <DESCRIPTION>Circle (RA Dec radius) to cut out</DESCRIPTION>\n"
                     "    <VALUES>\n"
                     "     <MAX value=\"360 90 5\"/>\n"
                     "    </VALUES>\n"
                     "   </PARAM>\n"
                     "   <PARAM name=\"POLYGON\" datatype=\"double\" arraysize=\"*\" unit=\"deg\" ucd=\"pos;obs.field\" xtype=\"polygon\" value=\"\"/>\n"
                     "   <PARAM name=\"BAND\" datatype=\"double\" arraysize=\"2\" unit=\"m\" ucd=\"em.wl\" xtype=\"interval\" value=\"\">\n"
                     "    <VALUES>\n"
                     "     <MIN value=\"3e-07 3e-07\"/>\n"
                     "     <MAX value=\"1.1e-06 1.1e-06\"/>\n"
                     "    </VALUES>\n"
                     "   </PARAM>\n"
                     "   <PARAM name=\"POL\" datatype=\"char\" arraysize=\"*\" ucd=\"meta.code\" value=\"\">\n"
                     "    <VALUES>\n"
                     "     <OPTION value=\"I\"/>\n"
                     "     <OPTION value=\"Q\"/>\n"
                     "    </VALUES>\n"
                     "   </PARAM>\n"
                     "  </GROUP>\n"
                     " </RESOURCE>\n"
                     "</VOTABLE>\n"),
            std::string::npos)
      << doc;
  EXPECT_NE(doc.find("<TD>http://host/api/files/DR1.calexp.v1234.d094.fits?x=1&amp;y=2</TD>"), std::string::npos);
}

// ---------------------------------------------------------------- escaping

// Every kind of trouble: markup, quotes, whitespace that parsers normalise,
// C0 controls, DEL, bytes that are not UTF-8, a UTF-16 surrogate encoded in
// UTF-8, U+FFFE, non-ASCII inside and outside the BMP, a CDATA terminator.
const std::string hostile =
    "a<b>&\"c'\t\n\r\x01\x1f\x7f"
    "\xff\xfe"
    "\xed\xa0\x80"
    "\xef\xbf\xbe"
    "\xc3\xa9"           // é
    "\xf0\x9f\x98\x80"  // U+1F600
    "]]>";
const std::string fffd = "\xef\xbf\xbd";

TEST(VotableEscape, HostileStrings) {
  Capture cap;
  VotableWriter w(cap.sink());
  w.begin_document(hostile);
  w.begin_resource({.type = ResourceType::results, .name = hostile, .description = hostile});
  w.info(hostile, hostile, hostile);
  Field c = field(hostile, Datatype::char_, "*");
  c.description = hostile;
  c.ucd = hostile;
  Field u = field("u", Datatype::unicodeChar, "*");
  w.begin_table({.name = hostile, .fields = {c, u}});
  w.row({hostile, hostile});
  w.end_table();
  w.end_resource();
  w.end_document();
  const std::string& doc = cap.text;

  // Nothing illegal in XML 1.0 survives, and the output is valid UTF-8.
  EXPECT_TRUE(valid_utf8(doc));
  for (const char ch : doc) {
    const auto b = static_cast<unsigned char>(ch);
    EXPECT_TRUE(b >= 0x20 || b == '\n' || b == '\t') << "control byte " << int(b);
  }
  EXPECT_EQ(doc.find("\xef\xbf\xbe"), std::string::npos);

  const std::string tail = "\x7f" + fffd + fffd + fffd + fffd + fffd + fffd;
  const std::string as_attr = "a&lt;b&gt;&amp;&quot;c'&#9;&#10;&#13;" + fffd + fffd + tail + "\xc3\xa9\xf0\x9f\x98\x80]]&gt;";
  const std::string as_text = "a&lt;b&gt;&amp;\"c'\t\n&#13;" + fffd + fffd + tail + "\xc3\xa9\xf0\x9f\x98\x80]]&gt;";
  EXPECT_NE(doc.find("<INFO name=\"" + as_attr + "\" value=\"" + as_attr + "\">" + as_text + "</INFO>"), std::string::npos)
      << doc;
  EXPECT_NE(doc.find("<FIELD name=\"" + as_attr + "\" datatype=\"char\" arraysize=\"*\" ucd=\"" + as_attr + "\">"),
            std::string::npos);
  EXPECT_NE(doc.find("<DESCRIPTION>" + as_text + "</DESCRIPTION>"), std::string::npos);
  EXPECT_NE(doc.find("<RESOURCE type=\"results\" name=\"" + as_attr + "\">"), std::string::npos);

  // char is ASCII: every other character becomes '?'; unicodeChar is UCS-2:
  // only the character outside the BMP is replaced.
  const auto cells = cells_of(doc);
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0], "a&lt;b&gt;&amp;\"c'\t\n&#13;??\x7f????????]]&gt;");
  EXPECT_EQ(cells[1], "a&lt;b&gt;&amp;\"c'\t\n&#13;" + fffd + fffd + tail + "\xc3\xa9" + fffd + "]]&gt;");
}

TEST(VotableEscape, HostileStringsInBinary2) {
  const std::vector<Field> fields = {field("c", Datatype::char_, "*"), field("u", Datatype::unicodeChar, "*")};
  const auto rows = read_binary2(write_table(Serialization::binary2, fields, {{hostile, hostile}}), fields);
  ASSERT_EQ(rows.size(), 1u);
  // Same text as TABLEDATA, before XML escaping.
  EXPECT_EQ(*rows[0][0].get_if<std::string>(), "a<b>&\"c'\t\n\r??\x7f????????]]>");
  EXPECT_EQ(*rows[0][1].get_if<std::string>(),
            "a<b>&\"c'\t\n\r" + fffd + fffd + "\x7f" + fffd + fffd + fffd + fffd + fffd + fffd + "\xc3\xa9" + fffd + "]]>");
}

// ---------------------------------------------------------------- values

TEST(VotableValues, NumbersInTabledata) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> doubles = {0.1, 1e-300, 5e-324, 1.7976931348623157e308, -0.0, 1.0, 123456789.125,
                                       std::nan(""), inf, -inf, 2.0 / 3.0};
  std::vector<std::vector<Value>> rows;
  for (const double d : doubles) rows.push_back({d, d});
  const std::string doc =
      write_table(Serialization::tabledata, {field("d", Datatype::double_), field("f", Datatype::float_)}, rows);
  const auto cells = cells_of(doc);
  ASSERT_EQ(cells.size(), doubles.size() * 2);
  const std::vector<std::string> expect_d = {"0.1", "1e-300", "5e-324", "1.7976931348623157e+308", "-0", "1",
                                             "123456789.125", "NaN", "+Inf", "-Inf", "0.6666666666666666"};
  const std::vector<std::string> expect_f = {"0.1", "0", "0", "+Inf", "-0", "1", "123456790", "NaN", "+Inf", "-Inf",
                                             "0.6666667"};
  for (std::size_t k = 0; k < doubles.size(); ++k) {
    EXPECT_EQ(cells[2 * k], expect_d[k]);
    EXPECT_EQ(cells[2 * k + 1], expect_f[k]);
    // Doubles read back exactly.
    if (std::isfinite(doubles[k])) {
      EXPECT_EQ(std::strtod(cells[2 * k].c_str(), nullptr), doubles[k]);
    }
  }

  const std::string ints = write_table(
      Serialization::tabledata,
      {field("ub", Datatype::unsignedByte), field("s", Datatype::short_), field("i", Datatype::int_),
       field("l", Datatype::long_), field("b", Datatype::boolean), field("dl", Datatype::double_)},
      {{255, -32768, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int64_t>::min(), true, 7},
       {0, 32767, std::numeric_limits<std::int32_t>::max(), std::numeric_limits<std::int64_t>::max(), false, -1}});
  EXPECT_EQ(cells_of(ints), (std::vector<std::string>{"255", "-32768", "-2147483648", "-9223372036854775808", "T", "7",
                                                      "0", "32767", "2147483647", "9223372036854775807", "F", "-1"}));
}

TEST(VotableValues, ArraysInTabledata) {
  const std::string doc = write_table(
      Serialization::tabledata,
      {field("poly", Datatype::double_, "*", "polygon"), field("circle", Datatype::double_, "3", "circle"),
       field("ivar", Datatype::long_, "*"), field("c5", Datatype::char_, "5"), field("c", Datatype::char_)},
      {{std::vector<double>{10, 20.5, 11, 20.5, 11, 21}, std::vector<double>{1.5, -2.25, 0.001},
        std::vector<std::int64_t>{1, -2, 3}, "abcdefgh", "xyz"},
       {std::vector<double>{}, Value(), std::vector<std::int64_t>{}, "", ""}});
  EXPECT_EQ(cells_of(doc), (std::vector<std::string>{"10 20.5 11 20.5 11 21", "1.5 -2.25 0.001", "1 -2 3", "abcde", "x",
                                                     "", "<null>", "", "", ""}));
  // A one-character char has no arraysize (votlint deprecates arraysize="1").
  EXPECT_NE(doc.find("<FIELD name=\"c\" datatype=\"char\"/>"), std::string::npos);
  EXPECT_NE(doc.find("<FIELD name=\"poly\" datatype=\"double\" arraysize=\"*\" xtype=\"polygon\"/>"), std::string::npos);
}

TEST(VotableValues, NullsOfEveryTypeInTabledata) {
  const auto fields = every_kind();
  const std::string doc = write_table(Serialization::tabledata, fields, {std::vector<Value>(fields.size())});
  EXPECT_EQ(cells_of(doc), std::vector<std::string>(fields.size(), "<null>"));
}

TEST(VotableValues, NullsOfEveryTypeInBinary2) {
  const auto fields = every_kind();
  const std::string doc = write_table(Serialization::binary2, fields, {std::vector<Value>(fields.size())});
  const auto bytes = base64_decode(between(doc, "<STREAM encoding=\"base64\">", "</STREAM>"));
  // Bitmap: 17 flags set, the 7 padding bits clear.
  ASSERT_GE(bytes.size(), 3u);
  EXPECT_EQ(bytes[0], 0xFF);
  EXPECT_EQ(bytes[1], 0xFF);
  EXPECT_EQ(bytes[2], 0x80);
  // Fixed-size cells keep their size; variable ones have count 0.
  const std::size_t expected = 3 + 1 + 1 + 2 + 4 + 8 + 4 + 8 + 1 + 4 + 5 + 4 + 6 + 4 + 24 + 4 + 16 + 4;
  EXPECT_EQ(bytes.size(), expected);
  const auto rows = read_binary2(doc, fields);
  ASSERT_EQ(rows.size(), 1u);
  for (std::size_t k = 0; k < fields.size(); ++k) EXPECT_TRUE(rows[0][k].is_null()) << fields[k].name;
  // Null floats are NaN, null booleans '?', for readers that ignore the flags.
  EXPECT_EQ(bytes[3], '?');
  EXPECT_EQ(bytes[3 + 1 + 1 + 2 + 4 + 8], 0x7F);  // float NaN 0x7FC00000
  EXPECT_EQ(bytes[3 + 1 + 1 + 2 + 4 + 8 + 1], 0xC0);
}

TEST(VotableValues, NullsOfEveryTypeInBinary) {
  // BINARY has no null flags: NaN for reals, '?' for booleans, a declared
  // VALUES null for integers, zero-length variable arrays, empty strings.
  const auto fields = every_kind();
  std::vector<Value> some(fields.size());
  some[1] = 7;
  some[2] = -5;
  some[4] = 1234567890123LL;
  some[8] = "text";
  const std::string doc = write_table(Serialization::binary, fields, {std::vector<Value>(fields.size()), some});
  EXPECT_NE(doc.find("<DATA><BINARY><STREAM encoding=\"base64\">"), std::string::npos);
  EXPECT_NE(doc.find("</STREAM></BINARY></DATA>"), std::string::npos);
  EXPECT_NE(doc.find("<FIELD name=\"ub\" datatype=\"unsignedByte\">\n    <VALUES null=\"255\"/>"), std::string::npos) << doc;
  EXPECT_NE(doc.find("<VALUES null=\"-32768\"/>"), std::string::npos);
  EXPECT_NE(doc.find("<VALUES null=\"-2147483648\"/>"), std::string::npos);
  EXPECT_NE(doc.find("<VALUES null=\"-9223372036854775808\"/>"), std::string::npos);
  const auto bytes = base64_decode(between(doc, "<STREAM encoding=\"base64\">", "</STREAM>"));
  // No bitmap: the null row is just the cells.
  const std::size_t row = 1 + 1 + 2 + 4 + 8 + 4 + 8 + 1 + 4 + 5 + 4 + 6 + 4 + 24 + 4 + 16 + 4;
  ASSERT_EQ(bytes.size(), 2 * row + 4);  // the second row's "text"
  EXPECT_EQ(bytes[0], '?');
  EXPECT_EQ(bytes[1], 0xFF);                          // unsignedByte null 255
  EXPECT_EQ(bytes[2], 0x80);                          // short null 0x8000
  EXPECT_EQ(bytes[1 + 1 + 2 + 4 + 8], 0x7F);          // float NaN
  const auto table = read_votable(doc);
  ASSERT_EQ(table.rows.size(), 2u);
  for (const std::size_t k : {1u, 2u, 3u, 4u}) EXPECT_TRUE(table.rows[0][k].is_null()) << fields[k].name;
  // Arrays: a variable one is empty, a fixed one holds the null value in
  // every element (VOTable 1.4 sec. 5.3 leaves array nulls to the elements).
  const auto* ivar = table.rows[0][14].get_if<std::vector<std::int64_t>>();
  EXPECT_TRUE(table.rows[0][14].is_null() || (ivar && ivar->empty()));
  EXPECT_EQ(table.rows[0][15], Value(std::vector<std::int64_t>(2, std::numeric_limits<std::int64_t>::min())));
  for (const std::size_t k : {5u, 6u}) {
    const auto* d = table.rows[0][k].get_if<double>();
    EXPECT_TRUE(table.rows[0][k].is_null() || (d && std::isnan(*d))) << fields[k].name;
  }
  EXPECT_EQ(table.rows[1][1], Value(7));
  EXPECT_EQ(table.rows[1][2], Value(-5));
  EXPECT_EQ(table.rows[1][4], Value(1234567890123LL));
  EXPECT_EQ(table.rows[1][8], Value("text"));
}

TEST(VotableValues, BinaryRefusesAValueThatWouldReadAsNull) {
  std::vector<Field> fields = {field("s", Datatype::short_), field("n", Datatype::int_)};
  fields[1].values.null = 0;  // declared by the caller: kept, and 0 is refused instead
  EXPECT_THROW(write_table(Serialization::binary, fields, {{std::int64_t{-32768}, 1}}), std::out_of_range);
  EXPECT_THROW(write_table(Serialization::binary, fields, {{1, 0}}), std::out_of_range);
  const std::string doc = write_table(Serialization::binary, fields, {{1, std::numeric_limits<std::int32_t>::min()}});
  EXPECT_NE(doc.find("<VALUES null=\"0\"/>"), std::string::npos);
  // The other serialisations have their own nulls and take every value.
  EXPECT_NO_THROW(write_table(Serialization::binary2, fields, {{std::int64_t{-32768}, 0}}));
  EXPECT_NO_THROW(write_table(Serialization::tabledata, fields, {{std::int64_t{-32768}, 0}}));
  // Only integers have a VALUES null.
  Field d = field("d", Datatype::double_);
  d.values.null = 0;
  EXPECT_THROW(write_table(Serialization::binary, {d}, {}), std::invalid_argument);
}

TEST(VotableValues, EveryDatatypeRoundTripsThroughBinary2) {
  const auto fields = every_kind();
  const double nan = std::nan("");
  std::vector<std::vector<Value>> rows = {
      {true, 255, -32768, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int64_t>::min(), 0.1f,
       0.1, "x", "variable string", "abcde", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", "\xce\xb1\xce\xb2\xce\xb3",
       std::vector<double>{10.0, 20.0, 10.5, 20.0, 10.5, 20.5}, std::vector<double>{1.0, 2.0, 0.5},
       std::vector<std::int64_t>{1, -1, 2147483647}, std::vector<std::int64_t>{-1, 1},
       std::vector<double>{1.5, -0.25, nan}},
      {false, 0, 32767, 2147483647, std::numeric_limits<std::int64_t>::max(), -3.0e38, 5e-324, "y", "", "ab", "", "z",
       std::vector<double>{}, std::vector<double>{nan, 0.0, -0.0}, std::vector<std::int64_t>{},
       std::vector<std::int64_t>{0, 0}, std::vector<double>{}},
      // Some null, some not: the bitmap must be per row.
      {Value(), 7, Value(), 42, Value(), Value(), std::numeric_limits<double>::infinity(), Value(), "n", Value(), "u",
       Value(), std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, Value(), std::vector<std::int64_t>{5}, Value(),
       std::vector<double>{1, 2, 3, 4}},
  };
  // Several row lengths so that the base64 carry between rows is exercised.
  for (int k = 0; k < 10; ++k) {
    rows.push_back(rows[static_cast<std::size_t>(k) % 3]);
    rows.back()[8] = std::string(static_cast<std::size_t>(k), 'k');
  }
  const std::string doc = write_table(Serialization::binary2, fields, rows);
  const auto back = read_binary2(doc, fields);
  ASSERT_EQ(back.size(), rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t k = 0; k < fields.size(); ++k) {
      Value want = rows[r][k];
      // Floats come back as the float the double rounds to; integers into
      // a float column come back as floating point.
      if (fields[k].datatype == Datatype::float_) {
        if (const auto* d = want.get_if<double>()) want = static_cast<double>(static_cast<float>(*d));
      }
      EXPECT_TRUE(same(back[r][k], want)) << "row " << r << " field " << fields[k].name << ": got " << show(back[r][k])
                                          << " want " << show(want);
    }
  }
  // Base64 lines are at most 76 characters.
  const std::string stream = between(doc, "<STREAM encoding=\"base64\">\n", "</STREAM>");
  for (std::size_t a = 0, b; (b = stream.find('\n', a)) != std::string::npos; a = b + 1) EXPECT_LE(b - a, 76u);
}

TEST(VotableValues, TruncationAndBoundsAreTheSameInBothSerialisations) {
  const std::vector<Field> fields = {field("c3", Datatype::char_, "3"), field("c4b", Datatype::char_, "4*"),
                                     field("u2", Datatype::unicodeChar, "2")};
  const std::vector<std::vector<Value>> rows = {{"abcdef", "abcdef", "\xce\xb1\xce\xb2\xce\xb3"}};
  EXPECT_EQ(cells_of(write_table(Serialization::tabledata, fields, rows)),
            (std::vector<std::string>{"abc", "abcd", "\xce\xb1\xce\xb2"}));
  const auto back = read_binary2(write_table(Serialization::binary2, fields, rows), fields);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(*back[0][0].get_if<std::string>(), "abc");
  EXPECT_EQ(*back[0][1].get_if<std::string>(), "abcd");
  EXPECT_EQ(*back[0][2].get_if<std::string>(), "\xce\xb1\xce\xb2");
}

TEST(VotableValues, RejectedRowsLeaveTheDocumentIntact) {
  Capture cap;
  VotableWriter w(cap.sink(), {.serialization = Serialization::tabledata, .buffer_size = 16});
  w.begin_document();
  w.begin_resource({});
  const std::vector<Field> fields = {field("s", Datatype::short_), field("circle", Datatype::double_, "3"),
                                     field("name", Datatype::char_, "*"), field("v", Datatype::double_, "2*")};
  w.begin_table({.fields = fields});
  w.row({1, std::vector<double>{1, 2, 3}, "ok", Value()});
  w.flush();
  const std::size_t before = cap.text.size();
  EXPECT_THROW(w.row({1, std::vector<double>{1, 2, 3}}), std::invalid_argument);               // too few cells
  EXPECT_THROW(w.row({40000, std::vector<double>{1, 2, 3}, "x", Value()}), std::out_of_range);  // short overflow
  EXPECT_THROW(w.row({1, std::vector<double>{1, 2}, "x", Value()}), std::invalid_argument);     // fixed length
  EXPECT_THROW(w.row({1, Value(), 5, Value()}), std::invalid_argument);                          // int as string
  EXPECT_THROW(w.row({"1", Value(), "x", Value()}), std::invalid_argument);                      // string as int
  EXPECT_THROW(w.row({1.5, Value(), "x", Value()}), std::invalid_argument);                      // double as int
  EXPECT_THROW(w.row({true, Value(), "x", Value()}), std::invalid_argument);                     // bool as int
  EXPECT_THROW(w.row({1, Value(), "x", std::vector<double>{1, 2, 3}}), std::invalid_argument);  // over the bound
  EXPECT_THROW(w.row({1, 2.0, "x", Value()}), std::invalid_argument);                            // scalar for array
  EXPECT_THROW(w.row({1, Value(), "x", std::vector<std::int64_t>{1}}), std::invalid_argument);  // int array as real
  w.flush();
  EXPECT_EQ(cap.text.size(), before);
  w.row({2, Value(), "fine", std::vector<double>{0.5}});
  w.end_table();
  w.end_resource();
  w.end_document();
  EXPECT_EQ(cells_of(cap.text),
            (std::vector<std::string>{"1", "1 2 3", "ok", "<null>", "2", "<null>", "fine", "0.5"}));
}

TEST(VotableValues, BadFieldsAreRejected) {
  Capture cap;
  VotableWriter w(cap.sink());
  w.begin_document();
  w.begin_resource({});
  w.flush();
  const std::size_t before = cap.text.size();
  for (const char* a : {"2x3", "x", "0", "-1", "3**", "*3"})
    EXPECT_THROW(w.begin_table({.fields = {field("a", Datatype::double_, a)}}), std::invalid_argument) << a;
  EXPECT_THROW(w.begin_table({.fields = {field("b", Datatype::boolean, "*")}}), std::invalid_argument);
  EXPECT_THROW(w.begin_table({.fields = {}}), std::invalid_argument);
  EXPECT_THROW(w.begin_table({.fields = {field("", Datatype::int_)}}), std::invalid_argument);
  Field bad_range = field("r", Datatype::int_);
  bad_range.values.max = "ten";
  EXPECT_THROW(w.begin_table({.fields = {bad_range}}), std::invalid_argument);
  Field bad_bound = field("band", Datatype::double_, "2", "interval");
  bad_bound.values.min = std::vector<double>{1, 2, 3};  // an array bound must fit the arraysize
  EXPECT_THROW(w.begin_table({.fields = {bad_bound}}), std::invalid_argument);
  bad_bound.values.min = "x";
  EXPECT_THROW(w.begin_table({.fields = {bad_bound}}), std::invalid_argument);
  Param p;
  p.name = "p";
  p.datatype = Datatype::int_;
  p.value = "x";
  EXPECT_THROW(w.param(p), std::invalid_argument);
  w.flush();
  EXPECT_EQ(cap.text.size(), before);
  // The writer is still usable.
  p.value = 3;
  w.param(p);
  w.end_resource();
  w.end_document();
  EXPECT_NE(cap.text.find("<PARAM name=\"p\" datatype=\"int\" value=\"3\"/>"), std::string::npos);
}

TEST(VotableValues, ValueConstruction) {
  EXPECT_TRUE(Value().is_null());
  EXPECT_TRUE(Value(nullptr).is_null());
  EXPECT_TRUE(Value(static_cast<const char*>(nullptr)).is_null());
  EXPECT_NE(Value("text").get_if<std::string>(), nullptr);  // never a bool
  EXPECT_NE(Value(std::string_view("t")).get_if<std::string>(), nullptr);
  EXPECT_EQ(*Value(7u).get_if<std::int64_t>(), 7);
  EXPECT_EQ(*Value(short{-3}).get_if<std::int64_t>(), -3);
  EXPECT_NE(Value(1.5f).get_if<double>(), nullptr);
  EXPECT_NE(Value(false).get_if<bool>(), nullptr);
  // Cast to void: as a statement on its own, `Value(std::numeric_limits<...>::max());`
  // reads as a declaration (clang rejects it as such), not as a construction.
  EXPECT_THROW(static_cast<void>(Value(std::numeric_limits<std::uint64_t>::max())), std::out_of_range);
  EXPECT_EQ(parse_datatype("unicodeChar"), Datatype::unicodeChar);
  EXPECT_EQ(datatype_name(Datatype::short_), "short");
  EXPECT_FALSE(parse_datatype("bit"));
}

// ---------------------------------------------------------------- element order

TEST(VotableWriter, MisuseThrowsLogicError) {
  Capture cap;
  const auto fresh = [&] { return std::make_unique<VotableWriter>(cap.sink()); };
  const std::vector<Field> one = {field("x", Datatype::int_)};
  Param p;
  p.name = "p";
  p.value = "v";

  {
    auto w = fresh();
    EXPECT_THROW(w->info("a", "b"), std::logic_error);
    EXPECT_THROW(w->begin_resource({}), std::logic_error);
    EXPECT_THROW(w->row({1}), std::logic_error);
    EXPECT_THROW(w->end_document(), std::logic_error);
    w->begin_document();
    EXPECT_THROW(w->begin_document(), std::logic_error);
    EXPECT_THROW(w->begin_table({.fields = one}), std::logic_error);  // TABLE needs a RESOURCE
    EXPECT_THROW(w->end_document(), std::logic_error);                 // no RESOURCE yet
    EXPECT_THROW(w->end_resource(), std::logic_error);
    EXPECT_THROW(w->end_group(), std::logic_error);
    w->info("doc", "level");
    w->param(p);
    w->begin_resource({});
    w->info("QUERY_STATUS", "OK");
    w->param(p);
    EXPECT_THROW(w->info("late", "x"), std::logic_error);  // INFO after PARAM, before TABLE
    w->begin_table({.fields = one});
    EXPECT_THROW(w->info("a", "b"), std::logic_error);
    EXPECT_THROW(w->param(p), std::logic_error);
    EXPECT_THROW(w->begin_table({.fields = one}), std::logic_error);
    EXPECT_THROW(w->end_resource(), std::logic_error);
    EXPECT_THROW(w->end_document(), std::logic_error);
    w->row({1});
    w->end_table();
    EXPECT_THROW(w->end_table(), std::logic_error);
    EXPECT_THROW(w->row({1}), std::logic_error);
    EXPECT_THROW(w->param(p), std::logic_error);  // PARAM after TABLE
    EXPECT_THROW(w->begin_group({}), std::logic_error);
    w->info("QUERY_STATUS", "OVERFLOW");
    w->begin_table({.fields = one});  // another TABLE may follow the INFO
    w->end_table();
    w->end_resource();
    EXPECT_THROW(w->param(p), std::logic_error);  // document PARAMs come before the RESOURCEs
    w->begin_resource({});
    w->end_resource();
    w->info("after", "resources");
    EXPECT_THROW(w->begin_resource({}), std::logic_error);  // nothing but INFO after the closing INFOs
    w->end_document();
    EXPECT_THROW(w->info("a", "b"), std::logic_error);
    EXPECT_THROW(w->begin_document(), std::logic_error);
    EXPECT_THROW(w->end_document(), std::logic_error);
  }
  {
    auto w = fresh();
    w->begin_document();
    w->begin_resource({});
    w->begin_group({.name = "inputParams"});
    EXPECT_THROW(w->info("a", "b"), std::logic_error);
    EXPECT_THROW(w->begin_table({.fields = one}), std::logic_error);
    EXPECT_THROW(w->end_resource(), std::logic_error);
    w->param(p);
    w->begin_group({.name = "nested"});
    w->end_group();
    w->end_group();
    EXPECT_THROW(w->info("late", "x"), std::logic_error);  // GROUP counts as PARAM here
    w->begin_resource({.type = ResourceType::meta});
    w->end_resource();
    w->end_resource();
    w->end_document();
  }
  try {
    auto w = fresh();
    w->begin_document();
    w->begin_resource({});
    w->param(p);
    w->info("x", "y");
    FAIL();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("after PARAM/GROUP"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- streaming

// 250,000 rows of a typical ObsCore-like result (10-25 MB, some 400 times
// the buffer) go to a counting sink: the writer never holds more than its
// 64 KiB buffer, hands the sink chunks no larger than that, and the rows
// reach the sink while they are written. (The TABLEDATA run leaves out the
// polygon, and the count is not a million, only to keep the sanitizer build
// of this test quick: formatting doubles dominates there.)
void stream_many_rows(Serialization ser, bool with_polygon) {
  std::uint64_t total = 0, chunks = 0, largest = 0;
  std::string last;
  VotableWriter w(
      [&](std::string_view c) {
        total += c.size();
        ++chunks;
        largest = std::max<std::uint64_t>(largest, c.size());
        last.assign(c.substr(c.size() > 32 ? c.size() - 32 : 0));
      },
      {.serialization = ser});
  w.begin_document();
  w.begin_resource({});
  w.info("QUERY_STATUS", "OK");
  std::vector<Field> fields = {field("id", Datatype::long_), field("ra", Datatype::double_),
                               field("dec", Datatype::double_), field("band", Datatype::char_, "*"),
                               field("good", Datatype::boolean)};
  if (with_polygon) fields.push_back(field("s_region", Datatype::double_, "*", "polygon"));
  w.begin_table({.fields = fields});
  std::vector<Value> cells(fields.size());
  constexpr std::int64_t n = 250'000;
  for (std::int64_t i = 0; i < n; ++i) {
    const double ra = static_cast<double>(i % 360000) / 1000.0;
    cells[0] = i;
    cells[1] = ra;
    cells[2] = -30.0 + static_cast<double>(i % 6000) / 100.0;
    if (i % 7 == 0)
      cells[3] = Value();
    else
      cells[3] = std::string(1, "ugrizy"[i % 6]);
    cells[4] = i % 2 == 0;
    if (with_polygon) cells[5] = std::vector<double>{ra, 1.0, ra + 0.1, 1.0, ra + 0.1, 1.1, ra, 1.1};
    w.row(cells);
  }
  const std::uint64_t chunks_during_rows = chunks;
  w.end_table();
  w.end_resource();
  w.end_document();

  EXPECT_EQ(w.rows_written(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(w.bytes_written(), total);
  EXPECT_LE(w.max_buffered(), default_buffer_size);
  EXPECT_LE(largest, default_buffer_size);
  EXPECT_GE(chunks_during_rows, total / default_buffer_size - 2);
  EXPECT_GT(total, with_polygon ? 25'000'000u : 10'000'000u);
  EXPECT_TRUE(last.ends_with("</VOTABLE>\n"));
}

TEST(VotableStreaming, ManyRowsBinary2) { stream_many_rows(Serialization::binary2, true); }
TEST(VotableStreaming, ManyRowsTabledata) { stream_many_rows(Serialization::tabledata, false); }

TEST(VotableStreaming, HugeCellsDoNotGrowTheBuffer) {
  for (const Serialization ser : {Serialization::binary2, Serialization::tabledata}) {
    Capture cap;
    VotableWriter w(cap.sink(), {.serialization = ser, .buffer_size = 4096});
    const std::vector<Field> fields = {field("text", Datatype::char_, "*"), field("poly", Datatype::double_, "*")};
    w.begin_document();
    w.begin_resource({});
    w.begin_table({.fields = fields});
    const std::string big(3'000'000, 'a');
    std::vector<double> poly(200'000);
    for (std::size_t k = 0; k < poly.size(); ++k) poly[k] = static_cast<double>(k) * 0.5;
    w.row({big, poly});
    w.end_table();
    w.end_resource();
    w.end_document();
    EXPECT_LE(w.max_buffered(), 4096u);
    for (const auto c : cap.chunks) EXPECT_LE(c, 4096u);
    if (ser == Serialization::binary2) {
      const auto back = read_binary2(cap.text, fields);
      ASSERT_EQ(back.size(), 1u);
      EXPECT_EQ(*back[0][0].get_if<std::string>(), big);
      EXPECT_EQ(*back[0][1].get_if<std::vector<double>>(), poly);
    } else {
      EXPECT_EQ(cells_of(cap.text)[0], big);
    }
  }
}

// ---------------------------------------------------------------- CSV / TSV

TEST(VotableTextTable, CsvQuoting) {
  Capture cap;
  TextTableWriter w(cap.sink(), TextFormat::csv);
  w.begin(std::vector<Field>{field("id", Datatype::long_), field("name, quoted", Datatype::char_, "*"),
                             field("poly", Datatype::double_, "*"), field("ok", Datatype::boolean),
                             field("x", Datatype::double_)});
  w.row({1, "plain", std::vector<double>{1, 2.5, 3}, true, 0.1});
  w.row({2, "a,b", Value(), false, std::nan("")});
  w.row({3, "say \"hi\"", std::vector<double>{}, Value(), std::numeric_limits<double>::infinity()});
  w.row({4, "two\nlines\r\n", Value(), Value(), Value()});
  w.row({Value(), "", Value(), Value(), -2});
  w.end();
  EXPECT_EQ(cap.text,
            "id,\"name, quoted\",poly,ok,x\r\n"
            "1,plain,1 2.5 3,true,0.1\r\n"
            "2,\"a,b\",,false,NaN\r\n"
            "3,\"say \"\"hi\"\"\",,,+Inf\r\n"
            "4,\"two\nlines\r\n\",,,\r\n"
            ",\"\",,,-2\r\n");
  EXPECT_EQ(w.rows_written(), 5u);
  EXPECT_THROW(w.row({1, "x", Value(), Value(), Value()}), std::logic_error);
  EXPECT_THROW(w.begin(std::vector<Field>{field("id", Datatype::long_)}), std::logic_error);
}

TEST(VotableTextTable, Tsv) {
  Capture cap;
  TextTableWriter w(cap.sink(), TextFormat::tsv);
  EXPECT_THROW(w.row({1}), std::logic_error);
  w.begin(std::vector<Field>{field("id", Datatype::int_), field("text", Datatype::unicodeChar, "*"),
                             field("circle", Datatype::float_, "3")});
  w.row({1, "tab\there,\"quote\"\nnew", std::vector<double>{1.5, 2.5, 0.1}});
  w.row({Value(), "bad \xff byte", Value()});
  EXPECT_THROW(w.row({1, 2, Value()}), std::invalid_argument);
  w.end();
  EXPECT_EQ(cap.text, "id\ttext\tcircle\n1\ttab here,\"quote\" new\t1.5 2.5 0.1\n\tbad " + fffd + " byte\t\n");
}

// ---------------------------------------------------------------- samples for votlint / astropy

TEST(VotableSamples, WriteSampleDocuments) {
  const std::filesystem::path dir = std::filesystem::path(PIXSERVE_TEST_TMP) / "votable";
  std::filesystem::create_directories(dir);
  const auto save = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
  };

  std::vector<Field> fields = every_kind();
  // Real metadata so that validators check it too.
  fields[6].unit = "deg";
  fields[6].ucd = "pos.eq.ra;meta.main";
  fields[6].description = "Right ascension <ICRS> & \"friends\"";
  fields[12].unit = "deg";
  fields[12].ucd = "pos;obs.field";
  fields[13].unit = "deg";
  fields[13].ucd = "pos;obs.field";
  fields[4].ucd = "meta.id;meta.main";
  fields[3].values.min = 0;
  fields[3].values.max = 1000;
  fields[8].description = hostile;
  const double nan = std::nan("");
  const std::vector<std::vector<Value>> rows = {
      {true, 255, -32768, 7, 1234567890123LL, 0.5f, 150.25, "x", hostile, "abcde", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac",
       "\xce\xb1\xce\xb2", std::vector<double>{10.0, 20.0, 10.5, 20.0, 10.5, 20.5}, std::vector<double>{1.0, 2.0, 0.5},
       std::vector<std::int64_t>{1, -1}, std::vector<std::int64_t>{-1, 1}, std::vector<double>{1.5, nan}},
      std::vector<Value>(fields.size()),
      {false, 0, 32767, Value(), 0, std::numeric_limits<double>::infinity(), nan, "", "", "", "", "",
       std::vector<double>{}, std::vector<double>{nan, nan, nan}, std::vector<std::int64_t>{},
       std::vector<std::int64_t>{0, 0}, std::vector<double>{}},
  };
  for (const Serialization ser : {Serialization::tabledata, Serialization::binary2}) {
    Capture cap;
    VotableWriter w(cap.sink(), {.serialization = ser});
    w.begin_document("pixserve VOTable writer sample");
    Param doc_param;
    doc_param.name = "service";
    doc_param.arraysize = "*";
    doc_param.value = "pixserve";
    w.param(doc_param);
    w.begin_resource({.type = ResourceType::results, .name = "sample"});
    w.info("QUERY_STATUS", "OK");
    w.info("QUERY", "SELECT * FROM t WHERE x < 3 & y > 2", "echo <of> the query");
    Param tp;
    tp.name = "epoch";
    tp.datatype = Datatype::double_;
    tp.unit = "yr";
    tp.value = 2000.0;
    w.begin_table({.name = "results", .description = "Every datatype", .fields = fields, .params = {tp}});
    for (const auto& r : rows) w.row(r);
    w.end_table();
    w.info("QUERY_STATUS", "OVERFLOW");
    w.end_resource();
    w.end_document();
    save(ser == Serialization::tabledata ? "tabledata.xml" : "binary2.xml", cap.text);
  }
  // A query with no rows is common: DATA with an empty TABLEDATA / STREAM.
  save("empty_tabledata.xml", write_table(Serialization::tabledata, fields, {}));
  save("empty_binary2.xml", write_table(Serialization::binary2, fields, {}));
  save("descriptor.xml", service_descriptor_document(Serialization::tabledata));
  save("descriptor_binary2.xml", service_descriptor_document(Serialization::binary2));
  Capture err;
  write_error_document(err.sink(), "Invalid POS: " + hostile);
  save("error.xml", err.text);

  Capture csv;
  TextTableWriter t(csv.sink(), TextFormat::csv);
  t.begin(fields);
  for (const auto& r : rows) t.row(r);
  t.end();
  save("sample.csv", csv.text);
  EXPECT_TRUE(std::filesystem::exists(dir / "binary2.xml"));
}

}  // namespace
}  // namespace pixserve::votable
