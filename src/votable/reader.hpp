// VOTable reader for tables sent by clients (TAP UPLOAD): the first TABLE of
// a document with its FIELDs and rows, serialised as TABLEDATA, BINARY or
// BINARY2 (base64 STREAM inside the document). Written for hostile input:
// the document size, row count, column count and cell sizes are bounded;
// pugixml never loads external entities or DTDs (no XXE) and the DOCTYPE is
// refused outright; remote streams (STREAM href=...) and FITS data are
// refused rather than fetched. Every problem is a ReadError whose message
// can be shown to the client.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "votable/model.hpp"

namespace pixserve::votable {

class ReadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReadLimits {
  std::uint64_t max_bytes = 16u << 20;  // the whole document
  std::size_t max_rows = 100'000;
  std::size_t max_columns = 500;
  std::size_t max_array = 100'000;  // elements of one cell (characters of a string)
};

// Cells: null, bool, int64 (boolean/short/int/long/unsignedByte scalars),
// double (float/double scalars), string (char/unicodeChar arrays, or one
// character), std::vector<double> or std::vector<std::int64_t> (numeric
// arrays). A VALUES null="..." sentinel and empty TABLEDATA cells read as
// null; floating NaN reads as null.
struct ReadTable {
  std::string name;
  std::vector<Field> fields;
  std::vector<std::vector<Value>> rows;
};

// Reads the first TABLE of the document. Throws ReadError.
ReadTable read_votable(std::string_view document, const ReadLimits& limits = {});

}  // namespace pixserve::votable
