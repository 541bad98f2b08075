// fits::HeaderText: a header built in memory has the bytes cfitsio writes
// through fits::File for the same calls (structural cards, strings short and
// long, integers, reals, logicals, comments, HIERARCH keywords, headers over
// several blocks, reserved header room), and refuses what it would write
// differently.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>

#include "fits/fits.hpp"
#include "fits/header_text.hpp"
#include "test_scratch.hpp"

namespace fs = std::filesystem;
using namespace pixserve::fits;

namespace {

std::string written_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Writes the same cards through File and through HeaderText: a primary
// header, then a w x h image extension of zero floats; the file must be the
// two headers and the padded pixels.
void expect_same_bytes(const std::string& name, long w, long h, int reserve,
                       const std::function<void(KeywordWriter&)>& primary_cards,
                       const std::function<void(KeywordWriter&)>& image_cards) {
  const fs::path path = pixserve::testing::test_scratch_file(name);
  {
    auto f = File::create(path);
    primary_cards(f);
    f.append_image(Image<float>(w, h, 0.0F), {.extname = "IMAGE", .header_reserve = reserve});
    image_cards(f);
    f.close();
  }
  auto primary = HeaderText::primary();
  primary_cards(primary);
  auto image = HeaderText::image(-32, w, h, "IMAGE", reserve);
  image_cards(image);
  const std::size_t data = static_cast<std::size_t>(w * h) * 4;
  const std::string expected =
      primary.bytes() + image.bytes() + std::string((data + 2879) / 2880 * 2880, '\0');
  const std::string actual = written_bytes(path);
  ASSERT_EQ(actual.size(), expected.size()) << name;
  for (std::size_t i = 0; i < actual.size(); i += 80) {
    ASSERT_EQ(actual.substr(i, 80), expected.substr(i, 80)) << name << " at byte " << i;
  }
}

void many_cards(KeywordWriter& out) {
  out.write_string("EMPTY", "");
  out.write_string("SHORT", "r", "a band");
  out.write_string("EIGHT", "12345678");
  out.write_string("LEADING", "  spaced value ", "blanks kept");
  out.write_string("S68", std::string(68, 'a'), "just fits");
  out.write_string("S69", std::string(69, 'b'), "just continued");
  out.write_string("S135", std::string(135, 'c'));
  out.write_string("S136", std::string(136, 'd'), "two full pieces");
  out.write_string("S300", std::string(300, 'e'), std::string(90, 'f'));
  out.write_string("S150C", std::string(150, 'j'), "short comment");
  out.write_string("S100C", std::string(100, 'k'), std::string(50, 'l'));
  out.write_string("S120C", std::string(120, 'm'), std::string(20, 'n'));
  out.write_string("S90C", std::string(90, 'm'), std::string(30, 'n'));
  out.write_string("LONG_KEYWORD_NAME", std::string(90, 'o'), "a long keyword with a long string");
  out.write_int("ZERO", 0);
  out.write_int("NEG", -42, "negative");
  out.write_int("BIG", 9007199254740993LL, "beyond doubles");
  out.write_double("PI", 3.141592653589793, "pi");
  out.write_double("TINY", 1.5e-300);
  out.write_double("HUGE", -2.5e+300, "large");
  out.write_double("WHOLE", 42.0);
  out.write_bool("YES", true, "logical");
  out.write_bool("NO", false);
  out.write_string("MP_NO_DATA", "x");
  out.write_int("MP_DETECTED_NEGATIVE", 6, "negative source pixel");
  out.write_double("HIERARCH_REAL_VALUE", 0.25, "a long keyword with a real");
  out.write_string("DATE-OBS", "2025-11-21T02:43:33.159", std::string(120, 'g'));
  out.write_comment("a comment");
  out.write_comment(std::string(150, 'h'));
  out.write_comment("");
  out.write_history(std::string(71, 'i'));
  for (int i = 0; i < 60; ++i) out.write_int("N" + std::to_string(i), i * 7, "one of many");
}

void few_cards(KeywordWriter& out) {
  out.write_string("ORIGIN", "pixserve SODA", "cutout service");
  out.write_int("EXTVER", 3, "cutout number within this file");
}

TEST(FitsHeaderText, MatchesFileForEveryKindOfCard) {
  expect_same_bytes("header-text-many.fits", 7, 5, 0, few_cards, many_cards);
  expect_same_bytes("header-text-primary.fits", 3, 3, 0, many_cards, few_cards);
}

TEST(FitsHeaderText, MatchesFileAcrossBlockBoundaries) {
  for (int n : {0, 28, 29, 30, 64, 65, 66, 101}) {
    expect_same_bytes(
        "header-text-blocks.fits", 2, 2, 0, [](KeywordWriter&) {},
        [n](KeywordWriter& out) {
          for (int i = 0; i < n; ++i) out.write_int("K" + std::to_string(i), i);
        });
  }
}

TEST(FitsHeaderText, MatchesFileWithReservedRoom) {
  for (int reserve : {1, 20, 28, 29, 100, 250}) {
    for (int n : {0, 5, 40, 120}) {
      expect_same_bytes(
          "header-text-reserve.fits", 3, 2, reserve, [](KeywordWriter&) {},
          [n](KeywordWriter& out) {
            for (int i = 0; i < n; ++i) out.write_double("R" + std::to_string(i), 0.5 * i, "reserved");
          });
    }
  }
}

TEST(FitsHeaderText, RefusesWhatItWouldWriteDifferently) {
  auto h = HeaderText::image(-32, 4, 4, "IMAGE");
  h.write_int("ONCE", 1);
  EXPECT_THROW(h.write_int("ONCE", 2), UnsupportedCard);
  EXPECT_THROW(h.write_string("EXTNAME", "AGAIN"), UnsupportedCard);
  EXPECT_THROW(h.write_string("QUOTE", "o'brian"), UnsupportedCard);
  EXPECT_THROW(h.write_string("lower", "x"), UnsupportedCard);
  EXPECT_THROW(h.write_string("CTRL", "a\tb"), UnsupportedCard);
  EXPECT_THROW(h.write_double("NAN", std::numeric_limits<double>::quiet_NaN()), UnsupportedCard);
  EXPECT_THROW(HeaderText::image(20, 4, 4, "IMAGE"), UnsupportedCard);
}

}  // namespace
