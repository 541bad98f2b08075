// A pixserve repository: a directory holding the survey's FITS files in a
// layout by collection, dataset type and data ID, plus the registry database
// that describes them. Created on first ingest.
//
//   REPO/pixserve-repo.json   configuration (name, authority, registry, index order, embargo)
//   REPO/registry.sqlite3     the registry (embedded default)
//   REPO/data/<collection>/<type>/<group>/<dataset_id>.fits
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parallel/progress.hpp"
#include "repo/dataset.hpp"
#include "repo/mapping.hpp"
#include "repo/registry.hpp"

namespace pixserve::repo {

struct RepositoryConfig {
  std::string name = "repo";                   // appears in publisher DIDs
  std::string authority = "pixserve.example";  // ivo://<authority>/<name>?<id>
  // The registry database: an SQLite file (relative to the repository, or
  // absolute), or a PostgreSQL server given by a libpq URL
  // (postgresql://user@host:port/dbname; the password from ~/.pgpass or
  // PGPASSWORD rather than the URL).
  std::string registry = "registry.sqlite3";
  int index_order = 9;                         // HEALPix order of the footprint index
  double embargo_hours = 6.0;                  // visit data released this long after acquisition
};

// Where a repository's registry database is, and how to connect to it:
// what every component that keeps its state beside the registry (tokens,
// UWS jobs, TAP's query connections) opens.
struct RegistryDatabase {
  std::string postgresql_url;                 // set for a PostgreSQL registry
  std::filesystem::path sqlite_file{};        // set for an SQLite registry

  static RegistryDatabase of(const std::filesystem::path& root, const RepositoryConfig& config);
  bool is_postgresql() const noexcept { return !postgresql_url.empty(); }
  // A new read-write connection (create: an SQLite file may be created).
  std::unique_ptr<db::Connection> connect(bool create = false) const;
};

// True for a registry location that names a PostgreSQL server.
bool is_postgresql_url(std::string_view location);

// The configuration file of the repository at root (written when it is
// created; its modification time dates the repository's registry records).
std::filesystem::path config_file(const std::filesystem::path& root);

// Points the repository at root to another registry database (after its
// rows were copied there: `pixserve registry migrate`); the configuration
// file is replaced atomically.
void set_registry_location(const std::filesystem::path& root, const std::string& location);

class Repository {
 public:
  // Opens an existing repository; throws std::runtime_error if root is not one.
  static Repository open(const std::filesystem::path& root);
  // Opens root, creating an empty repository with `if_new` when it is none yet.
  static Repository open_or_create(const std::filesystem::path& root, const RepositoryConfig& if_new);
  static bool exists(const std::filesystem::path& root);

  Repository(Repository&&) noexcept = default;
  Repository& operator=(Repository&&) noexcept = default;

  const std::filesystem::path& root() const noexcept { return root_; }
  const RepositoryConfig& config() const noexcept { return config_; }
  Registry& registry() { return *registry_; }
  RegistryDatabase registry_database() const { return RegistryDatabase::of(root_, config_); }

  // The publisher DID of a dataset: ivo://<authority>/<name>?<dataset_id>.
  std::string publisher_did(std::string_view dataset_id) const;
  // The dataset ID inside a publisher DID of this repository (or a bare
  // dataset ID); nullopt if it names another repository or is malformed.
  std::optional<std::string> dataset_id_from(std::string_view did_or_id) const;

  // Where a dataset's file lives, resolved and checked to stay inside the
  // repository (a forged file_path cannot escape it).
  std::filesystem::path file_of(const DatasetRecord& rec) const;
  // The relative path a new dataset's file gets.
  std::string layout_path(const DatasetRecord& rec, std::string_view extension) const;

 private:
  Repository(std::filesystem::path root, RepositoryConfig config, std::unique_ptr<Registry> registry);
  std::filesystem::path root_;
  RepositoryConfig config_;
  std::unique_ptr<Registry> registry_;
};

enum class Transfer { copy, hardlink, symlink };
std::optional<Transfer> transfer_from_string(std::string_view s);

struct IngestOptions {
  std::string collection = "DR1";
  Transfer transfer = Transfer::copy;
  bool skip_bad = false;     // report and skip bad files instead of failing the run
  std::string owner;         // owner of user images (and of everything, when set)
  ReadPolicy policy = ReadPolicy::public_;
  std::vector<std::string> groups;
  std::optional<double> embargo_hours;  // overrides the repository default
  unsigned threads = 0;                 // 0: one per core
  // Reads the files through this mapping instead of pixserve's own header
  // convention (docs/ingest-mapping.md); a rule's rights, collection and
  // embargo take precedence over the options above.
  std::shared_ptr<const Mapping> mapping{};
  bool dry_run = false;  // decide everything, register nothing (IngestReport::planned)
  // Registers for each new raw without a calexp, whose bias and flat are
  // registered or in this run, a virtual calexp (repo/virtual_products.hpp).
  bool virtual_calexps = true;
  // Registers for each new raw whose calexp is registered or in this run,
  // and for each registered raw that a new template patch covers, a virtual
  // difference image against the template patches (goodSeeingCoadd) of its
  // band made without its visit.
  bool virtual_diffims = true;
};

struct IngestReport {
  std::size_t files_seen = 0;
  std::size_t registered = 0;
  std::size_t virtual_registered = 0;  // virtual datasets registered (calexps and diffims)
  std::size_t virtual_diffims = 0;     // of which difference images
  std::size_t unchanged = 0;  // already registered with the same checksum
  std::vector<std::string> skipped;  // "file: reason", with skip_bad
  std::vector<DatasetRecord> planned;  // with dry_run: the records that would be registered
  // R-EFD tables (repo/efd.hpp): the CSV files read, their rows registered
  // (with dry_run: that would be), and those already registered as they are.
  std::size_t efd_files = 0;
  std::size_t efd_registered = 0;
  std::size_t efd_unchanged = 0;
  double seconds = 0.0;
};


// Registers the FITS files found under `inputs` (files or folders, searched
// recursively for *.fits, *.fit, *.fits.fz), and the rows of the R-EFD CSV
// files among them (efd/<table>.csv, repo/efd.hpp) in the same transaction.
// Atomic: either every new dataset is registered with its file in place and
// every new EFD row with it, or (on any error without skip_bad) the
// repository is left exactly as it was and IngestError or
// std::runtime_error names the culprit(s). An EFD row already registered
// with the same values is unchanged; with other values, a problem. With
// skip_bad, an EFD file with a problem is skipped whole.
IngestReport ingest(Repository& repo, const std::vector<std::filesystem::path>& inputs, const IngestOptions& options,
                    const ProgressCallback& progress = {});

// SHA-256 of a file's bytes, lowercase hex.
std::string sha256_file(const std::filesystem::path& file);
std::string sha256_text(std::string_view text);

}  // namespace pixserve::repo
