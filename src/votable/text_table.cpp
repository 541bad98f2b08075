#include "votable/text_table.hpp"

#include <fmt/format.h>

#include <stdexcept>
#include <utility>

namespace pixserve::votable {

using detail::TextMode;

TextTableWriter::TextTableWriter(Sink sink, TextFormat format, std::size_t buffer_size)
    : out_(std::move(sink), buffer_size), format_(format) {}

void TextTableWriter::begin(std::span<const Field> fields) {
  if (state_ != State::fresh) throw std::logic_error("votable: TextTableWriter::begin() called twice or after end()");
  if (fields.empty()) throw std::invalid_argument("votable: a table needs at least one field");
  std::vector<detail::Layout> layouts;
  layouts.reserve(fields.size());
  for (const Field& f : fields) layouts.push_back(detail::make_layout(f));

  for (std::size_t k = 0; k < fields.size(); ++k) {
    if (k) separator();
    if (format_ == TextFormat::csv)
      detail::put_csv_string(out_, fields[k].name);
    else
      detail::put_text(out_, fields[k].name, TextMode::tsv);
  }
  line_end();
  fields_.assign(fields.begin(), fields.end());
  layouts_ = std::move(layouts);
  state_ = State::rows;
}

void TextTableWriter::row(std::span<const Value> cells) {
  if (state_ != State::rows) throw std::logic_error("votable: TextTableWriter::row() outside begin()/end()");
  if (cells.size() != fields_.size())
    throw std::invalid_argument(fmt::format("votable: row of {} cells for {} fields", cells.size(), fields_.size()));
  for (std::size_t k = 0; k < cells.size(); ++k) detail::check_value(fields_[k], layouts_[k], cells[k]);
  const TextMode mode = format_ == TextFormat::csv ? TextMode::csv : TextMode::tsv;
  for (std::size_t k = 0; k < cells.size(); ++k) {
    if (k) separator();
    detail::put_value_text(out_, layouts_[k], cells[k], mode);
  }
  line_end();
  ++rows_;
}

void TextTableWriter::end() {
  if (state_ != State::rows) throw std::logic_error("votable: TextTableWriter::end() without begin()");
  state_ = State::done;
  out_.flush();
}

}  // namespace pixserve::votable
