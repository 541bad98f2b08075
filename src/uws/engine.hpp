// The asynchronous-job machinery every job service shares (SODA, TAP, ...):
// one job store in the repository's registry database and one bounded pool
// of job threads. Async work therefore never takes more than `threads`
// threads, however many services and jobs there are, and the HTTP handler
// threads stay free for sync requests.
//
//   auto engine = std::make_shared<uws::JobEngine>(registry_db, jobs_dir, settings);  // uws/settings.hpp
//   uws::add_job_endpoints(service, engine, declaration);   // uws/job_service.hpp
//
// Every server process on one database shares the queue (uws/runner.hpp):
// a job queued by one runs on whichever has a free thread, and a job whose
// server died (a crash, kill -9) is taken over when its lease expires.
// Expired jobs are destroyed with their files by the runner's sweeper.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>

#include "uws/runner.hpp"
#include "uws/settings.hpp"
#include "uws/store.hpp"

namespace pixserve::uws {

class JobEngine {
 public:
  // Opens (creating when missing) the job tables on `database` (the
  // registry's database: an SQLite file or PostgreSQL) and result files
  // under jobs_dir, and starts the job threads; expired jobs are looked for
  // every sweep_interval.
  JobEngine(std::unique_ptr<db::Connection> database, const std::filesystem::path& jobs_dir,
            const JobSettings& settings,
            std::chrono::milliseconds sweep_interval = std::chrono::minutes(1));
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;
  ~JobEngine();

  Runner& runner() noexcept { return *runner_; }
  JobStore& store() noexcept { return *store_; }

 private:
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<Runner> runner_;  // uses store_: stopped and destroyed first
};

}  // namespace pixserve::uws
