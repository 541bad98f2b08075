// Helpers for tests that drive a Router without a socket: build a request as
// the server would, dispatch it, and collect the body of string or
// streaming responses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/router.hpp"
#include "repo/dataset.hpp"
#include "sky/geometry.hpp"

namespace pixserve::testing {

// A calexp of the services' test survey (collection DR1, instrument
// LSSTSim, file data/<id>.fits) centred on (ra, dec), with a square
// footprint of half-side `half` degrees, exposed 30 s at MJD 60000 + visit.
// Each test adds the columns its service reads besides.
inline repo::DatasetRecord test_calexp(std::int64_t visit, std::int64_t detector, std::string band, double ra,
                                       double dec, double half) {
  repo::DatasetRecord r;
  r.type = repo::DatasetType::calexp;
  r.collection = "DR1";
  r.data_id.instrument = "LSSTSim";
  r.data_id.visit = visit;
  r.data_id.detector = detector;
  r.data_id.band = std::move(band);
  r.dataset_id = repo::make_dataset_id(r.collection, r.type, r.data_id);
  r.file_path = "data/" + r.dataset_id + ".fits";
  r.file_size = 5000;
  r.checksum = "00";
  r.footprint = sky::Polygon({{ra - half, dec - half}, {ra + half, dec - half}, {ra + half, dec + half},
                              {ra - half, dec + half}});
  r.s_ra = ra;
  r.s_dec = dec;
  r.t_min = 60000.0 + static_cast<double>(visit);
  r.t_max = *r.t_min + 30.0 / 86400.0;
  return r;
}

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  http::Headers headers;
};

class StringBodyWriter final : public http::BodyWriter {
 public:
  bool write(std::string_view bytes) override {
    out.append(bytes);
    return true;
  }
  bool flush() override { return true; }
  std::string out;
};

inline std::string body_of(const http::Response& res) {
  if (const auto* s = std::get_if<std::string>(&res.body)) return *s;
  StringBodyWriter w;
  std::get<http::StreamBody>(res.body).producer(w);
  return w.out;
}

inline Reply call(const http::Router& router, std::string method, std::string target, std::string body = {},
                  std::string content_type = {}, std::vector<std::pair<std::string, std::string>> headers = {}) {
  http::RawRequest raw;
  raw.method = std::move(method);
  raw.target = std::move(target);
  raw.headers.add("Host", "example.org:8080");
  for (auto& [k, v] : headers) raw.headers.set(k, v);
  if (!content_type.empty()) raw.headers.add("Content-Type", content_type);
  raw.body = http::Blob(std::move(body));
  raw.request_id = "test-request-1";
  auto request = http::Request::parse(std::move(raw));
  http::Response res = router.dispatch(request);
  Reply r;
  r.status = res.status;
  r.content_type = std::string(res.headers.get("Content-Type").value_or(""));
  r.body = body_of(res);  // the request is still alive, as in the server
  r.headers = res.headers;
  return r;
}

inline std::size_t count(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = haystack.find(needle); pos != std::string_view::npos; pos = haystack.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace pixserve::testing
