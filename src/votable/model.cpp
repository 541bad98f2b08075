#include "votable/model.hpp"

#include <array>
#include <utility>

namespace pixserve::votable {

namespace {
constexpr std::array<std::pair<Datatype, std::string_view>, 9> datatype_names{{
    {Datatype::boolean, "boolean"},
    {Datatype::unsignedByte, "unsignedByte"},
    {Datatype::short_, "short"},
    {Datatype::int_, "int"},
    {Datatype::long_, "long"},
    {Datatype::char_, "char"},
    {Datatype::unicodeChar, "unicodeChar"},
    {Datatype::float_, "float"},
    {Datatype::double_, "double"},
}};
}  // namespace

std::string_view datatype_name(Datatype type) {
  for (const auto& [t, name] : datatype_names)
    if (t == type) return name;
  throw std::invalid_argument("votable: unknown Datatype");
}

std::optional<Datatype> parse_datatype(std::string_view name) {
  for (const auto& [t, n] : datatype_names)
    if (n == name) return t;
  return std::nullopt;
}

std::size_t element_size(Datatype type) {
  switch (type) {
    case Datatype::boolean:
    case Datatype::unsignedByte:
    case Datatype::char_: return 1;
    case Datatype::short_:
    case Datatype::unicodeChar: return 2;
    case Datatype::int_:
    case Datatype::float_: return 4;
    case Datatype::long_:
    case Datatype::double_: return 8;
  }
  throw std::invalid_argument("votable: unknown Datatype");
}

}  // namespace pixserve::votable
