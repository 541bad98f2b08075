// Database access for the registry. One small interface with an SQLite
// implementation (the embedded default); the PostgreSQL backend for
// scale-out (postgresql.cpp) implements the same interface. SQL text uses '?' placeholders;
// a backend rewrites them to its own form.
//
// Besides plain statements the interface carries what the TAP engine needs
// from a query connection, in terms any backend can provide: a read-only
// connection, a progress check that can stop a running statement (time
// limit, UWS abort), whether a transaction is open, BLOB columns, and scalar
// SQL functions written in C++ (FunctionCall). The functions are the
// backend-neutral half of the ADQL geometry support: what they compute lives
// with the ADQL code (adql/sql_functions.cpp), how a call reaches them is the
// backend's business (SQLite: sqlite3_create_function). A backend that
// cannot run C++ inside its statements (PostgreSQL) provides functions of
// the same names and semantics on the server instead, and says so by
// throwing from create_function().
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "db/dialect.hpp"

namespace pixserve::db {

class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // `reason` is the backend's own message without the context in what():
  // callers that report an error on user input (a TAP query) show only it.
  DbError(const std::string& what, std::string reason) : std::runtime_error(what), reason_(std::move(reason)) {}
  std::string_view reason() const noexcept { return reason_.empty() ? std::string_view(what()) : reason_; }

 private:
  std::string reason_;
};

// Thrown when a UNIQUE or PRIMARY KEY constraint fails, so callers can tell a
// duplicate from other failures.
class ConstraintError : public DbError {
 public:
  using DbError::DbError;
};

// Thrown by Statement::step() when the connection's progress check stopped
// the statement.
class Interrupted : public DbError {
 public:
  using DbError::DbError;
};

// Thrown when the database stopped a statement that ran past the session's
// or transaction's statement_timeout (PostgreSQL): the request asked for
// more than its time allows, nothing is wrong with the database.
class TimedOut : public DbError {
 public:
  using DbError::DbError;
};

// Thrown when the database server cannot be reached, or the connection to it
// was lost (a restart, the network): nothing is wrong with the request, and
// the same request may succeed a moment later. reason() is
// kUnavailableReason; what() says where and why, for the log. A statement
// that fails this way may or may not have been executed by the server.
class Unavailable : public DbError {
 public:
  using DbError::DbError;
};
inline constexpr std::string_view kUnavailableReason = "database unavailable";

using Value = std::variant<std::monostate, std::int64_t, double, std::string>;

// How a value is stored (SQLite's storage classes; other backends map their
// types onto these).
enum class ValueType { null, integer, real, text, blob };

// A prepared statement. Bind parameters are 1-based as in SQL.
class Statement {
 public:
  virtual ~Statement() = default;
  virtual Statement& bind(int index, const Value& value) = 0;
  Statement& bind(int index, std::int64_t v) { return bind(index, Value{v}); }
  Statement& bind(int index, int v) { return bind(index, Value{static_cast<std::int64_t>(v)}); }
  Statement& bind(int index, double v) { return bind(index, Value{v}); }
  Statement& bind(int index, std::string_view v) { return bind(index, Value{std::string(v)}); }
  Statement& bind(int index, const char* v) { return bind(index, Value{std::string(v)}); }
  Statement& bind(int index, const std::string& v) { return bind(index, Value{v}); }
  Statement& bind_null(int index) { return bind(index, Value{}); }
  template <typename T>
  Statement& bind(int index, const std::optional<T>& v) {
    return v ? bind(index, *v) : bind_null(index);
  }

  // Asks, before the first step(), for the rows in the database's binary
  // form where it has one (PostgreSQL): numbers travel as bytes, not as
  // text the server writes and the client parses again (a third of the
  // server's time for a registry row of twenty doubles). Only for
  // statements whose columns are integers, reals, booleans or text.
  virtual void binary_results() {}

  // Advances to the next row; false when done. For statements without
  // results, one call executes them.
  virtual bool step() = 0;
  // Resets for re-execution with new bindings (bindings are cleared).
  virtual void reset() = 0;

  // Known once step() has returned a row (PostgreSQL learns a streamed
  // result's shape with it); SQLite knows it from the start.
  virtual int column_count() = 0;
  virtual std::string column_name(int index) = 0;  // 0-based
  virtual bool is_null(int index) = 0;
  virtual std::int64_t get_int(int index) = 0;
  virtual double get_double(int index) = 0;
  virtual std::string get_text(int index) = 0;
  virtual std::vector<unsigned char> get_blob(int index) = 0;
  // The value as the database holds it: NULL, an integer, a real or text
  // (what copying rows between databases needs).
  virtual Value get_value(int index) = 0;
  std::optional<std::int64_t> get_optional_int(int index);
  std::optional<double> get_optional_double(int index);
  std::optional<std::string> get_optional_text(int index);

  // Convenience: execute to completion (for INSERT/UPDATE/DDL).
  void run() {
    while (step()) {
    }
  }
};

// One call of a scalar SQL function: its arguments, valid during the call
// only (text views included).
class FunctionCall {
 public:
  virtual int size() const = 0;
  virtual ValueType type(int index) const = 0;  // 0-based
  bool is_null(int index) const { return type(index) == ValueType::null; }
  virtual std::int64_t get_int(int index) const = 0;
  virtual double get_double(int index) const = 0;
  virtual std::string_view get_text(int index) const = 0;

  // What `make()` derives from argument `index` (e.g. a parsed geometry),
  // made once and reused while that argument is the same constant for every
  // row, which is exactly the search shape of a spatial query (SQLite keeps
  // it as the argument's auxiliary data). Made again for arguments that
  // vary. One function must always derive the same type T from one argument.
  template <typename T, typename Make>
  const T& derived(int index, Make&& make) {
    if (const void* kept = find_derived(index)) return *static_cast<const T*>(kept);
    auto value = std::make_unique<T>(std::forward<Make>(make)());
    const T& ref = *value;
    keep_derived(index, Derived(value.release(), DerivedDeleter{[](void* p) { delete static_cast<T*>(p); }}));
    return ref;
  }

 protected:
  ~FunctionCall() = default;
  struct DerivedDeleter {
    void (*destroy)(void*) = nullptr;
    void operator()(void* p) const noexcept { destroy(p); }
  };
  using Derived = std::unique_ptr<void, DerivedDeleter>;
  virtual const void* find_derived(int index) const = 0;
  // Takes the value; it stays valid until the call returns.
  virtual void keep_derived(int index, Derived value) = 0;
};

// A scalar function's body: NULL is returned as std::monostate; an exception
// makes the statement fail with its what() as the error message.
using ScalarFunction = std::function<Value(FunctionCall&)>;

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  virtual void exec(std::string_view sql) = 0;  // one or more statements, no results
  virtual std::unique_ptr<Statement> prepare(std::string_view sql) = 0;
  // As prepare(), for statements run again and again (a service's lookups):
  // the connection may keep a few prepared statements and lend one of the
  // same SQL text, which goes back (reset, bindings cleared) when the
  // returned object is destroyed. The default prepares anew.
  virtual std::unique_ptr<Statement> prepare_cached(std::string_view sql) { return prepare(sql); }
  virtual std::int64_t last_insert_id() = 0;
  virtual std::int64_t changes() = 0;  // rows changed by the last statement
  // True between BEGIN and its COMMIT or ROLLBACK (also when the
  // connection was lost in between: the caller still ends the transaction).
  virtual bool in_transaction() = 0;
  // False once the connection is known to be lost, as far as can be told
  // without a round trip to the server: a statement met a broken
  // connection, or the server has closed it (as a restarting server closes
  // its sessions). A caller that keeps state in the session (TEMP tables)
  // discards such a connection. Always true for an embedded database.
  virtual bool connected() { return true; }

  // `check` is called now and then while a statement runs; when it returns
  // true the statement stops and step() throws Interrupted. An empty
  // function removes the check. The function must not use this connection.
  virtual void set_progress_check(std::function<bool()> check) = 0;

  // Makes `name(arg, ...)` callable in this connection's SQL; arity -1 takes
  // any number of arguments. A deterministic function gives the same result
  // for the same arguments, so the database may evaluate it once.
  virtual void create_function(std::string_view name, int arity, bool deterministic, ScalarFunction function) = 0;
};

struct SqliteOptions {
  bool create = false;     // create the file when it does not exist
  bool read_only = false;  // no writes, except to TEMP objects
  // The connection is never used by two threads at once (e.g. it lives in
  // a pool and is taken by one query at a time), so SQLite can skip locking
  // its own mutex on every call.
  bool one_thread_at_a_time = false;
  // How long a statement waits for another connection's write lock.
  std::chrono::milliseconds busy_timeout{30'000};
};

// Opens an SQLite database file. A read-write connection also switches the
// file to WAL (readers beside one writer) and turns foreign keys on.
std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, const SqliteOptions& options);
// Opens (and with create, creates) an SQLite database file for reading and
// writing.
std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, bool create);

struct PostgresOptions {
  bool read_only = false;  // every transaction read-only (default_transaction_read_only)
  // The server cancels any statement running longer (0: no limit).
  std::chrono::milliseconds statement_timeout{0};
  // A lost connection connects again when it is next used, in a new session
  // set up with these options (what else the old session held, TEMP
  // objects above all, is gone). Never in the middle of a transaction: its
  // statements fail with Unavailable until the caller's ROLLBACK (which then
  // succeeds), and never by sending a failed statement again. While the
  // server stays away, attempts are spaced out (up to 2 s apart) and uses in
  // between fail at once with Unavailable. false: the connection stays lost
  // (every use throws Unavailable), for a caller that keeps state in the
  // session and opens a new connection instead.
  bool reconnect = true;
};

// Connects to a PostgreSQL database given by a libpq URL or connection
// string (postgresql://user@host:port/db). Statements take '?' placeholders
// like SQLite's (rewritten to $n outside literals, quoted names and
// comments); their rows are streamed one at a time. One connection carries
// one query at a time: a statement started while another still has rows to
// give reads those rows into memory first. Unless the URL or the
// environment (PGCONNECT_TIMEOUT) says otherwise, connecting gives up after
// 5 s and TCP keepalives notice a silent network within about a minute.
// Throws Unavailable when the server cannot be reached.
std::unique_ptr<Connection> open_postgresql(const std::string& url, const PostgresOptions& options = {});

// True when `table` of the connection's main schema has a column `column`
// (a store made by an older version may lack one it adds now).
bool column_exists(Connection& connection, const std::string& table, const std::string& column);

// A PostgreSQL URL without its password, for messages and notes.
std::string display_url(const std::string& url);

// A transaction that rolls back unless committed: the RAII guard behind
// "a failed ingest leaves the repository exactly as before".
class Transaction {
 public:
  explicit Transaction(Connection& conn);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Connection& conn_;
  bool done_ = false;
};

// On PostgreSQL, a READ ONLY transaction whose statements the server stops
// after `limit` (SET LOCAL statement_timeout: Statement::step() then throws
// TimedOut), rolled back at its end (it wrote nothing): a search that one
// request sends cannot hold a session for long. Nothing on SQLite, whose
// statements run in the server's own process (its progress check stops
// them). A limit of zero or less sets no limit.
class BoundedRead {
 public:
  BoundedRead(Connection& conn, std::chrono::milliseconds limit);
  BoundedRead(const BoundedRead&) = delete;
  BoundedRead& operator=(const BoundedRead&) = delete;
  ~BoundedRead();

 private:
  Connection& conn_;
  bool open_ = false;
};

}  // namespace pixserve::db
