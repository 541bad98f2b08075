// RS256 JWT verification against a public key, with tokens signed here by a
// freshly generated RSA key.
#include <gtest/gtest.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "auth/jwt.hpp"

namespace pixserve {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Pkey make_key() {
  Pkey key(EVP_RSA_gen(2048));
  if (!key) throw std::runtime_error("RSA key generation failed");
  return key;
}

std::string public_pem(EVP_PKEY* key) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string sign_rs256(EVP_PKEY* key, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key);
  std::size_t len = 0;
  EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(len, '\0');
  EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(len);
  return sig;
}

std::string make_jwt(EVP_PKEY* key, const nlohmann::json& claims, const nlohmann::json& header = {{"alg", "RS256"}, {"typ", "JWT"}}) {
  const std::string input = auth::base64url_encode(header.dump()) + "." + auth::base64url_encode(claims.dump());
  return input + "." + auth::base64url_encode(sign_rs256(key, input));
}

constexpr std::int64_t kJwtNow = 1'700'000'000;

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_ = make_key().release();
    other_key_ = make_key().release();
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(key_);
    EVP_PKEY_free(other_key_);
  }
  auth::JwtVerifier verifier(std::string groups_claim = "groups") const {
    return auth::JwtVerifier(public_pem(key_), {.jwt_issuer = "https://idp.example.org",
                                                .jwt_audience = "pixserve",
                                                .jwt_user_claim = "sub",
                                                .jwt_groups_claim = std::move(groups_claim),
                                                .jwt_leeway_s = 60});
  }
  static nlohmann::json claims() {
    return {{"iss", "https://idp.example.org"}, {"aud", "pixserve"}, {"sub", "alice"},
            {"exp", kJwtNow + 600},              {"iat", kJwtNow},       {"groups", {"g1", "staff", "bad group"}}};
  }
  static EVP_PKEY* key_;
  static EVP_PKEY* other_key_;
};
EVP_PKEY* JwtTest::key_ = nullptr;
EVP_PKEY* JwtTest::other_key_ = nullptr;

TEST_F(JwtTest, ValidTokenGivesUserGroupsAndDefaultScope) {
  const auto c = verifier().verify(make_jwt(key_, claims()), kJwtNow);
  EXPECT_EQ(c.user, "alice");
  EXPECT_EQ(c.groups, (std::vector<std::string>{"g1", "staff"}));  // unusable names dropped
  EXPECT_EQ(c.scopes, std::vector<std::string>{"read:image"});
  EXPECT_EQ(c.expires, kJwtNow + 600);
}

TEST_F(JwtTest, AudienceListScopeAndCustomGroupsClaim) {
  auto c = claims();
  c["aud"] = {"other", "pixserve"};
  c["scope"] = "read:image write:image";
  c["memberOf"] = "g7 g8";
  const auto got = verifier("memberOf").verify(make_jwt(key_, c), kJwtNow);
  EXPECT_EQ(got.scopes, (std::vector<std::string>{"read:image", "write:image"}));
  EXPECT_EQ(got.groups, (std::vector<std::string>{"g7", "g8"}));
}

TEST_F(JwtTest, RefusesWrongIssuerAudienceTimesAndUser) {
  const auto v = verifier();
  auto bad = [&](const char* key, nlohmann::json value) {
    auto c = claims();
    if (value.is_null()) {
      c.erase(key);
    } else {
      c[key] = std::move(value);
    }
    return make_jwt(key_, c);
  };
  EXPECT_THROW(v.verify(bad("iss", "https://evil.example.org"), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("aud", "someone-else"), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("aud", nullptr), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("exp", nullptr), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("exp", kJwtNow - 61), kJwtNow), auth::JwtError);
  EXPECT_NO_THROW(v.verify(bad("exp", kJwtNow - 30), kJwtNow));  // within the leeway
  EXPECT_THROW(v.verify(bad("nbf", kJwtNow + 3600), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("sub", nullptr), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("sub", "alice smith"), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("sub", "survey"), kJwtNow), auth::JwtError);  // the owner of survey data
  EXPECT_THROW(v.verify(bad("sub", "SURVEY"), kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify(bad("exp", "tomorrow"), kJwtNow), auth::JwtError);
}

TEST_F(JwtTest, RefusesForgedSignaturesAndAlgorithms) {
  const auto v = verifier();
  // Signed by another key.
  EXPECT_THROW(v.verify(make_jwt(other_key_, claims()), kJwtNow), auth::JwtError);
  // Payload changed after signing.
  const std::string good = make_jwt(key_, claims());
  auto c = claims();
  c["sub"] = "mallory";
  const auto dot1 = good.find('.');
  const auto dot2 = good.find('.', dot1 + 1);
  const std::string tampered = good.substr(0, dot1 + 1) + auth::base64url_encode(c.dump()) + good.substr(dot2);
  EXPECT_THROW(v.verify(tampered, kJwtNow), auth::JwtError);
  // alg none with an empty signature.
  const std::string none = auth::base64url_encode(R"({"alg":"none"})") + "." + auth::base64url_encode(claims().dump()) + ".";
  EXPECT_THROW(v.verify(none, kJwtNow), auth::JwtError);
  // HS256 "signed" with the public key as the HMAC secret.
  const std::string pem = public_pem(key_);
  const std::string input = auth::base64url_encode(R"({"alg":"HS256"})") + "." + auth::base64url_encode(claims().dump());
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), pem.data(), static_cast<int>(pem.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &mac_len);
  const std::string hs = input + "." + auth::base64url_encode(std::string(reinterpret_cast<char*>(mac), mac_len));
  EXPECT_THROW(v.verify(hs, kJwtNow), auth::JwtError);
  // Garbage.
  EXPECT_THROW(v.verify("a.b.c", kJwtNow), auth::JwtError);
  EXPECT_THROW(v.verify("not a jwt", kJwtNow), auth::JwtError);
}

TEST_F(JwtTest, ConfigurationChecks) {
  EXPECT_THROW(auth::JwtVerifier("nonsense", {.jwt_issuer = "i", .jwt_audience = "a"}), std::invalid_argument);
  EXPECT_THROW(auth::JwtVerifier(public_pem(key_), {.jwt_issuer = "", .jwt_audience = "a"}), std::invalid_argument);
  EXPECT_THROW(auth::JwtVerifier(public_pem(key_), {.jwt_issuer = "i", .jwt_audience = ""}), std::invalid_argument);
}

TEST(Base64Url, RoundTrips) {
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    EXPECT_EQ(auth::base64url_decode(auth::base64url_encode(s)), s);
  }
  EXPECT_EQ(auth::base64url_encode("\xfb\xff"), "-_8");
  EXPECT_THROW(auth::base64url_decode("a+b/"), auth::JwtError);
  EXPECT_THROW(auth::base64url_decode("abcde"), auth::JwtError);
}

}  // namespace
}  // namespace pixserve
