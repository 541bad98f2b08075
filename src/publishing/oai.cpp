#include "publishing/oai.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <sstream>

#include <fmt/format.h>

#include "auth/jwt.hpp"
#include "dali/vosi.hpp"

namespace pixserve::publishing {
namespace {

constexpr std::string_view kOaiSchema = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd";
constexpr std::string_view kRiSchema = "http://www.ivoa.net/xml/RegistryInterface/RegistryInterface-v1.0.xsd";
constexpr std::string_view kOaiDcNs = "http://www.openarchives.org/OAI/2.0/oai_dc/";
constexpr std::string_view kOaiDcSchema = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd";
constexpr std::string_view kDcNs = "http://purl.org/dc/elements/1.1/";
constexpr std::string_view kIvoVor = "ivo_vor";
constexpr std::string_view kOaiDc = "oai_dc";
constexpr std::string_view kTokenVersion = "1";

constexpr std::array<std::pair<Verb, std::string_view>, 6> kVerbs{{
    {Verb::identify, "Identify"},
    {Verb::list_metadata_formats, "ListMetadataFormats"},
    {Verb::list_sets, "ListSets"},
    {Verb::list_identifiers, "ListIdentifiers"},
    {Verb::list_records, "ListRecords"},
    {Verb::get_record, "GetRecord"},
}};

std::optional<Verb> verb_of(std::string_view name) {
  for (const auto& [verb, text] : kVerbs) {
    if (text == name) return verb;
  }
  return std::nullopt;
}

// The arguments each verb takes besides `verb` (OAI-PMH 2.0 section 4).
std::vector<std::string_view> legal_arguments(Verb verb) {
  switch (verb) {
    case Verb::identify: return {};
    case Verb::list_metadata_formats: return {"identifier"};
    case Verb::list_sets: return {"resumptionToken"};
    case Verb::list_identifiers:
    case Verb::list_records: return {"metadataPrefix", "from", "until", "set", "resumptionToken"};
    case Verb::get_record: return {"identifier", "metadataPrefix"};
  }
  return {};
}

bool digits(std::string_view s, int& out) {
  out = 0;
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size() && std::all_of(s.begin(), s.end(), [](char c) {
           return c >= '0' && c <= '9';
         });
}

// FNV-1a, 64 bits: the tokens' checksum and the lists' fingerprint. It
// catches a token edited or cut short; it is not a secret (a token only
// says where a public list continues).
std::string fnv_hex(std::string_view text) {
  std::uint64_t h = 1469598103934665603ULL;
  for (const unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h);
}

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const auto end = text.find(sep, start);
    out.emplace_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

OaiError bad_argument(std::string message) { return {"badArgument", std::move(message)}; }

void text_child(pugi::xml_node parent, const char* name, std::string_view text) {
  parent.append_child(name).text().set(std::string(text).c_str());
}

std::string child_text(pugi::xml_node node, const char* name) { return node.child(name).text().get(); }

// The Dublin Core record (oai_dc, which OAI-PMH requires of every
// repository) made from the VOResource record, so the two cannot disagree.
void write_dublin_core(pugi::xml_node metadata, const Record& record) {
  pugi::xml_document scratch;
  record.write(scratch);
  const auto r = scratch.document_element();
  auto dc = metadata.append_child("oai_dc:dc");
  dc.append_attribute("xmlns:oai_dc") = std::string(kOaiDcNs).c_str();
  dc.append_attribute("xmlns:dc") = std::string(kDcNs).c_str();
  dc.append_attribute("xmlns:xsi") = std::string(dali::xsi_ns).c_str();
  dc.append_attribute("xsi:schemaLocation") = fmt::format("{} {}", kOaiDcNs, kOaiDcSchema).c_str();
  text_child(dc, "dc:title", child_text(r, "title"));
  const auto curation = r.child("curation");
  for (const auto& creator : curation.children("creator")) text_child(dc, "dc:creator", child_text(creator, "name"));
  const auto content = r.child("content");
  for (const auto& subject : content.children("subject")) text_child(dc, "dc:subject", subject.text().get());
  text_child(dc, "dc:description", child_text(content, "description"));
  text_child(dc, "dc:publisher", child_text(curation, "publisher"));
  text_child(dc, "dc:date", std::string(r.attribute("updated").value()).substr(0, 10));
  for (const auto& type : content.children("type")) text_child(dc, "dc:type", type.text().get());
  text_child(dc, "dc:identifier", child_text(r, "identifier"));
  if (const auto url = child_text(content, "referenceURL"); !url.empty()) text_child(dc, "dc:identifier", url);
}

void write_header(pugi::xml_node parent, const Record& record) {
  auto header = parent.append_child("header");
  text_child(header, "identifier", record.identifier);
  text_child(header, "datestamp", format_datestamp(record.datestamp));
  text_child(header, "setSpec", kManagedSet);
}

void write_record(pugi::xml_node parent, const Record& record, std::string_view prefix) {
  auto r = parent.append_child("record");
  write_header(r, record);
  auto metadata = r.append_child("metadata");
  if (prefix == kIvoVor) {
    record.write(metadata);
  } else {
    write_dublin_core(metadata, record);
  }
}

const Record* find_record(const RecordList& list, std::string_view identifier) {
  for (const auto& r : list.records) {
    if (r.identifier == identifier) return &r;
  }
  return nullptr;
}

bool known_prefix(std::string_view prefix) { return prefix == kIvoVor || prefix == kOaiDc; }

std::chrono::sys_seconds to_seconds(Clock::time_point t) { return std::chrono::floor<std::chrono::seconds>(t); }

// The envelope: responseDate and request; `echo` false for badVerb and
// badArgument, whose arguments the request element must not repeat.
pugi::xml_node envelope(pugi::xml_document& doc, const RecordList& list, const Arguments& arguments, bool echo,
                        Clock::time_point now) {
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto root = doc.append_child("OAI-PMH");
  root.append_attribute("xmlns") = std::string(oai_ns).c_str();
  root.append_attribute("xmlns:xsi") = std::string(dali::xsi_ns).c_str();
  root.append_attribute("xsi:schemaLocation") = fmt::format("{} {}", oai_ns, kOaiSchema).c_str();
  text_child(root, "responseDate", format_datestamp(now));
  auto request = root.append_child("request");
  if (echo) {
    for (const auto& [name, value] : arguments) request.append_attribute(name.c_str()) = value.c_str();
  }
  request.text().set(list.base_url.c_str());
  return root;
}

std::string document_text(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, " ", pugi::format_indent, pugi::encoding_utf8);
  return out.str();
}

std::string error_document(const RecordList& list, const Arguments& arguments, bool echo, const OaiError& error,
                           Clock::time_point now) {
  pugi::xml_document doc;
  auto root = envelope(doc, list, arguments, echo, now);
  auto e = root.append_child("error");
  e.append_attribute("code") = error.code.c_str();
  e.text().set(error.message.c_str());
  return document_text(doc);
}

void identify(pugi::xml_node root, const RecordList& list) {
  auto id = root.append_child("Identify");
  text_child(id, "repositoryName", list.repository_name);
  text_child(id, "baseURL", list.base_url);
  text_child(id, "protocolVersion", "2.0");
  for (const auto& email : list.admin_emails) text_child(id, "adminEmail", email);
  auto earliest = Clock::time_point::max();
  for (const auto& r : list.records) earliest = std::min(earliest, r.datestamp);
  text_child(id, "earliestDatestamp",
             format_datestamp(earliest == Clock::time_point::max() ? Clock::time_point{} : earliest));
  // Records are made from what the server serves now: a withdrawn service
  // leaves no trace to report as deleted.
  text_child(id, "deletedRecord", "no");
  text_child(id, "granularity", "YYYY-MM-DDThh:mm:ssZ");
  if (list.describe) list.describe(id.append_child("description"));
}

void metadata_formats(pugi::xml_node root) {
  auto formats = root.append_child("ListMetadataFormats");
  const std::array<std::array<std::string, 3>, 2> kFormats{{
      {std::string(kIvoVor), std::string(kRiSchema), std::string(dali::registry_interface_ns)},
      {std::string(kOaiDc), std::string(kOaiDcSchema), std::string(kOaiDcNs)},
  }};
  for (const auto& [prefix, schema, ns] : kFormats) {
    auto f = formats.append_child("metadataFormat");
    text_child(f, "metadataPrefix", prefix);
    text_child(f, "schema", schema);
    text_child(f, "metadataNamespace", ns);
  }
}

}  // namespace

std::string_view verb_name(Verb verb) {
  for (const auto& [v, text] : kVerbs) {
    if (v == verb) return text;
  }
  return "";
}

std::optional<Datestamp> parse_datestamp(std::string_view text, bool until) {
  if (text.size() != 10 && text.size() != 20) return std::nullopt;
  if (text[4] != '-' || text[7] != '-') return std::nullopt;
  int y = 0, m = 0, d = 0, hh = 0, mm = 0, ss = 0;
  if (!digits(text.substr(0, 4), y) || !digits(text.substr(5, 2), m) || !digits(text.substr(8, 2), d)) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(m)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  const std::chrono::sys_seconds day = std::chrono::sys_days{ymd};
  if (text.size() == 10) {
    return Datestamp{.time = until ? day + std::chrono::seconds{86399} : day, .day = true};
  }
  if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z') return std::nullopt;
  if (!digits(text.substr(11, 2), hh) || !digits(text.substr(14, 2), mm) || !digits(text.substr(17, 2), ss) ||
      hh > 23 || mm > 59 || ss > 59) {
    return std::nullopt;
  }
  return Datestamp{.time = day + std::chrono::hours{hh} + std::chrono::minutes{mm} + std::chrono::seconds{ss},
                   .day = false};
}

std::string format_datestamp(Clock::time_point t) {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<std::chrono::days>(secs);
  const std::chrono::year_month_day ymd{days};
  const std::chrono::hh_mm_ss hms{secs - days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), hms.hours().count(),
                     hms.minutes().count(), hms.seconds().count());
}

std::variant<OaiRequest, OaiError> parse_arguments(const Arguments& arguments) {
  std::optional<std::string> verb_text;
  for (const auto& [name, value] : arguments) {
    if (name != "verb") continue;
    if (verb_text) return OaiError{"badVerb", "the verb argument is repeated"};
    verb_text = value;
  }
  if (!verb_text) return OaiError{"badVerb", "no verb argument"};
  const auto verb = verb_of(*verb_text);
  if (!verb) return OaiError{"badVerb", fmt::format("'{}' is not an OAI-PMH verb", verb_text->substr(0, 80))};

  OaiRequest request{.verb = *verb, .echoed = {}, .identifier = {}, .metadata_prefix = {}, .set = {},
                     .resumption_token = {}, .from = {}, .until = {}};
  const auto legal = legal_arguments(*verb);
  for (const auto& [name, value] : arguments) {
    request.echoed.emplace_back(name, value);
    if (name == "verb") continue;
    if (std::find(legal.begin(), legal.end(), name) == legal.end()) {
      return bad_argument(fmt::format("{} takes no argument '{}'", *verb_text, name.substr(0, 80)));
    }
    if (value.empty()) return bad_argument(fmt::format("the argument {} is empty", name));
    std::optional<std::string>* slot = nullptr;
    if (name == "identifier") slot = &request.identifier;
    if (name == "metadataPrefix") slot = &request.metadata_prefix;
    if (name == "set") slot = &request.set;
    if (name == "resumptionToken") slot = &request.resumption_token;
    if (name == "from" || name == "until") {
      auto& date = name == "from" ? request.from : request.until;
      if (date) return bad_argument(fmt::format("the argument {} is repeated", name));
      date = parse_datestamp(value, name == "until");
      if (!date) {
        return bad_argument(fmt::format("{}: '{}' is not a date YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ", name,
                                        value.substr(0, 80)));
      }
      continue;
    }
    if (*slot) return bad_argument(fmt::format("the argument {} is repeated", name));
    *slot = value;
  }
  if (request.resumption_token && request.echoed.size() > 2) {
    return bad_argument("resumptionToken is an exclusive argument: give it alone with the verb");
  }
  if (request.from && request.until) {
    if (request.from->day != request.until->day) {
      return bad_argument("from and until have different granularities");
    }
    if (request.from->time > request.until->time) return bad_argument("from is later than until");
  }
  const bool listing = *verb == Verb::list_identifiers || *verb == Verb::list_records;
  if ((listing && !request.resumption_token) || *verb == Verb::get_record) {
    if (!request.metadata_prefix) return bad_argument(fmt::format("{} needs a metadataPrefix", *verb_text));
  }
  if (*verb == Verb::get_record && !request.identifier) return bad_argument("GetRecord needs an identifier");
  return request;
}

std::string encode_token(const ListState& state) {
  const std::string payload = fmt::format("{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}", kTokenVersion, verb_name(state.verb),
                                          state.metadata_prefix, state.from, state.until, state.set, state.offset,
                                          state.fingerprint);
  // The checksum covers the text harvesters hold, so any changed character fails it.
  const std::string text = auth::base64url_encode(payload);
  return text + "." + fnv_hex(text);
}

std::optional<ListState> decode_token(std::string_view token) {
  const auto dot = token.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  if (fnv_hex(token.substr(0, dot)) != token.substr(dot + 1)) return std::nullopt;
  std::string payload;
  try {
    payload = auth::base64url_decode(token.substr(0, dot));
  } catch (const auth::JwtError&) {
    return std::nullopt;
  }
  const auto fields = split(payload, '\n');
  if (fields.size() != 8 || fields[0] != kTokenVersion) return std::nullopt;
  const auto verb = verb_of(fields[1]);
  if (!verb) return std::nullopt;
  ListState state{.verb = *verb, .metadata_prefix = fields[2], .from = fields[3], .until = fields[4],
                  .set = fields[5], .offset = 0, .fingerprint = fields[7]};
  auto [p, ec] = std::from_chars(fields[6].data(), fields[6].data() + fields[6].size(), state.offset);
  if (ec != std::errc{} || p != fields[6].data() + fields[6].size()) return std::nullopt;
  return state;
}

std::string list_fingerprint(const std::vector<Record>& records) {
  std::string ids;
  for (const auto& r : records) ids += r.identifier + "\n";
  return fnv_hex(ids);
}

std::string respond(const RecordList& list, const Arguments& arguments, Clock::time_point now) {
  auto parsed = parse_arguments(arguments);
  if (const auto* error = std::get_if<OaiError>(&parsed)) return error_document(list, arguments, false, *error, now);
  const auto& request = std::get<OaiRequest>(parsed);
  const auto fail = [&](std::string code, std::string message) {
    return error_document(list, arguments, true, {std::move(code), std::move(message)}, now);
  };

  pugi::xml_document doc;
  auto root = envelope(doc, list, arguments, true, now);
  switch (request.verb) {
    case Verb::identify: identify(root, list); break;
    case Verb::list_metadata_formats:
      if (request.identifier && !find_record(list, *request.identifier)) {
        return fail("idDoesNotExist", fmt::format("no record '{}'", request.identifier->substr(0, 200)));
      }
      metadata_formats(root);
      break;
    case Verb::list_sets: {
      // One page of sets: no token continues it.
      if (request.resumption_token) return fail("badResumptionToken", "the list of sets has one page");
      auto set = root.append_child("ListSets").append_child("set");
      text_child(set, "setSpec", kManagedSet);
      text_child(set, "setName", "Resources managed by this publishing registry");
      break;
    }
    case Verb::get_record: {
      const Record* record = find_record(list, *request.identifier);
      if (!record) return fail("idDoesNotExist", fmt::format("no record '{}'", request.identifier->substr(0, 200)));
      if (!known_prefix(*request.metadata_prefix)) {
        return fail("cannotDisseminateFormat",
                    fmt::format("no metadata format '{}' (ivo_vor, oai_dc)", request.metadata_prefix->substr(0, 80)));
      }
      write_record(root.append_child("GetRecord"), *record, *request.metadata_prefix);
      break;
    }
    case Verb::list_identifiers:
    case Verb::list_records: {
      const std::string fingerprint = list_fingerprint(list.records);
      ListState state{.verb = request.verb, .metadata_prefix = request.metadata_prefix.value_or(""),
                      .from = {}, .until = {}, .set = request.set.value_or(""), .offset = 0,
                      .fingerprint = fingerprint};
      std::optional<Datestamp> from = request.from, until = request.until;
      for (const auto& [name, value] : arguments) {
        if (name == "from") state.from = value;
        if (name == "until") state.until = value;
      }
      const bool resumed = request.resumption_token.has_value();
      if (resumed) {
        auto decoded = decode_token(*request.resumption_token);
        if (!decoded) return fail("badResumptionToken", "the resumptionToken is not one this repository issued");
        if (decoded->verb != request.verb) {
          return fail("badResumptionToken",
                      fmt::format("the resumptionToken continues a {}, not a {}", verb_name(decoded->verb),
                                  verb_name(request.verb)));
        }
        if (decoded->fingerprint != fingerprint) {
          return fail("badResumptionToken", "the records changed since the resumptionToken was issued: start again");
        }
        state = std::move(*decoded);
        from = state.from.empty() ? std::nullopt : parse_datestamp(state.from, false);
        until = state.until.empty() ? std::nullopt : parse_datestamp(state.until, true);
      } else if (!known_prefix(state.metadata_prefix)) {
        return fail("cannotDisseminateFormat",
                    fmt::format("no metadata format '{}' (ivo_vor, oai_dc)", state.metadata_prefix.substr(0, 80)));
      }
      std::vector<const Record*> selected;
      if (state.set.empty() || state.set == kManagedSet) {
        for (const auto& r : list.records) {
          const auto t = to_seconds(r.datestamp);
          if ((!from || t >= from->time) && (!until || t <= until->time)) selected.push_back(&r);
        }
      }
      if (selected.empty()) return fail("noRecordsMatch", "no record matches from, until and set");
      if (resumed && state.offset >= selected.size()) {
        return fail("badResumptionToken", "the resumptionToken points past the end of the list");
      }
      const std::size_t page = std::max<std::size_t>(list.page_size, 1);
      const std::size_t end = std::min(selected.size(), state.offset + page);
      auto out = root.append_child(std::string(verb_name(request.verb)).c_str());
      for (std::size_t i = state.offset; i < end; ++i) {
        if (request.verb == Verb::list_identifiers) {
          write_header(out, *selected[i]);
        } else {
          write_record(out, *selected[i], state.metadata_prefix);
        }
      }
      if (state.offset > 0 || end < selected.size()) {
        auto token = out.append_child("resumptionToken");
        token.append_attribute("completeListSize") = static_cast<unsigned long long>(selected.size());
        token.append_attribute("cursor") = static_cast<unsigned long long>(state.offset);
        if (end < selected.size()) {
          ListState next = state;
          next.offset = end;
          token.text().set(encode_token(next).c_str());
        }
      }
      break;
    }
  }
  return document_text(doc);
}

}  // namespace pixserve::publishing
