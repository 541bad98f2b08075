// Unit tests of pixserve::sim on a tiny survey: every product is written
// with the documented keywords and is accepted by ingest's metadata reader;
// the bytes are deterministic for a seed whatever the thread count; the ISR
// recovers the simulated sky; stars land where the WCS puts them; coadd
// INPUTS list the overlapping calexps; the coadds' variance planes describe
// their pixel noise; the goodSeeingCoadd templates come from the
// best-seeing visits only; headers-only mode is fast and sized right.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <numbers>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "fits/fits.hpp"
#include "image/calexp.hpp"
#include "image/exposure.hpp"
#include "image/isr.hpp"
#include "image/mask.hpp"
#include "image/statistics.hpp"
#include "repo/coadd_mosaics.hpp"
#include "repo/metadata.hpp"
#include "repo/recipe.hpp"
#include "repo/repository.hpp"
#include "sim/camera.hpp"
#include "sim/observing.hpp"
#include "sim/products.hpp"
#include "sim/simulator.hpp"
#include "wcs/wcs.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve;

namespace {

// A fresh directory per test: each builds the tiny survey for itself.
fs::path tmp_dir(const std::string& name) {
  const fs::path dir = pixserve::testing::test_scratch_dir(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Removes a test's directory when it goes out of scope (the surveys are
// tens of megabytes).
struct Cleanup {
  fs::path dir;
  ~Cleanup() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// Small but dense: 2 visits x 2 detectors of 128 px, a crowded little field
// so every detector holds stars, and small patches so the coadds stay small.
sim::SurveyConfig tiny_config() {
  sim::SurveyConfig c;
  c.seed = 11;
  c.visits = 2;
  c.detectors = 2;
  c.bands = "r";
  c.detector_width = c.detector_height = 128;
  c.field_radius_deg = 0.05;
  c.star_density_per_deg2 = 300000.0;
  c.galaxy_density_per_deg2 = 5000.0;
  c.patch_size = 600;
  c.patch_border = 50;
  c.tract_size_deg = 0.2;
  c.threads = 2;
  return c;
}

std::vector<fs::path> files_under(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> with_suffix(const fs::path& dir, const std::string& folder, const std::string& suffix) {
  std::vector<fs::path> out;
  for (const auto& rel : files_under(dir / folder)) {
    if (rel.string().ends_with(suffix)) out.push_back(dir / folder / rel);
  }
  return out;
}

struct TruthStar {
  long long id;
  std::string type;
  double ra, dec, r;
};

std::vector<TruthStar> read_truth(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // header
  std::vector<TruthStar> out;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<std::string> cells;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    out.push_back({std::stoll(cells[0]), cells[1], std::stod(cells[2]), std::stod(cells[3]), std::stod(cells[6])});
  }
  return out;
}

class TinySurvey : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = tmp_dir("tiny");
    summary_ = sim::simulate(tiny_config(), *dir_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    dir_.reset();
  }
  static const fs::path& dir() { return *dir_; }
  static inline std::optional<fs::path> dir_;
  static inline sim::SurveySummary summary_;
};

TEST_F(TinySurvey, WritesEveryProductWithItsKeywords) {
  EXPECT_TRUE(fs::exists(dir() / "truth.csv"));
  const auto raws = with_suffix(dir(), "raw", ".fits");
  const auto calexps = with_suffix(dir(), "calexp", ".fits");
  const auto comps = with_suffix(dir(), "calexp_comp", ".fits.fz");
  const auto biases = with_suffix(dir(), "calib/bias", ".fits");
  const auto flats = with_suffix(dir(), "calib/flat", ".fits");
  const auto coadds = with_suffix(dir(), "deepCoadd", ".fits");
  // Both visits are the template set (2 per band by default).
  const auto templates = with_suffix(dir(), "goodSeeingCoadd", ".fits");
  EXPECT_EQ(raws.size(), 4U);
  EXPECT_EQ(calexps.size(), 4U);
  EXPECT_EQ(comps.size(), 4U);
  EXPECT_EQ(biases.size(), 2U);
  EXPECT_EQ(flats.size(), 2U);
  EXPECT_GE(coadds.size(), 1U);
  EXPECT_EQ(templates.size(), coadds.size());
  EXPECT_EQ(summary_.coadds, coadds.size());
  EXPECT_EQ(summary_.templates, templates.size());
  // ... and the two R-EFD tables.
  EXPECT_EQ(summary_.files_written, raws.size() + calexps.size() + comps.size() + biases.size() + flats.size() +
                                        coadds.size() + templates.size() + 2);

  // The raw: primary metadata, WCS and DETSIZE; amplifier HDUs with sections.
  auto raw = fits::File::open(raws.front());
  for (const char* key : {"DSTYPE", "INSTRUME", "TELESCOP", "VISIT",   "EXPOSURE", "DETECTOR", "DETNAME",  "RAFT",
                          "BAND",   "FILTER",   "DATE-OBS", "MJD-OBS", "TIMESYS",  "EXPTIME",  "DARKTIME", "AIRMASS",
                          "RATEL",  "DECTEL",   "ROTPA",    "SEEING",  "HUMIDITY", "PRESSURE", "AIRTEMP",  "WINDSPD",
                          "OBJECT", "DETSIZE",  "CTYPE1",   "A_ORDER", "A_3_0",    "B_0_3"}) {
    EXPECT_TRUE(raw.has_key(key)) << key;
  }
  EXPECT_EQ(raw.read_string("TIMESYS"), "TAI");
  EXPECT_EQ(raw.read_string("DETSIZE"), "[1:128,1:128]");
  EXPECT_EQ(raw.read_string("CTYPE1"), "RA---TAN-SIP");
  EXPECT_EQ(raw.hdu_count(), 3);  // 2 amplifiers on a 128-pixel detector
  raw.move_to_hdu(2);
  EXPECT_EQ(raw.image_bitpix(), 32);
  for (const char* key : {"EXTNAME", "DATASEC", "BIASSEC", "PRESCAN", "DETSEC", "GAIN", "RDNOISE", "SATURATE"}) {
    EXPECT_TRUE(raw.has_key(key)) << key;
  }

  auto calexp = fits::File::open(calexps.front());
  for (const char* key : {"PSFFWHM", "BGMEAN", "MAGZERO", "SWVER", "ISRVER", "BGSUB"})
    EXPECT_TRUE(calexp.has_key(key)) << key;
  EXPECT_EQ(calexp.read_string("DSTYPE"), "calexp");
  for (const char* hdu : {"IMAGE", "MASK", "VARIANCE"}) {
    ASSERT_TRUE(calexp.move_to_named_hdu(hdu)) << hdu;
    EXPECT_EQ(calexp.read_string("CTYPE1"), "RA---TAN-SIP");
    EXPECT_EQ(calexp.image_shape(), (std::vector<long>{128, 128}));
  }
  ASSERT_TRUE(calexp.move_to_named_hdu("MASK"));
  EXPECT_EQ(calexp.image_bitpix(), 32);
  EXPECT_EQ(calexp.read_int("MP_SAT"), 1);

  auto comp = fits::File::open(comps.front());
  EXPECT_EQ(comp.read_string("DSTYPE"), "calexp_comp");

  auto coadd = fits::File::open(coadds.front());
  for (const char* key : {"DSTYPE", "BAND", "FILTER", "SKYMAP", "TRACT", "PATCH", "MJD-BEG", "MJD-END", "NINPUTS",
                          "COVFRAC", "DEPTH5", "PSFFWHM", "MAGZERO", "SWVER"}) {
    EXPECT_TRUE(coadd.has_key(key)) << key;
  }

  // Ingest's reader accepts every file and reads the data IDs and sizes.
  std::map<std::string, int> types;
  for (const auto& rel : files_under(dir())) {
    if (rel.extension() == ".csv") continue;
    const auto rec = repo::read_dataset_metadata(dir() / rel, {});
    ++types[std::string(repo::to_string(rec.type))];
    if (rec.type == repo::DatasetType::raw || rec.type == repo::DatasetType::calexp) {
      EXPECT_EQ(rec.width, 128);
      EXPECT_EQ(rec.height, 128);
      EXPECT_TRUE(rec.data_id.visit && rec.data_id.detector);
      EXPECT_EQ(rec.data_id.band, "r");
      ASSERT_TRUE(rec.pixel_scale_arcsec);
      EXPECT_NEAR(*rec.pixel_scale_arcsec, 0.2, 1e-3);
    }
  }
  EXPECT_EQ(types["raw"], 4);
  EXPECT_EQ(types["calexp"], 4);
  EXPECT_EQ(types["calexp_comp"], 4);
  EXPECT_EQ(types["bias"], 2);
  EXPECT_EQ(types["flat"], 2);
  EXPECT_GE(types["deepCoadd"], 1);
  EXPECT_EQ(types["goodSeeingCoadd"], types["deepCoadd"]);
}

TEST_F(TinySurvey, IsDeterministicWhateverTheThreadCount) {
  const fs::path again = tmp_dir("tiny_one_thread");
  const Cleanup clean_again{again};
  auto config = tiny_config();
  config.threads = 1;
  sim::simulate(config, again);
  const auto a = files_under(dir()), b = files_under(again);
  ASSERT_EQ(a, b);
  EXPECT_TRUE(std::find(a.begin(), a.end(), fs::path("efd") / "weather.csv") != a.end());
  EXPECT_TRUE(std::find(a.begin(), a.end(), fs::path("efd") / "visit_summary.csv") != a.end());
  for (const auto& rel : a) EXPECT_TRUE(bytes_of(dir() / rel) == bytes_of(again / rel)) << rel;

  // Another seed is another sky (and other weather): the truth and EFD
  // tables say so without the pixels, which headers_only leaves out.
  config.seed = 12;
  config.headers_only = true;
  const fs::path other = tmp_dir("tiny_other_seed");
  const Cleanup clean_other{other};
  sim::simulate(config, other);
  EXPECT_NE(bytes_of(dir() / "truth.csv"), bytes_of(other / "truth.csv"));
  EXPECT_NE(bytes_of(dir() / "efd" / "weather.csv"), bytes_of(other / "efd" / "weather.csv"));
}

// A seed's sky and pixels are the same whichever compiler built the
// simulator (the plain tree is g++'s, the sanitized one clang's): two random
// draws in one expression, whose order the compiler chooses, once gave clang
// other magnitudes and other noise. The digests are of files g++ 12 wrote.
TEST_F(TinySurvey, IsTheSameWhicheverCompilerBuiltIt) {
  EXPECT_EQ(repo::sha256_file(dir() / "truth.csv"), "54d63d0ca3c86e8313b5d0e65ab081e80cb6f16a2e4e2f739651a172f11a9994");
  const auto raws = with_suffix(dir(), "raw", ".fits");
  ASSERT_FALSE(raws.empty());
  EXPECT_EQ(repo::sha256_file(raws.front()), "feb8b2e1c0fc32b54a2af376fd1bbe30ef1575e19b68c671c7d4b0c87deaf427")
      << raws.front();
}

// The rows of a CSV file as maps from column name to value.
std::vector<std::map<std::string, double>> read_efd_csv(const fs::path& csv) {
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  std::vector<std::string> names;
  std::stringstream header(line);
  for (std::string cell; std::getline(header, cell, ',');) names.push_back(cell);
  std::vector<std::map<std::string, double>> out;
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    std::map<std::string, double> row;
    std::size_t i = 0;
    for (std::string cell; std::getline(ss, cell, ',');) row[names.at(i++)] = std::stod(cell);
    EXPECT_EQ(i, names.size()) << line;
    out.push_back(std::move(row));
  }
  return out;
}

// The R-EFD tables agree with the raw headers: the weather runs from 30
// minutes before the first exposure to 30 minutes after the last, every
// 30 s; each visit's summary is its header's AIRMASS and, within the noise
// and the drift over a few seconds, its SEEING and weather.
TEST_F(TinySurvey, EngineeringTablesAgreeWithTheRawHeaders) {
  const auto weather = read_efd_csv(dir() / "efd" / "weather.csv");
  const auto summaries = read_efd_csv(dir() / "efd" / "visit_summary.csv");
  ASSERT_EQ(summaries.size(), 2U);
  ASSERT_GE(weather.size(), 120U);
  for (std::size_t i = 1; i < weather.size(); ++i) {
    EXPECT_NEAR((weather[i].at("time_mjd") - weather[i - 1].at("time_mjd")) * 86400.0, 30.0, 1e-3);
  }
  for (const auto& raw_file : with_suffix(dir(), "raw", ".fits")) {
    auto raw = fits::File::open(raw_file);
    const auto visit = *raw.read_int("VISIT");
    const auto it = std::find_if(summaries.begin(), summaries.end(),
                                 [&](const auto& s) { return static_cast<long long>(s.at("visit")) == visit; });
    ASSERT_NE(it, summaries.end()) << visit;
    const auto& s = *it;
    EXPECT_NEAR(s.at("airmass"), *raw.read_double("AIRMASS"), 1e-9);
    EXPECT_NEAR(s.at("dimm_seeing"), *raw.read_double("SEEING"), 0.02) << visit;
    EXPECT_NEAR(s.at("air_temperature"), *raw.read_double("AIRTEMP") + 273.15, 0.3) << visit;
    EXPECT_NEAR(s.at("relative_humidity"), *raw.read_double("HUMIDITY"), 2.0) << visit;
    EXPECT_NEAR(s.at("pressure"), *raw.read_double("PRESSURE"), 0.5) << visit;
    EXPECT_NEAR(s.at("wind_speed"), *raw.read_double("WINDSPD"), 1.0) << visit;
    const double start = *raw.read_double("MJD-OBS");
    EXPECT_NEAR(s.at("t_start"), start, 1e-9);
    EXPECT_NEAR((s.at("t_end") - start) * 86400.0, *raw.read_double("EXPTIME"), 1e-3);
  }
  const double first = summaries.front().at("t_start"), last = summaries.back().at("t_end");
  EXPECT_NEAR((first - weather.front().at("time_mjd")) * 1440.0, 30.0, 0.01);
  EXPECT_NEAR((weather.back().at("time_mjd") - last) * 1440.0, 30.0, 0.5);
  for (const auto& w : weather) {
    EXPECT_GE(w.at("wind_direction"), 0.0);
    EXPECT_LT(w.at("wind_direction"), 360.0);
    EXPECT_GT(w.at("dimm_seeing"), 0.0);
  }
}

TEST_F(TinySurvey, IsrRecoversTheSkyWithinTheNoise) {
  const auto config = tiny_config();
  const sim::Camera camera(config);
  const auto visits = sim::plan_visits(config, camera.raft_width_deg());
  for (const auto& path : with_suffix(dir(), "calexp", ".fits")) {
    auto f = fits::File::open(path);
    const auto visit_id = *f.read_int("VISIT");
    const auto& visit = *std::find_if(visits.begin(), visits.end(), [&](const auto& v) { return v.id == visit_id; });
    const double bg = *f.read_double("BGMEAN");
    // Faint sources lift the sigma-clipped median a little above the sky.
    EXPECT_NEAR(bg, visit.sky_electrons, 0.01 * visit.sky_electrons + 2.0) << path;
    EXPECT_NEAR(*f.read_double("MAGZERO"), visit.zero_point, 1e-9);
    EXPECT_NEAR(*f.read_double("PSFFWHM"), visit.seeing_arcsec, 0.15 * visit.seeing_arcsec) << path;

    // The pixel scatter matches the variance plane where there are no sources.
    const auto e = image::read_exposure(path);
    const std::int32_t skip = image::mask_bit(image::MaskPlane::detected) | image::mask_bit(image::MaskPlane::bad) |
                              image::mask_bit(image::MaskPlane::saturated) | image::mask_bit(image::MaskPlane::edge);
    const auto stats = image::estimate_background(e.image, &e.mask, skip);
    EXPECT_NEAR(stats.level, 0.0, 3.0 * stats.rms / std::sqrt(static_cast<double>(stats.samples)) + 1.0);
    const double predicted = std::sqrt(image::estimate_background(e.variance).level);
    EXPECT_NEAR(stats.rms / predicted, 1.0, 0.1) << path;
  }
}

// A calexp that is not stored is re-created from its raw, bias and flat by
// the code that made the stored ones: the file is the same byte for byte
// (DATASUM included), given the software version the recipe records.
TEST_F(TinySurvey, CalexpsAreRecreatedByteForByteFromRawBiasAndFlat) {
  const auto config = tiny_config();
  const sim::Camera camera(config);
  int compared = 0;
  for (const auto& visit : sim::plan_visits(config, camera.raft_width_deg())) {
    for (const auto& det : camera.detectors()) {
      const fs::path stored = dir() / sim::paths::calexp(visit, det);
      ASSERT_TRUE(fs::exists(stored)) << stored;
      const auto software = fits::File::open(stored).read_string("SWVER");
      ASSERT_TRUE(software.has_value());
      const auto calexp = image::make_calexp(dir() / sim::paths::raw(visit, det),
                                             image::read_calibration(dir() / sim::paths::bias(det)),
                                             image::read_calibration(dir() / sim::paths::flat(det, *visit.band)),
                                             {.software_version = *software});
      const fs::path again = dir() / "recreated.fits";
      image::write_calexp(again, calexp);
      EXPECT_EQ(bytes_of(again), bytes_of(stored)) << stored;
      auto file = fits::File::open(again);
      ASSERT_TRUE(file.move_to_named_hdu("IMAGE"));
      EXPECT_TRUE(file.read_string("DATASUM").has_value());
      ++compared;
    }
  }
  EXPECT_EQ(compared, 4);
}

// A survey that stores no calexps: ingest registers one virtual calexp per
// raw, with the raw's rights and a recipe naming raw, bias and flat by ID
// and checksum; a survey that stores them gets none.
TEST_F(TinySurvey, IngestRegistersVirtualCalexpsWhereNoneAreStored) {
  const fs::path base = tmp_dir("virtual");
  Cleanup cleanup{base};
  auto config = tiny_config();
  config.write_calexps = false;
  const auto summary = sim::simulate(config, base / "survey");
  EXPECT_EQ(summary.calexps, 0U);
  EXPECT_GT(summary.coadds, 0U);  // made from calexps kept only while the coadds need them
  EXPECT_EQ(summary.templates, summary.coadds);  // and the templates too (from both visits)
  EXPECT_FALSE(fs::exists(base / "survey" / "calexp"));
  EXPECT_FALSE(fs::exists(base / "survey" / ".calexp-scratch"));

  auto repo = repo::Repository::open_or_create(base / "repo", {});
  repo::IngestOptions options;
  options.policy = repo::ReadPolicy::data_rights;
  const auto report = repo::ingest(repo, {base / "survey"}, options);
  EXPECT_EQ(report.virtual_registered, 4U);
  repo::DatasetQuery q;
  q.dataset_types = {"calexp"};
  const auto calexps = repo.registry().find(q);
  ASSERT_EQ(calexps.size(), 4U);
  for (const auto& c : calexps) {
    EXPECT_EQ(c.storage, repo::Storage::virtual_);
    EXPECT_EQ(c.checksum, repo::recipe_hash(c.recipe));
    EXPECT_EQ(c.rights.policy, repo::ReadPolicy::data_rights);
    EXPECT_TRUE(c.footprint.has_value());
    const auto recipe = repo::Recipe::from_json(c.recipe);
    EXPECT_EQ(recipe.algorithm_version, image::kIsrVersion);
    for (const char* role : {"raw", "bias", "flat"}) {
      const auto& input = recipe.input(role);
      EXPECT_EQ(repo.registry().checksum_of(input.dataset_id), input.checksum) << role;
    }
    const auto raw = repo.registry().find_by_id(recipe.input("raw").dataset_id);
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->rights.release_mjd, c.rights.release_mjd);
    EXPECT_EQ(raw->footprint->vertices().size(), c.footprint->vertices().size());
  }
  // The templates are registered with their (virtual) calexps as inputs.
  q.dataset_types = {"goodSeeingCoadd"};
  auto templates = repo.registry().find(q);
  std::erase_if(templates, [](const repo::DatasetRecord& t) { return repo::is_coadd_mosaic(t); });
  EXPECT_EQ(templates.size(), summary.templates);
  std::set<std::string> calexp_ids;
  for (const auto& c : calexps) calexp_ids.insert(c.dataset_id);
  for (const auto& t : templates) {
    const auto inputs = repo.registry().inputs_of(t.dataset_id);
    EXPECT_FALSE(inputs.empty()) << t.dataset_id;
    for (const auto& in : inputs) {
      EXPECT_EQ(in.role, "input");
      EXPECT_TRUE(calexp_ids.count(in.input_id)) << in.input_id;
    }
  }
  // Ingesting again adds nothing.
  EXPECT_EQ(repo::ingest(repo, {base / "survey"}, options).virtual_registered, 0U);

  // The survey with stored calexps: none virtual.
  auto stored = repo::Repository::open_or_create(base / "stored-repo", {});
  EXPECT_EQ(repo::ingest(stored, {dir()}, {}).virtual_registered, 0U);
  // Raws without their calibrations: none either.
  auto raws_only = repo::Repository::open_or_create(base / "raws-repo", {});
  EXPECT_EQ(repo::ingest(raws_only, {base / "survey" / "raw"}, {}).virtual_registered, 0U);
}

TEST_F(TinySurvey, StarsLandWhereTheWcsPutsThem) {
  const auto truth = read_truth(dir() / "truth.csv");
  int checked = 0;
  for (const auto& path : with_suffix(dir(), "calexp", ".fits")) {
    auto f = fits::File::open(path);
    ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
    const auto w = wcs::Wcs::from_fits(f);
    const auto e = image::read_exposure(path);
    const double sigma = *fits::File::open(path).read_double("PSFFWHM") / 0.2 / 2.3548;
    for (const auto& s : truth) {
      if (s.type != "star" || s.r < 17.0 || s.r > 22.5) continue;
      wcs::PixelPoint p;
      try {
        p = w.sky_to_pixel({s.ra, s.dec});
      } catch (const wcs::WcsError&) {
        continue;
      }
      if (p.x < 10 || p.y < 10 || p.x > 117 || p.y > 117) continue;
      // Isolated: nothing within 3" that is less than 3 mag fainter.
      const bool crowded = std::any_of(truth.begin(), truth.end(), [&](const TruthStar& o) {
        if (o.id == s.id || o.r > s.r + 3.0) return false;
        const double dra = (o.ra - s.ra) * std::cos(s.dec * M_PI / 180.0), ddec = o.dec - s.dec;
        return std::hypot(dra, ddec) * 3600.0 < 3.0;
      });
      if (crowded) continue;
      const auto m = image::adaptive_moments(e.image, p.x, p.y, sigma);
      ASSERT_TRUE(m) << "star " << s.id << " in " << path;
      EXPECT_LT(std::hypot(m->x - p.x, m->y - p.y), 0.3) << "star " << s.id << " (r=" << s.r << ") in " << path;
      ++checked;
    }
  }
  std::cout << checked << " stars checked\n";
  EXPECT_GE(checked, 3);
}

TEST_F(TinySurvey, CoaddVarianceMatchesThePixelScatter) {
  // Warping smooths the calexps' noise: a resampled pixel's variance is
  // sum w^2 Var, not the interpolated Var (which overstated the coadd noise
  // by a factor of about 1.5 in sigma). Sky pixels divided by the square
  // root of their variance scatter by 1.
  const std::int32_t skip = image::mask_bit(image::MaskPlane::detected) | image::mask_bit(image::MaskPlane::bad) |
                            image::mask_bit(image::MaskPlane::saturated) | image::mask_bit(image::MaskPlane::no_data);
  const auto coadds = with_suffix(dir(), "deepCoadd", ".fits");
  ASSERT_FALSE(coadds.empty());
  for (const auto& path : coadds) {
    const auto e = image::read_exposure(path);
    fits::Image<float> chi(e.width(), e.height(), 0.0F);
    for (std::size_t k = 0; k < chi.pixels.size(); ++k) {
      chi.pixels[k] = e.image.pixels[k] / std::sqrt(e.variance.pixels[k]);
    }
    const auto stats = image::estimate_background(chi, &e.mask, skip);
    ASSERT_GT(stats.samples, 1000U) << path;
    EXPECT_NEAR(stats.rms, 1.0, 0.1) << path;
  }
}

// COVFRAC and DEPTH5 (survey.coadds' coverage_fraction and depth_5sigma)
// measured again from the written planes: the share of pixels with data
// (finite IMAGE), and the AB magnitude of five times the noise in a
// Gaussian PSF of PSFFWHM's noise-equivalent area, from the median VARIANCE.
TEST_F(TinySurvey, CoaddCoverageAndDepthAreThoseOfTheirPlanes) {
  const auto coadds = with_suffix(dir(), "deepCoadd", ".fits");
  ASSERT_FALSE(coadds.empty());
  for (const auto& path : coadds) {
    auto f = fits::File::open(path);
    const double coverage = f.read_double("COVFRAC").value_or(-1.0);
    const auto depth = f.read_double("DEPTH5");
    const double fwhm = *f.read_double("PSFFWHM");
    ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
    const double scale_arcsec = wcs::Wcs::from_fits(f).pixel_scale_deg() * 3600.0;
    const auto e = image::read_exposure(path);
    std::size_t finite = 0;
    std::vector<float> variances;
    for (std::size_t k = 0; k < e.image.pixels.size(); ++k) {
      if (!std::isfinite(e.image.pixels[k])) continue;
      ++finite;
      variances.push_back(e.variance.pixels[k]);
    }
    EXPECT_NEAR(coverage, static_cast<double>(finite) / static_cast<double>(e.image.pixels.size()), 1e-6) << path;
    EXPECT_GT(coverage, 0.0) << path;
    EXPECT_LE(coverage, 1.0) << path;
    ASSERT_TRUE(depth) << path;
    std::nth_element(variances.begin(), variances.begin() + static_cast<std::ptrdiff_t>(variances.size() / 2),
                     variances.end());
    const double sigma = fwhm / scale_arcsec / 2.354820045;
    const double flux = 5.0 * std::sqrt(variances[variances.size() / 2] * 4.0 * std::numbers::pi * sigma * sigma);
    // The simulator's median is of every 16th pixel: close, not equal.
    EXPECT_NEAR(*depth, 31.4 - 2.5 * std::log10(flux), 0.02) << path;
  }
}

TEST_F(TinySurvey, CoaddInputsListTheOverlappingCalexps) {
  struct Calexp {
    long long visit, detector;
    std::string band;
    wcs::Wcs w;
  };
  std::vector<Calexp> calexps;
  for (const auto& path : with_suffix(dir(), "calexp", ".fits")) {
    auto f = fits::File::open(path);
    Calexp c{*f.read_int("VISIT"), *f.read_int("DETECTOR"), *f.read_string("BAND"),
             (f.move_to_named_hdu("IMAGE"), wcs::Wcs::from_fits(f))};
    calexps.push_back(std::move(c));
  }
  const auto coadds = with_suffix(dir(), "deepCoadd", ".fits");
  ASSERT_FALSE(coadds.empty());
  std::set<std::pair<long long, long long>> covered;
  for (const auto& path : coadds) {
    auto f = fits::File::open(path);
    const auto band = *f.read_string("BAND");
    const auto ninputs = *f.read_int("NINPUTS");
    ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
    const auto patch_wcs = wcs::Wcs::from_fits(f);
    const auto shape = f.image_shape();
    ASSERT_TRUE(f.move_to_named_hdu("INPUTS"));
    const auto visits = f.read_int_column("VISIT");
    const auto detectors = f.read_int_column("DETECTOR");
    ASSERT_EQ(visits.size(), detectors.size());
    EXPECT_EQ(static_cast<long long>(visits.size()), ninputs);
    std::set<std::pair<long long, long long>> listed;
    for (size_t i = 0; i < visits.size(); ++i) listed.insert({visits[i], detectors[i]});
    for (const auto& c : calexps) {
      // A calexp whose centre falls well inside the patch must be an input;
      // a listed input must be a calexp of the band.
      const auto centre = c.w.pixel_to_sky({63.5, 63.5});
      const auto p = patch_wcs.sky_to_pixel(centre);
      const bool inside = p.x > 2 && p.y > 2 && p.x < shape[0] - 3 && p.y < shape[1] - 3;
      if (c.band == band && inside) {
        EXPECT_TRUE(listed.count({c.visit, c.detector})) << path;
      }
      if (listed.count({c.visit, c.detector})) {
        EXPECT_EQ(c.band, band);
        covered.insert({c.visit, c.detector});
      }
    }
    for (const auto& l : listed) {
      EXPECT_TRUE(std::any_of(calexps.begin(), calexps.end(),
                              [&](const Calexp& c) { return c.visit == l.first && c.detector == l.second; }));
    }
    // Pixels are finite where covered, NaN with NO_DATA elsewhere.
    const auto e = image::read_exposure(path);
    long finite = 0;
    for (size_t k = 0; k < e.image.pixels.size(); ++k) {
      if (std::isfinite(e.image.pixels[k])) {
        ++finite;
      } else {
        EXPECT_NE(e.mask.pixels[k] & image::mask_bit(image::MaskPlane::no_data), 0);
      }
    }
    EXPECT_GT(finite, 0);
  }
  EXPECT_EQ(covered.size(), calexps.size()) << "every calexp feeds some coadd";
}

// The mean measured PSF FWHM of each visit's calexps, by band.
std::map<std::string, std::map<long long, double>> visit_seeing(const fs::path& survey) {
  std::map<std::string, std::map<long long, std::pair<double, int>>> sums;
  for (const auto& path : with_suffix(survey, "calexp", ".fits")) {
    auto f = fits::File::open(path);
    auto& s = sums[*f.read_string("BAND")][*f.read_int("VISIT")];
    s.first += *f.read_double("PSFFWHM");
    s.second += 1;
  }
  std::map<std::string, std::map<long long, double>> out;
  for (const auto& [band, visits] : sums) {
    for (const auto& [visit, s] : visits) out[band][visit] = s.first / s.second;
  }
  return out;
}

// Three visits in each of two bands; the templates take the two of each
// band with the smallest PSF FWHM.
sim::SurveyConfig template_config() {
  auto c = tiny_config();
  c.visits = 6;
  c.detectors = 1;
  c.bands = "gr";
  c.template_visits = 2;
  return c;
}

TEST(SurveyTemplates, AreCoaddsOfTheBestSeeingVisitsOnly) {
  const fs::path dir = tmp_dir("templates");
  const Cleanup clean{dir};
  const auto summary = sim::simulate(template_config(), dir);
  const auto seeing = visit_seeing(dir);
  ASSERT_EQ(seeing.size(), 2U);

  const auto templates = with_suffix(dir, "goodSeeingCoadd", ".fits");
  ASSERT_FALSE(templates.empty());
  EXPECT_EQ(summary.templates, templates.size());
  std::map<std::string, std::set<long long>> used;  // visits in the INPUTS of a band's templates
  for (const auto& path : templates) {
    auto f = fits::File::open(path);
    EXPECT_EQ(f.read_string("DSTYPE"), "goodSeeingCoadd");
    const auto band = *f.read_string("BAND");
    const auto tract = *f.read_int("TRACT");
    auto patch = *f.read_string("PATCH");
    std::replace(patch.begin(), patch.end(), ',', '_');
    const std::string name = fmt::format("goodSeeingCoadd_{}_t{}_p{}.fits", band, tract, patch);
    EXPECT_EQ(fs::relative(path, dir), fs::path("goodSeeingCoadd") / band / fmt::format("t{}", tract) / name);

    // The deepCoadd of the same patch: the same cards, planes and WCS.
    const fs::path deep = dir / "deepCoadd" / band / fmt::format("t{}", tract) /
                          fmt::format("deepCoadd_{}_t{}_p{}.fits", band, tract, patch);
    ASSERT_TRUE(fs::exists(deep)) << deep;
    auto d = fits::File::open(deep);
    for (const char* key : {"INSTRUME", "TELESCOP", "OBJECT", "FILTER", "SKYMAP", "PATCH", "TIMESYS", "MJD-BEG",
                            "MJD-END", "NINPUTS", "EXPTIME", "PSFFWHM", "MAGZERO", "BGSUB", "SWVER"}) {
      EXPECT_TRUE(f.has_key(key)) << key;
    }
    EXPECT_EQ(f.read_string("PATCH"), d.read_string("PATCH"));
    EXPECT_LE(*f.read_int("NINPUTS"), *d.read_int("NINPUTS"));
    for (const char* hdu : {"IMAGE", "MASK", "VARIANCE"}) {
      ASSERT_TRUE(f.move_to_named_hdu(hdu)) << hdu;
      ASSERT_TRUE(d.move_to_named_hdu(hdu)) << hdu;
      EXPECT_EQ(f.image_shape(), d.image_shape());
      EXPECT_EQ(f.read_string("BUNIT").value_or("?"), d.read_string("BUNIT").value_or("?")) << hdu;
      const auto fw = wcs::Wcs::from_fits(f), dw = wcs::Wcs::from_fits(d);
      for (const wcs::PixelPoint p : {wcs::PixelPoint{0.0, 0.0}, wcs::PixelPoint{321.0, 123.0}}) {
        const auto a = fw.pixel_to_sky(p), b = dw.pixel_to_sky(p);
        EXPECT_EQ(a.ra, b.ra) << hdu;
        EXPECT_EQ(a.dec, b.dec) << hdu;
      }
    }

    ASSERT_TRUE(f.move_to_named_hdu("INPUTS"));
    for (const auto v : f.read_int_column("VISIT")) used[band].insert(v);
    // Read by ingest as a goodSeeingCoadd.
    EXPECT_EQ(repo::read_dataset_metadata(path, {}).type, repo::DatasetType::goodSeeingCoadd);
  }

  for (const auto& [band, visits] : seeing) {
    ASSERT_EQ(visits.size(), 3U) << band;
    const auto& chosen = used[band];
    EXPECT_EQ(chosen.size(), 2U) << band;
    // Every template visit sees at least as well as every other visit.
    for (const auto& [visit, fwhm] : visits) {
      std::cout << band << " visit " << visit << ": PSF FWHM " << fwhm << (chosen.count(visit) ? " (template)" : "")
                << "\n";
      if (chosen.count(visit)) continue;
      for (const auto t : chosen) EXPECT_LE(visits.at(t), fwhm + 1e-3) << band << " " << t << " vs " << visit;
    }
  }
}

TEST(SurveyTemplates, NoneWithZeroTemplateVisitsOrWithoutCoadds) {
  const fs::path dir = tmp_dir("no_templates");
  const Cleanup clean{dir};
  auto config = template_config();
  config.visits = 2;
  config.template_visits = 0;
  auto summary = sim::simulate(config, dir / "zero");
  EXPECT_GT(summary.coadds, 0U);
  EXPECT_EQ(summary.templates, 0U);
  EXPECT_FALSE(fs::exists(dir / "zero" / "goodSeeingCoadd"));

  config.template_visits = 2;
  config.write_coadds = false;
  summary = sim::simulate(config, dir / "no_coadds");
  EXPECT_EQ(summary.coadds, 0U);
  EXPECT_EQ(summary.templates, 0U);
  EXPECT_FALSE(fs::exists(dir / "no_coadds" / "goodSeeingCoadd"));

  config.template_visits = -1;
  EXPECT_THROW(sim::simulate(config, dir / "bad"), std::invalid_argument);
}

TEST(SurveyHeadersOnly, IsFastAndSizedRight) {
  sim::SurveyConfig config;
  config.visits = 20;
  config.detectors = 9;
  config.detector_width = config.detector_height = 4096;
  config.headers_only = true;
  config.seed = 3;
  const fs::path dir = tmp_dir("headers_only");
  const Cleanup clean{dir};
  const auto t0 = std::chrono::steady_clock::now();
  const auto summary = sim::simulate(config, dir);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // 180 raws + 180 calexps + 9 biases + 27 flats, no pixels, no coadds;
  // the weather and visit summary of the R-EFD.
  EXPECT_EQ(summary.files_written, 398U);
  EXPECT_EQ(summary.coadds, 0U);
  EXPECT_EQ(summary.templates, 0U);
  EXPECT_FALSE(fs::exists(dir / "deepCoadd"));
  EXPECT_FALSE(fs::exists(dir / "goodSeeingCoadd"));
  EXPECT_LT(seconds, 20.0);
  EXPECT_LT(summary.bytes_written, 396U * 60'000U);  // headers only: a few FITS blocks each
  std::cout << "headers-only survey: " << summary.files_written << " files in " << seconds << " s\n";
  for (const char* folder : {"raw", "calexp"}) {
    const auto files = with_suffix(dir, folder, ".fits");
    ASSERT_EQ(files.size(), 180U);
    const auto rec = repo::read_dataset_metadata(files.front(), {});
    EXPECT_EQ(rec.width, 4096);
    EXPECT_EQ(rec.height, 4096);
    ASSERT_TRUE(rec.footprint);
    EXPECT_TRUE(rec.psf_fwhm || rec.type == repo::DatasetType::raw);
  }
  const auto flats = with_suffix(dir, "calib/flat", ".fits");
  EXPECT_EQ(flats.size(), 27U);
  EXPECT_EQ(repo::read_dataset_metadata(flats.front(), {}).type, repo::DatasetType::flat);
}

TEST(SurveyConfig, RejectsUnusableConfigurations) {
  const fs::path dir = tmp_dir("bad");
  const Cleanup clean{dir};
  sim::SurveyConfig c;
  c.headers_only = true;
  c.bands = "gx";
  EXPECT_THROW(sim::simulate(c, dir), std::invalid_argument);
  c.bands = "g";
  c.detectors = 10;
  EXPECT_THROW(sim::simulate(c, dir), std::invalid_argument);
  c.detectors = 1;
  c.visits = 0;
  EXPECT_THROW(sim::simulate(c, dir), std::invalid_argument);
  c.visits = 1;
  c.patch_size = 150;
  EXPECT_THROW(sim::simulate(c, dir), std::invalid_argument);
}

}  // namespace
