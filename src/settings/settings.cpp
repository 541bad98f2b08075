#include "settings/settings.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <locale>
#include <sstream>

namespace pixserve::settings {

std::uint64_t parse_integer(std::string_view text, std::uint64_t max) {
  // Digits only: no sign, no exponent, no 0x, so that what the file says is
  // what the server uses; 19 digits always fit in 64 bits.
  const bool digits = !text.empty() && text.size() <= 19 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  const std::uint64_t value = digits ? std::stoull(std::string(text)) : 0;
  if (!digits || value > max) {
    throw ValueError("expected an integer from 0 to " + std::to_string(max) + ", got '" + std::string(text) + "'");
  }
  return value;
}

bool parse_boolean(std::string_view text) {
  if (text != "true" && text != "false") throw ValueError("expected true or false, got '" + std::string(text) + "'");
  return text == "true";
}

std::chrono::milliseconds parse_seconds(std::string_view text) {
  double s = 0;
  std::istringstream in{std::string(text)};
  in.imbue(std::locale::classic());
  in >> s;
  // At most 1e7 s (116 days): anything longer is a typo, and the value
  // stays far from the limits of the clocks it is added to.
  if (in.fail() || !in.eof() || !std::isfinite(s) || s <= 0 || s > 1e7) {
    throw ValueError("expected a positive number of seconds, got '" + std::string(text) + "'");
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
}

double parse_number(std::string_view text, double min, double max) {
  double value = 0;
  std::istringstream in{std::string(text)};
  in.imbue(std::locale::classic());
  in >> value;
  if (text.empty() || in.fail() || !in.eof() || !std::isfinite(value) || value < min || value > max) {
    throw ValueError("expected a number from " + show_number(min) + " to " + show_number(max) + ", got '" +
                     std::string(text) + "'");
  }
  return value;
}

std::string show_number(double value) {
  // The shortest text that reads back as the same double.
  char text[32];
  const auto end = std::to_chars(text, text + sizeof text, value).ptr;
  return std::string(text, end);
}

std::string show_seconds(std::chrono::milliseconds value) {
  const auto ms = value.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000);
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ms) / 1000.0);
  std::string out = text;
  while (out.back() == '0') out.pop_back();
  return out;
}

std::string show_text(std::string_view text) {
  // Plain only for what YAML cannot read as anything but this string: no
  // indicator first, no ": " or " #", and none of the words it reads as null.
  const auto plain_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("._/@+-:").find(c) != std::string_view::npos;
  };
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), plain_char) &&
                     std::string_view("-:@").find(text.front()) == std::string_view::npos && text.back() != ':' &&
                     text != "null" && text != "Null" && text != "NULL";
  if (plain) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string show_list(const std::vector<std::string>& values) {
  std::string out = "[";
  for (const auto& v : values) out += (out.size() > 1 ? ", " : "") + show_text(v);
  return out + "]";
}

}  // namespace pixserve::settings
