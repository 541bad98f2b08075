#include "services/web.hpp"

#include <string>
#include <system_error>

#include "http/files.hpp"

namespace pixserve::services {
namespace {

bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace

std::optional<std::filesystem::path> find_web_root(const std::filesystem::path& executable) {
  const auto dir = executable.parent_path();
  for (const auto& candidate : {dir / "web", dir / ".." / "web", dir / ".." / ".." / "web",
                                dir / ".." / "share" / "pixserve" / "web"}) {
    if (is_file(candidate / "index.html")) return std::filesystem::weakly_canonical(candidate);
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> find_swagger_ui(const std::filesystem::path& web_root) {
  for (const auto& candidate : {web_root / ".." / "node_modules" / "swagger-ui-dist", web_root / "swagger-ui"}) {
    if (is_file(candidate / "swagger-ui-bundle.js")) return std::filesystem::weakly_canonical(candidate);
  }
  return std::nullopt;
}

void add_web_routes(http::Router& router, const WebOptions& options) {
  const auto web = options.web_root;
  const auto swagger = options.swagger_ui_dir;
  router.get("/", [web](const http::Request& request) {
    return http::serve_file(request, web / "index.html", "text/html; charset=utf-8");
  });
  // The portal (web/portal/index.html) at /portal itself, not /portal/:
  // its relative URLs (web/portal/..., api/...) then resolve against the
  // server root, behind a path prefix too.
  router.get("/portal", [web](const http::Request& request) {
    return http::serve_file(request, web / "portal" / "index.html", "text/html; charset=utf-8");
  });
  router.get("/portal/", [](const http::Request&) { return http::Response::redirect(301, "../portal"); });
  router.get("/web/{file...}", [web](const http::Request& request) {
    return http::serve_static(request, web, request.path_param("file"));
  });
  // "/docs" goes to "/docs/" so that the page's relative URLs resolve (a
  // relative Location works behind a proxy that adds a path prefix).
  router.get("/docs", [](const http::Request&) { return http::Response::redirect(301, "docs/"); });
  router.get("/docs/{file...}", [web, swagger](const http::Request& request) {
    const std::string_view file = request.path_param("file");
    if (file.empty() || file == "index.html") {
      return http::serve_file(request, web / "docs" / "index.html", "text/html; charset=utf-8");
    }
    if (file == "pixserve-docs.js") return http::serve_static(request, web / "docs", file);
    if (swagger.empty()) {
      return http::Response::text(503,
                                  "Swagger UI is not installed: run `npm ci` in the source tree (scripts/install-deps.sh "
                                  "does) or set service.swagger_ui_dir in the configuration.\n");
    }
    auto res = http::serve_static(request, swagger, file);
    if (res.status == 200) res.headers.set("Cache-Control", "public, max-age=86400");
    return res;
  });
}

}  // namespace pixserve::services
