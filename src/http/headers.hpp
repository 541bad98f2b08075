// Small value types shared by the HTTP layer: ASCII case-insensitive
// comparison, an ordered header list, and the exception a handler throws to
// answer with a given status.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pixserve::http {

// HTTP field names and DALI parameter names compare ASCII case-insensitively;
// locale-aware comparisons would make "I" and "i" differ under a Turkish locale.
bool iequals(std::string_view a, std::string_view b) noexcept;
std::string ascii_lower(std::string_view s);
// Strips the optional whitespace (spaces and tabs, RFC 9110 OWS) around a
// field value or one of its list elements.
std::string_view trim_ows(std::string_view s) noexcept;

// Ordered list of (name, value) header fields; lookup ignores the case of the
// name, repeated fields are kept in order (e.g. several Set-Cookie).
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  void add(std::string name, std::string value);
  // Replaces every field of that name by one.
  void set(std::string name, std::string value);
  void erase(std::string_view name);

  bool has(std::string_view name) const noexcept;
  // The first field of that name.
  std::optional<std::string_view> get(std::string_view name) const;
  std::vector<std::string_view> get_all(std::string_view name) const;

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

// Thrown (by the request parser or by a handler) to answer with `status` and
// the message as a text/plain body. The message is shown to the client, so it
// must describe the client's mistake, never internal details.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

}  // namespace pixserve::http
