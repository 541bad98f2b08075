#include "services/settings.hpp"

#include <algorithm>
#include <cctype>

#include "repo/repository.hpp"

namespace pixserve::services {

const settings::Section<ServiceSettings>& service_section() {
  using namespace settings;
  static const auto section = make_section<ServiceSettings>(
      "service", "",
      {
          text("authority", &ServiceSettings::authority,
               "expected IVOA authority of publisher DIDs: serve refuses a repository created with another (set "
               "at creation: pixserve ingest --authority)")
              .with_example("example.org"),
          path("web_root", &ServiceSettings::web_root, "index.html and docs/ (default: web/ near the binary)")
              .with_example("/usr/share/pixserve/web"),
          path("swagger_ui_dir", &ServiceSettings::swagger_ui_dir,
               "swagger-ui-dist (default: node_modules/ beside web/)")
              .with_example("/usr/share/pixserve/swagger-ui"),
          integer("min_free_disk_mb", &ServiceSettings::min_free_disk_bytes,
                  {.max = std::uint64_t{1} << 30, .shift = 20},
                  "VOSI availability turns false below this much free space"),
      });
  return section;
}

const settings::Section<RegistrySettings>& registry_section() {
  using namespace settings;
  static const auto section = make_section<RegistrySettings>(
      "registry", "Reads of a PostgreSQL registry: the hot standbys they go to (docs/deployment.md, Read replicas), the primary's sessions for them and their time limit.",
      {
          list("standbys", &RegistrySettings::standbys,
               "postgresql:// URLs of hot standbys of the repository's registry (streaming replication): SIAv2, "
               "TAP, DataLink, SODA and dataset lookups read from them in turn; ingest, jobs, tokens and user "
               "images use the primary")
              .with_check([](RegistrySettings& r) {
                for (const auto& url : r.standbys) {
                  if (!repo::is_postgresql_url(url)) return "expected postgresql:// URLs, got '" + url + "'";
                }
                return std::string();
              }),
          seconds("standby_max_lag_s", &RegistrySettings::standby_max_lag,
                  "a standby whose replay lag exceeds this is skipped; the primary serves when none is within it"),
          seconds("read_time_limit_s", &RegistrySettings::read_time_limit,
                  "on PostgreSQL, a search of the registry (SIAv2, DataLink, SODA, dataset lookups) runs in a "
                  "read-only transaction and is stopped after this (HTTP 400 asking for a narrower search), so "
                  "that no request holds the registry for long"),
          integer("read_sessions", &RegistrySettings::read_sessions, {.max = 64, .min = 0},
                  "on PostgreSQL, sessions of this server on the primary in which registry searches run side by "
                  "side (each read-only, opened when first needed); 0: searches wait for the one session that "
                  "also writes. Standbys, when configured, are used first"),
      });
  return section;
}

const settings::Section<SodaLimits>& soda_section() {
  using namespace settings;
  static const auto section = make_section<SodaLimits>(
      "soda", "SODA cutouts and mosaics (/api/soda).",
      {
          integer("max_ids", &SodaLimits::max_ids, {.max = 100000, .min = 1}, "IDs in one request"),
          integer("max_shapes", &SodaLimits::max_shapes, {.max = 100000, .min = 1},
                  "POS, CIRCLE and POLYGON values in one request"),
          integer("max_cutouts", &SodaLimits::max_cutouts, {.max = 1000000, .min = 1},
                  "IDs x shapes in one request"),
          integer("mosaic_max_pixels", &SodaLimits::mosaic_max_pixels, {.max = std::uint64_t{1} << 40, .min = 1},
                  "largest mosaic grid of a logical coadd (4e9: 10 square degrees at 0.2\"); larger ones are "
                  "refused, naming their size"),
          integer("mosaic_sync_max_pixels", &SodaLimits::mosaic_sync_max_pixels,
                  {.max = std::uint64_t{1} << 40, .min = 1},
                  "largest mosaic /sync makes; larger ones are refused with a pointer to /async"),
      });
  return section;
}

const settings::Section<PhotometryLimits>& photometry_section() {
  using namespace settings;
  static const auto section = make_section<PhotometryLimits>(
      "photometry", "Forced photometry (/api/photometry, docs/photometry.md).",
      {
          integer("max_positions", &PhotometryLimits::max_positions, {.max = 1000000, .min = 1},
                  "positions (POS values and uploaded rows) in one request, sync or async"),
          integer("max_ids", &PhotometryLimits::max_ids, {.max = 100000, .min = 1}, "ID values in one request"),
          integer("sync_max_positions", &PhotometryLimits::sync_max_positions, {.max = 1000000, .min = 1},
                  "positions /sync takes; more are refused with a pointer to /async")
              .with_check([](PhotometryLimits& p) {
                return p.sync_max_positions <= p.max_positions
                           ? std::string()
                           : "must not exceed photometry.max_positions (" + std::to_string(p.max_positions) + ")";
              }),
          integer("sync_max_measurements", &PhotometryLimits::sync_max_measurements, {.max = 100000000, .min = 1},
                  "positions x images /sync measures; more are refused with a pointer to /async"),
          number("max_radius_arcsec", &PhotometryLimits::max_radius_arcsec, 0.1, 3600.0,
                 "largest aperture RADIUS (arcsec) a request may ask for"),
          integer("max_upload_mb", &PhotometryLimits::max_upload_bytes, {.max = 1 << 16, .min = 1, .shift = 20},
                  "largest uploaded VOTable of positions (UPLOAD)"),
      });
  return section;
}

const settings::Section<HipsSettings>& hips_section() {
  using namespace settings;
  static const auto section = make_section<HipsSettings>(
      "hips", "",
      {
          path("root", &HipsSettings::root,
               "folder of the HiPS maps made by `pixserve hips`; empty: <repository>/hips"),
          integer("public_max_order", &HipsSettings::public_max_order, {.max = 20},
                  "/api/hips/<map>/ serves tiles up to this order (properties say so)"),
          text("full_access", &HipsSettings::full_access,
               "/api/hips/full/<map>/ (every order): closed = data-rights holders only, open = everyone")
              .with_check([](HipsSettings& h) {
                return h.full_access == "open" || h.full_access == "closed"
                           ? std::string()
                           : "expected open or closed, got '" + h.full_access + "'";
              }),
      });
  return section;
}

const settings::Section<UserImageSettings>& user_images_section() {
  using namespace settings;
  static const auto section = make_section<UserImageSettings>(
      "user_images", "Level-3 user images: PUT /api/user/images/{name} (docs/auth.md).",
      {
          boolean("enabled", &UserImageSettings::enabled, "false: no /api/user/images endpoints"),
          text("collection", &UserImageSettings::collection, "the collection they are registered in")
              .with_check([](UserImageSettings& u) {
                const auto& c = u.collection;
                const bool ok =
                    !c.empty() && c.size() <= 64 && std::isalnum(static_cast<unsigned char>(c.front())) &&
                    std::all_of(c.begin(), c.end(), [](char ch) {
                      return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
                    });
                return ok ? std::string() : "expected letters, digits, '.', '_', '-', got '" + c + "'";
              }),
          integer("max_file_mb", &UserImageSettings::max_file_bytes,
                  {.max = std::uint64_t{1} << 30, .min = 1, .shift = 20},
                  "larger uploads get 413 (limits.max_body_bytes applies too)"),
          integer("quota_mb", &UserImageSettings::quota_bytes, {.max = std::uint64_t{1} << 30, .shift = 20},
                  "all images of one user; beyond it uploads get 403"),
      });
  return section;
}

}  // namespace pixserve::services
