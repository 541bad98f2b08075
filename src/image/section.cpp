#include "image/section.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace pixserve::image {
namespace {

// A strict little cursor: every character of the section must be accounted for.
class Cursor {
 public:
  explicit Cursor(std::string_view text) : text_(text) {}

  void skip_blanks() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  void expect(char c) {
    skip_blanks();
    if (pos_ >= text_.size() || text_[pos_] != c) fail(fmt::format("expected '{}'", c));
    ++pos_;
  }
  long number() {
    skip_blanks();
    long value = 0;
    const char* begin = text_.data() + pos_;
    const char* end = text_.data() + text_.size();
    // from_chars accepts a leading '-', which is then refused below as a
    // non-positive index; it never accepts '+', blanks or hex.
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec != std::errc() || ptr == begin) fail("expected a pixel index");
    if (value < 1) fail("pixel indices start at 1");
    pos_ += static_cast<size_t>(ptr - begin);
    return value;
  }
  void expect_end() {
    skip_blanks();
    if (pos_ != text_.size()) fail("unexpected text after ']'");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument(fmt::format("bad FITS section '{}': {} at position {}", text_, what, pos_ + 1));
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

fits::PixelBox Section::box() const noexcept {
  return fits::PixelBox{std::min(x1, x2) - 1, std::min(y1, y2) - 1, width(), height()};
}

std::string Section::str() const { return fmt::format("[{}:{},{}:{}]", x1, x2, y1, y2); }

Section parse_section(std::string_view text) {
  Cursor c(text);
  Section s;
  c.expect('[');
  s.x1 = c.number();
  c.expect(':');
  s.x2 = c.number();
  c.expect(',');
  s.y1 = c.number();
  c.expect(':');
  s.y2 = c.number();
  c.expect(']');
  c.expect_end();
  return s;
}

Section section_of(const fits::PixelBox& box, bool x_reversed, bool y_reversed) {
  if (box.width <= 0 || box.height <= 0 || box.x0 < 0 || box.y0 < 0) {
    throw std::invalid_argument(
        fmt::format("section_of: box {}+{}, {}+{} is empty or negative", box.x0, box.width, box.y0, box.height));
  }
  const long xa = box.x0 + 1, xb = box.x0 + box.width, ya = box.y0 + 1, yb = box.y0 + box.height;
  return Section{x_reversed ? xb : xa, x_reversed ? xa : xb, y_reversed ? yb : ya, y_reversed ? ya : yb};
}

}  // namespace pixserve::image
