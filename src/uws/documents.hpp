// The UWS 1.1 XML documents (namespace http://www.ivoa.net/xml/UWS/v1.0,
// version="1.1"): <uws:jobs>, <uws:job>, <uws:results>, <uws:parameters>.
// Element order follows UWS.xsd exactly (JobSummary: jobId, runId, ownerId,
// phase, quote, creationTime, startTime, endTime, executionDuration,
// destruction, parameters, results, errorSummary, jobInfo), since the schema
// uses xs:sequence and validators check the order.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "uws/job.hpp"

namespace pixserve::uws {

inline constexpr std::string_view uws_namespace = "http://www.ivoa.net/xml/UWS/v1.0";
inline constexpr std::string_view xlink_namespace = "http://www.w3.org/1999/xlink";
inline constexpr std::string_view xml_content_type = "text/xml; charset=utf-8";

// `list_url` is the absolute URL of the job list (e.g.
// "https://host/api/soda/async"); job and result hrefs are built from it.
std::string jobs_document(const std::vector<JobRef>& jobs, std::string_view list_url);
std::string job_document(const Job& job, std::string_view list_url);
std::string results_document(const Job& job, std::string_view list_url);
std::string parameters_document(const Job& job);

// The href of a result: the external URL, or <list_url>/<job>/results/<id>.
std::string result_href(const Job& job, const Result& result, std::string_view list_url);

// Escapes text for XML content and attribute values. Characters XML 1.0
// cannot carry at all (control characters other than tab, LF, CR) become
// U+FFFD, so that any parameter value still gives a well-formed document.
std::string xml_escape(std::string_view text);

}  // namespace pixserve::uws
