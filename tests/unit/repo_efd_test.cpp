// The R-EFD tables at ingest (repo/efd.hpp): the CSV reader's errors, each
// named by file, line and column; EFD rows registered in the transaction of
// the FITS files (a bad row leaves the repository exactly as it was, FITS
// included); re-ingest (unchanged rows, conflicting rows); dry runs.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "fits/fits.hpp"
#include "repo/efd.hpp"
#include "repo/repository.hpp"
#include "wcs/wcs.hpp"
#include "test_registry.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

const std::string kWeatherHeader =
    "time_mjd,dimm_seeing,air_temperature,dome_temperature,wind_speed,wind_direction,relative_humidity,pressure\n";
const std::string kSummaryHeader =
    "visit,exposure,t_start,t_end,airmass,dimm_seeing,air_temperature,dome_temperature,wind_speed,wind_direction,"
    "relative_humidity,pressure\n";

void write_efd_text(const fs::path& file, const std::string& text) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string summary_line(std::int64_t visit, double seeing) {
  return fmt::format("{},{},61000.1,61000.10035,1.2,{},283.1,284.2,5.5,181.5,20.5,743.1\n", visit, visit, seeing);
}

// A calexp with a WCS, as the built-in mapping reads it.
void write_efd_calexp(const fs::path& file, std::int64_t visit) {
  fs::create_directories(file.parent_path());
  auto f = fits::File::create(file);
  f.write_string("DSTYPE", "calexp");
  f.write_string("INSTRUME", "LSSTSim");
  f.write_int("VISIT", visit);
  f.write_int("DETECTOR", 1);
  f.write_string("DETNAME", "S11");
  f.write_string("RAFT", "R22");
  f.write_string("BAND", "r");
  f.write_string("FILTER", "r_57");
  f.write_double("MJD-OBS", 61000.1);
  f.write_double("EXPTIME", 30.0);
  f.append_image(fits::Image<float>(16, 16, 1.0F), {.extname = "IMAGE"});
  wcs::TanParameters tan;
  tan.crval = {53.0, -28.0};
  tan.crpix = {7.5, 7.5};
  tan.cd = {-1e-3, 0.0, 0.0, 1e-3};
  wcs::Wcs::tan(tan).write_to(f);
  f.close();
}

std::vector<std::string> read_problems(const fs::path& file, std::string_view table) {
  std::vector<std::string> problems;
  const auto rows = efd::read_csv(file, *efd::table_named(table), problems);
  if (!problems.empty()) {
    EXPECT_TRUE(rows.rows.empty());
  }
  return problems;
}

std::int64_t efd_count(Repository& repo, std::string_view table) {
  auto s = repo.registry().connection().prepare(fmt::format("SELECT count(*) FROM {}", table));
  return s->step() ? s->get_int(0) : -1;
}

TEST(EfdCsv, ReadsRowsInAnyColumnOrder) {
  pixserve::testing::ScratchDir s;
  const fs::path file = s.dir / "efd" / "weather.csv";
  write_efd_text(file,
             "\xEF\xBB\xBFpressure,time_mjd,dimm_seeing,air_temperature,dome_temperature,wind_speed,wind_direction,"
             "relative_humidity\n743.5, 61000.5,0.7,283.15,284,3,+90,1e1\n\n"
             "743.6,61000.50035,0.71,283.2,284,3,91,10\n");
  std::vector<std::string> problems;
  const auto rows = efd::read_csv(file, *efd::table_named("weather"), problems);
  ASSERT_TRUE(problems.empty()) << problems.front();
  ASSERT_EQ(rows.rows.size(), 2U);
  EXPECT_EQ(rows.lines, (std::vector<std::size_t>{2, 4}));
  EXPECT_EQ(rows.rows[0][0], db::Value{61000.5});   // time_mjd, in the table's order
  EXPECT_EQ(rows.rows[0][5], db::Value{90.0});      // wind_direction
  EXPECT_EQ(rows.rows[0][6], db::Value{10.0});      // relative_humidity
  EXPECT_EQ(rows.rows[0][7], db::Value{743.5});     // pressure
  EXPECT_EQ(efd::table_of_file(file), efd::table_named("weather"));
  EXPECT_EQ(efd::table_of_file(s.dir / "weather.csv"), nullptr);
  EXPECT_EQ(efd::table_of_file(s.dir / "efd" / "truth.csv"), nullptr);
}

TEST(EfdCsv, EveryErrorNamesFileLineAndColumn) {
  pixserve::testing::ScratchDir s;
  const fs::path dir = s.dir / "efd";
  const auto one = [&](const std::string& name, const std::string& text, std::string_view table = "visit_summary") {
    write_efd_text(dir / name, text);
    const auto problems = read_problems(dir / name, table);
    EXPECT_EQ(problems.size(), 1U) << name << ": " << fmt::format("{}", fmt::join(problems, "\n"));
    return problems.empty() ? std::string() : problems.front();
  };
  const std::string p = (dir / "x.csv").string();
  const auto expect = [&](const std::string& name, const std::string& text, const std::string& wanted) {
    const std::string got = one(name, text);
    EXPECT_EQ(got, (dir / name).string() + ":" + wanted) << got;
  };
  expect("empty.csv", "", "1: (header): the file is empty (a header row naming the columns of efd.visit_summary "
                          "is needed)");
  expect("blank.csv", "\n\n", "2: (header): the file is empty (a header row naming the columns of efd.visit_summary "
                              "is needed)");
  expect("unknown.csv", "seeing," + kSummaryHeader, "1: seeing: not a column of efd.visit_summary");
  expect("missing.csv", "visit,exposure,t_start,t_end,airmass,dimm_seeing,air_temperature,dome_temperature,"
                        "wind_speed,wind_direction,relative_humidity\n",
         "1: pressure: missing from the header");
  expect("twice.csv", "visit," + kSummaryHeader, "1: visit: named twice in the header");
  expect("fields.csv", kSummaryHeader + summary_line(1, 0.7) + "2,2,61000.1,61000.2,1.2,0.7\n",
         "3: (row): 6 fields where the header names 12 columns");
  expect("number.csv", kSummaryHeader + summary_line(1, 0.7) + "2,2,61000.1,61000.2,1.2,n/a,283,284,5,180,20,743\n",
         "3: dimm_seeing: 'n/a' is not a number");
  expect("integer.csv", kSummaryHeader + "1.5,1,61000.1,61000.2,1.2,0.7,283,284,5,180,20,743\n",
         "2: visit: '1.5' is not an integer");
  expect("nan.csv", kSummaryHeader + "1,1,61000.1,61000.2,1.2,0.7,283,284,5,180,20,nan\n",
         "2: pressure: 'nan' is not a finite number");
  expect("inf.csv", kSummaryHeader + "1,1,61000.1,61000.2,-inf,0.7,283,284,5,180,20,743\n",
         "2: airmass: '-inf' is not a finite number");
  expect("emptyvalue.csv", kSummaryHeader + "1,1,61000.1,61000.2,1.2,,283,284,5,180,20,743\n",
         "2: dimm_seeing: empty value (every column needs a number)");
  expect("duplicate.csv", kSummaryHeader + summary_line(7, 0.7) + summary_line(8, 0.7) + summary_line(7, 0.8),
         "4: visit: 7 repeats the key of line 2");
  // Every bad line is reported, not only the first.
  write_efd_text(dir / "many.csv", kWeatherHeader + "1,x,2,3,4,5,6,7\n1,2,3\n2,1,2,3,4,5,6,inf\n");
  EXPECT_EQ(read_problems(dir / "many.csv", "weather").size(), 3U);
}

struct EfdIngest {
  pixserve::testing::ScratchDir s;
  Repository repo;
  EfdIngest()
      : repo(Repository::open_or_create(s.dir / "repo", pixserve::testing::test_repository_config())) {}
  fs::path in(const std::string& sub) const { return s.dir / sub; }
};

TEST(EfdIngest, RowsGoInWithTheFitsFilesAndReingestIsUnchanged) {
  EfdIngest t;
  write_efd_calexp(t.in("a") / "calexp_1.fits", 1000001);
  write_efd_text(t.in("a") / "efd" / "visit_summary.csv", kSummaryHeader + summary_line(1000001, 0.7) +
                                                        summary_line(1000002, 0.9));
  write_efd_text(t.in("a") / "efd" / "weather.csv", kWeatherHeader + "61000.1,0.7,283,284,5,180,20,743\n");
  write_efd_text(t.in("a") / "truth.csv", "id,ra\n1,2\n");  // not an EFD file: left alone
  const auto report = ingest(t.repo, {t.in("a")}, {});
  EXPECT_EQ(report.registered, 1U);
  EXPECT_EQ(report.efd_files, 2U);
  EXPECT_EQ(report.efd_registered, 3U);
  EXPECT_EQ(report.efd_unchanged, 0U);
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 2);
  EXPECT_EQ(efd_count(t.repo, "efd_weather"), 1);
  auto s = t.repo.registry().connection().prepare("SELECT dimm_seeing, t_end FROM efd_visit_summary WHERE visit = ?");
  s->bind(1, std::int64_t{1000002});
  ASSERT_TRUE(s->step());
  EXPECT_DOUBLE_EQ(s->get_double(0), 0.9);
  EXPECT_DOUBLE_EQ(s->get_double(1), 61000.10035);

  // Again: every row unchanged. A file given by name works too, and a new
  // row beside the registered ones goes in.
  const auto again = ingest(t.repo, {t.in("a")}, {});
  EXPECT_EQ(again.registered, 0U);
  EXPECT_EQ(again.unchanged, 1U);
  EXPECT_EQ(again.efd_registered, 0U);
  EXPECT_EQ(again.efd_unchanged, 3U);
  write_efd_text(t.in("b") / "efd" / "visit_summary.csv",
             kSummaryHeader + summary_line(1000002, 0.9) + summary_line(1000003, 1.1));
  const auto more = ingest(t.repo, {t.in("b") / "efd" / "visit_summary.csv"}, {});
  EXPECT_EQ(more.files_seen, 0U);
  EXPECT_EQ(more.efd_registered, 1U);
  EXPECT_EQ(more.efd_unchanged, 1U);
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 3);
}

TEST(EfdIngest, AConflictingRowFailsTheRunAndRegistersNothing) {
  EfdIngest t;
  write_efd_text(t.in("a") / "efd" / "visit_summary.csv", kSummaryHeader + summary_line(1000003, 0.7));
  ingest(t.repo, {t.in("a")}, {});
  // The same visit with another seeing, beside a new FITS file and a new row.
  write_efd_calexp(t.in("b") / "calexp_9.fits", 9);
  const fs::path csv = t.in("b") / "efd" / "visit_summary.csv";
  write_efd_text(csv, kSummaryHeader + summary_line(1000004, 0.8) + summary_line(1000003, 0.75));
  try {
    ingest(t.repo, {t.in("b")}, {});
    FAIL() << "a conflicting EFD row must fail the run";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(csv.string() + ":3: visit 1000003 is already registered with different "
                                                         "values"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(t.repo.registry().stats().datasets, 0);
  EXPECT_FALSE(fs::exists(t.repo.root() / "data"));
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 1);
  // A dry run decides the same without writing.
  IngestOptions dry;
  dry.dry_run = true;
  EXPECT_THROW(ingest(t.repo, {t.in("b")}, dry), std::runtime_error);
  write_efd_text(csv, kSummaryHeader + summary_line(1000004, 0.8) + summary_line(1000003, 0.7));
  const auto planned = ingest(t.repo, {t.in("b")}, dry);
  EXPECT_EQ(planned.planned.size(), 1U);
  EXPECT_EQ(planned.efd_registered, 1U);
  EXPECT_EQ(planned.efd_unchanged, 1U);
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 1);
  EXPECT_EQ(t.repo.registry().stats().datasets, 0);
  // Two files of one run that disagree on a row.
  write_efd_text(t.in("c") / "x" / "efd" / "visit_summary.csv", kSummaryHeader + summary_line(1000005, 0.8));
  write_efd_text(t.in("c") / "y" / "efd" / "visit_summary.csv", kSummaryHeader + summary_line(1000005, 0.9));
  try {
    ingest(t.repo, {t.in("c")}, {});
    FAIL() << "two files disagreeing on a row must fail the run";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("visit 1000005 is also in"), std::string::npos) << e.what();
  }
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 1);
}

TEST(EfdIngest, ABadRowLeavesTheRepositoryExactlyAsItWas) {
  EfdIngest t;
  for (int v = 1; v <= 3; ++v) write_efd_calexp(t.in("a") / fmt::format("calexp_{}.fits", v), v);
  write_efd_text(t.in("a") / "efd" / "weather.csv", kWeatherHeader + "61000.1,0.7,283,284,5,180,20,743\n");
  const fs::path bad = t.in("a") / "efd" / "visit_summary.csv";
  write_efd_text(bad, kSummaryHeader + summary_line(1, 0.7) + "2,2,61000.1,61000.2,1.2,0.7,283,284,5,180,20,high\n");
  try {
    ingest(t.repo, {t.in("a")}, {});
    FAIL() << "a bad EFD row must fail the run";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string() + ":3: pressure: 'high' is not a number"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(t.repo.registry().stats().datasets, 0);
  EXPECT_EQ(t.repo.registry().stats().index_cells, 0);
  EXPECT_EQ(efd_count(t.repo, "efd_weather"), 0);
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 0);
  EXPECT_FALSE(fs::exists(t.repo.root() / "data"));
  for (const auto& entry : fs::directory_iterator(t.repo.root())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with(".staging")) << entry.path();
  }
  // With skip_bad the bad file is skipped whole; the rest goes in.
  IngestOptions skip;
  skip.skip_bad = true;
  const auto report = ingest(t.repo, {t.in("a")}, skip);
  EXPECT_EQ(report.registered, 3U);
  EXPECT_EQ(report.efd_registered, 1U);
  ASSERT_EQ(report.skipped.size(), 1U);
  EXPECT_EQ(efd_count(t.repo, "efd_visit_summary"), 0);
  EXPECT_EQ(efd_count(t.repo, "efd_weather"), 1);
}

}  // namespace
}  // namespace pixserve::repo
