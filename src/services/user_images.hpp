// Level-3 user images: an authenticated user uploads FITS images into the
// user collection, decides who may read each (owner only, listed users,
// groups, or everybody) and deletes them.
//
//   GET    /api/user/images                 the caller's images and quota use (JSON)
//   PUT    /api/user/images/{name}          upload: the body is the FITS file       201
//   POST   /api/user/images/{name}          upload: multipart (field "file") or body 201
//   GET    /api/user/images/{name}          one of the caller's images (JSON)
//   DELETE /api/user/images/{name}          remove it (owner only)                   204
//   POST   /api/user/images/{name}/acl      POLICY=owner|public|shared|data-rights, USER=..., GROUP=...
//
// An upload goes through repo::ingest (the same validation and atomic
// registration as `pixserve ingest --owner U`): a real FITS image with a
// celestial WCS and no survey DSTYPE, at most max_file_bytes, within the
// user's quota. The file is written to a staging folder inside the
// repository, ingested (its own staging, one transaction, rename) and the
// staging folder removed whatever happens: a failed upload leaves nothing.
// The dataset ID is <collection>.user.<user>.<name>: a user can only ever
// address their own images, so another user's image is a plain 404.
//
// Uploading, changing the ACL and deleting need the write:image scope; the
// GETs need read:image. Anonymous callers get 401 with a Bearer challenge.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "auth/authenticator.hpp"
#include "http/router.hpp"
#include "services/repository_access.hpp"
#include "services/settings.hpp"

namespace pixserve::services {

void add_user_image_routes(http::Router& router, std::shared_ptr<SharedRepository> repository,
                           std::shared_ptr<const auth::Authenticator> authenticator, UserImageSettings options);

// "shared" read groups of a Level-3 image from USER and GROUP lists ("@user"
// for a user); throws dali::UsageError for a bad name or an empty share.
repo::Rights user_image_rights(const std::string& owner, const std::string& policy,
                               const std::vector<std::string>& users, const std::vector<std::string>& groups);

}  // namespace pixserve::services
