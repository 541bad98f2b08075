// Progress of one stage of the simulation reported from many worker
// threads: the count is atomic; the callback (e.g. the CLI's printer) does
// its own locking.
#pragma once

#include <atomic>
#include <cstddef>
#include <string_view>

#include "parallel/progress.hpp"

namespace pixserve::sim {

class StageProgress {
 public:
  StageProgress(const ProgressCallback& callback, std::string_view stage, std::size_t total)
      : callback_(callback), stage_(stage), total_(total) {
    if (callback_) callback_(stage_, 0, total_);
  }
  void step() {
    const std::size_t n = done_.fetch_add(1) + 1;
    if (callback_) callback_(stage_, n, total_);
  }

 private:
  const ProgressCallback& callback_;
  std::string_view stage_;
  std::size_t total_;
  std::atomic<std::size_t> done_{0};
};

}  // namespace pixserve::sim
