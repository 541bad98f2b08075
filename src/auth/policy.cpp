#include "auth/policy.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <fmt/format.h>

#include "repo/astro_units.hpp"

namespace pixserve::auth {
namespace {

using Op = Condition::Op;

Condition leaf(Op op, std::string text = {}, double mjd = 0.0) { return Condition{.op = op, .text = std::move(text), .mjd = mjd, .terms = {}}; }

// all_of / any_of with constant terms folded: all_of() is always, any_of()
// never; a never in all_of (always in any_of) decides it.
Condition combine(Op op, std::vector<Condition> terms) {
  const Op absorbing = op == Op::all_of ? Op::never : Op::always;
  const Op neutral = op == Op::all_of ? Op::always : Op::never;
  std::vector<Condition> kept;
  for (auto& t : terms) {
    if (t.op == absorbing) return leaf(absorbing);
    if (t.op == neutral) continue;
    kept.push_back(std::move(t));
  }
  if (kept.empty()) return leaf(neutral);
  if (kept.size() == 1) return std::move(kept.front());
  return Condition{.op = op, .text = {}, .mjd = 0.0, .terms = std::move(kept)};
}

// Group names usable as read_groups items: what the registry can store in
// its comma-separated list and read back.
bool storable_item(std::string_view s) {
  return !s.empty() && s.find(',') == std::string_view::npos;
}

}  // namespace

bool valid_principal_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  if (!std::isalnum(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string user_entry(std::string_view user) { return "@" + std::string(user); }

std::vector<repo::DatasetRecord> find_readable(repo::Registry& registry, repo::DatasetQuery query, const Identity& who,
                                               double now_mjd) {
  return registry.find(readable_query(std::move(query), who, now_mjd, registry.connection().dialect()));
}

repo::DatasetQuery readable_query(repo::DatasetQuery query, const Identity& who, double now_mjd, db::Dialect dialect) {
  query.access = visibility_sql(who, now_mjd, dialect);
  return query;
}

std::string_view to_string(Audience audience) {
  switch (audience) {
    case Audience::public_: return "public";
    case Audience::data_rights: return "data-rights";
  }
  return "public";
}

std::optional<Audience> audience_from_string(std::string_view text) {
  if (text == "public") return Audience::public_;
  if (text == "data-rights") return Audience::data_rights;
  return std::nullopt;
}

Identity audience_identity(Audience audience) {
  Identity who;
  who.data_rights = audience == Audience::data_rights;
  return who;
}

std::string why_unreadable(const Identity& who, const repo::DatasetRecord& record, double now_mjd) {
  if (may_read(who, record, now_mjd)) return {};
  const auto& r = record.rights;
  switch (r.policy) {
    case repo::ReadPolicy::owner: return "readable by its owner only";
    case repo::ReadPolicy::groups: return "restricted to groups";
    case repo::ReadPolicy::data_rights:
      if (!who.data_rights) return "for data-rights holders";
      break;
    case repo::ReadPolicy::public_: break;
  }
  if (r.release_mjd && *r.release_mjd > now_mjd) return "embargoed until " + repo::iso_from_mjd(*r.release_mjd);
  return "not readable";
}

Condition visibility_rule(const Identity& who, double now_mjd) {
  const std::string public_name(repo::to_string(repo::ReadPolicy::public_));
  const std::string rights_name(repo::to_string(repo::ReadPolicy::data_rights));
  const std::string groups_name(repo::to_string(repo::ReadPolicy::groups));

  std::vector<Condition> listed;
  for (const auto& g : who.groups) {
    if (valid_principal_name(g)) listed.push_back(leaf(Op::group_listed, g));
  }
  // A reserved name (the owner of survey data) is nobody: it owns nothing
  // and nothing is shared with it, whatever identity a credential claims.
  const bool somebody = !who.anonymous() && !repo::is_reserved_owner(who.user);
  if (somebody && storable_item(who.user)) listed.push_back(leaf(Op::group_listed, user_entry(who.user)));

  std::vector<Condition> allowed;
  allowed.push_back(leaf(Op::policy_is, public_name));
  if (who.data_rights) allowed.push_back(leaf(Op::policy_is, rights_name));
  allowed.push_back(combine(Op::all_of, {leaf(Op::policy_is, groups_name), combine(Op::any_of, std::move(listed))}));

  Condition released = who.staff ? leaf(Op::always) : leaf(Op::released_by, {}, now_mjd);
  Condition by_policy = combine(Op::all_of, {std::move(released), combine(Op::any_of, std::move(allowed))});
  Condition owner = somebody ? leaf(Op::owner_is, who.user) : leaf(Op::never);
  return combine(Op::any_of, {std::move(owner), std::move(by_policy)});
}

bool evaluate(const Condition& c, const repo::DatasetRecord& r) {
  switch (c.op) {
    case Op::always:
      return true;
    case Op::never:
      return false;
    case Op::owner_is:
      return r.rights.owner == c.text;
    case Op::policy_is:
      return repo::to_string(r.rights.policy) == c.text;
    case Op::group_listed:
      return std::find(r.rights.groups.begin(), r.rights.groups.end(), c.text) != r.rights.groups.end();
    case Op::released_by:
      return !r.rights.release_mjd || *r.rights.release_mjd <= c.mjd;
    case Op::all_of:
      return std::all_of(c.terms.begin(), c.terms.end(), [&](const Condition& t) { return evaluate(t, r); });
    case Op::any_of:
      return std::any_of(c.terms.begin(), c.terms.end(), [&](const Condition& t) { return evaluate(t, r); });
  }
  return false;
}

namespace {

void print_sql(const Condition& c, db::Dialect dialect, std::string_view prefix, repo::SqlFilter& out) {
  const auto col = [&](std::string_view name) { return fmt::format("{}{}", prefix, name); };
  switch (c.op) {
    case Op::always:
      out.sql += "1 = 1";
      return;
    case Op::never:
      out.sql += "1 = 0";
      return;
    case Op::owner_is:
      out.sql += col("owner") + " = ?";
      out.params.emplace_back(c.text);
      return;
    case Op::policy_is:
      out.sql += col("read_policy") + " = ?";
      out.params.emplace_back(c.text);
      return;
    case Op::group_listed:
      // read_groups is "a,b,c": the item is listed when ",item," occurs in
      // ",a,b,c," (a plain substring test: no LIKE wildcards to escape).
      out.sql += dialect == db::Dialect::postgresql
                     ? fmt::format("strpos(',' || {} || ',', ?) > 0", col("read_groups"))
                     : fmt::format("instr(',' || {} || ',', ?) > 0", col("read_groups"));
      out.params.emplace_back("," + c.text + ",");
      return;
    case Op::released_by:
      out.sql += fmt::format("({0} IS NULL OR {0} <= ?)", col("release_mjd"));
      out.params.emplace_back(c.mjd);
      return;
    case Op::all_of:
    case Op::any_of: {
      const char* joiner = c.op == Op::all_of ? " AND " : " OR ";
      if (c.terms.empty()) {
        out.sql += c.op == Op::all_of ? "1 = 1" : "1 = 0";
        return;
      }
      out.sql += "(";
      for (std::size_t i = 0; i < c.terms.size(); ++i) {
        if (i) out.sql += joiner;
        print_sql(c.terms[i], dialect, prefix, out);
      }
      out.sql += ")";
      return;
    }
  }
}

}  // namespace

repo::SqlFilter to_sql(const Condition& condition, db::Dialect dialect, std::string_view column_prefix) {
  repo::SqlFilter out;
  print_sql(condition, dialect, column_prefix, out);
  return out;
}

bool may_read(const Identity& who, const repo::DatasetRecord& record, double now_mjd) {
  return evaluate(visibility_rule(who, now_mjd), record);
}

repo::SqlFilter visibility_sql(const Identity& who, double now_mjd, db::Dialect dialect, std::string_view column_prefix) {
  return to_sql(visibility_rule(who, now_mjd), dialect, column_prefix);
}

}  // namespace pixserve::auth
