// The identity an asynchronous job acts with: its owner's, as the
// credentials of the request that created the job said. It is recorded by
// the server with the job (NewJob::owner_context, set from
// RouteOptions::owner_context), never taken from a job parameter, so a
// client cannot give itself groups or rights.
//
// Encoding: "v1\x1f<user>\x1f<groups>\x1f<scopes>\x1f<data_rights>\x1f<staff>"
// with comma-separated lists (names are [A-Za-z0-9._-] and ':' in scopes,
// so neither ',' nor the unit separator can occur in them).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "auth/authenticator.hpp"
#include "auth/identity.hpp"
#include "dali/service.hpp"
#include "uws/job.hpp"
#include "uws/routes.hpp"

namespace pixserve::uws {

inline std::string encode_job_identity(const auth::Identity& who) {
  if (who.anonymous()) return {};
  const auto join = [](const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
      if (item.find(',') != std::string::npos || item.find('\x1f') != std::string::npos) continue;
      if (!out.empty()) out += ',';
      out += item;
    }
    return out;
  };
  std::string out = "v1\x1f";
  out += who.user + '\x1f' + join(who.groups) + '\x1f' + join(who.scopes) + '\x1f' + (who.data_rights ? "1" : "0") +
         '\x1f' + (who.staff ? "1" : "0");
  return out;
}

// The identity of a job's owner. A job without a (valid) record, or whose
// record names another user than its owner, acts as its owner name alone
// (no groups, no rights beyond ownership); an anonymous job as anonymous.
inline auth::Identity job_identity(const Job& job) {
  auth::Identity who;
  if (job.owner == anonymous_owner || job.owner.empty()) return who;
  who.user = job.owner;
  std::vector<std::string> fields;
  std::string_view rest = job.owner_context;
  while (true) {
    const auto at = rest.find('\x1f');
    fields.emplace_back(rest.substr(0, at));
    if (at == std::string_view::npos) break;
    rest.remove_prefix(at + 1);
  }
  if (fields.size() != 6 || fields[0] != "v1" || fields[1] != job.owner) return who;
  const auto split = [](std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
      const auto at = text.find(',');
      out.emplace_back(text.substr(0, at));
      if (at == std::string_view::npos) break;
      text.remove_prefix(at + 1);
    }
    return out;
  };
  who.groups = split(fields[2]);
  who.scopes = split(fields[3]);
  who.data_rights = fields[4] == "1";
  who.staff = fields[5] == "1";
  who.via = "job";
  return who;
}

// Job ownership for UWS routes from the app's identify hook (empty:
// everyone anonymous): a job belongs to its caller's user name, records
// the caller's rights, and refused credentials are answered with 401/403
// and a WWW-Authenticate challenge.
inline void set_job_owner(RouteOptions& routes, const dali::IdentifyHook& identify) {
  if (!identify) return;
  const auto who = [identify](const http::Request& request) {
    try {
      return identify(request);
    } catch (const auth::AuthError& e) {
      throw IdentityRefused(dali::auth_error_response(e));
    }
  };
  routes.identify = [who](const http::Request& request) { return who(request).user; };
  routes.owner_context = [who](const http::Request& request) { return encode_job_identity(who(request)); };
}

}  // namespace pixserve::uws
