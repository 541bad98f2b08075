// FITS I/O over cfitsio. Every call goes through check(), which turns a
// non-zero cfitsio status into a FitsError carrying the file name, what we
// were doing, cfitsio's status text and its error-message stack.

#include "fits/fits.hpp"

#include "fits/cfitsio.hpp"
#include "fits/header_text.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace pixserve::fits {

namespace detail {

// Pops cfitsio's error-message stack and returns its newest messages
// ("; "-separated). cfitsio also leaves harmless notes from successful calls
// on the stack (e.g. optional columns it probed), so only the last few
// messages, which describe the failure, are worth reporting.
std::string pop_error_stack() {
  constexpr size_t kKeep = 4;
  std::vector<std::string> msgs;
  char msg[FLEN_ERRMSG];
  while (fits_read_errmsg(msg) != 0) {
    msgs.emplace_back(msg);
  }
  std::string out;
  for (size_t i = msgs.size() > kKeep ? msgs.size() - kKeep : 0; i < msgs.size(); ++i) {
    if (!out.empty()) out += "; ";
    out += msgs[i];
  }
  return out;
}

std::string status_text(int status) {
  char text[FLEN_STATUS];
  fits_get_errstatus(status, text);
  std::string out = fmt::format("{} (status {})", text, status);
  std::string stack = pop_error_stack();
  if (!stack.empty()) out += ": " + stack;
  return out;
}

}  // namespace detail

namespace {

using namespace detail;  // the wrapper's shared pieces (cfitsio.hpp)

// cfitsio status for "keyword not found" and friends; named here because the
// absent-key paths are normal control flow, not errors.
constexpr int kKeyMissing = KEY_NO_EXIST;

// cfitsio takes char* for keyword names and values even when it only reads them.
std::string z(std::string_view s) { return std::string(s); }

// Type traits mapping C++ pixel types to cfitsio datatype codes and BITPIX.
template <typename T>
struct PixelType;
template <>
struct PixelType<float> {
  static constexpr int datatype = TFLOAT, bitpix = FLOAT_IMG;
};
template <>
struct PixelType<double> {
  static constexpr int datatype = TDOUBLE, bitpix = DOUBLE_IMG;
};
template <>
struct PixelType<std::int8_t> {
  static constexpr int datatype = TSBYTE, bitpix = SBYTE_IMG;
};
template <>
struct PixelType<std::uint8_t> {
  static constexpr int datatype = TBYTE, bitpix = BYTE_IMG;
};
template <>
struct PixelType<std::int16_t> {
  static constexpr int datatype = TSHORT, bitpix = SHORT_IMG;
};
template <>
struct PixelType<std::uint16_t> {
  static constexpr int datatype = TUSHORT, bitpix = USHORT_IMG;
};
template <>
struct PixelType<std::int32_t> {
  static constexpr int datatype = TINT, bitpix = LONG_IMG;
};
template <>
struct PixelType<std::uint32_t> {
  static constexpr int datatype = TUINT, bitpix = ULONG_IMG;
};
template <>
struct PixelType<std::int64_t> {
  static constexpr int datatype = TLONGLONG, bitpix = LONGLONG_IMG;
};

// Strips the quotes of a FITS string value and undoes '' escaping; trailing
// blanks are not significant in FITS strings.
std::string unquote(const std::string& v) {
  if (v.size() < 2 || v.front() != '\'') return v;
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    out += v[i];
    if (v[i] == '\'' && v[i + 1] == '\'') ++i;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// cfitsio's messages repeat the file name, cut into pieces of its 80-column
// message lines ("...; /tmp/repo/.upload-12; 34/x.fits; ..."). The error
// names its file once, at the start, where a caller that must not show
// server paths can replace it; so the pieces go, and whole occurrences too.
std::string without_file_name(std::string what, const std::string& file) {
  if (file.empty()) return what;
  for (auto at = what.find(file); at != std::string::npos; at = what.find(file, at)) what.erase(at, file.size());
  std::string out;
  std::size_t start = 0;
  while (start <= what.size()) {
    const auto end = std::min(what.find("; ", start), what.size());
    std::string_view piece(what.data() + start, end - start);
    while (!piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    while (!piece.empty() && piece.back() == ' ') piece.remove_suffix(1);
    const bool fragment = piece.size() >= 3 && file.find(piece) != std::string::npos;
    if (!fragment && !piece.empty()) {
      if (!out.empty()) out += "; ";
      out.append(what, start, end - start);
    }
    start = end + 2;
  }
  return out;
}

}  // namespace

FitsError::FitsError(const std::filesystem::path& file, const std::string& what)
    : std::runtime_error(file.string() + ": " + without_file_name(what, file.string())), file_(file) {}

// File::Handle is in fits/cfitsio.hpp.

File::File(std::filesystem::path path, std::unique_ptr<Handle> handle)
    : path_(std::move(path)), handle_(std::move(handle)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

void File::check(int status, std::string_view doing) const {
  if (status != 0) throw FitsError(path_, fmt::format("{}: {}", doing, status_text(status)));
}


File File::open(const std::filesystem::path& path, OpenMode mode) {
  fitsfile* f = nullptr;
  int status = 0;
  // The "diskfile" variant takes the name literally: no extended filename
  // syntax, so names containing '[' or '!' mean what they say.
  fits_open_diskfile(&f, path.c_str(), mode == OpenMode::read ? READONLY : READWRITE, &status);
  // On failure cfitsio has already released the fitsfile.
  if (status != 0) throw FitsError(path, fmt::format("opening: {}", status_text(status)));
  return File(path, std::make_unique<Handle>(f));
}

File File::create(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);  // truncate semantics; a missing file is fine
  fitsfile* f = nullptr;
  int status = 0;
  fits_create_diskfile(&f, path.c_str(), &status);
  if (status != 0) throw FitsError(path, fmt::format("creating: {}", status_text(status)));
  File file(path, std::make_unique<Handle>(f));
  // An empty primary HDU (NAXIS = 0) so keywords can be written to it at once.
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  file.check(status, "creating empty primary HDU");
  return file;
}

int File::hdu_count() {
  int n = 0, status = 0;
  fits_get_num_hdus(Handle::get(handle_, path_), &n, &status);
  check(status, "counting HDUs");
  return n;
}

int File::current_hdu() {
  int n = 0;
  fits_get_hdu_num(Handle::get(handle_, path_), &n);
  return n;
}

void File::move_to_hdu(int number) {
  int status = 0;
  fits_movabs_hdu(Handle::get(handle_, path_), number, nullptr, &status);
  check(status, fmt::format("moving to HDU {}", number));
}

bool File::move_to_named_hdu(std::string_view name) {
  fitsfile* f = Handle::get(handle_, path_);
  const int here = current_hdu();
  int status = 0;
  fits_write_errmark();
  fits_movnam_hdu(f, ANY_HDU, z(name).data(), 0, &status);
  if (status == BAD_HDU_NUM) {
    fits_clear_errmark();
    status = 0;
    fits_movabs_hdu(f, here, nullptr, &status);  // "no move" when absent
    check(status, "returning to the previous HDU");
    return false;
  }
  check(status, fmt::format("looking for HDU '{}'", name));
  return true;
}

bool File::current_is_image() {
  fitsfile* f = Handle::get(handle_, path_);
  int status = 0, type = 0;
  fits_get_hdu_type(f, &type, &status);
  check(status, "reading HDU type");
  if (type == IMAGE_HDU) return true;
  // A tile-compressed image lives in a BINTABLE; cfitsio reads it as an image.
  const int compressed = fits_is_compressed_image(f, &status);
  check(status, "checking for a compressed image");
  return compressed != 0;
}

// --- keywords ---

namespace {
// The raw value text of key (quotes kept), nullopt if the key is absent.
// A keyword present without a value (undefined) also yields nullopt: it
// carries no value of any type.
std::optional<std::string> raw_value(fitsfile* f, const std::string& key, int& status) {
  char value[FLEN_VALUE] = "";
  char comment[FLEN_COMMENT] = "";
  fits_write_errmark();
  fits_read_keyword(f, key.c_str(), value, comment, &status);
  if (status == kKeyMissing) {
    fits_clear_errmark();
    status = 0;
    return std::nullopt;
  }
  if (status != 0 || value[0] == '\0') return std::nullopt;
  return std::string(value);
}

char key_type(const std::string& value) {
  char type = 0;
  int status = 0;
  fits_get_keytype(const_cast<char*>(value.c_str()), &type, &status);
  if (status != 0) {
    pop_error_stack();
    return 0;
  }
  return type;
}
}  // namespace

bool File::has_key(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  char card[FLEN_CARD];
  int status = 0;
  fits_write_errmark();
  fits_read_card(f, z(key).c_str(), card, &status);
  if (status == kKeyMissing) {
    fits_clear_errmark();
    return false;
  }
  check(status, fmt::format("looking for keyword {}", key));
  return true;
}

std::optional<std::string> File::read_string(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  const std::string k(key);
  int status = 0;
  auto raw = raw_value(f, k, status);
  check(status, fmt::format("reading keyword {}", key));
  if (!raw) return std::nullopt;
  if (key_type(*raw) != 'C') throw FitsError(path_, fmt::format("keyword {} is not a string: {}", key, *raw));
  // The long-string reader also follows the CONTINUE convention.
  char* value = nullptr;
  fits_read_key_longstr(f, k.c_str(), &value, nullptr, &status);
  std::unique_ptr<char, void (*)(char*)> owned(value, [](char* p) {
    int s = 0;
    if (p != nullptr) fits_free_memory(p, &s);
  });
  check(status, fmt::format("reading keyword {}", key));
  std::string out = value != nullptr ? value : "";
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::optional<std::string> File::read_value_text(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  const std::string k(key);
  int status = 0;
  auto raw = raw_value(f, k, status);
  check(status, fmt::format("reading keyword {}", key));
  if (!raw) return std::nullopt;
  if (key_type(*raw) == 'C') return read_string(key);
  std::string out = *raw;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  while (!out.empty() && out.front() == ' ') out.erase(out.begin());
  return out;
}

std::optional<double> File::read_double(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  const std::string k(key);
  int status = 0;
  auto raw = raw_value(f, k, status);
  check(status, fmt::format("reading keyword {}", key));
  if (!raw) return std::nullopt;
  const char t = key_type(*raw);
  if (t != 'I' && t != 'F') throw FitsError(path_, fmt::format("keyword {} is not a number: {}", key, *raw));
  double v = 0.0;
  fits_read_key(f, TDOUBLE, k.c_str(), &v, nullptr, &status);
  check(status, fmt::format("reading keyword {}", key));
  return v;
}

std::optional<long long> File::read_int(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  const std::string k(key);
  int status = 0;
  auto raw = raw_value(f, k, status);
  check(status, fmt::format("reading keyword {}", key));
  if (!raw) return std::nullopt;
  if (key_type(*raw) != 'I') throw FitsError(path_, fmt::format("keyword {} is not an integer: {}", key, *raw));
  LONGLONG v = 0;
  fits_read_key(f, TLONGLONG, k.c_str(), &v, nullptr, &status);
  check(status, fmt::format("reading keyword {}", key));
  return static_cast<long long>(v);
}

std::optional<bool> File::read_bool(std::string_view key) {
  fitsfile* f = Handle::get(handle_, path_);
  const std::string k(key);
  int status = 0;
  auto raw = raw_value(f, k, status);
  check(status, fmt::format("reading keyword {}", key));
  if (!raw) return std::nullopt;
  if (key_type(*raw) != 'L') throw FitsError(path_, fmt::format("keyword {} is not logical: {}", key, *raw));
  int v = 0;
  fits_read_key(f, TLOGICAL, k.c_str(), &v, nullptr, &status);
  check(status, fmt::format("reading keyword {}", key));
  return v != 0;
}

namespace {
// nullptr for an empty comment: cfitsio then writes no comment field.
const char* comment_or_null(const std::string& c) { return c.empty() ? nullptr : c.c_str(); }
}  // namespace

void File::write_string(std::string_view key, std::string_view value, std::string_view comment) {
  fitsfile* f = Handle::writable(handle_, path_, "write_string");
  const std::string k(key), v(value), c(comment);
  int status = 0;
  if (v.size() > 68) {
    // Longer than one card holds: the CONTINUE long-string convention.
    fits_update_key_longstr(f, k.c_str(), v.c_str(), comment_or_null(c), &status);
  } else {
    fits_update_key_str(f, k.c_str(), v.c_str(), comment_or_null(c), &status);
  }
  check(status, fmt::format("writing keyword {}", key));
}

void File::write_double(std::string_view key, double value, std::string_view comment) {
  fitsfile* f = Handle::writable(handle_, path_, "write_double");
  if (!std::isfinite(value)) throw FitsError(path_, fmt::format("writing keyword {}: value is not finite", key));
  const std::string k(key), c(comment);
  // The card is built from the shortest exact decimal form so values (e.g.
  // WCS and SIP coefficients) read back bit-identical, which cfitsio's
  // fixed-precision formatting would not guarantee.
  std::string text = format_double(value);
  char card[FLEN_CARD];
  int status = 0;
  fits_make_key(k.c_str(), text.data(), c.c_str(), card, &status);
  fits_update_card(f, k.c_str(), card, &status);
  check(status, fmt::format("writing keyword {}", key));
}

void File::write_int(std::string_view key, long long value, std::string_view comment) {
  fitsfile* f = Handle::writable(handle_, path_, "write_int");
  const std::string k(key), c(comment);
  LONGLONG v = value;
  int status = 0;
  fits_update_key(f, TLONGLONG, k.c_str(), &v, comment_or_null(c), &status);
  check(status, fmt::format("writing keyword {}", key));
}

void File::write_bool(std::string_view key, bool value, std::string_view comment) {
  fitsfile* f = Handle::writable(handle_, path_, "write_bool");
  const std::string k(key), c(comment);
  int status = 0;
  fits_update_key_log(f, k.c_str(), value ? 1 : 0, comment_or_null(c), &status);
  check(status, fmt::format("writing keyword {}", key));
}

void File::write_comment(std::string_view text) {
  int status = 0;
  fits_write_comment(Handle::writable(handle_, path_, "write_comment"), z(text).c_str(), &status);
  check(status, "writing COMMENT");
}

void File::write_history(std::string_view text) {
  int status = 0;
  fits_write_history(Handle::writable(handle_, path_, "write_history"), z(text).c_str(), &status);
  check(status, "writing HISTORY");
}

void File::delete_key(std::string_view key) {
  fitsfile* f = Handle::writable(handle_, path_, "delete_key");
  int status = 0;
  fits_write_errmark();
  fits_delete_key(f, z(key).c_str(), &status);
  if (status == kKeyMissing) {
    fits_clear_errmark();
    return;
  }
  check(status, fmt::format("deleting keyword {}", key));
}

namespace {

// cfitsio's header string as nkeys 80-character records; `convert` presents
// a tile-compressed HDU as the image it holds (ZNAXISn -> NAXISn, ...).
// The caller checks status.
std::string records_of(fitsfile* f, bool convert, int& nkeys, int& status) {
  char* header = nullptr;
  nkeys = 0;
  if (convert) {
    fits_convert_hdr2str(f, 0, nullptr, 0, &header, &nkeys, &status);
  } else {
    fits_hdr2str(f, 0, nullptr, 0, &header, &nkeys, &status);
  }
  std::unique_ptr<char, void (*)(char*)> owned(header, [](char* p) {
    int s = 0;
    if (p != nullptr) fits_free_memory(p, &s);
  });
  if (status != 0) return {};
  std::string out = header != nullptr ? header : "";
  // Keep exactly nkeys records (cfitsio's count excludes a trailing END).
  out.resize(static_cast<size_t>(nkeys) * 80, ' ');
  return out;
}

}  // namespace

// The converted form is what WCS parsing needs.
std::string File::header_records(int& nkeys) {
  int status = 0;
  std::string records = records_of(Handle::get(handle_, path_), true, nkeys, status);
  check(status, "reading the header");
  return records;
}

std::string File::stored_header_records(int& nkeys) {
  int status = 0;
  std::string records = records_of(Handle::get(handle_, path_), false, nkeys, status);
  check(status, "reading the header");
  return records;
}

std::vector<HeaderCard> File::header_cards() {
  int nkeys = 0;
  const std::string records = header_records(nkeys);
  std::vector<HeaderCard> cards;
  cards.reserve(static_cast<size_t>(nkeys));
  for (int i = 0; i < nkeys; ++i) {
    std::string card = records.substr(static_cast<size_t>(i) * 80, 80);
    while (!card.empty() && card.back() == ' ') card.pop_back();
    char name[FLEN_KEYWORD] = "";
    char value[FLEN_VALUE] = "";
    char comment[FLEN_COMMENT] = "";
    int length = 0, status = 0;
    fits_get_keyname(card.data(), name, &length, &status);
    fits_parse_value(card.data(), value, comment, &status);
    check(status, fmt::format("parsing header card {}", i + 1));
    HeaderCard hc{name, value, comment};
    if (hc.keyword == "COMMENT" || hc.keyword == "HISTORY" || (hc.value.empty() && card.find('=') != 8)) {
      // Commentary cards: the text after the keyword is their content.
      hc.value = card.size() > 8 ? card.substr(8) : "";
      hc.comment.clear();
    } else {
      hc.value = unquote(hc.value);
    }
    cards.push_back(std::move(hc));
  }
  return cards;
}

// --- images ---

std::vector<long> File::image_shape() {
  fitsfile* f = Handle::get(handle_, path_);
  int status = 0, naxis = 0;
  fits_get_img_dim(f, &naxis, &status);
  check(status, "reading image dimensions");
  std::vector<LONGLONG> n(static_cast<size_t>(naxis));
  if (naxis > 0) fits_get_img_sizell(f, naxis, n.data(), &status);
  check(status, "reading image size");
  return {n.begin(), n.end()};
}

int File::image_bitpix() {
  int status = 0, bitpix = 0;
  fits_get_img_equivtype(Handle::get(handle_, path_), &bitpix, &status);
  check(status, "reading image BITPIX");
  return bitpix;
}

namespace {
// A plane must be 2-D; higher axes of length 1 (e.g. NAXIS3 = 1) are accepted.
void require_plane(const std::filesystem::path& path, const std::vector<long>& shape) {
  bool ok = shape.size() >= 2;
  for (size_t i = 2; ok && i < shape.size(); ++i) ok = shape[i] == 1;
  if (!ok) throw FitsError(path, fmt::format("not a 2-D image plane (NAXIS = {})", shape.size()));
}
}  // namespace

namespace {
// cfitsio 4.2 bug: when it parses a tile-compressed HDU with ZQUANTIZ='NONE'
// (losslessly compressed floats) it sets FITSfile::quantize_level to
// NO_QUANTIZE, and parsing a later HDU with ZQUANTIZ='SUBTRACTIVE_DITHER_1'
// does not reset it, so that quantized HDU then decodes to garbage. Moving
// through such a file (e.g. to the 3rd HDU) is enough to trigger it. The
// level is only consulted as this flag when reading, so clear it whenever
// the current HDU says it is quantized.
void work_around_stale_quantize_level(fitsfile* f) {
  constexpr float kNoQuantize = 9999.0F;  // cfitsio's private NO_QUANTIZE
  int status = 0;
  if (fits_is_compressed_image(f, &status) == 0 || f->Fptr->quantize_level != kNoQuantize) return;
  char value[FLEN_VALUE] = "";
  fits_write_errmark();
  fits_read_key(f, TSTRING, "ZQUANTIZ", value, nullptr, &status);
  fits_clear_errmark();
  if (status == 0 && std::string_view(value) != "NONE") f->Fptr->quantize_level = 0.0F;
}
}  // namespace

template <typename T>
Image<T> File::read_image() {
  const auto shape = image_shape();
  require_plane(path_, shape);
  return read_subset<T>(PixelBox{0, 0, shape[0], shape[1]});
}

template <typename T>
Image<T> File::read_subset(const PixelBox& box) {
  fitsfile* f = Handle::get(handle_, path_);
  const auto shape = image_shape();
  require_plane(path_, shape);
  if (box.x0 < 0 || box.y0 < 0 || box.width <= 0 || box.height <= 0 || box.x0 + box.width > shape[0] ||
      box.y0 + box.height > shape[1]) {
    throw FitsError(path_, fmt::format("pixel box [{}+{}, {}+{}] outside the {}x{} image", box.x0, box.width, box.y0,
                                       box.height, shape[0], shape[1]));
  }
  work_around_stale_quantize_level(f);
  Image<T> img(box.width, box.height);
  // 1-based inclusive ranges; cfitsio reads (and for compressed HDUs
  // decompresses) only what the box touches.
  std::vector<long> first(shape.size(), 1), last(shape.size(), 1), inc(shape.size(), 1);
  first[0] = box.x0 + 1;
  first[1] = box.y0 + 1;
  last[0] = box.x0 + box.width;
  last[1] = box.y0 + box.height;
  int status = 0, anynul = 0;
  // Undefined pixels: NaN for floats (quantized compressed HDUs store them
  // as a null integer that must be turned back into NaN); integers keep the
  // raw BLANK value (no substitution).
  T nan_value{};
  T* nulval = nullptr;
  if constexpr (std::is_floating_point_v<T>) {
    nan_value = std::numeric_limits<T>::quiet_NaN();
    nulval = &nan_value;
  }
  fits_read_subset(f, PixelType<T>::datatype, first.data(), last.data(), inc.data(), nulval, img.pixels.data(),
                   &anynul, &status);
  check(status, "reading image pixels");
  return img;
}


template <typename T>
void File::append_image(const Image<T>& img, const ImageWriteOptions& options) {
  fitsfile* f = Handle::writable(handle_, path_, "append_image");
  if (img.width <= 0 || img.height <= 0 || img.pixels.size() != static_cast<size_t>(img.width * img.height)) {
    throw FitsError(path_, fmt::format("appending image: inconsistent {}x{} image with {} pixels", img.width,
                                       img.height, img.pixels.size()));
  }
  require_dither_seed(path_, options.dither_seed);
  int status = 0;
  std::optional<ResetCompression> reset;
  if (options.compression != Compression::none) {
    reset.emplace(f);
    request_compression(f, options.compression, options.quantize_level, options.tile_shape, options.dither_seed,
                        std::is_floating_point_v<T>, img.width, img.height, &status);
    check(status, "setting compression parameters");
  }
  long naxes[2] = {img.width, img.height};
  fits_create_img(f, PixelType<T>::bitpix, 2, naxes, &status);
  check(status, "creating image HDU");
  if (options.header_reserve > 0 && options.compression == Compression::none) {
    fits_set_hdrsize(f, options.header_reserve, &status);
    check(status, "reserving header space");
  }
  if (!options.extname.empty()) {
    fits_update_key_str(f, "EXTNAME", options.extname.c_str(), nullptr, &status);
    check(status, "writing EXTNAME");
  }
  if constexpr (std::is_floating_point_v<T>) {
    if (options.compression != Compression::none) {
      // The tile compressor does not look for NaNs by itself: hand them over as
      // an explicit null value (cfitsio's own FLOATNULLVALUE, as its image
      // compressor does), so quantized HDUs record them as ZBLANK.
      const T null_value = static_cast<T>(FLOATNULLVALUE);
      std::vector<T> data(img.pixels);
      for (T& v : data) {
        if (std::isnan(v)) v = null_value;
      }
      T nulval = null_value;
      fits_write_imgnull(f, PixelType<T>::datatype, 1, static_cast<LONGLONG>(data.size()), data.data(), &nulval,
                         &status);
      check(status, "writing image pixels");
      fits_flush_buffer(f, 0, &status);
      check(status, "flushing image HDU");
      return;
    }
  }
  fits_write_img(f, PixelType<T>::datatype, 1, static_cast<LONGLONG>(img.pixels.size()),
                 const_cast<T*>(img.pixels.data()), &status);
  check(status, "writing image pixels");
  // Make cfitsio compress and write out the last tiles now, so errors show here.
  fits_flush_buffer(f, 0, &status);
  check(status, "flushing image HDU");
}

template <typename T>
void File::write_primary_image(const Image<T>& img) {
  fitsfile* f = Handle::writable(handle_, path_, "write_primary_image");
  if (img.width <= 0 || img.height <= 0 || img.pixels.size() != static_cast<size_t>(img.width * img.height)) {
    throw FitsError(path_, "writing primary image: inconsistent image");
  }
  move_to_hdu(1);
  if (!image_shape().empty()) throw FitsError(path_, "writing primary image: primary HDU already holds data");
  long naxes[2] = {img.width, img.height};
  int status = 0;
  // Turns the empty primary into a 2-D image in place, keeping its keywords.
  fits_resize_img(f, PixelType<T>::bitpix, 2, naxes, &status);
  check(status, "resizing primary HDU");
  fits_write_img(f, PixelType<T>::datatype, 1, static_cast<LONGLONG>(img.pixels.size()),
                 const_cast<T*>(img.pixels.data()), &status);
  check(status, "writing primary image pixels");
}

void File::append_header_hdu(std::string_view extname) {
  fitsfile* f = Handle::writable(handle_, path_, "append_header_hdu");
  int status = 0;
  // BITPIX is irrelevant without pixels; 8 is what cfitsio writes for NAXIS = 0.
  fits_create_img(f, BYTE_IMG, 0, nullptr, &status);
  check(status, "creating header-only HDU");
  if (!extname.empty()) {
    fits_update_key_str(f, "EXTNAME", z(extname).c_str(), nullptr, &status);
    check(status, "writing EXTNAME");
  }
}

void File::write_datasum() {
  fitsfile* f = Handle::writable(handle_, path_, "write_datasum");
  int status = 0;
  // The data must be on disk, in its padded final size, to be summed.
  fits_flush_buffer(f, 0, &status);
  unsigned long datasum = 0, hdusum = 0;
  fits_get_chksum(f, &datasum, &hdusum, &status);
  check(status, "computing DATASUM");
  fits_update_key_str(f, "DATASUM", std::to_string(datasum).c_str(), "data unit checksum", &status);
  check(status, "writing DATASUM");
}

void File::close() {
  if (!handle_ || handle_->fptr == nullptr) return;
  fitsfile* f = std::exchange(handle_->fptr, nullptr);
  handle_.reset();
  int status = 0;
  fits_close_file(f, &status);
  check(status, "closing");
}

// Explicit instantiations for the supported pixel types.
#define PIXSERVE_FITS_INSTANTIATE(T)                                         \
  template Image<T> File::read_image<T>();                                   \
  template Image<T> File::read_subset<T>(const PixelBox&);                   \
  template void File::append_image<T>(const Image<T>&, const ImageWriteOptions&); \
  template void File::write_primary_image<T>(const Image<T>&);

PIXSERVE_FITS_INSTANTIATE(float)
PIXSERVE_FITS_INSTANTIATE(double)
PIXSERVE_FITS_INSTANTIATE(std::int8_t)
PIXSERVE_FITS_INSTANTIATE(std::uint8_t)
PIXSERVE_FITS_INSTANTIATE(std::int16_t)
PIXSERVE_FITS_INSTANTIATE(std::uint16_t)
PIXSERVE_FITS_INSTANTIATE(std::int32_t)
PIXSERVE_FITS_INSTANTIATE(std::uint32_t)
PIXSERVE_FITS_INSTANTIATE(std::int64_t)

#undef PIXSERVE_FITS_INSTANTIATE

}  // namespace pixserve::fits
