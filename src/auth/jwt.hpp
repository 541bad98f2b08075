// JSON Web Tokens (RFC 7519) signed with RS256 by an external identity
// provider, verified against its configured public key (PEM). Only RS256 is
// accepted (never "none", never an HMAC algorithm with the public key as the
// secret). Checked: the signature, "iss" equal to the configured issuer,
// "aud" (a string or a list) containing the configured audience, "exp"
// (required) and "nbf" (if present) with a small leeway.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/settings.hpp"

namespace pixserve::auth {

// Why a JWT was refused; what() is safe to show the client.
class JwtError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct JwtClaims {
  std::string user{};
  std::vector<std::string> groups{};
  std::vector<std::string> scopes{};  // "scope" (space-separated) or "scp" (list); none: read:image
  std::int64_t expires = 0;
};

// True for three dot-separated base64url parts (says nothing of validity).
bool looks_like_jwt(std::string_view token) noexcept;

class JwtVerifier {
 public:
  // The provider's RSA public key (PEM "PUBLIC KEY") and the jwt_* keys of
  // the auth settings (issuer, audience, claim names, leeway). Throws
  // std::invalid_argument when the key does not load or issuer or audience
  // is empty.
  JwtVerifier(std::string_view public_key_pem, AuthSettings settings);
  ~JwtVerifier();
  JwtVerifier(JwtVerifier&&) noexcept;
  JwtVerifier& operator=(JwtVerifier&&) noexcept;

  // The claims of a valid token; throws JwtError otherwise.
  JwtClaims verify(std::string_view token, std::int64_t now) const;

 private:
  struct Key;
  AuthSettings settings_;
  std::unique_ptr<Key> key_;
};

// The verifier of config.jwt_public_key's provider (that file read), or
// null when none is configured. Throws settings::ConfigError naming
// auth.jwt_public_key when the file cannot be read or holds no usable key.
std::shared_ptr<const JwtVerifier> load_jwt_verifier(const AuthSettings& config);

// base64url without padding (also the text of opaque tokens).
std::string base64url_encode(std::string_view bytes);
std::string base64url_decode(std::string_view text);  // throws JwtError

}  // namespace pixserve::auth
