#include "auth/authenticator.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "repo/dataset.hpp"

namespace pixserve::auth {
namespace {

// A quoted-string of a challenge parameter: no quotes or backslashes or
// control characters inside (the texts here are ours, but be strict).
std::string quoted_param(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || b < 0x20 || b >= 0x7f) continue;
    out += c;
  }
  return out + "\"";
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

AuthError::AuthError(int status, std::string error_code, std::string message, std::string realm, std::string scope)
    : std::runtime_error(std::move(message)),
      status_(status),
      error_code_(std::move(error_code)),
      realm_(std::move(realm)),
      scope_(std::move(scope)) {}

AuthError AuthError::authentication_required(std::string realm, std::string message) {
  return AuthError(401, "", std::move(message), std::move(realm));
}

std::string AuthError::challenge() const {
  std::string out = "Bearer realm=" + quoted_param(realm_);
  if (!error_code_.empty()) {
    out += ", error=" + quoted_param(error_code_);
    out += ", error_description=" + quoted_param(what());
  }
  if (!scope_.empty()) out += ", scope=" + quoted_param(scope_);
  return out;
}

Authenticator::Authenticator(AuthSettings settings, std::shared_ptr<TokenStore> tokens,
                             std::shared_ptr<const JwtVerifier> jwt)
    : settings_(std::move(settings)), tokens_(std::move(tokens)), jwt_(std::move(jwt)) {}

Identity Authenticator::with_roles(Identity who) const {
  const auto member_of_any = [&](const std::vector<std::string>& groups) {
    return std::any_of(groups.begin(), groups.end(), [&](const std::string& g) { return who.in_group(g); });
  };
  who.data_rights = member_of_any(settings_.data_rights_groups);
  who.staff = member_of_any(settings_.embargo_exempt_groups);
  return who;
}

Identity Authenticator::resolve(const http::Request& request, std::string_view required_scope) const {
  return resolve_authorization(request.header("Authorization"), required_scope, unix_now());
}

Identity Authenticator::resolve_authorization(std::optional<std::string_view> authorization,
                                              std::string_view required_scope, std::int64_t now) const {
  if (!authorization) return Identity{};
  const std::string_view value = *authorization;
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !ascii_iequal(value.substr(0, space), "Bearer")) {
    throw AuthError(400, "invalid_request", "the Authorization header must be: Bearer <token>", settings_.realm);
  }
  std::string_view token = value.substr(space + 1);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  const auto invalid = [&](std::string message) {
    return AuthError(401, "invalid_token", std::move(message), settings_.realm);
  };
  if (token.empty()) throw invalid("the bearer token is empty");

  Identity who;
  if (looks_like_opaque_token(token)) {
    if (!tokens_) throw invalid("the token is not valid");
    const auto check = tokens_->verify(token, now);
    switch (check.status) {
      case TokenStatus::ok:
        break;
      case TokenStatus::expired:
        throw invalid("the token has expired");
      case TokenStatus::revoked:
        throw invalid("the token has been revoked");
      case TokenStatus::malformed:
      case TokenStatus::unknown:
        throw invalid("the token is not valid");
    }
    who.user = check.info.user;
    who.groups = check.info.groups;
    who.scopes = check.info.scopes;
    who.via = "token";
  } else if (jwt_ && looks_like_jwt(token)) {
    try {
      auto claims = jwt_->verify(token, now);
      who.user = std::move(claims.user);
      who.groups = std::move(claims.groups);
      who.scopes = std::move(claims.scopes);
      who.via = "jwt";
    } catch (const JwtError& e) {
      throw invalid(e.what());
    }
  } else {
    throw invalid("the token is malformed");
  }
  // Tokens made before names were reserved, or written to the store by
  // hand, must not act as the survey either.
  if (repo::is_reserved_owner(who.user)) throw invalid("the token's user name is reserved on this server");
  if (!required_scope.empty() && !who.has_scope(required_scope)) {
    throw AuthError(403, "insufficient_scope", fmt::format("the token does not grant {}", required_scope),
                    settings_.realm, std::string(required_scope));
  }
  return with_roles(std::move(who));
}

}  // namespace pixserve::auth
