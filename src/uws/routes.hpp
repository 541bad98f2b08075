// The UWS 1.1 REST binding for one kind of job under one base path:
//
//   uws::install_routes(router, "/api/soda/async", runner, {.kind = "soda"});
//
// gives
//   GET    /api/soda/async                  job list (PHASE, AFTER, LAST filters)   <uws:jobs>
//   POST   /api/soda/async                  create (PHASE=RUN starts it, RUNID)     303 -> job
//   GET    /api/soda/async/{job}            job (WAIT=s blocking, PHASE=...)         <uws:job>
//   POST   /api/soda/async/{job}            ACTION=DELETE, or parameter updates     303
//   DELETE /api/soda/async/{job}            destroy                                 303 -> list
//   GET    .../{job}/phase                  text/plain
//   POST   .../{job}/phase                  PHASE=RUN | ABORT                       303 -> job
//   GET    .../{job}/executionduration      text/plain seconds
//   POST   .../{job}/executionduration      EXECUTIONDURATION=s                     303 -> job
//   GET    .../{job}/destruction            text/plain ISO 8601
//   POST   .../{job}/destruction            DESTRUCTION=ISO 8601                    303 -> job
//   GET    .../{job}/error                  DALI error document (VOTable), 404 when no error
//   GET    .../{job}/quote                  text/plain ISO 8601 (empty: unknown)
//   GET    .../{job}/parameters             <uws:parameters>
//   POST   .../{job}/parameters             NAME=value..., PENDING only              303 -> job
//   GET    .../{job}/results                <uws:results>
//   GET    .../{job}/results/{result}       the file (ranges, ETag), or 303 to an external URL
//   GET    .../{job}/owner                  text/plain (empty for anonymous)
//   GET    .../{job}/runId                  text/plain
//
// Errors are text/plain with the HTTP status: 404 for an unknown job (also
// another owner's or another service's job: its existence is not revealed),
// 400 for a bad value or a request the job's phase does not allow (RUN of
// an ended job, parameters after PENDING, PHASE=SUSPEND), 503 when the
// queue is full. Redirects are to absolute URLs built from the request's
// base URL.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/router.hpp"
#include "uws/job.hpp"
#include "uws/runner.hpp"

namespace pixserve::uws {

// Refused credentials, thrown by RouteOptions::identify.
class IdentityRefused : public std::runtime_error {
 public:
  explicit IdentityRefused(http::Response response)
      : std::runtime_error("credentials refused"), response_(std::move(response)) {}
  const http::Response& response() const noexcept { return response_; }

 private:
  http::Response response_;
};

struct RouteOptions {
  std::string kind;  // the job kind these routes create and see, e.g. "soda"
  // Longest blocking WAIT; WAIT=-1 and larger values mean this.
  std::chrono::seconds max_wait{60};
  // The caller's identity; empty result or no function: anonymous. (The
  // auth layer plugs its token check in here.)
  // It may throw IdentityRefused to refuse the credentials: the routes then
  // answer with the response it carries (e.g. 401 with WWW-Authenticate).
  std::function<std::string(const http::Request&)> identify{};
  // What to record about the caller's rights with a new job (Job::
  // owner_context), for the job function to act with its owner's rights.
  // It comes from the request's credentials only, never from a parameter.
  std::function<std::string(const http::Request&)> owner_context{};
  // Checks the parameters of a new job before it is created (a service may
  // reject bad parameters at once rather than at run time). Throw
  // http::HttpError(400, message) to refuse.
  std::function<void(const std::vector<Parameter>&)> validate{};
  // Anonymous jobs are protected only by their unguessable ids, so by
  // default an anonymous caller gets an empty job list rather than
  // everybody's anonymous jobs.
  bool list_anonymous = false;
};

// Registers the routes above. The runner (and its store) must outlive the
// router and any server using it.
void install_routes(http::Router& router, std::string_view base_path, Runner& runner, RouteOptions options);

}  // namespace pixserve::uws
