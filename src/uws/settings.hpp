// The asynchronous jobs of every service (section `jobs` of the
// configuration file): the JobEngine's store and threads. The defaults are
// the member initialisers; jobs_section() declares the keys
// (settings/settings.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>

#include "settings/settings.hpp"

namespace pixserve::uws {

struct JobSettings {
  unsigned threads = 2;  // jobs executing at once, over all async services
  std::uint64_t max_queued = 1000;
  std::chrono::milliseconds execution_duration{600'000};  // default EXECUTIONDURATION
  std::chrono::milliseconds max_execution_duration{3'600'000};
  std::chrono::milliseconds retention{7LL * 24 * 3'600'000};  // default DESTRUCTION - creation
  std::chrono::milliseconds max_retention{30LL * 24 * 3'600'000};
  std::filesystem::path dir{};  // result files; empty: <repository>/jobs
  // The shared queue (uws/runner.hpp): how long a server may go silent
  // before its jobs are taken over, how often one job is tried, how often
  // idle workers look for jobs queued by other servers.
  std::chrono::milliseconds lease{30'000};
  unsigned max_attempts = 3;
  std::chrono::milliseconds poll_interval{1'000};
  friend bool operator==(const JobSettings&, const JobSettings&) = default;
};

const settings::Section<JobSettings>& jobs_section();

// UWS states durations in whole seconds; a fraction counts as a second more.
constexpr std::chrono::seconds whole_seconds(std::chrono::milliseconds ms) {
  return std::chrono::ceil<std::chrono::seconds>(ms);
}

}  // namespace pixserve::uws
