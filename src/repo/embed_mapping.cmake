# Writes OUTPUT, a C++ source that defines pixserve::repo::builtin_mapping_text()
# as the bytes of INPUT (docs/mappings/pixserve-sim.yaml), so that the YAML
# file stays the one copy of the built-in ingest mapping. Run at build time
# by src/repo/CMakeLists.txt whenever the YAML file changes:
#
#   cmake -DINPUT=... -DOUTPUT=... -P embed_mapping.cmake
foreach(var INPUT OUTPUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_mapping.cmake needs -D${var}=...")
  endif()
endforeach()
file(READ "${INPUT}" text)
# A raw string literal holds the text as it is; only its closing delimiter
# may not occur inside.
set(delimiter "pixserve_mapping")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains )${delimiter}\", the end of the raw string that embeds it")
endif()
set(source "// Generated at build time from docs/mappings/pixserve-sim.yaml by
// src/repo/embed_mapping.cmake: edit the YAML file, not this one.
#include \"repo/builtin_mapping.hpp\"

namespace pixserve::repo {

std::string_view builtin_mapping_text() noexcept {
  static constexpr char kText[] = R\"${delimiter}(${text})${delimiter}\";
  return {kText, sizeof(kText) - 1};
}

}  // namespace pixserve::repo
")
# Rewrite only on a change, so an unchanged mapping recompiles nothing.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL source)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${source}")
