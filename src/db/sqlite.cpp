// SQLite backend of the registry database.
#include <sqlite3.h>

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
  const std::string message = fmt::format("sqlite: {}: {}", doing, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  const int primary = rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) throw ConstraintError(message);
  throw DbError(message);
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

 private:
  sqlite3* db_;
  std::unique_ptr<sqlite3_stmt, StmtFinalizer> stmt_;
  bool done_ = false;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(const std::filesystem::path& file, bool create) {
    sqlite3* raw = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    const int rc = sqlite3_open_v2(file.c_str(), &raw, flags, nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) fail(db_.get(), rc, fmt::format("opening {}", file.string()));
    sqlite3_extended_result_codes(db_.get(), 1);
    // Many readers (server replicas, worker threads) and one writer at a time:
    // WAL lets readers proceed during an ingest; the busy timeout makes a
    // second writer wait instead of failing at once.
    sqlite3_busy_timeout(db_.get(), 30000);
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  }

  Dialect dialect() const override { return Dialect::sqlite; }

  void exec(std::string_view sql) override {
    const std::string text(sql);
    char* error = nullptr;
    const int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &error);
    const std::unique_ptr<char, decltype(&sqlite3_free)> guard(error, &sqlite3_free);
    if (rc != SQLITE_OK) {
      const std::string message = fmt::format("sqlite: {}", error ? error : sqlite3_errstr(rc));
      if ((rc & 0xff) == SQLITE_CONSTRAINT) throw ConstraintError(message);
      throw DbError(message);
    }
  }

  std::unique_ptr<Statement> prepare(std::string_view sql) override {
    return std::make_unique<SqliteStatement>(db_.get(), sql);
  }
  std::int64_t last_insert_id() override { return sqlite3_last_insert_rowid(db_.get()); }
  std::int64_t changes() override { return sqlite3_changes64(db_.get()); }

 private:
  std::unique_ptr<sqlite3, SqliteCloser> db_;
};

}  // namespace

std::unique_ptr<Connection> open_sqlite(const std::filesystem::path& file, bool create) {
  return std::make_unique<SqliteConnection>(file, create);
}

}  // namespace pixserve::db
