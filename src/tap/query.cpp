// The TAP query engine. It talks to the registry only through db::
// (a read-only query connection with a progress check and the ADQL
// functions), so the SQL it runs is the only thing tied to a backend.
#include "tap/query.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <span>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "adql/errors.hpp"
#include "adql/geometry_functions.hpp"
#include "adql/sql_text.hpp"
#include "adql/sql_functions.hpp"
#include "adql/translator.hpp"
#include "dali/params.hpp"
#include "db/database.hpp"
#include "repo/registry.hpp"
#include "sky/healpix.hpp"

namespace pixserve::tap {
namespace {

using adql::AdqlType;
namespace geo = adql::geometry;

bool valid_upload_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !std::isalpha(static_cast<unsigned char>(name.front()))) return false;
  for (const char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// A catalogue of the service's tables plus this query's uploads.
class QueryCatalog final : public adql::Catalog {
 public:
  explicit QueryCatalog(const adql::Catalog& base) : base_(base) {}
  void add(adql::TableDef t) { uploads_.push_back(std::make_unique<adql::TableDef>(std::move(t))); }
  std::vector<const adql::TableDef*> tables() const override {
    auto out = base_.tables();
    for (const auto& u : uploads_) out.push_back(u.get());
    return out;
  }

 private:
  const adql::Catalog& base_;
  std::vector<std::unique_ptr<adql::TableDef>> uploads_;
};

}  // namespace

// The cursor's state holds these (a named namespace: a class of external
// linkage must not hold members of the anonymous one).
namespace detail {

// The running query's progress check: stops it at the deadline or when
// `cancelled` says so, and remembers which of the two it was.
struct Interrupt {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::function<bool()>* cancelled = nullptr;
  bool timed_out = false;
  bool was_cancelled = false;

  bool stop() {
    if (deadline && std::chrono::steady_clock::now() >= *deadline) {
      timed_out = true;
      return true;
    }
    if (cancelled && *cancelled && (*cancelled)()) {
      was_cancelled = true;
      return true;
    }
    return false;
  }
};

// Removes a connection's progress check when the query's scope ends, so the
// check never outlives the Interrupt it refers to.
class ProgressCheck {
 public:
  ProgressCheck(db::Connection& db, Interrupt& interrupt) : db_(db) {
    db_.set_progress_check([&interrupt] { return interrupt.stop(); });
  }
  ProgressCheck(const ProgressCheck&) = delete;
  ProgressCheck& operator=(const ProgressCheck&) = delete;
  ~ProgressCheck() { db_.set_progress_check({}); }

 private:
  db::Connection& db_;
};

}  // namespace detail

namespace {

using detail::Interrupt;
using detail::ProgressCheck;

std::uint64_t cell_bytes(const votable::Value& v) {
  if (const auto* s = v.get_if<std::string>()) return s->size() + 16;
  if (const auto* d = v.get_if<std::vector<double>>()) return d->size() * 8 + 16;
  if (const auto* i = v.get_if<std::vector<std::int64_t>>()) return i->size() * 8 + 16;
  return 16;
}

std::vector<double> geometry_array(const geo::Geometry& g) {
  return std::visit(
      [](const auto& shape) -> std::vector<double> {
        using T = std::decay_t<decltype(shape)>;
        if constexpr (std::is_same_v<T, sky::SkyPoint>) {
          return {shape.ra, shape.dec};
        } else if constexpr (std::is_same_v<T, sky::Circle>) {
          return {shape.center.ra, shape.center.dec, shape.radius_deg};
        } else if constexpr (std::is_same_v<T, sky::Polygon>) {
          return sky::to_dali_array(shape);
        } else {
          const auto r = shape.range();
          return {r.ra_min, r.dec_min, r.ra_max, r.dec_min, r.ra_max, r.dec_max, r.ra_min, r.dec_max};
        }
      },
      g);
}

// One result cell of an output column of ADQL type `type`.
votable::Value read_cell(db::Statement& s, int i, AdqlType type) {
  if (s.is_null(i)) return {};
  switch (type) {
    case AdqlType::smallint:
    case AdqlType::integer:
    case AdqlType::bigint: return votable::Value(s.get_int(i));
    case AdqlType::boolean: return votable::Value(s.get_int(i) != 0);
    case AdqlType::real:
    case AdqlType::double_precision: {
      const double d = s.get_double(i);
      return std::isnan(d) ? votable::Value() : votable::Value(d);
    }
    case AdqlType::point:
    case AdqlType::circle:
    case AdqlType::polygon: {
      try {
        const auto g = geo::parse(s.get_text(i));
        const bool fits = (type == AdqlType::point && std::holds_alternative<sky::SkyPoint>(g)) ||
                          (type == AdqlType::circle && std::holds_alternative<sky::Circle>(g)) ||
                          (type == AdqlType::polygon && !std::holds_alternative<sky::SkyPoint>(g) &&
                           !std::holds_alternative<sky::Circle>(g));
        return fits ? votable::Value(geometry_array(g)) : votable::Value();
      } catch (const std::exception&) {
        return {};
      }
    }
    case AdqlType::binary: {
      const auto blob = s.get_blob(i);
      return votable::Value(std::vector<std::int64_t>(blob.begin(), blob.end()));
    }
    default: return votable::Value(s.get_text(i));
  }
}

std::string stcs_of(const votable::Value& v, AdqlType type, const std::string& column) {
  const auto* a = v.get_if<std::vector<double>>();
  if (!a) throw dali::usage_error(fmt::format("UPLOAD: column {}: a {} needs numbers", column, adql::type_name(type)));
  try {
    if (type == AdqlType::point) {
      if (a->size() != 2) throw std::invalid_argument("a point has 2 numbers");
      return geo::format(geo::make_point((*a)[0], (*a)[1]));
    }
    if (type == AdqlType::circle) {
      if (a->size() != 3) throw std::invalid_argument("a circle has 3 numbers");
      return geo::format(geo::make_circle((*a)[0], (*a)[1], (*a)[2]));
    }
    return geo::format(geo::make_polygon(*a));
  } catch (const std::exception& e) {
    throw dali::usage_error(fmt::format("UPLOAD: column {}: invalid {}: {}", column, adql::type_name(type), e.what()));
  }
}

// An uploaded cell as stored in its TEMP table column of ADQL type `type`:
// geometry as STC-S text, booleans as 0/1, numeric arrays as
// space-separated text.
db::Value upload_cell(const votable::Value& v, AdqlType type, const std::string& column) {
  if (v.is_null()) return {};
  if (type == AdqlType::point || type == AdqlType::circle || type == AdqlType::polygon) {
    return stcs_of(v, type, column);
  }
  if (const auto* str = v.get_if<std::string>()) return *str;
  if (const auto* n = v.get_if<std::int64_t>()) return *n;
  if (const auto* b = v.get_if<bool>()) return std::int64_t{*b ? 1 : 0};
  if (const auto* d = v.get_if<double>()) return *d;
  std::string text;
  if (const auto* da = v.get_if<std::vector<double>>()) {
    for (const double x : *da) text += (text.empty() ? "" : " ") + adql::format_real(x);
  } else if (const auto* ia = v.get_if<std::vector<std::int64_t>>()) {
    for (const auto x : *ia) text += (text.empty() ? "" : " ") + std::to_string(x);
  }
  return text;
}

// A TAP_SCHEMA cell: text, an integer or NULL.
db::Value schema_cell(const votable::Value& v) {
  if (const auto* str = v.get_if<std::string>()) return *str;
  if (const auto* n = v.get_if<std::int64_t>()) return *n;
  return {};
}

// TAP_SCHEMA's tables with their rows, from the metadata: TEMP tables of
// each SQLite query connection, common table expressions of each
// PostgreSQL query.
struct SchemaTable {
  const adql::TableDef* def;  // its SQL name and columns
  std::vector<std::vector<votable::Value>> rows;
};

std::vector<SchemaTable> tap_schema_contents(const TapMetadata& metadata) {
  const auto text = [](std::string_view s) { return s.empty() ? votable::Value() : votable::Value(s); };
  std::map<std::string, std::vector<std::vector<votable::Value>>, std::less<>> rows;
  auto& schemas = rows["tap_schema_schemas"];
  auto& tables = rows["tap_schema_tables"];
  auto& columns = rows["tap_schema_columns"];
  auto& keys = rows["tap_schema_keys"];
  auto& key_columns = rows["tap_schema_key_columns"];
  for (std::size_t i = 0; i < metadata.schemas().size(); ++i) {
    const auto& s = metadata.schemas()[i];
    schemas.push_back({s.name, votable::Value(), s.description, static_cast<std::int64_t>(i + 1)});
  }
  for (std::size_t i = 0; i < metadata.tables().size(); ++i) {
    const auto& t = metadata.tables()[i];
    tables.push_back({t.def.schema, t.def.qualified_name(), t.type, text(t.utype), t.def.description,
                      static_cast<std::int64_t>(i + 1)});
    for (std::size_t j = 0; j < t.columns.size(); ++j) {
      const auto& c = t.columns[j];
      const VotableType vt = votable_type(c.def.type);
      votable::Value size;
      if (!vt.arraysize.empty() && vt.arraysize != "*") size = votable::Value(std::stoll(vt.arraysize));
      columns.push_back({t.def.qualified_name(), c.tap_name.empty() ? c.def.name : c.tap_name, text(c.def.utype),
                         text(c.def.ucd), text(c.def.unit), text(c.def.description),
                         std::string(votable::datatype_name(vt.datatype)), text(vt.arraysize), text(vt.xtype), size,
                         static_cast<std::int64_t>(c.def.principal), static_cast<std::int64_t>(c.def.indexed),
                         static_cast<std::int64_t>(c.def.std), static_cast<std::int64_t>(j + 1)});
    }
  }
  for (const auto& k : metadata.keys()) {
    keys.push_back({k.id, k.from_table, k.target_table, votable::Value(), k.description});
    for (const auto& [from, target] : k.columns) key_columns.push_back({k.id, from, target});
  }
  std::vector<SchemaTable> out;
  for (const auto& t : metadata.tables()) {
    if (t.def.schema != "TAP_SCHEMA") continue;
    const auto found = rows.find(t.def.sql());
    if (found == rows.end()) throw std::logic_error("tap: no rows for TAP_SCHEMA table " + t.def.sql());
    out.push_back({&t.def, found->second});
  }
  return out;
}

// The SQL type of a TAP_SCHEMA column (integers, or text).
std::string_view schema_column_type(const adql::ColumnDef& c, db::Dialect dialect) {
  return adql::is_integer(c.type) ? db::integer_type(dialect) : "TEXT";
}

// A TAP_SCHEMA table as a common table expression: name (columns) AS
// (VALUES ...), NULLs typed so that a column of NULLs has its type.
std::string schema_table_cte(const SchemaTable& t) {
  const auto null_of = [](const adql::ColumnDef& c) {
    return fmt::format("CAST(NULL AS {})", schema_column_type(c, db::Dialect::postgresql));
  };
  std::string names;
  for (const auto& c : t.def->columns) names += (names.empty() ? "" : ", ") + adql::quote_identifier(c.sql());
  std::string body;
  if (t.rows.empty()) {
    for (const auto& c : t.def->columns) body += (body.empty() ? "SELECT " : ", ") + null_of(c);
    body += " WHERE false";
  } else {
    for (const auto& row : t.rows) {
      std::string cells;
      for (std::size_t i = 0; i < row.size(); ++i) {
        const db::Value v = schema_cell(row[i]);
        cells += i ? ", " : "";
        if (const auto* n = std::get_if<std::int64_t>(&v)) {
          cells += std::to_string(*n);
        } else if (const auto* text = std::get_if<std::string>(&v)) {
          cells += adql::quote_string(*text);
        } else {
          cells += null_of(t.def->columns.at(i));
        }
      }
      body += (body.empty() ? "VALUES (" : ", (") + cells + ")";
    }
  }
  return fmt::format("{} ({}) AS ({})", adql::quote_identifier(t.def->sql()), names, body);
}

// Whether a dataset's footprint `region` meets the constraint of `hint`
// (one on s_region), as the ADQL functions of the query would say.
bool meets_hint(const geo::Geometry& region, const adql::SpatialHint& hint) {
  switch (hint.kind) {
    case adql::SpatialHint::Kind::region_intersects_shape:
      // INTERSECTS with a point is CONTAINS of that point (as written in SQL).
      if (std::holds_alternative<sky::SkyPoint>(hint.constant)) return geo::contains(hint.constant, region);
      return geo::intersects(region, hint.constant);
    case adql::SpatialHint::Kind::region_in_shape:
      return geo::contains(region, hint.constant);
    case adql::SpatialHint::Kind::region_contains_shape:
      return geo::contains(hint.constant, region);
    case adql::SpatialHint::Kind::point_in_shape:
      break;
  }
  throw std::logic_error("tap: no exact footprint test for a point constraint");
}

// Of the datasets of `keys` (sorted), those whose footprint meets the
// constraint of `hint`, in order, from position `tested` on, up to `wanted`
// of them (repo::matching_footprints), tested here with the same functions
// the query's SQL would call (a footprint that does not parse fails the
// query, as it would in SQL).
std::vector<std::int64_t> matching_footprints(db::Connection& conn, std::span<const std::int64_t> keys,
                                              std::size_t& tested, std::size_t wanted, const adql::SpatialHint& hint) {
  return repo::matching_footprints(conn, keys, tested, wanted, {}, [&](const std::string& s_region) {
    geo::Geometry region;
    try {
      region = geo::parse(s_region);
    } catch (const geo::GeometryError& e) {
      throw dali::usage_error(fmt::format("QUERY failed: the footprint of a dataset does not parse: {}", e.what()));
    }
    return meets_hint(region, hint);
  });
}

// Whether the translated SQL names the table (the writer quotes every
// name; a mention inside a string literal only adds an unused expression).
bool names_table(std::string_view sql, std::string_view table) {
  return sql.find(adql::quote_identifier(table)) != std::string_view::npos;
}

}  // namespace

adql::AdqlType upload_column_type(const votable::Field& f) {
  using votable::Datatype;
  const bool array = !f.arraysize.empty();
  if (f.xtype == "point" || f.xtype == "circle" || f.xtype == "polygon") {
    if (f.datatype == Datatype::double_ || f.datatype == Datatype::float_) {
      return f.xtype == "point" ? AdqlType::point : f.xtype == "circle" ? AdqlType::circle : AdqlType::polygon;
    }
  }
  if (f.datatype == Datatype::char_ || f.datatype == Datatype::unicodeChar) {
    if (f.xtype == "timestamp" || f.xtype == "adql:TIMESTAMP") return AdqlType::timestamp;
    if (f.xtype == "adql:REGION") return AdqlType::region;
    return array ? AdqlType::varchar : AdqlType::char_;
  }
  if (array) return AdqlType::varchar;  // numeric arrays are kept as text
  switch (f.datatype) {
    case Datatype::boolean: return AdqlType::boolean;
    case Datatype::unsignedByte:
    case Datatype::short_: return AdqlType::smallint;
    case Datatype::int_: return AdqlType::integer;
    case Datatype::long_: return AdqlType::bigint;
    case Datatype::float_: return AdqlType::real;
    case Datatype::double_: return AdqlType::double_precision;
    default: return AdqlType::varchar;
  }
}

// One pooled query connection: on SQLite a read-only connection with its
// TEMP objects (TAP_SCHEMA, the viewer's views); on PostgreSQL a session of
// the primary (`server` 0) or of a standby (1 + its index) that holds
// nothing between queries (an upload's TEMP tables live as long as its
// query, on the primary only).
class TapEngine::Connection {
 public:
  Connection(const TapMetadata& metadata, const EngineOptions& options, std::size_t server)
      : db_(open(options, server)), datalink_links_(options.datalink_links), server_(server) {
    if (dialect() == db::Dialect::sqlite) {
      adql::register_functions(*db_);
      create_tap_schema(metadata);
    }
  }

  db::Connection& db() { return *db_; }
  db::Dialect dialect() const { return db_->dialect(); }
  // "temp." or "pg_temp.": where this session's own tables are.
  std::string temp_prefix() const { return std::string(db::temp_schema(dialect())) + "."; }
  std::string integer_type() const { return std::string(db::integer_type(dialect())); }
  std::string real_type() const { return std::string(db::real_type(dialect())); }

  // Statements of the engine's own (not the user's query): a failure is a
  // server fault.
  void exec(const std::string& sql) {
    try {
      db_->exec(sql);
    } catch (const db::Unavailable&) {
      throw;  // not a fault of the engine: the caller answers 503
    } catch (const db::DbError& e) {
      throw std::runtime_error(fmt::format("tap: {}: {}", sql.substr(0, 120), e.reason()));
    }
  }

  std::unique_ptr<db::Statement> prepare(const std::string& sql) {
    try {
      return db_->prepare(sql);
    } catch (const db::Unavailable&) {
      throw;
    } catch (const db::DbError& e) {
      throw std::runtime_error(fmt::format("tap: preparing: {}", e.reason()));
    }
  }

  std::size_t server() const noexcept { return server_; }

  // SQLite: the TEMP views of the viewer's rows (PostgreSQL queries carry
  // them: TapEngine::with_tables).
  // The views depend on the root URL too (access_url is absolute on it).
  void use_viewer(const Viewer& viewer, const std::string& base_url) {
    if (dialect() != db::Dialect::sqlite) return;
    const std::string key = viewer_key(viewer) + ";base=" + base_url;
    if (viewer_key_ && *viewer_key_ == key) return;
    viewer_key_.reset();
    for (const auto& sql : drop_views_sql(dialect())) exec(sql);
    for (const auto& sql : views_sql(viewer, base_url + datalink_links_, dialect())) exec(sql);
    viewer_key_ = key;
  }

  // Names of TEMP tables this query made, dropped by cleanup().
  std::string temp_table(std::string_view prefix) {
    std::string name = fmt::format("{}_{}", prefix, ++temp_counter_);
    temp_tables_.push_back(name);
    return name;
  }

  // False when the connection's session is lost (the server restarted):
  // it does not reconnect underneath a query's TEMP tables; the engine opens
  // another instead.
  bool usable() { return db_->connected(); }

  void cleanup() {
    db_->set_progress_check({});
    // A query that failed half-way through storing an upload left its
    // transaction open.
    if (db_->in_transaction()) exec("ROLLBACK");
    for (const auto& t : temp_tables_) exec("DROP TABLE IF EXISTS " + temp_prefix() + adql::quote_identifier(t));
    temp_tables_.clear();
  }

 private:
  static std::unique_ptr<db::Connection> open(const EngineOptions& options, std::size_t server) {
    if (!options.registry_url.empty()) {
      // Not a read-only session on the primary: an upload's TEMP tables are
      // made outside the query, which runs in a READ ONLY transaction. They
      // die with the session, so a lost connection is not reconnected
      // underneath them: the engine drops it and opens another.
      if (server == 0) return db::open_postgresql(options.registry_url, {.reconnect = false});
      return db::open_postgresql(options.standbys->url(server - 1), {.read_only = true, .reconnect = false});
    }
    try {
      // Pooled: one query at a time uses a connection, so it needs no mutex.
      return db::open_sqlite(options.registry_file, db::SqliteOptions{.read_only = true,
                                                                     .one_thread_at_a_time = true,
                                                                     .busy_timeout = std::chrono::seconds(10)});
    } catch (const db::DbError& e) {
      throw std::runtime_error(fmt::format("tap: opening {}: {}", options.registry_file.string(), e.reason()));
    }
  }

  void create_tap_schema(const TapMetadata& metadata) {
    exec("BEGIN");
    for (const auto& table : tap_schema_contents(metadata)) {
      std::string create = "CREATE TEMP TABLE " + adql::quote_identifier(table.def->sql()) + " (";
      std::string insert = "INSERT INTO " + temp_prefix() + adql::quote_identifier(table.def->sql()) + " VALUES (";
      for (std::size_t i = 0; i < table.def->columns.size(); ++i) {
        const auto& c = table.def->columns[i];
        create += (i ? ", " : "") + adql::quote_identifier(c.sql()) + " " + std::string(schema_column_type(c, dialect()));
        insert += i ? ", ?" : "?";
      }
      exec(create + ")");
      auto s = prepare(insert + ")");
      for (const auto& row : table.rows) {
        try {
          for (std::size_t i = 0; i < row.size(); ++i) s->bind(static_cast<int>(i + 1), schema_cell(row[i]));
          s->step();
          s->reset();
        } catch (const db::DbError&) {
          throw std::runtime_error("tap: filling TAP_SCHEMA failed");
        }
      }
    }
    exec("COMMIT");
  }

  std::unique_ptr<db::Connection> db_;
  std::string datalink_links_;  // EngineOptions::datalink_links
  std::optional<std::string> viewer_key_;
  std::vector<std::string> temp_tables_;
  std::uint64_t temp_counter_ = 0;
  std::size_t server_ = 0;
};

TapEngine::TapEngine(std::shared_ptr<const TapMetadata> metadata, EngineOptions options)
    : metadata_(std::move(metadata)), options_(std::move(options)) {
  idle_.resize(1 + (options_.standbys ? options_.standbys->size() : 0));
  if (options_.registry_url.empty()) return;
  for (const auto& table : tap_schema_contents(*metadata_)) {
    tap_schema_ctes_.push_back({table.def->sql(), schema_table_cte(table)});
  }
  // The server's copies of the adql_* functions, of this build's version,
  // installed (replaced) on the primary before any query runs; standbys
  // have them by replication.
  auto first = std::make_unique<Connection>(*metadata_, options_, 0);
  first->exec(std::string(adql::postgresql_functions_sql()));
  release(std::move(first));
}

TapEngine::~TapEngine() = default;

std::unique_ptr<TapEngine::Connection> TapEngine::acquire(std::size_t server) {
  {
    std::lock_guard lock(mutex_);
    auto& idle = idle_.at(server);
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      // One whose server closed it while it was idle (a restart) goes.
      if (c->usable()) return c;
    }
  }
  return std::make_unique<Connection>(*metadata_, options_, server);
}

void TapEngine::release(std::unique_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  auto& idle = idle_.at(connection->server());
  if (idle.size() < options_.max_idle_connections) idle.push_back(std::move(connection));
}

std::string TapEngine::with_tables(const std::string& sql, const Viewer& viewer, const std::string& base_url) const {
  std::string tables;
  const auto named = [&sql](std::string_view name) { return names_table(sql, name); };
  for (const auto& view : view_definitions(viewer, base_url + options_.datalink_links, db::Dialect::postgresql, named)) {
    // Inlined into the query as a view would be (a table named twice is
    // not computed once into a result without indexes).
    tables += fmt::format("{}{} AS NOT MATERIALIZED ({})", tables.empty() ? "" : ", ", adql::quote_identifier(view.name),
                          view.select);
  }
  for (const auto& [name, cte] : tap_schema_ctes_) {
    if (names_table(sql, name)) tables += (tables.empty() ? "" : ", ") + cte;
  }
  if (tables.empty()) return sql;
  // The query's own WITH list (ADQL common table expressions) follows ours,
  // whose tables it may name.
  if (sql.starts_with("WITH ")) return "WITH " + tables + ", " + sql.substr(5);
  return "WITH " + tables + " " + sql;
}

QueryResult TapEngine::run(const QueryRequest& request) {
  QueryCursor cursor = open(request);
  QueryResult result;
  result.fields = cursor.fields();
  result.sql = cursor.sql();
  while (const auto* row = cursor.next()) result.rows.push_back(*row);
  result.overflow = cursor.overflow();
  return result;
}

QueryCursor TapEngine::open(const QueryRequest& request) {
  if (request.adql.size() > options_.settings.max_query_length) {
    throw dali::usage_error(
        fmt::format("QUERY is longer than the limit of {} characters", options_.settings.max_query_length));
  }
  if (request.uploads.size() > options_.max_uploads) {
    throw dali::usage_error(fmt::format("UPLOAD: at most {} tables", options_.max_uploads));
  }
  // The servers to try in turn: standbys that qualify, then the primary. A
  // query with uploads keeps them in TEMP tables, which only the primary
  // can hold.
  std::vector<std::size_t> servers;
  if (options_.standbys && request.uploads.empty()) {
    for (const std::size_t standby : options_.standbys->for_read()) servers.push_back(1 + standby);
  }
  servers.push_back(0);
  for (const std::size_t server : servers) {
    try {
      return open_on(server, request);
    } catch (const db::Unavailable& e) {
      if (server == 0) throw;
      // The query only reads, and no row has been given yet: it runs again
      // on the next server, and the client never sees the standby go.
      spdlog::warn("tap: registry standby {}: {}; the query runs on the next server", server, e.what());
      options_.standbys->failed(server - 1, e.reason());
    }
  }
  throw std::logic_error("tap: no server to run the query on");
}

std::size_t TapEngine::idle_connections() {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (const auto& idle : idle_) n += idle.size();
  return n;
}

void TapEngine::give_back(std::unique_ptr<Connection> conn) noexcept {
  if (!conn) return;
  if (!conn->usable()) return;  // lost with its TEMP objects: dropped, the next query opens another
  try {
    conn->cleanup();
    release(std::move(conn));
  } catch (const std::exception& e) {
    spdlog::warn("tap: dropping a query connection: {}", e.what());
  }
}

// ------------------------------------------------------------ the cursor

struct QueryCursor::State {
  State(TapEngine& engine, std::unique_ptr<TapEngine::Connection> connection, const QueryRequest& request,
        std::uint64_t max_bytes)
      : engine(engine),
        conn(std::move(connection)),
        maxrec(request.maxrec),
        max_bytes(max_bytes),
        cancelled(request.cancelled),
        interrupt{request.deadline, &cancelled, false, false} {}
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() { finish(); }

  // Ends the query and gives its connection back, in this order: the
  // statement first (on PostgreSQL it cancels what the server still sends,
  // instead of ROLLBACK reading it all into memory), then the progress
  // check, which refers to `interrupt`.
  void finish() noexcept {
    done = true;
    statement.reset();
    progress_check.reset();
    engine.give_back(std::move(conn));
  }

  // Runs database work of the query, turning its failures into the
  // engine's errors.
  template <typename Work>
  auto guarded(Work&& work) {
    try {
      return work();
    } catch (const db::Unavailable&) {
      throw;  // the server went away, whatever else happened
    } catch (const db::DbError& e) {
      if (interrupt.timed_out) throw QueryInterrupted(true, "the query exceeded its time limit");
      if (interrupt.was_cancelled) throw QueryInterrupted(false, "the query was cancelled");
      // Errors on user data: invalid geometry met at run time, overflow, ...
      throw dali::usage_error("QUERY failed: " + std::string(e.reason()));
    }
  }

  // Steps the statement; over its parts, when it has some.
  bool step() {
    for (;;) {
      if (parts && read >= static_cast<std::uint64_t>(*parts->hint.row_limit)) return false;
      const bool row = guarded([&] { return statement->step(); });
      if (row) {
        ++read;
        return true;
      }
      if (!parts || !guarded([&] { return bind_next_part(); })) return false;
    }
  }

  // A plain selection of rows with a constraint on ivoa.obscore's
  // footprints (SpatialHint::row_limit), on PostgreSQL: its statement takes
  // as its parameter the matching keys of one part of the index's
  // candidates at a time, in the order of the keys, until it has given
  // row_limit rows or the candidates end. A cone with MAXREC=100 then
  // tests about as many footprints as it returns, however many the index's
  // cells hold (~10^4 in a survey's deep fields).
  struct FootprintParts {
    adql::SpatialHint hint;
    std::vector<std::int64_t> candidates;  // sorted
    std::size_t tested = 0;                // candidates tested so far
    std::size_t wanted = 0;                // matches a part gathers (doubled for each)
  };

  // Binds the keys of the next part: candidates tested in growing chunks
  // until `wanted` of them match. False when no candidate is left.
  bool bind_next_part() {
    auto& p = *parts;
    if (p.wanted == 0) p.wanted = static_cast<std::size_t>(*p.hint.row_limit);
    const auto keys = matching_footprints(conn->db(), p.candidates, p.tested, p.wanted, p.hint);
    p.wanted *= 2;  // other conditions left fewer rows than matches: more next time
    if (keys.empty()) return false;
    statement->reset();
    statement->bind(1, repo::keys_parameter(db::Dialect::postgresql, keys));
    return true;
  }

  const std::vector<votable::Value>* next() {
    if (done) return nullptr;
    // The database checks the deadline while it works; rows it has already
    // sent (PostgreSQL) or that need little work (SQLite) are checked
    // here, so that a result read slowly still ends at the deadline.
    if (given % kRowsPerCheck == kRowsPerCheck - 1 && interrupt.stop()) {
      throw QueryInterrupted(interrupt.timed_out, interrupt.timed_out ? "the query exceeded its time limit"
                                                                      : "the query was cancelled");
    }
    if (!positioned && !step()) {
      finish();
      return nullptr;
    }
    positioned = false;
    if (static_cast<std::int64_t>(given) >= maxrec) {
      overflow = true;  // the row after the last one allowed only says there are more
      finish();
      return nullptr;
    }
    const int ncols = std::min(statement->column_count(), static_cast<int>(types.size()));
    row.clear();
    for (int i = 0; i < ncols; ++i) {
      row.push_back(read_cell(*statement, i, types[static_cast<std::size_t>(i)]));
      bytes += cell_bytes(row.back());
    }
    if (bytes > max_bytes) {
      overflow = true;  // cut at the size limit, reported like MAXREC
      finish();
      return nullptr;
    }
    ++given;
    return &row;
  }

  // How many rows go between two looks at the deadline and cancellation
  // outside the database's own checks.
  static constexpr std::uint64_t kRowsPerCheck = 64;

  TapEngine& engine;
  std::unique_ptr<TapEngine::Connection> conn;
  std::vector<votable::Field> fields;
  std::vector<AdqlType> types;  // of each output column
  std::string sql;
  std::int64_t maxrec;
  std::uint64_t max_bytes;
  std::function<bool()> cancelled;  // the request's, kept for the progress check
  Interrupt interrupt;
  std::optional<ProgressCheck> progress_check;
  std::optional<FootprintParts> parts;
  std::unique_ptr<db::Statement> statement;
  std::vector<votable::Value> row;  // the current row, refilled
  bool positioned = false;  // the statement is on a row next() has not given yet
  bool done = false;
  bool overflow = false;
  std::uint64_t given = 0, read = 0, bytes = 0;
};

QueryCursor::QueryCursor(std::unique_ptr<State> state) : state_(std::move(state)) {}
QueryCursor::QueryCursor(QueryCursor&&) noexcept = default;
QueryCursor& QueryCursor::operator=(QueryCursor&&) noexcept = default;
QueryCursor::~QueryCursor() = default;
const std::vector<votable::Field>& QueryCursor::fields() const noexcept { return state_->fields; }
const std::string& QueryCursor::sql() const noexcept { return state_->sql; }
bool QueryCursor::overflow() const noexcept { return state_->overflow; }
std::uint64_t QueryCursor::rows_read() const noexcept { return state_->read; }

const std::vector<votable::Value>* QueryCursor::next() {
  try {
    return state_->next();
  } catch (...) {
    state_->finish();  // the connection goes back now, not when the cursor does
    throw;
  }
}

QueryCursor TapEngine::open_on(std::size_t server, const QueryRequest& request) {
  // The state owns the connection from here on: whatever fails below, its
  // destruction gives the connection back (or drops it).
  auto state = std::make_unique<QueryCursor::State>(*this, acquire(server), request, options_.settings.max_result_bytes);
  Connection* const conn = state->conn.get();

  conn->use_viewer(request.viewer, request.base_url);

  // Uploads: TEMP tables whose columns are c1, c2, ...
  QueryCatalog catalog(metadata_->catalog());
  std::set<std::string> upload_names;
  for (const auto& upload : request.uploads) {
    if (!valid_upload_name(upload.name)) {
      throw dali::usage_error(fmt::format("UPLOAD: table name '{}' must be a letter followed by letters, digits or _",
                                          upload.name.substr(0, 64)));
    }
    if (!upload_names.insert(adql::ascii_lower(upload.name)).second) {
      throw dali::usage_error("UPLOAD: table " + upload.name + " given twice");
    }
    adql::TableDef def;
    def.schema = "TAP_UPLOAD";
    def.name = upload.name;
    def.sql_name = conn->temp_table("tap_upload");
    def.description = "Uploaded table";
    std::set<std::string> names;
    std::vector<AdqlType> types;
    for (std::size_t i = 0; i < upload.table.fields.size(); ++i) {
      const auto& f = upload.table.fields[i];
      if (!names.insert(adql::ascii_lower(f.name)).second) {
        throw dali::usage_error(fmt::format("UPLOAD {}: two columns are named '{}'", upload.name, f.name.substr(0, 64)));
      }
      adql::ColumnDef c;
      c.name = f.name;
      c.type = upload_column_type(f);
      c.sql_name = fmt::format("c{}", i + 1);
      c.unit = f.unit;
      c.ucd = f.ucd;
      c.utype = f.utype;
      c.description = f.description;
      types.push_back(c.type);
      def.columns.push_back(std::move(c));
    }
    std::string create = "CREATE TEMP TABLE " + adql::quote_identifier(def.sql_name) + " (";
    std::string insert = "INSERT INTO " + conn->temp_prefix() + adql::quote_identifier(def.sql_name) + " VALUES (";
    for (std::size_t i = 0; i < def.columns.size(); ++i) {
      const AdqlType t = def.columns[i].type;
      create += fmt::format("{}c{} {}", i ? ", " : "", i + 1,
                            adql::is_integer(t) || t == AdqlType::boolean ? conn->integer_type()
                            : adql::is_numeric(t)                          ? conn->real_type()
                                                                           : "TEXT");
      insert += i ? ", ?" : "?";
    }
    conn->exec(create + ")");
    auto s = conn->prepare(insert + ")");
    conn->exec("BEGIN");
    for (const auto& row : upload.table.rows) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        s->bind(static_cast<int>(i + 1), upload_cell(row[i], types[i], def.columns[i].name));
      }
      try {
        s->step();
      } catch (const db::Unavailable&) {
        throw;  // cleanup() ends the transaction
      } catch (const db::DbError& e) {
        conn->exec("ROLLBACK");
        throw std::runtime_error(fmt::format("tap: storing an upload: {}", e.reason()));
      }
      s->reset();
    }
    conn->exec("COMMIT");
    catalog.add(std::move(def));
  }

  if (conn->dialect() == db::Dialect::postgresql) {
    // The user's query reads only; the server itself also stops it a little
    // after the deadline, in case this process is gone before it can cancel
    // it (the progress check cancels it at the deadline: check
    // pg_stat_activity). The transaction lasts as long as the cursor, and
    // so does the timeout: a result read slowly ends at the deadline too.
    // (It begins here: the index filters below read the registry.)
    conn->exec("BEGIN READ ONLY");
    if (request.deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*request.deadline -
                                                                              std::chrono::steady_clock::now());
      conn->exec(fmt::format("SET LOCAL statement_timeout = {}", std::max<std::int64_t>(left.count(), 0) + 2000));
    }
  }
  state->progress_check.emplace(conn->db(), state->interrupt);

  // ADQL -> SQL, with the HEALPix cell prefilter for spatial constraints on
  // ivoa.obscore (whose view exposes the dataset key the index refers to).
  adql::TranslateOptions topts;
  topts.dialect = conn->db().dialect();
  topts.max_rows = request.maxrec + 1;  // one more tells whether it overflows
  topts.parse.max_length = options_.settings.max_query_length;  // the setting, not the parser's default, decides
  topts.index_filter = [&](const adql::SpatialHint& hint) -> adql::IndexFilter {
    if (hint.table != "ivoa.obscore") return {};
    const bool centres = hint.kind == adql::SpatialHint::Kind::point_in_shape;
    // The index of centres holds (s_ra, s_dec): a point of other columns
    // (POINT(s_dec, s_ra), POINT(s_ra, em_min)) has no index.
    if (centres && hint.columns != std::vector<std::string>{"s_ra", "s_dec"}) return {};
    const std::string key = hint.sql_alias + ".dataset_key";
    if (conn->dialect() == db::Dialect::postgresql && !centres) {
      // PostgreSQL's own exact test of footprints (adql__intersects & co.,
      // PL/pgSQL) costs ~0.15 ms per candidate, most of a cone's time: the
      // footprints are tested here instead, and the query keeps the keys
      // that pass. (SQLite calls these same C++ functions in its query.)
      const auto candidates = state->guarded([&] {
        return repo::footprint_candidates(conn->db(), options_.index_order, {hint.shape},
                                          options_.exact_test_max_index_rows);
      });
      if (candidates) {
        // As an ARRAY of a subquery the keys are a value computed once,
        // not a list the planner estimates element by element.
        const std::string among_keys = fmt::format("{} = ANY (ARRAY(SELECT unnest(CAST({{}} AS BIGINT[]))))", key);
        if (hint.row_limit && !state->parts) {
          // A plain selection of rows: the keys come in parts, as its
          // parameter (QueryCursor::State::bind_next_part).
          state->parts.emplace(QueryCursor::State::FootprintParts{hint, *candidates});
          return {fmt::format(fmt::runtime(among_keys), "?"), true};
        }
        const auto matches = state->guarded([&] {
          std::size_t tested = 0;
          return matching_footprints(conn->db(), *candidates, tested, candidates->size(), hint);
        });
        return {fmt::format(fmt::runtime(among_keys),
                            adql::quote_string(repo::keys_parameter(db::Dialect::postgresql, matches))),
                true};
      }
    }
    // A point's candidates are the datasets centred in the cells of the
    // constant (center_cell), a region's those whose footprint has a cell
    // of its cover (footprint_cell).
    const auto ranges = centres ? repo::center_cell_ranges(hint.shape) : sky::cover(hint.shape, options_.index_order);
    if (ranges.empty()) return {};
    const std::string cells =
        fmt::format("{}.{}", db::main_schema(conn->dialect()), centres ? "center_cell" : "footprint_cell");
    // On PostgreSQL the candidates' keys are gathered first (an ARRAY of
    // the index's rows) and the visible rows then looked up by primary key:
    // as IN (SELECT ...), the planner may instead hash the candidates and
    // scan the whole dataset table to probe them (seconds at 10^6 rows).
    const auto among = [&](const std::string& candidates) {
      return conn->dialect() == db::Dialect::postgresql ? fmt::format("{} = ANY (ARRAY({}))", key, candidates)
                                                        : fmt::format("{} IN ({})", key, candidates);
    };
    if (ranges.size() <= options_.inline_ranges) {
      std::string any;
      for (const auto& r : ranges) any += fmt::format("{}f.cell BETWEEN {} AND {}", any.empty() ? "" : " OR ", r.first, r.last);
      return among(fmt::format("SELECT f.dataset_key FROM {} AS f WHERE {}", cells, any));
    }
    if (conn->dialect() == db::Dialect::postgresql) {
      // The ranges as two arrays joined to the index, as the registry's own
      // searches send them: nothing of the session (a standby runs it too).
      std::string lows, highs;
      for (const auto& r : ranges) {
        lows += fmt::format("{}{}", lows.empty() ? "" : ",", r.first);
        highs += fmt::format("{}{}", highs.empty() ? "" : ",", r.last);
      }
      return among(fmt::format("SELECT f.dataset_key FROM {} AS f JOIN unnest(CAST('{{{}}}' AS BIGINT[]), "
                               "CAST('{{{}}}' AS BIGINT[])) AS r (lo, hi) ON f.cell BETWEEN r.lo AND r.hi",
                               cells, lows, highs));
    }
    const std::string table = conn->temp_table("tap_hint");
    conn->exec(fmt::format("CREATE TEMP TABLE {0} (lo {1}, hi {1})", adql::quote_identifier(table), conn->integer_type()));
    auto ins = conn->prepare("INSERT INTO " + conn->temp_prefix() + adql::quote_identifier(table) + " VALUES (?, ?)");
    conn->exec("BEGIN");
    for (const auto& r : ranges) {
      ins->bind(1, r.first).bind(2, r.last);
      ins->step();
      ins->reset();
    }
    conn->exec("COMMIT");
    return among(fmt::format("SELECT f.dataset_key FROM {}{} AS r JOIN {} AS f ON f.cell BETWEEN r.lo AND r.hi",
                             conn->temp_prefix(), adql::quote_identifier(table), cells));
  };
  adql::Translation translation;
  try {
    translation = adql::translate(request.adql, catalog, topts);
  } catch (const adql::AdqlError& e) {
    throw dali::usage_error(std::string("QUERY: ") + e.what());
  } catch (const geo::GeometryError& e) {
    throw dali::usage_error(std::string("QUERY: ") + e.what());
  }

  state->sql = translation.sql;
  for (const auto& c : translation.columns) {
    state->fields.push_back(result_field(c.name, c.type, c.source ? &*c.source : nullptr));
    state->types.push_back(c.type);
  }

  // PostgreSQL: the tables the query reads travel with it (with_tables).
  const std::string sql = conn->dialect() == db::Dialect::postgresql
                              ? with_tables(translation.sql, request.viewer, request.base_url)
                              : translation.sql;
  try {
    state->statement = conn->db().prepare(sql);
  } catch (const db::Unavailable&) {
    throw;
  } catch (const db::DbError& e) {
    spdlog::warn("tap: SQL did not prepare: {} in: {}", e.reason(), translation.sql.substr(0, 500));
    throw dali::usage_error("QUERY cannot be run: " + std::string(e.reason()));
  }
  if (state->parts && !state->guarded([&] { return state->bind_next_part(); })) {
    state->statement->bind(1, repo::keys_parameter(db::Dialect::postgresql, {}));  // no candidate matches
  }
  // To the first row (or the end): what fails before it fails here, while
  // the caller can still answer with an error status.
  state->positioned = state->step();
  if (!state->positioned) state->finish();
  return QueryCursor(std::move(state));
}

}  // namespace pixserve::tap
