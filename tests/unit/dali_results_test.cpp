// RESPONSEFORMAT and MAXREC in one place: format selection, the hard limit,
// overflow after the TABLE, metadata-only MAXREC=0, and streaming that stops
// the row source as soon as it has enough.
#include <gtest/gtest.h>

#include <string>

#include "dali/results.hpp"
#include "service_test_support.hpp"

namespace pixserve::dali {
namespace {

using testing::body_of;
using testing::count;

const std::vector<votable::Field>& fields() {
  static const std::vector<votable::Field> f{
      {.name = "id", .datatype = votable::Datatype::long_},
      {.name = "name", .datatype = votable::Datatype::char_, .arraysize = "*"},
      {.name = "region", .datatype = votable::Datatype::double_, .arraysize = "*", .xtype = "polygon"},
  };
  return f;
}

// A source of n rows that counts how many rows it was asked for.
struct CountingSource {
  int n = 0;
  std::shared_ptr<int> produced = std::make_shared<int>(0);
  RowSource source() const {
    return [n = n, produced = produced](const RowSink& emit) {
      for (int i = 0; i < n; ++i) {
        ++*produced;
        const std::vector<votable::Value> row{i, "row " + std::to_string(i),
                                              std::vector<double>{1.0 * i, 2.0, 3.0, 4.0, 5.0, 6.0}};
        if (!emit(row)) return;
      }
    };
  }
};

std::string write(const ResponseFormat& format, std::int64_t maxrec, const TableResult& result, TableStats* stats = nullptr) {
  std::string out;
  const auto s = write_table([&out](std::string_view c) { out.append(c); }, format, maxrec, result);
  if (stats) *stats = s;
  return out;
}

ParsedParams parsed(const RawParams& raw, const ResultLimits& limits = {}) {
  return parse_params(result_params(limits), raw);
}

TEST(DaliResults, ResponseFormatSelection) {
  EXPECT_EQ(parse_response_format("votable").format, TableFormat::votable_tabledata);
  EXPECT_EQ(parse_response_format("application/x-votable+xml").format, TableFormat::votable_tabledata);
  EXPECT_EQ(parse_response_format("text/xml").format, TableFormat::votable_tabledata);
  EXPECT_EQ(parse_response_format("application/x-votable+xml;serialization=BINARY2").format, TableFormat::votable_binary2);
  EXPECT_EQ(parse_response_format("application/x-votable+xml; serialization=binary2").format, TableFormat::votable_binary2);
  EXPECT_EQ(parse_response_format("votable/b2").format, TableFormat::votable_binary2);
  EXPECT_EQ(parse_response_format("votable/b").format, TableFormat::votable_binary);
  EXPECT_EQ(parse_response_format("application/x-votable+xml;serialization=BINARY").format, TableFormat::votable_binary);
  EXPECT_EQ(parse_response_format("votable/b").content_type, "application/x-votable+xml;serialization=BINARY");
  EXPECT_EQ(parse_response_format("csv").format, TableFormat::csv);
  EXPECT_EQ(parse_response_format("text/csv").format, TableFormat::csv);
  EXPECT_EQ(parse_response_format("TSV").format, TableFormat::tsv);
  EXPECT_EQ(parse_response_format("text/tab-separated-values").format, TableFormat::tsv);

  EXPECT_EQ(parse_response_format("votable").content_type, "application/x-votable+xml");
  EXPECT_EQ(parse_response_format("votable/b2").content_type, "application/x-votable+xml;serialization=BINARY2");
  EXPECT_EQ(parse_response_format("csv").content_type.rfind("text/csv", 0), 0U);

  EXPECT_EQ(response_format(parsed({})).format, TableFormat::votable_tabledata);  // the default
  EXPECT_EQ(response_format(parsed({{"responseformat", "csv"}})).format, TableFormat::csv);  // any case of the name
}

TEST(DaliResults, UnknownResponseFormatIs400NamingTheAllowedValues) {
  for (const char* bad : {"fits", "application/json", "votable/x", "", "text/html\r\nX: y"}) {
    try {
      parse_response_format(bad);
      ADD_FAILURE() << bad;
    } catch (const DaliError& e) {
      EXPECT_EQ(e.status(), 400);
      const std::string m = e.what();
      EXPECT_NE(m.find("RESPONSEFORMAT"), std::string::npos) << m;
      EXPECT_NE(m.find("csv"), std::string::npos) << m;
      EXPECT_NE(m.find("BINARY2"), std::string::npos) << m;
      EXPECT_EQ(m.find('\r'), std::string::npos) << "control characters must not reach the document";
    }
  }
}

TEST(DaliResults, MaxrecDefaultAndHardLimit) {
  const ResultLimits limits{.default_maxrec = 50, .max_maxrec = 200};
  EXPECT_EQ(effective_maxrec(parsed({}, limits), limits), 50);
  EXPECT_EQ(effective_maxrec(parsed({{"MAXREC", "7"}}, limits), limits), 7);
  EXPECT_EQ(effective_maxrec(parsed({{"maxrec", "0"}}, limits), limits), 0);
  EXPECT_EQ(effective_maxrec(parsed({{"MAXREC", "100000"}}, limits), limits), 200);
  for (const char* bad : {"-1", "x", "1.5", ""}) {
    EXPECT_THROW(parsed({{"MAXREC", bad}}, limits), DaliError) << bad;
  }
  EXPECT_THROW(parsed({{"MAXREC", "1"}, {"MAXREC", "2"}}, limits), DaliError);
}

TEST(DaliResults, OverflowInfoAfterTheTableAndTheSourceStops) {
  CountingSource src{.n = 1000};
  TableResult result{.fields = fields(), .rows = src.source()};
  TableStats stats;
  const std::string doc = write({}, 3, result, &stats);
  EXPECT_EQ(stats.rows, 3U);
  EXPECT_TRUE(stats.overflow);
  EXPECT_EQ(*src.produced, 4) << "one row beyond MAXREC tells about the overflow; no more are produced";
  EXPECT_EQ(count(doc, "<TR>"), 3U);
  const auto ok = doc.find(R"(<INFO name="QUERY_STATUS" value="OK")");
  const auto table_end = doc.find("</TABLE>");
  const auto overflow = doc.find(R"(<INFO name="QUERY_STATUS" value="OVERFLOW")");
  ASSERT_NE(ok, std::string::npos);
  ASSERT_NE(overflow, std::string::npos) << doc;
  EXPECT_LT(ok, doc.find("<TABLE"));
  EXPECT_GT(overflow, table_end);
  EXPECT_LT(overflow, doc.find("</RESOURCE>"));
}

TEST(DaliResults, NoOverflowWhenEverythingFits) {
  CountingSource src{.n = 5};
  TableResult result{.fields = fields(), .rows = src.source()};
  TableStats stats;
  const std::string doc = write({}, 5, result, &stats);
  EXPECT_EQ(stats.rows, 5U);
  EXPECT_FALSE(stats.overflow);
  EXPECT_EQ(doc.find("OVERFLOW"), std::string::npos);
  EXPECT_EQ(count(doc, "<TR>"), 5U);
  EXPECT_NE(doc.find(R"(xtype="polygon")"), std::string::npos);
}

// A source that fails after some rows (a query stopped by its time limit
// mid-stream): the rows stay, the VOTable ends with QUERY_STATUS ERROR after
// the TABLE and no OVERFLOW; CSV and TSV only report it in the stats, and
// table_response cuts their body.
RowSource failing_source(int rows_before) {
  return [rows_before](const RowSink& emit) {
    for (int i = 0; i < rows_before; ++i) {
      const std::vector<votable::Value> row{i, "row", std::vector<double>{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}};
      if (!emit(row)) return;
    }
    throw RowsFailed("the query exceeded its time limit");
  };
}

TEST(DaliResults, ASourceFailingMidStreamEndsTheVotableWithQueryStatusError) {
  for (const auto* name : {"votable", "votable/b2", "votable/b"}) {
    TableResult result{.fields = fields(), .rows = failing_source(7), .overflowed = [] { return true; }};
    TableStats stats;
    const std::string doc = write(parse_response_format(name), 100, result, &stats);
    EXPECT_EQ(stats.rows, 7U) << name;
    EXPECT_FALSE(stats.overflow) << name;
    ASSERT_TRUE(stats.error) << name;
    EXPECT_EQ(*stats.error, "the query exceeded its time limit");
    const auto error = doc.find(R"(<INFO name="QUERY_STATUS" value="ERROR">the query exceeded its time limit</INFO>)");
    ASSERT_NE(error, std::string::npos) << doc;
    EXPECT_GT(error, doc.find("</TABLE>")) << name;
    EXPECT_LT(error, doc.find("</RESOURCE>")) << name;
    EXPECT_EQ(doc.rfind("QUERY_STATUS"), doc.find("QUERY_STATUS", error)) << "the last status is the error";
    EXPECT_EQ(doc.find("OVERFLOW"), std::string::npos) << name;
    EXPECT_NE(doc.find("</VOTABLE>"), std::string::npos) << name;
    if (std::string_view(name) == "votable") {
      EXPECT_EQ(count(doc, "<TR>"), 7U);
    }
  }
  TableResult result{.fields = fields(), .rows = failing_source(7)};
  TableStats stats;
  const std::string csv = write(parse_response_format("csv"), 100, result, &stats);
  EXPECT_TRUE(stats.error);
  EXPECT_EQ(count(csv, "\n"), 8U);  // the header and the rows before the failure
  EXPECT_THROW(end_failed_stream(parse_response_format("csv"), stats), std::runtime_error);
  EXPECT_NO_THROW(end_failed_stream(parse_response_format("votable"), stats));
}

TEST(DaliResults, ASourceApplyingMaxrecItselfReportsOverflow) {
  CountingSource src{.n = 3};
  TableResult result{.fields = fields(), .rows = src.source(), .overflowed = [] { return true; }};
  TableStats stats;
  const std::string doc = write({}, 10, result, &stats);
  EXPECT_EQ(stats.rows, 3U);
  EXPECT_TRUE(stats.overflow);
  EXPECT_GT(doc.find(R"(value="OVERFLOW")"), doc.find("</TABLE>"));
}

TEST(DaliResults, MaxrecZeroIsMetadataOnly) {
  CountingSource src{.n = 10};
  TableResult result{.fields = fields(), .rows = src.source()};
  const std::string doc = write({}, 0, result);
  EXPECT_EQ(*src.produced, 0) << "MAXREC=0 must not run the query";
  EXPECT_NE(doc.find(R"(<INFO name="QUERY_STATUS" value="OK")"), std::string::npos);
  EXPECT_EQ(doc.find("OVERFLOW"), std::string::npos);
  EXPECT_EQ(count(doc, "<FIELD"), 3U);
  EXPECT_EQ(count(doc, "<TR>"), 0U);
}

TEST(DaliResults, Binary2AndTextFormats) {
  CountingSource src{.n = 4};
  TableResult result{.fields = fields(), .rows = src.source()};
  const std::string b2 = write(parse_response_format("votable/b2"), 2, result);
  EXPECT_NE(b2.find("<BINARY2>"), std::string::npos);
  EXPECT_NE(b2.find("OVERFLOW"), std::string::npos);
  EXPECT_EQ(b2.find("<TABLEDATA>"), std::string::npos);

  const std::string csv = write(parse_response_format("csv"), 2, result);
  EXPECT_EQ(csv.rfind("id,name,region\r\n", 0), 0U) << csv;
  EXPECT_EQ(count(csv, "\r\n"), 3U);  // header + MAXREC rows
  const std::string tsv = write(parse_response_format("tsv"), 10, result);
  EXPECT_EQ(tsv.rfind("id\tname\tregion\n", 0), 0U) << tsv;
  EXPECT_EQ(count(tsv, "\n"), 5U);
}

TEST(DaliResults, ExtraInfosAndResourcesInTheVotable) {
  CountingSource src{.n = 1};
  TableResult result{.fields = fields(), .infos = {{"request", "query"}}, .rows = src.source(),
                     .more_resources = [](votable::VotableWriter& w) {
                       w.begin_resource({.type = votable::ResourceType::meta, .name = "extra", .id = "extra"});
                       w.end_resource();
                     }};
  const std::string doc = write({}, 10, result);
  EXPECT_LT(doc.find(R"(<INFO name="request" value="query")"), doc.find("<TABLE"));
  EXPECT_GT(doc.find(R"(ID="extra")"), doc.find("</TABLE>"));
}

TEST(DaliResults, TableResponseStreamsWithTheFormatsContentType) {
  const ResultLimits limits{.default_maxrec = 2, .max_maxrec = 10};
  CountingSource src{.n = 100};
  auto res = table_response(parsed({{"RESPONSEFORMAT", "application/x-votable+xml;serialization=BINARY2"}}, limits),
                            limits, {.fields = fields(), .rows = src.source()});
  ASSERT_TRUE(res.is_stream());
  EXPECT_EQ(res.headers.get("Content-Type").value_or(""), "application/x-votable+xml;serialization=BINARY2");
  EXPECT_EQ(*src.produced, 0) << "rows are produced while the response streams, not before";
  const std::string doc = body_of(res);
  EXPECT_NE(doc.find("<BINARY2>"), std::string::npos);
  EXPECT_EQ(*src.produced, 3);
  // A bad format fails in the handler, before anything streams.
  EXPECT_THROW(table_response(parsed({{"RESPONSEFORMAT", "fits"}}, limits), limits, {.fields = fields()}), DaliError);
}

TEST(DaliResults, AClientThatGoesAwayStopsTheSource) {
  struct FailingWriter final : http::BodyWriter {
    bool write(std::string_view) override { return false; }
    bool flush() override { return false; }
  };
  CountingSource src{.n = 1'000'000};
  const ResultLimits limits{.default_maxrec = 1'000'000, .max_maxrec = 1'000'000};
  auto res = table_response(parsed({}, limits), limits, {.fields = fields(), .rows = src.source()});
  FailingWriter w;
  EXPECT_NO_THROW(std::get<http::StreamBody>(res.body).producer(w));
  EXPECT_LT(*src.produced, 10'000) << "the source stops once the client is gone";
}

}  // namespace
}  // namespace pixserve::dali
