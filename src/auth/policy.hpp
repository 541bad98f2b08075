// The one rights policy: may this identity read this dataset now?
//
// The policy is written once, as data: visibility_rule() builds a small
// boolean expression over a dataset's rights columns (owner, read_policy,
// read_groups, release_mjd) with the caller's identity and the time folded
// in. That one expression is then
//   - evaluated in C++ on a DatasetRecord (may_read), and
//   - printed as an SQL condition on the registry's dataset table
//     (visibility_sql), which repo::Registry::find applies inside the SQL,
//     so invisible rows are gone before LIMIT / MAXREC.
// Both come from the same rule, so they cannot disagree (the unit tests
// check it on many random records).
//
// The rule, for a caller C and a dataset D at time `now`:
//   C is D's owner                                          -> visible
//   otherwise D must be released (no release time, or release <= now,
//   or C is staff: an embargo-exempt group) and one of
//     D.policy = public
//     D.policy = data-rights and C holds data rights
//     D.policy = groups and D's list names one of C's groups, or C
//       itself as "@<user>" (Level-3 images shared with people)
//   D.policy = owner: the owner only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/identity.hpp"
#include "db/database.hpp"
#include "repo/dataset.hpp"
#include "repo/registry.hpp"

namespace pixserve::auth {

// A node of the rule.
struct Condition {
  enum class Op {
    always,        // true
    never,         // false
    owner_is,      // owner = text
    policy_is,     // read_policy = text
    group_listed,  // text is an item of read_groups
    released_by,   // release_mjd is NULL or <= mjd
    all_of,        // every term
    any_of,        // some term
  };
  Op op = Op::never;
  std::string text{};
  double mjd = 0.0;
  std::vector<Condition> terms{};
};

// The rule for one caller at one time (already simplified: constant terms
// folded away).
Condition visibility_rule(const Identity& who, double now_mjd);

// The rule evaluated on a record.
bool evaluate(const Condition& condition, const repo::DatasetRecord& record);

// The rule as an SQL condition on the registry's dataset table; column
// names get `column_prefix` (e.g. "d.") in front.
repo::SqlFilter to_sql(const Condition& condition, db::Dialect dialect = db::Dialect::sqlite,
                       std::string_view column_prefix = {});

// The policy itself and its SQL twin.
bool may_read(const Identity& who, const repo::DatasetRecord& record, double now_mjd);
repo::SqlFilter visibility_sql(const Identity& who, double now_mjd, db::Dialect dialect = db::Dialect::sqlite,
                               std::string_view column_prefix = {});

// The one rights filter for choosing datasets: those of `query` that `who`
// may read at `now_mjd`, filtered inside the registry's SQL (before any
// limit). Every service (through services::SharedRepository) and every
// builder of a derived product (HiPS tiles and their progenitor index, MOC
// files, mosaics) chooses its inputs with it.
std::vector<repo::DatasetRecord> find_readable(repo::Registry& registry, repo::DatasetQuery query, const Identity& who,
                                               double now_mjd);
// `query` restricted to what `who` may read (its access filter, in the
// registry's SQL dialect): what find_readable searches, for a caller that
// reads the records another way (Registry::for_each, find_keys).
repo::DatasetQuery readable_query(repo::DatasetQuery query, const Identity& who, double now_mjd, db::Dialect dialect);

// A product made from many datasets (a HiPS tree, a coverage map) is made
// once for an audience rather than for one caller, and may hold only what
// every member of that audience may read:
//   public        anonymous: public datasets whose embargo has ended
//   data-rights   a data-rights holder who is in no group and not staff:
//                 the public ones plus those for data-rights holders,
//                 released; never group-restricted or owner-only datasets
enum class Audience { public_, data_rights };
std::string_view to_string(Audience audience);
std::optional<Audience> audience_from_string(std::string_view text);
Identity audience_identity(Audience audience);

// Why `who` may not read `record` now, in a few words for reports ("embargoed
// until 2027-01-01", "restricted to groups", ...); empty when it may.
std::string why_unreadable(const Identity& who, const repo::DatasetRecord& record, double now_mjd);

// The read_groups item that names one user (Level-3 images shared with people).
std::string user_entry(std::string_view user);

}  // namespace pixserve::auth
