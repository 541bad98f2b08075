// The product cache's settings (section `products` of the configuration
// file). The defaults are the member initialisers; products_section()
// declares the keys (settings/settings.hpp).
#pragma once

#include <cstdint>
#include <filesystem>

#include "settings/settings.hpp"

namespace pixserve::products {

struct ProductCacheSettings {
  std::filesystem::path dir{};                          // empty: <repository>/cache/products
  std::uint64_t max_bytes = std::uint64_t{20} << 30;    // least recently used files go beyond this
  friend bool operator==(const ProductCacheSettings&, const ProductCacheSettings&) = default;
};

const settings::Section<ProductCacheSettings>& products_section();

}  // namespace pixserve::products
