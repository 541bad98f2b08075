#include "repo/repository.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include "parallel/parallel_for.hpp"
#include "repo/astro_units.hpp"
#include "repo/coadd_mosaics.hpp"
#include "repo/efd.hpp"
#include "repo/hdu_parts.hpp"
#include "repo/metadata.hpp"
#include "repo/virtual_products.hpp"

namespace fs = std::filesystem;

namespace pixserve::repo {
namespace {

constexpr const char* kConfigFile = "pixserve-repo.json";

}  // namespace

bool is_postgresql_url(std::string_view location) {
  return location.starts_with("postgresql://") || location.starts_with("postgres://");
}

RegistryDatabase RegistryDatabase::of(const fs::path& root, const RepositoryConfig& config) {
  RegistryDatabase d;
  if (is_postgresql_url(config.registry)) {
    d.postgresql_url = config.registry;
  } else {
    d.sqlite_file = fs::path(config.registry).is_absolute() ? fs::path(config.registry) : root / config.registry;
  }
  return d;
}

std::unique_ptr<db::Connection> RegistryDatabase::connect(bool create) const {
  if (is_postgresql()) return db::open_postgresql(postgresql_url);
  return db::open_sqlite(sqlite_file, create);
}

namespace {

void validate(const RepositoryConfig& c) {
  if (!is_safe_identifier(c.name)) throw std::invalid_argument(fmt::format("repository name '{}' is not a safe identifier", c.name));
  if (!is_safe_identifier(c.authority)) {
    throw std::invalid_argument(fmt::format("authority '{}' must be letters, digits, '.', '_', '-'", c.authority));
  }
  if (c.registry.empty()) throw std::invalid_argument("registry location is empty");
  if (c.index_order < 0 || c.index_order > 16) throw std::invalid_argument("index_order must be in 0..16");
  if (!(c.embargo_hours >= 0.0)) throw std::invalid_argument("embargo_hours must be >= 0");
}

RepositoryConfig read_config(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  RepositoryConfig c;
  try {
    const auto j = nlohmann::json::parse(in);
    c.name = j.at("name").get<std::string>();
    c.authority = j.at("authority").get<std::string>();
    c.registry = j.at("registry").get<std::string>();
    c.index_order = j.at("index_order").get<int>();
    c.embargo_hours = j.at("embargo_hours").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: invalid repository configuration: {}", file.string(), e.what()));
  }
  validate(c);
  return c;
}

void write_config(const fs::path& file, const RepositoryConfig& c) {
  const nlohmann::json j = {{"name", c.name},
                            {"authority", c.authority},
                            {"registry", c.registry},
                            {"index_order", c.index_order},
                            {"embargo_hours", c.embargo_hours}};
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << '\n';
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
  }
  fs::rename(tmp, file);
}

}  // namespace

void set_registry_location(const fs::path& root, const std::string& location) {
  RepositoryConfig config = read_config(root / kConfigFile);
  config.registry = location;
  validate(config);
  write_config(root / kConfigFile, config);
}

namespace {

std::unique_ptr<Registry> open_registry(const fs::path& root, const RepositoryConfig& c, bool create) {
  const auto database = RegistryDatabase::of(root, c);
  auto registry = std::make_unique<Registry>(database.connect(create), c.index_order);
  // The repository's identity is written once, by whoever creates the
  // registry; a PostgreSQL registry already holding another repository's
  // datasets is refused rather than taken over.
  auto& conn = registry->connection();
  auto put = conn.prepare("INSERT INTO registry_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING");
  auto get = conn.prepare("SELECT value FROM registry_meta WHERE key = ?");
  for (const auto& [key, value] : {std::pair<std::string, std::string>{"authority", c.authority}, {"name", c.name}}) {
    if (create) {
      put->bind(1, key).bind(2, value).run();
      put->reset();
    }
    get->bind(1, key);
    const auto stored = get->step() ? std::optional<std::string>(get->get_text(0)) : std::nullopt;
    get->reset();
    if (stored && *stored != value) {
      throw std::runtime_error(fmt::format("the registry at {} belongs to another repository ({} '{}', not '{}')",
                                           database.is_postgresql() ? database.postgresql_url : database.sqlite_file.string(),
                                           key, *stored, value));
    }
  }
  return registry;
}

bool is_fits_name(const fs::path& p) {
  const std::string name = p.filename().string();
  auto ends = [&](std::string_view suffix) { return name.size() > suffix.size() && name.ends_with(suffix); };
  return ends(".fits") || ends(".fit") || ends(".fits.fz") || ends(".fz");
}

std::string fits_extension(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.ends_with(".fz") ? ".fits.fz" : ".fits";
}

// Files under the inputs, sorted; unreadable paths are reported through bad.
// The R-EFD CSV files among them (repo/efd.hpp) go to efd_files, sorted.
std::vector<fs::path> collect_files(const std::vector<fs::path>& inputs, std::vector<std::string>& bad,
                                    std::vector<fs::path>& efd_files) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    std::error_code ec;
    const auto status = fs::status(input, ec);
    if (ec || !fs::exists(status)) {
      bad.push_back(fmt::format("{}: no such file or directory", input.string()));
      continue;
    }
    if (fs::is_directory(status)) {
      fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, ec);
      if (ec) {
        bad.push_back(fmt::format("{}: cannot read directory: {}", input.string(), ec.message()));
        continue;
      }
      for (const auto& entry : it) {
        if (!entry.is_regular_file()) continue;
        if (is_fits_name(entry.path())) {
          files.push_back(entry.path());
        } else if (efd::table_of_file(entry.path()) != nullptr) {
          efd_files.push_back(entry.path());
        }
      }
    } else if (fs::is_regular_file(status)) {
      (efd::table_of_file(input) != nullptr ? efd_files : files).push_back(input);
    } else {
      bad.push_back(fmt::format("{}: not a regular file or directory", input.string()));
    }
  }
  for (auto* list : {&files, &efd_files}) {
    std::sort(list->begin(), list->end());
    list->erase(std::unique(list->begin(), list->end()), list->end());
  }
  return files;
}

// What an ingest does with the R-EFD files: the rows read, and per table
// those to insert.
struct EfdPlan {
  std::deque<efd::CsvRows> files;
  std::map<const efd::Table*, std::vector<const efd::Row*>> new_rows;
  std::size_t new_count = 0;
  std::size_t unchanged = 0;
};

// Reads and checks every EFD file, and sorts its rows into new, unchanged
// (registered with the same values, or the same row in an earlier file of
// this run) and problems (registered, or in an earlier file, with other
// values). A file with any problem adds none of its rows: what skip_bad
// skips is the whole file.
EfdPlan plan_efd(Registry& registry, const std::vector<fs::path>& efd_files, std::vector<std::string>& problems,
                 const ProgressCallback& progress) {
  EfdPlan plan;
  // This run's rows by table and key: where each came from.
  std::map<const efd::Table*, std::map<db::Value, std::pair<const efd::CsvRows*, std::size_t>>> in_run;
  std::size_t done = 0;
  for (const auto& file : efd_files) {
    const efd::Table& table = *efd::table_of_file(file);
    std::vector<std::string> file_problems;
    efd::CsvRows rows = efd::read_csv(file, table, file_problems);
    std::vector<db::Value> keys;
    keys.reserve(rows.rows.size());
    for (const auto& row : rows.rows) keys.push_back(row[table.key]);
    std::map<db::Value, efd::Row> registered;
    for (auto& row : efd::registered_rows(registry.connection(), table, keys)) {
      registered.emplace(row[table.key], std::move(row));
    }
    auto& run_rows = in_run[&table];
    std::vector<std::size_t> fresh;
    std::size_t unchanged = 0;
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
      const efd::Row& row = rows.rows[i];
      const auto where = fmt::format("{}:{}", file.string(), rows.lines[i]);
      if (const auto earlier = run_rows.find(row[table.key]); earlier != run_rows.end()) {
        const auto& [other, index] = earlier->second;
        if (!efd::same_row(other->rows[index], row)) {
          file_problems.push_back(fmt::format("{}: {} {} is also in {}:{} with different values", where,
                                              table.key_column().name, rows.key_texts[i], other->file.string(),
                                              other->lines[index]));
        }
        continue;
      }
      if (const auto it = registered.find(row[table.key]); it != registered.end()) {
        if (efd::same_row(it->second, row)) {
          ++unchanged;
        } else {
          file_problems.push_back(fmt::format("{}: {} {} is already registered with different values", where,
                                              table.key_column().name, rows.key_texts[i]));
        }
        continue;
      }
      fresh.push_back(i);
    }
    if (progress) progress("efd", ++done, efd_files.size());
    if (!file_problems.empty()) {
      // A telemetry file has many rows: the first problems say what is
      // wrong, the count how much.
      constexpr std::size_t kShown = 20;
      const std::size_t more = file_problems.size() > kShown ? file_problems.size() - kShown : 0;
      problems.insert(problems.end(), file_problems.begin(), file_problems.end() - static_cast<std::ptrdiff_t>(more));
      if (more > 0) problems.push_back(fmt::format("{}: {} more problems", file.string(), more));
      continue;
    }
    const efd::CsvRows& kept = plan.files.emplace_back(std::move(rows));
    for (std::size_t i = 0; i < kept.rows.size(); ++i) run_rows.emplace(kept.rows[i][table.key], std::pair{&kept, i});
    auto& new_rows = plan.new_rows[&table];
    for (const auto i : fresh) new_rows.push_back(&kept.rows[i]);
    plan.new_count += fresh.size();
    plan.unchanged += unchanged;
  }
  return plan;
}

void place_file(const fs::path& source, const fs::path& target, Transfer transfer) {
  fs::create_directories(target.parent_path());
  std::error_code ec;
  switch (transfer) {
    case Transfer::hardlink:
      fs::create_hard_link(source, target, ec);
      if (!ec) return;
      [[fallthrough]];  // other filesystem: copy instead
    case Transfer::copy:
      fs::copy_file(source, target, fs::copy_options::overwrite_existing);
      return;
    case Transfer::symlink:
      fs::create_symlink(fs::absolute(source), target);
      return;
  }
}

struct Prepared {
  fs::path source;
  DatasetRecord record;
  std::string extension;
  const MappingRule* rule = nullptr;  // the mapping rule that read it, if any
};

// A file's path relative to the ingest argument it was found under ('/'
// separated): what a mapping's path globs see.
std::string relative_to_inputs(const fs::path& file, const std::vector<fs::path>& inputs) {
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      const auto rel = file.lexically_relative(input);
      if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
    } else if (file == input) {
      return file.filename().generic_string();
    }
  }
  return file.filename().generic_string();
}

// Removes a staging folder and anything moved out of it on failure.
class StagingArea {
 public:
  explicit StagingArea(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  StagingArea(const StagingArea&) = delete;
  StagingArea& operator=(const StagingArea&) = delete;
  ~StagingArea() {
    std::error_code ec;
    if (!committed_) {
      for (const auto& f : placed_) fs::remove(f, ec);
    }
    fs::remove_all(dir_, ec);
  }
  const fs::path& dir() const { return dir_; }
  void placed(fs::path final_file) { placed_.push_back(std::move(final_file)); }
  void commit() { committed_ = true; }

 private:
  fs::path dir_;
  std::vector<fs::path> placed_;
  bool committed_ = false;
};

}  // namespace

std::optional<Transfer> transfer_from_string(std::string_view s) {
  if (s == "copy") return Transfer::copy;
  if (s == "hardlink") return Transfer::hardlink;
  if (s == "symlink") return Transfer::symlink;
  return std::nullopt;
}

namespace {

// Incremental SHA-256 over OpenSSL's EVP interface, as hex.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) throw std::runtime_error("sha256: init failed");
  }
  void add(const void* data, size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest.data(), &length);
    std::string out;
    for (unsigned i = 0; i < length; ++i) out += fmt::format("{:02x}", digest[i]);
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
};

}  // namespace

std::string sha256_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open for reading", file.string()));
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = in.gcount();
    if (n > 0) sha.add(buffer.data(), static_cast<size_t>(n));
  }
  if (in.bad()) throw std::runtime_error(fmt::format("{}: read error", file.string()));
  return sha.hex();
}

std::string sha256_text(std::string_view text) {
  Sha256 sha;
  sha.add(text.data(), text.size());
  return sha.hex();
}

Repository::Repository(fs::path root, RepositoryConfig config, std::unique_ptr<Registry> registry)
    : root_(std::move(root)), config_(std::move(config)), registry_(std::move(registry)) {}

fs::path config_file(const fs::path& root) { return root / kConfigFile; }

bool Repository::exists(const fs::path& root) { return fs::is_regular_file(root / kConfigFile); }

Repository Repository::open(const fs::path& root) {
  if (!exists(root)) throw std::runtime_error(fmt::format("{} is not a pixserve repository (no {})", root.string(), kConfigFile));
  const fs::path canonical = fs::canonical(root);
  auto config = read_config(canonical / kConfigFile);
  auto registry = open_registry(canonical, config, false);
  // A registry upgraded from schema version 4 learns its files' HDUs (the
  // CAOM2 parts) from their headers.
  const auto filled = registry->fill_pending_parts(
      [&](const std::string& file_path) {
        const fs::path relative(file_path);
        if (relative.is_absolute() || file_path.find("..") != std::string::npos) {
          throw std::runtime_error("unsafe file path");
        }
        return read_hdu_parts(canonical / relative);
      },
      [](const std::string& id, const std::string& why) {
        spdlog::warn("registry upgrade: dataset {} keeps no CAOM2 parts: {}", id, why);
      });
  if (filled > 0) spdlog::info("registry upgrade: the HDUs of {} stored datasets registered", filled);
  return Repository(canonical, std::move(config), std::move(registry));
}

Repository Repository::open_or_create(const fs::path& root, const RepositoryConfig& if_new) {
  if (exists(root)) return open(root);
  validate(if_new);
  fs::create_directories(root);
  const fs::path canonical = fs::canonical(root);
  auto registry = open_registry(canonical, if_new, true);
  // The configuration file is written last: its presence marks a complete repository.
  write_config(canonical / kConfigFile, if_new);
  return Repository(canonical, if_new, std::move(registry));
}

std::string Repository::publisher_did(std::string_view dataset_id) const {
  return fmt::format("ivo://{}/{}?{}", config_.authority, config_.name, dataset_id);
}

std::optional<std::string> Repository::dataset_id_from(std::string_view did_or_id) const {
  const std::string prefix = fmt::format("ivo://{}/{}?", config_.authority, config_.name);
  std::string_view id = did_or_id;
  if (did_or_id.starts_with("ivo://")) {
    // IVOA identifiers compare case-insensitively up to the query part.
    if (did_or_id.size() <= prefix.size()) return std::nullopt;
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(did_or_id[i])) != std::tolower(static_cast<unsigned char>(prefix[i]))) {
        return std::nullopt;
      }
    }
    id = did_or_id.substr(prefix.size());
  }
  if (!is_safe_identifier(id)) return std::nullopt;
  return std::string(id);
}

std::string Repository::layout_path(const DatasetRecord& rec, std::string_view extension) const {
  std::string group;
  const auto& id = rec.data_id;
  if (is_visit_based(rec.type) && id.visit) {
    group = fmt::format("v{}", *id.visit);
  } else if (is_coadd(rec.type) && id.tract) {
    group = fmt::format("{}/t{}", id.band, *id.tract);
  } else if (is_calibration(rec.type)) {
    group = id.band.empty() ? "all" : id.band;
  } else {
    group = rec.rights.owner.empty() ? "user" : rec.rights.owner;
  }
  return fmt::format("data/{}/{}/{}/{}{}", rec.collection, to_string(rec.type), group, rec.dataset_id, extension);
}

fs::path Repository::file_of(const DatasetRecord& rec) const {
  const fs::path relative(rec.file_path);
  if (relative.is_absolute() || rec.file_path.find("..") != std::string::npos) {
    throw std::runtime_error(fmt::format("dataset {} has an unsafe file path", rec.dataset_id));
  }
  return root_ / relative;
}

IngestReport ingest(Repository& repo, const std::vector<fs::path>& inputs, const IngestOptions& options,
                    const ProgressCallback& progress) {
  const auto started = std::chrono::steady_clock::now();
  IngestReport report;
  if (!is_safe_identifier(options.collection)) {
    throw std::invalid_argument(fmt::format("collection name '{}' must be letters, digits, '.', '_', '-'", options.collection));
  }
  std::vector<std::string> problems;
  std::vector<fs::path> efd_files;
  const auto files = collect_files(inputs, problems, efd_files);
  report.files_seen = files.size();
  report.efd_files = efd_files.size();

  // 1. Read headers and checksums in parallel.
  std::vector<std::optional<Prepared>> prepared(files.size());
  std::vector<std::string> file_problems(files.size());
  std::atomic<std::size_t> done{0};
  std::mutex progress_mutex;
  MetadataOptions meta_options{options.collection, options.owner};
  parallel::parallel_for(files.size(), options.threads, [&](std::size_t i) {
    try {
      Prepared p;
      p.source = files[i];
      p.extension = fits_extension(files[i]);
      if (options.mapping) {
        auto mapped = read_mapped_metadata(files[i], relative_to_inputs(files[i], inputs), *options.mapping, meta_options);
        p.record = std::move(mapped.record);
        p.rule = mapped.rule;
      } else {
        p.record = read_dataset_metadata(files[i], meta_options);
      }
      p.record.checksum = sha256_file(files[i]);
      p.record.file_size = static_cast<std::int64_t>(fs::file_size(files[i]));
      prepared[i] = std::move(p);
    } catch (const std::exception& e) {
      file_problems[i] = e.what();
    }
    const auto n = ++done;
    if (progress) {
      const std::lock_guard lock(progress_mutex);
      progress("read", n, files.size());
    }
  });
  for (const auto& p : file_problems) {
    if (!p.empty()) problems.push_back(p);
  }
  if (options.mapping) {
    // A rule whose glob finds no file is a mistake in the mapping (a typo in
    // the pattern), not a quiet no-op.
    for (const auto& rule : options.mapping->rules()) {
      if (rule.glob.empty()) continue;
      const bool used = std::any_of(files.begin(), files.end(), [&](const fs::path& f) {
        return glob_match(rule.glob, relative_to_inputs(f, inputs));
      });
      if (!used) {
        problems.push_back(fmt::format("{}: rule '{}': its path '{}' matches none of the {} files",
                                       options.mapping->where(rule.line), rule.name, rule.glob, files.size()));
      }
    }
  }

  // 2. Decide what is new, what is unchanged and what conflicts.
  Registry& registry = repo.registry();
  std::map<std::string, const Prepared*> new_by_id;
  std::vector<Prepared*> to_register;
  for (auto& p : prepared) {
    if (!p) continue;
    DatasetRecord& rec = p->record;
    if (const auto it = new_by_id.find(rec.dataset_id); it != new_by_id.end()) {
      if (it->second->record.checksum == rec.checksum) continue;  // the same file twice
      problems.push_back(fmt::format("{}: duplicate dataset {} (also in {}, with different content)",
                                     p->source.string(), rec.dataset_id, it->second->source.string()));
      continue;
    }
    if (const auto existing = registry.checksum_of(rec.dataset_id)) {
      if (*existing == rec.checksum) {
        ++report.unchanged;
        continue;
      }
      problems.push_back(fmt::format("{}: dataset {} is already registered with different content",
                                     p->source.string(), rec.dataset_id));
      continue;
    }
    // Rights: a mapping rule's, else the options'.
    const bool rule_rights = p->rule != nullptr && p->rule->policy;
    if (!options.owner.empty() && !(p->rule != nullptr && p->rule->owner)) rec.rights.owner = options.owner;
    if (!rule_rights) {
      rec.rights.policy = options.policy;
      rec.rights.groups = options.groups;
    }
    const double embargo = p->rule != nullptr && p->rule->embargo_hours
                               ? *p->rule->embargo_hours
                               : options.embargo_hours.value_or(repo.config().embargo_hours);
    if (rec.t_max && (is_visit_based(rec.type))) rec.rights.release_mjd = *rec.t_max + embargo / 24.0;
    rec.file_path = repo.layout_path(rec, p->extension);
    new_by_id.emplace(rec.dataset_id, &*p);
    to_register.push_back(&*p);
  }
  const EfdPlan efd_plan = plan_efd(registry, efd_files, problems, progress);
  if (!problems.empty()) {
    if (!options.skip_bad) {
      std::string message = fmt::format("ingest failed, nothing was registered ({} problem{}):", problems.size(),
                                        problems.size() == 1 ? "" : "s");
      for (const auto& p : problems) message += "\n  " + p;
      throw std::runtime_error(message);
    }
    report.skipped = problems;
  }
  // Virtual calexps of the new raws whose calibrations are known.
  std::vector<DatasetRecord> virtual_records;
  if (options.virtual_calexps) {
    std::map<std::string, KnownDataset> known;
    for (const auto& [id, p] : new_by_id) known.emplace(id, KnownDataset{p->record.checksum});
    for (const Prepared* p : to_register) {
      if (auto v = virtual_calexp_of(p->record, known, registry)) {
        known.emplace(v->dataset_id, KnownDataset{v->checksum});
        virtual_records.push_back(std::move(*v));
      }
    }
  }
  if (options.virtual_diffims) {
    std::map<std::string, KnownDataset> known;
    for (const auto& [id, p] : new_by_id) known.emplace(id, KnownDataset{p->record.checksum});
    for (const auto& v : virtual_records) known.emplace(v.dataset_id, KnownDataset{v.checksum});
    std::vector<const DatasetRecord*> new_records;
    for (const Prepared* p : to_register) new_records.push_back(&p->record);
    // The templates' inputs may be this run's virtual calexps.
    for (const auto& v : virtual_records) new_records.push_back(&v);
    const auto templates = template_patches(new_records, registry);
    // This run's raws, and the registered raws that this run's templates cover.
    std::vector<DatasetRecord> raws;
    for (const Prepared* p : to_register) {
      if (p->record.type == DatasetType::raw) raws.push_back(p->record);
    }
    DatasetQuery covered;
    covered.dataset_types = {std::string(to_string(DatasetType::raw))};
    for (const Prepared* p : to_register) {
      if (p->record.type == DatasetType::goodSeeingCoadd && p->record.footprint) {
        covered.regions.emplace_back(*p->record.footprint);
      }
    }
    if (!covered.regions.empty()) {
      for (auto& r : registry.find(covered)) raws.push_back(std::move(r));
    }
    for (const auto& raw : raws) {
      if (auto d = virtual_diffim_of(raw, known, templates, registry)) {
        known.emplace(d->dataset_id, KnownDataset{d->checksum});
        virtual_records.push_back(std::move(*d));
        ++report.virtual_diffims;
      }
    }
  }
  report.efd_registered = efd_plan.new_count;
  report.efd_unchanged = efd_plan.unchanged;
  if (options.dry_run) {
    for (const Prepared* p : to_register) report.planned.push_back(p->record);
    for (const auto& v : virtual_records) report.planned.push_back(v);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return report;
  }

  // 3. Stage files, register datasets and EFD rows in one transaction, move
  // files into place, commit.
  if (!to_register.empty() || efd_plan.new_count > 0) {
    std::optional<StagingArea> staging;
    if (!to_register.empty()) {
      staging.emplace(repo.root() / fmt::format(".staging-{}-{}", ::getpid(),
                                                std::chrono::steady_clock::now().time_since_epoch().count()));
    }
    done = 0;
    parallel::parallel_for(to_register.size(), options.threads, [&](std::size_t i) {
      const Prepared& p = *to_register[i];
      place_file(p.source, staging->dir() / p.record.file_path, options.transfer);
      const auto n = ++done;
      if (progress) {
        const std::lock_guard lock(progress_mutex);
        progress("transfer", n, to_register.size());
      }
    });
    db::Transaction tx(registry.connection());
    std::size_t inserted = 0;
    for (const Prepared* p : to_register) {
      registry.insert(p->record);
      if (progress && (++inserted % 100 == 0 || inserted == to_register.size())) {
        progress("register", inserted, to_register.size());
      }
    }
    for (const auto& v : virtual_records) registry.insert(v);
    // The logical coadds (repo/coadd_mosaics.hpp) of the bands with new patches.
    std::set<CoaddGroup> coadd_groups;
    for (const Prepared* p : to_register) {
      if (auto g = coadd_group_of(p->record)) coadd_groups.insert(std::move(*g));
    }
    refresh_coadd_mosaics(registry, coadd_groups);
    std::size_t efd_inserted = 0;
    for (const auto& [table, rows] : efd_plan.new_rows) {
      efd::insert_rows(registry.connection(), *table, rows);
      efd_inserted += rows.size();
      if (progress && !rows.empty()) progress("efd rows", efd_inserted, efd_plan.new_count);
    }
    for (const Prepared* p : to_register) {
      const fs::path final_file = repo.root() / p->record.file_path;
      fs::create_directories(final_file.parent_path());
      fs::rename(staging->dir() / p->record.file_path, final_file);
      staging->placed(final_file);
    }
    tx.commit();
    if (staging) staging->commit();
    report.registered = to_register.size();
    report.virtual_registered = virtual_records.size();
  }
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return report;
}

}  // namespace pixserve::repo
