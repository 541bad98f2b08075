// Settings declared next to the component they configure.
//
// A component keeps its settings in a plain struct whose member initialisers
// are the defaults - the only place a default is written - and declares once
// the configuration file's keys for it: a Section names the YAML section and
// lists its Keys, each made by one of the functions below from the key's
// name, the member it sets and what it does. The configuration library
// (src/config) reads the file, checks values, applies command-line flags and
// prints the example file from these declarations alone, so the keys, the
// defaults and their documentation cannot disagree between those places.
//
//   struct JobSettings {
//     unsigned threads = 2;
//     std::chrono::milliseconds retention{7LL * 24 * 3'600'000};
//   };
//   const settings::Section<JobSettings> jobs{"jobs", "Asynchronous jobs.", {
//       settings::integer("threads", &JobSettings::threads, {.max = 256, .min = 1}, "jobs executing at once"),
//       settings::seconds("retention_s", &JobSettings::retention, "jobs are destroyed this long after creation"),
//   }};
//
// This library knows nothing of YAML: a key reads the text of one value (or
// of each value of a list) and shows its value as YAML flow text.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pixserve::settings {

// A refused configuration; what() names the key (and the file and line when
// it comes from one).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value a key cannot read; what() says what was expected, and whoever
// reads the key puts the key's name (and the place) in front of it.
class ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class Kind {
  text,     // one string (or a path)
  list,     // strings; a single value is a list of one
  integer,  // 0..max, optionally in a larger unit than the member's
  boolean,  // true or false
  seconds,  // a positive number of seconds, kept in milliseconds
  number,   // a finite decimal number within a range
};

// The parsers and printers the kinds share (throw ValueError).
std::uint64_t parse_integer(std::string_view text, std::uint64_t max);
bool parse_boolean(std::string_view text);
std::chrono::milliseconds parse_seconds(std::string_view text);
std::string show_seconds(std::chrono::milliseconds value);
double parse_number(std::string_view text, double min, double max);
std::string show_number(double value);
// A YAML scalar reading back as `text`: plain when that is safe, else quoted.
std::string show_text(std::string_view text);
std::string show_list(const std::vector<std::string>& values);

template <class S>
struct Key {
  // Why the value of a loaded struct is refused, or empty. A check may
  // normalise the value it accepts (a URL's trailing '/').
  using Check = std::function<std::string(S&)>;

  std::string name{};
  Kind kind = Kind::text;
  std::string doc{};      // what the key does: a phrase, shown in the example file and --help
  std::uint64_t max = 0;  // integer keys: the largest value the file may give
  // Sets the member from the file's text: one value, or each value of a list.
  std::function<void(S&, std::span<const std::string>)> read{};
  // The member as the file writes it (read(show(s)) gives s's value back).
  std::function<std::string(const S&)> show{};
  std::vector<Check> checks{};
  // Shown commented out in the example file while the value is empty
  // (a key whose default is "not set").
  std::string example{};

  Key with_check(Check check) && {
    checks.push_back(std::move(check));
    return std::move(*this);
  }
  Key with_example(std::string text) && {
    example = std::move(text);
    return std::move(*this);
  }
};

template <class S>
struct Section {
  std::string name{};
  std::string doc{};  // shown above the section in the example file; may be empty
  std::vector<Key<S>> keys{};
};

// A section as its component declares it: its name, the text shown above
// it in the example file (may be empty) and its keys.
template <class S>
Section<S> make_section(std::string name, std::string doc, std::vector<Key<S>> keys) {
  return {std::move(name), std::move(doc), std::move(keys)};
}

template <class S>
Key<S> text(std::string name, std::string S::*member, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::text,
          .doc = std::move(doc),
          .read = [member](S& s, std::span<const std::string> v) { s.*member = v.front(); },
          .show = [member](const S& s) { return show_text(s.*member); }};
}

template <class S>
Key<S> path(std::string name, std::filesystem::path S::*member, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::text,
          .doc = std::move(doc),
          .read = [member](S& s, std::span<const std::string> v) { s.*member = v.front(); },
          .show = [member](const S& s) { return show_text((s.*member).string()); }};
}

template <class S>
Key<S> list(std::string name, std::vector<std::string> S::*member, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::list,
          .doc = std::move(doc),
          .read = [member](S& s, std::span<const std::string> v) { s.*member = {v.begin(), v.end()}; },
          .show = [member](const S& s) { return show_list(s.*member); }};
}

template <class S>
Key<S> boolean(std::string name, bool S::*member, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::boolean,
          .doc = std::move(doc),
          .read = [member](S& s, std::span<const std::string> v) { s.*member = parse_boolean(v.front()); },
          .show = [member](const S& s) { return std::string(s.*member ? "true" : "false"); }};
}

// The file gives seconds (fractions allowed); the member keeps milliseconds.
template <class S>
Key<S> seconds(std::string name, std::chrono::milliseconds S::*member, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::seconds,
          .doc = std::move(doc),
          .read = [member](S& s, std::span<const std::string> v) { s.*member = parse_seconds(v.front()); },
          .show = [member](const S& s) { return show_seconds(s.*member); },
          .checks = {[member](S& s) { return (s.*member).count() > 0 ? std::string() : "must be positive"; }}};
}

// A decimal number from `min` to `max` (no NaN, no infinity).
template <class S>
Key<S> number(std::string name, double S::*member, double min, double max, std::string doc) {
  return {.name = std::move(name),
          .kind = Kind::number,
          .doc = std::move(doc),
          .read = [member, min, max](S& s, std::span<const std::string> v) {
            s.*member = parse_number(v.front(), min, max);
          },
          .show = [member](const S& s) { return show_number(s.*member); }};
}

struct Range {
  std::uint64_t max = 0;  // in the file's unit
  std::uint64_t min = 0;  // smaller values are refused by the key's check
  unsigned shift = 0;     // the file's unit is 2^shift of the member's (20: MiB in the file, bytes in the member)
};

template <class S, std::integral T>
  requires(!std::same_as<T, bool>)
Key<S> integer(std::string name, T S::*member, Range range, std::string doc) {
  Key<S> key{.name = std::move(name),
             .kind = Kind::integer,
             .doc = std::move(doc),
             .max = range.max,
             .read =
                 [member, range](S& s, std::span<const std::string> v) {
                   s.*member = static_cast<T>(parse_integer(v.front(), range.max) << range.shift);
                 },
             .show =
                 [member, range](const S& s) {
                   return std::to_string(static_cast<std::uint64_t>(s.*member) >> range.shift);
                 }};
  if (range.min > 0) {
    key.checks.push_back([member, range](S& s) {
      return std::cmp_less(s.*member, range.min << range.shift) ? "must be at least " + std::to_string(range.min)
                                                                : std::string();
    });
  }
  return key;
}

// The keys of a struct that is a member of a larger one, as keys of the
// larger one: how the configuration is composed of the components' sections.
template <class Outer, class S>
Section<Outer> within(S Outer::*member, const Section<S>& inner) {
  Section<Outer> out{.name = inner.name, .doc = inner.doc, .keys = {}};
  for (const Key<S>& k : inner.keys) {
    Key<Outer> key{.name = k.name,
                   .kind = k.kind,
                   .doc = k.doc,
                   .max = k.max,
                   .read = [member, read = k.read](Outer& o, std::span<const std::string> v) { read(o.*member, v); },
                   .show = [member, show = k.show](const Outer& o) { return show(o.*member); },
                   .checks = {},
                   .example = k.example};
    for (const auto& check : k.checks) key.checks.push_back([member, check](Outer& o) { return check(o.*member); });
    out.keys.push_back(std::move(key));
  }
  return out;
}

// Runs the checks of a section's keys, in their order; throws ConfigError
// "section.key: why" for the first refused value.
template <class S>
void check(const Section<S>& section, S& value) {
  for (const Key<S>& key : section.keys) {
    for (const auto& c : key.checks) {
      if (std::string why = c(value); !why.empty()) throw ConfigError(section.name + "." + key.name + ": " + why);
    }
  }
}

}  // namespace pixserve::settings
