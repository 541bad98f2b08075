// Who is calling. Every request has an Identity: an anonymous one when it
// carries no credentials, otherwise the user (and groups and scopes) that a
// token of the token store or a JWT of the configured identity provider
// names. What the identity may read is decided by auth::may_read
// (policy.hpp) and nowhere else.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace pixserve::auth {

// Scopes a token can carry.
inline constexpr std::string_view kScopeRead = "read:image";    // search, links, files, cutouts
inline constexpr std::string_view kScopeWrite = "write:image";  // upload and manage one's own Level-3 images

struct Identity {
  std::string user{};                 // empty: anonymous
  std::vector<std::string> groups{};  // group names ([A-Za-z0-9._-])
  std::vector<std::string> scopes{};  // what the credentials allow (empty for anonymous)
  bool data_rights = false;           // member of a data-rights group (sees data-rights datasets)
  bool staff = false;                 // member of an embargo-exempt group (sees visit data before release)
  std::string via{};                  // "token", "jwt" or empty (anonymous); for logs

  bool anonymous() const noexcept { return user.empty(); }
  bool in_group(std::string_view group) const {
    return std::find(groups.begin(), groups.end(), group) != groups.end();
  }
  bool has_scope(std::string_view scope) const {
    return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
  }
};

// User and group names: 1-64 characters of [A-Za-z0-9._-], starting with a
// letter or digit. (A '@' prefix in a dataset's group list names a user:
// see policy.hpp, so names never contain '@' or ','.)
bool valid_principal_name(std::string_view name) noexcept;

}  // namespace pixserve::auth
