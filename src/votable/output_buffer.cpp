#include "votable/output_buffer.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace pixserve::votable {

OutputBuffer::OutputBuffer(Sink sink, std::size_t capacity) : sink_(std::move(sink)), capacity_(capacity) {
  if (!sink_) throw std::invalid_argument("votable: OutputBuffer needs a sink");
  if (capacity_ == 0) throw std::invalid_argument("votable: OutputBuffer capacity must be positive");
  // Reserved once so that the string never reallocates past the bound.
  buf_.reserve(capacity_);
}

void OutputBuffer::put(std::string_view s) {
  while (!s.empty()) {
    if (buf_.size() == capacity_) flush();
    const std::size_t n = std::min(s.size(), capacity_ - buf_.size());
    buf_.append(s.data(), n);
    note_size();
    s.remove_prefix(n);
  }
}

void OutputBuffer::flush() {
  if (buf_.empty()) return;
  sink_(std::string_view(buf_));
  flushed_ += buf_.size();
  buf_.clear();  // keeps the reserved capacity
}

}  // namespace pixserve::votable
