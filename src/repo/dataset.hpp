// What the registry knows of one dataset: its identity (type, data ID,
// collection), its file, its place on the sky, in time and in wavelength, its
// provenance and its rights. One struct feeds both the registry tables and
// the ivoa.obscore view.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sky/geometry.hpp"

namespace pixserve::repo {

// The dataset types pixserve knows. Anything else is a user (Level-3) image.
enum class DatasetType { raw, bias, flat, calexp, calexp_comp, diffim, deepCoadd, goodSeeingCoadd, user };

std::string_view to_string(DatasetType t);
std::optional<DatasetType> dataset_type_from_string(std::string_view s);
// Every dataset type, in declaration order.
std::vector<DatasetType> dataset_types();
bool is_visit_based(DatasetType t);    // raw, calexp, calexp_comp, diffim
bool is_coadd(DatasetType t);          // deepCoadd, goodSeeingCoadd
bool is_calibration(DatasetType t);    // bias, flat
int calib_level(DatasetType t);        // ObsCore calib_level of the type

// The data ID: which of these are set depends on the type.
struct DataId {
  std::string instrument;
  std::optional<std::int64_t> visit;
  std::optional<std::int64_t> exposure;
  std::optional<std::int64_t> detector;
  std::string detector_name;  // e.g. S11
  std::string raft;           // e.g. R22
  std::string band;
  std::string physical_filter;
  std::string skymap;
  std::optional<std::int64_t> tract;
  std::string patch;  // "x,y"
};

// Who may read a dataset: public, the survey's data-rights holders, listed
// groups, or the owner alone; plus an embargo until release_mjd.
enum class ReadPolicy { public_, data_rights, groups, owner };
std::string_view to_string(ReadPolicy p);
std::optional<ReadPolicy> read_policy_from_string(std::string_view s);

// The owner of the survey's own data (everything not a Level-3 user image).
// It is a reserved name: no token, JWT subject or upload can act as it (see
// is_reserved_owner), so owning survey data is never something a caller can
// claim.
inline constexpr std::string_view kSurveyOwner = "survey";

// Owner names that no principal may take: kSurveyOwner and "anonymous"
// (compared without regard to case, so "Survey" is refused too).
bool is_reserved_owner(std::string_view name) noexcept;

struct Rights {
  std::string owner = std::string(kSurveyOwner);
  ReadPolicy policy = ReadPolicy::public_;
  std::vector<std::string> groups;      // for ReadPolicy::groups
  std::optional<double> release_mjd;    // embargoed before this time
};

// Where a dataset's bytes come from: a stored file, or re-created on demand.
enum class Storage { file, virtual_ };
std::string_view to_string(Storage s);
std::optional<Storage> storage_from_string(std::string_view s);

struct ProvenanceLink {
  std::string input_id;  // dataset ID of the input (need not be registered yet)
  std::string role;      // raw, bias, flat, input (coadd input)
};

// One HDU of a dataset's file as the CAOM2 Part and Chunk tables describe it
// (docs/caom2.md): its place and name, and for an image HDU the size of its
// array and the linear celestial WCS of its header. Read at ingest
// (read_hdu_parts), kept in the registry's dataset_part table.
struct HduPart {
  int hdu = 0;              // 0: the primary HDU
  std::string name;         // EXTNAME, else the HDU number
  std::string product_type; // this, or auxiliary for masks, variances and tables
  int naxis = 0;            // 0: no image array (a header or a table): no chunk
  std::int64_t naxis1 = 0, naxis2 = 0;
  // The celestial axes (CTYPE1/2 and the rest), when the header has them.
  std::string ctype1, ctype2, cunit1, cunit2;
  std::optional<double> crpix1, crpix2, crval1, crval2, cd11, cd12, cd21, cd22;
  // Their reference frame (RADESYS, else as FITS WCS Paper II defaults it
  // from EQUINOX: ICRS without one, FK4 before 1984, FK5 after) and, for
  // FK4/FK5, its equinox.
  std::string coordsys;
  std::optional<double> equinox;
};

struct DatasetRecord {
  // identity
  std::string dataset_id;  // stable, [A-Za-z0-9._-]
  DatasetType type = DatasetType::user;
  std::string collection;
  DataId data_id;

  // file
  std::string file_path;  // relative to the repository root
  std::int64_t file_size = 0;
  std::string checksum;   // sha256 hex of the file bytes
  std::string content_type = "application/fits";
  // A stored dataset has its file in the repository; a virtual one is made
  // on request from `recipe` (JSON: its inputs by dataset ID and checksum,
  // the algorithm and software versions, the configuration; see
  // products/recipe.hpp), and `checksum` is then the recipe's hash.
  Storage storage = Storage::file;
  std::string recipe;

  // sky (absent for calibrations)
  std::optional<sky::Polygon> footprint;
  std::optional<double> s_ra, s_dec, s_fov, s_resolution;  // deg, deg, deg, arcsec
  std::optional<double> pixel_scale_arcsec;
  std::int64_t width = 0, height = 0;  // s_xel1, s_xel2

  // time (MJD) and wavelength (m)
  std::optional<double> t_min, t_max, t_exptime;
  std::optional<double> em_min, em_max, em_res_power;

  // observation
  std::string facility_name, instrument_name, target_name;
  std::optional<double> seeing, airmass, sky_background, zero_point, psf_fwhm;
  std::optional<double> telescope_ra, telescope_dec;

  // coadd provenance (DMS-PRTL-REQ-0039): the number of input images, the
  // fraction of the image's pixels that any input reached, and the 5-sigma
  // point-source depth (AB mag). The inputs' time span is t_min/t_max.
  std::optional<std::int64_t> n_inputs;
  std::optional<double> coverage_fraction, depth_5sigma;

  // the file's HDUs (none for a virtual dataset: its bytes are made on request)
  std::vector<HduPart> parts;
  // provenance and processing
  std::vector<ProvenanceLink> inputs;
  std::string software_version;
  // ObsCore calib_level when an ingest mapping sets it; absent: the type's
  // (read it through calib_level(record)).
  std::optional<int> calib_level;

  Rights rights;
};

// The record's ObsCore calib_level: its own, else its type's.
int calib_level(const DatasetRecord& r);

// Builds the stable dataset ID from collection, type and data ID:
//   visit-based: <coll>.<type>.v<visit>.d<detector:03>
//   bias: <coll>.bias.d<det>   flat: <coll>.flat.<band>.d<det>
//   coadd: <coll>.<type>.<band>.t<tract>.p<x>_<y>
//   user: <coll>.user.<owner>.<name>
// Throws std::invalid_argument when the data ID lacks a needed key.
std::string make_dataset_id(const std::string& collection, DatasetType type, const DataId& id,
                            const std::string& owner = {}, const std::string& user_name = {});

// True if s is a safe identifier: non-empty, at most 200 characters of
// [A-Za-z0-9._-], not starting with '.' or '-'.
bool is_safe_identifier(std::string_view s);

}  // namespace pixserve::repo
