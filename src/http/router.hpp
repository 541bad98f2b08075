// Maps (method, path) to handlers.
//
// Patterns are absolute paths whose segments are literals, "{name}" (exactly
// one non-empty segment) or, as the last segment, "{name...}" (the rest of the
// path, possibly empty, slashes included):
//
//   router.get("/api/sia/query", sia_query);                 // GET and HEAD
//   router.add({"GET", "POST"}, "/api/sia/query", sia_query);
//   router.get("/api/tap/async/{job}", job_status);          // req.path_param("job")
//   router.get("/api/hips/{rest...}", hips_file);            // req.path_param("rest")
//
// When several patterns match, the most specific wins (segment by segment:
// literal before {name} before {name...}; a pattern matching the whole path
// beats one that matches it only with an empty {name...}). A path that matches no pattern is
// 404; one that matches only with other methods is 405 with an Allow header.
// A GET route also answers HEAD (the server drops the body); OPTIONS is
// answered with 204 and Allow unless routed explicitly.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "http/request.hpp"
#include "http/response.hpp"

namespace pixserve::http {

using Handler = std::function<Response(const Request&)>;

class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern or a (method,
  // pattern) pair registered twice.
  Router& add(std::initializer_list<std::string_view> methods, std::string_view pattern, Handler handler);
  Router& add(const std::vector<std::string>& methods, std::string_view pattern, Handler handler);
  Router& get(std::string_view pattern, Handler handler) { return add({"GET"}, pattern, std::move(handler)); }
  Router& post(std::string_view pattern, Handler handler) { return add({"POST"}, pattern, std::move(handler)); }
  // GET and POST, as DALI requires of its endpoints.
  Router& get_post(std::string_view pattern, Handler handler) {
    return add({"GET", "POST"}, pattern, std::move(handler));
  }

  // Adds every route of `other`, each handler passed through `wrap` (e.g. to
  // answer an exception of its own in a way `other` cannot know of).
  // Throws as add() does for a route registered here already.
  Router& include(const Router& other, const std::function<Handler(Handler)>& wrap);

  // Finds the handler, stores the path parameters in `request` and calls it.
  // Exceptions from the handler propagate (the server turns them into 500 or
  // the HttpError's status).
  Response dispatch(Request& request) const;

 private:
  struct Segment {
    enum Kind { rest = 0, param = 1, literal = 2 } kind;
    std::string text;  // literal text or parameter name
  };
  struct Route {
    std::vector<std::string> methods;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  static bool match(const Route& route, const std::vector<std::string_view>& path,
                    std::vector<std::pair<std::string, std::string>>* params);
  static bool more_specific(const Route& a, const Route& b);
  std::vector<Route> routes_;
};

}  // namespace pixserve::http
