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

#include "http/config.hpp"
#include "services/repository_access.hpp"
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

// The repository's jobs: tables in its registry database, files in
// options.dir or <repository>/jobs.
std::shared_ptr<AsyncJobs> open_async_jobs(const SharedRepository& repository, const http::ServerConfig::Jobs& options);

}  // namespace pixserve::services
