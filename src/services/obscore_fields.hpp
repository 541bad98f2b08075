// VOTable FIELDs for ObsCore-named result columns, with their metadata
// (datatype, unit, UCD, utype, description) taken from repo::obscore_columns()
// so that every service's columns agree with the ivoa.obscore table.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "repo/dataset.hpp"

#include "repo/obscore_schema.hpp"
#include "votable/model.hpp"

namespace pixserve::services {

// The FIELD of one ObsCore column (ID = name, so that service descriptors
// can ref it). Throws std::invalid_argument for an unknown column name.
votable::Field obscore_field(std::string_view name);

// The same with s_region as a DALI polygon (double array, xtype="polygon")
// instead of the STC-S string: what SIA and the datasets query return.
votable::Field obscore_polygon_field(std::string_view name = "s_region");

inline constexpr std::string_view kDatalinkFormat = "application/x-votable+xml;content=datalink";

// The absolute URL of the DataLink links of one dataset (its access_url).
std::string datalink_url(const std::string& base_url, const std::string& publisher_did);

// What an ObsCore row is made of.
struct ObscoreRecord {
  const repo::DatasetRecord& record;
  const std::string& publisher_did;
  const std::string& base_url;  // makes access_url absolute
  // access_url itself when the caller has built it (ObscoreRows does, from a
  // prefix made once per response); empty: made from base_url and
  // publisher_did.
  std::string_view access_url = {};
};

// Result columns with ObsCore names: their FIELDs and the row of a record,
// from one mapping of each column to the record (the C++ twin of the
// registry's ivoa_obscore view, which TAP reads). s_region is a DALI polygon.
class ObscoreColumns {
 public:
  // Throws std::invalid_argument for an unknown column name.
  explicit ObscoreColumns(const std::vector<std::string_view>& names);
  // Every column, in ivoa.obscore order.
  static ObscoreColumns all();

  const std::vector<votable::Field>& fields() const noexcept { return fields_; }
  std::vector<votable::Value> row(const ObscoreRecord& record) const;
  // The same values into `cells` (one per column), reusing the storage of
  // the strings and arrays they hold.
  void fill(const ObscoreRecord& record, std::span<votable::Value> cells) const;

  // Sets one cell of a record's row.
  using CellFill = void (*)(const ObscoreRecord&, votable::Value&);

 private:
  std::vector<votable::Field> fields_;
  std::vector<CellFill> fills_;
};

// The rows of many records of one response, for streaming them: what every
// row shares (the publisher DID and DataLink URL before the dataset ID) is
// made once, and one row is refilled record after record, so that a row
// allocates nothing once the first rows have grown its strings.
class ObscoreRows {
 public:
  // did_prefix: a publisher DID without its dataset ID
  // (Repository::publisher_did("")); base_url makes access_url absolute.
  ObscoreRows(const ObscoreColumns& columns, std::string did_prefix, std::string base_url);

  // The row of `record`, valid until the next call.
  std::span<const votable::Value> row(const repo::DatasetRecord& record);

 private:
  const ObscoreColumns& columns_;
  std::string did_prefix_;
  std::string base_url_;
  std::string url_prefix_;  // access_url before the percent-encoded dataset ID
  std::string did_;
  std::string url_;
  std::vector<votable::Value> cells_;
};

}  // namespace pixserve::services
