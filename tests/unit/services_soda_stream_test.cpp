// Streamed SODA /sync FITS responses (services/soda_stream.hpp): for many
// requests the streamed bytes equal, byte for byte, the file the cutout
// engine writes with cfitsio (SodaEngine::write_fits): shapes inside and
// across image edges, pixel ranges, several IDs and shapes in one file,
// images of different sizes, planes large enough for reserved header room,
// float pixels cfitsio rewrites when reading (infinities, NaN payloads,
// negative zero, denormals), coadd cutouts assembled across patches, and
// requests with no pixels. Sources the stream cannot copy (tile-compressed
// planes) are left to the engine.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "services/soda.hpp"
#include "services/soda_params.hpp"
#include "services/soda_stream.hpp"
#include "soda_test_images.hpp"
#include "test_scratch.hpp"
#include "test_registry.hpp"

namespace fs = std::filesystem;

namespace pixserve::services {
namespace {

// A calexp-like file of w x h pixels on the grid with odd float values.
void write_odd_image(const fs::path& path, const wcs::Wcs& w, long width, long height, bool compressed,
                     bool quoted_card = false) {
  fits::Image<float> image(width, height), variance(width, height, 1.0F);
  fits::Image<std::int32_t> mask(width, height, 0);
  for (long y = 0; y < height; ++y) {
    for (long x = 0; x < width; ++x) {
      image.at(x, y) = grid_value(x, y);
      mask.at(x, y) = static_cast<std::int32_t>((x * 7 + y * 13) % 1000) - 500;
      variance.at(x, y) = 0.5F + static_cast<float>(x % 17);
    }
  }
  const float specials[] = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::bit_cast<float>(0x7FA00001u), std::bit_cast<float>(0xFFC00123u),
                            -0.0F, std::bit_cast<float>(0x00000005u), std::bit_cast<float>(0x80400000u),
                            std::numeric_limits<float>::quiet_NaN()};
  for (long i = 0; i < 8; ++i) {
    for (long k = 0; k < 5; ++k) {
      const long x = (11 + 23 * i + 5 * k) % width, y = (17 + 29 * i + 3 * k) % height;
      image.at(x, y) = specials[i];
      variance.at((x + 3) % width, y) = specials[(i + k) % 8];
    }
  }
  fs::create_directories(path.parent_path());
  auto f = fits::File::create(path);
  f.write_string("DSTYPE", "calexp");
  f.write_string("LONGTEXT", std::string(100, 'x'), "a long string (CONTINUE cards)");
  if (quoted_card) f.write_string("OBSERVER", "O'Brian", "a string with a quote");
  const fits::ImageWriteOptions o{.compression = compressed ? fits::Compression::rice : fits::Compression::none};
  auto with = [&](std::string name) {
    auto c = o;
    c.extname = std::move(name);
    return c;
  };
  f.append_image(image, with("IMAGE"));
  w.write_to(f);
  f.write_string("BUNIT", "nJy");
  f.append_image(mask, with("MASK"));
  w.write_to(f);
  f.write_int("MP_BAD", 0);
  f.append_image(variance, with("VARIANCE"));
  w.write_to(f);
  f.close();
}

struct SodaStreamFixture : ::testing::Test {
  pixserve::testing::ScratchDir scratch{"soda-stream"};
  std::shared_ptr<SharedRepository> repository;
  std::unique_ptr<SodaEngine> engine;

  // A coadd patch of tract 0 whose pixel (0, 0) is pixel (ox, oy) of patch 0,0.
  void add_patch(repo::Registry& reg, const fs::path& root, const std::string& id, const std::string& patch, long ox,
                 long oy, bool compressed = false) {
    add(reg, root, id, 200, 150, compressed, repo::DatasetType::deepCoadd, false, ox, oy, patch);
  }

  void add(repo::Registry& reg, const fs::path& root, const std::string& id, long width, long height, bool compressed,
           repo::DatasetType type = repo::DatasetType::calexp, bool quoted_card = false, long ox = 0, long oy = 0,
           const std::string& patch = "0,0") {
    const auto w = grid_wcs(100.0 - static_cast<double>(ox), 100.0 - static_cast<double>(oy));
    const std::string rel = "data/" + id + ".fits";
    write_odd_image(root / rel, w, width, height, compressed, quoted_card);
    const double ex = static_cast<double>(width) - 0.5, ey = static_cast<double>(height) - 0.5;
    const sky::Polygon fp(
        w.pixel_to_sky(std::vector<wcs::PixelPoint>{{-0.5, -0.5}, {ex, -0.5}, {ex, ey}, {-0.5, ey}}));
    auto r = record_for(type, id, rel, fp, width);
    r.height = height;
    if (type == repo::DatasetType::deepCoadd) {
      r.data_id.skymap = "sky";
      r.data_id.tract = 0;
      r.data_id.patch = patch;
    }
    reg.insert(r);
  }

  void SetUp() override {
    auto repo = repo::Repository::open_or_create(scratch.dir / "repo", pixserve::testing::test_repository_config({.name = "testrepo", .authority = "example.org"}));
    const auto root = scratch.dir / "repo";
    auto& reg = repo.registry();
    add(reg, root, "DR1.calexp.a", 200, 150, false);
    add(reg, root, "DR1.calexp.b", 123, 301, false);
    add(reg, root, "DR1.calexp.big", 700, 650, false);  // > 1 MiB a plane: reserved header room
    add(reg, root, "DR1.calexp.comp", 200, 150, true);
    add(reg, root, "DR1.deepCoadd.p", 200, 150, false, repo::DatasetType::deepCoadd);
    // Three more patches of 200 x 150 overlapping by 20 pixels; the fourth
    // of the 2 x 2 block is missing, so part of the block has no pixels.
    add_patch(reg, root, "DR1.deepCoadd.q", "1,0", 180, 0);
    add_patch(reg, root, "DR1.deepCoadd.r", "0,1", 0, 130);
    add(reg, root, "DR1.calexp.quote", 200, 150, false, repo::DatasetType::calexp, true);
    add(reg, root, "DR1.calexp.wide", 2100, 40, false);  // rows over 8 KiB apart: read one by one
    repository = std::make_shared<SharedRepository>(std::move(repo));
    engine = std::make_unique<SodaEngine>(repository, SodaLimits{});
  }

  static std::string circle(double x, double y, double r_pix) {
    const auto s = grid_wcs(100.0, 100.0).pixel_to_sky({x, y});
    return fmt::format("{} {} {}", s.ra, s.dec, r_pix * kScale);
  }

  SodaRequest request(const dali::RawParams& raw) {
    const auto d = soda_sync_declaration();
    return soda_request(dali::parse_params(d.params, raw, d.parse_options), engine->limits());
  }

  static std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  // Streams the request and compares with write_fits; false when it was not streamed.
  bool same_bytes(const dali::RawParams& raw) {
    const auto r = request(raw);
    const auto sources = engine->resolve(r);
    const auto file = scratch.dir / "engine.fits";
    const std::size_t count = engine->write_fits(r, sources, file);
    const auto stream = engine->stream_fits(r, sources);
    if (!stream) return false;
    EXPECT_EQ(stream->count, count);
    if (count == 0) {
      EXPECT_FALSE(fs::exists(file));
      return true;
    }
    std::string streamed;
    EXPECT_TRUE(stream->produce([&](std::string_view b) {
      streamed.append(b);
      return true;
    }));
    const std::string expected = slurp(file);
    EXPECT_EQ(stream->size, streamed.size());
    EXPECT_EQ(streamed.size(), expected.size());
    if (streamed != expected) {
      std::size_t i = 0;
      while (i < std::min(streamed.size(), expected.size()) && streamed[i] == expected[i]) ++i;
      ADD_FAILURE() << "streamed bytes differ from the engine's file from byte " << i << " (block " << i / 2880
                    << ")";
    }
    return true;
  }
};

TEST_F(SodaStreamFixture, StreamedBytesEqualTheEnginesFile) {
  const std::vector<dali::RawParams> requests = {
      {{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(50, 60, 5.4)}},
      {{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(2, 3, 25.4)}},      // clipped at the corner
      {{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(198, 149, 10)}},   // clipped at the far edges
      {{"ID", "DR1.calexp.a"}},                                      // the whole image
      {{"ID", "DR1.calexp.a"}, {"PIXEL", "[1:200,10:20]"}},          // full-width rows
      {{"ID", "DR1.calexp.a"}, {"PIXEL", "[3:7,*]"}},
      {{"ID", "DR1.calexp.a"}, {"PIXEL", "[150:400,140:400]"}},      // clipped ranges
      {{"ID", "DR1.calexp.a"}, {"PIXEL", "[10:60,10:60]"}, {"CIRCLE", circle(50, 50, 20)}},
      {{"ID", "DR1.calexp.a"}, {"ID", "DR1.calexp.b"}, {"ID", "DR1.calexp.a"},
       {"CIRCLE", circle(40, 40, 8)}, {"CIRCLE", circle(110, 290, 12)}, {"POS", "RANGE 0 360 -90 90"}},
      {{"ID", "DR1.calexp.b"}, {"CIRCLE", circle(180, 100, 10)}, {"CIRCLE", circle(60, 200, 30.2)}},  // one misses
      {{"ID", "DR1.calexp.big"}},                                    // reserved header room
      {{"ID", "DR1.calexp.big"}, {"PIXEL", "[100:650,20:600]"}},
      {{"ID", "DR1.calexp.big"}, {"ID", "DR1.calexp.a"}, {"CIRCLE", circle(300, 300, 200)}},
      {{"ID", "DR1.deepCoadd.p"}, {"PIXEL", "[5:30,5:30]"}},         // a coadd cut by pixels: one patch
      {{"ID", "DR1.calexp.wide"}, {"CIRCLE", circle(1000, 20, 8)}},  // rows far apart
      {{"ID", "DR1.calexp.wide"}, {"ID", "DR1.calexp.a"}, {"PIXEL", "[90:2050,3:30]"}},
      {{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(5000, 5000, 10)}},  // no pixels: no file
      {{"ID", "DR1.calexp.a"}, {"ID", "DR1.calexp.b"}, {"BAND", "0.1 0.2"}},  // rejected by BAND
  };
  for (const auto& raw : requests) {
    std::string what;
    for (const auto& [k, v] : raw) what += k + "=" + v + " ";
    SCOPED_TRACE(what);
    EXPECT_TRUE(same_bytes(raw));
  }
}

// Coadd cutouts across patches: each pixel from the patch in whose inner
// part it lies (diagonal borders at the corner of three patches), the fill
// value where no patch is, the patches' names in the header.
TEST_F(SodaStreamFixture, CoaddCutoutsAcrossPatchesAreStreamedAsTheEngineWritesThem) {
  const std::vector<dali::RawParams> requests = {
      {{"ID", "DR1.deepCoadd.p"}, {"CIRCLE", circle(50, 60, 5)}},              // inside one patch
      {{"ID", "DR1.deepCoadd.p"}, {"CIRCLE", circle(190, 140, 30)}},           // the corner of three, and the hole
      {{"ID", "DR1.deepCoadd.q"}, {"CIRCLE", circle(150, 100, 200)}},          // the whole block, clipped
      {{"ID", "DR1.deepCoadd.r"}, {"POLYGON", fmt::format("{} {} {} {} {} {}", grid_wcs(100, 100).pixel_to_sky({10, 120}).ra,
                                                              grid_wcs(100, 100).pixel_to_sky({10, 120}).dec,
                                                              grid_wcs(100, 100).pixel_to_sky({250, 125}).ra,
                                                              grid_wcs(100, 100).pixel_to_sky({250, 125}).dec,
                                                              grid_wcs(100, 100).pixel_to_sky({100, 260}).ra,
                                                              grid_wcs(100, 100).pixel_to_sky({100, 260}).dec)}},
      {{"ID", "DR1.deepCoadd.p"}, {"ID", "DR1.calexp.a"}, {"CIRCLE", circle(190, 140, 12)},
       {"CIRCLE", circle(20, 20, 6)}},                                          // shapes x IDs, with a calexp
      {{"ID", "DR1.deepCoadd.q"}, {"CIRCLE", circle(20, 20, 6)}},              // outside q: the cutout comes from p
      {{"ID", "DR1.deepCoadd.p"}, {"CIRCLE", circle(5000, 5000, 10)}},         // no pixels: no file
  };
  for (const auto& raw : requests) {
    std::string what;
    for (const auto& [k, v] : raw) what += k + "=" + v + " ";
    SCOPED_TRACE(what);
    EXPECT_TRUE(same_bytes(raw));
  }
  // The corner holds pixels of all three patches and fill values.
  const auto r = request({{"ID", "DR1.deepCoadd.p"}, {"CIRCLE", circle(190, 140, 30)}});
  const auto stream = engine->stream_fits(r, engine->resolve(r));
  ASSERT_TRUE(stream);
  std::string bytes;
  stream->produce([&](std::string_view b) {
    bytes.append(b);
    return true;
  });
  EXPECT_NE(bytes.find("PSPATCHS"), std::string::npos);
}

TEST_F(SodaStreamFixture, CompressedPlanesAreLeftToTheEngine) {
  EXPECT_FALSE(same_bytes({{"ID", "DR1.calexp.a"}, {"ID", "DR1.calexp.comp"}, {"CIRCLE", circle(50, 60, 5)}}));
}

TEST_F(SodaStreamFixture, HeaderCardsTheStreamDoesNotMakeAreLeftToTheEngine) {
  EXPECT_FALSE(same_bytes({{"ID", "DR1.calexp.quote"}, {"CIRCLE", circle(50, 60, 5)}}));
  EXPECT_TRUE(same_bytes({{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(50, 60, 5)}}));
}

TEST_F(SodaStreamFixture, AReplacedSourceFileIsReadAnew) {
  const dali::RawParams raw = {{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(50, 60, 8)}};
  EXPECT_TRUE(same_bytes(raw));
  EXPECT_TRUE(same_bytes(raw));  // from the kept description
  const auto r = request(raw);
  const auto file = repository->file_of(engine->resolve(r).front().record);
  write_odd_image(file, grid_wcs(101.0, 99.0), 180, 170, false);
  EXPECT_TRUE(same_bytes(raw));
}

TEST_F(SodaStreamFixture, ErrorsAreTheEnginesBeforeAnyByte) {
  const auto r = request({{"ID", "DR1.calexp.a"}, {"CIRCLE", circle(50, 60, 5)}});
  auto sources = engine->resolve(r);
  fs::remove(repository->file_of(sources.front().record));
  EXPECT_ANY_THROW(engine->stream_fits(r, sources));
}

TEST_F(SodaStreamFixture, StopsWhenTheSinkDoes) {
  const auto r = request({{"ID", "DR1.calexp.big"}});
  const auto stream = engine->stream_fits(r, engine->resolve(r));
  ASSERT_TRUE(stream && stream->count == 1);
  int calls = 0;
  EXPECT_FALSE(stream->produce([&](std::string_view) { return ++calls < 2; }));
  EXPECT_EQ(calls, 2);
}

TEST(SodaStreamRawHdus, FindsDataOffsetsAndPlainPlanes) {
  pixserve::testing::ScratchDir dir{"soda-stream-raw"};
  const auto path = dir.dir / "x.fits";
  write_odd_image(path, grid_wcs(1, 1), 30, 20, false);
  const SourceFile file(path);
  const auto hdus = raw_hdus(file);
  ASSERT_EQ(hdus.size(), 4u);
  EXPECT_TRUE(hdus[0].naxis.empty());
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_TRUE(hdus[i].plain);
    EXPECT_EQ(hdus[i].data_offset % 2880, 0u);
    EXPECT_EQ(hdus[i].naxis, (std::vector<long>{30, 20}));
    EXPECT_EQ(hdus[i].data_bytes, 30u * 20u * 4u);
  }
  EXPECT_EQ(hdus[1].bitpix, -32);
  EXPECT_EQ(hdus[2].bitpix, 32);
  const auto comp = dir.dir / "c.fits";
  write_odd_image(comp, grid_wcs(1, 1), 30, 20, true);
  const SourceFile cfile(comp);
  const auto chdus = raw_hdus(cfile);
  ASSERT_EQ(chdus.size(), 4u);
  EXPECT_FALSE(chdus[1].plain);
}

}  // namespace
}  // namespace pixserve::services
