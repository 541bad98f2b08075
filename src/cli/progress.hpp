// Progress of long operations on the terminal: one line per stage, redrawn
// in place on a terminal and printed every 10% otherwise (logs, CI).
#pragma once

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unistd.h>

#include <fmt/format.h>

namespace pixserve::cli {

class ProgressPrinter {
 public:
  ProgressPrinter() : interactive_(::isatty(::fileno(stderr)) != 0) {}

  std::function<void(std::string_view, std::size_t, std::size_t)> callback() {
    return [this](std::string_view stage, std::size_t done, std::size_t total) { report(stage, done, total); };
  }

  void report(std::string_view stage, std::size_t done, std::size_t total) {
    const std::lock_guard lock(mutex_);
    if (stage != stage_) {
      end_line();
      stage_ = stage;
      last_decile_ = -1;
      started_ = std::chrono::steady_clock::now();
    }
    const int percent = total ? static_cast<int>(100 * done / total) : 100;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const std::string line = fmt::format("{:<10} {:>7}/{:<7} {:>3}%  {:.1f} s", stage_, done, total, percent, seconds);
    if (interactive_) {
      std::fprintf(stderr, "\r%s", line.c_str());
      open_line_ = true;
    } else if (percent / 10 != last_decile_) {
      last_decile_ = percent / 10;
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }

  void finish() {
    const std::lock_guard lock(mutex_);
    end_line();
  }

 private:
  void end_line() {
    if (open_line_) std::fprintf(stderr, "\n");
    open_line_ = false;
  }

  std::mutex mutex_;
  bool interactive_;
  bool open_line_ = false;
  std::string stage_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace pixserve::cli
