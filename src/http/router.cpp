#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace pixserve::http {

namespace {

// "/a/b/" -> {"a", "b", ""}; "/" -> {""}.
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool allows(const std::vector<std::string>& methods, std::string_view method) {
  for (const auto& m : methods)
    if (m == method || (method == "HEAD" && m == "GET")) return true;
  return false;
}

}  // namespace

Router& Router::add(std::initializer_list<std::string_view> methods, std::string_view pattern, Handler handler) {
  return add(std::vector<std::string>(methods.begin(), methods.end()), pattern, std::move(handler));
}

Router& Router::add(const std::vector<std::string>& methods, std::string_view pattern, Handler handler) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("route \"" + std::string(pattern) + "\": " + why);
  };
  if (methods.empty()) throw bad("no method");
  if (!handler) throw bad("empty handler");
  if (pattern.empty() || pattern.front() != '/') throw bad("pattern must start with '/'");
  Route route{methods, std::string(pattern), {}, std::move(handler)};
  auto parts = split_path(pattern);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
      std::string_view name = p.substr(1, p.size() - 2);
      bool is_rest = name.size() > 3 && name.substr(name.size() - 3) == "...";
      if (is_rest) name.remove_suffix(3);
      if (name.empty() || name.find_first_of("{}/") != std::string_view::npos) throw bad("bad parameter name");
      if (is_rest && i + 1 != parts.size()) throw bad("{name...} must be the last segment");
      route.segments.push_back({is_rest ? Segment::rest : Segment::param, std::string(name)});
    } else {
      if (p.find_first_of("{}") != std::string_view::npos) throw bad("braces inside a literal segment");
      route.segments.push_back({Segment::literal, std::string(p)});
    }
  }
  for (const auto& other : routes_) {
    if (other.pattern != route.pattern) continue;
    for (const auto& m : route.methods)
      if (std::find(other.methods.begin(), other.methods.end(), m) != other.methods.end())
        throw bad(m + " registered twice");
  }
  routes_.push_back(std::move(route));
  return *this;
}

Router& Router::include(const Router& other, const std::function<Handler(Handler)>& wrap) {
  for (const auto& route : other.routes_) add(route.methods, route.pattern, wrap(route.handler));
  return *this;
}

bool Router::match(const Route& route, const std::vector<std::string_view>& path,
                   std::vector<std::pair<std::string, std::string>>* params) {
  std::size_t i = 0;
  for (; i < route.segments.size(); ++i) {
    const Segment& s = route.segments[i];
    if (s.kind == Segment::rest) {
      // "/api/hips/{rest...}" also matches "/api/hips" (rest empty).
      if (i > path.size()) return false;
      std::string rest;
      for (std::size_t j = i; j < path.size(); ++j) {
        if (j > i) rest += '/';
        rest += path[j];
      }
      if (params) params->emplace_back(s.text, std::move(rest));
      return true;
    }
    if (i >= path.size()) return false;
    if (s.kind == Segment::literal) {
      if (path[i] != s.text) return false;
    } else {
      if (path[i].empty()) return false;
      if (params) params->emplace_back(s.text, std::string(path[i]));
    }
  }
  return i == path.size();
}

bool Router::more_specific(const Route& a, const Route& b) {
  std::size_t n = std::min(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i)
    if (a.segments[i].kind != b.segments[i].kind) return a.segments[i].kind > b.segments[i].kind;
  // Equal up to the shorter pattern: since both match the same path, the
  // longer one can only extend it by a trailing {name...} matching an empty
  // remainder ("/docs/{file...}" on "/docs"), and the exact match of the
  // whole path ("/docs") is the more specific.
  return a.segments.size() < b.segments.size();
}

Response Router::dispatch(Request& request) const {
  auto path = split_path(request.path());
  const Route* best = nullptr;
  std::vector<std::string> allowed;
  for (const auto& route : routes_) {
    if (!match(route, path, nullptr)) continue;
    for (const auto& m : route.methods)
      if (std::find(allowed.begin(), allowed.end(), m) == allowed.end()) allowed.push_back(m);
    if (allows(route.methods, request.method()) && (best == nullptr || more_specific(route, *best))) best = &route;
  }
  if (best != nullptr) {
    std::vector<std::pair<std::string, std::string>> params;
    match(*best, path, &params);
    request.set_path_params(std::move(params));
    return best->handler(request);
  }
  if (allowed.empty()) return Response::text(404, "not found\n");

  if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end() &&
      std::find(allowed.begin(), allowed.end(), "HEAD") == allowed.end())
    allowed.push_back("HEAD");
  if (std::find(allowed.begin(), allowed.end(), "OPTIONS") == allowed.end()) allowed.push_back("OPTIONS");
  std::string allow;
  for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;

  Response res = request.method() == "OPTIONS" ? Response::empty(204) : Response::text(405, "method not allowed\n");
  res.headers.set("Allow", allow);
  return res;
}

}  // namespace pixserve::http
