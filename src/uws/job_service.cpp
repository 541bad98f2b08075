#include "uws/job_service.hpp"

#include <cerrno>
#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "dali/errors.hpp"
#include "http/disk_space.hpp"
#include "http/files.hpp"
#include "http/headers.hpp"
#include "http/params.hpp"
#include "uws/job_identity.hpp"
#include "uws/routes.hpp"

namespace pixserve::uws {

namespace fs = std::filesystem;

JobRun::JobRun(const dali::ParsedParams& params, bool synchronous, std::string base_url, UploadLookup uploads,
               ResultWriter& results, Progress& progress, const CancelToken& cancel,
               std::optional<std::chrono::steady_clock::time_point> deadline)
    : params_(params),
      synchronous_(synchronous),
      base_url_(std::move(base_url)),
      uploads_(std::move(uploads)),
      results_(results),
      progress_(progress),
      cancel_(cancel),
      deadline_(deadline) {}

namespace {

// ---------------------------------------------------------------- sync

// The results of a synchronous run: files in a spool folder of the request,
// kept (with the folder) until the response has been sent.
class SyncResults final : public ResultTarget {
 public:
  explicit SyncResults(std::shared_ptr<SpoolArea> spool) : spool_(std::move(spool)) {}

  fs::path directory() override {
    if (!spool_) throw std::logic_error("a synchronous run of this service cannot write files (no spool)");
    if (!folder_) folder_ = spool_->make();
    return folder_->path();
  }
  void add(Result result) override { results_.emplace_back(std::move(result)); }
  void add_stream(StreamResult result) override { streams_.emplace_back(std::move(result)); }

  // Where a failure of the run would have written (for the disk-space check).
  fs::path written_where() const { return folder_ ? folder_->path() : fs::path(); }

  http::Response response(const JobDeclaration& declaration) {
    const std::size_t count = results_.size() + streams_.size();
    if (count == 0) {
      return declaration.sync_without_result ? declaration.sync_without_result() : http::Response::empty(204);
    }
    if (count > 1) {
      throw std::logic_error(fmt::format("a synchronous run of '{}' gave {} results; it may give one", declaration.kind,
                                         count));
    }
    if (!streams_.empty()) return stream_response(std::move(streams_.front()));
    return file_response(results_.front());
  }

 private:
  http::Response stream_response(StreamResult result) {
    auto produce = std::move(result.produce);
    auto res = http::Response::stream(
        result.mime_type,
        [folder = folder_, produce = std::move(produce)](http::BodyWriter& body) {
          static_cast<void>(folder);  // the files the stream reads stay until it is sent
          produce([&body](std::string_view bytes) { return body.write(bytes); });
        },
        result.size);
    if (result.attachment) set_attachment(res, result.file_name);
    return res;
  }

  http::Response file_response(const Result& result) {
    if (!result.url.empty()) return http::Response::redirect(303, result.url);
    const fs::path file = folder_->path() / result.file_name;
    const auto size = fs::file_size(file);
    auto res = http::Response::stream(
        result.mime_type,
        [folder = folder_, file, size](http::BodyWriter& body) {
          static_cast<void>(folder);
          http::copy_file_to(file, size, [&body](std::string_view bytes) { return body.write(bytes); });
        },
        size);
    set_attachment(res, result.file_name);
    return res;
  }

  static void set_attachment(http::Response& res, const std::string& name) {
    res.headers.set("Content-Disposition", fmt::format("attachment; filename=\"{}\"", name));
  }

  std::shared_ptr<SpoolArea> spool_;
  std::shared_ptr<SpoolDir> folder_;
  std::vector<Result> results_;
  std::vector<StreamResult> streams_;
};

dali::EndpointHandler sync_handler(std::shared_ptr<const JobDeclaration> declaration) {
  return [declaration](const http::Request& request, const dali::ParsedParams& params) -> http::Response {
    SyncResults target(declaration->spool);
    const CancelToken never_cancelled;
    ResultWriter results(target, never_cancelled);
    Progress no_progress;
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (declaration->sync_time_limit.count() > 0) {
      deadline = std::chrono::steady_clock::now() + declaration->sync_time_limit;
    }
    const JobRun::UploadLookup uploads = [&request](std::string_view part) -> std::optional<std::string> {
      if (const auto* file = request.file(part)) return file->content.read_all();
      return request.params().first(part);
    };
    JobRun run(params, true, request.base_url(), uploads, results, no_progress, never_cancelled, deadline);
    try {
      declaration->run(run);
      return target.response(*declaration);
    } catch (const dali::DaliError&) {
      throw;  // the client's: call_endpoint answers it
    } catch (const std::exception&) {
      // The folder still holds what was written, so a full disk is still
      // full when the failure is examined.
      if (http::out_of_space(target.written_where(), errno)) {
        throw dali::ServiceUnavailable(std::string(http::kNoSpaceMessage), http::kNoSpaceRetryAfterSeconds);
      }
      throw;
    }
  };
}

// ---------------------------------------------------------------- async

// UWS parameters that control the job rather than feed the function.
bool is_job_control(std::string_view name) {
  for (std::string_view c : {"PHASE", "RUNID", "EXECUTIONDURATION", "DESTRUCTION", "QUOTE", "ACTION"}) {
    if (http::iequals(name, c)) return true;
  }
  return false;
}

// A job's parameters parsed as the sync endpoint's are; the caller is left
// to the one who calls.
dali::ParsedParams parse_job_parameters(const dali::Endpoint& endpoint, const std::vector<Parameter>& parameters) {
  dali::RawParams raw;
  for (const auto& p : parameters) {
    if (is_job_control(p.name)) continue;
    if (p.by_reference) {
      throw dali::UsageError(fmt::format("{}: values by reference are not supported", p.name.substr(0, 64)));
    }
    raw.emplace_back(p.name, p.value);
  }
  return dali::parse_params(endpoint.params, raw, endpoint.parse_options);
}

JobFunction job_function(std::shared_ptr<const JobDeclaration> declaration) {
  return [declaration](const Job& job, ResultWriter& results, Progress& progress, const CancelToken& cancel) {
    const dali::ErrorVocabulary vocabulary = declaration->async.errors;
    try {
      dali::ParsedParams params = parse_job_parameters(declaration->async, job.parameters);
      params.set_caller(job_identity(job));  // the owner's, recorded by the server
      const JobRun::UploadLookup uploads = [&job](std::string_view part) { return job.parameter(part); };
      JobRun run(params, false, job.base_url, uploads, results, progress, cancel, std::nullopt);
      declaration->run(run);
    } catch (const dali::ServiceUnavailable& e) {
      throw JobError(dali::error_text(e, vocabulary), ErrorType::transient);
    } catch (const dali::DaliError& e) {
      throw JobError(dali::error_text(e, vocabulary));
    }
  };
}

// A multipart job creation: parts with a file name become parameters of the
// same name (their content), so that the job keeps its inline uploads.
http::Response forward_with_uploads(const http::Router& inner, const http::Request& req, std::size_t max_part_bytes,
                                    dali::ErrorVocabulary vocabulary) {
  http::RawRequest raw;
  raw.method = req.method();
  raw.target = req.path();  // parameters travel in the body
  for (const auto& [name, value] : req.headers()) {
    if (http::iequals(name, "Content-Type") || http::iequals(name, "Content-Length") ||
        http::iequals(name, "Transfer-Encoding"))
      continue;
    raw.headers.add(name, value);
  }
  raw.headers.set("Content-Type", "application/x-www-form-urlencoded");
  std::string body;
  const auto add = [&body](std::string_view name, std::string_view value) {
    if (!body.empty()) body += '&';
    body += http::percent_encode(name) + "=" + http::percent_encode(value);
  };
  for (const auto& [name, value] : req.params()) add(name, value);
  for (const auto& file : req.files()) {
    if (file.content.size() > max_part_bytes) {
      return dali::error_response(
          400, dali::error_text(dali::UsageError(fmt::format("UPLOAD: part '{}' is larger than the limit of {} bytes",
                                                             file.name.substr(0, 64), max_part_bytes)),
                                vocabulary));
    }
    add(file.name, file.content.read_all());
  }
  raw.body = http::Blob(std::move(body));
  raw.remote_address = req.remote_address();
  raw.request_id = req.request_id();
  http::RequestOptions options;
  options.base_url = req.base_url();
  http::Request rebuilt = http::Request::parse(std::move(raw), options);
  return inner.dispatch(rebuilt);
}

dali::BindingInstaller async_binding(std::shared_ptr<const JobDeclaration> declaration,
                                     std::shared_ptr<JobEngine> engine) {
  return [declaration, engine](http::Router& router, const std::string& path, const dali::IdentifyHook& identify) {
    RouteOptions routes{.kind = declaration->kind};
    set_job_owner(routes, identify);
    if (declaration->check_on_create) {
      routes.validate = [declaration](const std::vector<Parameter>& parameters) {
        try {
          const dali::ParsedParams params = parse_job_parameters(declaration->async, parameters);
          if (declaration->check) declaration->check(params);
        } catch (const dali::DaliError& e) {
          throw http::HttpError(e.status(), dali::error_text(e, declaration->async.errors));
        }
      };
    }
    if (declaration->max_inline_upload_bytes == 0) {
      install_routes(router, path, engine->runner(), std::move(routes));
      return;
    }
    // Multipart creation goes through a router of its own, which sees the
    // file parts as parameters.
    auto inner = std::make_shared<http::Router>();
    install_routes(*inner, path, engine->runner(), std::move(routes));
    const auto forward = [inner, engine](const http::Request& req) {
      http::Request copy = req;
      return inner->dispatch(copy);
    };
    router.get(path, forward);
    router.post(path, [inner, declaration, forward](const http::Request& req) {
      if (req.files().empty()) return forward(req);
      return forward_with_uploads(*inner, req, declaration->max_inline_upload_bytes, declaration->async.errors);
    });
    router.add({"GET", "POST", "DELETE"}, path + "/{rest...}", forward);
  };
}

}  // namespace

void add_job_endpoints(dali::Service& service, std::shared_ptr<JobEngine> engine, JobDeclaration declaration) {
  if (!engine) throw std::invalid_argument("uws::add_job_endpoints: no job engine");
  if (!declaration.run) throw std::invalid_argument("uws::add_job_endpoints: no job function");
  if (declaration.kind.empty()) throw std::invalid_argument("uws::add_job_endpoints: no job kind");
  dali::Endpoint sync = declaration.sync;
  dali::Endpoint async = declaration.async;
  async.binding = dali::Binding::uws;
  auto shared = std::make_shared<const JobDeclaration>(std::move(declaration));
  sync.handler = sync_handler(shared);
  async.install_binding = async_binding(shared, engine);
  // The function holds the declaration, never the engine (which holds the
  // function).
  engine->runner().register_kind(shared->kind, job_function(shared));
  service.endpoints.push_back(std::move(sync));
  service.endpoints.push_back(std::move(async));
}

}  // namespace pixserve::uws
