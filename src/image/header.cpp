#include "image/header.hpp"

#include <algorithm>

#include "fits/cards.hpp"

namespace pixserve::image {

HeaderCards& HeaderCards::set_value(std::string_view keyword, CardValue value, std::string_view comment) {
  auto it = std::find_if(cards_.begin(), cards_.end(), [&](const Card& c) { return c.keyword == keyword; });
  if (it != cards_.end()) {
    it->value = std::move(value);
    if (!comment.empty()) it->comment = std::string(comment);
  } else {
    cards_.push_back(Card{std::string(keyword), std::move(value), std::string(comment)});
  }
  return *this;
}

HeaderCards& HeaderCards::append(const HeaderCards& other) {
  for (const auto& c : other.cards_) set_value(c.keyword, c.value, c.comment);
  return *this;
}

const CardValue* HeaderCards::find(std::string_view keyword) const {
  auto it = std::find_if(cards_.begin(), cards_.end(), [&](const Card& c) { return c.keyword == keyword; });
  return it == cards_.end() ? nullptr : &it->value;
}

void HeaderCards::write_to(fits::File& file) const {
  std::vector<fits::TypedCard> typed;
  typed.reserve(cards_.size());
  for (const auto& c : cards_) {
    typed.push_back({c.keyword, std::visit([](const auto& v) { return fits::CardValue(v); }, c.value), c.comment});
  }
  fits::write_cards(file, typed);
}

}  // namespace pixserve::image
