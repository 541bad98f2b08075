// The MAXREC limits of every table result (dali/results.hpp): keys
// service.maxrec_default and service.maxrec_limit of the configuration
// file. The defaults are the member initialisers; results_section()
// declares the keys (settings/settings.hpp).
#pragma once

#include <cstdint>

#include "settings/settings.hpp"

namespace pixserve::dali {

struct ResultLimits {
  std::int64_t default_maxrec = 10'000;  // MAXREC when a request gives none
  std::int64_t max_maxrec = 100'000;     // the hard limit: larger MAXREC values are lowered to it
  friend bool operator==(const ResultLimits&, const ResultLimits&) = default;
};

// Its keys in section `service` (which the services complete).
const settings::Section<ResultLimits>& results_section();

}  // namespace pixserve::dali
