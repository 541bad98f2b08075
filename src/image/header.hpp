// Typed header keywords collected in memory before a file is written, so one
// function can describe (say) an observation's metadata once and several
// files (raw, calexp, their headers-only variants) can carry it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fits/fits.hpp"

namespace pixserve::image {

using CardValue = std::variant<bool, long long, double, std::string>;

struct Card {
  std::string keyword;
  CardValue value;
  std::string comment;
};

// An ordered list of keywords; setting a keyword again replaces its value in
// place, so the written order is the order of first mention.
class HeaderCards {
 public:
  // One overload per value type, so every argument matches exactly (a
  // double never turns into an integer card, nor a bool into a number).
  HeaderCards& set(std::string_view keyword, bool value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(value), comment);
  }
  HeaderCards& set(std::string_view keyword, int value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(static_cast<long long>(value)), comment);
  }
  HeaderCards& set(std::string_view keyword, long value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(static_cast<long long>(value)), comment);
  }
  HeaderCards& set(std::string_view keyword, long long value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(value), comment);
  }
  HeaderCards& set(std::string_view keyword, double value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(value), comment);
  }
  HeaderCards& set(std::string_view keyword, const char* value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(std::string(value)), comment);
  }
  HeaderCards& set(std::string_view keyword, std::string value, std::string_view comment = {}) {
    return set_value(keyword, CardValue(std::move(value)), comment);
  }
  HeaderCards& set_value(std::string_view keyword, CardValue value, std::string_view comment = {});
  HeaderCards& append(const HeaderCards& other);

  const CardValue* find(std::string_view keyword) const;

  const std::vector<Card>& cards() const noexcept { return cards_; }
  // Writes (updates) every card into the current HDU of file.
  void write_to(fits::File& file) const;

 private:
  std::vector<Card> cards_;
};

// The value of a numeric card (integer or real); nullopt when absent or not a number.
std::optional<double> card_number(const HeaderCards& cards, std::string_view keyword);

// The keywords of the current HDU of file that a derived file may carry
// (fits::copyable_cards: no structural or checksum cards), commentary and
// history left out. Reading them from a full file or from a header-only copy
// written from the same cards gives the same list.
HeaderCards read_metadata_cards(fits::File& file);

}  // namespace pixserve::image
