// SQLite backend of the registry database: the only code that calls the
// SQLite C API. Besides plain statements it runs the TAP engine's query
// connections (read-only, with a progress check and C++ scalar functions).
#include <sqlite3.h>

#include <exception>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "db/database.hpp"

namespace pixserve::db {
namespace {

struct SqliteCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};

[[noreturn]] void fail(sqlite3* db, int rc, std::string_view doing) {
  std::string reason = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string message = fmt::format("sqlite: {}: {}", doing, reason);
  const int primary = rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) throw ConstraintError(message, std::move(reason));
  if (primary == SQLITE_INTERRUPT) throw Interrupted(message, std::move(reason));
  throw DbError(message, std::move(reason));
}

ValueType value_type(int sqlite_type) {
  switch (sqlite_type) {
    case SQLITE_INTEGER: return ValueType::integer;
    case SQLITE_FLOAT: return ValueType::real;
    case SQLITE_TEXT: return ValueType::text;
    case SQLITE_BLOB: return ValueType::blob;
    default: return ValueType::null;
  }
}

// The arguments of one call of a C++ function. Derived values are handed to
// SQLite only when the call ends: SQLite may free auxiliary data at once
// (when the argument is not constant), and the function still uses it.
class SqliteFunctionCall final : public FunctionCall {
 public:
  SqliteFunctionCall(sqlite3_context* ctx, int argc, sqlite3_value** argv) : ctx_(ctx), argc_(argc), argv_(argv) {}
  SqliteFunctionCall(const SqliteFunctionCall&) = delete;
  SqliteFunctionCall& operator=(const SqliteFunctionCall&) = delete;
  ~SqliteFunctionCall() {
    for (auto& [index, value] : derived_) {
      const auto destroy = value.get_deleter().destroy;
      sqlite3_set_auxdata(ctx_, index, value.release(), destroy);
    }
  }

  int size() const override { return argc_; }
  ValueType type(int i) const override { return value_type(sqlite3_value_type(argv_[i])); }
  std::int64_t get_int(int i) const override { return sqlite3_value_int64(argv_[i]); }
  double get_double(int i) const override { return sqlite3_value_double(argv_[i]); }
  std::string_view get_text(int i) const override {
    const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(argv_[i]));
    if (text == nullptr) return {};
    return {text, static_cast<std::size_t>(sqlite3_value_bytes(argv_[i]))};
  }

 protected:
  const void* find_derived(int i) const override { return sqlite3_get_auxdata(ctx_, i); }
  void keep_derived(int i, Derived value) override { derived_.emplace_back(i, std::move(value)); }

 private:
  sqlite3_context* ctx_;
  int argc_;
  sqlite3_value** argv_;
  std::vector<std::pair<int, Derived>> derived_;
};

// The C entry point of every C++ function; exceptions must not cross
// SQLite's C frames, so they become SQL errors here.
void call_function(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  const auto& function = *static_cast<const ScalarFunction*>(sqlite3_user_data(ctx));
  try {
    Value result;
    {
      SqliteFunctionCall call(ctx, argc, argv);
      result = function(call);
    }
    if (const auto* i = std::get_if<std::int64_t>(&result)) {
      sqlite3_result_int64(ctx, *i);
    } else if (const auto* d = std::get_if<double>(&result)) {
      sqlite3_result_double(ctx, *d);
    } else if (const auto* s = std::get_if<std::string>(&result)) {
      sqlite3_result_text64(ctx, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    } else {
      sqlite3_result_null(ctx);
    }
  } catch (const std::exception& e) {
    sqlite3_result_error(ctx, e.what(), -1);
  } catch (...) {
    sqlite3_result_error(ctx, "unknown error in an SQL function", -1);
  }
}

class SqliteStatement final : public Statement {
 public:
  SqliteStatement(sqlite3* db, std::string_view sql) : db_(db) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) fail(db, rc, fmt::format("preparing '{}'", sql.substr(0, 200)));
  }

  Statement& bind(int index, const Value& value) override {
    if (done_) reset();
    int rc = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(value)) {
      rc = sqlite3_bind_null(stmt_.get(), index);
    } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt_.get(), index, *i);
    } else if (const auto* d = std::get_if<double>(&value)) {
      rc = sqlite3_bind_double(stmt_.get(), index, *d);
    } else {
      const auto& s = std::get<std::string>(value);
      rc = sqlite3_bind_text64(stmt_.get(), index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK) fail(db_, rc, "binding a parameter");
    return *this;
  }

  bool step() override {
    const int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    done_ = true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, rc, "executing a statement");
  }

  void reset() override {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
    done_ = false;
  }

  int column_count() override { return sqlite3_column_count(stmt_.get()); }
  std::string column_name(int index) override {
    const char* n = sqlite3_column_name(stmt_.get(), index);
    return n ? n : "";
  }
  bool is_null(int index) override { return sqlite3_column_type(stmt_.get(), index) == SQLITE_NULL; }
  std::int64_t get_int(int index) override { return sqlite3_column_int64(stmt_.get(), index); }
  double get_double(int index) override { return sqlite3_column_double(stmt_.get(), index); }
  std::string get_text(int index) override {
    const auto* text = sqlite3_column_text(stmt_.get(), index);
    if (text == nullptr) return {};
    return {reinterpret_cast<const char*>(text), static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), index))};
  }
  Value get_value(int index) override {
    switch (sqlite3_column_type(stmt_.get(), index)) {
      case SQLITE_NULL: return {};
      case SQLITE_INTEGER: return get_int(index);
      case SQLITE_FLOAT: return get_double(index);
      default: return get_text(index);
    }
  }
  std::vector<unsigned char> get_blob(int index) override {
    const auto* data = static_cast<const unsigned char*>(sqlite3_column_blob(stmt_.get(), index));
    if (data == nullptr) return {};
    return {data, data + sqlite3_column_bytes(stmt_.get(), index)};
  }

 private:
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  bool done_ = false;
};

// Prepared statements a connection keeps for prepare_cached, by SQL text.
class StatementPool {
 public:
  std::unique_ptr<SqliteStatement> take(const std::string& sql) {
    std::lock_guard lock(mutex_);
    const auto it = kept_.find(sql);
    if (it == kept_.end()) return nullptr;
    auto statement = std::move(it->second);
    kept_.erase(it);
    return statement;
  }
  void give_back(std::string sql, std::unique_ptr<SqliteStatement> statement) {
    statement->reset();
    std::lock_guard lock(mutex_);
    if (kept_.size() < kMaxKept) kept_.emplace(std::move(sql), std::move(statement));
  }

 private:
  static constexpr std::size_t kMaxKept = 32;
  std::mutex mutex_;
  std::unordered_multimap<std::string, std::unique_ptr<SqliteStatement>> kept_;
};

// A statement lent from the pool; it goes back when this is destroyed.
class LentStatement final : public Statement {
 public:
  LentStatement(StatementPool& pool, std::string sql, std::unique_ptr<SqliteStatement> statement)
      : pool_(pool), sql_(std::move(sql)), statement_(std::move(statement)) {}
  LentStatement(const LentStatement&) = delete;
  LentStatement& operator=(const LentStatement&) = delete;
  ~LentStatement() override { pool_.give_back(std::move(sql_), std::move(statement_)); }

  Statement& bind(int index, const Value& value) override {
    statement_->bind(index, value);
    return *this;
  }
  bool step() override { return statement_->step(); }
  void reset() override { statement_->reset(); }
  int column_count() override { return statement_->column_count(); }
  std::string column_name(int index) override { return statement_->column_name(index); }
  bool is_null(int index) override { return statement_->is_null(index); }
  std::int64_t get_int(int index) override { return statement_->get_int(index); }
  double get_double(int index) override { return statement_->get_double(index); }
  std::string get_text(int index) override { return statement_->get_text(index); }
  Value get_value(int index) override { return statement_->get_value(index); }
  std::vector<unsigned char> get_blob(int index) override { return statement_->get_blob(index); }

 private:
  StatementPool& pool_;
  std::string sql_;
  std::unique_ptr<SqliteStatement> statement_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(const std::filesystem::path& file, const SqliteOptions& options) {
    sqlite3* raw = nullptr;
    int flags = options.read_only ? SQLITE_OPEN_READONLY
                                  : SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0);
    flags |= options.one_thread_at_a_time ? SQLITE_OPEN_NOMUTEX : SQLITE_OPEN_FULLMUTEX;
    const int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) fail(db_.get(), rc, fmt::format("opening {}", file.string()));
    sqlite3_extended_result_codes(db_.get(), 1);
    // Many readers (server replicas, worker threads) and one writer at a time:
    // WAL lets readers proceed during an ingest; the busy timeout makes a
    // second writer wait instead of failing at once.
    sqlite3_busy_timeout(db_.get(), static_cast<int>(options.busy_timeout.count()));
    if (!options.read_only) exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
    // Pages are read through a memory map instead of a pread and a copy each
    // (a 0.1-degree cone over a million rows reads thousands of scattered
    // pages), and a connection keeps 16 MB of pages instead of 2 MB. The map
    // is the operating system's page cache, not memory of this process.
    // TEMP tables (the candidate keys of a spatial query) in memory, not in
    // a temporary file written and truncated at every statement.
    exec("PRAGMA mmap_size = 4294967296; PRAGMA cache_size = -16384; PRAGMA temp_store = MEMORY;");
  }

  Dialect dialect() const override { return Dialect::sqlite; }

  void exec(std::string_view sql) override {
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
    const std::unique_ptr<char, decltype(&sqlite3_free)> guard(error, &sqlite3_free);
    if (rc != SQLITE_OK) {
      std::string reason = error ? error : sqlite3_errstr(rc);
      const std::string message = "sqlite: " + reason;
      if ((rc & 0xff) == SQLITE_CONSTRAINT) throw ConstraintError(message, std::move(reason));
      if ((rc & 0xff) == SQLITE_INTERRUPT) throw Interrupted(message, std::move(reason));
      throw DbError(message, std::move(reason));
    }
  }

  std::unique_ptr<Statement> prepare(std::string_view sql) override {
    return std::make_unique<SqliteStatement>(db_.get(), sql);
  }
  std::unique_ptr<Statement> prepare_cached(std::string_view sql) override {
    std::string text(sql);
    auto statement = pool_.take(text);
    if (!statement) statement = std::make_unique<SqliteStatement>(db_.get(), sql);
    return std::make_unique<LentStatement>(pool_, std::move(text), std::move(statement));
  }
  std::int64_t last_insert_id() override { return sqlite3_last_insert_rowid(db_.get()); }
  std::int64_t changes() override { return sqlite3_changes64(db_.get()); }
  bool in_transaction() override { return sqlite3_get_autocommit(db_.get()) == 0; }

  void set_progress_check(std::function<bool()> check) override {
    progress_check_ = std::move(check);
    if (!progress_check_) {
      sqlite3_progress_handler(db_.get(), 0, nullptr, nullptr);
      return;
    }
    // Every 2000 virtual-machine instructions: often enough to stop within
    // milliseconds, rarely enough to cost nothing measurable.
    sqlite3_progress_handler(
        db_.get(), 2000,
        [](void* self) -> int {
          const auto& check = static_cast<SqliteConnection*>(self)->progress_check_;
          try {
            return check() ? 1 : 0;
          } catch (...) {
            return 1;  // an exception must not cross SQLite; stopping is the safe answer
          }
        },
        this);
  }

  void create_function(std::string_view name, int arity, bool deterministic, ScalarFunction function) override {
    const int flags = SQLITE_UTF8 | SQLITE_INNOCUOUS | (deterministic ? SQLITE_DETERMINISTIC : 0);
    auto owned = std::make_unique<ScalarFunction>(std::move(function));
    // SQLite owns the function from here on, and destroys it with the
    // connection, on re-registration, or when the registration fails.
    const int rc = sqlite3_create_function_v2(db_.get(), std::string(name).c_str(), arity, flags, owned.release(),
                                              &call_function, nullptr, nullptr,
                                              [](void* p) { delete static_cast<ScalarFunction*>(p); });
    if (rc != SQLITE_OK) fail(db_.get(), rc, fmt::format("registering the SQL function {}", name));
  }

 private:
  // Declared first so that it is destroyed last: the connection (closed in
  // db_'s deleter) must not outlive the check it may call.
  std::function<bool()> progress_check_;
  std::unique_ptr<sqlite3, SqliteCloser> db_;
  // Declared after db_ so that its statements are finalized before the
  // connection closes.
  StatementPool pool_;
};

}  // namespace

std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, const SqliteOptions& options) {
  return std::make_unique<SqliteConnection>(file, options);
}

std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, bool create) {
  return open_sqlite(file, SqliteOptions{.create = create});
}

}  // namespace pixserve::db
