#include "sky/moc.hpp"

#include <fmt/format.h>
#include <healpix_cxx/healpix_base.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string_view>

namespace pixserve::sky {
namespace {

int bits_per_level(MocDimension d) { return d == MocDimension::space ? 2 : 1; }

// Cells of order 0: 12 for space, 2 for time (2^62 microseconds at order 61
// make two cells of 2^61 each).
std::uint64_t base_cells(MocDimension d) { return d == MocDimension::space ? 12 : 2; }

void sort_merge(std::vector<MocRange>& ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const MocRange& a, const MocRange& b) { return a.first < b.first; });
  std::vector<MocRange> out;
  out.reserve(ranges.size());
  for (const auto& r : ranges) {
    if (r.first >= r.last) continue;
    if (!out.empty() && r.first <= out.back().last) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  ranges = std::move(out);
}

// --- hand-written FITS (the format is simple, and src/sky stays free of
// cfitsio so that the fuzzers that compile it need nothing more) ---

std::string card(std::string_view key, std::string_view value, std::string_view comment = {}) {
  std::string c = fmt::format("{:<8}= {:>20}", key, value);
  if (!comment.empty()) c += fmt::format(" / {}", comment);
  c.resize(80, ' ');
  return c;
}

std::string string_card(std::string_view key, std::string_view value, std::string_view comment = {}) {
  std::string quoted;
  for (char ch : value) {
    if (ch == '\'') quoted += "''";
    else if (ch >= 32 && ch < 127) quoted += ch;
  }
  if (quoted.size() > 60) quoted.resize(60);
  std::string v = "'" + quoted + std::string(quoted.size() < 8 ? 8 - quoted.size() : 0, ' ') + "'";
  std::string c = fmt::format("{:<8}= {:<20}", key, v);
  if (!comment.empty()) c += fmt::format(" / {}", comment);
  c.resize(80, ' ');
  return c;
}

void pad_block(std::string& s, char fill) {
  const std::size_t rem = s.size() % 2880;
  if (rem != 0) s.append(2880 - rem, fill);
}

void append_be64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string primary_hdu() {
  std::string h = card("SIMPLE", "T", "conforms to FITS standard") + card("BITPIX", "8") + card("NAXIS", "0") +
                  card("EXTEND", "T");
  h += std::string("END").append(77, ' ');
  pad_block(h, ' ');
  return h;
}

std::string table_hdu(const std::vector<std::string>& keywords, std::string_view column,
                      const std::vector<std::uint64_t>& values) {
  std::string h = string_card("XTENSION", "BINTABLE", "binary table extension") + card("BITPIX", "8") +
                  card("NAXIS", "2") + card("NAXIS1", "8") + card("NAXIS2", std::to_string(values.size())) +
                  card("PCOUNT", "0") + card("GCOUNT", "1") + card("TFIELDS", "1") + string_card("TFORM1", "1K") +
                  string_card("TTYPE1", column);
  for (const auto& k : keywords) h += k;
  h += std::string("END").append(77, ' ');
  pad_block(h, ' ');
  for (auto v : values) append_be64(h, v);
  pad_block(h, '\0');
  return h;
}

std::vector<std::string> info_cards(const MocFitsInfo& info) {
  std::vector<std::string> k;
  k.push_back(string_card("MOCVERS", "2.0", "MOC standard version"));
  if (!info.tool.empty()) k.push_back(string_card("MOCTOOL", info.tool, "MOC generator"));
  if (!info.type.empty()) k.push_back(string_card("MOCTYPE", info.type, "source type"));
  if (!info.moc_id.empty()) k.push_back(string_card("MOCID", info.moc_id, "identifier of the collection"));
  if (!info.date.empty()) k.push_back(string_card("DATE", info.date, "MOC creation date"));
  if (!info.extname.empty()) k.push_back(string_card("EXTNAME", info.extname));
  return k;
}

std::uint64_t parse_uint(std::string_view s, std::string_view what) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) {
    throw std::invalid_argument(fmt::format("MOC: '{}' is not a valid {}", s, what));
  }
  return v;
}

}  // namespace

Moc::Moc(int order, MocDimension dimension) : order_(order), dimension_(dimension) {
  if (order < 0 || order > max_order(dimension)) {
    throw std::invalid_argument(fmt::format("MOC order {} outside [0, {}]", order, max_order(dimension)));
  }
}

int Moc::shift_of(int cell_order) const { return bits_per_level(dimension_) * (max_order(dimension_) - cell_order); }

void Moc::add_cells(int cell_order, std::uint64_t first, std::uint64_t last) {
  if (cell_order < 0 || cell_order > order_) {
    throw std::invalid_argument(fmt::format("MOC cell order {} outside [0, {}]", cell_order, order_));
  }
  const std::uint64_t count = base_cells(dimension_) << (bits_per_level(dimension_) * cell_order);
  if (first > last || last >= count) {
    throw std::invalid_argument(fmt::format("MOC cells {}-{} outside [0, {}) at order {}", first, last, count, cell_order));
  }
  const int s = shift_of(cell_order);
  ranges_.push_back({first << s, (last + 1) << s});
  normalize_tail();
}

void Moc::add_cell(int cell_order, std::uint64_t index) { add_cells(cell_order, index, index); }

void Moc::normalize_tail() {
  // Cheap when appending in order (the common case); a full sort otherwise.
  if (ranges_.size() < 2) return;
  auto& prev = ranges_[ranges_.size() - 2];
  const MocRange last = ranges_.back();
  if (last.first > prev.last) return;
  if (last.first >= prev.first) {
    prev.last = std::max(prev.last, last.last);
    ranges_.pop_back();
    return;
  }
  sort_merge(ranges_);
}

void Moc::add(const Moc& other) {
  if (other.dimension_ != dimension_) throw std::invalid_argument("MOC union of different dimensions");
  if (other.order_ > order_) {
    throw std::invalid_argument(fmt::format("MOC union: order {} deeper than {}", other.order_, order_));
  }
  ranges_.insert(ranges_.end(), other.ranges_.begin(), other.ranges_.end());
  sort_merge(ranges_);
}

bool Moc::overlaps_cell(int cell_order, std::uint64_t index) const {
  const int s = shift_of(cell_order);
  const std::uint64_t a = index << s, b = (index + 1) << s;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), a,
                             [](std::uint64_t v, const MocRange& r) { return v < r.last; });
  return it != ranges_.end() && it->first < b;
}

bool Moc::contains_cell(int cell_order, std::uint64_t index) const {
  const int s = shift_of(cell_order);
  const std::uint64_t a = index << s, b = (index + 1) << s;
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), a,
                             [](std::uint64_t v, const MocRange& r) { return v < r.last; });
  return it != ranges_.end() && it->first <= a && it->last >= b;
}

bool Moc::contains(const SkyPoint& p) const {
  if (dimension_ != MocDimension::space) throw std::logic_error("contains(SkyPoint) on a time MOC");
  return overlaps_cell(kMaxHealpixOrder, static_cast<std::uint64_t>(cell_of(p, kMaxHealpixOrder)));
}

std::vector<MocCell> Moc::cells() const {
  std::vector<MocCell> out;
  for (const auto& r : ranges_) {
    std::uint64_t a = r.first;
    while (a < r.last) {
      // The biggest cell starting at a and ending within the range.
      int o = 0;
      for (; o < order_; ++o) {
        const int s = shift_of(o);
        const std::uint64_t size = std::uint64_t{1} << s;
        if ((a & (size - 1)) == 0 && a + size <= r.last) break;
      }
      const int s = shift_of(o);
      out.push_back({o, a >> s});
      a += std::uint64_t{1} << s;
    }
  }
  std::sort(out.begin(), out.end(),
            [](const MocCell& x, const MocCell& y) { return x.order != y.order ? x.order < y.order : x.index < y.index; });
  return out;
}

std::vector<std::uint64_t> Moc::nuniq() const {
  std::vector<std::uint64_t> out;
  const int bits = bits_per_level(dimension_);
  for (const auto& c : cells()) {
    out.push_back((std::uint64_t{1} << (bits * (c.order + 1))) + c.index);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::uint64_t Moc::cell_count() const {
  std::uint64_t n = 0;
  const int s = shift_of(order_);
  for (const auto& r : ranges_) n += (r.last - r.first) >> s;
  return n;
}

double Moc::coverage_fraction() const {
  long double covered = 0;
  for (const auto& r : ranges_) covered += static_cast<long double>(r.last - r.first);
  const long double total =
      static_cast<long double>(base_cells(dimension_)) * std::pow(2.0L, bits_per_level(dimension_) * max_order(dimension_));
  return static_cast<double>(covered / total);
}

std::string Moc::to_ascii(bool with_prefix) const {
  std::string out;
  if (with_prefix) out += dimension_ == MocDimension::space ? "s" : "t";
  const auto list = cells();
  int current = -1;
  for (std::size_t i = 0; i < list.size();) {
    const auto& c = list[i];
    std::size_t j = i;
    while (j + 1 < list.size() && list[j + 1].order == c.order && list[j + 1].index == list[j].index + 1) ++j;
    if (!out.empty() && out.back() != 's' && out.back() != 't') out += ' ';
    if (c.order != current) {
      out += fmt::format("{}/", c.order);
      current = c.order;
    }
    out += j > i ? fmt::format("{}-{}", c.index, list[j].index) : std::to_string(c.index);
    i = j + 1;
  }
  if (current < order_) {
    if (!out.empty() && out.back() != 's' && out.back() != 't') out += ' ';
    out += fmt::format("{}/", order_);
  }
  return out;
}

std::string Moc::to_json() const {
  std::map<int, std::vector<std::uint64_t>> by_order;
  for (const auto& c : cells()) by_order[c.order].push_back(c.index);
  if (by_order.empty() || by_order.rbegin()->first < order_) by_order[order_];
  std::string out = "{";
  bool first = true;
  for (const auto& [o, idx] : by_order) {
    if (!first) out += ',';
    first = false;
    out += fmt::format("\"{}\":[{}]", o, fmt::join(idx, ","));
  }
  out += '}';
  return out;
}

Moc Moc::from_ascii(std::string_view text, MocDimension dimension) {
  std::vector<std::pair<int, std::pair<std::uint64_t, std::uint64_t>>> items;
  int current = -1, deepest = 0;
  std::size_t i = 0;
  auto is_sep = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (i < text.size() && is_sep(text[i])) ++i;
  if (i < text.size() && (text[i] == 's' || text[i] == 't')) {
    const auto d = text[i] == 's' ? MocDimension::space : MocDimension::time;
    if (d != dimension) throw std::invalid_argument("MOC: the prefix names another dimension");
    ++i;
  }
  while (i < text.size()) {
    if (is_sep(text[i])) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && !is_sep(text[j])) ++j;
    std::string_view token = text.substr(i, j - i);
    i = j;
    const auto slash = token.find('/');
    if (slash != std::string_view::npos) {
      const auto o = parse_uint(token.substr(0, slash), "order");
      if (o > static_cast<std::uint64_t>(max_order(dimension))) {
        throw std::invalid_argument(fmt::format("MOC: order {} above {}", o, max_order(dimension)));
      }
      current = static_cast<int>(o);
      deepest = std::max(deepest, current);
      token = token.substr(slash + 1);
      if (token.empty()) continue;
    }
    if (current < 0) throw std::invalid_argument("MOC: a cell before any order");
    const auto dash = token.find('-');
    const auto a = parse_uint(token.substr(0, dash), "cell index");
    const auto b = dash == std::string_view::npos ? a : parse_uint(token.substr(dash + 1), "cell index");
    if (b < a) throw std::invalid_argument(fmt::format("MOC: descending range {}-{}", a, b));
    items.push_back({current, {a, b}});
  }
  Moc moc(deepest, dimension);
  for (const auto& [o, r] : items) moc.add_cells(o, r.first, r.second);
  return moc;
}

Moc moc_of(const Polygon& polygon, int order) {
  Moc moc(order);
  const T_Healpix_Base<std::int64_t> base(order, NEST);
  std::vector<vec3> boundary;
  for (const auto& range : cover(polygon, order)) {
    for (std::int64_t cell = range.first; cell <= range.last; ++cell) {
      bool keep = polygon.contains(cell_center(cell, order));
      if (!keep) {
        base.boundaries(cell, 4, boundary);
        std::vector<SkyPoint> pts;
        pts.reserve(boundary.size());
        for (const auto& v : boundary) pts.push_back(to_sky({v.x, v.y, v.z}));
        try {
          keep = intersects(polygon, Polygon(std::move(pts)));
        } catch (const std::invalid_argument&) {
          keep = true;  // a degenerate cell outline: keep it (a superset is safe)
        }
      }
      if (keep) moc.add_cell(order, static_cast<std::uint64_t>(cell));
    }
  }
  return moc;
}

std::string to_fits(const Moc& moc, const MocFitsInfo& info) {
  std::vector<std::string> k;
  k.push_back(string_card("ORDERING", "NUNIQ", "NUNIQ coding method"));
  if (moc.dimension() == MocDimension::space) {
    k.push_back(string_card("COORDSYS", "C", "ICRS reference frame"));
    k.push_back(string_card("MOCDIM", "SPACE", "physical dimension"));
    k.push_back(card("MOCORD_S", std::to_string(moc.order()), "MOC resolution (best order)"));
    k.push_back(card("MOCORDER", std::to_string(moc.order()), "MOC 1.1 resolution keyword"));
  } else {
    k.push_back(string_card("TIMESYS", "TCB", "time system"));
    k.push_back(string_card("MOCDIM", "TIME", "physical dimension"));
    k.push_back(card("MOCORD_T", std::to_string(moc.order()), "MOC time resolution (best order)"));
  }
  for (auto& c : info_cards(info)) k.push_back(std::move(c));
  return primary_hdu() + table_hdu(k, "UNIQ", moc.nuniq());
}

std::uint64_t mjd_to_moc_time(double mjd) {
  const long double jd = static_cast<long double>(mjd) + 2400000.5L;
  const long double us = jd * 86400.0L * 1e6L;
  if (!(us >= 0) || us >= std::pow(2.0L, 62)) throw std::invalid_argument("MJD outside the MOC time axis");
  return static_cast<std::uint64_t>(us);
}

StMoc::StMoc(int time_order, int space_order) : time_order_(time_order), space_order_(space_order) {
  (void)Moc(time_order, MocDimension::time);  // validates the orders
  (void)Moc(space_order, MocDimension::space);
}

void StMoc::add(double t_min_mjd, double t_max_mjd, const Moc& space) {
  if (space.dimension() != MocDimension::space || space.order() != space_order_) {
    throw std::invalid_argument("space-time MOC: space MOC of another order");
  }
  if (!(t_max_mjd >= t_min_mjd)) throw std::invalid_argument("space-time MOC: t_max before t_min");
  const int s = kMaxTimeOrder - time_order_;
  const std::uint64_t t0 = (mjd_to_moc_time(t_min_mjd) >> s) << s;
  const std::uint64_t t1 = ((mjd_to_moc_time(t_max_mjd) >> s) + 1) << s;
  items_.push_back({t0, t1, space});
}

std::vector<std::pair<Moc, Moc>> StMoc::entries() const {
  std::vector<std::uint64_t> bounds;
  for (const auto& it : items_) {
    bounds.push_back(it.t0);
    bounds.push_back(it.t1);
  }
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  struct Span {
    std::uint64_t t0, t1;
    Moc space;
  };
  std::vector<Span> spans;
  for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
    Moc space(space_order_);
    bool any = false;
    for (const auto& it : items_) {
      if (it.t0 <= bounds[i] && it.t1 >= bounds[i + 1]) {
        space.add(it.space);
        any = true;
      }
    }
    if (!any || space.empty()) continue;
    if (!spans.empty() && spans.back().t1 == bounds[i] && spans.back().space == space) {
      spans.back().t1 = bounds[i + 1];
    } else {
      spans.push_back({bounds[i], bounds[i + 1], std::move(space)});
    }
  }
  std::vector<std::pair<Moc, Moc>> out;
  const int s = kMaxTimeOrder - time_order_;
  for (auto& sp : spans) {
    Moc t(time_order_, MocDimension::time);
    t.add_cells(time_order_, sp.t0 >> s, (sp.t1 >> s) - 1);
    out.emplace_back(std::move(t), std::move(sp.space));
  }
  return out;
}

std::string StMoc::to_ascii() const {
  std::string out;
  for (const auto& [t, s] : entries()) {
    if (!out.empty()) out += ' ';
    // Each part without the trailing "order/" marker; the markers come last.
    Moc tt = t, ss = s;
    std::string ta = tt.to_ascii(true), sa = ss.to_ascii(true);
    auto strip = [](std::string& a, int order) {
      const std::string marker = fmt::format(" {}/", order);
      if (a.size() > marker.size() && a.ends_with(marker)) a.resize(a.size() - marker.size());
    };
    strip(ta, time_order_);
    strip(sa, space_order_);
    out += ta + ' ' + sa;
  }
  if (!out.empty()) out += ' ';
  out += fmt::format("t{}/ s{}/", time_order_, space_order_);
  return out;
}

std::string StMoc::to_json() const {
  std::string out = "[";
  bool first = true;
  for (const auto& [t, s] : entries()) {
    if (!first) out += ',';
    first = false;
    out += fmt::format("{{\"t\":{},\"s\":{}}}", t.to_json(), s.to_json());
  }
  if (!first) out += ',';
  out += fmt::format("{{\"t\":{{\"{}\":[]}},\"s\":{{\"{}\":[]}}}}", time_order_, space_order_);
  out += ']';
  return out;
}

std::string StMoc::to_fits(const MocFitsInfo& info) const {
  std::vector<std::uint64_t> values;
  constexpr std::uint64_t kTimeBit = std::uint64_t{1} << 63;
  for (const auto& [t, s] : entries()) {
    for (const auto& r : t.ranges()) {
      values.push_back(r.first | kTimeBit);
      values.push_back(r.last | kTimeBit);
    }
    for (const auto& r : s.ranges()) {
      values.push_back(r.first);
      values.push_back(r.last);
    }
  }
  std::vector<std::string> k;
  k.push_back(string_card("ORDERING", "RANGE", "RANGE coding method"));
  k.push_back(string_card("COORDSYS", "C", "ICRS reference frame"));
  k.push_back(string_card("TIMESYS", "TCB", "time system"));
  k.push_back(string_card("MOCDIM", "TIME.SPACE", "physical dimensions"));
  k.push_back(card("MOCORD_T", std::to_string(time_order_), "MOC time resolution (best order)"));
  k.push_back(card("MOCORD_S", std::to_string(space_order_), "MOC space resolution (best order)"));
  for (auto& c : info_cards(info)) k.push_back(std::move(c));
  return primary_hdu() + table_hdu(k, "RANGE", values);
}

}  // namespace pixserve::sky
