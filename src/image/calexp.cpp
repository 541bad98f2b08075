#include "image/calexp.hpp"

#include <cmath>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "fits/cards.hpp"

namespace pixserve::image {
namespace {

constexpr double kFwhmPerSigma = 2.354820045;

// A numeric card the raw must have.
double number_card(const HeaderCards& cards, std::string_view keyword, const std::filesystem::path& raw) {
  if (const auto v = card_number(cards, keyword)) return *v;
  throw std::invalid_argument(fmt::format("{}: raw file without a numeric {}", raw.string(), keyword));
}

// value rounded to 1/scale (scale = 1e4: four decimals).
double rounded(double value, double scale) { return std::round(value * scale) / scale; }

// What a calexp takes from its raw's primary header.
struct CalexpRawInfo {
  HeaderCards observation;
  wcs::Wcs wcs;
  double arcsec_per_pixel = 0.0;
  double seeing = 0.0;  // arcsec
  long width = 0, height = 0;
};

CalexpRawInfo calexp_raw_info(fits::File& raw, const std::filesystem::path& raw_path) {
  // The raw's primary cards are the calexp's observation metadata.
  raw.move_to_hdu(1);
  HeaderCards observation = read_metadata_cards(raw);
  wcs::Wcs wcs = wcs::Wcs::from_fits(raw);
  const Section detsize = read_detsize(raw);
  const double arcsec_per_pixel = wcs.pixel_scale_deg() * 3600.0;
  const double seeing = number_card(observation, "SEEING", raw_path);
  number_card(observation, "MAGZERO", raw_path);  // a calexp without its zero point is not one
  return {std::move(observation), std::move(wcs), arcsec_per_pixel, seeing, detsize.width(), detsize.height()};
}

CalexpHeader calexp_header_of(CalexpRawInfo info, const CalexpParameters& parameters,
                              const CalexpMeasurements& measurements) {
  // Without stars to measure, the delivered seeing is the best estimate.
  const double psf_fwhm = measurements.psf_fwhm_arcsec.value_or(info.seeing);
  return {calexp_headers(std::move(info.observation), psf_fwhm, measurements.background,
                         parameters.isr.subtract_background, parameters.software_version),
          std::move(info.wcs), info.width, info.height};
}

}  // namespace

Calexp make_calexp(const std::filesystem::path& raw_path, const fits::Image<float>& bias,
                   const fits::Image<float>& flat, const CalexpParameters& parameters) {
  auto raw = fits::File::open(raw_path);
  CalexpRawInfo info = calexp_raw_info(raw, raw_path);
  const double arcsec_per_pixel = info.arcsec_per_pixel;

  IsrOptions isr = parameters.isr;
  isr.psf_sigma_guess = parameters.psf_sigma_guess > 0.0 ? parameters.psf_sigma_guess
                                                         : info.seeing / kFwhmPerSigma / arcsec_per_pixel;
  IsrResult result = run_isr(raw, bias, flat, isr);
  raw.close();

  CalexpMeasurements measurements{result.background, std::nullopt};
  if (result.psf_fwhm) measurements.psf_fwhm_arcsec = *result.psf_fwhm * arcsec_per_pixel;
  CalexpHeader header = calexp_header_of(std::move(info), parameters, measurements);
  return Calexp{std::move(result.exposure), std::move(header.headers), std::move(header.wcs), measurements.background,
                measurements.psf_fwhm_arcsec};
}

CalexpHeader calexp_header(const std::filesystem::path& raw_path, const CalexpParameters& parameters,
                           const CalexpMeasurements& measurements) {
  auto raw = fits::File::open(raw_path);
  return calexp_header_of(calexp_raw_info(raw, raw_path), parameters, measurements);
}

Exposure make_calexp_box(const std::filesystem::path& raw_path, const std::filesystem::path& bias_path,
                         const std::filesystem::path& flat_path, const CalexpParameters& parameters,
                         const CalexpMeasurements& measurements, const fits::PixelBox& box) {
  auto raw = fits::File::open(raw_path);
  const Section detsize = read_detsize(raw);
  const long width = detsize.width(), height = detsize.height();
  if (box.x0 < 0 || box.y0 < 0 || box.width <= 0 || box.height <= 0 || box.x0 + box.width > width ||
      box.y0 + box.height > height) {
    throw std::invalid_argument(fmt::format("{}: pixel box [{}+{}, {}+{}] outside the {}x{} detector",
                                            raw_path.string(), box.x0, box.width, box.y0, box.height, width,
                                            height));
  }
  const auto bias = read_calibration(bias_path, box, width, height);
  const auto flat = read_calibration(flat_path, box, width, height);
  // The PSF guess only matters for measuring, which is not done here.
  Exposure e = run_isr_box(raw, bias, flat, box, parameters.isr).exposure;
  apply_background(e, measurements.background, parameters.isr);
  return e;
}

ExposureHeaders calexp_headers(HeaderCards observation, double psf_fwhm_arcsec, const BackgroundStats& background,
                               bool background_subtracted, const std::string& software_version) {
  ExposureHeaders h;
  h.primary = std::move(observation);
  h.primary.set("DSTYPE", "calexp", "dataset type");
  h.primary.set("PSFFWHM", rounded(psf_fwhm_arcsec, 1e4), "[arcsec] measured PSF FWHM");
  h.primary.set("BGMEAN", rounded(background.level, 1e3), "[electron] sky background level per pixel");
  h.primary.set("BGRMS", rounded(background.rms, 1e3), "[electron] sky noise per pixel");
  h.primary.set("BGSUB", background_subtracted, "BGMEAN has been subtracted from IMAGE");
  h.primary.set("SWVER", software_version, "software that made the file");
  h.primary.set("ISRVER", std::string(kIsrVersion), "instrument signature removal version");
  h.image.set("BUNIT", "electron", "pixel unit");
  h.variance.set("BUNIT", "electron**2", "pixel unit");
  return h;
}

void write_calexp(const std::filesystem::path& path, const Calexp& calexp) {
  write_exposure(path, calexp.exposure, calexp.headers, &calexp.wcs);
}

}  // namespace pixserve::image
