#include "image/calexp.hpp"

#include <cmath>
#include <stdexcept>
#include <variant>

#include <fmt/format.h>

#include "fits/cards.hpp"

namespace pixserve::image {
namespace {

constexpr double kFwhmPerSigma = 2.354820045;

// The raw's primary cards as the calexp's observation metadata. Commentary
// cards are not metadata of the observation and are left out.
HeaderCards observation_cards_of(fits::File& raw) {
  raw.move_to_hdu(1);
  int nkeys = 0;
  const std::string records = fits::image_header_records(raw, nkeys);
  HeaderCards cards;
  for (auto& card : fits::copyable_cards(records, nkeys)) {
    std::visit(
        [&](auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (!std::is_same_v<V, fits::Commentary> && !std::is_same_v<V, fits::History>) {
            cards.set_value(card.keyword, CardValue(std::move(v)), card.comment);
          }
        },
        card.value);
  }
  return cards;
}

double number_card(const HeaderCards& cards, std::string_view keyword, const std::filesystem::path& raw) {
  const CardValue* v = cards.find(keyword);
  if (v != nullptr) {
    if (const auto* d = std::get_if<double>(v)) return *d;
    if (const auto* i = std::get_if<long long>(v)) return static_cast<double>(*i);
  }
  throw std::invalid_argument(fmt::format("{}: raw file without a numeric {}", raw.string(), keyword));
}

// value rounded to 1/scale (scale = 1e4: four decimals).
double rounded(double value, double scale) { return std::round(value * scale) / scale; }

}  // namespace

Calexp make_calexp(const std::filesystem::path& raw_path, const fits::Image<float>& bias,
                   const fits::Image<float>& flat, const CalexpParameters& parameters) {
  auto raw = fits::File::open(raw_path);
  HeaderCards primary = observation_cards_of(raw);
  raw.move_to_hdu(1);
  wcs::Wcs wcs = wcs::Wcs::from_fits(raw);
  const double arcsec_per_pixel = wcs.pixel_scale_deg() * 3600.0;
  const double seeing = number_card(primary, "SEEING", raw_path);
  number_card(primary, "MAGZERO", raw_path);  // a calexp without its zero point is not one

  IsrOptions isr = parameters.isr;
  isr.psf_sigma_guess =
      parameters.psf_sigma_guess > 0.0 ? parameters.psf_sigma_guess : seeing / kFwhmPerSigma / arcsec_per_pixel;
  IsrResult result = run_isr(raw, bias, flat, isr);
  raw.close();

  Calexp calexp{std::move(result.exposure), {}, std::move(wcs), result.background, std::nullopt};
  if (result.psf_fwhm) calexp.psf_fwhm = *result.psf_fwhm * arcsec_per_pixel;
  // Without stars to measure, the delivered seeing is the best estimate.
  const double psf_fwhm = calexp.psf_fwhm.value_or(seeing);

  calexp.headers = calexp_headers(std::move(primary), psf_fwhm, result.background, isr.subtract_background,
                                  parameters.software_version);
  return calexp;
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
