#include "image/cutout.hpp"

#include <fitsio.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numbers>
#include <type_traits>
#include <variant>

namespace pixserve::image {

namespace {

// ---------------------------------------------------------------------------
// Shapes: validation and text
// ---------------------------------------------------------------------------

bool finite_point(const sky::SkyPoint& p) { return std::isfinite(p.ra) && std::isfinite(p.dec); }

// Shortest text that reads back as the same double ("10", "10.25", "1e-05").
std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// ---------------------------------------------------------------------------
// Shape boundaries as parametric curves on the sky
// ---------------------------------------------------------------------------

// One piece of a shape's boundary: t in [0, 1] -> sky position, plus how many
// equal steps to start from before adaptive refinement.
struct Curve {
  std::function<sky::SkyPoint(double)> at;
  int initial_steps = 16;
};

sky::Vec3 normalized(const sky::Vec3& v) {
  const double n = std::sqrt(v.x * v.x + v.y * v.y + v.z * v.z);
  return {v.x / n, v.y / n, v.z / n};
}

sky::Vec3 cross(const sky::Vec3& a, const sky::Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

std::vector<Curve> boundary(const sky::Shape& shape) {
  std::vector<Curve> curves;
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    // The small circle at angular distance r around the centre, built from
    // the local north/east unit vectors so it is exact at any declination.
    const sky::Vec3 centre = sky::to_vector(c->center);
    const double ra = c->center.ra * std::numbers::pi / 180.0, dec = c->center.dec * std::numbers::pi / 180.0;
    const sky::Vec3 east{-std::sin(ra), std::cos(ra), 0.0};
    const sky::Vec3 north{-std::sin(dec) * std::cos(ra), -std::sin(dec) * std::sin(ra), std::cos(dec)};
    const double r = c->radius_deg * std::numbers::pi / 180.0;
    const double cr = std::cos(r), sr = std::sin(r);
    curves.push_back({[=](double t) {
                        const double a = 2.0 * std::numbers::pi * t;
                        const double ca = std::cos(a), sa = std::sin(a);
                        return sky::to_sky({cr * centre.x + sr * (ca * north.x + sa * east.x),
                                            cr * centre.y + sr * (ca * north.y + sa * east.y),
                                            cr * centre.z + sr * (ca * north.z + sa * east.z)});
                      },
                      64});
  } else if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    // Great-circle edges: rotate from a towards b in their common plane.
    const auto& v = p->vertices();
    for (size_t i = 0; i < v.size(); ++i) {
      const sky::Vec3 a = sky::to_vector(v[i]), b = sky::to_vector(v[(i + 1) % v.size()]);
      const sky::Vec3 axis = normalized(cross(a, b));
      const sky::Vec3 perp = cross(axis, a);  // unit, a rotated by 90 degrees towards b
      const double angle = std::atan2(std::sqrt(std::max(0.0, 1.0 - std::pow(a.x * b.x + a.y * b.y + a.z * b.z, 2))),
                                      a.x * b.x + a.y * b.y + a.z * b.z);
      curves.push_back({[=](double t) {
                          const double s = angle * t;
                          const double cs = std::cos(s), ss = std::sin(s);
                          return sky::to_sky({cs * a.x + ss * perp.x, cs * a.y + ss * perp.y, cs * a.z + ss * perp.z});
                        },
                        8});
    }
  } else {
    const auto& r = std::get<sky::RaDecRange>(shape);
    const double span = r.ra_min <= r.ra_max ? r.ra_max - r.ra_min : r.ra_max + 360.0 - r.ra_min;
    const double ra0 = r.ra_min, d0 = r.dec_min, d1 = r.dec_max;
    // Parallels are small circles (curved on the image); meridians are great
    // circles. Seams of a full-circle range lie inside the shape, so
    // sampling them is harmless.
    const int steps = 16 + static_cast<int>(span * 2.0);
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span * t), d0}; }, steps});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span * t), d1}; }, steps});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0), d0 + (d1 - d0) * t}; }, 8});
    curves.push_back({[=](double t) { return sky::SkyPoint{sky::normalize_ra(ra0 + span), d0 + (d1 - d0) * t}; }, 8});
  }
  return curves;
}

// ---------------------------------------------------------------------------
// Extent of (shape ∩ image) in pixel coordinates
// ---------------------------------------------------------------------------

struct Rect {
  double x0, y0, x1, y1;  // closed
  bool contains(const wcs::PixelPoint& p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
};

struct Extent {
  double xmin = std::numeric_limits<double>::infinity();
  double xmax = -std::numeric_limits<double>::infinity();
  double ymin = std::numeric_limits<double>::infinity();
  double ymax = -std::numeric_limits<double>::infinity();
  void add(const wcs::PixelPoint& p) {
    xmin = std::min(xmin, p.x);
    xmax = std::max(xmax, p.x);
    ymin = std::min(ymin, p.y);
    ymax = std::max(ymax, p.y);
  }
  bool empty() const { return xmin > xmax; }
};

// Liang-Barsky: adds the part of segment a-b inside r (its end points) to e.
void add_clipped(const Rect& r, const wcs::PixelPoint& a, const wcs::PixelPoint& b, Extent& e) {
  double t0 = 0.0, t1 = 1.0;
  const double dx = b.x - a.x, dy = b.y - a.y;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {a.x - r.x0, r.x1 - a.x, a.y - r.y0, r.y1 - a.y};
  for (int i = 0; i < 4; ++i) {
    if (p[i] == 0.0) {
      if (q[i] < 0.0) return;  // parallel to and outside this edge
      continue;
    }
    const double t = q[i] / p[i];
    if (p[i] < 0.0) {
      t0 = std::max(t0, t);
    } else {
      t1 = std::min(t1, t);
    }
    if (t0 > t1) return;
  }
  e.add({a.x + t0 * dx, a.y + t0 * dy});
  e.add({a.x + t1 * dx, a.y + t1 * dy});
}

// Walks the boundary curves, refining adaptively where they are near the
// image: a segment is split until its chord is within kChordTolerance pixels
// of the curve (checked at the midpoint) and short; far from the image
// nothing is refined, so a huge shape costs little more than a small one.
// The clipped chords bound the part of the boundary inside the image to that
// tolerance; then each of the four extremes that lies on the curve itself
// (not on an image edge) is polished by a golden-section search along the
// curve, so the box is exact to ~1e-9 pixel and not just to the tolerance,
// while a 51x51 stamp needs only a few hundred projections.
class CurveWalker {
 public:
  CurveWalker(const wcs::Wcs& wcs, const Rect& rect, Extent& extent) : wcs_(wcs), rect_(rect), extent_(extent) {}

  void walk(const Curve& c) {
    double t_prev = 0.0;
    auto p_prev = project(c, 0.0);
    for (int i = 1; i <= c.initial_steps; ++i) {
      const double t = static_cast<double>(i) / c.initial_steps;
      auto p = project(c, t);
      segment(c, t_prev, p_prev, t, p, 0);
      t_prev = t;
      p_prev = p;
    }
  }

  // Refines the extremes found by walk(); call once after all curves.
  void polish() {
    for (int axis = 0; axis < 4; ++axis) {
      const auto& w = witness_[axis];
      if (!w.curve) continue;
      // Extreme of sign * coordinate near w.t (within one leaf either side).
      const double sign = axis % 2 == 0 ? -1.0 : 1.0;  // min x, max x, min y, max y
      const bool use_x = axis < 2;
      auto f = [&](double t) -> double {
        const auto p = project(*w.curve, t);
        if (!p || !rect_.contains(*p)) return -std::numeric_limits<double>::infinity();
        return sign * (use_x ? p->x : p->y);
      };
      double lo = std::max(0.0, w.t - w.dt), hi = std::min(1.0, w.t + w.dt);
      constexpr double g = 0.6180339887498949;
      double m1 = hi - g * (hi - lo), m2 = lo + g * (hi - lo);
      double f1 = f(m1), f2 = f(m2);
      for (int i = 0; i < 40 && hi - lo > 1e-13; ++i) {
        if (f1 < f2) {
          lo = m1, m1 = m2, f1 = f2, m2 = lo + g * (hi - lo), f2 = f(m2);
        } else {
          hi = m2, m2 = m1, f2 = f1, m1 = hi - g * (hi - lo), f1 = f(m1);
        }
      }
      if (const auto p = project(*w.curve, 0.5 * (lo + hi)); p && rect_.contains(*p)) extent_.add(*p);
    }
  }

 private:
  static constexpr double kChordTolerance = 0.02;  // pixels
  static constexpr double kMaxLeafLength = 4.0;    // pixels, near the image
  static constexpr int kMaxDepth = 40;

  // Where an extreme of the walked chords sits on its curve.
  struct Witness {
    const Curve* curve = nullptr;
    double t = 0.0, dt = 0.0;
    double value = 0.0;
  };

  std::optional<wcs::PixelPoint> project(const Curve& c, double t) const {
    try {
      return wcs_.sky_to_pixel(c.at(t));
    } catch (const wcs::WcsError&) {
      return std::nullopt;  // e.g. more than 90 degrees from a TAN tangent point
    }
  }

  bool near_image(const wcs::PixelPoint& a, const wcs::PixelPoint& b) const {
    const double len = std::hypot(b.x - a.x, b.y - a.y);
    // The arc may bulge beyond its chord; allow a generous margin.
    const double margin = 0.25 * len + 2.0;
    return std::max(a.x, b.x) + margin >= rect_.x0 && std::min(a.x, b.x) - margin <= rect_.x1 &&
           std::max(a.y, b.y) + margin >= rect_.y0 && std::min(a.y, b.y) - margin <= rect_.y1;
  }

  // A curve point inside the image: a candidate for the extremes.
  void vertex(const Curve& c, double t, double dt, const wcs::PixelPoint& p) {
    if (!rect_.contains(p)) return;
    const double v[4] = {-p.x, p.x, -p.y, p.y};
    for (int i = 0; i < 4; ++i) {
      if (!witness_[i].curve || v[i] > witness_[i].value) witness_[i] = {&c, t, dt, v[i]};
    }
  }

  void leaf(const Curve& c, double ta, const wcs::PixelPoint& pa, double tb, const wcs::PixelPoint& pb) {
    add_clipped(rect_, pa, pb, extent_);
    vertex(c, ta, tb - ta, pa);
    vertex(c, tb, tb - ta, pb);
  }

  void segment(const Curve& c, double ta, const std::optional<wcs::PixelPoint>& pa, double tb,
               const std::optional<wcs::PixelPoint>& pb, int depth) {
    if (!pa && !pb) return;  // unprojectable: cannot be on the image
    if (pa && pb && !near_image(*pa, *pb)) return;
    const double tm = 0.5 * (ta + tb);
    if (depth >= kMaxDepth) {
      if (pa && pb) leaf(c, ta, *pa, tb, *pb);
      return;
    }
    const auto pm = project(c, tm);
    if (pa && pb && pm) {
      const double len = std::hypot(pb->x - pa->x, pb->y - pa->y);
      const double dev = std::hypot(pm->x - 0.5 * (pa->x + pb->x), pm->y - 0.5 * (pa->y + pb->y));
      if (dev <= kChordTolerance && len <= kMaxLeafLength) {
        leaf(c, ta, *pa, tm, *pm);
        leaf(c, tm, *pm, tb, *pb);
        return;
      }
    }
    segment(c, ta, pa, tm, pm, depth + 1);
    segment(c, tm, pm, tb, pb, depth + 1);
  }

  const wcs::Wcs& wcs_;
  const Rect& rect_;
  Extent& extent_;
  Witness witness_[4];
};

// Pixels whose square [i - 0.5, i + 0.5] overlaps [lo, hi] with positive
// length, clipped to [0, n). Half-open convention: a region ending exactly
// on a pixel edge does not take the next pixel.
std::optional<std::pair<long, long>> pixel_span(double lo, double hi, long n) {
  const long first = std::max(0L, static_cast<long>(std::floor(lo - 0.5)) + 1);
  const long last = std::min(n - 1, static_cast<long>(std::ceil(hi + 0.5)) - 1);
  if (first > last) return std::nullopt;
  return std::pair{first, last};
}

// ---------------------------------------------------------------------------
// Header cards of the source, typed so they can be written back
// ---------------------------------------------------------------------------

struct Commentary {
  std::string text;
};
struct History {
  std::string text;
};
using Value = std::variant<bool, long long, double, std::string, Commentary, History>;

struct TypedCard {
  std::string keyword;
  Value value;
  std::string comment;
};

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(' ');
  return std::string(s.substr(b, e - b + 1));
}

// The content of the first quoted FITS string in text ('' unescaped, trailing blanks dropped).
std::string quoted_content(std::string_view text) {
  const auto q = text.find('\'');
  if (q == std::string_view::npos) return {};
  std::string out;
  for (size_t i = q + 1; i < text.size(); ++i) {
    if (text[i] == '\'') {
      if (i + 1 < text.size() && text[i + 1] == '\'') {
        out += '\'';
        ++i;
        continue;
      }
      break;
    }
    out += text[i];
  }
  return rtrim(out);
}

// Keywords that describe the HDU's structure, compression, checksums or
// WCS: they are rewritten for the cutout (or by cfitsio), never copied.
bool is_managed_keyword(std::string_view key) {
  static constexpr std::string_view exact[] = {
      "SIMPLE", "XTENSION", "BITPIX",  "NAXIS",   "EXTEND",   "PCOUNT",   "GCOUNT",  "EXTNAME", "EXTVER",
      "EXTLEVEL", "BZERO",  "BSCALE",  "BLANK",   "CHECKSUM", "DATASUM",  "END",     "TFIELDS", "THEAP",
      "DATE",   "INHERIT",  "WCSAXES", "RADESYS", "RADECSYS", "EQUINOX",  "EPOCH",   "LONPOLE", "LATPOLE",
      "WCSNAME", "A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER", "A_DMAX",  "B_DMAX",  "LTM1_1",  "LTM1_2",
      "LTM2_1", "LTM2_2",   "LTV1",    "LTV2",    "MJDREF",   "CONTINUE"};
  for (auto e : exact) {
    if (key == e) return true;
  }
  auto starts = [&](std::string_view p) { return key.substr(0, p.size()) == p; };
  auto rest_is = [&](size_t from, auto pred) {
    if (from >= key.size()) return false;
    for (size_t i = from; i < key.size(); ++i) {
      if (!pred(key[i])) return false;
    }
    return true;
  };
  auto wcs_tail = [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '_' || std::isupper(static_cast<unsigned char>(ch)); };
  // Compression keywords (ZIMAGE, ZNAXIS1, ZCMPTYPE, ZQUANTIZ, ...) and table columns.
  if (starts("Z") || starts("TTYPE") || starts("TFORM") || starts("TUNIT") || starts("TDIM")) return true;
  if (starts("NAXIS")) return true;
  // WCS, including alternate descriptions (CRPIX1A, ...), and SIP (A_1_2, ...).
  for (std::string_view p : {"CTYPE", "CRVAL", "CRPIX", "CDELT", "CUNIT", "CROTA", "CRDER", "CSYER", "CNAME"}) {
    if (starts(p) && rest_is(p.size(), wcs_tail)) return true;
  }
  for (std::string_view p : {"CD", "PC", "PV", "PS"}) {
    if (starts(p) && key.size() > p.size() && std::isdigit(static_cast<unsigned char>(key[p.size()])) &&
        key.find('_') != std::string_view::npos && rest_is(p.size(), wcs_tail)) {
      return true;
    }
  }
  for (std::string_view p : {"A_", "B_", "AP_", "BP_"}) {
    if (starts(p) && rest_is(p.size(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) || ch == '_'; })) {
      return true;
    }
  }
  for (std::string_view p : {"WCSAXES", "RADESYS", "EQUINOX", "LONPOLE", "LATPOLE", "WCSNAME"}) {
    if (starts(p) && key.size() == p.size() + 1) return true;  // alternate WCS letter
  }
  return false;
}

// cfitsio writes these two COMMENT cards into every new primary HDU itself.
bool is_boilerplate_comment(std::string_view text) {
  return text.find("FITS (Flexible Image Transport System) format is") != std::string_view::npos ||
         text.find("and Astrophysics', volume 376, page 35") != std::string_view::npos;
}

std::optional<Value> parse_number_or_bool(std::string v) {
  if (v == "T") return Value(true);
  if (v == "F") return Value(false);
  long long i = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
  if (ec == std::errc() && ptr == v.data() + v.size()) return Value(i);
  std::replace(v.begin(), v.end(), 'D', 'E');
  std::replace(v.begin(), v.end(), 'd', 'e');
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0') return std::nullopt;  // complex or junk: not copied
  return Value(d);
}

// Splits the value field of a card (after "= ") into value text (quotes
// kept for strings) and comment.
std::pair<std::string, std::string> split_value(std::string_view field) {
  size_t i = field.find_first_not_of(' ');
  if (i == std::string_view::npos) return {};
  size_t end = i;
  if (field[i] == '\'') {
    for (end = i + 1; end < field.size(); ++end) {
      if (field[end] == '\'') {
        if (end + 1 < field.size() && field[end + 1] == '\'') {
          ++end;
          continue;
        }
        ++end;
        break;
      }
    }
  }
  const auto slash = field.find('/', end);
  const std::string value = trim(field.substr(i, (slash == std::string_view::npos ? field.size() : slash) - i));
  const std::string comment = slash == std::string_view::npos ? "" : trim(field.substr(slash + 1));
  return {value, comment};
}

// The copyable cards of a header (80-character records): everything but
// structure, compression and WCS.
std::vector<TypedCard> copyable_cards(const std::string& records, int nkeys) {
  std::vector<TypedCard> out;
  bool continuing = false;  // the previous card is a long string to be continued
  for (int i = 0; i < nkeys && static_cast<size_t>(i + 1) * 80 <= records.size(); ++i) {
    const std::string_view rec(records.data() + static_cast<size_t>(i) * 80, 80);
    std::string key = trim(rec.substr(0, 8));
    // Where the value starts: column 11, or after the '=' of a HIERARCH card
    // (cfitsio writes keywords longer than 8 characters, e.g. MP_NO_DATA, so).
    size_t value_at = rec.substr(8, 2) == "= " ? 10 : std::string_view::npos;
    if (key == "HIERARCH") {
      const auto eq = rec.find('=', 8);
      key = trim(rec.substr(8, eq == std::string_view::npos ? 72 : eq - 8));
      value_at = eq == std::string_view::npos ? eq : eq + 1;
    }
    if (key == "CONTINUE") {
      if (continuing) {
        auto& s = std::get<std::string>(out.back().value);
        s.pop_back();  // the '&' that announced this card
        s += quoted_content(rec.substr(8));
        continuing = !s.empty() && s.back() == '&';
      }
      continue;
    }
    continuing = false;
    if (key.empty()) continue;
    if (key == "COMMENT" || key == "HISTORY") {
      std::string text = rtrim(std::string(rec.substr(8)));
      if (key == "COMMENT") {
        if (!is_boilerplate_comment(text)) out.push_back({key, Commentary{std::move(text)}, {}});
      } else {
        out.push_back({key, History{std::move(text)}, {}});
      }
      continue;
    }
    if (is_managed_keyword(key) || value_at == std::string_view::npos) continue;
    auto [value, comment] = split_value(rec.substr(value_at));
    if (value.empty()) continue;  // undefined value
    if (value.front() == '\'') {
      std::string s = quoted_content(value);
      continuing = !s.empty() && s.back() == '&';
      out.push_back({key, std::move(s), std::move(comment)});
      continue;
    }
    if (auto v = parse_number_or_bool(value)) out.push_back({key, std::move(*v), std::move(comment)});
  }
  return out;
}

// Header records read straight through cfitsio. fits::File::header_records
// presents a tile-compressed HDU as an image by building it in a mem://
// file, which allocates and clears the whole uncompressed data unit (64 MB
// for a 4k x 4k float plane) - far too slow for a stamp. So read the stored
// records and drop the table and compression keywords instead: what is left
// (metadata and WCS) is what the image header would say.
class HeaderReader {
 public:
  explicit HeaderReader(const std::filesystem::path& path) : path_(path) {
    int status = 0;
    fits_open_file(&f_, path.c_str(), READONLY, &status);
    check(status, "opening");
  }
  HeaderReader(const HeaderReader&) = delete;
  HeaderReader& operator=(const HeaderReader&) = delete;
  ~HeaderReader() {
    int status = 0;
    if (f_ != nullptr) fits_close_file(f_, &status);
  }

  // Records of HDU number hdu (1-based), nkeys set to their count.
  std::string records(int hdu, int& nkeys) {
    int status = 0;
    fits_movabs_hdu(f_, hdu, nullptr, &status);
    check(status, "moving to an HDU");
    const bool compressed = fits_is_compressed_image(f_, &status) != 0;
    char* header = nullptr;
    nkeys = 0;
    fits_hdr2str(f_, 0, nullptr, 0, &header, &nkeys, &status);
    std::unique_ptr<char, void (*)(char*)> owned(header, [](char* p) {
      int s = 0;
      if (p != nullptr) fits_free_memory(p, &s);
    });
    check(status, "reading the header");
    std::string all(header != nullptr ? header : "");
    all.resize(static_cast<size_t>(nkeys) * 80, ' ');
    if (!compressed) return all;
    std::string kept;
    int n = 0;
    for (int i = 0; i < nkeys; ++i) {
      const std::string_view rec(all.data() + static_cast<size_t>(i) * 80, 80);
      const std::string key = trim(rec.substr(0, 8));
      if (key == "XTENSION" || key == "BITPIX" || key.starts_with("NAXIS") || key == "PCOUNT" || key == "GCOUNT" ||
          key == "TFIELDS" || key.starts_with("TTYPE") || key.starts_with("TFORM") || key.starts_with("Z")) {
        continue;
      }
      kept += rec;
      ++n;
    }
    nkeys = n;
    return kept;
  }

 private:
  void check(int status, std::string_view doing) {
    if (status == 0) return;
    char text[FLEN_STATUS];
    fits_get_errstatus(status, text);
    char msg[FLEN_ERRMSG];
    while (fits_read_errmsg(msg) != 0) {
    }
    throw fits::FitsError(path_, fmt::format("{}: {} (status {})", doing, text, status));
  }
  std::filesystem::path path_;
  fitsfile* f_ = nullptr;
};

void write_cards(fits::File& out, const std::vector<TypedCard>& cards) {
  for (const auto& c : cards) {
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, bool>) {
            out.write_bool(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, long long>) {
            out.write_int(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, double>) {
            out.write_double(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, std::string>) {
            out.write_string(c.keyword, v, c.comment);
          } else if constexpr (std::is_same_v<V, Commentary>) {
            out.write_comment(v.text);
          } else {
            out.write_history(v.text);
          }
        },
        c.value);
  }
}

std::optional<double> card_number(const std::vector<TypedCard>& cards, std::string_view key) {
  for (const auto& c : cards) {
    if (c.keyword != key) continue;
    if (const auto* d = std::get_if<double>(&c.value)) return *d;
    if (const auto* i = std::get_if<long long>(&c.value)) return static_cast<double>(*i);
  }
  return std::nullopt;
}

std::optional<std::string> card_string(const std::vector<TypedCard>& cards, std::string_view key) {
  for (const auto& c : cards) {
    if (c.keyword != key) continue;
    if (const auto* s = std::get_if<std::string>(&c.value)) return *s;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Sources: the image planes of a file
// ---------------------------------------------------------------------------

struct Plane {
  int hdu = 0;
  std::string extname;
  int bitpix = 0;  // equivalent BITPIX
  long width = 0, height = 0;
  std::vector<TypedCard> cards;
  std::optional<wcs::Wcs> wcs;
  // Physical offset already recorded in the source (a cutout of a cutout).
  double ltv1 = 0.0, ltv2 = 0.0;
};

struct Source {
  std::filesystem::path path;
  std::vector<TypedCard> primary;  // metadata of the primary HDU
  std::vector<Plane> planes;
};

// Opens `path` and describes its image planes (HDUs with 2-D pixels). Raw
// amplifier files are refused: their pixels are not on the sky grid until
// assembled and calibrated.
Source describe(fits::File& file) {
  Source s;
  s.path = file.path();
  HeaderReader headers(file.path());
  const int n = file.hdu_count();
  for (int h = 1; h <= n; ++h) {
    file.move_to_hdu(h);
    int nkeys = 0;
    std::string records;
    if (h == 1) {
      records = headers.records(h, nkeys);
      s.primary = copyable_cards(records, nkeys);
    }
    if (!file.current_is_image()) continue;
    const auto shape = file.image_shape();
    if (shape.size() < 2 || shape[0] <= 0 || shape[1] <= 0) continue;
    bool plane2d = true;
    for (size_t i = 2; i < shape.size(); ++i) plane2d = plane2d && shape[i] == 1;
    if (!plane2d) continue;
    Plane p;
    p.hdu = h;
    p.extname = file.read_string("EXTNAME").value_or("");
    p.bitpix = file.image_bitpix();
    p.width = shape[0];
    p.height = shape[1];
    if (file.has_key("DATASEC") || file.has_key("BIASSEC")) {
      throw UnsupportedDataset(fmt::format(
          "{}: cutouts of raw amplifier data are not supported; cut the calexp (processed visit image) of the "
          "same visit and detector instead",
          s.path.filename().string()));
    }
    if (h != 1) records = headers.records(h, nkeys);
    p.cards = copyable_cards(records, nkeys);
    p.ltv1 = file.read_double("LTV1").value_or(0.0);
    p.ltv2 = file.read_double("LTV2").value_or(0.0);
    try {
      p.wcs = wcs::Wcs::from_header(records, nkeys);
    } catch (const wcs::WcsError&) {
      // No celestial WCS: the plane can still be cut by pixel ranges.
    }
    s.planes.push_back(std::move(p));
  }
  if (card_string(s.primary, "DSTYPE") == "raw") {
    throw UnsupportedDataset(fmt::format(
        "{}: cutouts of raw data are not supported; cut the calexp (processed visit image) of the same visit and "
        "detector instead",
        s.path.filename().string()));
  }
  if (s.planes.empty()) {
    throw UnsupportedDataset(fmt::format("{}: the file holds no image pixels to cut", s.path.filename().string()));
  }
  for (const auto& p : s.planes) {
    if (p.width != s.planes.front().width || p.height != s.planes.front().height) {
      throw UnsupportedDataset(fmt::format("{}: image planes differ in size (HDU {} is {}x{}, HDU {} is {}x{})",
                                           s.path.filename().string(), s.planes.front().hdu, s.planes.front().width,
                                           s.planes.front().height, p.hdu, p.width, p.height));
    }
  }
  return s;
}

// Calls f(T{}) with the pixel type of an equivalent BITPIX.
template <typename F>
void with_pixel_type(int bitpix, const std::filesystem::path& path, F&& f) {
  switch (bitpix) {
    case 8: f(std::uint8_t{}); break;
    case 10: f(std::int8_t{}); break;
    case 16: f(std::int16_t{}); break;
    case 20: f(std::uint16_t{}); break;
    case 32: f(std::int32_t{}); break;
    case 40: f(std::uint32_t{}); break;
    case 64: f(std::int64_t{}); break;
    case -32: f(float{}); break;
    case -64: f(double{}); break;
    default: throw UnsupportedDataset(fmt::format("{}: unsupported BITPIX {}", path.filename().string(), bitpix));
  }
}

// ---------------------------------------------------------------------------
// Planning: one box per shape
// ---------------------------------------------------------------------------

struct Planned {
  fits::PixelBox box;
  std::string region;
  size_t shape_index = 0;
};

std::string pixel_text(const PixelRanges& r) {
  auto axis = [](const std::optional<PixelRange>& a) {
    return a ? fmt::format("{} {}", a->first, a->last) : std::string("* *");
  };
  return fmt::format("{} {}", axis(r.x), axis(r.y));
}

// Boxes for every shape that overlaps a width x height image; NoOverlap when none does.
std::vector<Planned> plan(const CutoutRequest& request, const wcs::Wcs* wcs, long width, long height,
                          std::string_view what) {
  for (const auto& s : request.shapes) validate_shape(s);
  std::optional<fits::PixelBox> limit = fits::PixelBox{0, 0, width, height};
  if (request.pixels) limit = pixel_bounds(width, height, *request.pixels);
  if (!limit) throw NoOverlap(fmt::format("{}: the pixel ranges {} lie outside the {}x{} image", what,
                                          pixel_text(*request.pixels), width, height));
  std::vector<Planned> out;
  if (request.shapes.empty()) {
    out.push_back({*limit, {}, 0});
    return out;
  }
  if (wcs == nullptr) throw UnsupportedDataset(fmt::format("{}: no celestial WCS, only pixel cutouts are possible", what));
  for (size_t i = 0; i < request.shapes.size(); ++i) {
    auto box = pixel_bounds(*wcs, width, height, request.shapes[i]);
    if (box) box = intersect(*box, *limit);
    if (box) out.push_back({*box, region_text(request.shapes[i]), i});
  }
  if (out.empty()) {
    throw NoOverlap(request.shapes.size() == 1
                        ? fmt::format("{}: {} does not overlap the image", what, region_text(request.shapes[0]))
                        : fmt::format("{}: none of the {} regions overlaps the image", what, request.shapes.size()));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

std::string section_text(const fits::PixelBox& b) {
  return fmt::format("[{}:{},{}:{}]", b.x0 + 1, b.x0 + b.width, b.y0 + 1, b.y0 + b.height);
}

struct Provenance {
  std::string_view dataset_id;
  const CutoutRequest* request = nullptr;
  const Planned* planned = nullptr;
};

// Header of one cut plane, after its pixels: metadata, the plane's own
// cards, WCS shifted to the box, provenance.
void write_plane_header(fits::File& out, const std::vector<TypedCard>& primary, const Plane& plane,
                        const std::optional<wcs::Wcs>& wcs, const Provenance& prov, int extver) {
  const auto& box = prov.planned->box;
  out.write_int("EXTVER", extver, "cutout number within this file");
  write_cards(out, primary);
  write_cards(out, plane.cards);
  if (wcs) wcs->shifted(static_cast<double>(box.x0), static_cast<double>(box.y0)).write_to(out);
  out.write_string("PSDSID", prov.dataset_id, "source dataset ID");
  if (!prov.planned->region.empty()) out.write_string("PSREGION", prov.planned->region, "cutout region (DALI)");
  if (prov.request->pixels) out.write_string("PSPIXEL", pixel_text(*prov.request->pixels), "pixel ranges asked (x, y)");
  out.write_string("PSBOX", section_text(box), "cutout pixels in the source");
  // IRAF/LSST: physical = image - LTV, so the source (parent) pixel of a
  // cutout pixel follows from the file alone; offsets compose.
  out.write_double("LTV1", plane.ltv1 - static_cast<double>(box.x0), "source pixel = cutout pixel - LTV1");
  out.write_double("LTV2", plane.ltv2 - static_cast<double>(box.y0), "source pixel = cutout pixel - LTV2");
  out.write_double("LTM1_1", 1.0, "pixel scale relative to the source");
  out.write_double("LTM2_2", 1.0, "pixel scale relative to the source");
}

// Room for the cards write_plane_header writes after the pixels (the copied
// metadata and plane cards, EXTVER, a WCS with SIP, provenance), so that
// cfitsio need not shift the pixels for each header block they add: that
// made a 200 MB cutout ~15x slower than reading it. Stamps (< 1 MB) skip
// it, where shifting costs nothing and unused room would grow the file.
int header_reserve(size_t pixel_bytes, const std::vector<TypedCard>& primary, const Plane& plane, int extra = 0) {
  if (pixel_bytes < (std::size_t{1} << 20)) return 0;
  constexpr int wcs_cards = 160;  // wcslib's TAN-SIP output with high-order polynomials, generously
  constexpr int provenance_cards = 10;
  return static_cast<int>(primary.size() + plane.cards.size()) + 1 + wcs_cards + provenance_cards + extra;
}

std::vector<TypedCard> primary_for_output(const std::vector<TypedCard>& metadata, std::string_view dataset_id) {
  std::vector<TypedCard> cards = metadata;
  cards.push_back({"PSDSID", std::string(dataset_id), "source dataset ID"});
  return cards;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public: shapes and boxes
// ---------------------------------------------------------------------------

void validate_shape(const sky::Shape& shape) {
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    if (!finite_point(c->center) || c->center.dec < -90.0 || c->center.dec > 90.0) {
      throw std::invalid_argument("CIRCLE: centre must be finite with declination in [-90, 90]");
    }
    if (!std::isfinite(c->radius_deg) || c->radius_deg <= 0.0 || c->radius_deg > 180.0) {
      throw std::invalid_argument(fmt::format("CIRCLE: radius {} is not in (0, 180] degrees", c->radius_deg));
    }
  } else if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    // A constructed Polygon is already checked; only a default one can be empty.
    if (p->vertices().size() < 3) throw std::invalid_argument("POLYGON: needs at least 3 vertices");
    for (const auto& v : p->vertices()) {
      if (!finite_point(v) || v.dec < -90.0 || v.dec > 90.0) {
        throw std::invalid_argument("POLYGON: vertices must be finite with declination in [-90, 90]");
      }
    }
  } else {
    const auto& r = std::get<sky::RaDecRange>(shape);
    const double v[] = {r.ra_min, r.ra_max, r.dec_min, r.dec_max};
    for (double x : v) {
      if (!std::isfinite(x)) throw std::invalid_argument("RANGE: values must be finite");
    }
    if (r.dec_min < -90.0 || r.dec_max > 90.0 || r.dec_min >= r.dec_max) {
      throw std::invalid_argument(
          fmt::format("RANGE: declinations {} .. {} must satisfy -90 <= min < max <= 90", r.dec_min, r.dec_max));
    }
    if (r.ra_min < 0.0 || r.ra_min > 360.0 || r.ra_max < 0.0 || r.ra_max > 360.0 || r.ra_min == r.ra_max) {
      throw std::invalid_argument(
          fmt::format("RANGE: right ascensions {} .. {} must be distinct and within [0, 360]", r.ra_min, r.ra_max));
    }
  }
}

std::string region_text(const sky::Shape& shape) {
  if (const auto* c = std::get_if<sky::Circle>(&shape)) {
    return fmt::format("CIRCLE {} {} {}", number_text(c->center.ra), number_text(c->center.dec),
                       number_text(c->radius_deg));
  }
  if (const auto* p = std::get_if<sky::Polygon>(&shape)) {
    std::string s = "POLYGON";
    for (const auto& v : p->vertices()) s += " " + number_text(v.ra) + " " + number_text(v.dec);
    return s;
  }
  const auto& r = std::get<sky::RaDecRange>(shape);
  return fmt::format("RANGE {} {} {} {}", number_text(r.ra_min), number_text(r.ra_max), number_text(r.dec_min),
                     number_text(r.dec_max));
}

std::optional<fits::PixelBox> pixel_bounds(const wcs::Wcs& wcs, long width, long height, const sky::Shape& shape) {
  validate_shape(shape);
  if (width <= 0 || height <= 0) return std::nullopt;
  // The image's area in pixel coordinates: outer pixel edges.
  const Rect rect{-0.5, -0.5, static_cast<double>(width) - 0.5, static_cast<double>(height) - 0.5};
  Extent extent;
  // The region (shape ∩ image) is bounded by the shape's boundary inside the
  // image and the image's edges inside the shape; the extremes of the latter
  // are image corners inside the shape or crossings with the shape boundary,
  // which the clipped boundary chords already provide.
  CurveWalker walker(wcs, rect, extent);
  const auto curves = boundary(shape);
  for (const auto& c : curves) walker.walk(c);
  walker.polish();
  for (const wcs::PixelPoint corner : {wcs::PixelPoint{rect.x0, rect.y0}, wcs::PixelPoint{rect.x1, rect.y0},
                                       wcs::PixelPoint{rect.x1, rect.y1}, wcs::PixelPoint{rect.x0, rect.y1}}) {
    if (sky::contains(shape, wcs.pixel_to_sky(corner))) extent.add(corner);
  }
  if (extent.empty()) return std::nullopt;
  const auto xs = pixel_span(extent.xmin, extent.xmax, width);
  const auto ys = pixel_span(extent.ymin, extent.ymax, height);
  if (!xs || !ys) return std::nullopt;
  return fits::PixelBox{xs->first, ys->first, xs->second - xs->first + 1, ys->second - ys->first + 1};
}

std::optional<fits::PixelBox> pixel_bounds(long width, long height, const PixelRanges& ranges) {
  auto axis = [](const std::optional<PixelRange>& r, long n, const char* name) -> std::optional<std::pair<long, long>> {
    if (!r) return std::pair{0L, n - 1};
    if (r->first < 1 || r->first > r->last) {
      throw std::invalid_argument(
          fmt::format("PIXEL: range {} {} along {} must satisfy 1 <= first <= last", r->first, r->last, name));
    }
    if (r->first > n) return std::nullopt;
    return std::pair{r->first - 1, std::min(r->last, n) - 1};
  };
  const auto x = axis(ranges.x, width, "x (NAXIS1)");
  const auto y = axis(ranges.y, height, "y (NAXIS2)");
  if (!x || !y) return std::nullopt;
  return fits::PixelBox{x->first, y->first, x->second - x->first + 1, y->second - y->first + 1};
}

std::optional<fits::PixelBox> intersect(const fits::PixelBox& a, const fits::PixelBox& b) {
  const long x0 = std::max(a.x0, b.x0), y0 = std::max(a.y0, b.y0);
  const long x1 = std::min(a.x0 + a.width, b.x0 + b.width), y1 = std::min(a.y0 + a.height, b.y0 + b.height);
  if (x0 >= x1 || y0 >= y1) return std::nullopt;
  return fits::PixelBox{x0, y0, x1 - x0, y1 - y0};
}

wcs::PixelPoint box_center(const fits::PixelBox& box) {
  return {static_cast<double>(2 * box.x0 + box.width - 1) / 2.0, static_cast<double>(2 * box.y0 + box.height - 1) / 2.0};
}

// ---------------------------------------------------------------------------
// Public: single files
// ---------------------------------------------------------------------------

namespace {

// Cuts every planned box from every plane of an open, described source.
std::vector<CutoutPiece> cut_planes(fits::File& in, const Source& src, const std::vector<Planned>& planned,
                                    const CutoutRequest& request, fits::File& out, std::string_view dataset_id,
                                    int extver_start) {
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    for (const auto& plane : src.planes) {
      in.move_to_hdu(plane.hdu);
      with_pixel_type(plane.bitpix, src.path, [&]<typename T>(T) {
        const auto pixels = in.read_subset<T>(p.box);
        fits::ImageWriteOptions o;
        o.extname = plane.extname;
        o.header_reserve = header_reserve(pixels.pixels.size() * sizeof(T), src.primary, plane);
        out.append_image(pixels, o);
      });
      write_plane_header(out, src.primary, plane, plane.wcs, {dataset_id, &request, &p}, extver);
      piece.planes.push_back({plane.extname, out.current_hdu()});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

// Boxes come from the first plane's WCS (IMAGE in calexps); every plane is
// cut with the same box, each keeping its own WCS.
std::vector<Planned> plan_source(const Source& src, const CutoutRequest& request) {
  const Plane& first = src.planes.front();
  return plan(request, first.wcs ? &*first.wcs : nullptr, first.width, first.height, src.path.filename().string());
}

}  // namespace

std::vector<CutoutPiece> append_cutouts(const std::filesystem::path& source, const CutoutRequest& request,
                                        fits::File& out, std::string_view dataset_id, int extver_start) {
  auto in = fits::File::open(source);
  const Source src = describe(in);
  return cut_planes(in, src, plan_source(src, request), request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_cutout(const std::filesystem::path& source, const CutoutRequest& request,
                                      const std::filesystem::path& out_path, std::string_view dataset_id) {
  auto in = fits::File::open(source);
  const Source src = describe(in);
  // Planned before the output exists, so a failed request leaves no file behind.
  const auto planned = plan_source(src, request);
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(src.primary, dataset_id));
  auto pieces = cut_planes(in, src, planned, request, out, dataset_id, 1);
  out.close();
  return pieces;
}

// ---------------------------------------------------------------------------
// Public: coadds across patches
// ---------------------------------------------------------------------------

namespace {

struct Patch {
  fits::File file;
  Source source;
  long ox = 0, oy = 0;  // origin of the patch in the reference patch's grid
};

// The WCS records with the CRPIX cards taken out, and the CRPIX values.
std::pair<std::string, std::pair<double, double>> grid_signature(const wcs::Wcs& w) {
  const std::string records = w.header_records();
  std::string rest;
  double c1 = 0.0, c2 = 0.0;
  for (size_t i = 0; i + 80 <= records.size(); i += 80) {
    const std::string_view card(records.data() + i, 80);
    const std::string key = trim(card.substr(0, 8));
    if (key == "CRPIX1" || key == "CRPIX2") {
      std::string v = trim(card.substr(10));
      (key == "CRPIX1" ? c1 : c2) = std::strtod(v.c_str(), nullptr);
    } else {
      rest += card;
    }
  }
  return {rest, {c1, c2}};
}

struct Mosaic {
  std::vector<Patch> patches;  // sorted by path; the first is the reference grid
  fits::PixelBox bounds;       // union of the patches, reference grid
  wcs::Wcs grid_wcs;           // WCS of the union (pixel (0,0) = bounds origin)
};

Mosaic open_mosaic(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw std::invalid_argument("coadd cutout: no patch files given");
  std::vector<std::filesystem::path> sorted = files;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<Patch> patches;
  for (const auto& f : sorted) {
    auto file = fits::File::open(f);
    Source s = describe(file);
    patches.push_back({std::move(file), std::move(s), 0, 0});
  }
  const Source& ref = patches.front().source;
  if (!ref.planes.front().wcs) throw UnsupportedDataset(fmt::format("{}: no celestial WCS", sorted.front().string()));
  const auto [ref_sig, ref_crpix] = grid_signature(*ref.planes.front().wcs);
  long x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  for (auto& p : patches) {
    const Source& s = p.source;
    const auto name = s.path.filename().string();
    if (s.planes.size() != ref.planes.size()) {
      throw std::invalid_argument(fmt::format("coadd cutout: {} has {} image planes, {} has {}", name,
                                              s.planes.size(), sorted.front().filename().string(), ref.planes.size()));
    }
    for (size_t i = 0; i < s.planes.size(); ++i) {
      if (s.planes[i].extname != ref.planes[i].extname || s.planes[i].bitpix != ref.planes[i].bitpix) {
        throw std::invalid_argument(fmt::format("coadd cutout: plane {} of {} ({}, BITPIX {}) differs from {} ({}, BITPIX {})",
                                                i + 1, name, s.planes[i].extname, s.planes[i].bitpix,
                                                sorted.front().filename().string(), ref.planes[i].extname,
                                                ref.planes[i].bitpix));
      }
    }
    if (!s.planes.front().wcs) throw std::invalid_argument(fmt::format("coadd cutout: {} has no celestial WCS", name));
    const auto [sig, crpix] = grid_signature(*s.planes.front().wcs);
    const double dx = ref_crpix.first - crpix.first, dy = ref_crpix.second - crpix.second;
    if (sig != ref_sig || std::abs(dx - std::round(dx)) > 1e-6 || std::abs(dy - std::round(dy)) > 1e-6) {
      throw std::invalid_argument(fmt::format(
          "coadd cutout: {} and {} are not on one pixel grid (their WCSs differ by more than an integer CRPIX shift)",
          name, sorted.front().filename().string()));
    }
    p.ox = std::lround(dx);
    p.oy = std::lround(dy);
    const auto& pl = s.planes.front();
    if (&p == &patches.front()) {
      x0 = p.ox, y0 = p.oy, x1 = p.ox + pl.width, y1 = p.oy + pl.height;
    } else {
      x0 = std::min(x0, p.ox), y0 = std::min(y0, p.oy);
      x1 = std::max(x1, p.ox + pl.width), y1 = std::max(y1, p.oy + pl.height);
    }
  }
  fits::PixelBox bounds{x0, y0, x1 - x0, y1 - y0};
  wcs::Wcs grid = ref.planes.front().wcs->shifted(static_cast<double>(x0), static_cast<double>(y0));
  return {std::move(patches), bounds, std::move(grid)};
}

// Which patch each pixel of `box` (union grid) comes from: the one in which
// it lies farthest from the patch edge; -1 where no patch covers it.
std::vector<int> owners(const Mosaic& m, const fits::PixelBox& box) {
  std::vector<int> owner(static_cast<size_t>(box.width * box.height), -1);
  std::vector<long> best(owner.size(), -1);
  for (size_t k = 0; k < m.patches.size(); ++k) {
    const auto& p = m.patches[k];
    const auto& pl = p.source.planes.front();
    // Patch box in the union grid.
    const fits::PixelBox pb{p.ox - m.bounds.x0, p.oy - m.bounds.y0, pl.width, pl.height};
    const auto inter = intersect(pb, box);
    if (!inter) continue;
    for (long y = inter->y0; y < inter->y0 + inter->height; ++y) {
      const long dy = std::min(y - pb.y0, pb.y0 + pb.height - 1 - y);
      for (long x = inter->x0; x < inter->x0 + inter->width; ++x) {
        const long score = std::min(dy, std::min(x - pb.x0, pb.x0 + pb.width - 1 - x));
        const size_t i = static_cast<size_t>((y - box.y0) * box.width + (x - box.x0));
        if (score > best[i]) {  // strictly: ties keep the earlier patch
          best[i] = score;
          owner[i] = static_cast<int>(k);
        }
      }
    }
  }
  return owner;
}

template <typename T>
T fill_value(const Plane& plane) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::numeric_limits<T>::quiet_NaN();
  } else {
    const auto bit = card_number(plane.cards, "MP_NO_DATA");
    if (bit && *bit >= 0 && *bit < static_cast<double>(sizeof(T) * 8 - (std::is_signed_v<T> ? 1 : 0))) {
      return static_cast<T>(T{1} << static_cast<int>(*bit));
    }
    return T{};
  }
}

}  // namespace

namespace {

std::vector<CutoutPiece> cut_mosaic(Mosaic& m, const std::vector<Planned>& planned, const CutoutRequest& request,
                                    fits::File& out, std::string_view dataset_id, int extver_start) {
  std::vector<CutoutPiece> pieces;
  int extver = extver_start;
  for (const auto& p : planned) {
    const auto owner = owners(m, p.box);
    // Per patch, the bounding box of the pixels it supplies (union grid).
    std::vector<std::optional<fits::PixelBox>> supply(m.patches.size());
    for (long y = 0; y < p.box.height; ++y) {
      for (long x = 0; x < p.box.width; ++x) {
        const int k = owner[static_cast<size_t>(y * p.box.width + x)];
        if (k < 0) continue;
        auto& s = supply[static_cast<size_t>(k)];
        const long ux = p.box.x0 + x, uy = p.box.y0 + y;
        if (!s) {
          s = fits::PixelBox{ux, uy, 1, 1};
        } else {
          const long sx1 = std::max(s->x0 + s->width, ux + 1), sy1 = std::max(s->y0 + s->height, uy + 1);
          s->x0 = std::min(s->x0, ux);
          s->y0 = std::min(s->y0, uy);
          s->width = sx1 - s->x0;
          s->height = sy1 - s->y0;
        }
      }
    }
    // Metadata from the first supplying patch; the list of patches used as provenance.
    size_t meta = 0;
    std::string patch_list;
    for (size_t k = m.patches.size(); k-- > 0;) {
      if (supply[k]) meta = k;
    }
    int used = 0;
    for (size_t k = 0; k < m.patches.size(); ++k) {
      if (!supply[k]) continue;
      ++used;
      const auto id = card_string(m.patches[k].source.primary, "PATCH")
                          .value_or(m.patches[k].source.path.filename().string());
      patch_list += (patch_list.empty() ? "" : " ") + id;
    }
    std::vector<TypedCard> metadata = m.patches[meta].source.primary;
    if (used > 1) std::erase_if(metadata, [](const TypedCard& c) { return c.keyword == "PATCH"; });
    CutoutPiece piece{p.box, p.region, p.shape_index, extver, {}};
    for (size_t pi = 0; pi < m.patches[meta].source.planes.size(); ++pi) {
      const Plane& plane = m.patches[meta].source.planes[pi];
      with_pixel_type(plane.bitpix, m.patches[meta].source.path, [&]<typename T>(T) {
        fits::Image<T> img(p.box.width, p.box.height, fill_value<T>(plane));
        for (size_t k = 0; k < m.patches.size(); ++k) {
          if (!supply[k]) continue;
          auto& patch = m.patches[k];
          const fits::PixelBox& s = *supply[k];
          // Union grid -> this patch's own pixels.
          const long px = s.x0 + m.bounds.x0 - patch.ox, py = s.y0 + m.bounds.y0 - patch.oy;
          patch.file.move_to_hdu(patch.source.planes[pi].hdu);
          const auto part = patch.file.read_subset<T>({px, py, s.width, s.height});
          for (long y = 0; y < s.height; ++y) {
            for (long x = 0; x < s.width; ++x) {
              const long ox = s.x0 - p.box.x0 + x, oy = s.y0 - p.box.y0 + y;
              if (owner[static_cast<size_t>(oy * p.box.width + ox)] == static_cast<int>(k)) img.at(ox, oy) = part.at(x, y);
            }
          }
        }
        fits::ImageWriteOptions o;
        o.extname = plane.extname;
        o.header_reserve = header_reserve(img.pixels.size() * sizeof(T), metadata, plane, 1);  // + PSPATCHS
        out.append_image(img, o);
      });
      // Each plane's own WCS, moved to the union grid, then to the box.
      std::optional<wcs::Wcs> grid_wcs;
      if (plane.wcs) {
        const auto& meta_patch = m.patches[meta];
        grid_wcs = plane.wcs->shifted(static_cast<double>(m.bounds.x0 - meta_patch.ox),
                                      static_cast<double>(m.bounds.y0 - meta_patch.oy));
      }
      Plane shown = plane;
      shown.ltv1 = 0.0;  // the union grid is the parent of this cutout
      shown.ltv2 = 0.0;
      write_plane_header(out, metadata, shown, grid_wcs, {dataset_id, &request, &p}, extver);
      if (used > 1) out.write_string("PSPATCHS", patch_list, "patches the pixels come from");
      piece.planes.push_back({plane.extname, out.current_hdu()});
    }
    pieces.push_back(std::move(piece));
    ++extver;
  }
  return pieces;
}

}  // namespace

std::vector<CutoutPiece> append_coadd_cutouts(const std::vector<std::filesystem::path>& patch_files,
                                              const CutoutRequest& request, fits::File& out,
                                              std::string_view dataset_id, int extver_start) {
  Mosaic m = open_mosaic(patch_files);
  const auto planned = plan(request, &m.grid_wcs, m.bounds.width, m.bounds.height, "coadd");
  return cut_mosaic(m, planned, request, out, dataset_id, extver_start);
}

std::vector<CutoutPiece> write_coadd_cutout(const std::vector<std::filesystem::path>& patch_files,
                                            const CutoutRequest& request, const std::filesystem::path& out_path,
                                            std::string_view dataset_id) {
  Mosaic m = open_mosaic(patch_files);
  const auto planned = plan(request, &m.grid_wcs, m.bounds.width, m.bounds.height, "coadd");
  std::vector<TypedCard> primary = m.patches.front().source.primary;
  if (m.patches.size() > 1) std::erase_if(primary, [](const TypedCard& c) { return c.keyword == "PATCH"; });
  auto out = fits::File::create(out_path);
  write_cards(out, primary_for_output(primary, dataset_id));
  auto pieces = cut_mosaic(m, planned, request, out, dataset_id, 1);
  out.close();
  return pieces;
}

}  // namespace pixserve::image
