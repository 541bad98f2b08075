#include "auth/token_store.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "auth/identity.hpp"
#include "auth/jwt.hpp"
#include "repo/dataset.hpp"

namespace pixserve::auth {
namespace {

constexpr std::string_view kPrefix = "pxs_";
constexpr std::size_t kSecretChars = 43;  // base64url of 32 bytes, unpadded

constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS auth_token (
  token_id    TEXT PRIMARY KEY,
  token_hash  TEXT NOT NULL UNIQUE,
  user_name   TEXT NOT NULL,
  groups      TEXT NOT NULL DEFAULT '',
  scopes      TEXT NOT NULL DEFAULT '',
  note        TEXT NOT NULL DEFAULT '',
  created_at  BIGINT  NOT NULL,
  expires_at  BIGINT ,
  revoked_at  BIGINT ,
  last_used   BIGINT 
);
CREATE INDEX IF NOT EXISTS auth_token_user_idx ON auth_token (user_name);
)SQL";

constexpr const char* kColumns =
    "token_id, user_name, groups, scopes, note, created_at, expires_at, revoked_at, last_used";

bool base64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string out;
  for (const auto b : buf) out += fmt::format("{:02x}", b);
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool valid_scope(std::string_view s) { return s == kScopeRead || s == kScopeWrite; }

TokenInfo read_info(db::Statement& s) {
  TokenInfo t;
  t.id = s.get_text(0);
  t.user = s.get_text(1);
  t.groups = split(s.get_text(2));
  t.scopes = split(s.get_text(3));
  t.note = s.get_text(4);
  t.created = s.get_int(5);
  t.expires = s.get_optional_int(6);
  t.revoked = s.get_optional_int(7);
  t.last_used = s.get_optional_int(8);
  return t;
}

}  // namespace

bool looks_like_opaque_token(std::string_view token) noexcept {
  if (token.size() != kPrefix.size() + kSecretChars || !token.starts_with(kPrefix)) return false;
  return std::all_of(token.begin() + static_cast<std::ptrdiff_t>(kPrefix.size()), token.end(), base64url_char);
}

std::string sha256_hex(std::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

std::optional<std::int64_t> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t unit = 1;
  switch (text.back()) {
    case 'd': unit = 86'400; text.remove_suffix(1); break;
    case 'h': unit = 3'600; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 's': text.remove_suffix(1); break;
    default: break;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value <= 0 || value > 100LL * 365 * 86'400 / unit) {
    return std::nullopt;
  }
  return value * unit;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TokenStore::TokenStore(std::unique_ptr<db::Connection> connection) : conn_(std::move(connection)) {
  if (!conn_) throw std::invalid_argument("token store: no database connection");
  conn_->exec(kSchema);
}

IssuedToken TokenStore::create(const NewTokenRequest& request, std::int64_t now) {
  if (!valid_principal_name(request.user)) {
    throw std::invalid_argument(fmt::format("user '{}': expected 1-64 characters of [A-Za-z0-9._-]", request.user));
  }
  if (repo::is_reserved_owner(request.user)) {
    throw std::invalid_argument(fmt::format(
        "user '{}' is a reserved name (the owner of the survey's own data); choose another user name", request.user));
  }
  for (const auto& g : request.groups) {
    if (!valid_principal_name(g)) throw std::invalid_argument(fmt::format("group '{}': expected 1-64 characters of [A-Za-z0-9._-]", g));
  }
  std::vector<std::string> scopes = request.scopes.empty() ? std::vector<std::string>{std::string(kScopeRead)} : request.scopes;
  for (const auto& s : scopes) {
    if (!valid_scope(s)) throw std::invalid_argument(fmt::format("scope '{}': known scopes are {} and {}", s, kScopeRead, kScopeWrite));
  }
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());

  std::array<unsigned char, 32> secret{};
  if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  IssuedToken issued;
  issued.token = std::string(kPrefix) + base64url_encode(std::string_view(reinterpret_cast<const char*>(secret.data()), secret.size()));
  TokenInfo& info = issued.info;
  info.id = random_hex(8);
  info.user = request.user;
  info.groups = request.groups;
  info.scopes = scopes;
  info.note = request.note;
  info.created = now;
  if (request.lifetime_s) info.expires = now + *request.lifetime_s;

  const std::lock_guard lock(mutex_);
  auto s = conn_->prepare(
      "INSERT INTO auth_token (token_id, token_hash, user_name, groups, scopes, note, created_at, expires_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind(1, info.id).bind(2, sha256_hex(issued.token)).bind(3, info.user).bind(4, join(info.groups));
  s->bind(5, join(info.scopes)).bind(6, info.note).bind(7, info.created).bind(8, info.expires);
  s->run();
  return issued;
}

std::vector<TokenInfo> TokenStore::list(std::string_view user) {
  const std::lock_guard lock(mutex_);
  std::string sql = fmt::format("SELECT {} FROM auth_token", kColumns);
  if (!user.empty()) sql += " WHERE user_name = ?";
  sql += " ORDER BY created_at DESC, token_id";
  auto s = conn_->prepare(sql);
  if (!user.empty()) s->bind(1, user);
  std::vector<TokenInfo> out;
  while (s->step()) out.push_back(read_info(*s));
  return out;
}

bool TokenStore::revoke(std::string_view id, std::int64_t now) {
  const std::lock_guard lock(mutex_);
  auto s = conn_->prepare("UPDATE auth_token SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL");
  s->bind(1, now).bind(2, id).run();
  return conn_->changes() > 0;
}

std::size_t TokenStore::revoke_user(std::string_view user, std::int64_t now) {
  const std::lock_guard lock(mutex_);
  auto s = conn_->prepare("UPDATE auth_token SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL");
  s->bind(1, now).bind(2, user).run();
  return static_cast<std::size_t>(conn_->changes());
}

TokenCheck TokenStore::verify(std::string_view token, std::int64_t now) {
  TokenCheck check;
  if (!looks_like_opaque_token(token)) {
    check.status = TokenStatus::malformed;
    return check;
  }
  const std::string hash = sha256_hex(token);
  const std::lock_guard lock(mutex_);
  auto s = conn_->prepare(fmt::format("SELECT {} FROM auth_token WHERE token_hash = ?", kColumns));
  s->bind(1, hash);
  if (!s->step()) {
    check.status = TokenStatus::unknown;
    return check;
  }
  TokenInfo info = read_info(*s);
  s = nullptr;  // finish the read before writing
  if (info.revoked) {
    check.status = TokenStatus::revoked;
    return check;
  }
  if (info.expires && *info.expires <= now) {
    check.status = TokenStatus::expired;
    return check;
  }
  if (!info.last_used || now - *info.last_used >= 60) {
    try {
      auto touch = conn_->prepare("UPDATE auth_token SET last_used = ? WHERE token_id = ?");
      touch->bind(1, now).bind(2, info.id).run();
      info.last_used = now;
    } catch (const db::DbError&) {
      // A busy database must not refuse a valid token: the last-use time is
      // bookkeeping.
    }
  }
  check.status = TokenStatus::ok;
  check.info = std::move(info);
  return check;
}

}  // namespace pixserve::auth
