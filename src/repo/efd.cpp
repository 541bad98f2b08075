#include "repo/efd.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <variant>

#include <fmt/format.h>

namespace pixserve::repo::efd {
namespace {

using CT = ColumnType;

// Temperatures are in kelvin: VOUnit 1.0 knows no degree Celsius.
constexpr std::array<Column, 8> kWeatherColumns{{
    {"time_mjd", CT::real, "d", "time.epoch", "Time of the sample, MJD (TAI)", true, true},
    {"dimm_seeing", CT::real, "arcsec", "instr.obsty.seeing",
     "Seeing FWHM at 500 nm and zenith measured by the site monitor (DIMM)", true},
    {"air_temperature", CT::real, "K", "phys.temperature", "Outside air temperature", true},
    {"dome_temperature", CT::real, "K", "phys.temperature", "Air temperature inside the dome", false},
    {"wind_speed", CT::real, "m/s", "phys.veloc", "Wind speed", true},
    {"wind_direction", CT::real, "deg", "pos.az.azi", "Azimuth the wind comes from (north 0, east 90)", false},
    {"relative_humidity", CT::real, "%", "obs.atmos.humidity", "Relative humidity of the outside air", true},
    {"pressure", CT::real, "hPa", "phys.pressure", "Barometric pressure at the site", false},
}};

constexpr std::array<Column, 12> kVisitSummaryColumns{{
    {"visit", CT::bigint, "", "meta.id;obs", "Visit number (survey.visits, ivoa.obscore)", true, true},
    {"exposure", CT::bigint, "", "meta.id;obs", "Exposure number of the visit", false},
    {"t_start", CT::real, "d", "time.start;obs.exposure", "Start of the exposure, MJD (TAI)", true},
    {"t_end", CT::real, "d", "time.end;obs.exposure", "End of the exposure, MJD (TAI)", false},
    {"airmass", CT::real, "", "obs.airMass", "Airmass at mid-exposure", true},
    {"dimm_seeing", CT::real, "arcsec", "instr.obsty.seeing",
     "Mean site-monitor seeing FWHM during the exposure (at mid-exposure when no sample falls inside)", true},
    {"air_temperature", CT::real, "K", "phys.temperature", "Mean outside air temperature", true},
    {"dome_temperature", CT::real, "K", "phys.temperature", "Mean air temperature inside the dome",
     false},
    {"wind_speed", CT::real, "m/s", "phys.veloc", "Mean wind speed", true},
    {"wind_direction", CT::real, "deg", "pos.az.azi", "Mean (circular) azimuth the wind comes from", false},
    {"relative_humidity", CT::real, "%", "obs.atmos.humidity", "Mean relative humidity", true},
    {"pressure", CT::real, "hPa", "phys.pressure", "Mean barometric pressure", false},
}};

const std::array<Table, 2> kTables{{
    {"efd_weather", "weather",
     "Site weather telemetry, one sample every 30 s from 30 minutes before a night's first exposure to 30 minutes "
     "after its last; join with ivoa.obscore by time (time_mjd BETWEEN t_min AND t_max). Visible to everyone.",
     kWeatherColumns, 0, false},
    {"efd_visit_summary", "visit_summary",
     "The weather during each visit's exposure (the mean of the samples of efd.weather inside it) and its "
     "airmass, one row per visit; join with ivoa.obscore or survey.visits on visit. A row is visible to whoever "
     "may see at least one dataset of its visit.",
     kVisitSummaryColumns, 0, true},
}};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

// A field's value in the column's type, or what is wrong with it.
std::variant<db::Value, std::string> parse_value(std::string_view text, ColumnType type) {
  if (text.empty()) return std::string("empty value (every column needs a number)");
  std::string_view t = text;
  if (t.front() == '+') t.remove_prefix(1);
  if (type == ColumnType::bigint) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec == std::errc::result_out_of_range) return fmt::format("'{}' is out of the range of a 64-bit integer", text);
    if (ec != std::errc() || end != t.data() + t.size()) return fmt::format("'{}' is not an integer", text);
    return db::Value{v};
  }
  double v = 0.0;
  const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec == std::errc::result_out_of_range) return fmt::format("'{}' is out of the range of a double", text);
  if (ec != std::errc() || end != t.data() + t.size()) return fmt::format("'{}' is not a number", text);
  if (!std::isfinite(v)) return fmt::format("'{}' is not a finite number", text);
  return db::Value{v};
}

bool same_value(const db::Value& a, const db::Value& b) {
  const auto* x = std::get_if<double>(&a);
  const auto* y = std::get_if<double>(&b);
  if (x && y) return *x == *y || std::abs(*x - *y) <= 4e-16 * std::max(std::abs(*x), std::abs(*y));
  return a == b;
}

std::string column_list(const Table& table, std::string_view prefix = "") {
  std::string out;
  for (const auto& c : table.columns) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += c.name;
  }
  return out;
}

// The shortest text that reads back as the same value.
void append_value(std::string& out, const db::Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    fmt::format_to(std::back_inserter(out), "{}", *i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    fmt::format_to(std::back_inserter(out), "{}", *d);
  } else {
    out += "NULL";
  }
}

}  // namespace

std::size_t Table::find(std::string_view column) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == column) return i;
  }
  return columns.size();
}

std::span<const Table> tables() { return kTables; }

const Table* table_named(std::string_view name) {
  for (const auto& t : kTables) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const Table* table_of_file(const std::filesystem::path& file) {
  if (file.extension() != ".csv" || file.parent_path().filename() != "efd") return nullptr;
  return table_named(file.stem().string());
}

std::string schema_sql(db::Dialect dialect) {
  std::string sql;
  for (const auto& t : kTables) {
    sql += fmt::format("CREATE TABLE IF NOT EXISTS {} (\n", t.registry_name);
    for (const auto& c : t.columns) {
      sql += fmt::format("  {} {} NOT NULL,\n", c.name,
                         c.type == ColumnType::bigint ? db::integer_type(dialect) : db::real_type(dialect));
    }
    sql += fmt::format("  PRIMARY KEY ({})\n);\n", t.key_column().name);
  }
  return sql;
}

std::string value_text(const db::Value& v) {
  std::string out;
  append_value(out, v);
  return out;
}

CsvRows read_csv(const std::filesystem::path& file, const Table& table, std::vector<std::string>& problems) {
  CsvRows out;
  out.table = &table;
  out.file = file;
  const std::string where = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    problems.push_back(fmt::format("{}:1: (file): cannot be read", where));
    return out;
  }
  const std::size_t problems_before = problems.size();
  std::string line;
  std::size_t number = 0;
  // The header: the first line that is not blank.
  std::vector<std::size_t> column_of_field;  // table column of each field
  bool have_header = false;
  while (!have_header && std::getline(in, line)) {
    ++number;
    // A byte order mark, as spreadsheets write one, is no part of the first name.
    if (number == 1 && line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);
    if (trim(line).empty()) continue;
    have_header = true;
    const auto names = split_fields(line);
    std::vector<bool> seen(table.columns.size(), false);
    for (const auto name : names) {
      const std::size_t c = table.find(name);
      column_of_field.push_back(c);
      if (c == table.columns.size()) {
        problems.push_back(fmt::format("{}:{}: {}: not a column of {}.{}", where, number,
                                       name.empty() ? "(empty name)" : name, kTapSchema, table.name));
      } else if (seen[c]) {
        problems.push_back(fmt::format("{}:{}: {}: named twice in the header", where, number, name));
      } else {
        seen[c] = true;
      }
    }
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (!seen[c]) {
        problems.push_back(fmt::format("{}:{}: {}: missing from the header", where, number, table.columns[c].name));
      }
    }
  }
  if (!have_header) {
    problems.push_back(fmt::format("{}:{}: (header): the file is empty (a header row naming the columns of {}.{} is "
                                   "needed)", where, std::max<std::size_t>(number, 1), kTapSchema, table.name));
    return out;
  }
  if (problems.size() > problems_before) return out;  // the rows cannot be read without their columns

  std::map<db::Value, std::size_t> line_of_key;
  const Column& key = table.key_column();
  while (std::getline(in, line)) {
    ++number;
    if (trim(line).empty()) continue;
    const auto fields = split_fields(line);
    if (fields.size() != column_of_field.size()) {
      problems.push_back(fmt::format("{}:{}: (row): {} field{} where the header names {} columns", where, number,
                                     fields.size(), fields.size() == 1 ? "" : "s", column_of_field.size()));
      continue;
    }
    Row row(table.columns.size());
    bool ok = true;
    std::string key_text;
    for (std::size_t f = 0; f < fields.size(); ++f) {
      const Column& column = table.columns[column_of_field[f]];
      auto value = parse_value(fields[f], column.type);
      if (const auto* error = std::get_if<std::string>(&value)) {
        problems.push_back(fmt::format("{}:{}: {}: {}", where, number, column.name, *error));
        ok = false;
        continue;
      }
      row[column_of_field[f]] = std::get<db::Value>(value);
      if (column_of_field[f] == table.key) key_text = std::string(fields[f]);
    }
    if (!ok) continue;
    const auto [it, inserted] = line_of_key.emplace(row[table.key], number);
    if (!inserted) {
      problems.push_back(fmt::format("{}:{}: {}: {} repeats the key of line {}", where, number, key.name, key_text,
                                     it->second));
      continue;
    }
    out.rows.push_back(std::move(row));
    out.lines.push_back(number);
    out.key_texts.push_back(std::move(key_text));
  }
  if (in.bad()) problems.push_back(fmt::format("{}:{}: (file): read error", where, number));
  if (problems.size() > problems_before) {
    out.rows.clear();
    out.lines.clear();
    out.key_texts.clear();
  }
  return out;
}

bool same_row(const Row& a, const Row& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!same_value(a[i], b[i])) return false;
  }
  return true;
}

std::vector<Row> registered_rows(db::Connection& conn, const Table& table, std::span<const db::Value> keys) {
  std::vector<Row> out;
  if (keys.empty()) return out;
  // One range scan of the key's index between the smallest and the largest
  // key, the values bound as they are (a key written as text and read back
  // by the database might not be the same double); the caller matches the
  // rows to its keys.
  const auto [lo, hi] = std::minmax_element(keys.begin(), keys.end());
  auto s = conn.prepare(fmt::format("SELECT {} FROM {} WHERE {} BETWEEN ? AND ?", column_list(table),
                                    table.registry_name, table.key_column().name));
  s->bind(1, *lo).bind(2, *hi);
  while (s->step()) {
    Row row(table.columns.size());
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      const int i = static_cast<int>(c);
      if (s->is_null(i)) continue;
      row[c] = table.columns[c].type == ColumnType::bigint ? db::Value{s->get_int(i)} : db::Value{s->get_double(i)};
    }
    out.push_back(std::move(row));
  }
  return out;
}

void insert_rows(db::Connection& conn, const Table& table, std::span<const Row* const> rows) {
  if (rows.empty()) return;
  if (conn.dialect() == db::Dialect::postgresql) {
    // A round trip per batch rather than per row: one array per column.
    constexpr std::size_t kBatch = 2000;
    std::string casts;
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      casts += fmt::format("{}CAST(? AS {}[])", c ? ", " : "",
                           table.columns[c].type == ColumnType::bigint ? "BIGINT" : "DOUBLE PRECISION");
    }
    auto s = conn.prepare(fmt::format("INSERT INTO {} ({}) SELECT * FROM unnest({})", table.registry_name,
                                      column_list(table), casts));
    for (std::size_t start = 0; start < rows.size(); start += kBatch) {
      const std::size_t end = std::min(rows.size(), start + kBatch);
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        std::string array = "{";
        for (std::size_t r = start; r < end; ++r) {
          if (r > start) array += ',';
          append_value(array, (*rows[r])[c]);
        }
        array += '}';
        s->bind(static_cast<int>(c) + 1, array);
      }
      s->run();
      s->reset();
    }
    return;
  }
  std::string marks;
  for (std::size_t c = 0; c < table.columns.size(); ++c) marks += c ? ", ?" : "?";
  auto s = conn.prepare(
      fmt::format("INSERT INTO {} ({}) VALUES ({})", table.registry_name, column_list(table), marks));
  for (const Row* row : rows) {
    for (std::size_t c = 0; c < row->size(); ++c) s->bind(static_cast<int>(c) + 1, (*row)[c]);
    s->run();
    s->reset();
  }
}

}  // namespace pixserve::repo::efd
