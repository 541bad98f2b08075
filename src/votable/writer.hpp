// Streaming VOTable 1.4 writer (TABLEDATA, BINARY or BINARY2). Elements are written
// in document order as the calls come; rows go through a bounded buffer to
// the sink, so a result of any size streams with constant memory.
//
// Typical TAP result:
//   VotableWriter w(sink, {.serialization = Serialization::binary2});
//   w.begin_document();
//   w.begin_resource({.type = ResourceType::results});
//   w.info("QUERY_STATUS", "OK");
//   w.begin_table({.name = "result", .fields = fields});
//   for (...) w.row(cells);
//   w.end_table();
//   if (truncated) w.info("QUERY_STATUS", "OVERFLOW");
//   w.end_resource();
//   w.end_document();
//
// The calls must follow the VOTable schema's element order; a call out of
// order throws std::logic_error before anything is written, e.g. INFO after a
// PARAM or GROUP but before the first TABLE of a RESOURCE (the schema allows
// INFO only at the start of a RESOURCE and after each TABLE/RESOURCE), PARAM
// after a TABLE, a row outside a table, end_document without any RESOURCE.
// Values that do not fit their FIELD throw std::invalid_argument (or
// std::out_of_range for integers) before any of the row is written, so the
// document stays well-formed. Exceptions from the sink propagate.
//
// A writer destroyed before end_document() writes nothing more: the peer sees
// a truncated document, which is the honest outcome for a failed stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "votable/cells.hpp"
#include "votable/model.hpp"
#include "votable/output_buffer.hpp"

namespace pixserve::votable {

// How rows are written, and how a null travels in each (VOTable 1.4 section 5):
//   tabledata: an empty <TD/>, for every datatype;
//   binary2:   the row's null flags (the cell's bytes are NaN for floating
//              types, zeros otherwise);
//   binary:    no flags: NaN for floating types, '?' for boolean, an empty
//              string for char, an empty variable-length array, and for
//              integers the VALUES null of the FIELD. A FIELD that declares
//              none gets the type's most negative value (255 for
//              unsignedByte), and a row whose integer equals its column's
//              null value is refused (std::out_of_range) rather than read
//              back as null.
enum class Serialization { tabledata, binary, binary2 };

struct WriterOptions {
  Serialization serialization = Serialization::tabledata;
  std::size_t buffer_size = default_buffer_size;  // the largest chunk handed to the sink
};

enum class ResourceType { results, meta };

// <RESOURCE type=".." name=".." ID=".." utype="..">. A DataLink service
// descriptor is {.type = meta, .name = "...", .id = "...", .utype = "adhoc:service"}.
struct Resource {
  ResourceType type = ResourceType::results;
  std::string name{};
  std::string id{};
  std::string utype{};
  std::string description{};
};

// <TABLE>: its FIELDs (one per cell of each row) and PARAMs.
struct Table {
  std::string name{};
  std::string id{};
  std::string ucd{};
  std::string utype{};
  std::string description{};
  std::vector<Field> fields{};
  std::vector<Param> params{};
};

// <GROUP>, e.g. name = "inputParams" in a service descriptor; holds PARAMs
// and nested GROUPs.
struct Group {
  std::string name{};
  std::string id{};
  std::string ref{};
  std::string ucd{};
  std::string utype{};
  std::string description{};
};

namespace detail {

// One BINARY/BINARY2 row before base64, written through a pointer into
// storage kept from row to row: a row is dozens of small big-endian
// values, which std::string::append would each pay bookkeeping for.
class RowBytes {
 public:
  void clear() { size_ = 0; }
  std::size_t size() const { return size_; }
  char* data() { return bytes_.data(); }
  std::string_view view() const { return {bytes_.data(), size_}; }
  std::size_t capacity() const { return bytes_.size(); }
  // Where up to n more bytes go; commit() then says how many were written.
  char* room(std::size_t n) {
    if (n > bytes_.size() - size_) grow(n);
    return bytes_.data() + size_;
  }
  void commit(std::size_t n) { size_ += n; }
  // n more bytes, to be written at the address returned.
  char* extend(std::size_t n) {
    char* at = room(n);
    size_ += n;
    return at;
  }
  void release() {
    std::vector<char>().swap(bytes_);
    size_ = 0;
  }

 private:
  void grow(std::size_t n);
  std::vector<char> bytes_;
  std::size_t size_ = 0;
};

}  // namespace detail

class VotableWriter {
 public:
  explicit VotableWriter(Sink sink, WriterOptions options = {});

  VotableWriter(const VotableWriter&) = delete;
  VotableWriter& operator=(const VotableWriter&) = delete;

  // The XML declaration and <VOTABLE version="1.4">.
  void begin_document(std::string_view description = {});
  // Flushes everything to the sink.
  void end_document();

  // <INFO name value>text</INFO>: in VOTABLE (before or after the RESOURCEs)
  // and in RESOURCE (at its start or after a TABLE/RESOURCE).
  void info(std::string_view name, std::string_view value, std::string_view text = {});
  // <PARAM>: in VOTABLE or RESOURCE before any child RESOURCE/TABLE, and in GROUP.
  void param(const Param& param);
  void begin_group(const Group& group);
  void end_group();

  void begin_resource(const Resource& resource);
  void end_resource();

  // Writes the TABLE header and opens DATA; the fields are copied.
  void begin_table(const Table& table);
  // One row: a value per field, in field order.
  void row(std::span<const Value> cells);
  void row(std::initializer_list<Value> cells) { row(std::span<const Value>(cells.begin(), cells.size())); }
  void end_table();

  // Hands whatever is buffered to the sink now (e.g. to start the HTTP
  // response before a slow query produces rows).
  void flush() { out_.flush(); }

  // Rows written in the current (or last) table.
  std::uint64_t rows_written() const { return rows_; }
  std::uint64_t bytes_written() const { return out_.bytes_written(); }
  // Never more than options.buffer_size.
  std::size_t max_buffered() const { return out_.max_buffered(); }

 private:
  enum class Element { none, votable, resource, group, table };
  // Where in its parent's content model the next child would go.
  enum class Phase {
    head,    // start: INFO, PARAM, GROUP, TABLE, RESOURCE
    params,  // after PARAM/GROUP in RESOURCE: PARAM, GROUP, TABLE, RESOURCE
    body,    // after a TABLE/RESOURCE: INFO, TABLE, RESOURCE
    tail,    // VOTABLE after an INFO that follows the RESOURCEs: INFO only
  };
  struct Frame {
    Element element;
    Phase phase;
  };

  Element current() const { return stack_.empty() ? Element::none : stack_.back().element; }
  Phase& phase() { return stack_.back().phase; }
  [[noreturn]] void misuse(std::string_view call) const;
  void child_finished();  // after end_table/end_resource: the parent moves to body

  void indent(std::size_t extra = 0);  // one space per open element (+ extra)
  void attr(std::string_view name, std::string_view value);
  void description(std::string_view text, std::size_t extra = 0);
  void field_element(std::string_view tag, const Field& field, const detail::Layout& layout, const Value* value);
  void values_element(const Field& field, const detail::Layout& layout);

  void tabledata_row(std::span<const Value> cells);
  void binary_row(std::span<const Value> cells);  // BINARY and BINARY2

  // Base64 of the BINARY/BINARY2 stream, encoded as rows arrive: only the 0-2 bytes
  // that do not fill a 3-byte group are carried between rows.
  class Base64 {
   public:
    void write(std::string_view bytes, OutputBuffer& out);
    void finish(OutputBuffer& out);

   private:
    // Encodes `groups` whole 3-byte groups, with the line breaks.
    void encode(const unsigned char* in, std::size_t groups, OutputBuffer& out);
    unsigned char carry_[3] = {};
    std::size_t ncarry_ = 0;
    std::size_t column_ = 0;  // output characters on the current line (lines of 76)
  };

  OutputBuffer out_;
  WriterOptions options_;
  std::vector<Frame> stack_;
  bool done_ = false;
  std::vector<Field> fields_;
  std::vector<detail::Layout> layouts_;
  std::uint64_t rows_ = 0;
  detail::RowBytes row_bytes_;
  Base64 base64_;
};

// A DALI error document: <RESOURCE type="results"><INFO name="QUERY_STATUS"
// value="ERROR">message</INFO></RESOURCE>. The HTTP status is the caller's.
void write_error_document(Sink sink, std::string_view message);

}  // namespace pixserve::votable
