// TAP's limits (section `tap` of the configuration file): read by the
// engine (query length, result size), the upload reader and fetcher, and
// the protocol adapter (services/tap.cpp: sync time limit, capabilities).
// The defaults are the member initialisers; tap_section() declares the keys
// (settings/settings.hpp).
#pragma once

#include <chrono>
#include <cstdint>

#include "settings/settings.hpp"

namespace pixserve::tap {

struct TapSettings {
  std::chrono::milliseconds sync_time_limit{60'000};  // a /sync query is interrupted after this
  std::uint64_t max_result_bytes = 256ull << 20;      // size of a query's rows (estimated), cut there
  std::uint64_t max_upload_bytes = 16ull << 20;       // one uploaded VOTable
  std::size_t max_upload_rows = 100'000;
  std::size_t max_query_length = 100'000;  // characters of ADQL
  // UPLOAD=name,http://...: fetched with this deadline; hosts resolving to
  // loopback, private or link-local addresses are refused unless allowed.
  std::chrono::milliseconds upload_fetch_timeout{15'000};
  bool upload_allow_private_hosts = false;
  friend bool operator==(const TapSettings&, const TapSettings&) = default;
};

const settings::Section<TapSettings>& tap_section();

}  // namespace pixserve::tap
