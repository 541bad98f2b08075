#include "fits/header_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "fits/cfitsio.hpp"

namespace pixserve::fits {

std::string trim_blanks(std::string_view s) {
  const auto b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(' ');
  return std::string(s.substr(b, e - b + 1));
}

std::string format_double(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  std::string s(buf, end);
  auto e = s.find('e');
  std::string mantissa = e == std::string::npos ? s : s.substr(0, e);
  std::string exponent = e == std::string::npos ? "" : "E" + s.substr(e + 1);
  if (mantissa.find('.') == std::string::npos) mantissa += ".0";
  return mantissa + exponent;
}

// ---------------------------------------------------------------- HeaderText

namespace {

constexpr std::size_t kCard = 80;
constexpr std::size_t kBlock = 2880;
// A single-card string value holds at most 68 characters (cfitsio's limit).
constexpr std::size_t kMaxCardString = 68;
// cfitsio splits COMMENT and HISTORY text into pieces of this many characters.
constexpr std::size_t kCommentPiece = 72;

bool keyword_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }

void require_keyword(std::string_view key) {
  if (key.empty() || !std::all_of(key.begin(), key.end(), keyword_char)) {
    throw UnsupportedCard("header text: keyword '" + std::string(key) + "' is not written in memory");
  }
}

// A string value in quotes, padded to at least 8 characters (cfitsio's
// ffs2c for a value without quotes, at most 68 characters).
std::string quoted(std::string_view value) {
  std::string out = "'";
  out += value;
  if (value.size() < 8) out.append(8 - value.size(), ' ');
  out += '\'';
  return out;
}

// cfitsio's card for a keyword, value text and comment (fits_make_key).
std::string make_card(std::string_view key, std::string value_text, std::string_view comment) {
  const std::string k(key), c(comment);
  char card[FLEN_CARD] = "";
  int status = 0;
  fits_make_key(k.c_str(), value_text.data(), c.c_str(), card, &status);
  if (status != 0) {
    detail::pop_error_stack();
    throw UnsupportedCard("header text: cfitsio cannot make a card of keyword " + k);
  }
  return card;
}

// The keyword a card sets: its first 8 columns, or the name of a HIERARCH card.
std::string_view card_keyword(std::string_view card) {
  std::string_view name = card.substr(0, 8);
  if (card.starts_with("HIERARCH ")) {
    const auto eq = card.find('=');
    name = card.substr(9, (eq == std::string_view::npos ? kCard : eq) - 9);
  }
  while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  return name;
}

}  // namespace

HeaderText HeaderText::primary() {
  HeaderText h;
  h.add_key("SIMPLE", "T", "file does conform to FITS standard");
  h.add_key("BITPIX", "8", "number of bits per data pixel");
  h.add_key("NAXIS", "0", "number of data axes");
  h.add_key("EXTEND", "T", "FITS dataset may contain extensions");
  h.add_card("COMMENT   FITS (Flexible Image Transport System) format is defined in 'Astronomy");
  h.add_card("COMMENT   and Astrophysics', volume 376, page 359; bibcode: 2001A&A...376..359H");
  return h;
}

HeaderText HeaderText::image(int bitpix, long width, long height, std::string_view extname, int header_reserve) {
  if (bitpix != 8 && bitpix != 16 && bitpix != 32 && bitpix != 64 && bitpix != -32 && bitpix != -64) {
    throw UnsupportedCard("header text: BITPIX " + std::to_string(bitpix) + " is not written in memory");
  }
  HeaderText h;
  h.add_key("XTENSION", quoted("IMAGE"), "IMAGE extension");
  h.add_key("BITPIX", std::to_string(bitpix), "number of bits per data pixel");
  h.add_key("NAXIS", "2", "number of data axes");
  h.add_key("NAXIS1", std::to_string(width), "length of data axis 1");
  h.add_key("NAXIS2", std::to_string(height), "length of data axis 2");
  h.add_key("PCOUNT", "0", "required keyword; must = 0");
  h.add_key("GCOUNT", "1", "required keyword; must = 1");
  if (header_reserve > 0) {
    // cfitsio's fits_set_hdrsize: the data start after room for this many
    // more cards than are written now.
    h.reserved_end_ = (h.cards_.size() + static_cast<std::size_t>(header_reserve) * kCard) / kBlock * kBlock + kBlock;
  }
  if (!extname.empty()) h.write_string("EXTNAME", extname);
  return h;
}

bool HeaderText::has_key(std::string_view key) const { return keys_.contains(std::string(key)); }

void HeaderText::add_card(std::string card) {
  // As cfitsio's ffprec: blank-padded to 80 columns; the keyword columns
  // hold only keyword characters followed by blanks, the rest printable ASCII.
  card.resize(kCard, ' ');
  const std::string_view name(card.data(), 8);
  const auto blank = name.find(' ');
  const bool name_ok = std::all_of(name.begin(), name.begin() + static_cast<std::ptrdiff_t>(std::min(blank, name.size())), keyword_char) &&
                       (blank == std::string_view::npos || name.find_first_not_of(' ', blank) == std::string_view::npos);
  const bool text_ok = std::all_of(card.begin() + 8, card.end(), [](char c) { return c >= ' ' && c <= '~'; });
  if (!name_ok || !text_ok) throw UnsupportedCard("header text: a card cfitsio would refuse: " + card.substr(0, 8));
  keys_.emplace(card_keyword(card));
  cards_ += card;
}

void HeaderText::add_key(std::string_view key, std::string value_text, std::string_view comment) {
  require_keyword(key);
  if (has_key(key)) throw UnsupportedCard("header text: keyword " + std::string(key) + " set twice");
  add_card(make_card(key, std::move(value_text), comment));
}

void HeaderText::write_string(std::string_view key, std::string_view value, std::string_view comment) {
  if (value.find('\'') != std::string_view::npos || value.find('\0') != std::string_view::npos) {
    throw UnsupportedCard("header text: a string value with a quote");
  }
  if (value.size() <= kMaxCardString) {
    add_key(key, quoted(value), comment);
    return;
  }
  // cfitsio's long-string convention (fits_update_key_longstr of a new
  // keyword): pieces ending in '&' continued on CONTINUE cards (pieces there
  // are not padded to 8 characters), each card with the comment where it
  // fits; the piece before the last is shortened when that leaves the last
  // card room for (up to 47 characters of) the comment.
  require_keyword(key);
  if (has_key(key)) throw UnsupportedCard("header text: keyword " + std::string(key) + " set twice");
  constexpr long kCommentKept = 47;
  const long comment_length = std::min<long>(static_cast<long>(comment.size()), kCommentKept);
  long remain = static_cast<long>(value.size());
  long piece = key.size() <= 8 ? static_cast<long>(kMaxCardString) : 80 - static_cast<long>(key.size()) - 5;
  std::size_t next = 0;
  bool continued = false, without_comment = false;
  while (remain > 0) {
    const std::string_view text = value.substr(std::min(next, value.size()), static_cast<std::size_t>(piece));
    std::string quoted_text = continued ? "'" + std::string(text) + "'" : quoted(text);
    if (remain > piece) {
      --piece;
      quoted_text[quoted_text.size() - 2] = '&';
    }
    std::string card;
    if (continued) {
      card = make_card("CONTINUE", std::move(quoted_text), without_comment ? std::string_view() : comment);
      card.replace(8, 2, "  ");
    } else {
      card = make_card(key, std::move(quoted_text), comment);
    }
    add_card(std::move(card));
    continued = true;
    remain -= piece;
    next += static_cast<std::size_t>(piece);
    without_comment = false;
    if (remain > 0) piece = static_cast<long>(kMaxCardString);
    if (comment_length > 0 && remain < 69 && remain + comment_length > 65 && piece > 18) {
      piece = remain - 15;
      without_comment = true;
    }
  }
}

void HeaderText::write_double(std::string_view key, double value, std::string_view comment) {
  if (!std::isfinite(value)) throw UnsupportedCard("header text: a real value that is not finite");
  add_key(key, format_double(value), comment);
}

void HeaderText::write_int(std::string_view key, long long value, std::string_view comment) {
  add_key(key, std::to_string(value), comment);
}

void HeaderText::write_bool(std::string_view key, bool value, std::string_view comment) {
  add_key(key, value ? "T" : "F", comment);
}

void HeaderText::write_comment(std::string_view text) {
  text = text.substr(0, text.find('\0'));
  for (std::size_t at = 0; at < text.size(); at += kCommentPiece) {
    add_card("COMMENT " + std::string(text.substr(at, kCommentPiece)));
  }
}

void HeaderText::write_history(std::string_view text) {
  text = text.substr(0, text.find('\0'));
  for (std::size_t at = 0; at < text.size(); at += kCommentPiece) {
    add_card("HISTORY " + std::string(text.substr(at, kCommentPiece)));
  }
}

void HeaderText::add_records(std::string_view records) {
  for (std::size_t at = 0; at < records.size(); at += kCard) add_card(std::string(records.substr(at, kCard)));
}

std::string HeaderText::bytes() const {
  // Blocks enough for the cards and END, or the reserved room if larger;
  // END follows the last card, or opens the last block when room is left
  // (as cfitsio places it).
  const std::size_t data = std::max(cards_.size() / kBlock * kBlock + kBlock, reserved_end_);
  std::string out = cards_;
  out.resize(data, ' ');
  out.replace(std::max(cards_.size(), data - kBlock), 3, "END");
  return out;
}

}  // namespace pixserve::fits
