#include "repo/coadd_mosaics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "repo/recipe.hpp"

namespace pixserve::repo {
namespace {

// Hull vertices must be at least this far (cosine) in front of the
// projection centre: 84 degrees.
constexpr double kMinHullCosine = 0.1;

struct PlanePoint {
  double x = 0.0, y = 0.0;
};

double cross(const PlanePoint& o, const PlanePoint& a, const PlanePoint& b) {
  return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

double dot(const sky::Vec3& a, const sky::Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

sky::Vec3 normalized(const sky::Vec3& v) {
  const double n = std::sqrt(dot(v, v));
  return {v.x / n, v.y / n, v.z / n};
}

bool same_rights(const Rights& a, const Rights& b) {
  return a.owner == b.owner && a.policy == b.policy && a.groups == b.groups && a.release_mjd == b.release_mjd;
}

}  // namespace

bool is_coadd_mosaic(const DatasetRecord& record) { return is_coadd(record.type) && !record.data_id.tract; }

std::optional<CoaddGroup> coadd_group_of(const DatasetRecord& patch) {
  if (!is_coadd(patch.type) || !patch.data_id.tract || patch.data_id.band.empty()) return std::nullopt;
  return CoaddGroup{patch.collection, patch.type, patch.data_id.band};
}

std::string coadd_mosaic_id(const CoaddGroup& group) {
  return fmt::format("{}.{}.{}", group.collection, to_string(group.type), group.band);
}

std::optional<sky::Polygon> convex_hull(const std::vector<sky::Polygon>& footprints) {
  std::vector<sky::Vec3> vs;
  sky::Vec3 sum;
  for (const auto& f : footprints) {
    for (const auto& p : f.vertices()) {
      const auto v = sky::to_vector(p);
      vs.push_back(v);
      sum = {sum.x + v.x, sum.y + v.y, sum.z + v.z};
    }
  }
  if (vs.size() < 3 || dot(sum, sum) < 1e-24) return std::nullopt;
  // The gnomonic plane at the mean direction: great circles are straight
  // lines there, so the plane's convex hull is the sphere's.
  const sky::Vec3 c = normalized(sum);
  const sky::Vec3 pole = std::abs(c.z) < 0.9 ? sky::Vec3{0, 0, 1} : sky::Vec3{1, 0, 0};
  const sky::Vec3 e = normalized({pole.y * c.z - pole.z * c.y, pole.z * c.x - pole.x * c.z, pole.x * c.y - pole.y * c.x});
  const sky::Vec3 n{c.y * e.z - c.z * e.y, c.z * e.x - c.x * e.z, c.x * e.y - c.y * e.x};
  std::vector<PlanePoint> pts;
  for (const auto& v : vs) {
    const double w = dot(v, c);
    if (w < kMinHullCosine) return std::nullopt;
    pts.push_back({dot(v, e) / w, dot(v, n) / w});
  }
  std::sort(pts.begin(), pts.end(), [](const PlanePoint& a, const PlanePoint& b) {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
  });
  // Andrew's monotone chain, collinear points dropped.
  std::vector<PlanePoint> hull(2 * pts.size());
  size_t k = 0;
  for (const auto& p : pts) {
    while (k >= 2 && cross(hull[k - 2], hull[k - 1], p) <= 1e-15) --k;
    hull[k++] = p;
  }
  for (size_t i = pts.size() - 1, lower = k + 1; i-- > 0;) {
    while (k >= lower && cross(hull[k - 2], hull[k - 1], pts[i]) <= 1e-15) --k;
    hull[k++] = pts[i];
  }
  hull.resize(k > 0 ? k - 1 : 0);
  if (hull.size() < 3) return std::nullopt;
  std::vector<sky::SkyPoint> vertices;
  for (const auto& p : hull) {
    vertices.push_back(sky::to_sky({c.x + p.x * e.x + p.y * n.x, c.y + p.x * e.y + p.y * n.y, c.z + p.x * e.z + p.y * n.z}));
  }
  return sky::Polygon(std::move(vertices));
}

std::optional<DatasetRecord> coadd_mosaic_record(const CoaddGroup& group, const std::vector<DatasetRecord>& patches) {
  std::vector<const DatasetRecord*> members;
  for (const auto& p : patches) {
    if (coadd_group_of(p) == group) members.push_back(&p);
  }
  if (members.empty()) return std::nullopt;
  std::sort(members.begin(), members.end(),
            [](const DatasetRecord* a, const DatasetRecord* b) { return a->dataset_id < b->dataset_id; });
  const DatasetRecord& first = *members.front();
  DatasetRecord r;
  r.dataset_id = coadd_mosaic_id(group);
  r.type = group.type;
  r.collection = group.collection;
  r.data_id.instrument = first.data_id.instrument;
  r.data_id.band = group.band;
  r.data_id.physical_filter = first.data_id.physical_filter;
  r.storage = Storage::virtual_;
  r.content_type = "application/fits";
  r.facility_name = first.facility_name;
  r.instrument_name = first.instrument_name;
  r.target_name = first.target_name;
  r.software_version = software_version();
  r.em_min = first.em_min;
  r.em_max = first.em_max;
  r.em_res_power = first.em_res_power;
  r.pixel_scale_arcsec = first.pixel_scale_arcsec;
  r.rights = first.rights;
  bool uniform_rights = true;
  bool one_skymap = true;
  Recipe recipe;
  recipe.product = std::string(kCoaddMosaicProduct);
  recipe.software_version = software_version();
  recipe.algorithm_version = "pixserve-mosaic-1";
  recipe.parameters = {{"dataset_type", std::string(to_string(group.type))}, {"band", group.band}};
  std::vector<sky::Polygon> footprints;
  std::int64_t bytes = 0;
  for (const DatasetRecord* p : members) {
    recipe.inputs.push_back({"patch", p->dataset_id, p->checksum});
    if (p->footprint) footprints.push_back(*p->footprint);
    bytes += p->file_size;
    uniform_rights = uniform_rights && same_rights(p->rights, first.rights);
    one_skymap = one_skymap && p->data_id.skymap == first.data_id.skymap;
    auto widen = [](std::optional<double>& lo, std::optional<double>& hi, const std::optional<double>& a,
                    const std::optional<double>& b) {
      if (a) lo = lo ? std::min(*lo, *a) : *a;
      if (b) hi = hi ? std::max(*hi, *b) : *b;
    };
    widen(r.t_min, r.t_max, p->t_min, p->t_max);
    if (p->t_exptime) r.t_exptime = std::max(r.t_exptime.value_or(0.0), *p->t_exptime);
    if (p->s_resolution) r.s_resolution = std::max(r.s_resolution.value_or(0.0), *p->s_resolution);
    if (p->psf_fwhm) r.psf_fwhm = std::max(r.psf_fwhm.value_or(0.0), *p->psf_fwhm);
  }
  if (one_skymap) r.data_id.skymap = first.data_id.skymap;
  if (!uniform_rights) {
    // Patches of different audiences: the row is for the widest audience
    // that some patches have (public, else the data-rights holders), and
    // its footprint covers only those patches, so that it shows no one the
    // coverage of patches they may not read; a caller who may read more
    // gets those patches in mosaics too (SODA reads what the caller may).
    // Without public or data-rights patches it is the survey's alone.
    auto widest = [&](ReadPolicy policy) -> std::optional<Rights> {
      for (const DatasetRecord* p : members) {
        if (p->rights.policy == policy && !p->rights.release_mjd) return p->rights;
      }
      return std::nullopt;
    };
    auto rights = widest(ReadPolicy::public_);
    if (!rights) rights = widest(ReadPolicy::data_rights);
    if (!rights) {
      rights = Rights{};
      rights->policy = ReadPolicy::owner;
    }
    r.rights = *rights;
    footprints.clear();
    for (const DatasetRecord* p : members) {
      if (p->footprint && same_rights(p->rights, r.rights)) footprints.push_back(*p->footprint);
    }
  }
  r.recipe = recipe.to_json();
  r.checksum = recipe_hash(r.recipe);
  r.file_size = bytes;
  if (auto hull = convex_hull(footprints)) {
    const auto circle = hull->bounding_circle();
    r.s_ra = circle.center.ra;
    r.s_dec = circle.center.dec;
    r.s_fov = 2.0 * circle.radius_deg;
    if (r.pixel_scale_arcsec && *r.pixel_scale_arcsec > 0) {
      const double side = r.s_fov.value() * 3600.0 / *r.pixel_scale_arcsec;
      r.width = r.height = static_cast<std::int64_t>(std::ceil(side));
    }
    r.footprint = std::move(*hull);
  }
  return r;
}

void refresh_coadd_mosaics(Registry& registry, const std::set<CoaddGroup>& groups) {
  for (const auto& group : groups) {
    DatasetQuery q;
    q.collections = {group.collection};
    q.dataset_types = {std::string(to_string(group.type))};
    q.bands = {group.band};
    q.patches_only = true;
    const auto patches = registry.find(q);
    const std::string id = coadd_mosaic_id(group);
    registry.remove(id);
    if (auto record = coadd_mosaic_record(group, patches)) registry.insert(*record);
  }
}

}  // namespace pixserve::repo
