#include "services/hips.hpp"

#include <algorithm>
#include <charconv>
#include <regex>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "auth/policy.hpp"
#include "hips/generate.hpp"
#include "hips/properties.hpp"
#include "hips/tile.hpp"
#include "http/files.hpp"
#include "repo/dataset.hpp"
#include "services/datasets.hpp"
#include "services/links.hpp"
#include "services/obscore_fields.hpp"

namespace pixserve::services {
namespace {

// Names a map may not have: they are the service's own paths.
bool reserved(std::string_view name) {
  return name == "full" || name == "list" || name == "progenitors" || name == "capabilities" ||
         name == "availability" || name == "tables";
}

std::filesystem::path root_of(const SharedRepository& repository, const HipsOptions& options) {
  return options.settings.root.empty() ? repository.root() / "hips" : options.settings.root;
}

// The folder of a map's tree for an audience: <root>/<map> (public) or
// <root>/full/<map> (data rights), or a DALI 404 for an unknown or malformed
// name, and for a tree whose properties do not say it was made for that
// audience (a tree made before trees had audiences was made from every
// coadd, whatever its rights: it is never served; `pixserve hips` rebuilds
// it).
std::filesystem::path map_dir(const std::filesystem::path& root, std::string_view map,
                              auth::Audience audience = auth::Audience::public_) {
  if (!repo::is_safe_identifier(map) || reserved(map)) {
    throw dali::NotFound(fmt::format("no HiPS map '{}'", map.substr(0, 80)));
  }
  auto dir = (audience == auth::Audience::public_ ? root : root / "full") / std::string(map);
  const auto properties = hips::Properties::load(dir / "properties");
  if (!properties || properties->get(std::string(hips::kAudienceKey)) != auth::to_string(audience)) {
    throw dali::NotFound(fmt::format("no HiPS map '{}'", map));
  }
  return dir;
}

std::optional<long long> to_int(const std::string& s) {
  long long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// What a request path inside a map names.
struct HipsFile {
  std::string relative;      // path under the map folder
  std::string content_type;
  std::optional<int> order;  // tile order, for the public cap
  bool properties = false;
  bool tile = false;
};

// Parses and validates a path inside a map: only the files a HiPS tree
// defines, orders 0..29, Dir matching Npix, Npix within the order.
std::optional<HipsFile> parse_hips_path(std::string_view rest) {
  static const std::regex kFixed(R"(^(properties|index\.html|Moc\.fits|preview\.jpg|HpxFinder/properties|HpxFinder/Moc\.fits)$)");
  static const std::regex kAllsky(R"(^Norder([0-9]{1,2})/Allsky\.(fits|png|jpg)$)");
  static const std::regex kTile(R"(^(HpxFinder/)?Norder([0-9]{1,2})/Dir([0-9]{1,18})/Npix([0-9]{1,18})(\.(fits|png|jpg))?$)");
  const std::string path(rest.empty() ? std::string_view("index.html") : rest);
  std::smatch m;
  auto type_of = [](const std::string& ext) {
    if (ext == "fits") return std::string("application/fits");
    if (ext == "png") return std::string("image/png");
    if (ext == "jpg") return std::string("image/jpeg");
    return std::string("application/octet-stream");
  };
  if (std::regex_match(path, m, kFixed)) {
    HipsFile f{.relative = path, .content_type = {}, .order = {}, .properties = false, .tile = false};
    if (path.ends_with("properties")) {
      f.content_type = "text/plain; charset=utf-8";
      f.properties = path == "properties";
    } else if (path.ends_with(".html")) {
      f.content_type = "text/html; charset=utf-8";
    } else if (path.ends_with(".fits")) {
      f.content_type = "application/fits";
    } else {
      f.content_type = "image/jpeg";
    }
    return f;
  }
  if (std::regex_match(path, m, kAllsky)) {
    const auto order = to_int(m[1].str());
    if (!order || *order > hips::kMaxHipsOrder) return std::nullopt;
    return HipsFile{.relative = path, .content_type = type_of(m[2].str()), .order = static_cast<int>(*order),
                    .properties = false, .tile = true};
  }
  if (std::regex_match(path, m, kTile)) {
    const bool finder = m[1].matched;
    const bool has_ext = m[5].matched;
    if (finder == has_ext) return std::nullopt;  // index files have no extension, tiles must
    const auto order = to_int(m[2].str()), dir = to_int(m[3].str()), npix = to_int(m[4].str());
    if (!order || !dir || !npix || !hips::valid_tile(static_cast<int>(*order), *npix) || *dir != (*npix / 10000) * 10000) {
      return std::nullopt;
    }
    return HipsFile{.relative = path,
                    .content_type = finder ? "application/json" : type_of(m[6].str()),
                    .order = static_cast<int>(*order),
                    .properties = false,
                    .tile = true};
  }
  return std::nullopt;
}

// The properties as served: order capped (public), status, absolute URLs.
std::string served_properties(const std::filesystem::path& dir, const std::string& service_url, bool full,
                              const HipsOptions& options) {
  const int public_max_order = options.settings.public_max_order;
  auto p = hips::Properties::load(dir / "properties");
  if (!p) throw dali::NotFound("no properties");
  if (!full) {
    const int order = std::stoi(p->get("hips_order").value_or("0"));
    if (order > public_max_order) {
      p->set("hips_order", std::to_string(public_max_order));
      p->set("hips_order_min", std::to_string(std::min(public_max_order,
                                                      std::stoi(p->get("hips_order_min").value_or("0")))));
      p->erase("hips_pixel_scale");
    }
    p->set("hips_status", options.status_public);
  } else {
    p->set("hips_status", options.status_rights);
  }
  p->set("hips_service_url", service_url);
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "HpxFinder" / "properties", ec)) {
    p->set("hips_progenitor_url", service_url + "/HpxFinder");
  }
  return p->text();
}

http::Response serve_map_file(const http::Request& request, const SharedRepository& repository,
                              const HipsOptions& options, bool full) {
  try {
    if (full) {
      if (!options.authorize_full) {
        throw dali::Forbidden("the full-resolution HiPS endpoint is for data-rights holders; "
                                   "access is not configured on this server (hips.full_access)");
      }
      options.authorize_full(request);
    }
    const auto map = request.path_param("map");
    const auto dir =
        map_dir(root_of(repository, options), map, full ? auth::Audience::data_rights : auth::Audience::public_);
    const auto rest = request.path_param("rest");
    const auto file = parse_hips_path(rest);
    if (!file) throw dali::NotFound(fmt::format("not a file of a HiPS tree: '{}'", rest.substr(0, 120)));
    if (!full && file->order && *file->order > options.settings.public_max_order) {
      throw dali::Forbidden(fmt::format("order {} is deeper than the public order {}: use /api/hips/full/{}/ "
                                             "with data rights",
                                             *file->order, options.settings.public_max_order, map));
    }
    const std::string service_url =
        request.base_url() + links::hips_map(map, full);
    if (file->properties) {
      auto res = http::Response::text(200, served_properties(dir, service_url, full, options),
                                      file->content_type);
      res.headers.set("Cache-Control", full ? "private, max-age=300" : "public, max-age=300");
      return res;
    }
    auto res = http::serve_file(request, dir / file->relative, file->content_type);
    if (res.status == 404) throw dali::NotFound(fmt::format("no such HiPS file: {}", file->relative));
    if (res.status < 300 || res.status == 304) {
      // Tiles change only when the map is rebuilt: a day's caching; the
      // rest (index, MOC) an hour.
      const int max_age = file->tile ? 86400 : 3600;
      res.headers.set("Cache-Control", fmt::format("{}, max-age={}", full ? "private" : "public", max_age));
      res.headers.set("Access-Control-Allow-Origin", "*");
    }
    return res;
  } catch (const auth::AuthError& e) {
    return dali::auth_error_response(e);
  } catch (const dali::DaliError& e) {
    return dali::error_response(e.status(), e.what());
  }
}

// The maps of one audience: <root>/<name> (public) or <root>/full/<name>.
std::vector<std::string> map_names(const std::filesystem::path& root,
                                   auth::Audience audience = auth::Audience::public_) {
  std::vector<std::string> out;
  std::error_code ec;
  const auto dir = audience == auth::Audience::public_ ? root : root / "full";
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != std::filesystem::end(it);
       it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (!it->is_directory(ec) || !repo::is_safe_identifier(name) || reserved(name)) continue;
    const auto properties = hips::Properties::load(it->path() / "properties");
    if (properties && properties->get(std::string(hips::kAudienceKey)) == auth::to_string(audience)) {
      out.push_back(name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<publishing::HipsMap> hips_maps(const SharedRepository& repository, const HipsOptions& options,
                                           const std::string& base_url) {
  const auto root = root_of(repository, options);
  std::vector<publishing::HipsMap> out;
  for (const bool full : {false, true}) {
    const auto audience = full ? auth::Audience::data_rights : auth::Audience::public_;
    for (const auto& name : map_names(root, audience)) {
      const auto dir = (full ? root / "full" : root) / name;
      const std::string url = base_url + links::hips_map(name, full);
      const auto p = hips::Properties::parse(served_properties(dir, url, full, options));
      std::error_code ec;
      const auto mtime = std::filesystem::last_write_time(dir / "properties", ec);
      out.push_back({.name = name,
                     .data_rights = full,
                     .title = p.get("obs_title").value_or(name),
                     .description = p.get("obs_description").value_or(""),
                     .url = url,
                     .status = p.get("hips_status").value_or(""),
                     // The tree changes when `pixserve hips` rewrites it, properties last.
                     .updated = ec ? std::chrono::system_clock::now()
                                   : std::chrono::time_point_cast<std::chrono::system_clock::duration>(
                                         std::chrono::file_clock::to_sys(mtime))});
    }
  }
  return out;
}

std::optional<std::filesystem::path> find_aladin_lite(const std::filesystem::path& web_root) {
  const auto dist = web_root / ".." / "node_modules" / "aladin-lite" / "dist";
  std::error_code ec;
  if (std::filesystem::is_regular_file(dist / "aladin.js", ec)) return std::filesystem::weakly_canonical(dist);
  return std::nullopt;
}

dali::Service hips_service(std::shared_ptr<SharedRepository> repository, const HipsOptions& options,
                           const dali::ResultLimits& limits, std::vector<dali::AvailabilityCheck> checks) {
  dali::Endpoint list{
      .path = "list",
      .summary = "The HiPS list: the properties of every HiPS map of the server",
      .description = "One record per map (HiPS 1.0 section 5.2 list format: properties separated by blank lines), "
                     "with hips_service_url the public endpoint /api/hips/<map> (capped at the public order) and "
                     "hips_service_url_1 the full-resolution endpoint /api/hips/full/<map> for data-rights holders.",
      .params = {},
      .methods = {"GET"},
      .result_types = {"text/plain"},
  };
  list.handler = [repository, options](const http::Request& request, const dali::ParsedParams&) {
    const auto root = root_of(*repository, options);
    std::string out;
    for (const auto& name : map_names(root)) {
      const std::string url = request.base_url() + links::hips_map(name, false);
      auto p = hips::Properties::parse(served_properties(root / name, url, false, options));
      try {
        static_cast<void>(map_dir(root, name, auth::Audience::data_rights));
        p.set("hips_service_url_1", request.base_url() + links::hips_map(name, true));
      } catch (const dali::DaliError&) {
        // No data-rights tree of this map.
      }
      out += p.text() + "\n";
    }
    auto res = http::Response::text(200, out, "text/plain; charset=utf-8");
    res.headers.set("Cache-Control", "public, max-age=300");
    return res;
  };

  dali::Endpoint progenitors{
      .path = "progenitors",
      .summary = "The coadds under a HEALPix cell of a HiPS map",
      .description = "Every dataset the map was made from (its dataset type and band) whose footprint overlaps the "
                     "HEALPix NESTED cell NPIX of order ORDER (a tile of the map at its order, or one of its "
                     "pixels at ORDER + 9), as ObsCore rows with access_url to their DataLink links. Only datasets "
                     "the caller may see are listed.",
      .params = {{.name = "MAP",
                  .type = dali::ParamType::text,
                  .description = "The map name, as in /api/hips/list (e.g. deepCoadd-r).",
                  .ucd = "meta.id",
                  .required = true,
                  .example = "deepCoadd-r"},
                 {.name = "ORDER",
                  .type = dali::ParamType::integer,
                  .description = "HEALPix order of the cell (tile order, or tile order + 9 for one tile pixel).",
                  .ucd = "meta.number",
                  .min = 0.0,
                  .max = 29.0,
                  .required = true,
                  .example = "10"},
                 {.name = "NPIX",
                  .type = dali::ParamType::integer,
                  .description = "HEALPix NESTED index of the cell at ORDER.",
                  .ucd = "meta.id",
                  .min = 0.0,
                  .required = true,
                  .example = "9000000"}},
      .result_types = {"application/x-votable+xml", "text/csv"},
  };
  for (auto& r : dali::result_params(limits)) progenitors.params.push_back(std::move(r));
  progenitors.handler = [repository, options, limits](const http::Request& request, const dali::ParsedParams& params) {
    const auto map = *params.first<std::string>("MAP");
    const auto dir = map_dir(root_of(*repository, options), map);
    const auto order = static_cast<int>(*params.first<std::int64_t>("ORDER"));
    const auto npix = *params.first<std::int64_t>("NPIX");
    if (npix >= (std::int64_t{12} << (2 * order))) {
      throw dali::usage_error(fmt::format("NPIX: {} is not a cell of order {} (at most {})", npix, order,
                                          (std::int64_t{12} << (2 * order)) - 1));
    }
    const auto props = hips::Properties::load(dir / "properties");
    repo::DatasetQuery q;
    q.dataset_types = {props->get("pixserve_dataset_type").value_or("deepCoadd")};
    for (char b : props->get("pixserve_bands").value_or("")) q.bands.emplace_back(1, b);
    q.regions.emplace_back(hips::cell_polygon(order, npix));
    q.patches_only = true;
    static const ObscoreColumns kColumns({"obs_id", "obs_publisher_did", "dataproduct_subtype", "band", "tract",
                                          "patch", "s_region", "access_url", "access_format"});
    const std::string base = request.base_url();
    return dataset_query_response(repository, params, limits, std::move(q),
                                  {.name = "progenitors",
                                   .description = fmt::format("Datasets under cell {} of order {} of map {}", npix,
                                                              order, map)},
                                  kColumns, base);
  };
  return dali::Service{
      .name = std::string(links::kHips),
      .title = "HiPS all-sky maps",
      .description = "HiPS 1.0 maps of the coadds (one per band and colour composites): tiles under "
                     "/api/hips/<map>/ (public, capped order) and /api/hips/full/<map>/ (all orders, data rights), "
                     "the HiPS list and the progenitor coadds of any HEALPix cell.",
      .endpoints = {std::move(list), std::move(progenitors)},
      .checks = std::move(checks),
      // The declared MAP example need not exist on this server.
      .live_examples =
          [repository, options] {
            const auto names = map_names(root_of(*repository, options));
            return dali::RawParams{{"MAP", names.empty() ? std::string() : names.front()}};
          },
      // Each public map, in the viewer when Aladin Lite is served, else its
      // properties (which HiPS clients take).
      .resources =
          [repository, options] {
            const auto root = root_of(*repository, options);
            std::vector<dali::Resource> out;
            for (const auto& name : map_names(root)) {
              const auto properties = hips::Properties::load(root / name / "properties");
              out.push_back({.name = name,
                             .title = properties ? properties->get("obs_title").value_or(name) : name,
                             .href = options.aladin_lite_dir.empty() ? links::hips_map(name, false) + "/properties"
                                                                     : "/web/hips.html?map=" + name});
            }
            return out;
          },
  };
}

void add_hips_routes(http::Router& router, std::shared_ptr<SharedRepository> repository, const HipsOptions& options) {
  router.get(links::service(links::kHips) + "/{map}/{rest...}", [repository, options](const http::Request& request) {
    return serve_map_file(request, *repository, options, false);
  });
  router.get(links::service(links::kHips) + "/full/{map}/{rest...}", [repository, options](const http::Request& request) {
    return serve_map_file(request, *repository, options, true);
  });
  if (!options.aladin_lite_dir.empty()) {
    const auto dir = options.aladin_lite_dir;
    router.get("/web/aladin-lite/{file...}", [dir](const http::Request& request) {
      auto res = http::serve_static(request, dir, request.path_param("file"));
      if (res.status == 200) res.headers.set("Cache-Control", "public, max-age=86400");
      return res;
    });
  }
}

}  // namespace pixserve::services
