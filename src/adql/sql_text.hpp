// Text forms shared by the ADQL printer and the SQL emitters: quoting of
// identifiers and strings, and numbers printed so that they read back as
// the same value and the same kind (a real always has a '.' or an exponent).
#pragma once

#include <string>
#include <string_view>

namespace pixserve::adql {

std::string quote_identifier(std::string_view name);  // "a""b"
std::string quote_string(std::string_view value);     // 'it''s'
std::string format_real(double v);                    // shortest round-trip form, 1.0 not 1

// ASCII case mapping (keywords and function names; data is never folded).
std::string ascii_lower(std::string_view s);
std::string ascii_upper(std::string_view s);

}  // namespace pixserve::adql
