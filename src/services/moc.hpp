// /api/moc: the coverage of any selection of datasets as an IVOA MOC 2.0.
//   /api/moc/query   space MOC of the footprints (POS, DPSUBTYPE, BAND,
//                    COLLECTION, VISIT, DETECTOR, RAFT, TRACT, PATCH; ORDER),
//                    FORMAT fits (NUNIQ BINTABLE), ascii or json
//   /api/moc/stmoc   space-time MOC of the same selection (visit images by
//                    default): each exposure interval with its footprint;
//                    TIME_ORDER, ORDER; FITS RANGE packaging, ascii or json
// Only datasets the caller may see count.
#pragma once

#include <memory>
#include <vector>

#include "dali/service.hpp"
#include "services/repository_access.hpp"

namespace pixserve::services {

inline constexpr int kMocMaxHttpOrder = 18;     // cells of ~0.8"; deeper orders are for the CLI
inline constexpr std::size_t kMocMaxDatasets = 200'000;

dali::Service moc_service(std::shared_ptr<SharedRepository> repository, std::vector<dali::AvailabilityCheck> checks);

}  // namespace pixserve::services
