// OAI-PMH 2.0 (the Open Archives Initiative Protocol for Metadata
// Harvesting), as the IVOA Registry Interfaces use it: a harvesting
// registry asks a publisher for its VOResource records (metadata format
// ivo_vor, set ivo_managed) and for what changed since its last visit
// (from, until).
//
// This file knows the protocol only: the verbs and their arguments, the
// datestamps, the resumption tokens and the response document. The records
// come from a RecordList (voresource.hpp makes them from the service
// catalogue). respond() is the whole request, arguments in, document out;
// parse_arguments() and the token functions are separate for the tests.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <pugixml.hpp>

namespace pixserve::publishing {

using Clock = std::chrono::system_clock;
using Arguments = std::vector<std::pair<std::string, std::string>>;  // as sent, in order

inline constexpr std::string_view oai_ns = "http://www.openarchives.org/OAI/2.0/";
inline constexpr std::string_view kManagedSet = "ivo_managed";

// One record: its header, and how to write its VOResource record.
struct Record {
  std::string identifier{};  // ivo://authority/name
  Clock::time_point datestamp{};  // its `updated`
  // Appends the record's <ri:Resource> to `parent`. Called only while the
  // request that made the list is answered.
  std::function<void(pugi::xml_node parent)> write{};
};

struct RecordList {
  std::string repository_name{};
  std::string base_url{};  // the endpoint's full URL, echoed in <request>
  std::vector<std::string> admin_emails{};
  std::size_t page_size = 100;
  std::vector<Record> records{};  // every record, in a stable order, all in set ivo_managed
  // Writes the registry's own record into Identify's <description>.
  std::function<void(pugi::xml_node description)> describe{};
};

enum class Verb { identify, list_metadata_formats, list_sets, list_identifiers, list_records, get_record };
std::string_view verb_name(Verb verb);

// A time argument: the instant, and whether it was a day (YYYY-MM-DD) or a
// second (YYYY-MM-DDThh:mm:ssZ).
struct Datestamp {
  std::chrono::sys_seconds time{};  // seconds: nanoseconds since 1970 end in 2262, harvesters may ask for 2999
  bool day = false;
};
// `until` of a day means the end of that day. nullopt: not a datestamp of
// either granularity (or not a real date).
std::optional<Datestamp> parse_datestamp(std::string_view text, bool until);
// YYYY-MM-DDThh:mm:ssZ.
std::string format_datestamp(Clock::time_point t);

struct OaiError {
  std::string code{};  // badVerb, badArgument, ...
  std::string message{};
};

// A request whose arguments are legal for its verb (what they name, such as
// an identifier, is not checked yet).
struct OaiRequest {
  Verb verb = Verb::identify;
  Arguments echoed{};  // the arguments, for <request>
  std::optional<std::string> identifier{}, metadata_prefix{}, set{}, resumption_token{};
  std::optional<Datestamp> from{}, until{};
};

// badVerb (no, a repeated or an unknown verb) or badArgument (a missing,
// repeated, unknown or empty argument, a bad date, different granularities,
// from after until, a resumptionToken beside other arguments).
std::variant<OaiRequest, OaiError> parse_arguments(const Arguments& arguments);

// Where a list continues: the request's selection and the next offset, and
// a fingerprint of the records it was cut from. The token is opaque to
// harvesters and carries all of it, so any replica can continue a list.
struct ListState {
  Verb verb = Verb::list_records;
  std::string metadata_prefix{};
  std::string from{}, until{}, set{};  // as the first request gave them ("" when absent)
  std::size_t offset = 0;
  std::string fingerprint{};
};
std::string encode_token(const ListState& state);
// nullopt for anything encode_token did not make (a changed character fails
// its checksum).
std::optional<ListState> decode_token(std::string_view token);
// Changes when records are added or removed: a token of another list is stale.
std::string list_fingerprint(const std::vector<Record>& records);

// The response document (OAI-PMH envelope) for a request's arguments.
std::string respond(const RecordList& list, const Arguments& arguments, Clock::time_point now = Clock::now());

}  // namespace pixserve::publishing
