// The asynchronous-job machinery every service with a UWS endpoint shares
// (SODA /async, TAP /async): one job store in the repository's registry
// database and one bounded pool of job threads. Async work therefore never
// takes more than `jobs.threads` threads, however many services and jobs
// there are, and the HTTP handler threads stay free for sync requests.
//
//   auto jobs = services::open_async_jobs(*repository, config.jobs);
//   jobs->runner().register_kind("soda", run_soda_job);        // one per service
//   uws::install_routes(router, "/api/soda/async", jobs->runner(), {.kind = "soda"});
//
// Jobs a previous server process left QUEUED or EXECUTING (a crash, kill -9)
// are marked ERROR when the store is opened here; expired jobs are destroyed
// with their files by the runner's sweeper.
#pragma once

#include <filesystem>
#include <memory>

#include "dali/errors.hpp"
#include "http/config.hpp"
#include "services/repository_access.hpp"
#include "uws/routes.hpp"
#include "uws/runner.hpp"
#include "uws/store.hpp"

namespace pixserve::services {

class AsyncJobs {
 public:
  // Opens (creating when missing) the job tables in registry_db and result
  // files under jobs_dir, and starts the job threads.
  AsyncJobs(const std::filesystem::path& registry_db, const std::filesystem::path& jobs_dir,
            const http::ServerConfig::Jobs& options);
  AsyncJobs(const AsyncJobs&) = delete;
  AsyncJobs& operator=(const AsyncJobs&) = delete;
  ~AsyncJobs();

  uws::Runner& runner() noexcept { return *runner_; }
  uws::JobStore& store() noexcept { return *store_; }

 private:
  std::unique_ptr<uws::JobStore> store_;
  std::unique_ptr<uws::Runner> runner_;  // uses store_: stopped and destroyed first
};

// A service's job function with its errors converted in one place, as
// dali::call_endpoint converts those of a sync request: a dali::DaliError
// thrown by `run` fails the job with error_text(error, vocabulary) as its
// error summary (a transient error for ServiceUnavailable, fatal otherwise).
uws::JobFunction dali_job(dali::ErrorVocabulary vocabulary, uws::JobFunction run);

// The parameter check made when a job is created, likewise: a DaliError
// becomes the UWS binding's answer with the error's status and text.
using JobValidator = std::function<void(const std::vector<uws::Parameter>&)>;
JobValidator dali_job_validator(dali::ErrorVocabulary vocabulary, JobValidator check);

// The repository's jobs: tables in its registry database, files in
// options.dir or <repository>/jobs.
std::shared_ptr<AsyncJobs> open_async_jobs(const SharedRepository& repository, const http::ServerConfig::Jobs& options);

}  // namespace pixserve::services
