// Unit tests of pixserve::fits: image round trips for every pixel type,
// subsets (also of tile-compressed HDUs), keywords, tables, errors.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "fits/fits.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve::fits;

namespace {

fs::path tmp_path(const std::string& name) { return pixserve::testing::test_scratch_file(name); }

// A deterministic, non-trivial pattern covering a range of values of T.
template <typename T>
Image<T> pattern(long w, long h) {
  Image<T> img(w, h);
  for (long y = 0; y < h; ++y) {
    for (long x = 0; x < w; ++x) {
      if constexpr (std::is_floating_point_v<T>) {
        img.at(x, y) = static_cast<T>(std::sin(0.37 * x) * 100.0 + std::cos(0.21 * y) * 10.0 + 0.001 * x * y);
      } else {
        // Spread over the type's range (wrapping through negative values for
        // signed types): multiply as unsigned 64-bit and keep the low bits.
        const std::uint64_t v = (static_cast<std::uint64_t>(x) * 0x9E3779B97F4A7C15ULL) ^
                                (static_cast<std::uint64_t>(y) * 0xC2B2AE3D27D4EB4FULL);
        img.at(x, y) = static_cast<T>(v >> (64 - 8 * sizeof(T)));
      }
    }
  }
  return img;
}

// ImageWriteOptions with every field given (-Wextra dislikes partial
// designated initializers).
ImageWriteOptions opts(std::string extname, Compression c = Compression::none, float q = 0.0F,
                       std::vector<long> tile = {}) {
  ImageWriteOptions o;
  o.extname = std::move(extname);
  o.compression = c;
  o.quantize_level = q;
  o.tile_shape = std::move(tile);
  return o;
}

template <typename T>
void expect_equal(const Image<T>& a, const Image<T>& b) {
  ASSERT_EQ(a.width, b.width);
  ASSERT_EQ(a.height, b.height);
  ASSERT_EQ(a.pixels.size(), b.pixels.size());
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(a.pixels[i]) && std::isnan(b.pixels[i])) continue;
    }
    ASSERT_EQ(a.pixels[i], b.pixels[i]) << "pixel " << i;
  }
}

template <typename T>
Image<T> crop(const Image<T>& img, const PixelBox& b) {
  Image<T> out(b.width, b.height);
  for (long y = 0; y < b.height; ++y)
    for (long x = 0; x < b.width; ++x) out.at(x, y) = img.at(b.x0 + x, b.y0 + y);
  return out;
}

}  // namespace

template <typename T>
class FitsPixelTypes : public ::testing::Test {};
using PixelTypes = ::testing::Types<float, double, std::int8_t, std::uint8_t, std::int16_t, std::uint16_t,
                                    std::int32_t, std::uint32_t, std::int64_t>;
TYPED_TEST_SUITE(FitsPixelTypes, PixelTypes);

TYPED_TEST(FitsPixelTypes, RoundTripWholeAndSubset) {
  using T = TypeParam;
  const auto path = tmp_path(std::string("roundtrip_") + typeid(T).name() + ".fits");
  const auto img = pattern<T>(37, 23);
  {
    auto f = File::create(path);
    f.write_primary_image(img);
    f.append_image(img, opts("SECOND", Compression::none, 0.0F, {}));
    f.close();
  }
  auto f = File::open(path);
  EXPECT_EQ(f.hdu_count(), 2);
  expect_equal(f.read_image<T>(), img);
  EXPECT_EQ(f.image_shape(), (std::vector<long>{37, 23}));
  ASSERT_TRUE(f.move_to_named_hdu("SECOND"));
  expect_equal(f.read_image<T>(), img);
  const PixelBox box{5, 3, 11, 7};
  expect_equal(f.read_subset<T>(box), crop(img, box));
  // Single pixel and single row boxes.
  expect_equal(f.read_subset<T>({36, 22, 1, 1}), crop(img, {36, 22, 1, 1}));
  expect_equal(f.read_subset<T>({0, 10, 37, 1}), crop(img, {0, 10, 37, 1}));
}

TEST(FitsIo, EquivalentBitpix) {
  const auto path = tmp_path("bitpix.fits");
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(4, 4));
    f.append_image(pattern<std::uint16_t>(4, 4));
    f.append_image(pattern<std::int32_t>(4, 4));
    f.append_image(pattern<std::uint8_t>(4, 4));
    f.append_image(pattern<std::int64_t>(4, 4));
    f.append_image(pattern<double>(4, 4));
  }
  auto f = File::open(path);
  const int expected[] = {8, -32, 20, 32, 8, 64, -64};  // 20 = USHORT_IMG (BITPIX 16 + BZERO)
  for (int hdu = 1; hdu <= 7; ++hdu) {
    f.move_to_hdu(hdu);
    EXPECT_EQ(f.image_bitpix(), expected[hdu - 1]) << "HDU " << hdu;
  }
  f.move_to_hdu(1);
  EXPECT_TRUE(f.image_shape().empty());
}

TEST(FitsIo, ErrorsNameTheirFileOnceEvenWhenCfitsioCutsItIntoPieces) {
  // cfitsio repeats a long path in 80-column message pieces; a caller that
  // hides server paths replaces the one at the start, so no piece may stay.
  const auto dir = pixserve::testing::test_scratch_dir() / std::string(70, 'd') / ".upload-2945-d61ed209c5f1ed20";
  std::filesystem::create_directories(dir);
  const auto path = dir / "junk.fits";
  std::ofstream(path) << "this is not a FITS file, just some text long enough to be read";
  try {
    static_cast<void>(File::open(path));
    FAIL() << "opened a text file";
  } catch (const FitsError& e) {
    std::string what = e.what();
    ASSERT_EQ(what.rfind(path.string(), 0), 0u) << what;
    what.erase(0, path.string().size());
    EXPECT_EQ(what.find("dddddd"), std::string::npos) << what;
    EXPECT_EQ(what.find("5f1ed20"), std::string::npos) << what;
    EXPECT_EQ(what.find("junk.fits"), std::string::npos) << what;
    EXPECT_NE(what.find("FITS"), std::string::npos) << what;  // the reason is kept
  }
}

TEST(FitsIo, CreateTruncatesExistingFile) {
  const auto path = tmp_path("truncate.fits");
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(8, 8));
    f.append_image(pattern<float>(8, 8));
  }
  {
    auto f = File::create(path);
    f.write_string("ONLY", "primary");
  }
  auto f = File::open(path);
  EXPECT_EQ(f.hdu_count(), 1);
  EXPECT_EQ(f.read_string("ONLY"), "primary");
}

TEST(FitsIo, CompressedRoundTrips) {
  const auto path = tmp_path("compressed.fits");
  const auto i32 = pattern<std::int32_t>(100, 60);
  const auto i16 = pattern<std::int16_t>(100, 60);
  const auto u16 = pattern<std::uint16_t>(100, 60);
  const auto u8 = pattern<std::uint8_t>(100, 60);
  auto f32 = pattern<float>(100, 60);
  f32.at(3, 4) = std::numeric_limits<float>::quiet_NaN();  // blanks survive compression
  {
    auto f = File::create(path);
    f.append_image(i32, opts("RICE", Compression::rice, 0.0F, {32, 16}));
    f.append_image(i16, opts("GZIP", Compression::gzip, 0.0F, {}));
    f.append_image(i32, opts("HCOMP", Compression::hcompress, 0.0F, {100, 20}));
    f.append_image(f32, opts("FLOSSLESS", Compression::gzip, 0.0F, {}));
    f.append_image(f32, opts("FRICE0", Compression::rice, 0.0F, {}));  // lossless -> GZIP_2
    f.append_image(f32, opts("FLOSSY", Compression::rice, 16.0F, {50, 10}));
    f.append_image(f32, opts("PLAIN", Compression::none, 0.0F, {}));  // compression was reset
    f.append_image(u16, opts("U16", Compression::rice, 0.0F, {}));
    f.append_image(u8, opts("U8", Compression::gzip, 0.0F, {}));
    f.close();
  }
  auto f = File::open(path);
  EXPECT_EQ(f.hdu_count(), 10);
  const PixelBox box{31, 15, 40, 20};  // straddles tile boundaries
  ASSERT_TRUE(f.move_to_named_hdu("U16"));
  EXPECT_EQ(f.image_bitpix(), 20);
  expect_equal(f.read_image<std::uint16_t>(), u16);
  expect_equal(f.read_subset<std::uint16_t>(box), crop(u16, box));
  ASSERT_TRUE(f.move_to_named_hdu("U8"));
  expect_equal(f.read_subset<std::uint8_t>(box), crop(u8, box));
  for (const char* name : {"RICE", "HCOMP"}) {
    ASSERT_TRUE(f.move_to_named_hdu(name)) << name;
    EXPECT_TRUE(f.current_is_image());
    EXPECT_EQ(f.image_shape(), (std::vector<long>{100, 60}));
    EXPECT_EQ(f.image_bitpix(), 32);
    expect_equal(f.read_image<std::int32_t>(), i32);
    expect_equal(f.read_subset<std::int32_t>(box), crop(i32, box));
  }
  ASSERT_TRUE(f.move_to_named_hdu("GZIP"));
  expect_equal(f.read_image<std::int16_t>(), i16);
  expect_equal(f.read_subset<std::int16_t>(box), crop(i16, box));
  for (const char* name : {"FLOSSLESS", "FRICE0", "PLAIN"}) {
    ASSERT_TRUE(f.move_to_named_hdu(name)) << name;
    const auto back = f.read_image<float>();
    ASSERT_EQ(back.pixels.size(), f32.pixels.size());
    for (size_t i = 0; i < back.pixels.size(); ++i) {
      if (std::isnan(f32.pixels[i])) {
        EXPECT_TRUE(std::isnan(back.pixels[i]));
      } else {
        ASSERT_EQ(back.pixels[i], f32.pixels[i]) << name << " pixel " << i;
      }
    }
  }
  // FLOSSY follows losslessly compressed float HDUs: this also covers the
  // cfitsio 4.2 stale-quantize-level workaround in read_subset.
  // Lossy: quantized to (noise / 16); the smooth pattern has tiny noise so the
  // error stays far below the value range.
  ASSERT_TRUE(f.move_to_named_hdu("FLOSSY"));
  EXPECT_TRUE(f.current_is_image());
  EXPECT_EQ(f.image_bitpix(), -32);
  const auto lossy = f.read_image<float>();
  const auto lossy_box = f.read_subset<float>(box);
  double max_err = 0.0;
  bool differs = false;
  for (size_t i = 0; i < lossy.pixels.size(); ++i) {
    if (std::isnan(f32.pixels[i])) {
      EXPECT_TRUE(std::isnan(lossy.pixels[i]));
      continue;
    }
    max_err = std::max(max_err, std::abs(double(lossy.pixels[i]) - f32.pixels[i]));
    differs = differs || lossy.pixels[i] != f32.pixels[i];
  }
  EXPECT_LT(max_err, 5.0);
  EXPECT_TRUE(differs) << "quantization should be lossy";
  // A subset of a compressed HDU equals the same pixels of the whole read.
  expect_equal(lossy_box, crop(lossy, box));
  // Plain HDU after compressed ones is not compressed: data as an IMAGE_HDU.
  ASSERT_TRUE(f.move_to_named_hdu("PLAIN"));
  EXPECT_TRUE(f.current_is_image());
}

TEST(FitsIo, CompressedHeaderRecordsShowImageView) {
  const auto path = tmp_path("compressed_header.fits");
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(20, 10), opts("IMAGE", Compression::rice, 8.0F, {}));
    f.write_double("CRVAL1", 12.5);
  }
  auto f = File::open(path);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  int nkeys = 0;
  const auto records = f.header_records(nkeys);
  EXPECT_EQ(records.size(), static_cast<size_t>(nkeys) * 80);
  EXPECT_NE(records.find("NAXIS1  =                   20"), std::string::npos) << records;
  EXPECT_EQ(f.read_double("CRVAL1"), 12.5);
}

TEST(FitsIo, NamedHduLookup) {
  const auto path = tmp_path("named.fits");
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(3, 3), opts("IMAGE", Compression::none, 0.0F, {}));
    f.append_image(pattern<std::int32_t>(3, 3), opts("MASK", Compression::none, 0.0F, {}));
    f.append_int_table("INPUTS", {"VISIT"}, {{1, 2}});
  }
  auto f = File::open(path);
  EXPECT_EQ(f.current_hdu(), 1);
  ASSERT_TRUE(f.move_to_named_hdu("MASK"));
  EXPECT_EQ(f.current_hdu(), 3);
  EXPECT_FALSE(f.move_to_named_hdu("VARIANCE"));
  EXPECT_EQ(f.current_hdu(), 3);  // no move
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.current_hdu(), 2);
  ASSERT_TRUE(f.move_to_named_hdu("INPUTS"));
  EXPECT_FALSE(f.current_is_image());
  f.move_to_hdu(1);
  EXPECT_TRUE(f.current_is_image());  // a header-only primary is still an image HDU
  EXPECT_THROW(f.move_to_hdu(9), FitsError);
}

TEST(FitsIo, Keywords) {
  const auto path = tmp_path("keywords.fits");
  const std::string long_text(150, 'x');
  {
    auto f = File::create(path);
    f.write_string("DSTYPE", "calexp", "dataset type");
    f.write_string("QUOTE", "it's");
    f.write_string("LONGSTR", long_text);
    f.write_double("EXPTIME", 30.0, "seconds");
    f.write_double("TINY", 1.2345678901234567e-13);
    f.write_double("THIRD", 1.0 / 3.0);
    f.write_int("VISIT", 1234567890123LL);
    f.write_int("NEG", -5);
    f.write_bool("FLAG", true);
    f.write_bool("OFF", false);
    f.write_comment("a comment");
    f.write_history("a history line");
    f.write_int("GONE", 1);
    f.delete_key("GONE");
    f.delete_key("NEVER");  // absent: no error
    f.write_double("EXPTIME", 45.5);  // update in place
  }
  auto f = File::open(path);
  EXPECT_EQ(f.read_string("DSTYPE"), "calexp");
  EXPECT_EQ(f.read_string("QUOTE"), "it's");
  EXPECT_EQ(f.read_string("LONGSTR"), long_text);
  EXPECT_EQ(f.read_double("EXPTIME"), 45.5);
  EXPECT_EQ(f.read_double("TINY"), 1.2345678901234567e-13);  // bit-exact
  EXPECT_EQ(f.read_double("THIRD"), 1.0 / 3.0);
  EXPECT_EQ(f.read_int("VISIT"), 1234567890123LL);
  EXPECT_EQ(f.read_int("NEG"), -5);
  EXPECT_EQ(f.read_double("VISIT"), 1234567890123.0);  // ints read as doubles
  EXPECT_EQ(f.read_bool("FLAG"), true);
  EXPECT_EQ(f.read_bool("OFF"), false);
  EXPECT_TRUE(f.has_key("DSTYPE"));
  EXPECT_FALSE(f.has_key("GONE"));
  // Missing -> nullopt.
  EXPECT_EQ(f.read_string("MISSING"), std::nullopt);
  EXPECT_EQ(f.read_double("MISSING"), std::nullopt);
  EXPECT_EQ(f.read_int("GONE"), std::nullopt);
  EXPECT_EQ(f.read_bool("MISSING"), std::nullopt);
  // Wrong type -> FitsError naming the file.
  EXPECT_THROW(f.read_double("DSTYPE"), FitsError);
  EXPECT_THROW(f.read_int("EXPTIME"), FitsError);
  EXPECT_THROW(f.read_int("DSTYPE"), FitsError);
  EXPECT_THROW(f.read_bool("VISIT"), FitsError);
  EXPECT_THROW(f.read_string("VISIT"), FitsError);
  try {
    f.read_double("DSTYPE");
  } catch (const FitsError& e) {
    EXPECT_EQ(e.file(), path);
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos);
  }
  // Writing to a read-only file fails with a FitsError.
  EXPECT_THROW(f.write_int("X", 1), FitsError);

  int nkeys = 0;
  const auto records = f.header_records(nkeys);
  EXPECT_GT(nkeys, 10);
  EXPECT_EQ(records.size(), static_cast<size_t>(nkeys) * 80);
  EXPECT_EQ(records.substr(0, 30), "SIMPLE  =                    T");

  const auto cards = f.header_cards();
  EXPECT_EQ(cards.size(), static_cast<size_t>(nkeys));
  bool saw_dstype = false, saw_comment = false, saw_history = false;
  for (const auto& c : cards) {
    if (c.keyword == "DSTYPE") {
      saw_dstype = true;
      EXPECT_EQ(c.value, "calexp");
      EXPECT_EQ(c.comment, "dataset type");
    }
    if (c.keyword == "COMMENT" && c.value.find("a comment") != std::string::npos) saw_comment = true;
    if (c.keyword == "HISTORY" && c.value.find("a history line") != std::string::npos) saw_history = true;
  }
  EXPECT_TRUE(saw_dstype);
  EXPECT_TRUE(saw_comment);
  EXPECT_TRUE(saw_history);
}

TEST(FitsIo, IntTables) {
  const auto path = tmp_path("table.fits");
  const std::vector<long long> visits{1, 2, 9000000000LL, -4};
  const std::vector<long long> detectors{10, 11, 12, 13};
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(4, 4), opts("IMAGE", Compression::none, 0.0F, {}));
    f.append_int_table("INPUTS", {"VISIT", "DETECTOR"}, {visits, detectors});
    EXPECT_EQ(f.current_hdu(), 3);
    f.append_int_table("EMPTY", {"A"}, {{}});
    EXPECT_THROW(f.append_int_table("BAD", {"A", "B"}, {{1}, {1, 2}}), FitsError);
  }
  auto f = File::open(path);
  ASSERT_TRUE(f.move_to_named_hdu("INPUTS"));
  EXPECT_EQ(f.read_int_column("VISIT"), visits);
  EXPECT_EQ(f.read_int_column("detector"), detectors);  // case-insensitive
  EXPECT_THROW(f.read_int_column("NOPE"), FitsError);
  ASSERT_TRUE(f.move_to_named_hdu("EMPTY"));
  EXPECT_TRUE(f.read_int_column("A").empty());
}

TEST(FitsIo, OpenErrorsNameTheFile) {
  const auto missing = tmp_path("does_not_exist.fits");
  fs::remove(missing);
  try {
    File::open(missing);
    FAIL() << "expected FitsError";
  } catch (const FitsError& e) {
    EXPECT_EQ(e.file(), missing);
    EXPECT_NE(std::string(e.what()).find("does_not_exist.fits"), std::string::npos);
  }
  // A truncated file: a valid header whose data unit is cut short.
  const auto good = tmp_path("to_truncate.fits");
  {
    auto f = File::create(good);
    f.write_primary_image(pattern<float>(200, 200));
  }
  const auto truncated = tmp_path("truncated.fits");
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(truncated, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), 2880 + 1000);
  }
  EXPECT_THROW(
      {
        auto f = File::open(truncated);
        f.read_image<float>();
      },
      FitsError);
  // Garbage that is not FITS at all.
  const auto corrupt = tmp_path("corrupt.fits");
  {
    std::ofstream out(corrupt, std::ios::binary | std::ios::trunc);
    out << std::string(5000, 'z');
  }
  try {
    File::open(corrupt);
    FAIL() << "expected FitsError";
  } catch (const FitsError& e) {
    EXPECT_EQ(e.file(), corrupt);
    EXPECT_NE(std::string(e.what()).find("corrupt.fits"), std::string::npos);
  }
  // Subset outside the image.
  auto f = File::open(good);
  EXPECT_THROW(f.read_subset<float>({190, 0, 20, 5}), FitsError);
}

TEST(FitsIo, MoveSemanticsAndClose) {
  const auto path = tmp_path("move.fits");
  auto a = File::create(path);
  a.write_int("A", 1);
  File b = std::move(a);
  EXPECT_EQ(b.path(), path);
  b.write_int("B", 2);
  EXPECT_THROW(a.write_int("C", 3), FitsError);  // NOLINT(bugprone-use-after-move): moved-from is closed
  auto c = File::create(tmp_path("move2.fits"));
  c = std::move(b);  // closes move2.fits, takes over move.fits
  c.write_int("C", 3);
  c.close();
  c.close();  // idempotent
  EXPECT_THROW(c.read_int("A"), FitsError);
  auto r = File::open(path);
  EXPECT_EQ(r.read_int("A"), 1);
  EXPECT_EQ(r.read_int("B"), 2);
  EXPECT_EQ(r.read_int("C"), 3);
  auto r2 = File::open(tmp_path("move2.fits"));  // was closed properly by the assignment
  EXPECT_EQ(r2.hdu_count(), 1);
}

TEST(FitsIo, ReadWriteModeAppends) {
  const auto path = tmp_path("rw.fits");
  {
    auto f = File::create(path);
    f.append_image(pattern<float>(5, 5), opts("IMAGE", Compression::none, 0.0F, {}));
  }
  {
    auto f = File::open(path, OpenMode::read_write);
    ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
    f.write_string("BUNIT", "count");
    f.append_image(pattern<std::int32_t>(5, 5), opts("MASK", Compression::none, 0.0F, {}));
  }
  auto f = File::open(path);
  EXPECT_EQ(f.hdu_count(), 3);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.read_string("BUNIT"), "count");
}

namespace {

std::string file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A float plane with pixel-to-pixel noise (from a fixed LCG), so that lossy
// quantization and its dithering show in the compressed bytes.
Image<float> noisy(long w, long h) {
  Image<float> img = pattern<float>(w, h);
  std::uint64_t state = 12345;
  for (float& v : img.pixels) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v += static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ULL << 24) * 20.0 - 10.0);
  }
  return img;
}

ImageWriteOptions seeded(std::string extname, int seed) {
  ImageWriteOptions o = opts(std::move(extname), Compression::rice, 4.0F, {});
  o.dither_seed = seed;
  return o;
}

}  // namespace

TEST(FitsIo, DitherSeedMakesCompressionReproducible) {
  const auto img = noisy(64, 40);
  const auto write = [&](const fs::path& path, int seed) {
    auto f = File::create(path);
    f.write_string("OBJECT", "noise");
    f.append_image(img, seeded("IMAGE", seed));
    f.append_image(pattern<std::int32_t>(64, 40), seeded("MASK", seed));  // integers: no dither
    f.close();
  };
  const auto a = tmp_path("seed_a.fits"), b = tmp_path("seed_b.fits"), c = tmp_path("seed_c.fits");
  write(a, 17);
  write(b, 17);
  write(c, 18);
  EXPECT_EQ(file_bytes(a), file_bytes(b)) << "the same seed must give the same bytes";
  EXPECT_NE(file_bytes(a), file_bytes(c)) << "the seed should change the dither";
  auto f = File::open(a);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.read_int("ZDITHER0"), 17);
  const auto back = f.read_image<float>();
  double max_err = 0.0;
  for (size_t i = 0; i < back.pixels.size(); ++i)
    max_err = std::max(max_err, std::abs(double(back.pixels[i]) - img.pixels[i]));
  EXPECT_GT(max_err, 0.0);
  EXPECT_LT(max_err, 10.0);  // within a couple of steps of noise / q
  ASSERT_TRUE(f.move_to_named_hdu("MASK"));
  expect_equal(f.read_image<std::int32_t>(), pattern<std::int32_t>(64, 40));

  {
    auto bad = File::create(tmp_path("seed_bad.fits"));
    EXPECT_THROW(bad.append_image(img, seeded("IMAGE", 10001)), FitsError);
    EXPECT_THROW(bad.append_image(img, seeded("IMAGE", -1)), FitsError);
    bad.close();
  }
  EXPECT_EQ(File::open(tmp_path("seed_bad.fits")).hdu_count(), 1);  // nothing appended
}

TEST(FitsIo, HeaderOnlyHduRoundTrip) {
  const auto path = tmp_path("header_only.fits");
  {
    auto f = File::create(path);
    f.write_string("DSTYPE", "raw");
    f.append_header_hdu("AMP1");
    f.write_double("GAIN", 1.25, "[electron/adu]");
    f.write_string("DATASEC", "[1:10,1:20]");
    f.append_image(pattern<float>(4, 3), opts("IMAGE"));
    f.append_header_hdu("");  // no EXTNAME
    f.write_int("N", 3);
    f.close();
  }
  auto f = File::open(path);
  EXPECT_EQ(f.hdu_count(), 4);
  EXPECT_EQ(f.read_string("DSTYPE"), "raw");
  ASSERT_TRUE(f.move_to_named_hdu("AMP1"));
  EXPECT_EQ(f.current_hdu(), 2);
  EXPECT_TRUE(f.current_is_image());
  EXPECT_TRUE(f.image_shape().empty());
  EXPECT_EQ(f.read_double("GAIN"), 1.25);
  EXPECT_EQ(f.read_string("DATASEC"), "[1:10,1:20]");
  EXPECT_THROW(f.read_image<float>(), FitsError);
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  expect_equal(f.read_image<float>(), pattern<float>(4, 3));
  f.move_to_hdu(4);
  EXPECT_TRUE(f.current_is_image());
  EXPECT_TRUE(f.image_shape().empty());
  EXPECT_FALSE(f.has_key("EXTNAME"));
  EXPECT_EQ(f.read_int("N"), 3);
  EXPECT_THROW(f.append_header_hdu("MORE"), FitsError);  // read-only
}

TEST(FitsIo, CompressCopyIsReproducibleAndKeepsHeaders) {
  const auto in = tmp_path("to_compress.fits");
  const auto img = noisy(50, 30);
  {
    auto f = File::create(in);
    f.write_string("DSTYPE", "calexp");
    f.append_image(img, opts("IMAGE"));
    f.write_string("BUNIT", "electron");
    f.append_image(pattern<std::int32_t>(50, 30), opts("MASK"));
    f.append_header_hdu("EMPTY");
    f.write_int("KEPT", 1);
    f.append_image(img, opts("VARIANCE"));
    f.append_int_table("LIST", {"ID"}, {{1, 2, 3}});
    f.close();
  }
  CompressCopyOptions o;
  o.compression = Compression::rice;
  o.quantize_level = 4.0F;
  o.dither_seed = 9999;
  const auto a = tmp_path("compressed_a.fits.fz"), b = tmp_path("compressed_b.fits.fz");
  compress_copy(in, a, o);
  compress_copy(in, b, o);
  EXPECT_EQ(file_bytes(a), file_bytes(b)) << "the same seed must give the same bytes";
  compress_copy(in, b, o);  // truncates
  EXPECT_EQ(file_bytes(a), file_bytes(b));

  auto f = File::open(a);
  EXPECT_EQ(f.hdu_count(), 6);
  EXPECT_EQ(f.read_string("DSTYPE"), "calexp");
  EXPECT_TRUE(f.image_shape().empty());
  ASSERT_TRUE(f.move_to_named_hdu("IMAGE"));
  EXPECT_EQ(f.read_string("ZCMPTYPE"), "RICE_1");
  EXPECT_EQ(f.read_int("ZDITHER0"), 1 + (9999 - 1 + 2) % 10000);  // the seed, offset by the HDU number
  EXPECT_EQ(f.read_string("BUNIT"), "electron");
  EXPECT_EQ(f.image_shape(), (std::vector<long>{50, 30}));
  const auto back = f.read_image<float>();
  double max_err = 0.0;
  for (size_t i = 0; i < back.pixels.size(); ++i)
    max_err = std::max(max_err, std::abs(double(back.pixels[i]) - img.pixels[i]));
  EXPECT_GT(max_err, 0.0);
  EXPECT_LT(max_err, 10.0);
  ASSERT_TRUE(f.move_to_named_hdu("MASK"));
  expect_equal(f.read_image<std::int32_t>(), pattern<std::int32_t>(50, 30));  // lossless
  ASSERT_TRUE(f.move_to_named_hdu("EMPTY"));
  EXPECT_TRUE(f.current_is_image());
  EXPECT_TRUE(f.image_shape().empty());
  EXPECT_EQ(f.read_int("KEPT"), 1);
  ASSERT_TRUE(f.move_to_named_hdu("VARIANCE"));
  EXPECT_EQ(f.read_int("ZDITHER0"), 1 + (9999 - 1 + 5) % 10000);
  ASSERT_TRUE(f.move_to_named_hdu("LIST"));
  EXPECT_EQ(f.read_int_column("ID"), (std::vector<long long>{1, 2, 3}));

  o.dither_seed = 10001;
  EXPECT_THROW(compress_copy(in, b, o), FitsError);
  EXPECT_THROW(compress_copy(tmp_path("missing.fits"), b, CompressCopyOptions{}), FitsError);
}
