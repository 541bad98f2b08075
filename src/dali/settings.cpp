#include "dali/settings.hpp"

namespace pixserve::dali {

const settings::Section<ResultLimits>& results_section() {
  using L = ResultLimits;
  static const settings::Section<L> section{
      .name = "service",
      .doc = {},
      .keys = {
          settings::integer("maxrec_default", &L::default_maxrec, {.max = std::uint64_t{1} << 40},
                            "DALI MAXREC when a query gives none")
              .with_check([](L& l) {
                // A limit below 1 is its own key's error, reported next.
                return l.max_maxrec >= 1 && (l.default_maxrec < 0 || l.default_maxrec > l.max_maxrec)
                           ? "must be from 0 to service.maxrec_limit (" + std::to_string(l.max_maxrec) + ")"
                           : std::string();
              }),
          settings::integer("maxrec_limit", &L::max_maxrec, {.max = std::uint64_t{1} << 40, .min = 1},
                            "hard limit: larger MAXREC values are lowered to it"),
      }};
  return section;
}

}  // namespace pixserve::dali
