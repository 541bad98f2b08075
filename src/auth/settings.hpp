// Identity and rights (section `auth` of the configuration file): the
// Authenticator's realm and role groups, and the external identity
// provider whose JWTs are accepted. The defaults are the member
// initialisers; auth_section() declares the keys (settings/settings.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "settings/settings.hpp"

namespace pixserve::auth {

struct AuthSettings {
  std::string realm = "pixserve";  // WWW-Authenticate realm
  // Members of these groups hold data rights (ReadPolicy data-rights).
  std::vector<std::string> data_rights_groups{"data-rights"};
  // Members of these groups see visit data before the end of its embargo.
  std::vector<std::string> embargo_exempt_groups{"staff"};
  std::filesystem::path jwt_public_key{};  // PEM file of the identity provider's RSA key; empty: no JWT
  std::string jwt_issuer{};                // required with jwt_public_key
  std::string jwt_audience{};              // required with jwt_public_key
  std::string jwt_user_claim = "sub";
  std::string jwt_groups_claim = "groups";  // a list of strings, or one space-separated string
  std::int64_t jwt_leeway_s = 60;
  friend bool operator==(const AuthSettings&, const AuthSettings&) = default;
};

const settings::Section<AuthSettings>& auth_section();

}  // namespace pixserve::auth
