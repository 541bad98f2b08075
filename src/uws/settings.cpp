#include "uws/settings.hpp"

namespace pixserve::uws {

const settings::Section<JobSettings>& jobs_section() {
  using namespace settings;
  static const auto section = make_section<JobSettings>(
      "jobs", "Asynchronous jobs (UWS: SODA and TAP /async), kept in the registry database: one queue for every server on it.",
      {
          integer("threads", &JobSettings::threads, {.max = 256, .min = 1},
                  "jobs executing at once over every service; sync requests never wait for them"),
          integer("max_queued", &JobSettings::max_queued, {.max = 1'000'000, .min = 1},
                  "further PHASE=RUN requests get 503"),
          seconds("execution_duration_s", &JobSettings::execution_duration,
                  "EXECUTIONDURATION of a new job; a job running longer is aborted")
              .with_check([](JobSettings& j) {
                return j.execution_duration > j.max_execution_duration ? "must not exceed jobs.max_execution_duration_s"
                                                                       : std::string();
              }),
          seconds("max_execution_duration_s", &JobSettings::max_execution_duration,
                  "larger EXECUTIONDURATION values are lowered to this"),
          seconds("retention_s", &JobSettings::retention,
                  "a job and its results are destroyed this long after creation")
              .with_check([](JobSettings& j) {
                return j.retention > j.max_retention ? "must not exceed jobs.max_retention_s" : std::string();
              }),
          seconds("max_retention_s", &JobSettings::max_retention, "later DESTRUCTION requests are clamped to this"),
          path("dir", &JobSettings::dir, "result files (default: jobs/ in the repository)")
              .with_example("/var/lib/pixserve/jobs"),
          seconds("lease_s", &JobSettings::lease,
                  "a job whose server has not renewed its lease for this long is run again by another server"),
          integer("max_attempts", &JobSettings::max_attempts, {.max = 100, .min = 1},
                  "executions of one job, over server failures, before it ends in ERROR"),
          seconds("poll_interval_s", &JobSettings::poll_interval,
                  "idle servers look this often for jobs queued by other servers")
              .with_check([](JobSettings& j) {
                return j.poll_interval > j.lease ? "must not exceed jobs.lease_s" : std::string();
              }),
      });
  return section;
}

}  // namespace pixserve::uws
