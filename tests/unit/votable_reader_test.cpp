// The VOTable reader behind TAP uploads: TABLEDATA, BINARY and BINARY2
// (round trips through the writer), nulls, arrays with DALI xtypes, and
// hostile input: DOCTYPE/entities, size, row and column limits, malformed
// cells, remote streams.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "votable/reader.hpp"
#include "votable/writer.hpp"

namespace pixserve::votable {
namespace {

std::string write(Serialization s, const std::vector<Field>& fields, const std::vector<std::vector<Value>>& rows) {
  std::string out;
  VotableWriter w([&out](std::string_view chunk) { out.append(chunk); }, {.serialization = s});
  w.begin_document();
  w.begin_resource({.type = ResourceType::results});
  w.begin_table({.name = "mine", .fields = fields});
  for (const auto& r : rows) w.row(r);
  w.end_table();
  w.end_resource();
  w.end_document();
  return out;
}

std::vector<Field> sample_fields() {
  return {
      {.name = "id", .datatype = Datatype::long_},
      {.name = "ra", .datatype = Datatype::double_, .unit = "deg", .ucd = "pos.eq.ra"},
      {.name = "name", .datatype = Datatype::char_, .arraysize = "*"},
      {.name = "flag", .datatype = Datatype::boolean},
      {.name = "n", .datatype = Datatype::int_},
      {.name = "pos", .datatype = Datatype::double_, .arraysize = "2", .xtype = "point"},
      {.name = "poly", .datatype = Datatype::double_, .arraysize = "*", .xtype = "polygon"},
      {.name = "mag", .datatype = Datatype::float_},
  };
}

std::vector<std::vector<Value>> sample_rows() {
  return {
      {Value(1), Value(53.25), Value("alpha <&> \"b\""), Value(true), Value(7), Value(std::vector<double>{10.0, 20.0}),
       Value(std::vector<double>{1, 2, 3, 2, 3, 4}), Value(21.5)},
      {Value(2), Value(), Value(), Value(false), Value(), Value(), Value(), Value()},
  };
}

void expect_sample(const ReadTable& t) {
  ASSERT_EQ(t.fields.size(), 8u);
  EXPECT_EQ(t.name, "mine");
  EXPECT_EQ(t.fields[1].unit, "deg");
  EXPECT_EQ(t.fields[1].ucd, "pos.eq.ra");
  EXPECT_EQ(t.fields[5].xtype, "point");
  ASSERT_EQ(t.rows.size(), 2u);
  const auto& r = t.rows[0];
  EXPECT_EQ(r[0], Value(1));
  EXPECT_EQ(r[1], Value(53.25));
  EXPECT_EQ(r[2], Value("alpha <&> \"b\""));
  EXPECT_EQ(r[3], Value(true));
  EXPECT_EQ(r[4], Value(7));
  EXPECT_EQ(r[5], Value(std::vector<double>{10.0, 20.0}));
  EXPECT_EQ(r[6], Value(std::vector<double>{1, 2, 3, 2, 3, 4}));
  EXPECT_EQ(r[7], Value(21.5));
  const auto& n = t.rows[1];
  EXPECT_EQ(n[0], Value(2));
  EXPECT_TRUE(n[1].is_null());
  EXPECT_TRUE(n[2].is_null());
  EXPECT_EQ(n[3], Value(false));
  EXPECT_TRUE(n[4].is_null());
  EXPECT_TRUE(n[7].is_null());
}

TEST(VotableReader, TabledataRoundTrip) {
  expect_sample(read_votable(write(Serialization::tabledata, sample_fields(), sample_rows())));
}

TEST(VotableReader, Binary2RoundTrip) {
  expect_sample(read_votable(write(Serialization::binary2, sample_fields(), sample_rows())));
}

TEST(VotableReader, BinaryWithNullSentinel) {
  // Two rows of (short with VALUES null=-1, char[3]): 0x0005 "ab\0", 0xffff "xyz".
  const std::string bytes = std::string("\x00\x05", 2) + std::string("ab\0", 3) + "\xff\xff" + "xyz";
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string b64;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
    b64 += kAlphabet[(v >> 18) & 63];
    b64 += kAlphabet[(v >> 12) & 63];
    b64 += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    b64 += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  const std::string doc =
      "<VOTABLE version=\"1.3\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\"><RESOURCE><TABLE>"
      "<FIELD name=\"s\" datatype=\"short\"><VALUES null=\"-1\"/></FIELD>"
      "<FIELD name=\"c\" datatype=\"char\" arraysize=\"3\"/>"
      "<DATA><BINARY><STREAM encoding=\"base64\">\n" + b64 + "\n</STREAM></BINARY></DATA></TABLE></RESOURCE></VOTABLE>";
  const auto t = read_votable(doc);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], Value(5));
  EXPECT_EQ(t.rows[0][1], Value("ab"));
  EXPECT_TRUE(t.rows[1][0].is_null());
  EXPECT_EQ(t.rows[1][1], Value("xyz"));
}

TEST(VotableReader, NamespacePrefixesAndNestedResources) {
  const std::string doc =
      "<?xml version=\"1.0\"?><v:VOTABLE xmlns:v=\"http://www.ivoa.net/xml/VOTable/v1.3\"><v:RESOURCE><v:RESOURCE>"
      "<v:TABLE name=\"t\"><v:FIELD name=\"x\" datatype=\"int\"/><v:DATA><v:TABLEDATA>"
      "<v:TR><v:TD>3</v:TD></v:TR><v:TR><v:TD>-4</v:TD></v:TR></v:TABLEDATA></v:DATA></v:TABLE>"
      "</v:RESOURCE></v:RESOURCE></v:VOTABLE>";
  const auto t = read_votable(doc);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1][0], Value(-4));
}

std::string one_column(const std::string& field, const std::string& cells) {
  return "<VOTABLE><RESOURCE><TABLE>" + field + "<DATA><TABLEDATA>" + cells + "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>";
}

TEST(VotableReader, RefusesHostileAndMalformedInput) {
  const auto refused = [](const std::string& doc, const std::string& why, const ReadLimits& limits = {}) {
    try {
      read_votable(doc, limits);
      ADD_FAILURE() << "accepted: " << doc.substr(0, 200);
    } catch (const ReadError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  // External entities (XXE) and entity expansion never happen: DOCTYPE is refused.
  refused("<?xml version=\"1.0\"?><!DOCTYPE VOTABLE [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
          "<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\" datatype=\"char\" arraysize=\"*\"/>"
          "<DATA><TABLEDATA><TR><TD>&x;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>",
          "DOCTYPE");
  refused("<VOTABLE><RESOURCE>", "not well-formed");
  refused("<html/>", "not a VOTable");
  refused("<VOTABLE><RESOURCE/></VOTABLE>", "no TABLE");
  refused(one_column("<FIELD name=\"a\" datatype=\"int\"/>", "<TR><TD>12x</TD></TR>"), "not a valid int");
  refused(one_column("<FIELD name=\"a\" datatype=\"int\"/>", "<TR><TD>1</TD><TD>2</TD></TR>"), "more cells");
  refused(one_column("<FIELD name=\"a\" datatype=\"int\"/>", "<TR></TR>"), "has 0 cells");
  refused(one_column("<FIELD name=\"a\" datatype=\"floatComplex\"/>", ""), "not supported");
  refused(one_column("<FIELD datatype=\"int\"/>", ""), "no name");
  refused(one_column("<FIELD name=\"a\" datatype=\"int\" arraysize=\"0\"/>", ""), "arraysize");
  refused(one_column("<FIELD name=\"a\" datatype=\"int\"/>", "<TR><TD>1</TD></TR><TR><TD>2</TD></TR><TR><TD>3</TD></TR>"),
          "more than 2 rows", {.max_rows = 2});
  refused(std::string(2000, ' ') + one_column("<FIELD name=\"a\" datatype=\"int\"/>", ""), "larger than the limit",
          {.max_bytes = 1000});
  std::string many;
  for (int i = 0; i < 5; ++i) many += "<FIELD name=\"a" + std::to_string(i) + "\" datatype=\"int\"/>";
  refused(one_column(many, ""), "more than 3 columns", {.max_columns = 3});
  refused("<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\" datatype=\"int\"/><DATA><BINARY2>"
          "<STREAM href=\"http://example.org/data\"/></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>",
          "remote");
  refused("<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\" datatype=\"int\"/><DATA><BINARY2>"
          "<STREAM encoding=\"base64\">AAAA</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>",
          "truncated");
  refused("<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\" datatype=\"int\"/><DATA><BINARY2>"
          "<STREAM encoding=\"base64\">!!!!</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>",
          "base64");
}

TEST(VotableReader, ArraysizeFormsAndEmptyTables) {
  const auto t = read_votable(one_column("<FIELD name=\"a\" datatype=\"double\" arraysize=\"3*\"/>",
                                         "<TR><TD>1 2.5 -3e2</TD></TR><TR><TD></TD></TR>"));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0][0], Value(std::vector<double>{1, 2.5, -300}));
  EXPECT_TRUE(t.rows[1][0].is_null());
  const auto empty = read_votable("<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\" datatype=\"int\"/></TABLE></RESOURCE></VOTABLE>");
  EXPECT_EQ(empty.fields.size(), 1u);
  EXPECT_TRUE(empty.rows.empty());
}

}  // namespace
}  // namespace pixserve::votable
