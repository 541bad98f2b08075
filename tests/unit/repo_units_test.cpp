// Time and band conversions, dataset IDs.
#include <gtest/gtest.h>

#include "repo/astro_units.hpp"
#include "repo/dataset.hpp"

namespace pixserve::repo {
namespace {

TEST(AstroUnits, MjdOfKnownDates) {
  EXPECT_DOUBLE_EQ(mjd_from_iso("1858-11-17"), 0.0);
  EXPECT_DOUBLE_EQ(mjd_from_iso("2000-01-01T12:00:00"), 51544.5);
  EXPECT_DOUBLE_EQ(mjd_from_iso("1970-01-01T00:00:00Z"), 40587.0);
  EXPECT_NEAR(mjd_from_iso("2025-06-30T06:30:15.250"), 60856.0 + (6 * 3600 + 30 * 60 + 15.25) / 86400.0, 1e-9);
  EXPECT_DOUBLE_EQ(mjd_from_iso("2024-02-29"), 60369.0);
  EXPECT_DOUBLE_EQ(mjd_from_iso("2024-03-01T00:00"), 60370.0);
}

TEST(AstroUnits, RejectsMalformedTimes) {
  for (const char* bad : {"", "2024", "2024-13-01", "2023-02-29", "2024-01-32", "2024-01-01T25:00:00", "2024-01-01 12:00",
                          "2024-01-01T12:00:00.", "2024-01-01T12:60", "24-01-01", "2024-01-01T12:00:00.5x", "abcd-ef-gh"}) {
    EXPECT_THROW(mjd_from_iso(bad), std::invalid_argument) << bad;
  }
}

TEST(AstroUnits, IsoRoundTrip) {
  for (const double mjd : {0.0, 51544.5, 60000.123456, 61000.999999, 40587.0}) {
    EXPECT_NEAR(mjd_from_iso(iso_from_mjd(mjd)), mjd, 1e-8) << iso_from_mjd(mjd);
  }
  EXPECT_EQ(iso_from_mjd(51544.5), "2000-01-01T12:00:00.000");
  EXPECT_EQ(iso_from_mjd(60369.0), "2024-02-29T00:00:00.000");
  // Rounding to the millisecond never produces a 60th second.
  EXPECT_EQ(iso_from_mjd(51544.0 - 1e-10), "2000-01-01T00:00:00.000");
}

TEST(AstroUnits, Bands) {
  const auto r = band_limits("r");
  ASSERT_TRUE(r);
  EXPECT_LT(r->em_min, r->em_max);
  EXPECT_NEAR(r->em_min, 552e-9, 1e-12);
  EXPECT_FALSE(band_limits("R"));
  EXPECT_FALSE(band_limits("q"));
  EXPECT_EQ(band_at_wavelength(620e-9).value_or(""), "r");
  EXPECT_EQ(band_at_wavelength(1000e-9).value_or(""), "y");
  EXPECT_FALSE(band_at_wavelength(2e-6));
  // Bands are ordered and do not overlap except at their shared edges.
  const char* names[] = {"u", "g", "r", "i", "z", "y"};
  for (int i = 0; i + 1 < 6; ++i) EXPECT_LE(band_limits(names[i])->em_max, band_limits(names[i + 1])->em_min);
}

TEST(DatasetIds, StableAndSafe) {
  DataId id;
  id.visit = 1234;
  id.detector = 94;
  id.band = "r";
  EXPECT_EQ(make_dataset_id("DR1", DatasetType::calexp, id), "DR1.calexp.v1234.d094");
  EXPECT_EQ(make_dataset_id("DR1", DatasetType::raw, id), "DR1.raw.v1234.d094");
  EXPECT_EQ(make_dataset_id("DR1", DatasetType::bias, id), "DR1.bias.d094");
  EXPECT_EQ(make_dataset_id("DR1", DatasetType::flat, id), "DR1.flat.r.d094");
  DataId coadd;
  coadd.band = "g";
  coadd.tract = 0;
  coadd.patch = "3,4";
  EXPECT_EQ(make_dataset_id("DR2", DatasetType::deepCoadd, coadd), "DR2.deepCoadd.g.t0.p3_4");
  EXPECT_THROW(make_dataset_id("DR1", DatasetType::calexp, coadd), std::invalid_argument);
  EXPECT_THROW(make_dataset_id("../x", DatasetType::calexp, id), std::invalid_argument);
  EXPECT_THROW(make_dataset_id("DR1", DatasetType::user, id, "alice", "a/b"), std::invalid_argument);
}

TEST(DatasetIds, SafeIdentifier) {
  EXPECT_TRUE(is_safe_identifier("DR1.calexp.v1.d001"));
  EXPECT_FALSE(is_safe_identifier(""));
  EXPECT_FALSE(is_safe_identifier(".hidden"));
  EXPECT_FALSE(is_safe_identifier("a b"));
  EXPECT_FALSE(is_safe_identifier("a/b"));
  EXPECT_FALSE(is_safe_identifier("a%2Fb"));
  EXPECT_FALSE(is_safe_identifier(std::string(201, 'a')));
}

TEST(DatasetTypes, NamesRoundTrip) {
  for (const auto t : {DatasetType::raw, DatasetType::bias, DatasetType::flat, DatasetType::calexp,
                       DatasetType::calexp_comp, DatasetType::diffim, DatasetType::deepCoadd,
                       DatasetType::goodSeeingCoadd}) {
    EXPECT_EQ(dataset_type_from_string(to_string(t)), t);
  }
  EXPECT_FALSE(dataset_type_from_string("Calexp"));
  EXPECT_EQ(calib_level(DatasetType::raw), 1);
  EXPECT_EQ(calib_level(DatasetType::calexp), 2);
  EXPECT_EQ(calib_level(DatasetType::deepCoadd), 3);
}

}  // namespace
}  // namespace pixserve::repo

#include "db/database.hpp"
#include "repo/obscore_schema.hpp"
#include "repo/registry.hpp"

namespace pixserve::repo {
namespace {

// The ivoa_obscore view and the column descriptions (used for TAP_SCHEMA,
// SIA FIELDs and VOSI tables) name the same columns in the same order.
TEST(ObscoreSchema, ViewMatchesDescription) {
  Registry registry(db::open_sqlite(":memory:", true), 9);
  auto s = registry.connection().prepare("SELECT * FROM ivoa_obscore LIMIT 0");
  s->step();
  const auto columns = obscore_columns();
  ASSERT_EQ(static_cast<size_t>(s->column_count()), columns.size());
  for (size_t i = 0; i < columns.size(); ++i) EXPECT_EQ(s->column_name(static_cast<int>(i)), columns[i].name);
  // Every ObsCore 1.1 mandatory column is present.
  for (const char* name : {"dataproduct_type", "calib_level", "obs_collection", "obs_id", "obs_publisher_did",
                           "access_url", "access_format", "access_estsize", "target_name", "s_ra", "s_dec", "s_fov",
                           "s_region", "s_resolution", "s_xel1", "s_xel2", "t_min", "t_max", "t_exptime",
                           "t_resolution", "t_xel", "em_min", "em_max", "em_res_power", "em_xel", "o_ucd",
                           "pol_states", "pol_xel", "facility_name", "instrument_name"}) {
    EXPECT_TRUE(std::any_of(columns.begin(), columns.end(), [&](const auto& c) { return c.name == name; })) << name;
  }
}

}  // namespace
}  // namespace pixserve::repo
