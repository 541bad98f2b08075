// OAI-PMH 2.0 of the publishing registry (publishing/oai.hpp): the verbs'
// arguments and every error code, the datestamps, the resumption tokens and
// the pages they walk.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <pugixml.hpp>

#include "publishing/oai.hpp"
#include "publishing/settings.hpp"

namespace pixserve::publishing {
namespace {

using namespace std::chrono_literals;

Clock::time_point at(const char* text) { return parse_datestamp(text, false)->time; }

std::string error_code(const std::variant<OaiRequest, OaiError>& parsed) {
  const auto* e = std::get_if<OaiError>(&parsed);
  return e ? e->code : std::string("(none)");
}

// Records dated one day apart from 2024-01-01, each writing a minimal
// VOResource record.
RecordList sample_list(std::size_t count, std::size_t page_size) {
  RecordList list{.repository_name = "test registry",
                  .base_url = "http://test/api/registry/oai",
                  .admin_emails = {"a@example.org"},
                  .page_size = page_size,
                  .records = {},
                  .describe = [](pugi::xml_node d) { d.append_child("ri:Resource").text().set("registry"); }};
  for (std::size_t i = 0; i < count; ++i) {
    const std::string id = "ivo://example.org/r" + std::to_string(i);
    list.records.push_back({.identifier = id,
                            .datestamp = at("2024-01-01T00:00:00Z") + std::chrono::days(i) + 3h,
                            .write = [id](pugi::xml_node parent) {
                              auto r = parent.append_child("ri:Resource");
                              r.append_attribute("xmlns:ri") = "http://www.ivoa.net/xml/RegistryInterface/v1.0";
                              r.append_attribute("updated") = "2024-01-01T03:00:00Z";
                              r.append_child("title").text().set(("Record " + id).c_str());
                              r.append_child("identifier").text().set(id.c_str());
                              auto content = r.append_child("content");
                              content.append_child("subject").text().set("Sky surveys");
                              content.append_child("description").text().set("A record.");
                            }});
  }
  return list;
}

struct Reply {
  pugi::xml_document doc;
  pugi::xml_node root;
  std::string error;  // the error code, if any

  explicit Reply(const std::string& text) {
    EXPECT_TRUE(doc.load_string(text.c_str())) << text;
    root = doc.child("OAI-PMH");
    error = root.child("error").attribute("code").value();
  }
};

std::string respond_to(const RecordList& list, const Arguments& arguments) {
  return respond(list, arguments, at("2025-06-01T12:00:00Z"));
}

TEST(OaiDatestamp, ParsesBothGranularities) {
  const auto day = parse_datestamp("2024-02-29", false);
  ASSERT_TRUE(day);
  EXPECT_TRUE(day->day);
  EXPECT_EQ(format_datestamp(day->time), "2024-02-29T00:00:00Z");
  EXPECT_EQ(format_datestamp(parse_datestamp("2024-02-29", true)->time), "2024-02-29T23:59:59Z");
  const auto second = parse_datestamp("2024-03-01T13:14:15Z", true);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->day);
  EXPECT_EQ(format_datestamp(second->time), "2024-03-01T13:14:15Z");
}

TEST(OaiDatestamp, RefusesOtherText) {
  for (const char* bad : {"2023-02-29", "2024-13-01", "2024-1-01", "2024-01-01T00:00:00", "2024-01-01T24:00:00Z",
                          "2024-01-01T12:00Z", "2024-01-01T00:00:00.5Z", "2024/01/01", "", "yesterday",
                          "2024-01-01T00:00:00+01"}) {
    EXPECT_FALSE(parse_datestamp(bad, false)) << bad;
  }
}

TEST(OaiArguments, BadVerb) {
  EXPECT_EQ(error_code(parse_arguments({})), "badVerb");
  EXPECT_EQ(error_code(parse_arguments({{"verb", "Harvest"}})), "badVerb");
  EXPECT_EQ(error_code(parse_arguments({{"verb", "identify"}})), "badVerb");  // case matters
  EXPECT_EQ(error_code(parse_arguments({{"verb", "Identify"}, {"verb", "Identify"}})), "badVerb");
  EXPECT_EQ(error_code(parse_arguments({{"verb", "Identify"}})), "(none)");
}

TEST(OaiArguments, BadArgument) {
  const std::vector<Arguments> bad{
      {{"verb", "Identify"}, {"identifier", "ivo://x/y"}},                                   // not Identify's
      {{"verb", "ListRecords"}},                                                            // no metadataPrefix
      {{"verb", "ListIdentifiers"}, {"metadataPrefix", "ivo_vor"}, {"metadataPrefix", "oai_dc"}},  // repeated
      {{"verb", "ListRecords"}, {"metadataPrefix", ""}},                                     // empty
      {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", "2024-01-32"}},      // not a date
      {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", "2024-01-01"}, {"from", "2024-01-02"}},
      {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", "2024-01-01"},
       {"until", "2024-02-01T00:00:00Z"}},                                                   // granularities
      {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", "2024-02-01"}, {"until", "2024-01-01"}},
      {{"verb", "ListRecords"}, {"resumptionToken", "abc"}, {"metadataPrefix", "ivo_vor"}},  // token not alone
      {{"verb", "GetRecord"}, {"metadataPrefix", "ivo_vor"}},                                // no identifier
      {{"verb", "GetRecord"}, {"identifier", "ivo://x/y"}},                                  // no metadataPrefix
      {{"verb", "ListSets"}, {"set", "ivo_managed"}},
      {{"verb", "ListMetadataFormats"}, {"Identifier", "ivo://x/y"}},                        // names are exact
  };
  for (const auto& arguments : bad) {
    std::string shown;
    for (const auto& [k, v] : arguments) shown += k + "=" + v + "&";
    EXPECT_EQ(error_code(parse_arguments(arguments)), "badArgument") << shown;
  }
  const auto ok = parse_arguments(
      {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", "2024-01-01"}, {"until", "2024-01-01"}});
  ASSERT_EQ(error_code(ok), "(none)");
  EXPECT_EQ(std::get<OaiRequest>(ok).until->time - std::get<OaiRequest>(ok).from->time, 86399s);
}

TEST(OaiTokens, RoundTripAndRefuseTampering) {
  const ListState state{.verb = Verb::list_identifiers, .metadata_prefix = "oai_dc", .from = "2024-01-01",
                        .until = "", .set = "ivo_managed", .offset = 42, .fingerprint = "0123456789abcdef"};
  const std::string token = encode_token(state);
  const auto back = decode_token(token);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->verb, Verb::list_identifiers);
  EXPECT_EQ(back->metadata_prefix, "oai_dc");
  EXPECT_EQ(back->from, "2024-01-01");
  EXPECT_EQ(back->set, "ivo_managed");
  EXPECT_EQ(back->offset, 42u);
  EXPECT_EQ(back->fingerprint, "0123456789abcdef");
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string changed = token;
    changed[i] = changed[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(decode_token(changed)) << "changed at " << i;
  }
  EXPECT_FALSE(decode_token(token.substr(0, token.size() - 1)));
  EXPECT_FALSE(decode_token(""));
  EXPECT_FALSE(decode_token("not.a-token"));
}

TEST(OaiRespond, EnvelopeOfErrorsWithoutEchoForBadVerbAndBadArgument) {
  const auto list = sample_list(3, 10);
  Reply bad_verb(respond_to(list, {{"verb", "Nothing"}, {"x", "y"}}));
  EXPECT_EQ(bad_verb.error, "badVerb");
  EXPECT_EQ(std::string(bad_verb.root.attribute("xmlns").value()), std::string(oai_ns));
  EXPECT_EQ(std::string(bad_verb.root.child("responseDate").text().get()), "2025-06-01T12:00:00Z");
  EXPECT_FALSE(bad_verb.root.child("request").first_attribute());
  EXPECT_EQ(std::string(bad_verb.root.child("request").text().get()), list.base_url);

  Reply bad_arg(respond_to(list, {{"verb", "ListRecords"}}));
  EXPECT_EQ(bad_arg.error, "badArgument");
  EXPECT_FALSE(bad_arg.root.child("request").first_attribute());

  Reply no_format(respond_to(list, {{"verb", "GetRecord"}, {"identifier", "ivo://example.org/r1"},
                                    {"metadataPrefix", "marc"}}));
  EXPECT_EQ(no_format.error, "cannotDisseminateFormat");
  EXPECT_EQ(std::string(no_format.root.child("request").attribute("verb").value()), "GetRecord");
  EXPECT_EQ(std::string(no_format.root.child("request").attribute("metadataPrefix").value()), "marc");

  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListRecords"}, {"metadataPrefix", "marc"}})).error,
            "cannotDisseminateFormat");
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "GetRecord"}, {"identifier", "ivo://example.org/none"},
                                    {"metadataPrefix", "ivo_vor"}}))
                .error,
            "idDoesNotExist");
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListMetadataFormats"}, {"identifier", "ivo://example.org/none"}})).error,
            "idDoesNotExist");
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListSets"}, {"resumptionToken", "x"}})).error, "badResumptionToken");
  // Far beyond what nanoseconds since 1970 hold (2262).
  for (const char* later : {"2030-01-01", "2999-01-01", "9999-12-31T23:59:59Z"}) {
    EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}, {"from", later}})).error,
              "noRecordsMatch")
        << later;
  }
  EXPECT_EQ(
      Reply(respond_to(list, {{"verb", "ListIdentifiers"}, {"metadataPrefix", "ivo_vor"}, {"until", "0001-01-01"}}))
          .error,
      "noRecordsMatch");
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListIdentifiers"}, {"metadataPrefix", "ivo_vor"}, {"set", "other"}}))
                .error,
            "noRecordsMatch");
}

TEST(OaiRespond, IdentifyFormatsAndSets) {
  const auto list = sample_list(3, 10);
  Reply id(respond_to(list, {{"verb", "Identify"}}));
  ASSERT_EQ(id.error, "");
  const auto identify = id.root.child("Identify");
  EXPECT_EQ(std::string(identify.child("protocolVersion").text().get()), "2.0");
  EXPECT_EQ(std::string(identify.child("baseURL").text().get()), list.base_url);
  EXPECT_EQ(std::string(identify.child("earliestDatestamp").text().get()), "2024-01-01T03:00:00Z");
  EXPECT_EQ(std::string(identify.child("granularity").text().get()), "YYYY-MM-DDThh:mm:ssZ");
  EXPECT_EQ(std::string(identify.child("adminEmail").text().get()), "a@example.org");
  EXPECT_TRUE(identify.child("description").child("ri:Resource"));

  Reply formats(respond_to(list, {{"verb", "ListMetadataFormats"}, {"identifier", "ivo://example.org/r2"}}));
  std::set<std::string> prefixes;
  for (const auto& f : formats.root.child("ListMetadataFormats").children("metadataFormat")) {
    prefixes.insert(f.child("metadataPrefix").text().get());
  }
  EXPECT_EQ(prefixes, (std::set<std::string>{"ivo_vor", "oai_dc"}));

  Reply sets(respond_to(list, {{"verb", "ListSets"}}));
  EXPECT_EQ(std::string(sets.root.child("ListSets").child("set").child("setSpec").text().get()), "ivo_managed");
}

TEST(OaiRespond, DublinCoreComesFromTheVOResourceRecord) {
  const auto list = sample_list(3, 10);
  Reply r(respond_to(list,
                     {{"verb", "GetRecord"}, {"identifier", "ivo://example.org/r1"}, {"metadataPrefix", "oai_dc"}}));
  const auto record = r.root.child("GetRecord").child("record");
  EXPECT_EQ(std::string(record.child("header").child("datestamp").text().get()), "2024-01-02T03:00:00Z");
  const auto dc = record.child("metadata").child("oai_dc:dc");
  ASSERT_TRUE(dc);
  EXPECT_EQ(std::string(dc.child("dc:title").text().get()), "Record ivo://example.org/r1");
  EXPECT_EQ(std::string(dc.child("dc:identifier").text().get()), "ivo://example.org/r1");
  EXPECT_EQ(std::string(dc.child("dc:subject").text().get()), "Sky surveys");
}

// Walks a list with its tokens; returns the identifiers in the order seen.
std::vector<std::string> walk(const RecordList& list, const char* verb, Arguments first, std::size_t& pages) {
  std::vector<std::string> seen;
  std::set<unsigned long long> complete_list_sizes;
  Arguments arguments = std::move(first);
  pages = 0;
  while (true) {
    Reply reply(respond_to(list, arguments));
    EXPECT_EQ(reply.error, "");
    if (!reply.error.empty()) break;
    ++pages;
    const auto body = reply.root.child(verb);
    for (const auto& h : body.select_nodes(".//header/identifier")) seen.emplace_back(h.node().text().get());
    const auto token = body.child("resumptionToken");
    if (!token || std::string(token.text().get()).empty()) break;
    // completeListSize counts the selected records: all of them in this walk's pages.
    complete_list_sizes.insert(token.attribute("completeListSize").as_ullong());
    arguments = {{"verb", verb}, {"resumptionToken", token.text().get()}};
  }
  EXPECT_EQ(complete_list_sizes, (std::set<unsigned long long>{seen.size()}));
  return seen;
}

TEST(OaiRespond, ResumptionTokensWalkEveryRecordOnce) {
  const auto list = sample_list(7, 3);
  for (const char* verb : {"ListRecords", "ListIdentifiers"}) {
    std::size_t pages = 0;
    const auto seen = walk(list, verb, {{"verb", verb}, {"metadataPrefix", "ivo_vor"}}, pages);
    EXPECT_EQ(pages, 3u) << verb;
    ASSERT_EQ(seen.size(), 7u) << verb;
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 7u) << verb;
  }
  // from and until travel in the token: 2024-01-02 .. 2024-01-06 is five records.
  std::size_t pages = 0;
  const auto some = walk(list, "ListIdentifiers",
                         {{"verb", "ListIdentifiers"}, {"metadataPrefix", "oai_dc"}, {"from", "2024-01-02"},
                          {"until", "2024-01-06"}},
                         pages);
  EXPECT_EQ(some, (std::vector<std::string>{"ivo://example.org/r1", "ivo://example.org/r2", "ivo://example.org/r3",
                                            "ivo://example.org/r4", "ivo://example.org/r5"}));
  EXPECT_EQ(pages, 2u);
}

TEST(OaiRespond, RefusesForeignTamperedAndStaleTokens) {
  auto list = sample_list(7, 3);
  Reply first(respond_to(list, {{"verb", "ListRecords"}, {"metadataPrefix", "ivo_vor"}}));
  const std::string token = first.root.child("ListRecords").child("resumptionToken").text().get();
  ASSERT_FALSE(token.empty());
  // Another verb's list.
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListIdentifiers"}, {"resumptionToken", token}})).error,
            "badResumptionToken");
  // Edited.
  std::string tampered = token;
  tampered[2] = tampered[2] == 'x' ? 'y' : 'x';
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListRecords"}, {"resumptionToken", tampered}})).error,
            "badResumptionToken");
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListRecords"}, {"resumptionToken", "garbage"}})).error,
            "badResumptionToken");
  // The records changed since.
  list.records.pop_back();
  EXPECT_EQ(Reply(respond_to(list, {{"verb", "ListRecords"}, {"resumptionToken", token}})).error,
            "badResumptionToken");
}

TEST(PublishingSettings, HipsStatusVocabulary) {
  EXPECT_EQ(hips_status_problem("public master clonableOnce"), "");
  EXPECT_EQ(hips_status_problem("private mirror unclonable"), "");
  EXPECT_NE(hips_status_problem("public private"), "");
  EXPECT_NE(hips_status_problem("open"), "");
  EXPECT_NE(hips_status_problem(""), "");
}

}  // namespace
}  // namespace pixserve::publishing
