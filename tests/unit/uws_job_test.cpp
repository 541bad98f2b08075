// The UWS job model and documents: phases, ISO 8601 times, identifiers that
// cannot name paths, XML escaping and the element order of UWS.xsd.
#include <gtest/gtest.h>

#include <pugixml.hpp>

#include <set>
#include <string>
#include <vector>

#include "uws/documents.hpp"
#include "uws/job.hpp"

using namespace pixserve::uws;
using namespace std::chrono_literals;

TEST(UwsJob, PhasesRoundTrip) {
  for (Phase p : {Phase::pending, Phase::queued, Phase::executing, Phase::completed, Phase::error, Phase::aborted,
                  Phase::unknown, Phase::held, Phase::suspended, Phase::archived}) {
    EXPECT_EQ(parse_phase(to_string(p)), p);
  }
  EXPECT_EQ(parse_phase("executing"), Phase::executing);
  EXPECT_EQ(parse_phase("RUN"), std::nullopt);
  EXPECT_EQ(parse_phase(""), std::nullopt);
  EXPECT_TRUE(is_active(Phase::pending));
  EXPECT_TRUE(is_active(Phase::executing));
  EXPECT_FALSE(is_active(Phase::completed));
  EXPECT_TRUE(is_final(Phase::aborted));
  EXPECT_FALSE(is_final(Phase::held));
}

TEST(UwsJob, TimesFormatAndParse) {
  const Time t = Time{std::chrono::sys_days{std::chrono::year{2024} / 5 / 1}} + 12h + 34min + 56s + 789ms;
  EXPECT_EQ(format_time(t), "2024-05-01T12:34:56.789Z");
  EXPECT_EQ(parse_time("2024-05-01T12:34:56.789Z"), t);
  EXPECT_EQ(parse_time("2024-05-01T12:34:56.789"), t);  // DALI: no zone means UTC
  EXPECT_EQ(parse_time("2024-05-01T14:34:56.789+02:00"), t);
  EXPECT_EQ(parse_time("2024-05-01T12:34:56.7891234Z"), t);
  EXPECT_EQ(parse_time("2024-05-01"), Time{std::chrono::sys_days{std::chrono::year{2024} / 5 / 1}});
  EXPECT_EQ(parse_time("2024-05-01T12:34"), Time{std::chrono::sys_days{std::chrono::year{2024} / 5 / 1}} + 12h + 34min);
  for (const char* bad : {"", "2024", "2024-13-01", "2024-02-30", "2024-05-01T25:00:00", "2024-05-01 12:00:00",
                          "2024-05-01T12:00:00ZZ", "2024-05-01T12:00:00.", "yesterday", "2024-05-01T12:00:00+2"}) {
    EXPECT_EQ(parse_time(bad), std::nullopt) << bad;
  }
  const Time n = now();
  EXPECT_EQ(parse_time(format_time(n)), n);
}

TEST(UwsJob, IdsAreRandomUrlSafeAndStrictlyValidated) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = new_job_id();
    EXPECT_EQ(id.size(), 32u);
    EXPECT_TRUE(valid_job_id(id)) << id;
    EXPECT_EQ(id.find_first_not_of("abcdefghijklmnopqrstuvwxyz234567"), std::string::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 200u);
  for (const char* bad : {"", "..", "../../etc/passwd", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa%2eaaaaaaaaaaaaa",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.."}) {
    EXPECT_FALSE(valid_job_id(bad)) << bad;
  }
}

TEST(UwsJob, ResultIdsAndFileNamesAreSinglePathComponents) {
  EXPECT_TRUE(valid_result_id("result"));
  EXPECT_TRUE(valid_result_id("cutout-1.fits"));
  EXPECT_TRUE(valid_file_name("a_b.C-1.fits.fz"));
  for (const char* bad : {"", ".", "..", ".hidden", "a/b", "../x", "a\\b", "a b", "a\nb", "%2e%2e"}) {
    EXPECT_FALSE(valid_result_id(bad)) << bad;
    EXPECT_FALSE(valid_file_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_result_id(std::string(65, 'a')));
  EXPECT_TRUE(valid_file_name(std::string(128, 'a')));
  EXPECT_FALSE(valid_file_name(std::string(129, 'a')));
}

TEST(UwsJob, ParameterLookupIgnoresCase) {
  Job job;
  job.parameters = {{"ID", "a", false}, {"circle", "1 2 3", false}, {"id", "b", false}};
  EXPECT_EQ(job.parameter("Id"), "a");
  EXPECT_EQ(job.parameter_values("ID"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(job.parameter("POS"), std::nullopt);
  EXPECT_EQ(job.http_parameters().all("CIRCLE"), (std::vector<std::string>{"1 2 3"}));
}

TEST(UwsJob, XmlEscapeKeepsDocumentsWellFormed) {
  EXPECT_EQ(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
  EXPECT_EQ(xml_escape(std::string("x\x01y", 3)), "x\xEF\xBF\xBDy");
  EXPECT_EQ(xml_escape("\t\n"), "&#9;&#10;");
}

namespace {

Job sample_job() {
  Job job;
  job.id = new_job_id();
  job.kind = "soda";
  job.owner = "alice";
  job.run_id = "run <1>";
  job.phase = Phase::error;
  job.creation_time = now();
  job.start_time = job.creation_time + 1s;
  job.end_time = job.creation_time + 2s;
  job.execution_duration = 60;
  job.destruction = job.creation_time + 24h;
  job.parameters = {{"ID", "ivo://x?1&2", false}, {"UPLOAD", "http://h/u", true}, {"ctl", std::string("a\x02", 2), false}};
  job.results = {{"cutout", "cutout.fits", "", "application/fits", 2880},
                 {"external", "", "https://elsewhere.org/f.fits", "application/fits", std::nullopt}};
  job.error = ErrorSummary{ErrorType::fatal, "no overlap", "detail"};
  job.progress = 0.5;
  job.progress_message = "half";
  return job;
}

std::vector<std::string> child_names(const pugi::xml_node& node) {
  std::vector<std::string> out;
  for (auto c : node.children())
    if (c.type() == pugi::node_element) out.emplace_back(c.name());
  return out;
}

}  // namespace

TEST(UwsDocuments, JobFollowsSchemaOrder) {
  const Job job = sample_job();
  const std::string text = job_document(job, "http://h/api/soda/async");
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(text.c_str())) << text;
  auto root = doc.child("uws:job");
  ASSERT_TRUE(root);
  EXPECT_STREQ(root.attribute("xmlns:uws").value(), "http://www.ivoa.net/xml/UWS/v1.0");
  EXPECT_STREQ(root.attribute("xmlns:xlink").value(), "http://www.w3.org/1999/xlink");
  EXPECT_STREQ(root.attribute("version").value(), "1.1");
  EXPECT_EQ(child_names(root),
            (std::vector<std::string>{"uws:jobId", "uws:runId", "uws:ownerId", "uws:phase", "uws:quote",
                                      "uws:creationTime", "uws:startTime", "uws:endTime", "uws:executionDuration",
                                      "uws:destruction", "uws:parameters", "uws:results", "uws:errorSummary",
                                      "uws:jobInfo"}));
  EXPECT_EQ(root.child_value("uws:jobId"), job.id);
  EXPECT_STREQ(root.child_value("uws:runId"), "run <1>");
  EXPECT_STREQ(root.child_value("uws:ownerId"), "alice");
  EXPECT_STREQ(root.child_value("uws:phase"), "ERROR");
  EXPECT_STREQ(root.child("uws:quote").attribute("xsi:nil").value(), "true");
  EXPECT_EQ(root.child_value("uws:creationTime"), format_time(job.creation_time));
  EXPECT_STREQ(root.child_value("uws:executionDuration"), "60");

  auto params = root.child("uws:parameters");
  auto first = params.child("uws:parameter");
  EXPECT_STREQ(first.attribute("id").value(), "ID");
  EXPECT_STREQ(first.child_value(), "ivo://x?1&2");
  EXPECT_STREQ(first.next_sibling().attribute("byReference").value(), "true");

  auto result = root.child("uws:results").child("uws:result");
  EXPECT_STREQ(result.attribute("id").value(), "cutout");
  EXPECT_EQ(std::string(result.attribute("xlink:href").value()), "http://h/api/soda/async/" + job.id + "/results/cutout");
  EXPECT_STREQ(result.attribute("size").value(), "2880");
  EXPECT_STREQ(result.attribute("mime-type").value(), "application/fits");
  EXPECT_STREQ(result.next_sibling().attribute("xlink:href").value(), "https://elsewhere.org/f.fits");

  auto error = root.child("uws:errorSummary");
  EXPECT_STREQ(error.attribute("type").value(), "fatal");
  EXPECT_STREQ(error.attribute("hasDetail").value(), "true");
  EXPECT_STREQ(error.child_value("uws:message"), "no overlap");
  EXPECT_STREQ(root.child("uws:jobInfo").child("progress").attribute("fraction").value(), "0.500");
}

TEST(UwsDocuments, PendingAnonymousJobHasNilElements) {
  Job job;
  job.id = new_job_id();
  job.kind = "tap";
  job.owner = std::string(anonymous_owner);
  job.creation_time = now();
  job.destruction = job.creation_time + 1h;
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(job_document(job, "http://h/tap/async").c_str()));
  auto root = doc.child("uws:job");
  EXPECT_EQ(child_names(root),
            (std::vector<std::string>{"uws:jobId", "uws:ownerId", "uws:phase", "uws:quote", "uws:creationTime",
                                      "uws:startTime", "uws:endTime", "uws:executionDuration", "uws:destruction",
                                      "uws:parameters", "uws:results"}));
  EXPECT_STREQ(root.child("uws:ownerId").attribute("xsi:nil").value(), "true");
  EXPECT_STREQ(root.child("uws:startTime").attribute("xsi:nil").value(), "true");
  EXPECT_STREQ(root.child("uws:endTime").attribute("xsi:nil").value(), "true");
  EXPECT_STREQ(root.child_value("uws:phase"), "PENDING");
}

TEST(UwsDocuments, JobListResultsAndParameters) {
  std::vector<JobRef> refs = {{new_job_id(), "r1", "bob", Phase::completed, now()},
                              {new_job_id(), "", std::string(anonymous_owner), Phase::queued, now()}};
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(jobs_document(refs, "http://h/a").c_str()));
  auto jobs = doc.child("uws:jobs");
  EXPECT_STREQ(jobs.attribute("version").value(), "1.1");
  auto ref = jobs.child("uws:jobref");
  EXPECT_EQ(ref.attribute("id").value(), refs[0].id);
  EXPECT_EQ(std::string(ref.attribute("xlink:href").value()), "http://h/a/" + refs[0].id);
  EXPECT_EQ(child_names(ref), (std::vector<std::string>{"uws:phase", "uws:runId", "uws:ownerId", "uws:creationTime"}));
  EXPECT_EQ(child_names(ref.next_sibling()), (std::vector<std::string>{"uws:phase", "uws:ownerId", "uws:creationTime"}));

  const Job job = sample_job();
  pugi::xml_document results;
  ASSERT_TRUE(results.load_string(results_document(job, "http://h/a").c_str()));
  EXPECT_FALSE(results.child("uws:results").attribute("version"));  // not in the schema for <results>
  EXPECT_EQ(child_names(results.child("uws:results")), (std::vector<std::string>{"uws:result", "uws:result"}));
  pugi::xml_document params;
  ASSERT_TRUE(params.load_string(parameters_document(job).c_str()));
  EXPECT_EQ(child_names(params.child("uws:parameters")).size(), 3u);
}
