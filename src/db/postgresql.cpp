// PostgreSQL backend of the database interface: the only code that calls
// libpq. Statements are sent with their parameters bound ($n, text format,
// types inferred by the server) and their rows read one at a time
// (single-row mode), so a large result streams instead of being held. A
// running statement is watched while it waits for the server: the
// connection's progress check can cancel it (PQcancel), as the SQLite
// backend's progress handler interrupts SQLite.
//
// A server that goes away (a restart, the network) makes the session lost:
// the statement that met it fails with Unavailable, as does every
// statement sent before the caller's ROLLBACK when a transaction was open;
// the next use after that connects again (PostgresOptions::reconnect), in a
// new session. Statements hold their SQL and parameters, not server-side
// objects, so a statement prepared before works in the new session; one
// whose rows were being streamed from the lost session fails.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "db/database.hpp"

namespace pixserve::db {
namespace pg_detail {

struct ResultClearer {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultClearer>;

struct ConnFinisher {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};

struct CancelFreer {
  void operator()(PGcancel* c) const noexcept { PQfreeCancel(c); }
};

// How often a waiting statement looks at its progress check, and how long
// a cancelled one may go on before the cancel request is sent again.
constexpr int kPollMilliseconds = 50;
constexpr auto kCancelRepeat = std::chrono::milliseconds(500);

// Built-in type OIDs (fixed in PostgreSQL's catalogue) read as numbers.
constexpr Oid kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kFloat4Oid = 700, kFloat8Oid = 701,
              kNumericOid = 1700, kByteaOid = 17, kNameOid = 19, kTextOid = 25, kBpcharOid = 1042,
              kVarcharOid = 1043;

// The first `size` bytes at `p` as an unsigned integer in network byte
// order (binary results).
std::uint64_t network_order(const char* p, std::size_t size) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < size; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// SQLSTATE classes and codes the interface distinguishes.
constexpr std::string_view kUniqueViolation = "23505";
constexpr std::string_view kQueryCanceled = "57014";

// The server ends the session: class 08 (connection exceptions), and a
// shutdown or crash of the server (57P01, 57P02) or one that is starting
// or stopping (57P03).
bool ends_session(std::string_view sqlstate) {
  return sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
}

// Attempts to connect again after a lost session: the first at once, then
// spaced out while the server stays away, so that a burst of requests does
// not hammer a restarting server (or, with a silent network, each wait the
// connect timeout); the longest spacing bounds how long a recovered server
// goes unnoticed.
constexpr auto kFirstRetryDelay = std::chrono::milliseconds(250);
constexpr auto kLastRetryDelay = std::chrono::milliseconds(2000);

// libpq's defaults, which the URL (and PGCONNECT_TIMEOUT) override: a
// connection attempt gives up after 5 s instead of waiting for TCP's own
// timeout (minutes), keepalives notice a network that went silent in
// about a minute instead of two hours; and the server's views
// (pg_stat_activity) name the sessions pixserve's.
constexpr std::pair<const char*, const char*> kConnectionDefaults[] = {{"keepalives_idle", "30"},
                                                                       {"keepalives_interval", "10"},
                                                                       {"keepalives_count", "3"},
                                                                       {"fallback_application_name", "pixserve"}};
constexpr const char* kConnectTimeout = "5";

// ROLLBACK (or ABORT) of the whole transaction, not ROLLBACK TO a savepoint.
bool is_rollback(std::string_view sql) {
  std::string upper;
  for (const char c : sql) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string_view text(upper);
  const auto start = text.find_first_not_of(" \t\n");
  if (start == std::string_view::npos) return false;
  const auto statement = text.substr(start);
  return (statement.starts_with("ROLLBACK") || statement.starts_with("ABORT")) &&
         statement.find(" TO ") == std::string_view::npos;
}

// Notices (warnings, and the reason a server gives when it closes an idle
// session) are not errors; libpq would print them on stderr.
void ignore_notice(void*, const char*) {}

std::string trim_message(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The text with each ? placeholder outside string literals, quoted
// identifiers and comments replaced by $1, $2, ...; n counts them.
std::string numbered_placeholders(std::string_view sql, int& n) {
  std::string out;
  out.reserve(sql.size() + 16);
  n = 0;
  std::size_t i = 0;
  const auto copy_until = [&](std::string_view end, std::size_t from) {
    const std::size_t stop = sql.find(end, from);
    const std::size_t to = stop == std::string_view::npos ? sql.size() : stop + end.size();
    out.append(sql.substr(i, to - i));
    i = to;
  };
  while (i < sql.size()) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      // A quoted run ends at the next lone quote; doubled quotes are part of it.
      std::size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      const std::size_t to = std::min(j + 1, sql.size());
      out.append(sql.substr(i, to - i));
      i = to;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      copy_until("\n", i + 2);
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      copy_until("*/", i + 2);
    } else if (c == '?') {
      out += fmt::format("${}", ++n);
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string value_text(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) {
    if (std::isnan(*d)) return "NaN";
    if (std::isinf(*d)) return *d > 0 ? "Infinity" : "-Infinity";
    return fmt::format("{}", *d);  // the shortest text that reads back as the same double
  }
  return std::get<std::string>(v);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class PgStatement;

using ConnHandle = std::unique_ptr<PGconn, ConnFinisher>;

// A new session set up with `options`; throws Unavailable when the server
// cannot be reached.
ConnHandle open_session(const std::string& url, const PostgresOptions& options, const std::string& where) {
  // Keywords are applied in order and the URL (expanded from dbname) comes
  // last, so that what it says wins over these defaults.
  std::vector<const char*> keys, values;
  for (const auto& [key, value] : kConnectionDefaults) {
    keys.push_back(key);
    values.push_back(value);
  }
  if (std::getenv("PGCONNECT_TIMEOUT") == nullptr) {  // an explicit keyword would hide the variable
    keys.push_back("connect_timeout");
    values.push_back(kConnectTimeout);
  }
  keys.push_back("dbname");
  values.push_back(url.c_str());
  keys.push_back(nullptr);
  values.push_back(nullptr);
  ConnHandle conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (!conn) throw DbError(fmt::format("postgresql: cannot connect to {}: out of memory", where));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw Unavailable(fmt::format("postgresql: cannot connect to {}: {}", where, trim_message(PQerrorMessage(conn.get()))),
                      std::string(kUnavailableReason));
  }
  PQsetNoticeProcessor(conn.get(), ignore_notice, nullptr);
  // An error's message without the CONTEXT lines of the functions it came
  // through (a TAP user reads the message).
  PQsetErrorContextVisibility(conn.get(), PQSHOW_CONTEXT_NEVER);
  // jit off: pixserve's statements are index lookups of milliseconds, but
  // the planner cannot estimate a HEALPix cell range between two parameters,
  // prices a cone search like a scan of the table and would compile it to
  // machine code first: 50-70 ms of every query at 10^6 rows, ~0.5 s for TAP.
  std::string setup = "SET client_encoding = 'UTF8'; SET DateStyle = 'ISO'; SET extra_float_digits = 3; "
                      "SET client_min_messages = warning; SET jit = off";
  if (options.read_only) setup += "; SET default_transaction_read_only = on";
  if (options.statement_timeout.count() > 0) {
    setup += fmt::format("; SET statement_timeout = {}", options.statement_timeout.count());
  }
  Result r(PQexec(conn.get(), setup.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
    const std::string reason = trim_message(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn.get()));
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      throw Unavailable(fmt::format("postgresql: setting up a session on {}: {}", where, reason),
                        std::string(kUnavailableReason));
    }
    throw DbError(fmt::format("postgresql: setting up a session on {}: {}", where, reason), reason);
  }
  return conn;
}

class PgConnection final : public Connection {
 public:
  PgConnection(std::string url, const PostgresOptions& options)
      : url_(std::move(url)), options_(options), where_(display_url(url_)) {
    conn_ = open_session(url_, options_, where_);
  }

  Dialect dialect() const override { return Dialect::postgresql; }
  void exec(std::string_view sql) override;
  std::unique_ptr<Statement> prepare(std::string_view sql) override;
  std::int64_t last_insert_id() override;
  std::int64_t changes() override { return changes_; }
  bool in_transaction() override { return transaction_lost_ || (!broken_ && open_transaction()); }
  bool connected() override {
    notice_closed();
    return !broken_ && !transaction_lost_;
  }
  void set_progress_check(std::function<bool()> check) override { check_ = std::move(check); }
  void create_function(std::string_view name, int, bool, ScalarFunction) override {
    throw DbError(fmt::format("postgresql: {}(): C++ functions cannot run inside PostgreSQL statements; the "
                              "server provides functions of the same names",
                              name));
  }

  // --- for statements ---
  PGconn* raw() const noexcept { return conn_.get(); }
  // Which session the connection is in; a statement sent in an earlier one
  // has lost its rows.
  std::uint64_t session() const noexcept { return session_; }
  // Sends a query; before that, the statement streaming rows (if another)
  // reads the rest of its rows into memory, as one connection carries one
  // query at a time. False when there was nothing to send (the ROLLBACK of
  // a transaction lost with the connection).
  bool send(PgStatement* by, const std::string& sql, const std::vector<std::optional<std::string>>& params,
            bool binary_results);
  // The next result of the query in flight, waiting (and watching the
  // progress check) as long as the server is busy; null when none is left.
  Result next_result();
  // Reads and drops every result left of the query in flight.
  void drain();
  void finished(PgStatement* by) {
    if (active_ == by) active_ = nullptr;
  }
  void set_changes(std::int64_t n) { changes_ = n; }
  [[noreturn]] void fail(const PGresult* result, std::string_view doing);
  bool canceled() const noexcept { return canceled_; }
  [[noreturn]] void orphaned() const {
    throw Unavailable(fmt::format("postgresql: the connection to {} was lost while a result was read", where_),
                      std::string(kUnavailableReason));
  }

 private:
  void cancel();
  bool open_transaction() const {
    const auto s = PQtransactionStatus(conn_.get());
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
  }
  // True when the server has closed the session while no query was in
  // flight (a restart closes idle sessions, with a message saying why);
  // reads what is waiting on the socket without blocking.
  bool server_closed();
  // Marks the session lost when the server has closed it.
  void notice_closed();
  // Makes the connection ready to send `sql`: notices a closed session,
  // refuses statements of a transaction lost with its session, connects
  // again after a loss. False when `sql` is the ROLLBACK that ends a lost
  // transaction: the server has already rolled it back.
  bool ready(std::string_view sql);
  // A new session after a loss, or Unavailable (at once while the spacing
  // of attempts lasts).
  void reconnect();
  void mark_lost(bool in_transaction) {
    broken_ = true;
    transaction_lost_ = in_transaction;
    ++session_;
    active_ = nullptr;
  }
  [[noreturn]] void lost(std::string_view doing, const std::string& reason);

  std::string url_;
  PostgresOptions options_;
  std::string where_;
  ConnHandle conn_;
  std::function<bool()> check_;
  PgStatement* active_ = nullptr;  // the statement whose rows are being streamed
  std::int64_t changes_ = 0;
  bool canceled_ = false;  // the progress check cancelled the query in flight (drain() cancelling is not that)
  std::optional<std::chrono::steady_clock::time_point> cancel_sent_;  // for the query in flight
  std::uint64_t session_ = 0;
  bool broken_ = false;             // the session is lost: the next use connects again (or fails)
  bool transaction_lost_ = false;   // ... with a transaction open: statements fail until ROLLBACK
  bool in_transaction_at_send_ = false;  // whether the query in flight runs inside a transaction
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds retry_delay_{0};
};

class PgStatement final : public Statement {
 public:
  PgStatement(PgConnection& conn, std::string sql, int params)
      : conn_(conn), sql_(std::move(sql)), params_(static_cast<std::size_t>(params)) {}
  ~PgStatement() override {
    try {
      stop();
    } catch (...) {
      // A destructor must not throw; the connection reports its own state at its next use.
    }
  }

  Statement& bind(int index, const Value& value) override {
    if (index < 1 || static_cast<std::size_t>(index) > params_.size()) {
      throw DbError(fmt::format("postgresql: bind: parameter {} of {} in: {}", index, params_.size(), sql_));
    }
    if (std::holds_alternative<std::monostate>(value)) {
      params_[static_cast<std::size_t>(index - 1)].reset();
    } else {
      params_[static_cast<std::size_t>(index - 1)] = value_text(value);
    }
    return *this;
  }

  bool step() override {
    // Rows lost with their session stay lost: every later step says so,
    // rather than end the result as if it were complete.
    if (lost_) conn_.orphaned();
    if (done_) return false;
    if (!sent_) {
      const bool sent = conn_.send(this, sql_, params_, binary_);
      sent_ = true;
      if (!sent) {
        done_ = true;
        return false;
      }
      session_ = conn_.session();
      streaming_ = true;
    }
    row_.reset();
    if (!buffered_.empty()) {
      row_ = std::move(buffered_.front());
      buffered_.pop_front();
      return true;
    }
    if (!streaming_) {
      done_ = true;
      return false;
    }
    if (session_ != conn_.session()) {
      // The rows were coming from a session that is gone.
      streaming_ = false;
      done_ = true;
      lost_ = true;
      conn_.orphaned();
    }
    try {
      return read_row();
    } catch (const Unavailable&) {
      lost_ = true;
      throw;
    }
  }

  void reset() override {
    stop();
    sent_ = done_ = streaming_ = lost_ = false;
    row_.reset();
    buffered_.clear();
    for (auto& p : params_) p.reset();
  }

  int column_count() override { return shape() ? PQnfields(shape()) : 0; }
  std::string column_name(int index) override {
    if (!shape() || index < 0 || index >= PQnfields(shape())) throw DbError("postgresql: no such column");
    return PQfname(shape(), index);
  }
  void binary_results() override {
    if (sent_) throw DbError("postgresql: binary_results() after the statement was sent: " + sql_.substr(0, 200));
    binary_ = true;
  }

  bool is_null(int index) override { return PQgetisnull(current(index), 0, index) != 0; }
  std::int64_t get_int(int index) override {
    const PGresult* r = current(index);
    if (PQgetisnull(r, 0, index)) return 0;
    const char* v = PQgetvalue(r, 0, index);
    if (binary_) {
      switch (PQftype(r, index)) {
        case kBoolOid: return v[0] != 0 ? 1 : 0;
        case kInt2Oid: return static_cast<std::int16_t>(network_order(v, 2));
        case kInt4Oid: return static_cast<std::int32_t>(network_order(v, 4));
        case kInt8Oid: return static_cast<std::int64_t>(network_order(v, 8));
        case kFloat4Oid:
        case kFloat8Oid: return static_cast<std::int64_t>(get_double(index));
        default: unreadable(r, index, "an integer");
      }
    }
    const std::size_t n = static_cast<std::size_t>(PQgetlength(r, 0, index));
    if (n == 1 && (v[0] == 't' || v[0] == 'f')) return v[0] == 't' ? 1 : 0;  // boolean
    std::int64_t out = 0;
    const auto [end, ec] = std::from_chars(v, v + n, out);
    if (ec == std::errc() && end == v + n) return out;
    return static_cast<std::int64_t>(std::strtod(v, nullptr));  // a real read as an integer, as SQLite does
  }
  double get_double(int index) override {
    const PGresult* r = current(index);
    if (PQgetisnull(r, 0, index)) return 0.0;
    const char* v = PQgetvalue(r, 0, index);
    if (binary_) {
      switch (PQftype(r, index)) {
        case kFloat8Oid: return std::bit_cast<double>(network_order(v, 8));
        case kFloat4Oid: return std::bit_cast<float>(static_cast<std::uint32_t>(network_order(v, 4)));
        case kBoolOid:
        case kInt2Oid:
        case kInt4Oid:
        case kInt8Oid: return static_cast<double>(get_int(index));
        default: unreadable(r, index, "a real");
      }
    }
    return std::strtod(v, nullptr);  // also reads NaN and Infinity
  }
  std::string get_text(int index) override {
    const PGresult* r = current(index);
    if (binary_ && !PQgetisnull(r, 0, index)) {
      switch (PQftype(r, index)) {
        case kTextOid:
        case kVarcharOid:
        case kBpcharOid:
        case kNameOid:
        case kByteaOid: break;  // the bytes themselves
        case kBoolOid: return get_int(index) ? "t" : "f";
        case kInt2Oid:
        case kInt4Oid:
        case kInt8Oid: return std::to_string(get_int(index));
        case kFloat4Oid:
        case kFloat8Oid: return fmt::format("{}", get_double(index));
        default: unreadable(r, index, "text");
      }
    }
    return std::string(PQgetvalue(r, 0, index), static_cast<std::size_t>(PQgetlength(r, 0, index)));
  }
  Value get_value(int index) override {
    const PGresult* r = current(index);
    if (PQgetisnull(r, 0, index)) return {};
    switch (PQftype(r, index)) {  // type OIDs of the server's catalogue (pg_type)
      case kBoolOid:
      case kInt2Oid:
      case kInt4Oid:
      case kInt8Oid: return get_int(index);
      case kFloat4Oid:
      case kFloat8Oid:
      case kNumericOid: return get_double(index);
      default: return get_text(index);
    }
  }
  std::vector<unsigned char> get_blob(int index) override {
    if (binary_) {
      const std::string bytes = get_text(index);
      return {bytes.begin(), bytes.end()};
    }
    // bytea in text form: \x followed by hex digits.
    const std::string text = get_text(index);
    std::vector<unsigned char> out;
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x') {
      out.assign(text.begin(), text.end());
      return out;
    }
    out.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
      const int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
      if (hi < 0 || lo < 0) throw DbError("postgresql: a bytea value that is not hex");
      out.push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return out;
  }

  // Reads every row left into memory (another statement needs the connection).
  void buffer_rest() {
    while (streaming_) {
      Result r = conn_.next_result();
      if (!take(std::move(r), true)) break;
    }
  }

 private:
  // Reads the next row from the server; false at the end of the rows.
  bool read_row() {
    for (;;) {
      Result r = conn_.next_result();
      const auto status = r ? PQresultStatus(r.get()) : PGRES_COMMAND_OK;
      if (r && status == PGRES_SINGLE_TUPLE) {
        if (!shape_) shape_.reset(PQcopyResult(r.get(), PG_COPYRES_ATTRS));
        row_ = std::move(r);
        return true;
      }
      if (!take(std::move(r), false)) {
        done_ = true;
        return false;
      }
    }
  }

  // Handles a result that is not a row of the stream (or, when buffering,
  // any result): false when the query has ended. Throws on an error result.
  bool take(Result r, bool buffering) {
    if (!r) {
      streaming_ = false;
      conn_.finished(this);
      return false;
    }
    switch (PQresultStatus(r.get())) {
      case PGRES_SINGLE_TUPLE:
        if (!shape_) shape_.reset(PQcopyResult(r.get(), PG_COPYRES_ATTRS));
        if (buffering) buffered_.push_back(std::move(r));
        return true;
      case PGRES_TUPLES_OK:  // the end of the rows (zero-row result with the columns)
        if (!shape_) shape_ = std::move(r);
        return true;
      case PGRES_COMMAND_OK: {
        const char* n = PQcmdTuples(r.get());
        conn_.set_changes(n && *n ? std::strtoll(n, nullptr, 10) : 0);
        return true;
      }
      case PGRES_EMPTY_QUERY:
        return true;
      default: {
        streaming_ = false;
        done_ = true;
        Result error = std::move(r);
        conn_.drain();
        conn_.finished(this);
        conn_.fail(error.get(), sql_);
      }
    }
  }

  void stop() {
    if (streaming_) {
      streaming_ = false;
      if (session_ != conn_.session()) return;  // nothing left to read of a lost session
      conn_.drain();
      conn_.finished(this);
    }
  }

  // A column of a binary result whose type has no reading as `as`: the
  // statement asked for binary results it cannot read (a programming error).
  [[noreturn]] void unreadable(const PGresult* r, int index, std::string_view as) const {
    throw DbError(fmt::format("postgresql: column {} (type OID {}) of a binary result read as {}: {}", index,
                              PQftype(r, index), as, sql_.substr(0, 200)));
  }

  const PGresult* shape() const { return shape_ ? shape_.get() : row_.get(); }
  const PGresult* current(int index) const {
    if (!row_) throw DbError("postgresql: no current row");
    if (index < 0 || index >= PQnfields(row_.get())) throw DbError(fmt::format("postgresql: no column {}", index));
    return row_.get();
  }

  PgConnection& conn_;
  std::string sql_;
  std::vector<std::optional<std::string>> params_;
  bool sent_ = false, streaming_ = false, done_ = false;
  bool lost_ = false;    // the session carrying the rows was lost
  bool binary_ = false;  // binary_results()
  std::uint64_t session_ = 0;   // the connection's session the query was sent in
  Result row_;                  // the current row (a single-row result)
  Result shape_;                // columns of the result, kept after the last row
  std::deque<Result> buffered_;  // rows read ahead because another statement needed the connection
};

void PgConnection::notice_closed() {
  if (broken_) return;
  const bool in_transaction = open_transaction();
  if (server_closed()) mark_lost(in_transaction);
}

bool PgConnection::server_closed() {
  PGconn* c = conn_.get();
  if (PQstatus(c) != CONNECTION_OK) return true;
  if (active_ || PQisBusy(c)) return false;  // a query in flight: its results will tell
  // A closing server sends its reason and then closes the socket; these
  // may come in separate reads.
  for (int reads = 0; reads < 4; ++reads) {
    pollfd p{PQsocket(c), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (!PQconsumeInput(c)) return true;
    if (PQstatus(c) != CONNECTION_OK) return true;
  }
  return false;
}

bool PgConnection::ready(std::string_view sql) {
  notice_closed();
  if (transaction_lost_) {
    if (is_rollback(sql)) {
      transaction_lost_ = false;
      return false;
    }
    throw Unavailable(fmt::format("postgresql: the connection to {} was lost during a transaction, which the server "
                                  "has rolled back; statements fail until its ROLLBACK",
                                  where_),
                      std::string(kUnavailableReason));
  }
  if (broken_) {
    if (!options_.reconnect) {
      throw Unavailable(fmt::format("postgresql: the connection to {} is lost", where_), std::string(kUnavailableReason));
    }
    reconnect();
  }
  in_transaction_at_send_ = open_transaction();
  return true;
}

void PgConnection::reconnect() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_attempt_) {
    throw Unavailable(fmt::format("postgresql: {} did not answer; connecting again in {} ms", where_,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now).count()),
                      std::string(kUnavailableReason));
  }
  try {
    conn_ = open_session(url_, options_, where_);
  } catch (const Unavailable&) {
    retry_delay_ = std::clamp(retry_delay_ * 2, std::chrono::milliseconds(kFirstRetryDelay),
                              std::chrono::milliseconds(kLastRetryDelay));
    next_attempt_ = now + retry_delay_;
    throw;
  }
  retry_delay_ = std::chrono::milliseconds(0);
  next_attempt_ = {};
  broken_ = false;
  ++session_;
  active_ = nullptr;
}

void PgConnection::lost(std::string_view doing, const std::string& reason) {
  mark_lost(in_transaction_at_send_);
  throw Unavailable(fmt::format("postgresql: the connection to {} was lost{} ({}): {}", where_,
                                transaction_lost_ ? " during a transaction" : "", doing.substr(0, 200), reason),
                    std::string(kUnavailableReason));
}

bool PgConnection::send(PgStatement* by, const std::string& sql, const std::vector<std::optional<std::string>>& params,
                        bool binary_results) {
  if (active_ && active_ != by) active_->buffer_rest();
  if (!ready(sql)) return false;
  canceled_ = false;
  cancel_sent_.reset();
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!PQsendQueryParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                         nullptr, binary_results ? 1 : 0)) {
    fail(nullptr, sql);
  }
  // Rows one at a time; only possible right after the query is sent.
  PQsetSingleRowMode(conn_.get());
  active_ = by;
  return true;
}

Result PgConnection::next_result() {
  PGconn* c = conn_.get();
  while (PQisBusy(c)) {
    if (PQstatus(c) != CONNECTION_OK) fail(nullptr, "reading a result");
    pollfd p{PQsocket(c), POLLIN, 0};
    const int n = ::poll(&p, 1, kPollMilliseconds);
    if (n < 0 && errno != EINTR) throw DbError(fmt::format("postgresql: waiting for {}: {}", where_, std::strerror(errno)));
    if (n > 0 && !PQconsumeInput(c)) fail(nullptr, "reading a result");
    // A cancel request that reaches the server before it has begun the
    // query is ignored there: one is sent again while the query runs on.
    if (cancel_sent_) {
      if (std::chrono::steady_clock::now() - *cancel_sent_ >= kCancelRepeat) cancel();
    } else if (check_ && check_()) {
      canceled_ = true;
      cancel();
    }
  }
  Result result(PQgetResult(c));
  if (!result) cancel_sent_.reset();  // the query has ended
  return result;
}

void PgConnection::drain() {
  if (broken_ || PQstatus(conn_.get()) != CONNECTION_OK) return;  // nothing more will come
  // A query still sending rows is cancelled first rather than read to its
  // end, unless it runs inside a transaction: there the cancelled statement
  // would abort the caller's transaction, every later statement of it
  // failing ("current transaction is aborted"), so its rows are read and
  // dropped. (The progress check still cancels it while they are read: a
  // request that is stopped ends its transaction anyway.)
  if (PQisBusy(conn_.get()) && !in_transaction_at_send_) cancel();
  while (Result r = next_result()) {
  }
}

void PgConnection::cancel() {
  std::unique_ptr<PGcancel, CancelFreer> handle(PQgetCancel(conn_.get()));
  char error[256] = {};
  if (handle) PQcancel(handle.get(), error, sizeof error);
  cancel_sent_ = std::chrono::steady_clock::now();
}

void PgConnection::fail(const PGresult* result, std::string_view doing) {
  std::string reason = trim_message(result ? PQresultErrorMessage(result) : PQerrorMessage(conn_.get()));
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string_view sqlstate = state ? state : "";
  if (reason.starts_with("ERROR:  ")) reason.erase(0, 8);
  if (reason.starts_with("FATAL:  ")) reason.erase(0, 8);
  if (PQstatus(conn_.get()) != CONNECTION_OK || ends_session(sqlstate)) lost(doing, reason);
  const std::string message = fmt::format("postgresql: {}: {}", doing.substr(0, 200), reason);
  if (sqlstate == kUniqueViolation) throw ConstraintError(message, std::move(reason));
  if (sqlstate == kQueryCanceled && canceled_) throw Interrupted(message, "interrupted");
  if (sqlstate == kQueryCanceled) throw TimedOut(message, std::move(reason));  // statement_timeout
  throw DbError(message, std::move(reason));
}

void PgConnection::exec(std::string_view sql) {
  if (active_) active_->buffer_rest();
  const std::string text(sql);
  if (!ready(text)) return;
  canceled_ = false;
  cancel_sent_.reset();
  if (!PQsendQuery(conn_.get(), text.c_str())) fail(nullptr, text);
  Result error;
  while (Result r = next_result()) {
    const auto status = PQresultStatus(r.get());
    if (status == PGRES_COMMAND_OK) {
      const char* n = PQcmdTuples(r.get());
      changes_ = n && *n ? std::strtoll(n, nullptr, 10) : 0;
    } else if (status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY && !error) {
      error = std::move(r);
    }
  }
  if (error) fail(error.get(), text);
}

std::unique_ptr<Statement> PgConnection::prepare(std::string_view sql) {
  int n = 0;
  std::string text = numbered_placeholders(sql, n);
  return std::make_unique<PgStatement>(*this, std::move(text), n);
}

std::int64_t PgConnection::last_insert_id() {
  auto s = prepare("SELECT lastval()");
  if (!s->step()) throw DbError("postgresql: lastval() returned no row");
  return s->get_int(0);
}

}  // namespace pg_detail

std::string display_url(const std::string& url) {
  std::string where = url;
  if (const auto at = where.find('@'); at != std::string::npos) {
    if (const auto scheme = where.find("://"); scheme != std::string::npos && scheme < at) {
      where = where.substr(0, scheme + 3) + "...@" + where.substr(at + 1);
    }
  }
  return where;
}

std::unique_ptr<Connection> open_postgresql(const std::string& url, const PostgresOptions& options) {
  return std::make_unique<pg_detail::PgConnection>(url, options);
}

}  // namespace pixserve::db
