// The table model shared by the VOTable writer and the CSV/TSV writer: column
// (FIELD) and PARAM metadata and one cell value. Kept free of any output
// format so that services describe a result once and pick the format last.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pixserve::votable {

// VOTable primitive datatypes, spelled as in the standard with a trailing
// underscore where the name is a C++ keyword. bit and the complex types are
// left out: no pixserve result uses them.
enum class Datatype { boolean, unsignedByte, short_, int_, long_, char_, unicodeChar, float_, double_ };

// The name used in the datatype attribute ("unsignedByte", "char", ...).
std::string_view datatype_name(Datatype type);
// The inverse, for metadata kept as text (e.g. repo::ColumnDescription).
std::optional<Datatype> parse_datatype(std::string_view name);
// Bytes of one element in the BINARY/BINARY2 serialisations.
std::size_t element_size(Datatype type);

// One cell (or PARAM value): null, a scalar, a string, or a numeric array
// (DALI geometry: polygon, circle, point, interval are double arrays).
// A class rather than a bare variant so that construction is unambiguous:
// a string literal must become a string, never a bool, and any integer type
// becomes int64.
class Value {
 public:
  using Storage = std::variant<std::monostate, bool, std::int64_t, double, std::string, std::vector<double>,
                               std::vector<std::int64_t>>;

  Value() = default;  // null
  Value(std::nullptr_t) {}
  Value(bool v) : v_(v) {}
  template <std::integral T>
    requires(!std::same_as<T, bool>)
  Value(T v) : v_(to_int64(v)) {}
  Value(double v) : v_(v) {}
  Value(float v) : v_(static_cast<double>(v)) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(std::string_view v) : v_(std::string(v)) {}
  Value(const char* v) : v_(v ? Storage(std::string(v)) : Storage()) {}  // nullptr: null
  Value(std::vector<double> v) : v_(std::move(v)) {}
  Value(std::vector<std::int64_t> v) : v_(std::move(v)) {}

  bool is_null() const { return std::holds_alternative<std::monostate>(v_); }
  const Storage& storage() const { return v_; }
  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&v_);
  }

  // For refilling one row record after record: makes this value an empty
  // string and returns it to be filled, keeping the storage of the string it
  // already holds, so that a reused row's text cells cost no allocation once
  // they have grown.
  std::string& make_text() {
    if (auto* s = std::get_if<std::string>(&v_)) {
      s->clear();
      return *s;
    }
    return v_.emplace<std::string>();
  }

  friend bool operator==(const Value&, const Value&) = default;

 private:
  template <std::integral T>
  static std::int64_t to_int64(T v) {
    if constexpr (std::unsigned_integral<T> && sizeof(T) >= sizeof(std::int64_t)) {
      if (v > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
        throw std::out_of_range("votable::Value: unsigned value does not fit a VOTable long");
    }
    return static_cast<std::int64_t>(v);
  }

  Storage v_;
};

// An empty string as a null cell: the registry stores absent text as empty,
// and VOTable readers should see "no value" rather than "".
inline Value text_or_null(std::string_view s) { return s.empty() ? Value() : Value(s); }

// The metadata structs below give every member a default initialiser ({})
// so that designated initialisers naming only some members compile cleanly:
// GCC 12 warns (-Wmissing-field-initializers, an error here) otherwise.

// <OPTION value=".." name=".."/> inside VALUES.
struct Option {
  Value value{};
  std::string name{};  // optional label
};

// <VALUES>: the allowed range or list of a FIELD or PARAM (DataLink service
// descriptors advertise input ranges this way). Null min/max are left out.
// `null` is the integer that stands for "no value" (VALUES null="..."): the
// BINARY serialisation has no null flags, so an integer column needs one
// there (the writer declares a default, see Serialization::binary); only
// integer fields may have it.
struct Values {
  Value min{};
  Value max{};
  std::vector<Option> options{};
  std::optional<std::int64_t> null{};

  bool empty() const { return min.is_null() && max.is_null() && options.empty() && !null; }
};

// Metadata of one column. arraysize is "" (scalar), "n" (fixed), "*"
// (variable) or "n*" (variable, at most n); multidimensional arrays are not
// supported. A char/unicodeChar field with arraysize "" is one character,
// as the standard says (votlint deprecates arraysize="1"; astropy merely
// warns, W47, about the implicit form).
struct Field {
  std::string name{};
  Datatype datatype = Datatype::char_;
  std::string arraysize{};
  std::string id{};    // XML ID, e.g. for a service descriptor's PARAM ref
  std::string unit{};  // VOUnit
  std::string ucd{};
  std::string utype{};
  std::string xtype{};  // e.g. "polygon", "circle", "interval", "timestamp"
  std::string ref{};    // IDREF: a PARAM in a service descriptor refers to a FIELD's ID
  std::string description{};
  Values values{};
};

// A PARAM is a FIELD with one value.
struct Param : Field {
  Value value{};
};

}  // namespace pixserve::votable
