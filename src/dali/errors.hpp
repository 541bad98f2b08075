// The errors a DALI service answers with, typed by what went wrong; each
// carries its HTTP status. They are thrown anywhere below a service and
// turned into the DALI error document (a VOTable with QUERY_STATUS=ERROR) in
// one place: dali::call_endpoint / with_identity for requests, and
// services::dali_job for UWS jobs. The text a client reads is
// error_text(error, vocabulary): the standards that define error labels
// (SODA 1.0 section 5.2, DataLink 1.0 section 3.4) get them there, so no
// service spells "UsageError: " itself.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace pixserve::dali {

// A request the service refuses, with the HTTP status it deserves. The
// message names the parameter and the problem and is safe to show to the
// user. Throw one of the typed errors below; the base is for a status none
// of them names.
class DaliError : public std::runtime_error {
 public:
  DaliError(int http_status, std::string message) : std::runtime_error(std::move(message)), status_(http_status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// A DaliError of one status: the typed errors below are each their own
// type, so a handler can catch just one kind.
template <int Status>
class StatusError : public DaliError {
 public:
  explicit StatusError(std::string message) : DaliError(Status, std::move(message)) {}
};

// 400: a parameter, shape, query or file the service cannot use.
using UsageError = StatusError<400>;
// 403: the caller is known but may not do this (a quota, a data-rights
// endpoint).
using Forbidden = StatusError<403>;
// 404: an ID, file or map that does not exist, or that the caller may not
// see (the same answer for both, so that a refusal leaks nothing).
using NotFound = StatusError<404>;
// 409: the request conflicts with what exists (an upload over an image of
// the same name).
using Conflict = StatusError<409>;
// 413: what the client sent is larger than the service's limit.
using Overflow = StatusError<413>;

// 503: the service cannot answer now for a reason the client may be told (a
// full disk, an overload), with Retry-After; the message is shown as it is
// (it must hold no server internals), unlike other 5xx errors, which are
// logged and answered as "internal error".
class ServiceUnavailable : public DaliError {
 public:
  ServiceUnavailable(std::string message, int retry_after_s) : DaliError(503, std::move(message)), retry_after_s_(retry_after_s) {}
  int retry_after_s() const noexcept { return retry_after_s_; }

 private:
  int retry_after_s_;
};

// The 503 of a request that needs the database (the registry, tokens, UWS
// jobs) while it cannot be reached (db::Unavailable: a restart, the
// network). Connections recover by themselves when it is back, hence the
// short Retry-After.
ServiceUnavailable database_unavailable();

// 500: a fault of the service's own data that the client should be told
// of (an input of a re-created product missing or changed), with a message
// that names datasets, never paths or other internals. Other 5xx errors are
// logged and answered as "internal error".
class ServerFault : public DaliError {
 public:
  explicit ServerFault(std::string message) : DaliError(500, std::move(message)) {}
};

inline UsageError usage_error(std::string message) { return UsageError(std::move(message)); }

// Which standard's error labels an endpoint's messages carry.
enum class ErrorVocabulary {
  dali,      // the message as it is (DALI 1.1 prescribes no label)
  soda,      // SODA 1.0 section 5.2: "UsageError: " for every refusal, "ServiceUnavailable: " for 503,
             // "FatalFault: " for a ServerFault
  datalink,  // DataLink 1.0 section 3.4: "NotFoundFault: " for an unknown ID, "FatalFault: " for a ServerFault
};

// The message a client reads: the error's text with its label in `vocabulary`.
std::string error_text(const DaliError& error, ErrorVocabulary vocabulary);

}  // namespace pixserve::dali
