// How long operations (simulate, ingest, HiPS generation, jobs) report
// progress: a stage name and how much of it is done. One type for all, so
// the CLI's printer and the services' job records can listen to any of them.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace pixserve {

using ProgressCallback = std::function<void(std::string_view stage, std::size_t done, std::size_t total)>;

}  // namespace pixserve
