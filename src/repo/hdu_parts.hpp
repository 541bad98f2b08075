// The HDUs of a dataset's file as CAOM2 Parts and Chunks (docs/caom2.md):
// read from the headers at ingest, kept in the registry's dataset_part
// table (one row per HDU, deleted with its dataset), read by TAP's
// caom2.Part and caom2.Chunk views (tap/caom2.cpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <vector>

#include "db/database.hpp"
#include "fits/fits.hpp"
#include "repo/dataset.hpp"

namespace pixserve::repo {

// The most HDUs a registered file may have: CAOM2 part and chunk IDs are
// 1000 x dataset key + HDU number (tap/caom2.cpp), so that HDU 1000 would
// take another dataset's ID. A survey's files have a few to a few dozen.
inline constexpr int kMaxHdus = 1000;

// A file with more HDUs than kMaxHdus: its own type, so that ingest tells it
// from the standard library's errors.
class TooManyHdus : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Every HDU of an open file, in order: its name (EXTNAME, else its number
// counted from 0 for the primary HDU), its product type (auxiliary for the
// MASK and VARIANCE planes and for tables, else this), the size of its
// image array (naxis 0: none, a header or a table) and the linear celestial
// WCS of its header (CTYPE, CUNIT, CRPIX, CRVAL and the CD matrix, from
// PCi_j x CDELTi when the header has no CD). Leaves the file at an
// unspecified HDU. Throws TooManyHdus for a file of more than kMaxHdus
// HDUs.
std::vector<HduPart> read_hdu_parts(fits::File& file);
// The same, of a file on disk. Throws fits::FitsError when it cannot be read.
std::vector<HduPart> read_hdu_parts(const std::filesystem::path& file);

// Inserts the dataset_part rows of the dataset `dataset_key`; the caller
// owns the transaction.
void insert_hdu_parts(db::Connection& conn, std::int64_t dataset_key, std::span<const HduPart> parts);

}  // namespace pixserve::repo
