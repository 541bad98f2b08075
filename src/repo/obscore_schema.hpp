// The columns of ivoa.obscore (the registry's ivoa_obscore view) with their
// ObsCore 1.1 metadata: one description that the SIA response FIELDs,
// TAP_SCHEMA.columns and VOSI tables all read, so they cannot disagree.
#pragma once

#include <span>
#include <string_view>

namespace pixserve::repo {

struct ColumnDescription {
  std::string_view name;
  std::string_view datatype;   // VOTable datatype: char, int, long, double
  std::string_view arraysize;  // "*" for strings, "" for scalars
  std::string_view xtype;      // e.g. adql:REGION, timestamp
  std::string_view unit;
  std::string_view ucd;
  std::string_view utype;      // with the obscore: prefix for ObsCore columns
  std::string_view description;
  bool principal = false;
  bool indexed = false;
  bool standard = false;       // defined by ObsCore (std=1 in TAP_SCHEMA)
};

// In view column order: the ObsCore 1.1 mandatory columns, the optional ones
// pixserve fills, then the survey columns.
std::span<const ColumnDescription> obscore_columns();

}  // namespace pixserve::repo
