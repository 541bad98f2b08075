// TAP UPLOAD by URL (TAPRegExt upload-http), fetched defensively: plain
// http only, no redirects followed, a connect/read deadline, a size limit,
// and — against server-side request forgery — every address the host
// resolves to must be public (no loopback, private, link-local, CGNAT,
// multicast or unspecified addresses, IPv4 or IPv6) unless the operator
// allows private ones. Errors are dali::UsageError naming the problem.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pixserve::tap {

struct FetchOptions {
  std::uint64_t max_bytes = 16ull << 20;
  std::chrono::milliseconds timeout{15'000};
  bool allow_private_addresses = false;
};

// The body of a 200 answer to GET `url`.
std::string fetch_upload(std::string_view url, const FetchOptions& options);

// True when `address` (textual IPv4 or IPv6) may be contacted without
// allow_private_addresses. Exposed for tests.
bool is_public_address(std::string_view address);

}  // namespace pixserve::tap
