// Telling a full disk apart from other write failures.
//
// A result that cannot be written because the server's disk (or the
// user's quota there) is full is not the client's fault nor a bug: it is
// answered as 503 with Retry-After (sync) or a transient UWS error (async),
// with kNoSpaceMessage, which names no server path.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace pixserve::http {

inline constexpr std::string_view kNoSpaceMessage =
    "no space left on the server to write the result; try again later or ask for less";
inline constexpr int kNoSpaceRetryAfterSeconds = 300;

// Below this many bytes available, a file system counts as full.
inline constexpr std::uintmax_t kLowSpaceBytes = std::uintmax_t{1} << 20;

// Whether a write under `dir` that just failed with `error_number` (errno
// captured at the failure, 0 when unknown) failed for lack of space:
// ENOSPC or EDQUOT, or the file system now has less than kLowSpaceBytes
// available. Never throws.
bool out_of_space(const std::filesystem::path& dir, int error_number) noexcept;

}  // namespace pixserve::http
