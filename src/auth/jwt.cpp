#include "auth/jwt.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "auth/identity.hpp"
#include "repo/dataset.hpp"

namespace pixserve::auth {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int sextet(char c) {
  const auto at = kAlphabet.find(c);
  return at == std::string_view::npos ? -1 : static_cast<int>(at);
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

nlohmann::json parse_part(std::string_view part, const char* what) {
  try {
    auto j = nlohmann::json::parse(base64url_decode(part));
    if (!j.is_object()) throw JwtError(std::string("the token's ") + what + " is not a JSON object");
    return j;
  } catch (const nlohmann::json::exception&) {
    throw JwtError(std::string("the token's ") + what + " is not JSON");
  }
}

std::int64_t numeric_date(const nlohmann::json& claims, const char* name) {
  const auto& v = claims.at(name);
  if (!v.is_number()) throw JwtError(std::string("claim ") + name + " is not a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) throw JwtError(std::string("claim ") + name + " is not a number");
  return static_cast<std::int64_t>(d);
}

std::vector<std::string> string_list(const nlohmann::json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    std::istringstream in(v.get<std::string>());
    std::string item;
    while (in >> item) out.push_back(item);
  } else if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_string()) out.push_back(item.get<std::string>());
    }
  }
  return out;
}

}  // namespace

struct JwtVerifier::Key {
  struct Free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
  };
  std::unique_ptr<EVP_PKEY, Free> pkey;
};

std::string base64url_encode(std::string_view bytes) {
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(buffer >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 0x3f];
  return out;
}

std::string base64url_decode(std::string_view text) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) throw JwtError("the token is not valid base64url");
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    const int v = sextet(c);
    if (v < 0) throw JwtError("the token is not valid base64url");
    buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xff);
    }
  }
  return out;
}

bool looks_like_jwt(std::string_view token) noexcept {
  if (token.size() > 16384) return false;
  int dots = 0;
  for (const char c : token) {
    if (c == '.') {
      ++dots;
    } else if (sextet(c) < 0) {
      return false;
    }
  }
  return dots == 2;
}

JwtVerifier::JwtVerifier(std::string_view public_key_pem, AuthSettings settings)
    : settings_(std::move(settings)), key_(std::make_unique<Key>()) {
  if (settings_.jwt_issuer.empty()) throw std::invalid_argument("JWT verification needs an issuer");
  if (settings_.jwt_audience.empty()) throw std::invalid_argument("JWT verification needs an audience");
  if (settings_.jwt_user_claim.empty() || settings_.jwt_groups_claim.empty()) throw std::invalid_argument("JWT claim names must not be empty");
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(public_key_pem.data(), static_cast<int>(public_key_pem.size())));
  if (!bio) throw std::invalid_argument("cannot read the JWT public key");
  key_->pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key_->pkey) throw std::invalid_argument("the JWT public key is not a PEM public key");
  if (EVP_PKEY_base_id(key_->pkey.get()) != EVP_PKEY_RSA) throw std::invalid_argument("the JWT public key is not an RSA key (RS256)");
}

JwtVerifier::~JwtVerifier() = default;
JwtVerifier::JwtVerifier(JwtVerifier&&) noexcept = default;
JwtVerifier& JwtVerifier::operator=(JwtVerifier&&) noexcept = default;

JwtClaims JwtVerifier::verify(std::string_view token, std::int64_t now) const {
  if (!looks_like_jwt(token)) throw JwtError("the token is not a JWT");
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  const std::string_view header_part = token.substr(0, first);
  const std::string_view payload_part = token.substr(first + 1, second - first - 1);
  const std::string_view signature_part = token.substr(second + 1);

  const auto header = parse_part(header_part, "header");
  if (!header.contains("alg") || header["alg"] != "RS256") throw JwtError("the token's algorithm is not RS256");
  if (header.contains("crit")) throw JwtError("the token has critical header parameters");

  const std::string signature = base64url_decode(signature_part);
  const std::string_view signed_part = token.substr(0, second);
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_->pkey.get()) != 1) {
    throw JwtError("cannot verify the token's signature");
  }
  if (EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                       reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) != 1) {
    throw JwtError("the token's signature is not valid");
  }

  const auto claims = parse_part(payload_part, "payload");
  try {
    if (!claims.contains("iss") || claims["iss"] != settings_.jwt_issuer) throw JwtError("the token's issuer is not accepted");
    const auto& aud = claims.contains("aud") ? claims["aud"] : nlohmann::json();
    const auto audiences = string_list(aud.is_string() ? nlohmann::json::array({aud}) : aud);
    if (std::find(audiences.begin(), audiences.end(), settings_.jwt_audience) == audiences.end()) {
      throw JwtError("the token is not for this service (audience)");
    }
    if (!claims.contains("exp")) throw JwtError("the token has no expiry");
    JwtClaims out;
    out.expires = numeric_date(claims, "exp");
    if (out.expires + settings_.jwt_leeway_s <= now) throw JwtError("the token has expired");
    if (claims.contains("nbf") && numeric_date(claims, "nbf") - settings_.jwt_leeway_s > now) {
      throw JwtError("the token is not valid yet");
    }
    if (!claims.contains(settings_.jwt_user_claim) || !claims[settings_.jwt_user_claim].is_string()) {
      throw JwtError("the token names no user");
    }
    out.user = claims[settings_.jwt_user_claim].get<std::string>();
    if (!valid_principal_name(out.user)) throw JwtError("the token's user name is not usable here");
    if (repo::is_reserved_owner(out.user)) throw JwtError("the token's user name is reserved on this server");
    if (claims.contains(settings_.jwt_groups_claim)) {
      for (auto& g : string_list(claims[settings_.jwt_groups_claim])) {
        if (valid_principal_name(g)) out.groups.push_back(std::move(g));
      }
    }
    if (claims.contains("scope")) {
      out.scopes = string_list(claims["scope"]);
    } else if (claims.contains("scp")) {
      out.scopes = string_list(claims["scp"]);
    } else {
      out.scopes = {std::string(kScopeRead)};
    }
    return out;
  } catch (const nlohmann::json::exception&) {
    throw JwtError("the token's claims are malformed");
  }
}

std::shared_ptr<const JwtVerifier> load_jwt_verifier(const AuthSettings& config) {
  if (config.jwt_public_key.empty()) return nullptr;
  std::ifstream in(config.jwt_public_key, std::ios::binary);
  if (!in) throw settings::ConfigError("auth.jwt_public_key: cannot read " + config.jwt_public_key.string());
  std::ostringstream pem;
  pem << in.rdbuf();
  try {
    return std::make_shared<const JwtVerifier>(pem.str(), config);
  } catch (const std::invalid_argument& e) {
    throw settings::ConfigError(std::string("auth.jwt_public_key: ") + e.what());
  }
}

}  // namespace pixserve::auth
