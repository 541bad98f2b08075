# Writes OUTPUT, a C++ source that defines
#   std::string_view NAMESPACE::FUNCTION() noexcept
# (declared in HEADER) as the bytes of INPUT, so that a text file of the
# source tree (the built-in ingest mapping, the PostgreSQL functions) stays
# the one copy of what the program holds. Run at build time by
# pixserve_embed_text() (CMakeLists.txt) whenever INPUT changes:
#
#   cmake -DINPUT=... -DOUTPUT=... -DHEADER=... -DNAMESPACE=... -DFUNCTION=... -P embed_text.cmake
foreach(var INPUT OUTPUT HEADER NAMESPACE FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake needs -D${var}=...")
  endif()
endforeach()
file(READ "${INPUT}" text)
# A raw string literal holds the text as it is; only its closing delimiter
# may not occur inside.
set(delimiter "pixserve_text")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains )${delimiter}\", the end of the raw string that embeds it")
endif()
file(RELATIVE_PATH input_name "${SOURCE_ROOT}" "${INPUT}")
set(source "// Generated at build time from ${input_name} by cmake/embed_text.cmake:
// edit that file, not this one.
#include \"${HEADER}\"

namespace ${NAMESPACE} {

std::string_view ${FUNCTION}() noexcept {
  static constexpr char kText[] = R\"${delimiter}(${text})${delimiter}\";
  return {kText, sizeof(kText) - 1};
}

}  // namespace ${NAMESPACE}
")
# Rewrite only on a change, so an unchanged file recompiles nothing.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL source)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${source}")
