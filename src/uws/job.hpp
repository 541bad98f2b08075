// The UWS 1.1 job model: phases, times, identifiers, parameters, results and
// error summaries. Shared by the store (persistence), the runner (execution)
// and the HTTP binding (documents).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "http/params.hpp"

namespace pixserve::uws {

// UWS 1.1 execution phases (the ExecutionPhase enumeration of UWS.xsd).
enum class Phase { pending, queued, executing, completed, error, aborted, unknown, held, suspended, archived };

std::string_view to_string(Phase phase) noexcept;
// "EXECUTING" -> Phase::executing. Case-insensitive, since clients send
// PHASE=executing as well; nullopt for anything else.
std::optional<Phase> parse_phase(std::string_view text) noexcept;
// PENDING, QUEUED, EXECUTING: the phases a job can leave without a client
// request, hence the ones a blocking WAIT waits on.
bool is_active(Phase phase) noexcept;
// COMPLETED, ERROR, ABORTED, ARCHIVED: nothing runs any more.
bool is_final(Phase phase) noexcept;

// Job times have millisecond precision: enough to order jobs created in one
// burst (LAST, AFTER) and what ISO 8601 timestamps in the documents show.
using Time = std::chrono::sys_time<std::chrono::milliseconds>;
Time now() noexcept;
// ISO 8601 UTC with the Z designator, e.g. "2024-05-01T12:34:56.789Z".
std::string format_time(Time t);
// Parses ISO 8601 / DALI timestamps: "2024-05-01", "2024-05-01T12:34",
// "2024-05-01T12:34:56", with optional fraction, and an optional "Z" or
// "+hh:mm"/"-hh:mm" offset (none means UTC, as in DALI). nullopt when
// malformed or out of range.
std::optional<Time> parse_time(std::string_view text) noexcept;

// Job identifiers are 32 characters of lower-case base32 (160 random bits
// from the kernel CSPRNG): URL-safe, unguessable (an anonymous job's id is
// its only protection) and safe as a directory name.
std::string new_job_id();
// Exactly the form new_job_id() makes. Anything else is rejected before it
// reaches the database or the file system (no path traversal through ids).
bool valid_job_id(std::string_view id) noexcept;
// Result identifiers (a URL path segment and a database key): 1-64
// characters of [A-Za-z0-9._-], not starting with '.'.
bool valid_result_id(std::string_view id) noexcept;
// File names inside a job directory: one path component of 1-128
// characters of [A-Za-z0-9._-], not starting with '.' (so never "." or "..").
bool valid_file_name(std::string_view name) noexcept;

// The owner of jobs created without an authenticated identity.
inline constexpr std::string_view anonymous_owner = "anonymous";

enum class ErrorType { transient, fatal };
std::string_view to_string(ErrorType type) noexcept;

struct ErrorSummary {
  ErrorType type = ErrorType::fatal;
  std::string message;  // shown to the client in <uws:errorSummary>
  std::string detail;   // served at /{job}/error when not empty (hasDetail)
  bool has_detail() const noexcept { return !detail.empty(); }
};

struct Parameter {
  std::string name;  // as the client spelled it; lookups ignore case (DALI)
  std::string value;
  bool by_reference = false;  // value is a URL to the actual value
};

struct Result {
  std::string id;
  std::string file_name;  // in the job directory; empty for an external result
  std::string url;        // absolute URL of an external result; empty for a file
  std::string mime_type;
  std::optional<std::uint64_t> size;
};

struct Job {
  std::string id;
  std::string kind;  // the service the job belongs to ("soda", "tap"): lists and URLs are per kind
  std::string owner;
  std::string run_id;
  Phase phase = Phase::pending;
  Time creation_time{};
  std::optional<Time> start_time, end_time, quote;
  std::int64_t execution_duration = 0;  // seconds; 0 = unlimited
  Time destruction{};
  std::vector<Parameter> parameters;
  std::vector<Result> results;
  std::optional<ErrorSummary> error;
  std::optional<double> progress;  // 0..1 while executing, when the job reports it
  std::string progress_message;
  // Server-side record of the owner's rights at creation (NewJob::owner_context).
  std::string owner_context;
  // The root URL (scheme://host[:port]) of the request that created it
  // (NewJob::base_url); empty for jobs of older stores.
  std::string base_url;
  // Times a worker started it: more than 1 when a server executing it died
  // and another took it over (JobStore::reap).
  int attempts = 0;

  // First value of a parameter, name compared case-insensitively.
  std::optional<std::string> parameter(std::string_view name) const;
  // Every value of a parameter, in order.
  std::vector<std::string> parameter_values(std::string_view name) const;
  // The parameters as the HTTP layer's multi-map, so that services parse a
  // job's parameters with the same code as a synchronous request's.
  http::Parameters http_parameters() const;
  const Result* result(std::string_view result_id) const noexcept;
};

// A short description for job lists (<uws:jobref>).
struct JobRef {
  std::string id;
  std::string run_id;
  std::string owner;
  Phase phase = Phase::pending;
  Time creation_time{};
};

// Errors of the job operations; the HTTP binding maps them to statuses.
class UwsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// No such job for this caller: missing, destroyed, another owner's or another
// service's (never "forbidden", which would reveal that the job exists). 404.
class NotFound : public UwsError {
 public:
  using UwsError::UwsError;
};
// A request the job's phase or the values do not allow (e.g. RUN on a
// COMPLETED job, parameters of an EXECUTING job, a bad timestamp). 400.
class InvalidRequest : public UwsError {
 public:
  using UwsError::UwsError;
};
// The runner's queue is full: try again later. 503.
class Busy : public UwsError {
 public:
  using UwsError::UwsError;
};

}  // namespace pixserve::uws
