// Opaque bearer tokens issued by `pixserve token create`, kept in the
// registry database. Only the SHA-256 of a token is stored: the token itself
// is printed once at creation and cannot be recovered (nor logged: nothing
// here logs a token). Each token has a public id (for list and revoke), a
// user, groups, scopes, an optional expiry, a revocation time and the time
// of its last use.
//
// A token reads "pxs_" followed by 43 base64url characters (32 random bytes
// from OpenSSL's RAND_bytes).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/database.hpp"

namespace pixserve::auth {

struct TokenInfo {
  std::string id{};  // public id, 16 hex characters
  std::string user{};
  std::vector<std::string> groups{};
  std::vector<std::string> scopes{};
  std::string note{};
  std::int64_t created = 0;              // unix seconds
  std::optional<std::int64_t> expires{};  // unix seconds; none: never
  std::optional<std::int64_t> revoked{};
  std::optional<std::int64_t> last_used{};
};

struct NewTokenRequest {
  std::string user{};
  std::vector<std::string> groups{};
  std::vector<std::string> scopes{};     // empty: read:image
  std::optional<std::int64_t> lifetime_s{};  // none: never expires
  std::string note{};
};

struct IssuedToken {
  std::string token{};  // the secret: shown once
  TokenInfo info{};
};

enum class TokenStatus { ok, malformed, unknown, expired, revoked };

struct TokenCheck {
  TokenStatus status = TokenStatus::unknown;
  TokenInfo info{};  // set when ok
};

// True for a string of the opaque token form (says nothing of its validity).
bool looks_like_opaque_token(std::string_view token) noexcept;
// SHA-256 of bytes, lowercase hex.
std::string sha256_hex(std::string_view bytes);
// "30d", "12h", "90m", "3600s", "3600" -> seconds; nullopt when malformed or not positive.
std::optional<std::int64_t> parse_duration(std::string_view text);
std::int64_t unix_now();

class TokenStore {
 public:
  // The store on its own connection to the registry database (SQLite or
  // PostgreSQL); the table is created on first use.
  explicit TokenStore(std::unique_ptr<db::Connection> connection);
  TokenStore(const TokenStore&) = delete;
  TokenStore& operator=(const TokenStore&) = delete;

  // Throws std::invalid_argument for a bad user, group or scope name.
  IssuedToken create(const NewTokenRequest& request, std::int64_t now = unix_now());
  // Tokens, newest first; of one user when `user` is not empty.
  std::vector<TokenInfo> list(std::string_view user = {});
  // Revokes one token by its id; false when there is no such unrevoked token.
  bool revoke(std::string_view id, std::int64_t now = unix_now());
  // Revokes every token of a user; returns how many.
  std::size_t revoke_user(std::string_view user, std::int64_t now = unix_now());
  // Checks a presented token. Records the use (at most once a minute per token).
  TokenCheck verify(std::string_view token, std::int64_t now = unix_now());

 private:
  std::mutex mutex_;
  std::unique_ptr<db::Connection> conn_;
};

}  // namespace pixserve::auth
