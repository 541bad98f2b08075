// World coordinate systems over wcslib: pixel <-> sky, footprints, and
// writing TAN / TAN-SIP (and HPX) headers.
//
// Pixel coordinates in this API are 0-based pixel centres (the first pixel's
// centre is (0, 0)), as in astropy's pixel_to_world; FITS's 1-based CRPIX is
// handled inside.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "sky/geometry.hpp"

namespace pixserve::wcs {

class WcsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PixelPoint {
  double x = 0.0;
  double y = 0.0;
};

// SIP distortion polynomials (forward A/B; inverse AP/BP optional) as in the
// SIP convention: coefficients indexed [p][q] for u^p v^q, order <= 9.
struct Sip {
  int order = 0;
  std::vector<std::vector<double>> a, b;  // (order+1) x (order+1)
  int inverse_order = 0;                  // 0: no AP/BP
  std::vector<std::vector<double>> ap, bp;
};

// Parameters of a tangent-plane projection.
struct TanParameters {
  sky::SkyPoint crval;                    // reference sky position
  PixelPoint crpix;                       // reference pixel, 0-based
  std::array<double, 4> cd{};             // CD1_1, CD1_2, CD2_1, CD2_2 in deg/pixel
  std::optional<Sip> sip;                 // TAN-SIP when set
};

// A celestial WCS. Copyable (each copy owns its own wcslib structures).
class Wcs {
 public:
  // From the header of the current HDU; throws WcsError if it has no
  // celestial WCS (no CTYPE1/2 or an unparseable one).
  static Wcs from_fits(fits::File& file);
  // From concatenated 80-character header records.
  static Wcs from_header(const std::string& records, int nkeys);
  static Wcs tan(const TanParameters& params);

  Wcs(const Wcs&);
  Wcs& operator=(const Wcs&);
  Wcs(Wcs&&) noexcept;
  Wcs& operator=(Wcs&&) noexcept;
  ~Wcs();

  sky::SkyPoint pixel_to_sky(const PixelPoint& p) const;
  PixelPoint sky_to_pixel(const sky::SkyPoint& s) const;  // throws WcsError if unprojectable
  std::vector<sky::SkyPoint> pixel_to_sky(const std::vector<PixelPoint>& pts) const;

  // The footprint of a width x height image: the outer pixel edges
  // (-0.5 .. width-0.5), so it contains every pixel centre. With
  // points_per_side > 1, extra vertices along each edge follow distortion.
  // Vertices come counter-clockwise on the sky.
  sky::Polygon footprint(long width, long height, int points_per_side = 1) const;

  // Mean pixel scale in degrees per pixel at the reference pixel.
  double pixel_scale_deg() const;

  // The scale of the linear part (CD, or PC x CDELT) in degrees per pixel,
  // sqrt(|det|): the grid's nominal scale, exactly as its header gives it.
  double linear_scale_deg() const;

  // The reference point (CRVAL) and reference pixel (CRPIX, 0-based): for a
  // TAN grid, the tangent point, where its pixels are least distorted.
  sky::SkyPoint reference_sky() const;
  PixelPoint reference_pixel() const;

  // Writes the WCS keywords (WCSAXES, CTYPE, CRVAL, CRPIX, CD, SIP, RADESYS...)
  // into the current HDU of a file (or a header built in memory).
  void write_to(fits::KeywordWriter& out) const;
  // The keywords as "KEY = value" header records (80 chars each).
  std::string header_records() const;

  // A copy with CRPIX shifted for a subimage starting at (x0, y0).
  Wcs shifted(double x0, double y0) const;
  // shifted(x0, y0).write_to(out), without making that copy (which parses
  // the header again): only CRPIX differs.
  void write_shifted_to(fits::KeywordWriter& out, double x0, double y0) const;

 private:
  struct Impl;
  explicit Wcs(std::unique_ptr<Impl> impl);
  // header_records() of shifted(x0, y0).
  std::string shifted_records(double x0, double y0) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pixserve::wcs
