// Header cards copied from one FITS file into another, typed so that they
// are written back as what they were (a string stays a string, an integer
// an integer), with long CONTINUE strings joined, COMMENT and HISTORY kept,
// and the cards that describe the HDU's structure, compression, checksums
// or WCS left out: the writer of the new HDU makes those itself. The cutout
// engine copies a source's metadata into every cutout this way.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fits/fits.hpp"

namespace pixserve::fits {

struct Commentary {
  std::string text;
};
struct History {
  std::string text;
};
using CardValue = std::variant<bool, long long, double, std::string, Commentary, History>;

struct TypedCard {
  std::string keyword;
  CardValue value;
  std::string comment;
};

// The copyable cards of a header given as nkeys 80-character records.
std::vector<TypedCard> copyable_cards(const std::string& records, int nkeys);

// The records of the current HDU as stored, except that a tile-compressed
// image leaves out its table and compression keywords (XTENSION, BITPIX,
// NAXISn, PCOUNT, GCOUNT, TFIELDS, TTYPEn, TFORMn, Z*): what is left, the
// metadata and the WCS, is what the image's own header says. Nothing is
// decompressed, unlike File::header_records, which builds the whole image
// in memory to present it (64 MB cleared for a 4k x 4k float plane, far
// too slow for a stamp).
std::string image_header_records(File& file, int& nkeys);

// Writes the cards into the current HDU of `out` (or a header in memory), in order.
void write_cards(KeywordWriter& out, const std::vector<TypedCard>& cards);

// The first card named `key`, as a number (integer or real) or as a string.
std::optional<double> card_number(const std::vector<TypedCard>& cards, std::string_view key);
std::optional<std::string> card_string(const std::vector<TypedCard>& cards, std::string_view key);

}  // namespace pixserve::fits
