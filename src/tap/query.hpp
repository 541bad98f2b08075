// Runs ADQL queries for TAP on the registry database.
//
// Each query runs on its own connection (taken from a small pool), never
// under SharedRepository's mutex, so a slow query holds up nobody else: on
// SQLite a read-only connection (WAL lets any number of readers run beside
// the registry's writer), on PostgreSQL a session whose every query runs in
// a READ ONLY transaction with the time limit as its statement_timeout.
// The catalogue's data tables are read through views restricted by
// visibility_predicate() to the rows the viewer may see — so an anonymous
// query can never reach an embargoed or non-public row, how ever it is
// written: the translator only emits names from the catalogue, and the
// catalogue only names these views and the TAP_SCHEMA tables (filled from
// TapMetadata).
//   - On SQLite a pooled connection holds them in its TEMP schema (views
//     rebuilt when the viewer changes), with, per query, the uploaded tables
//     (TAP_UPLOAD.x -> tap_upload_N) and the HEALPix cell ranges of large
//     spatial constraints, dropped afterwards; the adql_* functions
//     (adql/sql_functions.hpp) are registered on it.
//   - On PostgreSQL each query carries the ones it names as common table
//     expressions (with_tables) and large cell ranges as arrays, so that it
//     needs nothing of its session: a hot standby (read-only, no TEMP
//     objects) runs it as the primary does. Queries go to a standby that
//     qualifies (EngineOptions::standbys), in turn, and run again on the
//     next one, then on the primary, when it turns out to be gone; those
//     with uploads (TEMP tables) run on the primary. The adql_* functions
//     are the server's, installed on the primary when the engine starts.
//
// Results stream: TapEngine::open returns a QueryCursor that holds the
// pooled connection and the running statement, and gives the rows one at a
// time as the database produces them (SQLite steps its statement; the
// PostgreSQL backend reads single rows, db/postgresql.cpp), so a query's
// memory does not grow with MAXREC and its first row is sent without
// waiting for the last. open() steps to the first row (or the end) before it
// returns: the errors a query meets before that (ADQL, SQL, a time limit)
// are thrown there, while the caller can still answer with an error status.
//
// Limits: the query text length, a time limit (the connection's progress
// check, db::Connection::set_progress_check, interrupts the statement at the
// deadline or when `cancelled` returns true: UWS abort and execution
// duration), MAXREC rows and a result size in
// bytes (the result is cut there with the OVERFLOW status), upload size,
// rows, columns and count.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dali/settings.hpp"
#include "db/standbys.hpp"
#include "tap/schema.hpp"
#include "tap/settings.hpp"
#include "votable/model.hpp"
#include "votable/reader.hpp"

namespace pixserve::tap {

struct EngineOptions {
  // The registry: an SQLite file, or (when set) a PostgreSQL URL.
  std::filesystem::path registry_file{};
  std::string registry_url{};
  int index_order = 9;  // the registry's HEALPix index order
  TapSettings settings{};  // max_query_length, max_result_bytes
  std::size_t max_uploads = 10;
  std::size_t max_idle_connections = 8;
  // Spatial constraints with more HEALPix ranges than this put them in a
  // temporary table instead of the SQL text.
  std::size_t inline_ranges = 64;
  // On PostgreSQL a constraint on s_region is tested here, over the
  // candidates of the footprint index, when the index holds at most this
  // many rows for it (~8 bytes each held, and their datasets' footprints
  // read once); past that the database tests each row itself (slower).
  std::size_t exact_test_max_index_rows = 1'000'000;
  // DataLink's links endpoint, from the service catalogue: ivoa.obscore's
  // access_url is it with ?ID=<DID>.
  std::string datalink_links{};
  // Hot standbys of the PostgreSQL registry: queries without uploads run on
  // one that qualifies (in turn), else on the primary.
  std::shared_ptr<db::Standbys> standbys{};
};

struct Upload {
  std::string name;  // TAP_UPLOAD.<name>
  votable::ReadTable table;
};

struct QueryRequest {
  std::string adql{};
  std::int64_t maxrec = dali::ResultLimits{}.default_maxrec;
  std::vector<Upload> uploads{};
  Viewer viewer{};
  // The service's root URL as the client reached it (scheme://host[:port]):
  // ivoa.obscore's access_url is absolute on it. Empty: the links are
  // relative to the server's root.
  std::string base_url{};
  // Interrupts the query when reached.
  std::optional<std::chrono::steady_clock::time_point> deadline{};
  // Polled while the query runs; true interrupts it.
  std::function<bool()> cancelled{};
};

struct QueryResult {
  std::vector<votable::Field> fields;
  std::vector<std::vector<votable::Value>> rows;
  bool overflow = false;  // more rows matched than returned (MAXREC or the size limit)
  std::string sql;        // what ran (for the log)
};

// The query was stopped: deadline passed (timed_out) or cancelled.
class QueryInterrupted : public std::runtime_error {
 public:
  QueryInterrupted(bool timed_out, const std::string& message) : std::runtime_error(message), timed_out_(timed_out) {}
  bool timed_out() const noexcept { return timed_out_; }

 private:
  bool timed_out_;
};

class TapEngine;

// The rows of one running query, one at a time: move-only, it owns the
// query's pooled connection (checked out of the pool until the cursor is
// destroyed, which ends the query: cancelled on PostgreSQL when rows are
// left, its transaction rolled back, TEMP tables dropped) and keeps the
// query's time limit and cancellation working while the rows are read. The
// engine must outlive it.
class QueryCursor {
 public:
  QueryCursor(QueryCursor&&) noexcept;
  QueryCursor& operator=(QueryCursor&&) noexcept;
  ~QueryCursor();

  const std::vector<votable::Field>& fields() const noexcept;
  const std::string& sql() const noexcept;  // what runs (for the log)

  // The next row, valid until the next call; nullptr when there are no more
  // (the end of the rows, or MAXREC rows given: overflow() then tells
  // whether more matched). Throws as TapEngine::run does: QueryInterrupted,
  // db::Unavailable, dali::UsageError for an error of the query met on a
  // later row.
  const std::vector<votable::Value>* next();
  // More rows matched than were given (MAXREC or the size limit); known
  // once next() has returned nullptr.
  bool overflow() const noexcept;
  // Rows read from the database so far: next() reads one row per call and
  // nothing ahead of it (what bounds the cursor's memory).
  std::uint64_t rows_read() const noexcept;

 private:
  friend class TapEngine;
  struct State;
  explicit QueryCursor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

class TapEngine {
 public:
  TapEngine(std::shared_ptr<const TapMetadata> metadata, EngineOptions options);
  ~TapEngine();
  TapEngine(const TapEngine&) = delete;
  TapEngine& operator=(const TapEngine&) = delete;

  // Runs one query. Throws dali::UsageError for ADQL errors (line and
  // column in the message), bad uploads and SQL failures on user input,
  // QueryInterrupted when stopped, db::Unavailable when the database cannot
  // be reached (a connection lost with its server is dropped from the pool,
  // and the next query opens another), std::exception for server faults.
  QueryResult run(const QueryRequest& request);
  // Starts one query and steps to its first row: throws what run() throws
  // for a failure before the first row. A standby that turns out to be gone
  // before that is replaced by the next server, as in run().
  QueryCursor open(const QueryRequest& request);

  // Idle connections in the pool, over all servers (for tests and status).
  std::size_t idle_connections();

  const TapMetadata& metadata() const noexcept { return *metadata_; }
  const EngineOptions& options() const noexcept { return options_; }

  class Connection;

 private:
  friend struct QueryCursor::State;  // gives its connection back
  // A connection to `server` (0: the primary, 1 + i: standby i).
  std::unique_ptr<Connection> acquire(std::size_t server);
  void release(std::unique_ptr<Connection> connection);
  QueryCursor open_on(std::size_t server, const QueryRequest& request);
  // Returns a query's connection to the pool when its session is usable
  // and cleans up (TEMP tables, an open transaction), else drops it.
  void give_back(std::unique_ptr<Connection> connection) noexcept;
  // PostgreSQL: the translated query with the tables it names (the
  // viewer's views, TAP_SCHEMA) in front as common table expressions, so
  // that it needs nothing of its session and a read-only standby runs it.
  std::string with_tables(const std::string& sql, const Viewer& viewer, const std::string& base_url) const;

  std::shared_ptr<const TapMetadata> metadata_;
  EngineOptions options_;
  std::vector<std::pair<std::string, std::string>> tap_schema_ctes_;  // PostgreSQL: (table, its expression)
  std::mutex mutex_;
  std::vector<std::vector<std::unique_ptr<Connection>>> idle_;  // per server
};

// The uploaded table as the catalogue sees it: ADQL types from the FIELDs'
// datatype, arraysize and xtype (DALI point/circle/polygon become geometry
// columns). Exposed for tests.
adql::AdqlType upload_column_type(const votable::Field& field);

}  // namespace pixserve::tap
