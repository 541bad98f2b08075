// TAP UPLOAD by URL (TAPRegExt upload-http), fetched defensively: plain
// http only, no redirects followed, a connect/read deadline, a size limit,
// and — against server-side request forgery — every address the host
// resolves to must be public (no loopback, private, link-local, CGNAT,
// multicast or unspecified addresses, IPv4 or IPv6) unless the operator
// allows private ones. Errors are dali::UsageError naming the problem.
#pragma once

#include <string>
#include <string_view>

#include "tap/settings.hpp"

namespace pixserve::tap {

// The body of a 200 answer to GET `url`, within the limits of
// max_upload_bytes, upload_fetch_timeout and upload_allow_private_hosts.
std::string fetch_upload(std::string_view url, const TapSettings& settings);

// True when `address` (textual IPv4 or IPv6) may be contacted without
// upload_allow_private_hosts. Exposed for tests.
bool is_public_address(std::string_view address);

}  // namespace pixserve::tap
