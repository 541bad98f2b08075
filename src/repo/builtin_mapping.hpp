// The built-in ingest mapping's YAML text: docs/mappings/pixserve-sim.yaml,
// embedded at build time (cmake/embed_text.cmake) so that the file in
// docs/ stays the one description of the simulator's convention. Mapping::builtin()
// parses it.
#pragma once

#include <string_view>

namespace pixserve::repo {

// What messages name as the mapping's file (with its line numbers).
inline constexpr std::string_view kBuiltinMappingSource = "docs/mappings/pixserve-sim.yaml";

std::string_view builtin_mapping_text() noexcept;

}  // namespace pixserve::repo
