// Virtual datasets made at ingest: for every raw, the calexp that its bias
// and flat make, and where template coadd patches (goodSeeingCoadd) of its
// band cover it, the difference image of that calexp against them; each
// registered without a file (storage = virtual) with the recipe that
// re-creates it (repo/recipe.hpp). Its ObsCore row is the raw's
// (footprint from the raw's WCS, time, band, observing conditions) with the
// calexp's type, ID and calibration level, so that clients see a stored and
// a virtual calexp alike; its rights are the raw's, so it is visible exactly
// when the raw is.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "image/calexp.hpp"
#include "image/diffim.hpp"
#include "repo/dataset.hpp"
#include "repo/registry.hpp"

namespace pixserve::repo {

// What is known of a dataset while ingest plans: registered, or in this run.
struct KnownDataset {
  std::string checksum;
};

// The calexp of a raw as a virtual dataset, or nullopt when the raw already
// has a calexp (registered or known) or its bias or flat is not known.
// `known` holds this run's new datasets by ID; registered ones are looked
// up in the registry.
std::optional<DatasetRecord> virtual_calexp_of(const DatasetRecord& raw,
                                               const std::map<std::string, KnownDataset>& known, Registry& registry);

// A template coadd patch (goodSeeingCoadd), registered or in this ingest
// run, as difference images choose their templates.
struct TemplatePatch {
  std::string dataset_id;
  std::string checksum;
  std::string band;
  sky::Polygon footprint;
  std::set<std::int64_t> visits;  // of the calexps it was made from
  std::string skymap;
  std::int64_t tract = 0;
};

// The template patches of the given records (this run's) and of the
// registry, with the visits of their inputs looked up among records and in
// the registry.
std::vector<TemplatePatch> template_patches(std::span<const DatasetRecord* const> records, Registry& registry);

// The difference image of a raw's calexp as a virtual dataset: the calexp
// (registered or known) minus the template patches of the raw's band whose
// footprints overlap the raw's and that were made without the raw's visit,
// all of one tract (patches of one tract share a pixel grid): the tract with
// a patch holding the raw's centre, else the one with most overlapping
// patches (ties: the lower tract number).
// nullopt when the raw has no calexp, no such patch exists, or the diffim is
// already registered or known. Its provenance lists the calexp, the patches
// (role template) and the raw, bias and flat.
std::optional<DatasetRecord> virtual_diffim_of(const DatasetRecord& raw, const std::map<std::string, KnownDataset>& known,
                                               std::span<const TemplatePatch> templates, Registry& registry);

// Sets the rights of a stored dataset and of every virtual product made
// from it as its raw (its calexp and difference image), in one transaction:
// a virtual product is visible exactly when its raw is, also after the raw's
// rights change; a coadd patch's logical coadd (repo/coadd_mosaics.hpp) is
// remade. Returns the virtual products changed. Throws
// std::invalid_argument for a virtual dataset (its rights are its raw's).
std::size_t set_rights_with_products(Registry& registry, const DatasetRecord& stored, const Rights& rights);

// The calexp parameters a recipe records (ISR settings, PSF guess; 0: from
// the raw's SEEING) and back; from_json throws std::invalid_argument for a
// malformed or incomplete object. software_version is the recipe's.
nlohmann::json calexp_parameters_to_json(const image::CalexpParameters& parameters);
image::CalexpParameters calexp_parameters_from_json(const nlohmann::json& parameters,
                                                    const std::string& software_version);

// The difference image parameters a recipe records, and back (throws
// std::invalid_argument for a malformed or incomplete object).
nlohmann::json diffim_parameters_to_json(const image::DiffimParameters& parameters);
image::DiffimParameters diffim_parameters_from_json(const nlohmann::json& parameters,
                                                    const std::string& software_version);

// Size of the calexp file of a width x height detector (three 32-bit planes
// and four header units of 2880 bytes, each unit padded to 2880): what
// access_estsize announces before the file exists.
std::int64_t estimated_calexp_bytes(std::int64_t width, std::int64_t height);

}  // namespace pixserve::repo
