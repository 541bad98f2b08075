// Bounded output buffering between a table writer and the socket (or file).
// Writers append small pieces; the buffer hands the sink chunks of at most
// `capacity` bytes, so a million-row response never sits in memory and the
// HTTP layer can send each chunk as it comes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

namespace pixserve::votable {

// Receives the output in chunks, in order. It may throw (e.g. the client went
// away); the exception propagates out of the writer call and the document is
// then unfinished, which is the right signal to the peer.
using Sink = std::function<void(std::string_view chunk)>;

inline constexpr std::size_t default_buffer_size = 64 * 1024;

class OutputBuffer {
 public:
  explicit OutputBuffer(Sink sink, std::size_t capacity = default_buffer_size);

  OutputBuffer(const OutputBuffer&) = delete;
  OutputBuffer& operator=(const OutputBuffer&) = delete;

  // The writers call these a few dozen times per row: the common case (the
  // piece fits) is inline and a plain copy.
  void put(char c) {
    if (size_ == capacity_) flush();
    data_[size_++] = c;
  }
  // Splits long pieces so the buffer never holds more than `capacity` bytes,
  // even for a multi-megabyte cell.
  void put(std::string_view s) {
    if (s.size() <= capacity_ - size_) {
      std::copy_n(s.data(), s.size(), data_.get() + size_);
      size_ += s.size();
    } else {
      put_split(s);
    }
  }

  // Hands everything buffered to the sink (nothing if empty).
  void flush();

  std::size_t capacity() const { return capacity_; }
  // The most bytes ever held at once: at most capacity(). The buffer only
  // grows between flushes, so its largest size is the one before a flush.
  std::size_t max_buffered() const { return std::max(max_flushed_, size_); }
  // Bytes handed to the sink so far plus those still buffered.
  std::uint64_t bytes_written() const { return flushed_ + size_; }

 private:
  void put_split(std::string_view s);

  Sink sink_;
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  std::size_t max_flushed_ = 0;
  std::uint64_t flushed_ = 0;
};

}  // namespace pixserve::votable
