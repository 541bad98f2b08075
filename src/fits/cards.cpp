#include "fits/cards.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <type_traits>

#include "fits/header_text.hpp"

namespace pixserve::fits {
namespace {

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// The content of the first quoted FITS string in text ('' unescaped, trailing blanks dropped).
std::string quoted_content(std::string_view text) {
  const auto q = text.find('\'');
  if (q == std::string_view::npos) return {};
  std::string out;
  for (size_t i = q + 1; i < text.size(); ++i) {
    if (text[i] == '\'') {
      if (i + 1 < text.size() && text[i + 1] == '\'') {
        out += '\'';
        ++i;
        continue;
      }
      break;
    }
    out += text[i];
  }
  return rtrim(out);
}

// Keywords that describe the HDU's structure, compression, checksums or
// WCS: they are rewritten for the cutout (or by cfitsio), never copied.
bool is_managed_keyword(std::string_view key) {
  static constexpr std::string_view exact[] = {
      "SIMPLE", "XTENSION", "BITPIX",  "NAXIS",   "EXTEND",   "PCOUNT",   "GCOUNT",  "EXTNAME", "EXTVER",
      "EXTLEVEL", "BZERO",  "BSCALE",  "BLANK",   "CHECKSUM", "DATASUM",  "END",     "TFIELDS", "THEAP",
      "DATE",   "INHERIT",  "WCSAXES", "RADESYS", "RADECSYS", "EQUINOX",  "EPOCH",   "LONPOLE", "LATPOLE",
      "WCSNAME", "A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER", "A_DMAX",  "B_DMAX",  "LTM1_1",  "LTM1_2",
      "LTM2_1", "LTM2_2",   "LTV1",    "LTV2",    "MJDREF",   "CONTINUE"};
  for (auto e : exact) {
    if (key == e) return true;
  }
  auto starts = [&](std::string_view p) { return key.substr(0, p.size()) == p; };
  auto rest_is = [&](size_t from, auto pred) {
    if (from >= key.size()) return false;
    for (size_t i = from; i < key.size(); ++i) {
      if (!pred(key[i])) return false;
    }
    return true;
  };
  auto wcs_tail = [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '_' || std::isupper(static_cast<unsigned char>(ch)); };
  // Compression keywords (ZIMAGE, ZNAXIS1, ZCMPTYPE, ZQUANTIZ, ...) and table columns.
  if (starts("Z") || starts("TTYPE") || starts("TFORM") || starts("TUNIT") || starts("TDIM")) return true;
  if (starts("NAXIS")) return true;
  // WCS, including alternate descriptions (CRPIX1A, ...), and SIP (A_1_2, ...).
  for (std::string_view p : {"CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CRDER", "CSYER", "CNAME"}) {
    if (starts(p) && rest_is(p.size(), wcs_tail)) return true;
  }
  for (std::string_view p : {"CD", "PC", "PV", "PS"}) {
    if (starts(p) && key.size() > p.size() && std::isdigit(static_cast<unsigned char>(key[p.size()])) &&
        key.find('_') != std::string_view::npos && rest_is(p.size(), wcs_tail)) {
      return true;
    }
  }
  for (std::string_view p : {"A_", "B_", "AP_", "BP_"}) {
    if (starts(p) && rest_is(p.size(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '_'; })) {
      return true;
    }
  }
  for (std::string_view p : {"WCSAXES", "RADESYS", "EQUINOX", "LONPOLE", "LATPOLE", "WCSNAME"}) {
    if (starts(p) && key.size() == p.size() + 1) return true;  // alternate WCS letter
  }
  return false;
}

// cfitsio writes these two COMMENT cards into every new primary HDU itself.
bool is_boilerplate_comment(std::string_view text) {
  return text.find("FITS (Flexible Image Transport System) format is") != std::string_view::npos ||
         text.find("and Astrophysics', volume 376, page 35") != std::string_view::npos;
}

std::optional<CardValue> parse_number_or_bool(std::string v) {
  if (v == "T") return CardValue(true);
  if (v == "F") return CardValue(false);
  long long i = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
  if (ec == std::errc() && ptr == v.data() + v.size()) return CardValue(i);
  std::replace(v.begin(), v.end(), 'D', 'E');
  std::replace(v.begin(), v.end(), 'd', 'e');
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0') return std::nullopt;  // complex or junk: not copied
  return CardValue(d);
}

// Splits the value field of a card (after "= ") into value text (quotes
// kept for strings) and comment.
std::pair<std::string, std::string> split_value(std::string_view field) {
  size_t i = field.find_first_not_of(' ');
  if (i == std::string_view::npos) return {};
  size_t end = i;
  if (field[i] == '\'') {
    for (end = i + 1; end < field.size(); ++end) {
      if (field[end] == '\'') {
        if (end + 1 < field.size() && field[end + 1] == '\'') {
          ++end;
          continue;
        }
        ++end;
        break;
      }
    }
  }
  const auto slash = field.find('/', end);
  const std::string value = trim_blanks(field.substr(i, (slash == std::string_view::npos ? field.size() : slash) - i));
  const std::string comment = slash == std::string_view::npos ? "" : trim_blanks(field.substr(slash + 1));
  return {value, comment};
}

}  // namespace

// The copyable cards of a header (80-character records): everything but
// structure, compression and WCS.
std::vector<TypedCard> copyable_cards(const std::string& records, int nkeys) {
  std::vector<TypedCard> out;
  bool continuing = false;  // the previous card is a long string to be continued
  for (int i = 0; i < nkeys && static_cast<size_t>(i + 1) * 80 <= records.size(); ++i) {
    const std::string_view rec(records.data() + static_cast<size_t>(i) * 80, 80);
    std::string key = trim_blanks(rec.substr(0, 8));
    // Where the value starts: column 11, or after the '=' of a HIERARCH card
    // (cfitsio writes keywords longer than 8 characters, e.g. MP_NO_DATA, so).
    size_t value_at = rec.substr(8, 2) == "= " ? 10 : std::string_view::npos;
    if (key == "HIERARCH") {
      const auto eq = rec.find('=', 8);
      key = trim_blanks(rec.substr(8, eq == std::string_view::npos ? 72 : eq - 8));
      value_at = eq == std::string_view::npos ? eq : eq + 1;
    }
    if (key == "CONTINUE") {
      if (continuing) {
        auto& s = std::get<std::string>(out.back().value);
        s.pop_back();  // the '&' that announced this card
        s += quoted_content(rec.substr(8));
        continuing = !s.empty() && s.back() == '&';
      }
      continue;
    }
    continuing = false;
    if (key.empty()) continue;
    if (key == "COMMENT" || key == "HISTORY") {
      std::string text = rtrim(std::string(rec.substr(8)));
      if (key == "COMMENT") {
        if (!is_boilerplate_comment(text)) out.push_back({key, Commentary{std::move(text)}, {}});
      } else {
        out.push_back({key, History{std::move(text)}, {}});
      }
      continue;
    }
    if (is_managed_keyword(key) || value_at == std::string_view::npos) continue;
    auto [value, comment] = split_value(rec.substr(value_at));
    if (value.empty()) continue;  // undefined value
    if (value.front() == '\'') {
      std::string s = quoted_content(value);
      continuing = !s.empty() && s.back() == '&';
      out.push_back({key, std::move(s), std::move(comment)});
      continue;
    }
    if (auto v = parse_number_or_bool(value)) out.push_back({key, std::move(*v), std::move(comment)});
  }
  return out;
}

void write_cards(KeywordWriter& out, const std::vector<TypedCard>& cards) {
  for (const auto& c : cards) {
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            out.write_bool(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, long long>) {
            out.write_int(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, double>) {
            out.write_double(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, std::string>) {
            out.write_string(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, Commentary>) {
            out.write_comment(v.text);
          } else {
            out.write_history(v.text);
          }
        },
        c.value);
  }
}

std::optional<double> card_number(const std::vector<TypedCard>& cards, std::string_view key) {
  for (const auto& c : cards) {
    if (c.keyword != key) continue;
    if (const auto* d = std::get_if<double>(&c.value)) return *d;
    if (const auto* i = std::get_if<long long>(&c.value)) return static_cast<double>(*i);
  }
  return std::nullopt;
}

std::optional<std::string> card_string(const std::vector<TypedCard>& cards, std::string_view key) {
  for (const auto& c : cards) {
    if (c.keyword != key) continue;
    if (const auto* s = std::get_if<std::string>(&c.value)) return *s;
  }
  return std::nullopt;
}

std::string image_header_records(File& file, int& nkeys) {
  std::string all = file.stored_header_records(nkeys);
  const auto key_of = [&](int i) {
    std::string_view key(all.data() + static_cast<std::size_t>(i) * 80, 8);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    return key;
  };
  bool compressed = false;
  for (int i = 0; i < nkeys && !compressed; ++i) compressed = key_of(i) == "ZIMAGE";
  if (!compressed) return all;
  std::string kept;
  int n = 0;
  for (int i = 0; i < nkeys; ++i) {
    const std::string_view key = key_of(i);
    if (key == "XTENSION" || key == "BITPIX" || key.starts_with("NAXIS") || key == "PCOUNT" || key == "GCOUNT" ||
        key == "TFIELDS" || key.starts_with("TTYPE") || key.starts_with("TFORM") || key.starts_with("Z")) {
      continue;
    }
    kept.append(all, static_cast<std::size_t>(i) * 80, 80);
    ++n;
  }
  nkeys = n;
  return kept;
}

}  // namespace pixserve::fits
