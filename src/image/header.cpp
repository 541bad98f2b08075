#include "image/header.hpp"

#include <algorithm>
#include <type_traits>

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

std::optional<double> card_number(const HeaderCards& cards, std::string_view keyword) {
  const CardValue* v = cards.find(keyword);
  if (v == nullptr) return std::nullopt;
  if (const auto* d = std::get_if<double>(v)) return *d;
  if (const auto* i = std::get_if<long long>(v)) return static_cast<double>(*i);
  return std::nullopt;
}

HeaderCards read_metadata_cards(fits::File& file) {
  int nkeys = 0;
  const std::string records = fits::image_header_records(file, nkeys);
  HeaderCards cards;
  for (auto& card : fits::copyable_cards(records, nkeys)) {
    std::visit(
        [&](auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (!std::is_same_v<V, fits::Commentary> && !std::is_same_v<V, fits::History>) {
            cards.set_value(card.keyword, CardValue(std::move(v)), card.comment);
          }
        },
        card.value);
  }
  return cards;
}

}  // namespace pixserve::image
