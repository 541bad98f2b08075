// CSV and TSV output of the same rows the VOTable writer takes (TAP
// RESPONSEFORMAT=csv / tsv): a header line of column names, then one line per
// row, streamed through the same bounded buffer.
//
// CSV follows RFC 4180: CRLF line ends; a field holding a comma, a quote, CR
// or LF is quoted with inner quotes doubled; an empty string is written as ""
// so that it differs from a null, which is an empty field. TSV
// (text/tab-separated-values) cannot quote, so tab, CR and LF inside values
// become spaces; lines end with LF. In both, arrays are space-separated
// numbers, booleans true/false, floating point as in TABLEDATA (shortest
// exact form, NaN, +Inf, -Inf); strings are sanitised as in the VOTable writer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "votable/cells.hpp"
#include "votable/model.hpp"
#include "votable/output_buffer.hpp"

namespace pixserve::votable {

enum class TextFormat { csv, tsv };

class TextTableWriter {
 public:
  TextTableWriter(Sink sink, TextFormat format, std::size_t buffer_size = default_buffer_size);

  TextTableWriter(const TextTableWriter&) = delete;
  TextTableWriter& operator=(const TextTableWriter&) = delete;

  // Writes the header line; the fields are copied. Throws std::logic_error if
  // called twice, std::invalid_argument for unusable fields.
  void begin(std::span<const Field> fields);
  // Same checks as VotableWriter::row.
  void row(std::span<const Value> cells);
  void row(std::initializer_list<Value> cells) { row(std::span<const Value>(cells.begin(), cells.size())); }
  // Flushes to the sink; nothing may follow.
  void end();

  void flush() { out_.flush(); }
  std::uint64_t rows_written() const { return rows_; }
  std::size_t max_buffered() const { return out_.max_buffered(); }

 private:
  enum class State { fresh, rows, done };

  void separator() { out_.put(format_ == TextFormat::csv ? ',' : '\t'); }
  void line_end() { out_.put(format_ == TextFormat::csv ? "\r\n" : "\n"); }

  OutputBuffer out_;
  TextFormat format_;
  State state_ = State::fresh;
  std::vector<Field> fields_;
  std::vector<detail::Layout> layouts_;
  std::uint64_t rows_ = 0;
};

}  // namespace pixserve::votable
