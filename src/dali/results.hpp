// Table results of DALI query endpoints: RESPONSEFORMAT and MAXREC handled in
// one place. A query endpoint declares result_params(limits) among its
// parameters, describes its columns once (votable::Field) and hands over a
// row source; table_response() picks the serialisation, applies MAXREC and
// streams the rows to the client as they are produced.
//
//   return dali::table_response(params, limits, {
//       .fields = fields,
//       .rows = [records](const dali::RowSink& emit) {
//         for (const auto& r : *records)
//           if (!emit(row_of(r))) return;   // MAXREC reached or client gone
//       }});
//
// RESPONSEFORMAT (DALI 1.1 section 3.2.7; names as in TAP 1.1):
//   votable, votable/td, application/x-votable+xml, text/xml  -> VOTable TABLEDATA (the default)
//   votable/b2, application/x-votable+xml;serialization=BINARY2 -> VOTable BINARY2
//   votable/b, application/x-votable+xml;serialization=BINARY   -> VOTable BINARY
//   csv, text/csv                                             -> CSV (RFC 4180, header line)
//   tsv, text/tab-separated-values                            -> TSV
// Matching ignores case and blanks around ';' and '='; anything else is a
// 400 naming RESPONSEFORMAT and the values allowed.
//
// MAXREC: default limits.default_maxrec, values above limits.max_maxrec are
// lowered to it (DALI: the service's hard limit wins). MAXREC=0 gives the
// metadata only, QUERY_STATUS OK, without running the row source. When the
// source has more rows than MAXREC, the VOTable carries
// <INFO name="QUERY_STATUS" value="OVERFLOW"/> after the TABLE (after
// QUERY_STATUS OK at the start of the RESOURCE).
//
// A row source that fails after the response has begun (a query stopped by
// its time limit, the database lost) throws RowsFailed: the rows already
// sent cannot be taken back, so the VOTable ends with
// <INFO name="QUERY_STATUS" value="ERROR">message</INFO> after the TABLE
// instead (DALI 1.1, section 4.4.1: a status after the table overrides the
// one before it). CSV and TSV have no place for it: their body just stops
// there, and TableStats::error tells the caller, who must not present it as
// complete. A failure before the first row is not a RowsFailed: the caller
// steps its source to the first row before answering, so that it becomes
// the usual DALI error document with its HTTP status.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dali/params.hpp"
#include "dali/settings.hpp"
#include "http/response.hpp"
#include "votable/model.hpp"
#include "votable/output_buffer.hpp"
#include "votable/writer.hpp"

namespace pixserve::dali {

// The standard MAXREC and RESPONSEFORMAT declarations.
ParamSpec maxrec_param(const ResultLimits& limits);
ParamSpec responseformat_param();
std::vector<ParamSpec> result_params(const ResultLimits& limits);

enum class TableFormat { votable_tabledata, votable_binary, votable_binary2, csv, tsv };

struct ResponseFormat {
  TableFormat format = TableFormat::votable_tabledata;
  std::string content_type = "application/x-votable+xml";
};

// The media type of each table format, in TableFormat order: what a query
// endpoint declares as its result types (OpenAPI, directory).
std::vector<std::string> table_result_types();

// One RESPONSEFORMAT value; throws dali::UsageError naming the allowed values.
ResponseFormat parse_response_format(std::string_view value);
// The request's RESPONSEFORMAT (the default when absent).
ResponseFormat response_format(const ParsedParams& params);
// The request's effective MAXREC: default when absent, at most the hard limit.
std::int64_t effective_maxrec(const ParsedParams& params, const ResultLimits& limits);

// Receives one row (a value per field, in field order); returns false when
// the source must stop (MAXREC reached or the client went away).
using RowSink = std::function<bool(std::span<const votable::Value>)>;
// Produces rows by calling the sink until it returns false or the rows run
// out. Runs on a server worker thread while the response streams, after the
// handler returned: whatever it uses must be owned by it (capture shared_ptrs
// or values, never references to the handler's locals).
using RowSource = std::function<void(const RowSink&)>;

struct TableResult {
  std::string name = "results";
  std::string description{};
  std::vector<votable::Field> fields{};
  // INFO elements written after QUERY_STATUS at the start of the results
  // RESOURCE (VOTable only), e.g. {"request", "..."}.
  std::vector<std::pair<std::string, std::string>> infos{};
  RowSource rows{};
  // For a source that applies MAXREC itself (it gives at most MAXREC rows,
  // e.g. a database query limited to MAXREC + 1): asked after the rows,
  // true when more matched, which gives the OVERFLOW status.
  std::function<bool()> overflowed{};
  // Writes further RESOURCEs after the results one (VOTable only), e.g.
  // DataLink service descriptors.
  std::function<void(votable::VotableWriter&)> more_resources{};
};

// Thrown by a row source that cannot go on; what() is shown to the client
// (so it must not name files, hosts or SQL).
class RowsFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The RowsFailed of a source whose database went away (db::Unavailable)
// after the first row: the rows cannot be read again elsewhere. The cause
// (which names the server) goes to the log as `source`'s, not to the client.
RowsFailed database_lost_mid_stream(std::string_view source, const std::exception& cause);

struct TableStats {
  std::uint64_t rows = 0;
  bool overflow = false;
  // Set when the row source failed (RowsFailed) after the table began: the
  // message of the QUERY_STATUS ERROR written after it (VOTable), or of a
  // CSV/TSV body that is incomplete.
  std::optional<std::string> error{};
};

// Writes the whole result to `sink` in `format`, with at most `maxrec` rows.
// Exceptions other than RowsFailed propagate (the sink's above all).
TableStats write_table(votable::Sink sink, const ResponseFormat& format, std::int64_t maxrec, const TableResult& result);

// What a streamed response does about a result whose source failed
// (stats.error): a VOTable has its QUERY_STATUS ERROR and is logged; a
// CSV/TSV body is cut by throwing (the server then closes the connection
// without ending the body and logs it). Nothing when the source did not fail.
void end_failed_stream(const ResponseFormat& format, const TableStats& stats);

// Resolves RESPONSEFORMAT and MAXREC now (a bad value is a DaliError here,
// before any byte is sent) and returns a streaming response that writes the
// result as the client reads it. A CSV/TSV body whose source failed is cut
// (the connection closes without the end of the chunked body), so that the
// client sees an incomplete transfer rather than a short table.
http::Response table_response(const ParsedParams& params, const ResultLimits& limits, TableResult result);

}  // namespace pixserve::dali
