// Runs a function over the indices 0..count-1 on a few threads, pulling
// indices from a shared counter so uneven work balances itself. The first
// exception thrown by any call is rethrown in the caller once all threads
// have stopped; the remaining indices are then skipped.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace pixserve::parallel {

inline unsigned default_threads() { return std::max(1U, std::thread::hardware_concurrency()); }

template <typename Fn>
void parallel_for(std::size_t count, unsigned threads, Fn&& fn) {
  if (threads == 0) threads = default_threads();
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, std::max<std::size_t>(count, 1)));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= count || failed.load()) return;
      try {
        fn(i);
      } catch (...) {
        const std::lock_guard lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
        failed.store(true);
      }
    }
  };
  {
    std::vector<std::jthread> pool;
    pool.reserve(threads);
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
  }  // jthreads join here
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace pixserve::parallel
