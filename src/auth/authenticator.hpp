// Resolution of a request's credentials into an Identity.
//
//   Authorization: Bearer <token>
//
// where the token is an opaque token of the token store ("pxs_...") or, when
// an identity provider is configured, an RS256 JWT. No Authorization header:
// the anonymous identity. Anything else is refused (RFC 6750):
//   - a header that is not "Bearer <token>":     400 error="invalid_request"
//   - a malformed, unknown, expired or revoked
//     token, or a JWT that does not verify:      401 error="invalid_token"
//   - a valid token without the needed scope:    403 error="insufficient_scope"
// each with a WWW-Authenticate: Bearer realm="..." challenge. Endpoints that
// need a user (uploads) refuse the anonymous identity with a bare 401
// challenge (AuthError::authentication_required).
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.hpp"
#include "auth/jwt.hpp"
#include "auth/settings.hpp"
#include "auth/token_store.hpp"
#include "http/request.hpp"

namespace pixserve::auth {

class AuthError : public std::runtime_error {
 public:
  // error_code: "invalid_request", "invalid_token", "insufficient_scope", or
  // empty (no credentials where they are needed). The message is shown to the
  // client (never the token).
  AuthError(int status, std::string error_code, std::string message, std::string realm, std::string scope = {});
  static AuthError authentication_required(std::string realm, std::string message = "authentication required");

  int status() const noexcept { return status_; }
  const std::string& error_code() const noexcept { return error_code_; }
  // The WWW-Authenticate header value.
  std::string challenge() const;

 private:
  int status_;
  std::string error_code_, realm_, scope_;
};

class Authenticator {
 public:
  // Either source may be absent: no store (no opaque tokens), no JWT
  // verifier (no external identity provider).
  // The realm and role groups come from `settings` (its jwt_* keys are the
  // verifier's).
  Authenticator(AuthSettings settings, std::shared_ptr<TokenStore> tokens, std::shared_ptr<const JwtVerifier> jwt);

  // The caller of a request; throws AuthError. A non-anonymous identity
  // without `required_scope` (when not empty) is refused with 403.
  Identity resolve(const http::Request& request, std::string_view required_scope = kScopeRead) const;
  // The same from the Authorization header's value (nullopt: none).
  Identity resolve_authorization(std::optional<std::string_view> authorization, std::string_view required_scope,
                                 std::int64_t now) const;

  const AuthSettings& settings() const noexcept { return settings_; }

 private:
  Identity with_roles(Identity who) const;
  AuthSettings settings_;
  std::shared_ptr<TokenStore> tokens_;
  std::shared_ptr<const JwtVerifier> jwt_;
};

}  // namespace pixserve::auth
