// FITS I/O over cfitsio: files, HDU navigation, header keywords, typed image
// planes (whole or a pixel subset) and tile compression.
//
// Pixel convention in this API: 0-based (x, y), x along NAXIS1 (fastest), as
// in C arrays; conversion to FITS's 1-based ranges happens only inside.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pixserve::fits {

// Every cfitsio failure becomes a FitsError naming the file and cfitsio's
// own message, so callers can report "which file, what went wrong".
class FitsError : public std::runtime_error {
 public:
  FitsError(const std::filesystem::path& file, const std::string& what);
  const std::filesystem::path& file() const noexcept { return file_; }

 private:
  std::filesystem::path file_;
};

// A 2-D image plane held in memory, row-major (x fastest).
template <typename T>
struct Image {
  long width = 0;
  long height = 0;
  std::vector<T> pixels;

  Image() = default;
  Image(long w, long h, T fill = T{}) : width(w), height(h), pixels(static_cast<size_t>(w * h), fill) {}
  T& at(long x, long y) { return pixels[static_cast<size_t>(y * width + x)]; }
  const T& at(long x, long y) const { return pixels[static_cast<size_t>(y * width + x)]; }
};

// A pixel rectangle, 0-based, half-open: [x0, x0+width) x [y0, y0+height).
struct PixelBox {
  long x0 = 0;
  long y0 = 0;
  long width = 0;
  long height = 0;
};

enum class Compression { none, rice, gzip, hcompress };

// Every member has a default initialiser so that designated initialisers
// naming only some of them compile under -Wmissing-field-initializers.
struct ImageWriteOptions {
  std::string extname{};                       // EXTNAME of the new HDU (empty: none)
  Compression compression = Compression::none;  // tile compression of the new HDU
  // Lossy quantization for float planes when compressed (cfitsio's q); 0 = lossless.
  float quantize_level = 0.0F;
  std::vector<long> tile_shape{};  // empty: cfitsio default (row by row)
  // Seed (1..10000) of the subtractive dither applied when quantizing floats
  // (quantize_level != 0): the same seed gives the same bytes. 0: cfitsio's
  // default, a seed taken from the clock, so every write differs.
  int dither_seed = 0;
  // Header cards to make room for before the pixels are written (uncompressed
  // HDUs): keywords written after the pixels then fill this room instead of
  // making cfitsio shift the whole data unit for every 36 cards added.
  int header_reserve = 0;
};

// Options of compress_copy(); every member has a default initialiser.
struct CompressCopyOptions {
  Compression compression = Compression::rice;  // none: a plain copy
  float quantize_level = 0.0F;                  // as in ImageWriteOptions
  std::vector<long> tile_shape{};               // empty: row by row
  // 0: cfitsio's clock-based dither seeds. 1..10000: HDU n of the file is
  // dithered with seed 1 + (dither_seed - 1 + n) % 10000, so the output is
  // reproducible and the planes of one file do not share a dither pattern.
  int dither_seed = 0;
};

// One header card as read (keyword, value text without quotes for strings,
// comment). COMMENT/HISTORY cards carry their text in value.
struct HeaderCard {
  std::string keyword;
  std::string value;
  std::string comment;
};

enum class OpenMode { read, read_write };

// Where header keywords go: the current HDU of an open File, or a header
// built in memory (fits/header_text.hpp: HeaderText) that holds the same
// cards. The writers of derived headers (copied cards, WCS, cutout
// provenance) write through it, so one function serves both. Each call
// sets the keyword (updating it in place when present) as File's cfitsio
// calls do.
class KeywordWriter {
 public:
  virtual void write_string(std::string_view key, std::string_view value, std::string_view comment = {}) = 0;
  virtual void write_double(std::string_view key, double value, std::string_view comment = {}) = 0;
  virtual void write_int(std::string_view key, long long value, std::string_view comment = {}) = 0;
  virtual void write_bool(std::string_view key, bool value, std::string_view comment = {}) = 0;
  virtual void write_comment(std::string_view text) = 0;
  virtual void write_history(std::string_view text) = 0;

 protected:
  KeywordWriter() = default;
  KeywordWriter(const KeywordWriter&) = default;
  KeywordWriter& operator=(const KeywordWriter&) = default;
  KeywordWriter(KeywordWriter&&) = default;
  KeywordWriter& operator=(KeywordWriter&&) = default;
  ~KeywordWriter() = default;
};

// An open FITS file. Move-only; closes on destruction.
class File final : public KeywordWriter {
 public:
  static File open(const std::filesystem::path& path, OpenMode mode = OpenMode::read);
  // Creates (truncating an existing file) a file with an empty primary HDU.
  static File create(const std::filesystem::path& path);

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::filesystem::path& path() const noexcept { return path_; }

  // --- HDUs (1-based numbering as in FITS: 1 is the primary HDU) ---
  int hdu_count();
  int current_hdu();
  void move_to_hdu(int number);
  // Moves to the first HDU whose EXTNAME equals name; false (and no move) if none.
  bool move_to_named_hdu(std::string_view name);
  // True if the current HDU is an image HDU (including tile-compressed ones).
  bool current_is_image();

  // --- header of the current HDU ---
  bool has_key(std::string_view key);
  std::optional<std::string> read_string(std::string_view key);
  // Any keyword's value as text: a string's content, or a number's or
  // logical's literal as written (e.g. "42", "1.5E+01", "T").
  std::optional<std::string> read_value_text(std::string_view key);
  std::optional<double> read_double(std::string_view key);
  std::optional<long long> read_int(std::string_view key);
  std::optional<bool> read_bool(std::string_view key);
  void write_string(std::string_view key, std::string_view value, std::string_view comment = {}) override;
  void write_double(std::string_view key, double value, std::string_view comment = {}) override;
  void write_int(std::string_view key, long long value, std::string_view comment = {}) override;
  void write_bool(std::string_view key, bool value, std::string_view comment = {}) override;
  void write_comment(std::string_view text) override;
  void write_history(std::string_view text) override;
  void delete_key(std::string_view key);  // no error if absent
  // Writes DATASUM, the FITS checksum of the current HDU's data unit, after
  // its pixels are written. Unlike cfitsio's fits_write_chksum it writes no
  // CHECKSUM and no time into the comment, so the same pixels and cards
  // always give the same bytes (re-created products are compared that way).
  void write_datasum();
  // All cards of the current HDU as 80-character records concatenated, in the
  // form wcslib's wcspih() expects; nkeys receives the record count.
  std::string header_records(int& nkeys);
  // The same records exactly as stored in the file: a tile-compressed image
  // shows its BINTABLE header (ZIMAGE, ZNAXISn, ...). Nothing is decompressed,
  // so this is cheap for any HDU.
  std::string stored_header_records(int& nkeys);
  std::vector<HeaderCard> header_cards();

  // --- image data of the current HDU ---
  // NAXISn values (empty for a header-only HDU). For compressed HDUs the
  // uncompressed shape.
  std::vector<long> image_shape();
  int image_bitpix();  // the equivalent BITPIX (honours BZERO/BSCALE)

  template <typename T>
  Image<T> read_image();
  template <typename T>
  Image<T> read_subset(const PixelBox& box);  // box must lie inside the image

  // Appends a new image HDU holding img and makes it current.
  template <typename T>
  void append_image(const Image<T>& img, const ImageWriteOptions& options = {});
  // Appends an image extension without data (NAXIS = 0), with EXTNAME unless
  // extname is empty, and makes it current: a header-only HDU, which
  // append_image (needing pixels) cannot make.
  void append_header_hdu(std::string_view extname);
  // Writes img into the primary HDU (which must still be empty).
  template <typename T>
  void write_primary_image(const Image<T>& img);

  // Appends a binary table HDU with the given integer columns (all of equal
  // length) and makes it current. Enough for lists such as coadd inputs.
  void append_int_table(std::string_view extname, const std::vector<std::string>& column_names,
                        const std::vector<std::vector<long long>>& columns);
  // Reads an integer column of the current binary-table HDU.
  std::vector<long long> read_int_column(std::string_view column_name);

  // Flushes buffers; errors are reported here rather than lost in the destructor.
  void close();

 private:
  struct Handle;
  File(std::filesystem::path path, std::unique_ptr<Handle> handle);
  void check(int status, std::string_view doing) const;
  std::filesystem::path path_;
  std::unique_ptr<Handle> handle_;
};

// Writes `out` (truncating it): a copy of `in` whose image extensions with
// pixels are tile-compressed as `options` says (the fpack layout, headers
// kept). The primary HDU, header-only, already compressed and table HDUs are
// copied unchanged.
void compress_copy(const std::filesystem::path& in, const std::filesystem::path& out,
                   const CompressCopyOptions& options = {});

}  // namespace pixserve::fits
