// MOC 2.0: well-formed cell lists, NUNIQ values, ASCII/JSON round trips, the
// FITS serialisation's header and data, exact polygon covers, space-time MOCs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "sky/moc.hpp"

namespace pixserve::sky {
namespace {

// The value of a FITS header keyword in a serialised file ("" if absent).
std::string fits_value(const std::string& bytes, const std::string& key) {
  for (std::size_t pos = 0; pos + 80 <= bytes.size(); pos += 80) {
    const std::string card = bytes.substr(pos, 80);
    if (card.rfind(key + std::string(8 - key.size(), ' ') + "=", 0) == 0) {
      std::string v = card.substr(10);
      const auto slash = v.find(" /");
      if (slash != std::string::npos) v = v.substr(0, slash);
      v.erase(0, v.find_first_not_of(' '));
      v.erase(v.find_last_not_of(' ') + 1);
      return v;
    }
  }
  return {};
}

TEST(Moc, FourSiblingsBecomeTheirParent) {
  Moc moc(5);
  for (std::uint64_t i = 16; i < 20; ++i) moc.add_cell(5, i);
  moc.add_cell(5, 21);
  const auto cells = moc.cells();
  ASSERT_EQ(cells.size(), 2u);
  EXPECT_EQ(cells[0], (MocCell{4, 4}));
  EXPECT_EQ(cells[1], (MocCell{5, 21}));
  EXPECT_EQ(moc.cell_count(), 5u);
  EXPECT_EQ(moc.to_ascii(), "4/4 5/21");
  EXPECT_EQ(moc.to_json(), R"({"4":[4],"5":[21]})");
}

TEST(Moc, NuniqValuesFollowTheStandard) {
  Moc moc(3);
  moc.add_cell(0, 11);
  moc.add_cell(3, 5);
  const auto u = moc.nuniq();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0], 4u + 11u);         // 4 * 4^0 + 11
  EXPECT_EQ(u[1], 4u * 64u + 5u);    // 4 * 4^3 + 5
}

TEST(Moc, TrailingOrderMarksTheResolution) {
  Moc moc(8);
  moc.add_cell(1, 1);
  moc.add_cells(1, 2, 3);
  EXPECT_EQ(moc.to_ascii(), "1/1-3 8/");
  EXPECT_EQ(moc.to_json(), R"({"1":[1,2,3],"8":[]})");
  const auto back = Moc::from_ascii(moc.to_ascii());
  EXPECT_EQ(back, moc);
  EXPECT_EQ(Moc::from_ascii("s1/1 2 4 2/12-14 21 23 25 8/").to_ascii(), "1/1-2 4 2/12-14 21 23 25 8/");
}

TEST(Moc, BadInputIsRejected) {
  EXPECT_THROW(Moc(30), std::invalid_argument);
  Moc moc(3);
  EXPECT_THROW(moc.add_cell(4, 0), std::invalid_argument);
  EXPECT_THROW(moc.add_cell(3, 12 * 64), std::invalid_argument);
  EXPECT_THROW(Moc::from_ascii("3/x"), std::invalid_argument);
  EXPECT_THROW(Moc::from_ascii("31/1"), std::invalid_argument);
  EXPECT_THROW(Moc::from_ascii("5 6"), std::invalid_argument);
  EXPECT_THROW(Moc::from_ascii("3/9-2"), std::invalid_argument);
}

TEST(Moc, FitsHasTheRequiredKeywordsAndBigEndianNuniq) {
  Moc moc(6);
  moc.add_cell(6, 1000);
  moc.add_cell(2, 7);
  const auto bytes = to_fits(moc, {.moc_id = "ivo://x/y"});
  ASSERT_EQ(bytes.size() % 2880, 0u);
  EXPECT_EQ(bytes.substr(0, 30), "SIMPLE  =                    T");
  const auto ext = bytes.substr(2880);
  EXPECT_EQ(fits_value(ext, "XTENSION"), "'BINTABLE'");
  EXPECT_EQ(fits_value(ext, "TFORM1"), "'1K      '");
  EXPECT_EQ(fits_value(ext, "ORDERING"), "'NUNIQ   '");
  EXPECT_EQ(fits_value(ext, "COORDSYS"), "'C       '");
  EXPECT_EQ(fits_value(ext, "MOCDIM"), "'SPACE   '");
  EXPECT_EQ(fits_value(ext, "MOCVERS"), "'2.0     '");
  EXPECT_EQ(fits_value(ext, "MOCORD_S"), "6");
  EXPECT_EQ(fits_value(ext, "NAXIS2"), "2");
  EXPECT_EQ(fits_value(ext, "MOCID"), "'ivo://x/y'");
  // The data follow the header block: 4*4^2+7 then 4*4^6+1000, big-endian.
  const auto data = ext.substr(2880, 16);
  auto be = [&](std::size_t off) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(data[off + i]);
    return v;
  };
  EXPECT_EQ(be(0), 4u * 16u + 7u);
  EXPECT_EQ(be(8), 4u * 4096u + 1000u);
}

TEST(Moc, PolygonCoverHasEveryInsidePointAndNoFarCell) {
  const Polygon square({{10.0, 10.0}, {10.5, 10.0}, {10.5, 10.5}, {10.0, 10.5}});
  const int order = 10;
  const auto moc = moc_of(square, order);
  ASSERT_FALSE(moc.empty());
  for (double ra = 10.001; ra < 10.5; ra += 0.01) {
    for (double dec = 10.001; dec < 10.5; dec += 0.01) EXPECT_TRUE(moc.contains({ra, dec})) << ra << " " << dec;
  }
  // No cell's centre lies farther from the square than a cell's size.
  for (const auto& r : moc.ranges()) {
    const int shift = 2 * (29 - order);
    for (auto cell = r.first >> shift; cell < r.last >> shift; ++cell) {
      const auto c = cell_center(static_cast<std::int64_t>(cell), order);
      EXPECT_TRUE(c.ra > 10.0 - 0.1 && c.ra < 10.6 && c.dec > 9.9 && c.dec < 10.6) << c.ra << " " << c.dec;
    }
  }
  EXPECT_FALSE(moc.contains({10.7, 10.2}));
  EXPECT_NEAR(moc.coverage_fraction() * 41252.96, 0.25, 0.08);
}

TEST(Moc, SpaceTimeMergesEqualSkiesAndMarksTime) {
  Moc a(4), b(4);
  a.add_cell(4, 10);
  b.add_cell(4, 20);
  StMoc st(40, 4);
  st.add(60000.0, 60000.1, a);
  st.add(60000.05, 60000.2, b);
  const auto e = st.entries();
  ASSERT_EQ(e.size(), 3u);  // a only, a and b, b only
  EXPECT_EQ(e[0].second.cells().size(), 1u);
  EXPECT_EQ(e[1].second.cells().size(), 2u);
  EXPECT_EQ(e[2].second.cells().size(), 1u);
  const auto ascii = st.to_ascii();
  EXPECT_EQ(ascii.front(), 't');  // the hierarchical form: time cells merged to coarser orders
  EXPECT_NE(ascii.find(" s4/10"), std::string::npos);
  EXPECT_TRUE(ascii.ends_with("t40/ s4/"));
  const auto bytes = st.to_fits();
  const auto ext = bytes.substr(2880);
  EXPECT_EQ(fits_value(ext, "MOCDIM"), "'TIME.SPACE'");
  EXPECT_EQ(fits_value(ext, "ORDERING"), "'RANGE   '");
  EXPECT_EQ(fits_value(ext, "MOCORD_T"), "40");
  EXPECT_EQ(fits_value(ext, "TIMESYS"), "'TCB     '");
  // The first value is a time with the 64th bit set.
  EXPECT_EQ(static_cast<unsigned char>(ext[2880]) & 0x80, 0x80);
  EXPECT_EQ(st.to_json().front(), '[');
  EXPECT_THROW(st.add(60001.0, 60000.0, a), std::invalid_argument);
  EXPECT_THROW(st.add(60000.0, 60001.0, Moc(5)), std::invalid_argument);
}

TEST(Moc, TimeAxisIsMicrosecondsSinceJdZero) {
  // MJD 0 = JD 2400000.5.
  EXPECT_EQ(mjd_to_moc_time(0.0), static_cast<std::uint64_t>(2400000.5L * 86400.0L * 1e6L));
  EXPECT_THROW(mjd_to_moc_time(-3e6), std::invalid_argument);
}

}  // namespace
}  // namespace pixserve::sky
