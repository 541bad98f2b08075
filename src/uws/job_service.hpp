// A job service: one function, declared once, served both synchronously
// (DALI-sync, /sync) and as UWS 1.1 jobs (DALI-async, /async). The function
// sees the same parameters, identity and result writer either way; the
// framework does the rest in one place:
//
//   uws::JobDeclaration toy{
//       .kind = "toy",
//       .sync = {.path = "sync", .summary = "...", .params = {...}},
//       .async = {.path = "async", .summary = "...", .params = {...}, .methods = {"POST"},
//                 .binding = dali::Binding::uws},
//       .run = [](uws::JobRun& run) {
//         const auto text = run.params().first<std::string>("TEXT").value_or("");
//         run.progress().report(0.5);
//         run.cancel().throw_if_cancelled();
//         run.results().write("echo", "echo.txt", "text/plain", text);
//       }};
//   uws::add_job_endpoints(service, engine, std::move(toy));   // before catalog->add(service)
//
// /sync: the parameters are parsed and checked against the sync declaration
// (dali::call_endpoint), the caller is the request's, and the function runs
// in the request thread. Its one result is the response: a file is streamed
// from the run's spool folder (JobDeclaration::spool) as an attachment, a
// stream result (ResultWriter::add_stream) is produced straight into the
// response; no result gives `sync_without_result` (default 204). A
// dali::DaliError becomes a DALI error document labelled in the sync
// endpoint's vocabulary; running out of disk space becomes
// ServiceUnavailable (503, Retry-After).
//
// /async: the UWS binding (uws/routes.hpp) under the async path, with job
// owners and their rights from the catalogue's identify hook
// (uws/job_identity.hpp), and the engine's queue limit, execution duration
// and destruction. Parameters are checked when the job is created when
// `check_on_create` (400 for bad ones), and always parsed again when it runs;
// the job acts with its owner's identity. A DaliError fails the job with the
// same labelled text as its error summary (transient for
// ServiceUnavailable); every result becomes a job result (a stream result is
// written to a file first). Multipart job creation turns file parts into
// parameters of the same name (inline uploads, DALI UPLOAD=name,param:part)
// when max_inline_upload_bytes is set.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/identity.hpp"
#include "dali/params.hpp"
#include "dali/service.hpp"
#include "http/response.hpp"
#include "uws/engine.hpp"
#include "uws/runner.hpp"
#include "uws/spool.hpp"

namespace pixserve::uws {

// One run of a job function, synchronous or asynchronous.
class JobRun {
 public:
  // The content of an inline upload part, by name: a multipart file part
  // of the sync request (or a parameter of that name), or the job parameter
  // holding it.
  using UploadLookup = std::function<std::optional<std::string>(std::string_view part)>;

  JobRun(const dali::ParsedParams& params, bool synchronous, std::string base_url, UploadLookup uploads,
         ResultWriter& results, Progress& progress, const CancelToken& cancel,
         std::optional<std::chrono::steady_clock::time_point> deadline);

  // Parsed and checked against the endpoint's declaration; params().caller()
  // is the identity the run acts with.
  const dali::ParsedParams& params() const noexcept { return params_; }
  // The request's caller (sync) or the job's owner with the rights recorded
  // when it was created (async).
  const auth::Identity& caller() const noexcept { return params_.caller(); }
  bool synchronous() const noexcept { return synchronous_; }
  // The root URL (scheme://host[:port]) of the request (sync) or of the one
  // that created the job (async; empty for jobs of older stores): links in
  // results are absolute on it.
  const std::string& base_url() const noexcept { return base_url_; }
  std::optional<std::string> upload(std::string_view part) const { return uploads_(part); }
  ResultWriter& results() noexcept { return results_; }
  Progress& progress() noexcept { return progress_; }
  const CancelToken& cancel() const noexcept { return cancel_; }
  // The end of a sync run's time (JobDeclaration::sync_time_limit); a job's
  // execution duration comes through cancel() instead.
  std::optional<std::chrono::steady_clock::time_point> deadline() const noexcept { return deadline_; }

 private:
  const dali::ParsedParams& params_;
  bool synchronous_;
  std::string base_url_;
  UploadLookup uploads_;
  ResultWriter& results_;
  Progress& progress_;
  const CancelToken& cancel_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
};

using JobBody = std::function<void(JobRun& run)>;

struct JobDeclaration {
  std::string kind{};     // the job kind (uws::Job::kind): each service's jobs are its own
  dali::Endpoint sync{};  // the /sync declaration; its handler is made here
  dali::Endpoint async{};  // the /async declaration (Binding::uws); its routes are made here
  JobBody run{};
  // Refuse bad parameters when a job is created rather than when it runs:
  // they are parsed against the async declaration, then given to `check`.
  bool check_on_create = false;
  std::function<void(const dali::ParsedParams&)> check{};
  // Time a sync run may take (JobRun::deadline); zero: no limit.
  std::chrono::milliseconds sync_time_limit{0};
  // The sync answer when a run gives no result; empty: 204 No Content.
  std::function<http::Response()> sync_without_result{};
  // Where sync runs write files; none: sync runs may give stream results
  // only (ResultWriter::path throws).
  std::shared_ptr<SpoolArea> spool{};
  // Largest file part of a multipart job creation; 0: multipart creation is
  // parsed as a form without its file parts.
  std::size_t max_inline_upload_bytes = 0;
};

// Adds the /sync and /async endpoints of `declaration` to `service` and
// registers its function with the engine's runner; dali::install routes
// both. The routes keep `engine` alive.
void add_job_endpoints(dali::Service& service, std::shared_ptr<JobEngine> engine, JobDeclaration declaration);

}  // namespace pixserve::uws
