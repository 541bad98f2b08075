#include "products/settings.hpp"

namespace pixserve::products {

const settings::Section<ProductCacheSettings>& products_section() {
  using namespace settings;
  static const auto section = make_section<ProductCacheSettings>(
      "products",
      "Virtual datasets (calexps re-created on request from raw, bias and flat): where re-created files are kept.",
      {
          path("cache_dir", &ProductCacheSettings::dir, "re-created files; empty: cache/products/ in the repository")
              .with_example("/var/cache/pixserve/products"),
          integer("cache_max_mb", &ProductCacheSettings::max_bytes,
                  {.max = std::uint64_t{1} << 32, .min = 1, .shift = 20},
                  "beyond this, the least recently used files are removed (a file being sent stays readable)"),
          integer("sync_max_recreations", &ProductCacheSettings::sync_max_recreations, {.max = 100'000},
                  "a SODA /sync request needing more products re-created is refused: use /async"),
      });
  return section;
}

}  // namespace pixserve::products
