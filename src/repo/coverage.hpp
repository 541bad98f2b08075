// The coverage of a selection of datasets as MOCs: the union of their
// footprints (exact cover at the MOC order), and for visit images the
// space-time MOC (each exposure's time interval with its footprint).
#pragma once

#include <vector>

#include "repo/dataset.hpp"
#include "sky/moc.hpp"

namespace pixserve::repo {

inline constexpr int kDefaultMocOrder = 12;
inline constexpr int kDefaultTimeOrder = 31;  // MOC 2.0's advice when the time scale is not TCB (~17 min cells)

// Datasets without a footprint (calibrations) are skipped.
sky::Moc coverage_moc(const std::vector<DatasetRecord>& records, int order, unsigned threads = 0);

// Datasets without a footprint or without t_min/t_max are skipped.
sky::StMoc coverage_stmoc(const std::vector<DatasetRecord>& records, int time_order, int space_order,
                          unsigned threads = 0);

}  // namespace pixserve::repo
