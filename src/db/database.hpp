// Database access for the registry. One small interface with an SQLite
// implementation (the embedded default); the PostgreSQL backend for
// scale-out implements the same interface. SQL text uses '?' placeholders;
// a backend rewrites them to its own form.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pixserve::db {

class DbError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown when a UNIQUE or PRIMARY KEY constraint fails, so callers can tell a
// duplicate from other failures.
class ConstraintError : public DbError {
 public:
  using DbError::DbError;
};

using Value = std::variant<std::monostate, std::int64_t, double, std::string>;

enum class Dialect { sqlite, postgresql };

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

  // Advances to the next row; false when done. For statements without
  // results, one call executes them.
  virtual bool step() = 0;
  // Resets for re-execution with new bindings (bindings are cleared).
  virtual void reset() = 0;

  virtual int column_count() = 0;
  virtual std::string column_name(int index) = 0;  // 0-based
  virtual bool is_null(int index) = 0;
  virtual std::int64_t get_int(int index) = 0;
  virtual double get_double(int index) = 0;
  virtual std::string get_text(int index) = 0;
  std::optional<std::int64_t> get_optional_int(int index);
  std::optional<double> get_optional_double(int index);
  std::optional<std::string> get_optional_text(int index);

  // Convenience: execute to completion (for INSERT/UPDATE/DDL).
  void run() {
    while (step()) {
    }
  }
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  virtual void exec(std::string_view sql) = 0;  // one or more statements, no results
  virtual std::unique_ptr<Statement> prepare(std::string_view sql) = 0;
  virtual std::int64_t last_insert_id() = 0;
  virtual std::int64_t changes() = 0;  // rows changed by the last statement
};

// Opens (and with create, creates) an SQLite database file.
std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, bool create);

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

}  // namespace pixserve::db
