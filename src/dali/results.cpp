#include "dali/results.hpp"

#include <algorithm>
#include <array>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "http/headers.hpp"
#include "votable/text_table.hpp"

namespace pixserve::dali {
namespace {

struct FormatName {
  std::string_view name;  // lower case, blanks removed
  TableFormat format;
};

// The first name of each format is its canonical short name.
constexpr std::array kFormats{
    FormatName{"votable", TableFormat::votable_tabledata},
    FormatName{"votable/td", TableFormat::votable_tabledata},
    FormatName{"application/x-votable+xml", TableFormat::votable_tabledata},
    FormatName{"application/x-votable+xml;serialization=tabledata", TableFormat::votable_tabledata},
    FormatName{"text/xml", TableFormat::votable_tabledata},
    FormatName{"votable/b", TableFormat::votable_binary},
    FormatName{"application/x-votable+xml;serialization=binary", TableFormat::votable_binary},
    FormatName{"votable/b2", TableFormat::votable_binary2},
    FormatName{"application/x-votable+xml;serialization=binary2", TableFormat::votable_binary2},
    FormatName{"csv", TableFormat::csv},
    FormatName{"text/csv", TableFormat::csv},
    FormatName{"text/csv;header=present", TableFormat::csv},
    FormatName{"tsv", TableFormat::tsv},
    FormatName{"text/tab-separated-values", TableFormat::tsv},
};

// The values advertised (descriptor OPTIONs, OpenAPI enum).
const std::vector<std::string>& advertised_formats() {
  static const std::vector<std::string> kAdvertised{
      "votable",  "application/x-votable+xml", "application/x-votable+xml;serialization=BINARY2", "votable/b2",
      "application/x-votable+xml;serialization=BINARY", "votable/b",
      "csv",      "text/csv",                  "tsv",                                             "text/tab-separated-values"};
  return kAdvertised;
}

std::string content_type_of(TableFormat f) {
  switch (f) {
    case TableFormat::votable_tabledata: return "application/x-votable+xml";
    case TableFormat::votable_binary: return "application/x-votable+xml;serialization=BINARY";
    case TableFormat::votable_binary2: return "application/x-votable+xml;serialization=BINARY2";
    case TableFormat::csv: return "text/csv; charset=utf-8; header=present";
    case TableFormat::tsv: return "text/tab-separated-values; charset=utf-8";
  }
  return "application/x-votable+xml";
}

// Thrown by the response sink when the client is gone; caught by the
// producer so that the server just closes the connection.
struct ClientGone {};

}  // namespace

std::vector<std::string> table_result_types() {
  // Media types without parameters other than serialization, as OpenAPI
  // response content keys.
  return {"application/x-votable+xml", "application/x-votable+xml;serialization=BINARY",
          "application/x-votable+xml;serialization=BINARY2", "text/csv", "text/tab-separated-values"};
}

ParamSpec maxrec_param(const ResultLimits& limits) {
  return {
      .name = "MAXREC",
      .type = ParamType::integer,
      .description = fmt::format(
          "Maximum number of records to return (DALI). Default {}; values above the service limit {} are lowered "
          "to it. 0 returns the table metadata only. When more records match, the VOTable ends with "
          "INFO QUERY_STATUS=OVERFLOW.",
          limits.default_maxrec, limits.max_maxrec),
      .ucd = "meta.number",
      .min = 0.0,
      .example = "100",
      .standard = true,
  };
}

ParamSpec responseformat_param() {
  return {
      .name = "RESPONSEFORMAT",
      .type = ParamType::text,
      .description =
          "Output format (DALI): votable (VOTable TABLEDATA, the default), "
          "application/x-votable+xml;serialization=BINARY2 (or votable/b2), "
          "application/x-votable+xml;serialization=BINARY (or votable/b; integer nulls as the FIELD's VALUES null), "
          "csv (text/csv) or tsv (text/tab-separated-values).",
      .ucd = "meta.code.mime",
      .options = advertised_formats(),
      .example = "votable",
      .standard = true,
  };
}

std::vector<ParamSpec> result_params(const ResultLimits& limits) { return {maxrec_param(limits), responseformat_param()}; }

ResponseFormat parse_response_format(std::string_view value) {
  std::string key;
  for (const char c : http::ascii_lower(value)) {
    if (c != ' ' && c != '\t') key += c;
  }
  for (const auto& f : kFormats) {
    if (f.name == key) return {f.format, content_type_of(f.format)};
  }
  std::string allowed;
  for (const auto& a : advertised_formats()) allowed += (allowed.empty() ? "" : ", ") + a;
  std::string shown(value.substr(0, 80));
  for (auto& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  throw usage_error(fmt::format("RESPONSEFORMAT: '{}' is not supported; allowed values: {}", shown, allowed));
}

ResponseFormat response_format(const ParsedParams& params) {
  const auto value = params.first<std::string>("RESPONSEFORMAT");
  if (!value) return {};
  return parse_response_format(*value);
}

std::int64_t effective_maxrec(const ParsedParams& params, const ResultLimits& limits) {
  const auto requested = params.first<std::int64_t>("MAXREC");
  const std::int64_t n = requested ? *requested : limits.default_maxrec;
  return std::clamp<std::int64_t>(n, 0, limits.max_maxrec);
}

TableStats write_table(votable::Sink sink, const ResponseFormat& format, std::int64_t maxrec, const TableResult& result) {
  TableStats stats;
  // Counts rows and stops the source at MAXREC: the row after the last one
  // allowed only tells that there is more (overflow) and is not written.
  const auto limited = [&](auto& writer) {
    if (maxrec <= 0 || !result.rows) return;
    const RowSink emit = [&](std::span<const votable::Value> row) {
      if (stats.overflow) return false;
      if (static_cast<std::int64_t>(stats.rows) >= maxrec) {
        stats.overflow = true;
        return false;
      }
      writer.row(row);
      ++stats.rows;
      return true;
    };
    try {
      result.rows(emit);
    } catch (const RowsFailed& e) {
      stats.error = e.what();
      return;
    }
    if (!stats.overflow && result.overflowed && result.overflowed()) stats.overflow = true;
  };

  if (format.format == TableFormat::csv || format.format == TableFormat::tsv) {
    votable::TextTableWriter w(std::move(sink), format.format == TableFormat::csv ? votable::TextFormat::csv
                                                                                   : votable::TextFormat::tsv);
    w.begin(result.fields);
    limited(w);
    w.end();
    return stats;
  }

  const votable::Serialization serialization = format.format == TableFormat::votable_binary2 ? votable::Serialization::binary2
                                               : format.format == TableFormat::votable_binary  ? votable::Serialization::binary
                                                                                              : votable::Serialization::tabledata;
  votable::VotableWriter w(std::move(sink), {.serialization = serialization});
  w.begin_document();
  w.begin_resource({.type = votable::ResourceType::results});
  w.info("QUERY_STATUS", "OK");
  for (const auto& [name, value] : result.infos) w.info(name, value);
  w.begin_table({.name = result.name, .description = result.description, .fields = result.fields});
  limited(w);
  w.end_table();
  if (stats.error) {
    w.info("QUERY_STATUS", "ERROR", *stats.error);
  } else if (stats.overflow) {
    w.info("QUERY_STATUS", "OVERFLOW", fmt::format("more than MAXREC={} records match; the result is truncated", maxrec));
  }
  w.end_resource();
  if (result.more_resources) result.more_resources(w);
  w.end_document();
  return stats;
}

void end_failed_stream(const ResponseFormat& format, const TableStats& stats) {
  if (!stats.error) return;
  if (format.format == TableFormat::csv || format.format == TableFormat::tsv) {
    throw std::runtime_error(fmt::format("the rows failed after {} of them: {}", stats.rows, *stats.error));
  }
  spdlog::warn("a table result ended with QUERY_STATUS ERROR after {} rows: {}", stats.rows, *stats.error);
}

http::Response table_response(const ParsedParams& params, const ResultLimits& limits, TableResult result) {
  const ResponseFormat format = response_format(params);
  const std::int64_t maxrec = effective_maxrec(params, limits);
  auto shared = std::make_shared<const TableResult>(std::move(result));
  return http::Response::stream(format.content_type, [format, maxrec, shared](http::BodyWriter& body) {
    const votable::Sink sink = [&body](std::string_view chunk) {
      if (!body.write(chunk)) throw ClientGone{};
    };
    TableStats stats;
    try {
      stats = write_table(sink, format, maxrec, *shared);
    } catch (const ClientGone&) {
      // The server sees the failed writer and closes the connection.
      return;
    }
    end_failed_stream(format, stats);
  });
}

RowsFailed database_lost_mid_stream(std::string_view source, const std::exception& cause) {
  spdlog::warn("{}: {}", source, cause.what());
  return RowsFailed("the database became unavailable while the result was read");
}

}  // namespace pixserve::dali
