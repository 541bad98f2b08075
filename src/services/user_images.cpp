#include "services/user_images.hpp"

#include <unistd.h>

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "auth/identity.hpp"
#include "auth/policy.hpp"
#include "dali/service.hpp"
#include "db/database.hpp"
#include "http/params.hpp"
#include "repo/metadata.hpp"
#include "repo/repository.hpp"
#include "services/datalink.hpp"
#include "services/links.hpp"
#include "services/obscore_fields.hpp"

namespace pixserve::services {
namespace {

namespace fs = std::filesystem;

bool valid_image_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
         });
}

std::string random_suffix() {
  std::array<unsigned char, 8> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string out;
  for (const auto b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

// A folder removed with its contents when it goes out of scope.
class StagingFolder {
 public:
  explicit StagingFolder(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  StagingFolder(const StagingFolder&) = delete;
  StagingFolder& operator=(const StagingFolder&) = delete;
  ~StagingFolder() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const noexcept { return dir_; }

 private:
  fs::path dir_;
};

void write_blob(const http::Blob& blob, const fs::path& target) {
  if (blob.in_memory()) {
    std::ofstream out(target, std::ios::binary | std::ios::trunc);
    const auto data = blob.data();
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) throw std::runtime_error("cannot write the uploaded file");
  } else {
    fs::copy_file(blob.path(), target, fs::copy_options::overwrite_existing);
  }
}

// An exception message with the staging path replaced by the image name,
// and only its first line (ingest lists problems on further lines).
std::string client_message(std::string message, const fs::path& staged, const std::string& name) {
  const std::string path = staged.string();
  for (auto at = message.find(path); at != std::string::npos; at = message.find(path, at)) {
    message.replace(at, path.size(), name);
    at += name.size();
  }
  const auto root = staged.parent_path().string();
  for (auto at = message.find(root); at != std::string::npos; at = message.find(root, at)) message.replace(at, root.size(), "");
  return message;
}

nlohmann::json acl_json(const repo::Rights& rights) {
  nlohmann::json users = nlohmann::json::array();
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : rights.groups) {
    if (!g.empty() && g.front() == '@') {
      users.push_back(g.substr(1));
    } else {
      groups.push_back(g);
    }
  }
  std::string policy;
  switch (rights.policy) {
    case repo::ReadPolicy::public_: policy = "public"; break;
    case repo::ReadPolicy::owner: policy = "owner"; break;
    case repo::ReadPolicy::groups: policy = "shared"; break;
    case repo::ReadPolicy::data_rights: policy = "data-rights"; break;
  }
  return {{"policy", policy}, {"users", users}, {"groups", groups}};
}

nlohmann::json image_json(const SharedRepository& repository, const http::Request& request, const repo::DatasetRecord& r,
                          const std::string& name) {
  const std::string base = request.base_url();
  return {{"name", name},
          {"dataset_id", r.dataset_id},
          {"publisher_did", repository.publisher_did(r.dataset_id)},
          {"size", r.file_size},
          {"width", r.width},
          {"height", r.height},
          {"file", file_url(base, r.dataset_id)},
          {"datalink", datalink_url(base, repository.publisher_did(r.dataset_id))},
          {"acl", acl_json(r.rights)}};
}

http::Response json_response(int status, const nlohmann::json& j) {
  auto res = http::Response::text(status, j.dump(1) + "\n", "application/json");
  res.headers.set("Cache-Control", "no-store");
  return res;
}

std::vector<std::string> list_param(const http::Request& request, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& value : request.params().all(name)) {
    std::string item;
    for (const char c : value + ",") {
      if (c == ',' || c == ' ') {
        if (!item.empty()) out.push_back(item);
        item.clear();
      } else {
        item += c;
      }
    }
  }
  return out;
}

struct Context {
  std::shared_ptr<SharedRepository> repository;
  std::shared_ptr<const auth::Authenticator> authenticator;
  UserImageSettings options;

  auth::Identity user(const http::Request& request, std::string_view scope) const {
    auto who = authenticator->resolve(request, scope);
    if (who.anonymous()) {
      throw auth::AuthError::authentication_required(authenticator->settings().realm,
                                                     "Level-3 images need an authenticated user (Authorization: Bearer)");
    }
    return who;
  }
  std::string name_of(const http::Request& request) const {
    std::string name(request.path_param("name"));
    if (!valid_image_name(name)) throw dali::UsageError("image names are 1-64 characters of [A-Za-z0-9_-]");
    return name;
  }
  std::string dataset_id(const auth::Identity& who, const std::string& name) const {
    return repo::make_dataset_id(options.collection, repo::DatasetType::user, {}, who.user, name);
  }
  // The caller's own image, or nullopt (also when the ID is someone else's:
  // it never is, the ID is built from the caller's name, but check).
  std::optional<repo::DatasetRecord> own(const auth::Identity& who, const std::string& id) const {
    auto record = repository->with([&](repo::Repository& r) { return r.registry().find_by_id(id); });
    if (!record || record->rights.owner != who.user || record->type != repo::DatasetType::user) return std::nullopt;
    return record;
  }
};

dali::NotFound no_such_image() { return dali::NotFound("no such image"); }

http::Response upload(const Context& ctx, const http::Request& request) {
  const auto who = ctx.user(request, auth::kScopeWrite);
  const std::string name = ctx.name_of(request);
  const http::Blob* content = &request.body();
  if (!request.files().empty()) {
    const http::UploadedFile* file = request.file("file");
    content = file ? &file->content : &request.files().front().content;
  }
  if (content->empty()) throw dali::UsageError("no file: send the FITS file as the body (PUT) or as the multipart field 'file'");
  if (content->size() > ctx.options.max_file_bytes) {
    throw dali::Overflow(fmt::format("the file has {} bytes; uploads may have at most {}", content->size(),
                                           ctx.options.max_file_bytes));
  }
  const auto policy = request.params().first("POLICY").value_or("owner");
  const repo::Rights rights = user_image_rights(who.user, policy, list_param(request, "USER"), list_param(request, "GROUP"));
  const std::string id = ctx.dataset_id(who, name);

  // Staged inside the repository (same file system: ingest hard-links it).
  StagingFolder staging(ctx.repository->root() / fmt::format(".upload-{}-{}", ::getpid(), random_suffix()));
  const fs::path staged = staging.dir() / (name + ".fits");
  write_blob(*content, staged);
  repo::DatasetRecord metadata;
  try {
    metadata = repo::read_dataset_metadata(staged, {.collection = ctx.options.collection, .owner = who.user});
  } catch (const std::exception& e) {
    throw dali::UsageError("not a usable FITS image: " + client_message(e.what(), staged, name));
  }
  if (metadata.type != repo::DatasetType::user) {
    throw dali::UsageError(fmt::format("the file declares survey dataset type {} (DSTYPE); a user image must not",
                                           repo::to_string(metadata.type)));
  }
  if (metadata.dataset_id != id) throw dali::UsageError("the image name is not usable");

  repo::IngestOptions options;
  options.collection = ctx.options.collection;
  options.transfer = repo::Transfer::hardlink;
  options.owner = who.user;
  options.policy = rights.policy;
  options.groups = rights.groups;
  options.threads = 1;
  std::optional<repo::DatasetRecord> stored;
  ctx.repository->with([&](repo::Repository& r) {
    // Checked and registered under the registry lock: two uploads of one
    // user cannot both pass the quota.
    if (r.registry().checksum_of(id)) throw dali::Conflict("an image of this name exists; DELETE it first");
    const auto [used, count] = r.registry().owned_bytes(who.user, repo::DatasetType::user);
    if (static_cast<std::uint64_t>(used) + content->size() > ctx.options.quota_bytes) {
      throw dali::Forbidden(fmt::format("quota exceeded: {} of {} bytes used by {} images", used,
                                             ctx.options.quota_bytes, count));
    }
    try {
      const auto report = repo::ingest(r, {staged}, options);
      if (report.registered != 1) throw std::runtime_error("the upload was not registered");
    } catch (const db::Unavailable&) {
      throw;  // the database is away: 503, not the image's fault
    } catch (const std::exception& e) {
      spdlog::warn("upload of {} by {} refused: {}", name, who.user, e.what());
      throw dali::UsageError("the image cannot be registered: " + client_message(e.what(), staged, name));
    }
    stored = r.registry().find_by_id(id);
  });
  if (!stored) throw std::runtime_error("the registered upload is not found");
  spdlog::info("user image {} uploaded by {} ({} bytes)", id, who.user, stored->file_size);
  auto res = json_response(201, image_json(*ctx.repository, request, *stored, name));
  res.headers.set("Location", request.base_url() + links::user_images() + "/" + name);
  return res;
}

http::Response remove(const Context& ctx, const http::Request& request) {
  const auto who = ctx.user(request, auth::kScopeWrite);
  const std::string name = ctx.name_of(request);
  const std::string id = ctx.dataset_id(who, name);
  const bool removed = ctx.repository->with([&](repo::Repository& r) {
    auto record = r.registry().find_by_id(id);
    if (!record || record->rights.owner != who.user || record->type != repo::DatasetType::user) return false;
    // The file is set aside first and put back if the registry change fails,
    // so the registry never names a missing file.
    const fs::path file = r.file_of(*record);
    const fs::path aside = r.root() / fmt::format(".deleted-{}-{}", ::getpid(), random_suffix());
    fs::rename(file, aside);
    try {
      db::Transaction tx(r.registry().connection());
      r.registry().remove(id);
      tx.commit();
    } catch (...) {
      std::error_code ec;
      fs::rename(aside, file, ec);
      throw;
    }
    std::error_code ec;
    fs::remove(aside, ec);
    fs::remove(r.root() / "cache" / "preview" / (id + ".png"), ec);
    return true;
  });
  if (!removed) throw no_such_image();
  spdlog::info("user image {} deleted by {}", id, who.user);
  return http::Response::empty(204);
}

http::Response set_acl(const Context& ctx, const http::Request& request) {
  const auto who = ctx.user(request, auth::kScopeWrite);
  const std::string name = ctx.name_of(request);
  const std::string id = ctx.dataset_id(who, name);
  const auto policy = request.params().first("POLICY");
  if (!policy) throw dali::UsageError("POLICY is required: owner, public, shared or data-rights");
  repo::Rights rights = user_image_rights(who.user, *policy, list_param(request, "USER"), list_param(request, "GROUP"));
  const auto updated = ctx.repository->with([&](repo::Repository& r) -> std::optional<repo::DatasetRecord> {
    auto record = r.registry().find_by_id(id);
    if (!record || record->rights.owner != who.user || record->type != repo::DatasetType::user) return std::nullopt;
    rights.release_mjd = record->rights.release_mjd;
    r.registry().set_rights(id, rights);
    record->rights = rights;
    return record;
  });
  if (!updated) throw no_such_image();
  return json_response(200, image_json(*ctx.repository, request, *updated, name));
}

}  // namespace

repo::Rights user_image_rights(const std::string& owner, const std::string& policy, const std::vector<std::string>& users,
                               const std::vector<std::string>& groups) {
  repo::Rights rights;
  rights.owner = owner;
  std::string p = policy;
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (p == "owner" || p == "private") {
    rights.policy = repo::ReadPolicy::owner;
  } else if (p == "public") {
    rights.policy = repo::ReadPolicy::public_;
  } else if (p == "data-rights") {
    rights.policy = repo::ReadPolicy::data_rights;
  } else if (p == "shared" || p == "users" || p == "group" || p == "groups") {
    rights.policy = repo::ReadPolicy::groups;
    for (const auto& u : users) {
      if (!auth::valid_principal_name(u)) throw dali::UsageError(fmt::format("USER '{}' is not a valid user name", u.substr(0, 64)));
      rights.groups.push_back(auth::user_entry(u));
    }
    for (const auto& g : groups) {
      if (!auth::valid_principal_name(g)) throw dali::UsageError(fmt::format("GROUP '{}' is not a valid group name", g.substr(0, 64)));
      rights.groups.push_back(g);
    }
    if (rights.groups.empty()) throw dali::UsageError("POLICY=shared needs at least one USER or GROUP");
    std::sort(rights.groups.begin(), rights.groups.end());
    rights.groups.erase(std::unique(rights.groups.begin(), rights.groups.end()), rights.groups.end());
  } else {
    throw dali::UsageError(fmt::format("POLICY '{}': expected owner, public, shared or data-rights", policy.substr(0, 40)));
  }
  return rights;
}

void add_user_image_routes(http::Router& router, std::shared_ptr<SharedRepository> repository,
                           std::shared_ptr<const auth::Authenticator> authenticator, UserImageSettings options) {
  auto ctx = std::make_shared<const Context>(Context{std::move(repository), std::move(authenticator), std::move(options)});
  // Identity is resolved inside each handler (with the scope it needs), so
  // the wrapper's hook is empty.
  const auto route = [ctx](http::Response (*fn)(const Context&, const http::Request&)) {
    // Unknown images are answered in DataLink's words ("NotFoundFault"), like the file routes.
    return dali::with_identity(
        {}, [ctx, fn](const http::Request& request, const auth::Identity&) { return fn(*ctx, request); },
        dali::ErrorVocabulary::datalink);
  };
  router.add({"PUT", "POST"}, links::user_images() + "/{name}", route(&upload));
  router.add({"DELETE"}, links::user_images() + "/{name}", route(&remove));
  router.post(links::user_images() + "/{name}/acl", route(&set_acl));
  router.get(links::user_images() + "/{name}", route(+[](const Context& c, const http::Request& request) {
    const auto who = c.user(request, auth::kScopeRead);
    const std::string name = c.name_of(request);
    const auto record = c.own(who, c.dataset_id(who, name));
    if (!record) throw no_such_image();
    return json_response(200, image_json(*c.repository, request, *record, name));
  }));
  router.get(links::user_images(), route(+[](const Context& c, const http::Request& request) {
    const auto who = c.user(request, auth::kScopeRead);
    repo::DatasetQuery q;
    q.collections = {c.options.collection};
    q.dataset_types = {"user"};
    const std::string prefix = c.options.collection + ".user." + who.user + ".";
    nlohmann::json images = nlohmann::json::array();
    std::int64_t used = 0;
    // The primary: an image uploaded a moment ago is listed.
    for (const auto& r : c.repository->find_visible(q, who, ReadFrom::primary)) {
      if (r.rights.owner != who.user || !r.dataset_id.starts_with(prefix)) continue;
      used += r.file_size;
      images.push_back(image_json(*c.repository, request, r, r.dataset_id.substr(prefix.size())));
    }
    return json_response(200, {{"user", who.user},
                               {"images", images},
                               {"used_bytes", used},
                               {"quota_bytes", c.options.quota_bytes},
                               {"max_file_bytes", c.options.max_file_bytes}});
  }));
}

}  // namespace pixserve::services
