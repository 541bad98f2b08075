// bench/rows: the row path of TAP and SIA, one thread, in rows per second:
//   - cursor: the raw read of `SELECT <every ObsCore column>` from TAP's
//     visible-rows view, each column read as its ObsCore datatype says and
//     nothing kept or written (what the database alone costs);
//   - TAP cells: TapEngine::run of SELECT * FROM ivoa.obscore (the cursor
//     plus the conversion of each cell to a votable::Value, s_region parsed
//     from STC-S into a DALI polygon);
//   - TAP write: those rows written by dali::write_table in TABLEDATA,
//     BINARY2 and CSV to a sink that only counts bytes (the writer's share);
//   - SIA: the ObsCore rows of DatasetRecords alone, made new per record
//     (ObscoreColumns::row, as the datasets query and HiPS make them) and
//     refilled (ObscoreRows, as SIA makes them), then made and written in
//     each format as SIA does.
// The rows are ObsCore-like: every ObsCore column and the survey's, strings
// with characters to escape, doubles, NULLs and s_region polygons.
//
//   build/bench/bench_rows [--rows N] [--repeat R] [--dir DIR] [--keep] [--only cursor|tap|sia]
//
// --keep keeps the synthetic registry in DIR and uses it again in later
// runs. Each figure is the median of R runs, with the range of the R runs.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "dali/results.hpp"
#include "db/database.hpp"
#include "repo/obscore_schema.hpp"
#include "services/links.hpp"
#include "services/obscore_fields.hpp"
#include "services/repository_access.hpp"
#include "services/sia.hpp"
#include "services/tap.hpp"
#include "synthetic_registry.hpp"
#include "tap/query.hpp"
#include "tap/schema.hpp"

namespace fs = std::filesystem;
using namespace pixserve;
using Clock = std::chrono::steady_clock;

namespace {

constexpr double kTabledataTarget = 100'000;  // rows/s/core (the scale issue's goal)

// Like bench::make_synthetic_repository, with the optional ObsCore columns
// filled in part of the rows so that the rows mix values and NULLs, and
// strings that need escaping.
repo::Repository make_obscore_registry(const fs::path& root, std::int64_t rows) {
  auto repository = repo::Repository::open_or_create(root, {});
  const bench::SyntheticField field;
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> ra(field.ra_min, field.ra_max), dec(field.dec_min, field.dec_max),
      unit(0.0, 1.0);
  constexpr std::string_view bands = "ugrizy";
  db::Transaction tx(repository.registry().connection());
  for (std::int64_t i = 0; i < rows; ++i) {
    const double a = ra(rng), d = dec(rng);
    repo::DatasetRecord r = bench::synthetic_calexp(i, a, d);
    r.data_id.visit = 1'000'000 + i / 189;
    r.data_id.exposure = *r.data_id.visit;
    r.data_id.raft = fmt::format("R{}{}", (i % 189) / 45, (i % 189) / 9 % 5);
    r.data_id.detector_name = fmt::format("S{}{}", i % 9 / 3, i % 3);
    r.data_id.band = std::string(1, bands[static_cast<std::size_t>(i / 189) % bands.size()]);
    r.data_id.physical_filter = r.data_id.band + "_sim_1.4";
    r.dataset_id = repo::make_dataset_id("DR1", r.type, r.data_id);
    r.pixel_scale_arcsec = 0.2;
    r.width = 4072;
    r.height = 4000;
    r.t_exptime = 30.0;
    r.facility_name = "Simulated Survey Telescope";
    r.instrument_name = "SimCam";
    // A third without a target; some names with characters XML escapes.
    if (i % 3 != 0) r.target_name = i % 7 == 0 ? "field<1> & \"deep\"" : fmt::format("field{}", i % 50);
    if (unit(rng) < 0.8) {  // observing conditions measured for most images
      r.seeing = 0.5 + unit(rng);
      r.airmass = 1.0 + unit(rng);
      r.sky_background = 1000.0 * unit(rng);
      r.zero_point = 27.0 + unit(rng);
      r.psf_fwhm = 0.6 + unit(rng);
    }
    r.file_size = 20'000'000 + i;
    r.rights.release_mjd = 59000.0 + static_cast<double>(i % 1000) * 0.25;
    repository.registry().insert(r);
  }
  tx.commit();
  return repository;
}

// Median and range of repeated rates.
struct Rate {
  double median = 0, low = 0, high = 0;
};

Rate rate_of(std::vector<double> rates) {
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], rates.front(), rates.back()};
}

// Runs fn `repeat` times; fn returns the rows it handled.
Rate measure(int repeat, const std::function<std::size_t()>& fn) {
  std::vector<double> rates;
  for (int k = 0; k < repeat; ++k) {
    const auto t0 = Clock::now();
    const std::size_t rows = fn();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    rates.push_back(static_cast<double>(rows) / s);
  }
  return rate_of(std::move(rates));
}

std::string describe(const Rate& r) {
  return fmt::format("{:>9.0f} rows/s (range {:.0f}-{:.0f})", r.median, r.low, r.high);
}

struct Format {
  std::string_view name;
  dali::TableFormat format;
};
constexpr Format kFormats[] = {{"TABLEDATA", dali::TableFormat::votable_tabledata},
                               {"BINARY2", dali::TableFormat::votable_binary2},
                               {"CSV", dali::TableFormat::csv}};

// How the cursor reads a column: as its ObsCore datatype says.
enum class Read { integer, real, text };

std::vector<Read> obscore_reads() {
  std::vector<Read> reads;
  for (const auto& c : repo::obscore_columns()) {
    const auto t = votable::parse_datatype(c.datatype);
    const bool array = !c.arraysize.empty();
    if (!array && (t == votable::Datatype::double_ || t == votable::Datatype::float_))
      reads.push_back(Read::real);
    else if (!array && t != votable::Datatype::char_ && t != votable::Datatype::unicodeChar)
      reads.push_back(Read::integer);
    else
      reads.push_back(Read::text);
  }
  return reads;
}

// The raw cursor: every column of the view, read and dropped (the reads are
// virtual calls into SQLite, which the compiler cannot leave out).
std::size_t read_cursor(db::Connection& db, const std::string& sql, const std::vector<Read>& reads) {
  auto stmt = db.prepare(sql);
  std::size_t rows = 0;
  while (stmt->step()) {
    for (std::size_t i = 0; i < reads.size(); ++i) {
      const int column = static_cast<int>(i);
      if (stmt->is_null(column)) continue;
      switch (reads[i]) {
        case Read::integer: static_cast<void>(stmt->get_int(column)); break;
        case Read::real: static_cast<void>(stmt->get_double(column)); break;
        case Read::text: static_cast<void>(stmt->get_text(column)); break;
      }
    }
    ++rows;
  }
  return rows;
}

std::uint64_t write_rows(dali::TableFormat format, const dali::TableResult& table, std::int64_t maxrec) {
  std::uint64_t bytes = 0;
  dali::write_table([&bytes](std::string_view chunk) { bytes += chunk.size(); },
                    {format, ""}, maxrec, table);
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t rows = 100'000;
  int repeat = 5;
  fs::path dir = fs::temp_directory_path() / "pixserve-bench-rows";
  bool keep = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--keep")) {
      keep = true;
    } else if (has_value && !std::strcmp(argv[i], "--rows")) {
      rows = std::stoll(argv[++i]);
    } else if (has_value && !std::strcmp(argv[i], "--repeat")) {
      repeat = std::max(1, std::stoi(argv[++i]));
    } else if (has_value && !std::strcmp(argv[i], "--dir")) {
      dir = argv[++i];
    } else if (has_value && !std::strcmp(argv[i], "--only")) {
      only = argv[++i];
    } else {
      fmt::print(stderr, "usage: bench_rows [--rows N] [--repeat R] [--dir DIR] [--keep] [--only cursor|tap|sia]\n");
      return 2;
    }
  }
  const auto stage = [&](std::string_view name) { return only.empty() || only == name; };

  const fs::path root = dir / fmt::format("obscore-{}", rows);
  const bool reuse = keep && fs::exists(root / "pixserve-repo.json");
  if (!reuse) {
    fs::remove_all(root);
    const auto t0 = Clock::now();
    make_obscore_registry(root, rows);
    fmt::print("registry: {} ObsCore rows made in {:.1f} s\n", rows, bench::ms_since(t0) / 1000);
  }
  auto repository = std::make_shared<services::SharedRepository>(repo::Repository::open(root));
  fmt::print("{} ObsCore rows ({} columns), one thread, median of {} runs\n", rows, repo::obscore_columns().size(),
             repeat);

  if (stage("cursor")) {
    // The same view TAP reads (visible rows of an anonymous caller).
    db::SqliteOptions so;
    so.read_only = true;
    so.one_thread_at_a_time = true;
    auto db = db::open_sqlite(repository->root() / repository->config().registry, so);
    const std::string links = services::links::endpoint(services::links::kDatalink, "links");
    for (const auto& sql : tap::views_sql({}, links, db->dialect())) db->exec(sql);
    std::string columns;
    for (const auto& c : repo::obscore_columns()) columns += fmt::format("{}{}", columns.empty() ? "" : ", ", c.name);
    const std::string sql = "SELECT " + columns + " FROM temp.tap_ivoa_obscore";
    const auto reads = obscore_reads();
    const Rate cursor = measure(repeat, [&] { return read_cursor(*db, sql, reads); });
    fmt::print("{:<28} {}\n", "cursor read (no writing)", describe(cursor));
  }

  if (stage("tap")) {
    tap::TapSettings settings;
    settings.max_result_bytes = std::uint64_t{1} << 40;
    const auto engine = services::make_tap_engine(*repository, settings);
    tap::QueryRequest request;
    request.adql = "SELECT * FROM ivoa.obscore";
    request.maxrec = rows;
    tap::QueryResult result;
    fmt::print("{:<28} {}\n", "TAP cursor -> cells", describe(measure(repeat, [&] {
                 result = engine->run(request);
                 return result.rows.size();
               })));
    dali::TableResult table;
    table.name = "result";
    table.fields = result.fields;
    table.rows = [&result](const dali::RowSink& emit) {
      for (const auto& row : result.rows)
        if (!emit(row)) return;
    };
    for (const auto& f : kFormats) {
      std::uint64_t bytes = 0;
      const Rate r = measure(repeat, [&] {
        bytes = write_rows(f.format, table, rows);
        return result.rows.size();
      });
      fmt::print("TAP write {:<18} {} {:6.1f} MB/s{}\n", f.name, describe(r),
                 r.median * static_cast<double>(bytes) / static_cast<double>(result.rows.size()) / 1e6,
                 f.format == dali::TableFormat::votable_tabledata
                     ? fmt::format("  (target {:.0f}/s/core for TABLEDATA)", kTabledataTarget)
                     : "");
    }
  }

  if (stage("sia")) {
    repo::DatasetQuery query;
    query.limit = static_cast<std::size_t>(rows);
    const auto records = repository->find_visible(query);
    const auto& columns = services::sia_columns();
    const std::string base = "http://localhost:8080";
    const std::string did_prefix = repository->publisher_did("");
    // What /api/datasets/query and HiPS do: a new row per record.
    fmt::print("{:<28} {}\n", "ObsCore rows, row()", describe(measure(repeat, [&] {
                 std::size_t cells = 0;
                 for (const auto& r : records)
                   cells += columns.row({r, repository->publisher_did(r.dataset_id), base}).size();
                 return cells / columns.fields().size();
               })));
    // What SIA does: one row refilled per record.
    fmt::print("{:<28} {}\n", "ObsCore rows, ObscoreRows", describe(measure(repeat, [&] {
                 services::ObscoreRows builder(columns, did_prefix, base);
                 std::size_t cells = 0;
                 for (const auto& r : records) cells += builder.row(r).size();
                 return cells / columns.fields().size();
               })));
    dali::TableResult table;
    table.name = "results";
    table.fields = columns.fields();
    table.rows = [&](const dali::RowSink& emit) {
      services::ObscoreRows builder(columns, did_prefix, base);
      for (const auto& r : records)
        if (!emit(builder.row(r))) return;
    };
    for (const auto& f : kFormats) {
      std::uint64_t bytes = 0;
      const Rate r = measure(repeat, [&] {
        bytes = write_rows(f.format, table, rows);
        return records.size();
      });
      fmt::print("SIA rows + write {:<11} {} {:6.1f} MB/s{}\n", f.name, describe(r),
                 r.median * static_cast<double>(bytes) / static_cast<double>(records.size()) / 1e6,
                 f.format == dali::TableFormat::votable_tabledata
                     ? fmt::format("  (target {:.0f}/s/core for TABLEDATA)", kTabledataTarget)
                     : "");
    }
  }
  if (!keep) fs::remove_all(root);
  return 0;
}
