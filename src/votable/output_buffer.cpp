#include "votable/output_buffer.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace pixserve::votable {

OutputBuffer::OutputBuffer(Sink sink, std::size_t capacity) : sink_(std::move(sink)), capacity_(capacity) {
  if (!sink_) throw std::invalid_argument("votable: OutputBuffer needs a sink");
  if (capacity_ == 0) throw std::invalid_argument("votable: OutputBuffer capacity must be positive");
  // Allocated once, never grown: the bound is the allocation.
  data_ = std::make_unique_for_overwrite<char[]>(capacity_);
}

void OutputBuffer::put_split(std::string_view s) {
  while (!s.empty()) {
    if (size_ == capacity_) flush();
    const std::size_t n = std::min(s.size(), capacity_ - size_);
    std::copy_n(s.data(), n, data_.get() + size_);
    size_ += n;
    s.remove_prefix(n);
  }
}

void OutputBuffer::flush() {
  if (size_ == 0) return;
  max_flushed_ = std::max(max_flushed_, size_);
  sink_(std::string_view(data_.get(), size_));
  flushed_ += size_;
  size_ = 0;
}

}  // namespace pixserve::votable
