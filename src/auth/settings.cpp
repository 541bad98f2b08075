#include "auth/settings.hpp"

#include <algorithm>
#include <cctype>

namespace pixserve::auth {

namespace {

using A = AuthSettings;

std::string check_realm(A& a) {
  // It is written inside the quotes of a WWW-Authenticate header.
  const bool ok = !a.realm.empty() && std::none_of(a.realm.begin(), a.realm.end(), [](char ch) {
    const auto b = static_cast<unsigned char>(ch);
    return b < 0x20 || b >= 0x7f || ch == '"' || ch == '\\';
  });
  return ok ? std::string() : "expected printable ASCII without quotes or backslashes, got '" + a.realm + "'";
}

// The group names tokens and JWTs may carry.
settings::Key<A>::Check group_names(std::vector<std::string> A::*list) {
  return [list](A& a) {
    for (const auto& g : a.*list) {
      const bool ok = !g.empty() && g.size() <= 64 && std::all_of(g.begin(), g.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
      });
      if (!ok) return "group names are 1-64 characters of [A-Za-z0-9._-], got '" + g + "'";
    }
    return std::string();
  };
}

std::string not_empty(const std::string& value) { return value.empty() ? "must not be empty" : std::string(); }

}  // namespace

const settings::Section<AuthSettings>& auth_section() {
  using namespace settings;
  static const auto section = make_section<A>(
      "auth", "Identity and rights (docs/auth.md). Tokens are made with `pixserve token create`.",
      {
          text("realm", &A::realm, "realm of the WWW-Authenticate: Bearer challenges").with_check(check_realm),
          list("data_rights_groups", &A::data_rights_groups, "members read datasets with the data-rights policy")
              .with_check(group_names(&A::data_rights_groups)),
          list("embargo_exempt_groups", &A::embargo_exempt_groups,
               "members see visit data before its release (embargo)")
              .with_check(group_names(&A::embargo_exempt_groups)),
          path("jwt_public_key", &A::jwt_public_key,
               "PEM \"PUBLIC KEY\" of an external identity provider whose RS256 JWTs are accepted (optional: "
               "jwt_public_key, jwt_issuer and jwt_audience, all three or none)")
              .with_example("/etc/pixserve/idp-public.pem")
              .with_check([](A& a) {
                return !a.jwt_public_key.empty() && (a.jwt_issuer.empty() || a.jwt_audience.empty())
                           ? "needs auth.jwt_issuer and auth.jwt_audience"
                           : std::string();
              }),
          text("jwt_issuer", &A::jwt_issuer, "must equal the token's iss")
              .with_example("https://idp.example.org")
              .with_check([](A& a) {
                return a.jwt_public_key.empty() && !a.jwt_issuer.empty()
                           ? "set auth.jwt_public_key too (the key verifying the tokens)"
                           : std::string();
              }),
          text("jwt_audience", &A::jwt_audience, "must be in the token's aud")
              .with_example("pixserve")
              .with_check([](A& a) {
                return a.jwt_public_key.empty() && !a.jwt_audience.empty()
                           ? "set auth.jwt_public_key too (the key verifying the tokens)"
                           : std::string();
              }),
          text("jwt_user_claim", &A::jwt_user_claim, "claim naming the user ([A-Za-z0-9._-])").with_check([](A& a) {
            return not_empty(a.jwt_user_claim);
          }),
          text("jwt_groups_claim", &A::jwt_groups_claim, "claim listing the groups (list, or space-separated string)")
              .with_check([](A& a) { return not_empty(a.jwt_groups_claim); }),
          integer("jwt_leeway_s", &A::jwt_leeway_s, {.max = 3600}, "clock skew allowed on exp and nbf"),
      });
  return section;
}

}  // namespace pixserve::auth
