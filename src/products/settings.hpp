// The product cache's settings (section `products` of the configuration
// file). The defaults are the member initialisers; products_section()
// declares the keys (settings/settings.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "settings/settings.hpp"

namespace pixserve::products {

struct ProductCacheSettings {
  std::filesystem::path dir{};                          // empty: <repository>/cache/products
  std::uint64_t max_bytes = std::uint64_t{20} << 30;    // least recently used files go beyond this
  // A SODA /sync request that would re-create more virtual products than
  // this (e.g. a whole visit) is refused with a pointer to /async.
  std::size_t sync_max_recreations = 4;
  friend bool operator==(const ProductCacheSettings&, const ProductCacheSettings&) = default;
};

const settings::Section<ProductCacheSettings>& products_section();

}  // namespace pixserve::products
