#include "image/header.hpp"

#include <algorithm>

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
  for (const auto& c : cards_) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            file.write_bool(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<T, long long>) {
            file.write_int(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<T, double>) {
            file.write_double(c.keyword, v, c.comment);
          } else {
            file.write_string(c.keyword, v, c.comment);
          }
        },
        c.value);
  }
}

}  // namespace pixserve::image
