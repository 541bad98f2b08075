#include "cli/token_commands.hpp"

#include <ctime>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "auth/token_store.hpp"
#include "repo/repository.hpp"

namespace pixserve::cli {
namespace {

std::unique_ptr<auth::TokenStore> open_store(const std::string& root) {
  const auto repository = repo::Repository::open(root);  // checks that it is a repository
  return std::make_unique<auth::TokenStore>(repository.registry_database().connect());
}

std::string when(const std::optional<std::int64_t>& t) {
  if (!t) return "-";
  const std::time_t tt = static_cast<std::time_t>(*t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

nlohmann::json info_json(const auth::TokenInfo& t) {
  return {{"id", t.id},           {"user", t.user},
          {"groups", t.groups},   {"scopes", t.scopes},
          {"note", t.note},       {"created", when(t.created)},
          {"expires", t.expires ? nlohmann::json(when(t.expires)) : nlohmann::json()},
          {"revoked", t.revoked ? nlohmann::json(when(t.revoked)) : nlohmann::json()},
          {"last_used", t.last_used ? nlohmann::json(when(t.last_used)) : nlohmann::json()}};
}

}  // namespace

void TokenCommands::add_to(CLI::App& app) {
  token_ = app.add_subcommand("token", "Create, list and revoke the bearer tokens of a repository");
  token_->require_subcommand(1);

  create_ = token_->add_subcommand("create", "Issue a token for a user; the token is printed once, on stdout");
  create_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  create_->add_option("--user", args_.user, "User name ([A-Za-z0-9._-])")->required();
  create_->add_option("--groups", args_.groups, "Groups of the user (comma-separated)")->delimiter(',');
  create_->add_option("--scope", args_.scopes, "Scopes: read:image (default), write:image (repeatable)")
      ->delimiter(',')
      ->check(CLI::IsMember({"read:image", "write:image"}));
  create_->add_option("--expires", args_.expires, "Lifetime, e.g. 30d, 12h, 90m, 3600s (default: never expires)");
  create_->add_option("--note", args_.note, "A note shown by token list");
  create_->add_option("--format", args_.format, "Output: the token alone (text) or JSON with its id")
      ->check(CLI::IsMember({"text", "json", "table"}));

  list_ = token_->add_subcommand("list", "List tokens (never the tokens themselves)");
  list_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  list_->add_option("--user", args_.user, "Only this user's tokens");
  list_->add_option("--format", args_.format, "Output format")->capture_default_str()->check(CLI::IsMember({"table", "json"}));

  revoke_ = token_->add_subcommand("revoke", "Revoke tokens by id, or every token of a user");
  revoke_->add_option("--repo", args_.repo, "Repository directory")->required()->check(CLI::ExistingDirectory);
  revoke_->add_option("ids", args_.ids, "Token ids (from token list)");
  revoke_->add_option("--user", args_.user, "Revoke every token of this user");
}

std::optional<int> TokenCommands::run() {
  if (!token_ || !token_->parsed()) return std::nullopt;
  if (create_->parsed()) return run_create();
  if (list_->parsed()) return run_list();
  if (revoke_->parsed()) return run_revoke();
  return 2;
}

int TokenCommands::run_create() {
  auth::NewTokenRequest request;
  request.user = args_.user;
  request.groups = args_.groups;
  request.scopes = args_.scopes;
  request.note = args_.note;
  if (!args_.expires.empty()) {
    request.lifetime_s = auth::parse_duration(args_.expires);
    if (!request.lifetime_s) throw CLI::ValidationError("--expires", "expected a positive duration like 30d, 12h, 90m or 3600s");
  }
  auto store = open_store(args_.repo);
  const auto issued = store->create(request);
  if (args_.format == "json") {
    auto j = info_json(issued.info);
    j["token"] = issued.token;
    std::cout << j.dump(1) << "\n";
  } else {
    std::cout << issued.token << "\n";
  }
  std::cerr << fmt::format("token {} for user {} (groups {}, scopes {}, expires {}); it is shown only now\n",
                           issued.info.id, issued.info.user, joined(issued.info.groups), joined(issued.info.scopes),
                           when(issued.info.expires));
  return 0;
}

int TokenCommands::run_list() {
  auto store = open_store(args_.repo);
  const auto tokens = store->list(args_.user);
  if (args_.format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : tokens) out.push_back(info_json(t));
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  std::cout << fmt::format("{:<16}  {:<16}  {:<24}  {:<22}  {:<20}  {:<20}  {:<20}  {}\n", "id", "user", "groups",
                           "scopes", "expires", "revoked", "last used", "note");
  for (const auto& t : tokens) {
    std::cout << fmt::format("{:<16}  {:<16}  {:<24}  {:<22}  {:<20}  {:<20}  {:<20}  {}\n", t.id, t.user,
                             joined(t.groups), joined(t.scopes), when(t.expires), when(t.revoked), when(t.last_used),
                             t.note);
  }
  return 0;
}

int TokenCommands::run_revoke() {
  if (args_.ids.empty() && args_.user.empty()) throw CLI::ValidationError("revoke", "give token ids or --user");
  auto store = open_store(args_.repo);
  int status = 0;
  for (const auto& id : args_.ids) {
    if (store->revoke(id)) {
      std::cout << "revoked " << id << "\n";
    } else {
      std::cerr << "no unrevoked token " << id << "\n";
      status = 1;
    }
  }
  if (!args_.user.empty()) std::cout << fmt::format("revoked {} tokens of {}\n", store->revoke_user(args_.user), args_.user);
  return status;
}

}  // namespace pixserve::cli
