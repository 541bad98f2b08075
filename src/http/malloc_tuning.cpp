#include "http/malloc_tuning.hpp"

#include <cstdlib>

#include <malloc.h>

namespace pixserve::http::detail {

namespace {
constexpr int kMallocArenas = 2;
}  // namespace

MallocTuning::MallocTuning() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, kMallocArenas);
#endif
}

void trim_malloc() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace pixserve::http::detail
