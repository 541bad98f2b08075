#include "services/status.hpp"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

namespace pixserve::services {
namespace {

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr std::string_view kStyle = R"CSS(
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2327}
h1{font-size:1.5rem;margin-bottom:.25rem}
.meta{color:#555;margin-top:0}
.banner{padding:.75rem 1rem;border-radius:.4rem;font-weight:600;margin:1rem 0}
.banner.up{background:#e6f4ea;color:#14532d}.banner.down{background:#fde8e8;color:#7f1d1d}
details{border:1px solid #ddd;border-radius:.4rem;margin:.5rem 0;padding:.4rem .8rem}
summary{cursor:pointer;display:flex;gap:.6rem;align-items:center;list-style:none}
summary::-webkit-details-marker{display:none}
.dot{width:.9rem;height:.9rem;border-radius:50%;display:inline-block;flex:none}
.up .dot,.dot.up{background:#16a34a}.down .dot,.dot.down{background:#dc2626}
.name{font-weight:600;min-width:7rem}.state{margin-left:auto;font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}td,th{text-align:left;padding:.25rem .5rem;border-top:1px solid #eee;font-size:.9rem}
a{color:#1d4ed8}
)CSS";

}  // namespace

std::string status_html(const dali::ServiceCatalog& catalog, const dali::AvailabilityReport& report) {
  std::string html;
  html += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  html += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  html += "<meta http-equiv=\"refresh\" content=\"30\">";
  html += fmt::format("<title>{} status</title><style>{}</style></head><body>\n", escape(catalog.options().title), kStyle);
  html += fmt::format("<h1>{} service status</h1>\n", escape(catalog.options().title));
  html += fmt::format("<p class=\"meta\">Up since {} &middot; checked {} &middot; <a href=\"status.json\">JSON</a> &middot; "
                      "<a href=\"status.xml\">VOSI XML</a> &middot; <a href=\"./\">home</a></p>\n",
                      dali::iso_utc(report.up_since), dali::iso_utc(std::chrono::system_clock::now()));
  std::size_t down = 0;
  for (const auto& s : report.services) down += s.available ? 0 : 1;
  if (report.available) {
    html += "<div class=\"banner up\" id=\"overall\" data-available=\"true\">All services are available</div>\n";
  } else {
    html += fmt::format("<div class=\"banner down\" id=\"overall\" data-available=\"false\">{} of {} services are not available</div>\n",
                        down, report.services.size());
  }
  for (const auto& s : report.services) {
    const auto* service = catalog.find(s.service);
    const std::string cls = s.available ? "up" : "down";
    html += fmt::format("<details class=\"service {0}\" id=\"service-{1}\" data-available=\"{2}\"{3}><summary><span class=\"dot\"></span>"
                        "<span class=\"name\">{1}</span><span class=\"title\">{4}</span><span class=\"state\">{5}</span></summary>\n",
                        cls, escape(s.service), s.available ? "true" : "false", s.available ? "" : " open",
                        escape(service ? service->title : ""), s.available ? "available" : "NOT available");
    html += "<table><tr><th></th><th>check</th><th>result</th><th>ms</th></tr>\n";
    for (const auto& c : s.checks) {
      html += fmt::format("<tr><td><span class=\"dot {}\"></span></td><td>{}</td><td>{}</td><td>{:.1f}</td></tr>\n",
                          c.ok ? "up" : "down", escape(c.name), escape(c.note), c.ms);
    }
    if (s.checks.empty()) html += "<tr><td></td><td colspan=\"3\">no checks declared</td></tr>\n";
    html += "</table>";
    if (service) {
      const std::string path = catalog.path_of(*service);
      html += fmt::format("<p><a href=\"{0}/availability\">availability</a> &middot; <a href=\"{0}/capabilities\">capabilities</a></p>",
                          escape(path));
    }
    html += "</details>\n";
  }
  html += "</body></html>\n";
  return html;
}

void add_status_routes(http::Router& router, std::shared_ptr<const dali::ServiceCatalog> catalog) {
  router.get("/status", [catalog](const http::Request&) {
    auto res = http::Response::text(200, status_html(*catalog, dali::check_availability(*catalog)), "text/html; charset=utf-8");
    res.headers.set("Cache-Control", "no-store");
    return res;
  });
  router.get("/status.json", [catalog](const http::Request&) {
    auto res = http::Response::text(200, dali::availability_json(dali::check_availability(*catalog)).dump(1) + "\n",
                                    "application/json");
    res.headers.set("Cache-Control", "no-store");
    return res;
  });
  router.get("/status.xml", [catalog](const http::Request&) {
    auto res = http::Response::text(200, dali::availability_xml(dali::check_availability(*catalog)), "text/xml; charset=utf-8");
    res.headers.set("Cache-Control", "no-store");
    return res;
  });
}

}  // namespace pixserve::services
