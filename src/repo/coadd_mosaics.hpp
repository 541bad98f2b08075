// The logical coadd datasets: every band's coadd of one kind (deepCoadd,
// goodSeeingCoadd) in a collection is also one dataset, "<collection>.<type>.<band>"
// (e.g. DR1.deepCoadd.r), whose ObsCore row stands for all its patches of
// every tract, so that a client asks SODA for any area by that one ID and
// gets one image (a mosaic, image/mosaic.hpp) without knowing the sky map.
//
// Its record: storage virtual (no file; SODA makes what is asked), no tract
// nor patch, recipe product "coadd-mosaic" listing every patch by ID and
// checksum (so its checksum changes when its patches do); footprint the
// convex hull of the patches' footprints (the patches may leave holes: a
// search may find the mosaic where SODA then finds no pixel); time the
// patches' span; rights the patches' when they all have the same, else
// those of the widest audience some patches have (public, else data-rights
// holders; without either, the survey owner only), with the footprint of
// those patches alone, so that the row shows no coverage its audience may
// not read. A mosaic never shows a caller a patch it may not read: SODA
// chooses its inputs through the caller's rights.
//
// The records are remade from the registry's patches, in the caller's
// transaction, whenever an ingest registers coadd patches or a patch's
// rights change.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "repo/dataset.hpp"
#include "repo/registry.hpp"

namespace pixserve::repo {

inline constexpr std::string_view kCoaddMosaicProduct = "coadd-mosaic";

// A logical coadd: a coadd type's record without a tract.
bool is_coadd_mosaic(const DatasetRecord& record);

// Which logical coadd a patch belongs to.
struct CoaddGroup {
  std::string collection;
  DatasetType type = DatasetType::deepCoadd;
  std::string band;
  friend auto operator<=>(const CoaddGroup&, const CoaddGroup&) = default;
};
std::optional<CoaddGroup> coadd_group_of(const DatasetRecord& patch);
std::string coadd_mosaic_id(const CoaddGroup& group);

// The logical record of the patches of one group (all of that group;
// nullopt when there are none).
std::optional<DatasetRecord> coadd_mosaic_record(const CoaddGroup& group, const std::vector<DatasetRecord>& patches);

// Removes and re-inserts the logical records of `groups` from the patches
// registered now. The caller owns the transaction.
void refresh_coadd_mosaics(Registry& registry, const std::set<CoaddGroup>& groups);

// The convex hull of footprints on the sphere (nullopt when their vertices
// do not fit in one hemisphere).
std::optional<sky::Polygon> convex_hull(const std::vector<sky::Polygon>& footprints);

}  // namespace pixserve::repo
