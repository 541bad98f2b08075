// TAP 1.1 (ObsTAP) at /api/tap:
//   /sync          GET/POST  LANG=ADQL (ADQL-2.0, ADQL-2.1), QUERY, RESPONSEFORMAT or FORMAT,
//                            MAXREC, UPLOAD (name,param:part inline tables), REQUEST=doQuery
//   /async         UWS 1.1 jobs of the same parameters (kind "tap"); result id "result"
//   /tables        VOSI tables 1.1 from TAP_SCHEMA (tap/schema.hpp)
//   /capabilities  VOSI capabilities with the TAPRegExt TableAccess capability
//   /availability  VOSI availability
//   /examples      DALI examples (XHTML + RDFa): useful ObsCore queries
// Queries run on tap::TapEngine (tap/query.hpp): read-only connections, the
// caller's visible rows only, time and size limits.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dali/results.hpp"
#include "dali/service.hpp"
#include "http/router.hpp"
#include "services/repository_access.hpp"
#include "tap/query.hpp"
#include "tap/settings.hpp"
#include "uws/engine.hpp"
#include "uws/settings.hpp"

namespace pixserve::services {

// The engine of a repository's registry (read-only connections to its
// database file).
std::shared_ptr<tap::TapEngine> make_tap_engine(SharedRepository& repository, const tap::TapSettings& options);

// The declaration (sync and async from one job function, examples, tables,
// capabilities, availability); `job_engine` runs the jobs, `jobs` gives
// the async limits the capabilities advertise. Inline uploads sent with a
// job creation (multipart parts) are kept as job parameters of the same
// name, so that UPLOAD=t,param:t resolves when the job runs.
dali::Service tap_service(std::shared_ptr<tap::TapEngine> engine, std::shared_ptr<uws::JobEngine> job_engine,
                          const dali::ResultLimits& limits, const tap::TapSettings& options,
                          const uws::JobSettings& jobs, std::vector<dali::AvailabilityCheck> checks);

// The DALI examples document (exposed for tests).
std::string tap_examples_xhtml();

}  // namespace pixserve::services
