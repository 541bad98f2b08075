#include "uws/engine.hpp"

#include <chrono>

namespace pixserve::uws {

JobEngine::JobEngine(std::unique_ptr<db::Connection> database, const std::filesystem::path& jobs_dir,
                     const JobSettings& settings, std::chrono::milliseconds sweep_interval) {
  StoreOptions store_options;
  store_options.jobs_dir = jobs_dir;
  store_options.default_execution_duration = whole_seconds(settings.execution_duration);
  store_options.max_execution_duration = whole_seconds(settings.max_execution_duration);
  store_options.default_retention = whole_seconds(settings.retention);
  store_options.max_retention = whole_seconds(settings.max_retention);
  store_ = std::make_unique<JobStore>(std::move(database), store_options);
  RunnerOptions runner_options;
  runner_options.threads = settings.threads;
  runner_options.max_queued = settings.max_queued;
  runner_options.sweep_interval = sweep_interval;
  runner_options.lease = settings.lease;
  runner_options.max_attempts = settings.max_attempts;
  runner_options.poll_interval = settings.poll_interval;
  runner_ = std::make_unique<Runner>(*store_, runner_options);
}

JobEngine::~JobEngine() {
  if (runner_) runner_->stop();
}

}  // namespace pixserve::uws
