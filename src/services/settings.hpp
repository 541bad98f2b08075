// The services' own settings: the rest of section `service` (the MAXREC
// keys are dali's, cors_origins the HTTP server's), and sections `hips`,
// `soda`, `photometry`, `user_images` and `registry` of the configuration file. The defaults are the member
// initialisers; the *_section() functions declare the keys
// (settings/settings.hpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "settings/settings.hpp"

namespace pixserve::services {

struct ServiceSettings {
  std::string authority{};                 // expected authority of the repository (checked by serve); empty: any
  std::filesystem::path web_root{};        // empty: looked up near the binary
  std::filesystem::path swagger_ui_dir{};  // empty: node_modules/swagger-ui-dist beside web_root
  std::uint64_t min_free_disk_bytes = std::uint64_t{1} << 30;  // VOSI availability's disk check
  friend bool operator==(const ServiceSettings&, const ServiceSettings&) = default;
};

// HiPS maps (services/hips.hpp).
struct HipsSettings {
  std::filesystem::path root{};  // folder of the maps; empty: <repository>/hips
  int public_max_order = 9;      // deepest order of the public endpoint /api/hips/<map>/
  // /api/hips/full/<map>/: "closed" (data-rights holders) or "open" (everyone).
  std::string full_access = "closed";
  friend bool operator==(const HipsSettings&, const HipsSettings&) = default;
};

// Level-3 user images (services/user_images.hpp).
struct UserImageSettings {
  bool enabled = true;
  std::string collection = "user";                          // collection they are registered in
  std::uint64_t max_file_bytes = std::uint64_t{100} << 20;  // one upload
  std::uint64_t quota_bytes = std::uint64_t{1} << 30;       // all images of one user
  friend bool operator==(const UserImageSettings&, const UserImageSettings&) = default;
};

// SODA (services/soda.hpp): request sizes and mosaic sizes (section `soda`).
struct SodaLimits {
  std::size_t max_ids = 1000;       // IDs in one request
  std::size_t max_shapes = 100;     // POS + CIRCLE + POLYGON values in one request
  std::size_t max_cutouts = 5000;   // IDs x shapes
  // Mosaics of logical coadds (services/soda_mosaic.hpp): the largest grid
  // at all (4e9: 10 square degrees at 0.2"), and on /sync (larger: /async).
  std::uint64_t mosaic_max_pixels = 4'000'000'000;
  std::uint64_t mosaic_sync_max_pixels = 100'000'000;
  friend bool operator==(const SodaLimits&, const SodaLimits&) = default;
};

// Forced photometry (services/photometry.hpp): request sizes (section
// `photometry`). A /sync request is answered while the client waits, so it
// takes fewer positions and measurements than a job.
struct PhotometryLimits {
  std::size_t max_positions = 10'000;         // POS values and uploaded positions in one request (sync or async)
  std::size_t max_ids = 1'000;                // ID values in one request
  std::size_t sync_max_positions = 100;       // positions /sync takes (more: /async)
  std::size_t sync_max_measurements = 5'000;  // positions x images /sync measures (more: /async)
  double max_radius_arcsec = 30.0;            // RADIUS
  std::size_t max_upload_bytes = 8u << 20;    // an uploaded table of positions (UPLOAD)
  friend bool operator==(const PhotometryLimits&, const PhotometryLimits&) = default;
};

// Reads from hot standbys of a PostgreSQL registry (section `registry`;
// SharedRepository and the TAP engine use them, docs/deployment.md "Read
// replicas"). A setting of `serve`, not of the repository: only the server
// reads from standbys (ingest and every other command use the primary), and
// which standbys a server reads from is a choice per server (the one next
// to it), as is how stale an answer may be.
struct RegistrySettings {
  std::vector<std::string> standbys{};                // postgresql:// URLs of hot standbys of the registry
  std::chrono::milliseconds standby_max_lag{10'000};  // a standby further behind is skipped
  std::chrono::milliseconds read_time_limit{30'000};  // one search of the registry (PostgreSQL) is stopped after this
  std::size_t read_sessions = 4;  // PostgreSQL sessions on the primary for reads side by side (0: the writer's)
  friend bool operator==(const RegistrySettings&, const RegistrySettings&) = default;
};

const settings::Section<ServiceSettings>& service_section();
const settings::Section<RegistrySettings>& registry_section();
const settings::Section<SodaLimits>& soda_section();
const settings::Section<PhotometryLimits>& photometry_section();
const settings::Section<HipsSettings>& hips_section();
const settings::Section<UserImageSettings>& user_images_section();

}  // namespace pixserve::services
