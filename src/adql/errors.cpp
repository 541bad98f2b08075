#include "adql/errors.hpp"

#include <fmt/format.h>

namespace pixserve::adql {

AdqlError::AdqlError(Position pos, const std::string& message)
    : std::runtime_error(fmt::format("line {}, column {}: {}", pos.line, pos.column, message)),
      pos_(pos),
      message_(message) {}

}  // namespace pixserve::adql
