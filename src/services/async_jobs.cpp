#include "services/async_jobs.hpp"

#include <chrono>

#include "http/response.hpp"

namespace pixserve::services {

namespace {

std::chrono::seconds whole_seconds(std::chrono::milliseconds ms) {
  return std::chrono::duration_cast<std::chrono::seconds>(ms + std::chrono::milliseconds(999));
}

}  // namespace

AsyncJobs::AsyncJobs(const std::filesystem::path& registry_db, const std::filesystem::path& jobs_dir,
                     const http::ServerConfig::Jobs& options) {
  uws::StoreOptions store_options;
  store_options.jobs_dir = jobs_dir;
  store_options.default_execution_duration = whole_seconds(options.execution_duration);
  store_options.max_execution_duration = whole_seconds(options.max_execution_duration);
  store_options.default_retention = whole_seconds(options.retention);
  store_options.max_retention = whole_seconds(options.max_retention);
  store_ = uws::JobStore::open(registry_db, store_options);
  uws::RunnerOptions runner_options;
  runner_options.threads = options.threads;
  runner_options.max_queued = options.max_queued;
  runner_ = std::make_unique<uws::Runner>(*store_, runner_options);
}

AsyncJobs::~AsyncJobs() {
  if (runner_) runner_->stop();
}

std::shared_ptr<AsyncJobs> open_async_jobs(const SharedRepository& repository, const http::ServerConfig::Jobs& options) {
  const auto jobs_dir = options.dir.empty() ? repository.root() / "jobs" : options.dir;
  return std::make_shared<AsyncJobs>(repository.root() / repository.config().registry, jobs_dir, options);
}

uws::JobFunction dali_job(dali::ErrorVocabulary vocabulary, uws::JobFunction run) {
  return [vocabulary, run = std::move(run)](const uws::Job& job, uws::ResultWriter& results, uws::Progress& progress,
                                            const uws::CancelToken& cancel) {
    try {
      run(job, results, progress, cancel);
    } catch (const dali::ServiceUnavailable& e) {
      throw uws::JobError(dali::error_text(e, vocabulary), uws::ErrorType::transient);
    } catch (const dali::DaliError& e) {
      throw uws::JobError(dali::error_text(e, vocabulary));
    }
  };
}

JobValidator dali_job_validator(dali::ErrorVocabulary vocabulary, JobValidator check) {
  return [vocabulary, check = std::move(check)](const std::vector<uws::Parameter>& parameters) {
    try {
      check(parameters);
    } catch (const dali::DaliError& e) {
      throw http::HttpError(e.status(), dali::error_text(e, vocabulary));
    }
  };
}

}  // namespace pixserve::services
