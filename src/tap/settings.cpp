#include "tap/settings.hpp"

namespace pixserve::tap {

const settings::Section<TapSettings>& tap_section() {
  using namespace settings;
  static const auto section = make_section<TapSettings>(
      "tap", "TAP (/api/tap): limits of ADQL queries and uploads.",
      {
          seconds("sync_time_limit_s", &TapSettings::sync_time_limit,
                  "a /sync query is interrupted after this (use /async for longer ones)"),
          integer("max_result_mb", &TapSettings::max_result_bytes, {.max = 1 << 20, .min = 1, .shift = 20},
                  "size of a query's rows (estimated); more are cut with the OVERFLOW INFO"),
          integer("max_upload_mb", &TapSettings::max_upload_bytes, {.max = 1 << 16, .shift = 20},
                  "one uploaded VOTable (UPLOAD)"),
          integer("max_upload_rows", &TapSettings::max_upload_rows, {.max = 100'000'000, .min = 1},
                  "rows of one uploaded VOTable"),
          integer("max_query_length", &TapSettings::max_query_length, {.max = 10'000'000, .min = 16},
                  "characters of ADQL"),
          seconds("upload_fetch_timeout_s", &TapSettings::upload_fetch_timeout,
                  "UPLOAD=name,http://...: fetch deadline"),
          boolean("upload_allow_private_hosts", &TapSettings::upload_allow_private_hosts,
                  "true lets UPLOAD URLs reach loopback/private addresses"),
      });
  return section;
}

}  // namespace pixserve::tap
