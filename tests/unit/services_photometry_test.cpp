// The forced-photometry service's requests: its declared parameters, their
// defaults, and the limits of one request (positions, IDs, RADIUS, and the
// /sync limits that name /async).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "dali/errors.hpp"
#include "services/photometry.hpp"

namespace pixserve::services {
namespace {

dali::ParsedParams photometry_parsed(const dali::RawParams& raw, const PhotometryLimits& limits = {}) {
  const auto d = photometry_sync_declaration(dali::ResultLimits{}, limits);
  return dali::parse_params(d.params, raw, d.parse_options);
}

std::string usage_message(const dali::RawParams& raw, const PhotometryLimits& limits, bool synchronous) {
  try {
    photometry_request(photometry_parsed(raw, limits), limits, synchronous);
  } catch (const dali::UsageError& e) {
    return e.what();
  }
  return {};
}

TEST(PhotometryParams, DefaultsAndValues) {
  const auto r = photometry_request(photometry_parsed({{"POS", "53.1 -28.2"}, {"pos", "10 20"}}), {}, true);
  ASSERT_EQ(r.positions.size(), 2U);
  EXPECT_DOUBLE_EQ(r.positions[0].ra, 53.1);
  EXPECT_DOUBLE_EQ(r.positions[0].dec, -28.2);
  EXPECT_DOUBLE_EQ(r.positions[1].ra, 10.0);
  EXPECT_EQ(r.subtype, "calexp");
  EXPECT_EQ(r.method, PhotometryMethod::aperture);
  EXPECT_DOUBLE_EQ(r.radius_arcsec, 2.0);
  EXPECT_TRUE(r.ids.empty());

  const auto s = photometry_request(photometry_parsed({{"POS", "53 -28"},
                                                       {"DPSUBTYPE", "diffim"},
                                                       {"METHOD", "psf"},
                                                       {"RADIUS", "5.5"},
                                                       {"ID", "DR1.calexp.v1.d001"},
                                                       {"TIME", "60000 60010"},
                                                       {"BAND", "5e-7 6e-7"},
                                                       {"COLLECTION", "DR1"}}),
                                    {}, true);
  EXPECT_EQ(s.subtype, "diffim");
  EXPECT_EQ(s.method, PhotometryMethod::psf);
  EXPECT_DOUBLE_EQ(s.radius_arcsec, 5.5);
  ASSERT_EQ(s.ids.size(), 1U);
  ASSERT_EQ(s.times.size(), 1U);
  EXPECT_DOUBLE_EQ(s.times[0].hi, 60010.0);
  ASSERT_EQ(s.wavelengths.size(), 1U);
  EXPECT_DOUBLE_EQ(s.wavelengths[0].lo, 5e-7);
  EXPECT_EQ(s.collections, std::vector<std::string>{"DR1"});
}

TEST(PhotometryParams, BadValuesAreRefusedByTheDeclaration) {
  EXPECT_THROW(photometry_parsed({{"POS", "53"}}), dali::DaliError);                     // not a point
  EXPECT_THROW(photometry_parsed({{"POS", "53 -28"}, {"METHOD", "model"}}), dali::DaliError);
  EXPECT_THROW(photometry_parsed({{"POS", "53 -28"}, {"DPSUBTYPE", "raw"}}), dali::DaliError);
  EXPECT_THROW(photometry_parsed({{"POS", "53 -28"}, {"RADIUS", "0"}}), dali::DaliError);
  EXPECT_THROW(photometry_parsed({{"POS", "53 -28"}, {"RADIUS", "31"}}), dali::DaliError);
  EXPECT_NO_THROW(photometry_parsed({{"POS", "53 -28"}, {"RADIUS", "30"}}));
}

TEST(PhotometryParams, SyncLimitsNameAsync) {
  PhotometryLimits limits;
  limits.sync_max_positions = 2;
  limits.max_positions = 4;
  const dali::RawParams three{{"POS", "1 1"}, {"POS", "2 2"}, {"POS", "3 3"}};
  EXPECT_NE(usage_message(three, limits, true).find("/async"), std::string::npos);
  EXPECT_EQ(usage_message(three, limits, false), "");  // a job takes them
  dali::RawParams five = three;
  five.emplace_back("POS", "4 4");
  five.emplace_back("POS", "5 5");
  const auto too_many = usage_message(five, limits, false);
  EXPECT_NE(too_many.find("at most 4"), std::string::npos) << too_many;

  limits.sync_max_measurements = 10;
  EXPECT_NO_THROW(check_sync_measurements(10, limits));
  try {
    check_sync_measurements(11, limits);
    ADD_FAILURE() << "11 measurements passed a limit of 10";
  } catch (const dali::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("/async"), std::string::npos) << e.what();
  }
}

constexpr const char* kPositionsTable = R"(<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="name" datatype="char" arraysize="*"/>
<FIELD name="RAJ2000" datatype="double" ucd="pos.eq.ra;meta.main"/>
<FIELD name="DEJ2000" datatype="double" ucd="pos.eq.dec;meta.main"/>
<DATA><TABLEDATA>
<TR><TD>a</TD><TD>-10</TD><TD>5.5</TD></TR>
<TR><TD>b</TD><TD>53</TD><TD>-28</TD></TR>
</TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>)";

TEST(PhotometryParams, UploadedPositionsFollowPos) {
  const PhotometryUploads uploads = [](std::string_view part) -> std::optional<std::string> {
    if (part == "table") return std::string(kPositionsTable);
    return std::nullopt;
  };
  const auto r = photometry_request(photometry_parsed({{"POS", "1 2"}, {"UPLOAD", "pos,param:table"}}), {}, true,
                                    uploads);
  ASSERT_EQ(r.positions.size(), 3U);
  EXPECT_DOUBLE_EQ(r.positions[1].ra, 350.0);  // by UCD, RA wrapped into [0, 360)
  EXPECT_DOUBLE_EQ(r.positions[1].dec, 5.5);
  EXPECT_DOUBLE_EQ(r.positions[2].ra, 53.0);
  // UPLOAD alone is enough; its form is checked without the content (job creation).
  EXPECT_NO_THROW(photometry_request(photometry_parsed({{"UPLOAD", "pos,param:table"}}), {}, false));
  EXPECT_THROW(photometry_request(photometry_parsed({{"UPLOAD", "pos,http://x/t.xml"}}), {}, false),
               dali::UsageError);
  EXPECT_THROW(photometry_request(photometry_parsed({{"UPLOAD", "pos,param:other"}}), {}, true, uploads),
               dali::UsageError);
  // Neither POS nor UPLOAD.
  EXPECT_THROW(photometry_request(photometry_parsed({{"METHOD", "psf"}}), {}, true), dali::UsageError);
  // Uploaded positions count against the /sync limit too.
  PhotometryLimits limits;
  limits.sync_max_positions = 2;
  try {
    photometry_request(photometry_parsed({{"POS", "1 2"}, {"UPLOAD", "pos,param:table"}}), limits, true, uploads);
    ADD_FAILURE() << "3 positions passed a /sync limit of 2";
  } catch (const dali::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("/async"), std::string::npos) << e.what();
  }
}

TEST(PhotometryParams, TheDeclarationDescribesEveryParameter) {
  const auto d = photometry_sync_declaration(dali::ResultLimits{}, PhotometryLimits{});
  for (const char* name : {"POS", "ID", "BAND", "TIME", "COLLECTION", "DPSUBTYPE", "METHOD", "RADIUS", "MAXREC",
                           "RESPONSEFORMAT"}) {
    const auto it = std::find_if(d.params.begin(), d.params.end(), [&](const auto& p) { return p.name == name; });
    ASSERT_NE(it, d.params.end()) << name;
    EXPECT_FALSE(it->description.empty()) << name;
  }
  const auto radius = std::find_if(d.params.begin(), d.params.end(), [](const auto& p) { return p.name == "RADIUS"; });
  EXPECT_EQ(radius->unit, "arcsec");
  ASSERT_TRUE(radius->max);
  EXPECT_DOUBLE_EQ(*radius->max, 30.0);
}

}  // namespace
}  // namespace pixserve::services
