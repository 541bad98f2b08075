#include "uws/routes.hpp"

#include <charconv>
#include <memory>

#include <fmt/format.h>

#include "http/files.hpp"
#include "http/headers.hpp"
#include "uws/documents.hpp"
#include "votable/writer.hpp"

namespace pixserve::uws {

namespace {

using http::HttpError;
using http::Request;
using http::Response;

struct Context {
  std::string base_path;
  Runner& runner;
  RouteOptions options;

  JobStore& store() const { return runner.store(); }
  const std::string& kind() const { return options.kind; }

  std::string owner(const Request& req) const {
    std::string id = options.identify ? options.identify(req) : std::string();
    return id.empty() ? std::string(anonymous_owner) : id;
  }
  std::string list_url(const Request& req) const { return req.base_url() + base_path; }
  std::string job_url(const Request& req, std::string_view id) const { return fmt::format("{}/{}", list_url(req), id); }

  // The {job} path parameter, rejected before any database or file access
  // unless it has the exact form of a job id.
  std::string job_id(const Request& req) const {
    const std::string_view id = req.path_param("job");
    if (!valid_job_id(id)) throw NotFound("no such job");
    return std::string(id);
  }
  Job job(const Request& req) const {
    auto job = store().find(job_id(req), owner(req), kind());
    if (!job) throw NotFound("no such job");
    return *job;
  }
};

// Job state changes with every request: no cache may answer for the server.
Response no_cache(Response res) {
  res.headers.set("Cache-Control", "no-cache");
  return res;
}
Response xml(std::string body) { return no_cache(Response::text(200, std::move(body), std::string(xml_content_type))); }
Response text(std::string body) { return no_cache(Response::text(200, std::move(body))); }
Response see_other(std::string url) { return Response::redirect(303, std::move(url)); }

std::int64_t parse_integer(std::string_view name, std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size())
    throw InvalidRequest(fmt::format("{} must be an integer, not '{}'", name, text));
  return v;
}

Phase parse_phase_param(std::string_view value) {
  auto phase = parse_phase(value);
  if (!phase) throw InvalidRequest(fmt::format("PHASE '{}' is not a UWS phase", value));
  return *phase;
}

// UWS control parameters that are not job parameters when a job is created.
bool is_control(std::string_view name) { return http::iequals(name, "PHASE") || http::iequals(name, "RUNID"); }

std::vector<Parameter> job_parameters(const Request& req, bool (*skip)(std::string_view)) {
  std::vector<Parameter> out;
  for (const auto& [name, value] : req.params())
    if (!skip(name)) out.push_back({name, value, false});
  return out;
}

// PHASE=RUN / ABORT on a job (POST .../phase, or on the job itself).
void apply_phase(const Context& ctx, const Request& req, const std::string& id, std::string_view value) {
  const std::string owner = ctx.owner(req);
  if (http::iequals(value, "RUN")) {
    ctx.runner.run(id, owner, ctx.kind());
  } else if (http::iequals(value, "ABORT")) {
    ctx.runner.abort(id, owner, ctx.kind());
  } else if (http::iequals(value, "SUSPEND") || http::iequals(value, "ARCHIVE")) {
    throw InvalidRequest(fmt::format("PHASE={} is not supported by this service", value));
  } else {
    throw InvalidRequest(fmt::format("PHASE must be RUN or ABORT, not '{}'", value));
  }
}

// Maps the job operations' errors to HTTP statuses (text/plain bodies).
http::Handler guarded(std::shared_ptr<const Context> ctx, std::function<Response(const Context&, const Request&)> fn) {
  return [ctx = std::move(ctx), fn = std::move(fn)](const Request& req) -> Response {
    try {
      return fn(*ctx, req);
    } catch (const IdentityRefused& e) {
      return e.response();
    } catch (const NotFound& e) {
      throw HttpError(404, e.what());
    } catch (const InvalidRequest& e) {
      throw HttpError(400, e.what());
    } catch (const Busy& e) {
      Response res = Response::text(503, std::string(e.what()) + "\n");
      res.headers.set("Retry-After", "10");
      return res;
    }
  };
}

// ---------------------------------------------------------------- handlers

Response list_jobs(const Context& ctx, const Request& req) {
  JobFilter filter;
  for (const auto& v : req.params().all("PHASE")) filter.phases.push_back(parse_phase_param(v));
  if (auto after = req.params().first("AFTER")) {
    filter.after = parse_time(*after);
    if (!filter.after) throw InvalidRequest(fmt::format("AFTER must be an ISO 8601 timestamp, not '{}'", *after));
  }
  if (auto last = req.params().first("LAST")) {
    const auto n = parse_integer("LAST", *last);
    if (n < 0) throw InvalidRequest("LAST must not be negative");
    filter.last = static_cast<int>(std::min<std::int64_t>(n, 1'000'000));
  }
  const std::string owner = ctx.owner(req);
  std::vector<JobRef> jobs;
  if (owner != anonymous_owner || ctx.options.list_anonymous) jobs = ctx.store().list(ctx.kind(), owner, filter);
  return xml(jobs_document(jobs, ctx.list_url(req)));
}

Response create_job(const Context& ctx, const Request& req) {
  bool run = false;
  if (auto phase = req.params().first("PHASE")) {
    if (!http::iequals(*phase, "RUN")) throw InvalidRequest(fmt::format("PHASE={} cannot be given when creating a job", *phase));
    run = true;
  }
  NewJob spec;
  spec.kind = ctx.kind();
  spec.owner = ctx.owner(req);
  if (ctx.options.owner_context) spec.owner_context = ctx.options.owner_context(req);
  spec.base_url = req.base_url();
  spec.run_id = req.params().first("RUNID").value_or("");
  spec.parameters = job_parameters(req, is_control);
  if (ctx.options.validate) ctx.options.validate(spec.parameters);
  const Job job = ctx.store().create(spec);
  if (run) ctx.runner.run(job.id, spec.owner, spec.kind);
  return see_other(ctx.job_url(req, job.id));
}

Response get_job(const Context& ctx, const Request& req) {
  if (auto wait = req.params().first("WAIT")) {
    std::int64_t seconds = parse_integer("WAIT", *wait);
    const std::int64_t max = ctx.options.max_wait.count();
    if (seconds < 0 || seconds > max) seconds = max;  // UWS 1.1: -1 means as long as the server allows
    std::optional<Phase> only_in;
    if (auto phase = req.params().first("PHASE")) only_in = parse_phase_param(*phase);
    auto job = ctx.store().wait(ctx.job_id(req), ctx.owner(req), ctx.kind(), std::chrono::seconds{seconds}, only_in);
    if (!job) throw NotFound("no such job");
    return xml(job_document(*job, ctx.list_url(req)));
  }
  return xml(job_document(ctx.job(req), ctx.list_url(req)));
}

Response delete_job(const Context& ctx, const Request& req) {
  ctx.runner.remove(ctx.job_id(req), ctx.owner(req), ctx.kind());
  return see_other(ctx.list_url(req));
}

bool is_phase_or_action(std::string_view name) { return http::iequals(name, "PHASE") || http::iequals(name, "ACTION"); }

Response post_job(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  if (auto action = req.params().first("ACTION")) {
    if (!http::iequals(*action, "DELETE")) throw InvalidRequest(fmt::format("ACTION must be DELETE, not '{}'", *action));
    return delete_job(ctx, req);
  }
  // UWS 1.1 allows parameter updates by POST to the job itself.
  const auto updates = job_parameters(req, is_phase_or_action);
  if (!updates.empty()) ctx.store().update_parameters(job.id, updates);
  if (auto phase = req.params().first("PHASE")) apply_phase(ctx, req, job.id, *phase);
  return see_other(ctx.job_url(req, job.id));
}

Response post_phase(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  const auto phase = req.params().first("PHASE");
  if (!phase) throw InvalidRequest("PHASE is required (RUN or ABORT)");
  apply_phase(ctx, req, job.id, *phase);
  return see_other(ctx.job_url(req, job.id));
}

Response post_execution_duration(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  const auto value = req.params().first("EXECUTIONDURATION");
  if (!value) throw InvalidRequest("EXECUTIONDURATION is required");
  ctx.store().set_execution_duration(job.id, parse_integer("EXECUTIONDURATION", *value));
  return see_other(ctx.job_url(req, job.id));
}

Response post_destruction(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  const auto value = req.params().first("DESTRUCTION");
  if (!value) throw InvalidRequest("DESTRUCTION is required");
  const auto when = parse_time(*value);
  if (!when) throw InvalidRequest(fmt::format("DESTRUCTION must be an ISO 8601 timestamp, not '{}'", *value));
  ctx.store().set_destruction(job.id, *when);
  return see_other(ctx.job_url(req, job.id));
}

Response get_error(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  if (!job.error) throw NotFound("the job has no error");
  std::string body;
  votable::write_error_document([&](std::string_view chunk) { body.append(chunk); },
                                job.error->has_detail() ? job.error->detail : job.error->message);
  return no_cache(Response::text(200, std::move(body), "application/x-votable+xml"));
}

Response post_parameters(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  const auto updates = job_parameters(req, [](std::string_view) { return false; });
  if (!updates.empty()) ctx.store().update_parameters(job.id, updates);
  return see_other(ctx.job_url(req, job.id));
}

Response get_result(const Context& ctx, const Request& req) {
  const Job job = ctx.job(req);
  const Result* result = job.result(req.path_param("result"));
  if (!result) throw NotFound("no such result");
  if (!result->url.empty()) return see_other(result->url);
  const auto file = ctx.store().result_file(job, *result);
  if (!file) throw NotFound("no such result");
  return http::serve_file(req, *file, result->mime_type);
}

}  // namespace

void install_routes(http::Router& router, std::string_view base_path, Runner& runner, RouteOptions options) {
  if (options.kind.empty()) throw std::invalid_argument("uws::install_routes: no job kind");
  std::string base(base_path);
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  auto ctx = std::make_shared<const Context>(Context{base, runner, std::move(options)});
  const std::string job = base + "/{job}";

  router.get(base, guarded(ctx, list_jobs));
  router.post(base, guarded(ctx, create_job));
  router.get(job, guarded(ctx, get_job));
  router.post(job, guarded(ctx, post_job));
  router.add({"DELETE"}, job, guarded(ctx, delete_job));

  router.get(job + "/phase", guarded(ctx, [](const Context& c, const Request& r) {
               return text(std::string(to_string(c.job(r).phase)));
             }));
  router.post(job + "/phase", guarded(ctx, post_phase));
  router.get(job + "/executionduration", guarded(ctx, [](const Context& c, const Request& r) {
               return text(std::to_string(c.job(r).execution_duration));
             }));
  router.post(job + "/executionduration", guarded(ctx, post_execution_duration));
  router.get(job + "/destruction", guarded(ctx, [](const Context& c, const Request& r) {
               return text(format_time(c.job(r).destruction));
             }));
  router.post(job + "/destruction", guarded(ctx, post_destruction));
  router.get(job + "/error", guarded(ctx, get_error));
  router.get(job + "/quote", guarded(ctx, [](const Context& c, const Request& r) {
               const auto quote = c.job(r).quote;
               return text(quote ? format_time(*quote) : std::string());
             }));
  router.get(job + "/parameters", guarded(ctx, [](const Context& c, const Request& r) {
               return xml(parameters_document(c.job(r)));
             }));
  router.post(job + "/parameters", guarded(ctx, post_parameters));
  router.get(job + "/results", guarded(ctx, [](const Context& c, const Request& r) {
               return xml(results_document(c.job(r), c.list_url(r)));
             }));
  router.get(job + "/results/{result}", guarded(ctx, get_result));
  router.get(job + "/owner", guarded(ctx, [](const Context& c, const Request& r) {
               const Job j = c.job(r);
               return text(j.owner == anonymous_owner ? std::string() : j.owner);
             }));
  router.get(job + "/runId", guarded(ctx, [](const Context& c, const Request& r) { return text(c.job(r).run_id); }));
}

}  // namespace pixserve::uws
