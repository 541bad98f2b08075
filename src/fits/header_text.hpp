// The text of FITS header values, shared by the header writer (fits.cpp),
// the card reader (cards.cpp) and the WCS records (wcs/); and HeaderText, a
// header built in memory card by card, for writers that send FITS bytes
// themselves (SODA's streamed cutouts).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>

#include "fits/fits.hpp"

namespace pixserve::fits {

// s without its leading and trailing blanks.
std::string trim_blanks(std::string_view s);

// Shortest text that reads back as exactly the same double, in a form FITS
// accepts as a real value (always a decimal point, upper-case exponent).
std::string format_double(double value);

// A card HeaderText cannot write exactly as File would (see there).
class UnsupportedCard : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The header of one HDU, built in memory with the bytes File writes for the
// same calls: the structural cards of File::create (primary) or of
// File::append_image without compression (image extension), then each
// keyword as File's writers add it (cfitsio's own card layout, long strings
// continued on CONTINUE cards, COMMENT and HISTORY text split as cfitsio
// splits it), then END, padded to whole 2880-byte blocks, with the header
// room ImageWriteOptions::header_reserve asks for.
//
// It covers what derived headers written anew need, not everything File
// does: setting a keyword a second time (File updates it in place), a string
// value with a quote, a keyword that is not upper-case letters, digits, '-'
// and '_', a character cfitsio refuses, or a non-finite real throw
// UnsupportedCard, and the caller writes the HDU with File instead (which
// then does, or fails, exactly as before).
class HeaderText final : public KeywordWriter {
 public:
  // The primary header of File::create: SIMPLE, BITPIX = 8, NAXIS = 0, EXTEND.
  static HeaderText primary();
  // An image extension of width x height pixels of `bitpix` (8, 16, 32, 64,
  // -32 or -64: stored as they are) with EXTNAME unless empty, as
  // File::append_image writes it with these options.
  static HeaderText image(int bitpix, long width, long height, std::string_view extname, int header_reserve = 0);

  void write_string(std::string_view key, std::string_view value, std::string_view comment = {}) override;
  void write_double(std::string_view key, double value, std::string_view comment = {}) override;
  void write_int(std::string_view key, long long value, std::string_view comment = {}) override;
  void write_bool(std::string_view key, bool value, std::string_view comment = {}) override;
  void write_comment(std::string_view text) override;
  void write_history(std::string_view text) override;

  // Whole 80-character cards as they stand (e.g. copied from another
  // header's records, HIERARCH ones included), checked as cfitsio checks a
  // card it is given; a last partial card is padded with blanks.
  void add_records(std::string_view records);

  // The whole header: cards, blank room, END, padding.
  std::string bytes() const;

 private:
  HeaderText() = default;
  void add_key(std::string_view key, std::string value_text, std::string_view comment);
  void add_card(std::string card);
  bool has_key(std::string_view key) const;

  std::string cards_;            // 80 characters each
  std::unordered_set<std::string> keys_;  // the keywords of cards_ (as card_keyword gives them)
  std::size_t reserved_end_ = 0;  // where the data would start given the reserved room (0: none)
};

}  // namespace pixserve::fits
