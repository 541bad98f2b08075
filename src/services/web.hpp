// The server's web pages: the landing page at / (web/index.html) and Swagger
// UI at /docs/ (web/docs/ plus the swagger-ui-dist files installed by npm,
// served locally: no CDN).
#pragma once

#include <filesystem>
#include <optional>

#include "http/router.hpp"

namespace pixserve::services {

struct WebOptions {
  std::filesystem::path web_root;        // holds index.html and docs/index.html
  std::filesystem::path swagger_ui_dir;  // holds swagger-ui-bundle.js etc.; empty: /docs/ answers 503
};

// The web/ folder near the executable: <exe dir>/web, <exe dir>/../web,
// <exe dir>/../../web or <exe dir>/../share/pixserve/web (the first with an
// index.html); nullopt when none.
std::optional<std::filesystem::path> find_web_root(const std::filesystem::path& executable);
// swagger-ui-dist beside a web root: <web_root>/../node_modules/swagger-ui-dist
// or <web_root>/swagger-ui; nullopt when absent.
std::optional<std::filesystem::path> find_swagger_ui(const std::filesystem::path& web_root);

// GET / (landing page), /web/{file} (its assets), /docs -> /docs/, /docs/
// (the docs page) and /docs/{file} (Swagger UI's files).
void add_web_routes(http::Router& router, const WebOptions& options);

}  // namespace pixserve::services
