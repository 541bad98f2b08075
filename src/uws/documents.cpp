#include "uws/documents.hpp"

#include <fmt/format.h>

namespace pixserve::uws {

namespace {

constexpr std::string_view kNamespaces =
    " xmlns:uws=\"http://www.ivoa.net/xml/UWS/v1.0\""
    " xmlns:xlink=\"http://www.w3.org/1999/xlink\""
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
// Only <uws:job> and <uws:jobs> have a version attribute in UWS.xsd;
// <uws:results> and <uws:parameters> would be invalid with one.
constexpr std::string_view kVersion = " version=\"1.1\"";

void element(std::string& out, std::string_view name, std::string_view text, std::string_view indent = "  ") {
  fmt::format_to(std::back_inserter(out), "{}<uws:{}>{}</uws:{}>\n", indent, name, xml_escape(text), name);
}

void nil_element(std::string& out, std::string_view name, std::string_view indent = "  ") {
  fmt::format_to(std::back_inserter(out), "{}<uws:{} xsi:nil=\"true\"/>\n", indent, name);
}

void time_element(std::string& out, std::string_view name, const std::optional<Time>& t) {
  if (t)
    element(out, name, format_time(*t));
  else
    nil_element(out, name);
}

// UWS: "If there was no authenticated job creator then this should be set
// to NULL", i.e. xsi:nil.
void owner_element(std::string& out, std::string_view owner, std::string_view indent) {
  if (owner.empty() || owner == anonymous_owner)
    nil_element(out, "ownerId", indent);
  else
    element(out, "ownerId", owner, indent);
}

std::string job_url(std::string_view list_url, std::string_view id) { return fmt::format("{}/{}", list_url, id); }

void parameters_body(std::string& out, const Job& job, std::string_view indent) {
  for (const auto& p : job.parameters) {
    fmt::format_to(std::back_inserter(out), "{}<uws:parameter id=\"{}\"{}>{}</uws:parameter>\n", indent,
                   xml_escape(p.name), p.by_reference ? " byReference=\"true\"" : "", xml_escape(p.value));
  }
}

void results_body(std::string& out, const Job& job, std::string_view list_url, std::string_view indent) {
  for (const auto& r : job.results) {
    fmt::format_to(std::back_inserter(out), "{}<uws:result id=\"{}\" xlink:type=\"simple\" xlink:href=\"{}\"", indent,
                   xml_escape(r.id), xml_escape(result_href(job, r, list_url)));
    // UWS 1.1 REC makes size and mime-type required; an external result of
    // unknown size says 0 rather than break the schema.
    fmt::format_to(std::back_inserter(out), " size=\"{}\" mime-type=\"{}\"/>\n", r.size.value_or(0),
                   xml_escape(r.mime_type));
  }
}

}  // namespace

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\t': out += "&#9;"; break;   // kept as such in attribute values too
      case '\n': out += "&#10;"; break;
      case '\r': out += "&#13;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += "\xEF\xBF\xBD";  // U+FFFD: not representable in XML 1.0
        else
          out += c;
    }
  }
  return out;
}

std::string result_href(const Job& job, const Result& result, std::string_view list_url) {
  if (!result.url.empty()) return result.url;
  return fmt::format("{}/{}/results/{}", list_url, job.id, result.id);  // ids are URL-safe by construction
}

std::string jobs_document(const std::vector<JobRef>& jobs, std::string_view list_url) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  fmt::format_to(std::back_inserter(out), "<uws:jobs{}{}>\n", kNamespaces, kVersion);
  for (const auto& j : jobs) {
    fmt::format_to(std::back_inserter(out), "  <uws:jobref id=\"{}\" xlink:type=\"simple\" xlink:href=\"{}\">\n",
                   xml_escape(j.id), xml_escape(job_url(list_url, j.id)));
    // ShortJobDescription: phase, runId, ownerId, creationTime.
    element(out, "phase", to_string(j.phase), "    ");
    if (!j.run_id.empty()) element(out, "runId", j.run_id, "    ");
    owner_element(out, j.owner, "    ");
    element(out, "creationTime", format_time(j.creation_time), "    ");
    out += "  </uws:jobref>\n";
  }
  out += "</uws:jobs>\n";
  return out;
}

std::string job_document(const Job& job, std::string_view list_url) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  fmt::format_to(std::back_inserter(out), "<uws:job{}{}>\n", kNamespaces, kVersion);
  element(out, "jobId", job.id);
  if (!job.run_id.empty()) element(out, "runId", job.run_id);
  owner_element(out, job.owner, "  ");
  element(out, "phase", to_string(job.phase));
  time_element(out, "quote", job.quote);
  element(out, "creationTime", format_time(job.creation_time));
  time_element(out, "startTime", job.start_time);
  time_element(out, "endTime", job.end_time);
  element(out, "executionDuration", std::to_string(job.execution_duration));
  element(out, "destruction", format_time(job.destruction));
  out += "  <uws:parameters>\n";
  parameters_body(out, job, "    ");
  out += "  </uws:parameters>\n";
  out += "  <uws:results>\n";
  results_body(out, job, list_url, "    ");
  out += "  </uws:results>\n";
  if (job.error) {
    fmt::format_to(std::back_inserter(out), "  <uws:errorSummary type=\"{}\" hasDetail=\"{}\">\n",
                   to_string(job.error->type), job.error->has_detail() ? "true" : "false");
    element(out, "message", job.error->message, "    ");
    out += "  </uws:errorSummary>\n";
  }
  if (job.progress || job.attempts > 1) {
    // jobInfo takes any content; progress and attempts are pixserve's own,
    // unqualified.
    out += "  <uws:jobInfo>\n";
    if (job.progress) {
      fmt::format_to(std::back_inserter(out), "    <progress fraction=\"{:.3f}\">{}</progress>\n", *job.progress,
                     xml_escape(job.progress_message));
    }
    if (job.attempts > 1) fmt::format_to(std::back_inserter(out), "    <attempts>{}</attempts>\n", job.attempts);
    out += "  </uws:jobInfo>\n";
  }
  out += "</uws:job>\n";
  return out;
}

std::string results_document(const Job& job, std::string_view list_url) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  fmt::format_to(std::back_inserter(out), "<uws:results{}>\n", kNamespaces);
  results_body(out, job, list_url, "  ");
  out += "</uws:results>\n";
  return out;
}

std::string parameters_document(const Job& job) {
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  fmt::format_to(std::back_inserter(out), "<uws:parameters{}>\n", kNamespaces);
  parameters_body(out, job, "  ");
  out += "</uws:parameters>\n";
  return out;
}

}  // namespace pixserve::uws
