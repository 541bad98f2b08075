#include "uws/job.hpp"

#include <sys/random.h>

#include <array>
#include <cerrno>
#include <system_error>

#include <fmt/format.h>

#include "http/headers.hpp"

namespace pixserve::uws {

namespace {

constexpr std::array<std::string_view, 10> kPhaseNames = {"PENDING", "QUEUED",  "EXECUTING", "COMPLETED", "ERROR",
                                                          "ABORTED", "UNKNOWN", "HELD",      "SUSPENDED", "ARCHIVED"};

constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::size_t kIdRandomBytes = 20;  // 160 bits -> 32 base32 characters
constexpr std::size_t kIdLength = kIdRandomBytes * 8 / 5;

bool is_safe_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool safe_component(std::string_view s, std::size_t max) noexcept {
  if (s.empty() || s.size() > max || s.front() == '.') return false;
  for (char c : s)
    if (!is_safe_char(c)) return false;
  return true;
}

// Reads `n` digits as a number; false when they are not all digits.
bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) noexcept {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string_view to_string(Phase phase) noexcept { return kPhaseNames[static_cast<std::size_t>(phase)]; }

std::optional<Phase> parse_phase(std::string_view text) noexcept {
  for (std::size_t i = 0; i < kPhaseNames.size(); ++i)
    if (http::iequals(text, kPhaseNames[i])) return static_cast<Phase>(i);
  return std::nullopt;
}

bool is_active(Phase phase) noexcept {
  return phase == Phase::pending || phase == Phase::queued || phase == Phase::executing;
}

bool is_final(Phase phase) noexcept {
  return phase == Phase::completed || phase == Phase::error || phase == Phase::aborted || phase == Phase::archived;
}

std::string_view to_string(ErrorType type) noexcept { return type == ErrorType::transient ? "transient" : "fatal"; }

Time now() noexcept { return std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now()); }

std::string format_time(Time t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd(day);
  const hh_mm_ss<milliseconds> hms(t - day);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count(), hms.subseconds().count());
}

std::optional<Time> parse_time(std::string_view s) noexcept {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return std::nullopt;
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 10;
  milliseconds fraction{0};
  if (pos < s.size() && s[pos] == 'T') {
    if (!digits(s, pos + 1, 2, h) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, mi))
      return std::nullopt;
    pos += 6;
    if (pos < s.size() && s[pos] == ':') {
      if (!digits(s, pos + 1, 2, sec)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && s[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        int scale = 100;
        int ms = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          ms += (s[pos] - '0') * scale;  // digits beyond milliseconds are truncated
          scale /= 10;
          ++pos;
        }
        if (pos == start) return std::nullopt;
        fraction = milliseconds{ms};
      }
    }
    // 24:00:00 and leap seconds are not worth the special cases here.
    if (h > 23 || mi > 59 || sec > 59) return std::nullopt;
  }
  minutes offset{0};
  if (pos < s.size()) {
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      ++pos;
    } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
      int oh = 0, om = 0;
      if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
      offset = hours{oh} + minutes{om};
      if (s[pos] == '-') offset = -offset;
      pos = s.size();
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  return Time{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{sec} + fraction - offset;
}

std::string new_job_id() {
  std::array<unsigned char, kIdRandomBytes> bytes{};
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    got += static_cast<std::size_t>(n);
  }
  std::string id;
  id.reserve(kIdLength);
  // 20 bytes = 160 bits = exactly 32 groups of 5 bits.
  std::uint64_t buffer = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      id.push_back(kBase32[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  return id;
}

bool valid_job_id(std::string_view id) noexcept {
  if (id.size() != kIdLength) return false;
  for (char c : id)
    if (kBase32.find(c) == std::string_view::npos) return false;
  return true;
}

bool valid_result_id(std::string_view id) noexcept { return safe_component(id, 64); }

bool valid_file_name(std::string_view name) noexcept { return safe_component(name, 128); }

std::optional<std::string> Job::parameter(std::string_view name) const {
  for (const auto& p : parameters)
    if (http::iequals(p.name, name)) return p.value;
  return std::nullopt;
}

std::vector<std::string> Job::parameter_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& p : parameters)
    if (http::iequals(p.name, name)) out.push_back(p.value);
  return out;
}

http::Parameters Job::http_parameters() const {
  http::Parameters out;
  for (const auto& p : parameters) out.add(p.name, p.value);
  return out;
}

const Result* Job::result(std::string_view result_id) const noexcept {
  for (const auto& r : results)
    if (r.id == result_id) return &r;
  return nullptr;
}

}  // namespace pixserve::uws
