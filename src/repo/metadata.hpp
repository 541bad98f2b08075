// Reading a survey FITS file's headers and WCS into a DatasetRecord through
// an ingest mapping: the built-in one (docs/mappings/pixserve-sim.yaml, the
// simulator's convention of docs/fits-conventions.md) or a survey's own.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "repo/dataset.hpp"
#include "repo/mapping.hpp"

namespace pixserve::repo {

// A file that cannot be registered; the message names the file and the reason.
class IngestError : public std::runtime_error {
 public:
  IngestError(const std::filesystem::path& file, const std::string& reason);
  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  std::filesystem::path file_;
};

struct MetadataOptions {
  std::string collection = "DR1";
  std::string owner;  // for user images (required for them)
};

// Reads everything the registry needs from the file except its place in the
// repository (file_path, file_size, checksum) and its rights, through the
// built-in mapping (Mapping::builtin()). Throws IngestError for unreadable
// or corrupt files, science images without a usable WCS, and missing
// data-ID keywords.
DatasetRecord read_dataset_metadata(const std::filesystem::path& file, const MetadataOptions& options);

// A record read through an ingest mapping, with the rule that made it.
struct MappedRecord {
  DatasetRecord record;
  const MappingRule* rule = nullptr;
};

// Reads a file through `mapping` (its path relative to the ingest argument
// it was found under chooses the rule with the header). Throws IngestError
// naming the file, and for a keyword the mapping names but the file lacks
// (or a value its band table does not cover) the keyword and the mapping
// line.
MappedRecord read_mapped_metadata(const std::filesystem::path& file, const std::string& relative_path,
                                  const Mapping& mapping, const MetadataOptions& options);

}  // namespace pixserve::repo
