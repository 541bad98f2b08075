// libFuzzer target for HTTP request interpretation: request-target parsing
// and path normalisation, query-string and urlencoded bodies, multipart
// bodies (with and without spooling to a temporary file), header values,
// Host validation and routing. Any input must either be interpreted or raise
// an HttpError with a 4xx status, never crash, hang or leak; a normalised
// path must be absolute, free of "." and ".." segments and empty segments,
// and normalising it again must not change it. Built by `make fuzz-http`.
//
// Input layout: byte 0 selects the mode, the rest up to the first '\n' is the
// request target (or the Content-Type for multipart), the remainder the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/headers.hpp"
#include "http/params.hpp"
#include "http/request.hpp"
#include "http/router.hpp"

using namespace pixserve::http;

namespace {

void check_path(const std::string& path) {
  if (path.empty() || path.front() != '/') std::abort();
  if (path.find("//") != std::string::npos) std::abort();
  std::string_view rest = std::string_view(path).substr(1);
  while (!rest.empty()) {
    const std::size_t slash = rest.find('/');
    const std::string_view seg = rest.substr(0, slash);
    if (seg == "." || seg == "..") std::abort();
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (const char c : path)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
}

const Router& router() {
  static const Router r = [] {
    Router x;
    auto ok = [](const Request&) { return Response::text(200, "ok"); };
    x.get("/", ok);
    x.get("/docs", ok);
    x.get("/docs/{file...}", ok);
    x.get_post("/api/{service}/query", ok);
    x.add({"GET", "POST", "DELETE"}, "/api/tap/async/{job}", ok);
    x.get("/api/hips/{rest...}", ok);
    return x;
  }();
  return r;
}

void check_status(int status) {
  if (status < 400 || status > 499) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t nl = input.find('\n');
  const std::string_view head = input.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view() : input.substr(nl + 1);

  // Pieces that see the raw bytes whatever the mode.
  (void)valid_host(head);
  (void)valid_request_id(head);
  const HeaderValue hv = parse_header_value(head);
  for (const auto& [k, v] : hv.params) (void)hv.param(k);
  try {
    const std::string once = normalize_path(head);
    check_path(once);
    // The result is decoded: normalising it again is only a no-op when no
    // '%' remains (a "%2525" in the target is a literal "%25" in the path).
    if (once.find('%') == std::string::npos && normalize_path(once) != once) std::abort();
  } catch (const HttpError& e) {
    check_status(e.status());
  }
  try {
    Parameters p;
    parse_urlencoded(input, p);
    for (const auto& name : p.names())
      if (p.all(name).empty() || !p.has(name)) std::abort();
  } catch (const HttpError& e) {
    check_status(e.status());
  }

  RawRequest raw;
  RequestOptions options;
  options.multipart.max_parts = 50;
  switch (mode % 4) {
    case 0:  // GET with a fuzzed target and headers from the body lines
      raw.target = std::string(head);
      raw.headers.add("Host", std::string(body.substr(0, body.find('\n'))));
      raw.headers.add("X-Request-Id", std::string(body));
      break;
    case 1:  // POST form
      raw.method = "POST";
      raw.target = std::string(head);
      raw.headers.add("Content-Type", "application/x-www-form-urlencoded");
      raw.body = Blob(std::string(body));
      break;
    case 2:  // POST multipart, boundary from the fuzzed Content-Type
    case 3:  // same, file parts larger than 64 bytes spooled to a temp file
      raw.method = "POST";
      raw.target = "/api/tap/sync?LANG=ADQL";
      raw.headers.add("Content-Type", std::string(head));
      raw.body = Blob(std::string(body));
      if (mode % 4 == 3) options.multipart.spool_threshold = 64;
      break;
  }
  Request request;
  try {
    request = Request::parse(std::move(raw), options);
  } catch (const HttpError& e) {
    check_status(e.status());
    return 0;
  }
  check_path(request.path());
  if (request.request_id().empty()) std::abort();
  (void)request.base_url();
  for (const auto& f : request.files()) {
    if (f.content.read_all().size() != f.content.size()) std::abort();
    if (request.file(f.name) == nullptr) std::abort();
  }
  const Response res = router().dispatch(request);
  if (res.status != 200 && res.status != 404 && res.status != 405 && res.status != 204) std::abort();
  return 0;
}
