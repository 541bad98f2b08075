#include "uws/store.hpp"

#include <algorithm>
#include <system_error>

#include <fmt/format.h>

#include "db/dialect.hpp"
#include "http/headers.hpp"

namespace pixserve::uws {

namespace fs = std::filesystem;

namespace {

// Portable SQL (SQLite and PostgreSQL): times are integer milliseconds since
// the Unix epoch (UTC), so that filters and sorting are plain integer
// comparisons; booleans are integers.
constexpr const char* kSchema = R"SQL(
CREATE TABLE IF NOT EXISTS uws_job (
  job_id             TEXT PRIMARY KEY,
  kind               TEXT NOT NULL,
  owner              TEXT NOT NULL,
  run_id             TEXT NOT NULL DEFAULT '',
  phase              TEXT NOT NULL,
  creation_time      BIGINT NOT NULL,
  start_time         BIGINT,
  end_time           BIGINT,
  quote              BIGINT,
  execution_duration BIGINT NOT NULL,
  destruction_time   BIGINT NOT NULL,
  error_type         TEXT,
  error_message      TEXT,
  error_detail       TEXT,
  progress           DOUBLE PRECISION,
  progress_message   TEXT,
  owner_context      TEXT NOT NULL DEFAULT '',
  queued_time        BIGINT,
  lease_owner        TEXT,
  lease_expiry       BIGINT,
  attempts           INTEGER NOT NULL DEFAULT 0,
  base_url           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS uws_job_owner ON uws_job (kind, owner, creation_time);
CREATE INDEX IF NOT EXISTS uws_job_phase ON uws_job (phase);
CREATE INDEX IF NOT EXISTS uws_job_destruction ON uws_job (destruction_time);
CREATE TABLE IF NOT EXISTS uws_parameter (
  job_id       TEXT NOT NULL REFERENCES uws_job (job_id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  name         TEXT NOT NULL,
  value        TEXT NOT NULL,
  by_reference INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, seq)
);
CREATE TABLE IF NOT EXISTS uws_result (
  job_id    TEXT NOT NULL REFERENCES uws_job (job_id) ON DELETE CASCADE,
  result_id TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  file_name TEXT,
  url       TEXT,
  mime_type TEXT NOT NULL,
  size      BIGINT,
  PRIMARY KEY (job_id, result_id)
);
)SQL";

constexpr const char* kJobColumns =
    "job_id, kind, owner, run_id, phase, creation_time, start_time, end_time, quote, execution_duration, "
    "destruction_time, error_type, error_message, error_detail, progress, progress_message, owner_context, attempts, base_url";

// Columns added since the first stores were made, with what older rows get.
struct AddedColumn {
  const char* name;
  const char* definition;
};
constexpr AddedColumn kAddedColumns[] = {
    // Jobs of older stores run as their owner name alone, without groups.
    {"owner_context", "TEXT NOT NULL DEFAULT ''"},
    {"queued_time", "BIGINT"},
    {"lease_owner", "TEXT"},
    {"lease_expiry", "BIGINT"},
    {"attempts", "INTEGER NOT NULL DEFAULT 0"},
    // Jobs of older stores write links relative to the server's root.
    {"base_url", "TEXT NOT NULL DEFAULT ''"},
};

// Leases are reaped and renewed on the database's clock.
std::string lease_expiry_sql(db::Dialect dialect) { return fmt::format("({} + ?)", db::epoch_ms_now_sql(dialect)); }
std::string lease_expired_sql(db::Dialect dialect) {
  return fmt::format("(lease_expiry IS NULL OR lease_expiry < {})", db::epoch_ms_now_sql(dialect));
}

std::int64_t ms(Time t) { return t.time_since_epoch().count(); }
Time from_ms(std::int64_t v) { return Time{std::chrono::milliseconds{v}}; }
std::optional<Time> optional_time(db::Statement& s, int column) {
  if (s.is_null(column)) return std::nullopt;
  return from_ms(s.get_int(column));
}

std::string phase_list(std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

bool absolute_http_url(std::string_view url) { return url.starts_with("http://") || url.starts_with("https://"); }

}  // namespace

JobStore::JobStore(std::unique_ptr<db::Connection> connection, StoreOptions options)
    : options_(std::move(options)), connection_(std::move(connection)) {
  if (!connection_) throw std::invalid_argument("uws::JobStore: no database connection");
  if (options_.jobs_dir.empty()) throw std::invalid_argument("uws::JobStore: no jobs directory");
  {
    // One transaction, so that servers starting together on one PostgreSQL
    // database do not both add a column.
    db::Transaction tx(*connection_);
    if (connection_->dialect() == db::Dialect::postgresql)
      connection_->exec("SELECT pg_advisory_xact_lock(hashtext('pixserve uws schema'))");
    connection_->exec(kSchema);
    for (const auto& column : kAddedColumns) {
      if (!db::column_exists(*connection_, "uws_job", column.name))
        connection_->exec(fmt::format("ALTER TABLE uws_job ADD COLUMN {} {}", column.name, column.definition));
    }
    // Jobs queued by a server of before the shared queue keep their turn.
    connection_->exec("UPDATE uws_job SET queued_time = creation_time WHERE queued_time IS NULL AND phase = 'QUEUED'");
    connection_->exec("CREATE INDEX IF NOT EXISTS uws_job_queue ON uws_job (phase, queued_time)");
    tx.commit();
  }
  fs::create_directories(options_.jobs_dir);
}

std::unique_ptr<JobStore> JobStore::open(const fs::path& db_file, StoreOptions options) {
  return std::make_unique<JobStore>(db::open_sqlite(db_file, true), std::move(options));
}

void JobStore::notify_change() const {
  {
    std::lock_guard lock(change_mutex_);
    ++generation_;
  }
  change_cv_.notify_all();
}

fs::path JobStore::job_directory(std::string_view id) const {
  if (!valid_job_id(id)) throw std::invalid_argument("invalid job id");
  return options_.jobs_dir / std::string(id);
}

std::optional<fs::path> JobStore::result_file(const Job& job, const Result& result) const {
  // Re-checked here, not only when stored: the database is not the place to
  // trust for what a path may contain.
  if (result.file_name.empty() || !valid_file_name(result.file_name) || !valid_job_id(job.id)) return std::nullopt;
  return job_directory(job.id) / result.file_name;
}

Job JobStore::create(const NewJob& spec) {
  if (spec.kind.empty()) throw std::invalid_argument("uws::JobStore::create: no job kind");
  std::int64_t duration = spec.execution_duration.value_or(options_.default_execution_duration.count());
  if (duration < 0) throw InvalidRequest("EXECUTIONDURATION must not be negative");
  const std::int64_t max_duration = options_.max_execution_duration.count();
  if (max_duration > 0 && (duration == 0 || duration > max_duration)) duration = max_duration;

  Job job;
  job.id = new_job_id();
  job.kind = spec.kind;
  job.owner = spec.owner.empty() ? std::string(anonymous_owner) : spec.owner;
  job.run_id = spec.run_id;
  job.phase = Phase::pending;
  job.execution_duration = duration;
  job.parameters = spec.parameters;
  job.owner_context = spec.owner_context;
  job.base_url = spec.base_url;

  std::lock_guard lock(db_mutex_);
  // Strictly increasing creation times within this store, so that LAST and
  // AFTER order a burst of jobs created in one millisecond as they came.
  job.creation_time = std::max(now(), last_creation_ + std::chrono::milliseconds{1});
  last_creation_ = job.creation_time;
  const Time latest = job.creation_time + options_.max_retention;
  job.destruction = std::min(spec.destruction.value_or(job.creation_time + options_.default_retention), latest);

  db::Transaction tx(*connection_);
  auto insert = connection_->prepare(
      "INSERT INTO uws_job (job_id, kind, owner, run_id, phase, creation_time, execution_duration, "
      "destruction_time, owner_context, base_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, job.id)
      .bind(2, job.kind)
      .bind(3, job.owner)
      .bind(4, job.run_id)
      .bind(5, to_string(job.phase))
      .bind(6, ms(job.creation_time))
      .bind(7, job.execution_duration)
      .bind(8, ms(job.destruction))
      .bind(9, job.owner_context)
      .bind(10, job.base_url)
      .run();
  auto param = connection_->prepare(
      "INSERT INTO uws_parameter (job_id, seq, name, value, by_reference) VALUES (?, ?, ?, ?, ?)");
  int seq = 0;
  for (const auto& p : job.parameters) {
    param->bind(1, job.id).bind(2, ++seq).bind(3, p.name).bind(4, p.value).bind(5, p.by_reference ? 1 : 0).run();
    param->reset();
  }
  tx.commit();
  return job;
}

std::optional<Job> JobStore::load_locked(std::string_view id) const {
  if (!valid_job_id(id)) return std::nullopt;
  auto q = connection_->prepare(fmt::format("SELECT {} FROM uws_job WHERE job_id = ?", kJobColumns));
  q->bind(1, id);
  if (!q->step()) return std::nullopt;
  Job job;
  job.id = q->get_text(0);
  job.kind = q->get_text(1);
  job.owner = q->get_text(2);
  job.run_id = q->get_text(3);
  job.phase = parse_phase(q->get_text(4)).value_or(Phase::unknown);
  job.creation_time = from_ms(q->get_int(5));
  job.start_time = optional_time(*q, 6);
  job.end_time = optional_time(*q, 7);
  job.quote = optional_time(*q, 8);
  job.execution_duration = q->get_int(9);
  job.destruction = from_ms(q->get_int(10));
  if (!q->is_null(11)) {
    job.error = ErrorSummary{q->get_text(11) == "transient" ? ErrorType::transient : ErrorType::fatal,
                             q->get_text(12), q->get_text(13)};
  }
  job.progress = q->get_optional_double(14);
  job.progress_message = q->get_text(15);
  job.owner_context = q->get_text(16);
  job.attempts = static_cast<int>(q->get_int(17));
  job.base_url = q->get_text(18);

  auto params = connection_->prepare(
      "SELECT name, value, by_reference FROM uws_parameter WHERE job_id = ? ORDER BY seq");
  params->bind(1, id);
  while (params->step()) job.parameters.push_back({params->get_text(0), params->get_text(1), params->get_int(2) != 0});

  auto results = connection_->prepare(
      "SELECT result_id, file_name, url, mime_type, size FROM uws_result WHERE job_id = ? ORDER BY seq");
  results->bind(1, id);
  while (results->step()) {
    Result r;
    r.id = results->get_text(0);
    r.file_name = results->get_text(1);
    r.url = results->get_text(2);
    r.mime_type = results->get_text(3);
    if (auto size = results->get_optional_int(4)) r.size = static_cast<std::uint64_t>(*size);
    job.results.push_back(std::move(r));
  }
  return job;
}

std::optional<Job> JobStore::load(std::string_view id) const {
  std::lock_guard lock(db_mutex_);
  return load_locked(id);
}

std::optional<Job> JobStore::find(std::string_view id, std::string_view owner, std::string_view kind) const {
  auto job = load(id);
  if (!job || job->owner != owner || job->kind != kind) return std::nullopt;
  return job;
}

std::optional<Phase> JobStore::phase_of(std::string_view id) const {
  if (!valid_job_id(id)) return std::nullopt;
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("SELECT phase FROM uws_job WHERE job_id = ?");
  q->bind(1, id);
  if (!q->step()) return std::nullopt;
  return parse_phase(q->get_text(0)).value_or(Phase::unknown);
}

std::vector<JobRef> JobStore::list(std::string_view kind, std::string_view owner, const JobFilter& filter) const {
  if (filter.last && *filter.last <= 0) return {};
  std::string sql = "SELECT job_id, run_id, owner, phase, creation_time FROM uws_job WHERE kind = ? AND owner = ?";
  // UWS 1.1: ARCHIVED jobs are only listed when asked for by PHASE.
  if (filter.phases.empty())
    sql += " AND phase <> ?";
  else
    sql += " AND phase IN (" + phase_list(filter.phases.size()) + ")";
  if (filter.after) sql += " AND creation_time > ?";
  sql += " ORDER BY creation_time DESC, job_id DESC";
  if (filter.last) sql += " LIMIT ?";

  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare(sql);
  int i = 0;
  q->bind(++i, kind);
  q->bind(++i, owner);
  if (filter.phases.empty()) {
    q->bind(++i, to_string(Phase::archived));
  } else {
    for (Phase p : filter.phases) q->bind(++i, to_string(p));
  }
  if (filter.after) q->bind(++i, ms(*filter.after));
  if (filter.last) q->bind(++i, *filter.last);
  std::vector<JobRef> out;
  while (q->step()) {
    out.push_back({q->get_text(0), q->get_text(1), q->get_text(2), parse_phase(q->get_text(3)).value_or(Phase::unknown),
                   from_ms(q->get_int(4))});
  }
  return out;
}

bool JobStore::transition(std::string_view id, std::initializer_list<Phase> from, Phase to,
                          const std::optional<ErrorSummary>& error) {
  if (!valid_job_id(id) || from.size() == 0) return false;
  std::string sql = "UPDATE uws_job SET phase = ?";
  if (to == Phase::queued) sql += ", queued_time = ?";
  if (to == Phase::executing) sql += ", start_time = ?";
  if (is_final(to)) sql += ", end_time = ?";
  if (error) sql += ", error_type = ?, error_message = ?, error_detail = ?";
  sql += " WHERE job_id = ? AND phase IN (" + phase_list(from.size()) + ")";
  bool changed = false;
  {
    std::lock_guard lock(db_mutex_);
    auto q = connection_->prepare(sql);
    int i = 0;
    const Time t = now();
    q->bind(++i, to_string(to));
    if (to == Phase::queued) q->bind(++i, ms(t));
    if (to == Phase::executing) q->bind(++i, ms(t));
    if (is_final(to)) q->bind(++i, ms(t));
    if (error) {
      q->bind(++i, to_string(error->type));
      q->bind(++i, error->message);
      q->bind(++i, error->detail);
    }
    q->bind(++i, id);
    for (Phase p : from) q->bind(++i, to_string(p));
    q->run();
    changed = connection_->changes() == 1;
  }
  if (changed) notify_change();
  return changed;
}

std::optional<Job> JobStore::wait(std::string_view id, std::string_view owner, std::string_view kind,
                                  std::chrono::milliseconds timeout, std::optional<Phase> only_in) const {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + timeout;
  std::optional<Phase> initial;
  for (;;) {
    std::uint64_t seen;
    {
      std::lock_guard lock(change_mutex_);
      seen = generation_;
    }
    auto job = find(id, owner, kind);
    if (!job) return std::nullopt;
    if (!initial) initial = job->phase;
    const bool block = job->phase == *initial && is_active(job->phase) && (!only_in || *only_in == job->phase);
    const auto t = clock::now();
    if (!block || t >= deadline) return job;
    // Changes made by this process wake us at once; re-reading at least once
    // a second also catches changes made by another process on the same
    // database.
    std::unique_lock lock(change_mutex_);
    change_cv_.wait_until(lock, std::min(deadline, t + std::chrono::seconds{1}),
                          [&] { return generation_ != seen; });
  }
}

std::int64_t JobStore::set_execution_duration(std::string_view id, std::int64_t seconds) {
  if (seconds < 0) throw InvalidRequest("EXECUTIONDURATION must not be negative");
  const std::int64_t max_duration = options_.max_execution_duration.count();
  if (max_duration > 0 && (seconds == 0 || seconds > max_duration)) seconds = max_duration;
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare(
      "UPDATE uws_job SET execution_duration = ? WHERE job_id = ? AND phase IN (?, ?, ?)");
  q->bind(1, seconds)
      .bind(2, id)
      .bind(3, to_string(Phase::pending))
      .bind(4, to_string(Phase::queued))
      .bind(5, to_string(Phase::held))
      .run();
  if (connection_->changes() == 1) return seconds;
  auto job = load_locked(id);
  if (!job) throw NotFound("no such job");
  throw InvalidRequest(fmt::format("the execution duration of a job in phase {} cannot be changed", to_string(job->phase)));
}

Time JobStore::set_destruction(std::string_view id, Time when) {
  when = std::min(when, now() + options_.max_retention);
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("UPDATE uws_job SET destruction_time = ? WHERE job_id = ?");
  q->bind(1, ms(when)).bind(2, id).run();
  if (connection_->changes() != 1) throw NotFound("no such job");
  return when;
}

void JobStore::set_quote(std::string_view id, std::optional<Time> quote) {
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("UPDATE uws_job SET quote = ? WHERE job_id = ?");
  if (quote)
    q->bind(1, ms(*quote));
  else
    q->bind_null(1);
  q->bind(2, id).run();
  if (connection_->changes() != 1) throw NotFound("no such job");
}

void JobStore::update_parameters(std::string_view id, const std::vector<Parameter>& updates) {
  std::lock_guard lock(db_mutex_);
  db::Transaction tx(*connection_);
  // Read the phase inside the transaction (which holds the write lock) so a
  // concurrent RUN cannot slip in between the check and the update.
  auto phase = connection_->prepare("SELECT phase FROM uws_job WHERE job_id = ?");
  phase->bind(1, id);
  if (!valid_job_id(id) || !phase->step()) throw NotFound("no such job");
  const std::string current = phase->get_text(0);
  if (current != to_string(Phase::pending))
    throw InvalidRequest(fmt::format("the parameters of a job in phase {} cannot be changed", current));

  std::vector<std::string> names;
  for (const auto& u : updates) {
    const std::string lower = http::ascii_lower(u.name);
    if (std::find(names.begin(), names.end(), lower) == names.end()) names.push_back(lower);
  }
  auto remove = connection_->prepare("DELETE FROM uws_parameter WHERE job_id = ? AND lower(name) = ?");
  for (const auto& n : names) {
    remove->bind(1, id).bind(2, n).run();
    remove->reset();
  }
  auto max_seq = connection_->prepare("SELECT COALESCE(MAX(seq), 0) FROM uws_parameter WHERE job_id = ?");
  max_seq->bind(1, id);
  max_seq->step();
  std::int64_t seq = max_seq->get_int(0);
  auto insert = connection_->prepare(
      "INSERT INTO uws_parameter (job_id, seq, name, value, by_reference) VALUES (?, ?, ?, ?, ?)");
  for (const auto& u : updates) {
    insert->bind(1, id).bind(2, ++seq).bind(3, u.name).bind(4, u.value).bind(5, u.by_reference ? 1 : 0).run();
    insert->reset();
  }
  tx.commit();
}

void JobStore::add_result(std::string_view id, const Result& result) {
  if (!valid_result_id(result.id)) throw std::invalid_argument(fmt::format("invalid result id '{}'", result.id));
  const bool is_file = !result.file_name.empty();
  if (is_file == !result.url.empty())
    throw std::invalid_argument("a result is either a file in the job directory or an external URL");
  if (is_file && !valid_file_name(result.file_name))
    throw std::invalid_argument(fmt::format("invalid result file name '{}'", result.file_name));
  if (!is_file && !absolute_http_url(result.url))
    throw std::invalid_argument("an external result needs an absolute http(s) URL");

  std::lock_guard lock(db_mutex_);
  db::Transaction tx(*connection_);
  auto exists = connection_->prepare("SELECT 1 FROM uws_job WHERE job_id = ?");
  exists->bind(1, id);
  if (!valid_job_id(id) || !exists->step()) throw NotFound("no such job");
  auto remove = connection_->prepare("DELETE FROM uws_result WHERE job_id = ? AND result_id = ?");
  remove->bind(1, id).bind(2, result.id).run();
  auto max_seq = connection_->prepare("SELECT COALESCE(MAX(seq), 0) FROM uws_result WHERE job_id = ?");
  max_seq->bind(1, id);
  max_seq->step();
  const std::int64_t seq = max_seq->get_int(0) + 1;
  auto insert = connection_->prepare(
      "INSERT INTO uws_result (job_id, result_id, seq, file_name, url, mime_type, size) VALUES (?, ?, ?, ?, ?, ?, ?)");
  insert->bind(1, id).bind(2, result.id).bind(3, seq);
  if (is_file) {
    insert->bind(4, result.file_name).bind_null(5);
  } else {
    insert->bind_null(4).bind(5, result.url);
  }
  insert->bind(6, result.mime_type.empty() ? std::string("application/octet-stream") : result.mime_type);
  if (result.size)
    insert->bind(7, static_cast<std::int64_t>(*result.size));
  else
    insert->bind_null(7);
  insert->run();
  tx.commit();
}

void JobStore::set_progress(std::string_view id, double fraction, std::string_view message) {
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("UPDATE uws_job SET progress = ?, progress_message = ? WHERE job_id = ?");
  q->bind(1, std::clamp(fraction, 0.0, 1.0)).bind(2, message).bind(3, id).run();
}

bool JobStore::remove(std::string_view id) {
  if (!valid_job_id(id)) return false;
  bool removed = false;
  {
    std::lock_guard lock(db_mutex_);
    db::Transaction tx(*connection_);
    for (const char* sql : {"DELETE FROM uws_result WHERE job_id = ?", "DELETE FROM uws_parameter WHERE job_id = ?",
                            "DELETE FROM uws_job WHERE job_id = ?"}) {
      auto q = connection_->prepare(sql);
      q->bind(1, id).run();
      removed = connection_->changes() > 0;  // what counts is the last: the job row
    }
    tx.commit();
  }
  remove_files(id);
  if (removed) notify_change();  // a waiter on a destroyed job returns at once
  return removed;
}

void JobStore::remove_files(std::string_view id) {
  std::error_code ec;
  fs::remove_all(job_directory(id), ec);  // best effort: a missing directory is fine
}

std::vector<std::string> JobStore::expired(Time t) const {
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("SELECT job_id FROM uws_job WHERE destruction_time <= ? ORDER BY destruction_time");
  q->bind(1, ms(t));
  std::vector<std::string> out;
  while (q->step()) out.push_back(q->get_text(0));
  return out;
}

std::size_t JobStore::queued_count() const {
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare("SELECT COUNT(*) FROM uws_job WHERE phase = ?");
  q->bind(1, to_string(Phase::queued));
  q->step();
  return static_cast<std::size_t>(q->get_int(0));
}

std::optional<Job> JobStore::claim(std::string_view worker, std::span<const std::string> kinds,
                                   std::chrono::milliseconds lease) {
  if (kinds.empty()) return std::nullopt;
  std::string id;
  bool rerun = false;
  {
    std::lock_guard lock(db_mutex_);
    const db::Dialect dialect = connection_->dialect();
    db::Transaction tx(*connection_);
    auto pick = connection_->prepare(fmt::format(
        "SELECT job_id, attempts FROM uws_job WHERE phase = ? AND kind IN ({}) ORDER BY queued_time, job_id LIMIT 1{}",
        phase_list(kinds.size()), db::skip_locked_clause(dialect)));
    int i = 0;
    pick->bind(++i, to_string(Phase::queued));
    for (const auto& kind : kinds) pick->bind(++i, kind);
    if (!pick->step()) return std::nullopt;
    id = pick->get_text(0);
    rerun = pick->get_int(1) > 0;
    pick.reset();
    auto take = connection_->prepare(fmt::format(
        "UPDATE uws_job SET phase = ?, start_time = ?, lease_owner = ?, lease_expiry = {}, attempts = attempts + 1, "
        "progress = NULL, progress_message = NULL WHERE job_id = ? AND phase = ?",
        lease_expiry_sql(dialect)));
    take->bind(1, to_string(Phase::executing))
        .bind(2, ms(now()))
        .bind(3, worker)
        .bind(4, static_cast<std::int64_t>(lease.count()))
        .bind(5, id)
        .bind(6, to_string(Phase::queued))
        .run();
    if (connection_->changes() != 1) return std::nullopt;
    if (rerun) {
      auto results = connection_->prepare("DELETE FROM uws_result WHERE job_id = ?");
      results->bind(1, id).run();
    }
    tx.commit();
  }
  // What an earlier attempt wrote is not this attempt's result.
  if (rerun) remove_files(id);
  notify_change();
  return load(id);
}

std::vector<std::string> JobStore::renew(std::string_view worker, std::span<const std::string> ids,
                                         std::chrono::milliseconds lease) {
  std::vector<std::string> held;
  if (ids.empty()) return held;
  std::lock_guard lock(db_mutex_);
  auto q = connection_->prepare(fmt::format(
      "UPDATE uws_job SET lease_expiry = {} WHERE lease_owner = ? AND phase = ? AND job_id IN ({}) RETURNING job_id",
      lease_expiry_sql(connection_->dialect()), phase_list(ids.size())));
  int i = 0;
  q->bind(++i, static_cast<std::int64_t>(lease.count()));
  q->bind(++i, worker);
  q->bind(++i, to_string(Phase::executing));
  for (const auto& id : ids) q->bind(++i, id);
  while (q->step()) held.push_back(q->get_text(0));
  return held;
}

bool JobStore::finish(std::string_view id, std::string_view worker, Phase to,
                      const std::optional<ErrorSummary>& error) {
  if (!is_final(to)) throw std::invalid_argument("uws::JobStore::finish: not a final phase");
  std::string sql = "UPDATE uws_job SET phase = ?, end_time = ?, lease_expiry = NULL";
  if (error) sql += ", error_type = ?, error_message = ?, error_detail = ?";
  sql += " WHERE job_id = ? AND phase = ? AND lease_owner = ?";
  bool changed = false;
  {
    std::lock_guard lock(db_mutex_);
    auto q = connection_->prepare(sql);
    int i = 0;
    q->bind(++i, to_string(to));
    q->bind(++i, ms(now()));
    if (error) {
      q->bind(++i, to_string(error->type));
      q->bind(++i, error->message);
      q->bind(++i, error->detail);
    }
    q->bind(++i, id);
    q->bind(++i, to_string(Phase::executing));
    q->bind(++i, worker);
    q->run();
    changed = connection_->changes() == 1;
  }
  if (changed) notify_change();
  return changed;
}

bool JobStore::release(std::string_view id, std::string_view worker) {
  bool changed = false;
  {
    std::lock_guard lock(db_mutex_);
    auto q = connection_->prepare(
        "UPDATE uws_job SET phase = ?, start_time = NULL, lease_owner = NULL, lease_expiry = NULL, "
        "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END "
        "WHERE job_id = ? AND phase = ? AND lease_owner = ?");
    q->bind(1, to_string(Phase::queued)).bind(2, id).bind(3, to_string(Phase::executing)).bind(4, worker).run();
    changed = connection_->changes() == 1;
  }
  if (changed) notify_change();
  return changed;
}

JobStore::Reaped JobStore::reap(unsigned max_attempts) {
  Reaped reaped;
  {
    std::lock_guard lock(db_mutex_);
    const std::string expired = lease_expired_sql(connection_->dialect());
    db::Transaction tx(*connection_);
    auto requeue = connection_->prepare(fmt::format(
        "UPDATE uws_job SET phase = ?, start_time = NULL, lease_owner = NULL, lease_expiry = NULL "
        "WHERE phase = ? AND {} AND attempts < ? RETURNING job_id",
        expired));
    requeue->bind(1, to_string(Phase::queued))
        .bind(2, to_string(Phase::executing))
        .bind(3, static_cast<std::int64_t>(max_attempts));
    while (requeue->step()) reaped.requeued.push_back(requeue->get_text(0));
    requeue.reset();
    auto fail = connection_->prepare(fmt::format(
        "UPDATE uws_job SET phase = ?, end_time = ?, lease_expiry = NULL, error_type = ?, error_message = "
        "'the server executing the job stopped, ' || attempts || ' time(s); the job is not tried again', "
        "error_detail = '' WHERE phase = ? AND {} AND attempts >= ? RETURNING job_id",
        expired));
    // attempts is tested again: a lease may expire between the two
    // statements (the database's clock runs on within a transaction).
    fail->bind(1, to_string(Phase::error))
        .bind(2, ms(now()))
        .bind(3, to_string(ErrorType::fatal))
        .bind(4, to_string(Phase::executing))
        .bind(5, static_cast<std::int64_t>(max_attempts));
    while (fail->step()) reaped.failed.push_back(fail->get_text(0));
    fail.reset();
    tx.commit();
  }
  if (!reaped.requeued.empty() || !reaped.failed.empty()) notify_change();
  return reaped;
}

}  // namespace pixserve::uws
