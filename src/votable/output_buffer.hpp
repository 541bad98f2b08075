// Bounded output buffering between a table writer and the socket (or file).
// Writers append small pieces; the buffer hands the sink chunks of at most
// `capacity` bytes, so a million-row response never sits in memory and the
// HTTP layer can send each chunk as it comes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
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

  void put(char c) {
    if (buf_.size() == capacity_) flush();
    buf_.push_back(c);
    note_size();
  }
  // Splits long pieces so the buffer never holds more than `capacity` bytes,
  // even for a multi-megabyte cell.
  void put(std::string_view s);

  // Hands everything buffered to the sink (nothing if empty).
  void flush();

  std::size_t capacity() const { return capacity_; }
  // The most bytes ever held at once: at most capacity().
  std::size_t max_buffered() const { return max_buffered_; }
  // Bytes handed to the sink so far plus those still buffered.
  std::uint64_t bytes_written() const { return flushed_ + buf_.size(); }

 private:
  void note_size() {
    if (buf_.size() > max_buffered_) max_buffered_ = buf_.size();
  }

  Sink sink_;
  std::string buf_;
  std::size_t capacity_;
  std::size_t max_buffered_ = 0;
  std::uint64_t flushed_ = 0;
};

}  // namespace pixserve::votable
