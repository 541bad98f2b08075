// How the server gives freed memory back to the system (glibc): few malloc
// arenas, and malloc_trim once large responses have stopped. Internal to the
// server (server.cpp, connection*.cpp).
#pragma once

#include <chrono>
#include <cstdint>

namespace pixserve::http::detail {

// Memory returned to the system after large responses (see MallocTuning).
constexpr std::uint64_t kLargeResponseBytes = 1 << 20;
constexpr auto kTrimDelay = std::chrono::seconds(1);      // quiet time before a trim
constexpr auto kTrimMaxDelay = std::chrono::seconds(30);  // under steady load, trim this often

// glibc's allocator gives each thread that meets contention its own arena,
// up to 8 per core, and an arena keeps what was freed in it: a large
// transient buffer (a cutout being computed, an image plane) freed on one of
// the many worker threads stays resident in that thread's arena. Measured
// with 8 workers and SODA cutouts of 14 MB, RSS went from 71 MB to a plateau
// of 132 MB after 50 aborted downloads, and malloc_trim could not give it
// back: it does not shrink the top of a thread's arena. With two arenas the
// freed memory lands in few places where malloc_trim (ServerCore::
// schedule_trim) returns it: 48 MB -> 122 MB under load -> 22 MB after a trim.
// Returning memory at every free instead (fixed M_MMAP_THRESHOLD and
// M_TRIM_THRESHOLD) cost 3.5x the time per cutout in page faults, and so did
// trimming every second under load (the next requests fault the pages back
// in): the trim waits for a quiet second, or kTrimMaxDelay.
// The allocator is per process and `pixserve serve` is one server per
// process; MALLOC_ARENA_MAX in the environment still wins.
struct MallocTuning {
  MallocTuning();
};

// Returns free memory at the top of every arena to the system; may take
// milliseconds.
void trim_malloc();

}  // namespace pixserve::http::detail
