#include "sim/products.hpp"

#include <fmt/format.h>

#include <cmath>

#include "repo/astro_units.hpp"
#include "repo/recipe.hpp"

namespace pixserve::sim {
namespace {

std::string band_string(const BandInfo& b) { return std::string(1, b.band); }

// Rounded to a number of decimals, so headers read 10.1 rather than 10.100000000000001.
double round_to(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

}  // namespace

namespace paths {
std::filesystem::path bias(const DetectorInfo& det) {
  return std::filesystem::path("calib") / "bias" / fmt::format("bias_{}_{}.fits", det.raft, det.name);
}
std::filesystem::path flat(const DetectorInfo& det, const BandInfo& band) {
  return std::filesystem::path("calib") / "flat" / band_string(band) /
         fmt::format("flat_{}_{}_{}.fits", band.band, det.raft, det.name);
}
std::filesystem::path raw(const Visit& visit, const DetectorInfo& det) {
  return std::filesystem::path("raw") / fmt::format("v{}", visit.id) /
         fmt::format("raw_{}_{}_{}.fits", visit.id, det.raft, det.name);
}
std::filesystem::path calexp(const Visit& visit, const DetectorInfo& det) {
  return std::filesystem::path("calexp") / fmt::format("v{}", visit.id) /
         fmt::format("calexp_{}_{}_{}.fits", visit.id, det.raft, det.name);
}
std::filesystem::path calexp_comp(const Visit& visit, const DetectorInfo& det) {
  return std::filesystem::path("calexp_comp") / fmt::format("v{}", visit.id) /
         fmt::format("calexp_comp_{}_{}_{}.fits.fz", visit.id, det.raft, det.name);
}
std::filesystem::path coadd(std::string_view dataset_type, char band, int tract, const std::string& patch_token) {
  return std::filesystem::path(dataset_type) / std::string(1, band) / fmt::format("t{}", tract) /
         fmt::format("{}_{}_t{}_p{}.fits", dataset_type, band, tract, patch_token);
}
}  // namespace paths

image::HeaderCards observation_cards(std::string_view dstype, const Visit& visit, const DetectorInfo& det,
                                     const Camera& camera) {
  image::HeaderCards h;
  h.set("DSTYPE", std::string(dstype), "dataset type");
  h.set("INSTRUME", std::string(kInstrument), "instrument");
  h.set("TELESCOP", std::string(kTelescope), "facility");
  h.set("OBSTYPE", "science", "observation type");
  h.set("OBJECT", std::string(kFieldName), "field name");
  h.set("VISIT", visit.id, "visit number");
  h.set("EXPOSURE", visit.id, "exposure number (one exposure per visit)");
  h.set("DETECTOR", det.number, "detector number");
  h.set("DETNAME", det.name, "detector name within the raft");
  h.set("RAFT", det.raft, "raft name");
  h.set("BAND", band_string(*visit.band), "abstract band");
  h.set("FILTER", std::string(visit.band->physical_filter), "physical filter");
  h.set("TIMESYS", "TAI", "time scale of DATE-OBS and MJD-OBS");
  h.set("DATE-OBS", repo::iso_from_mjd(visit.mjd_start), "start of exposure (TAI)");
  h.set("MJD-OBS", visit.mjd_start, "start of exposure, MJD (TAI)");
  h.set("EXPTIME", visit.exposure_time, "[s] exposure time");
  h.set("DARKTIME", visit.exposure_time + 1.0, "[s] dark current accumulation time");
  h.set("RATEL", round_to(visit.pointing.ra, 7), "[deg] telescope pointing RA (boresight)");
  h.set("DECTEL", round_to(visit.pointing.dec, 7), "[deg] telescope pointing Dec (boresight)");
  h.set("ROTPA", round_to(visit.rotation_deg, 6), "[deg] position angle of the focal plane +y axis");
  h.set("HASTART", round_to(visit.hour_angle_deg, 4), "[deg] hour angle at mid-exposure");
  h.set("AIRMASS", round_to(visit.airmass, 4), "airmass at mid-exposure");
  h.set("SEEING", round_to(visit.seeing_arcsec, 3), "[arcsec] delivered seeing FWHM");
  // The zero point of the photometric model, known before processing: a
  // calexp made from this raw (image/calexp.hpp) carries it on.
  h.set("MAGZERO", visit.zero_point, "AB mag giving 1 electron per second");
  h.set("HUMIDITY", round_to(visit.humidity, 1), "[%] relative humidity");
  h.set("PRESSURE", round_to(visit.pressure, 1), "[hPa] air pressure");
  h.set("AIRTEMP", round_to(visit.air_temperature, 1), "[deg C] air temperature");
  h.set("WINDSPD", round_to(visit.wind_speed, 1), "[m/s] wind speed");
  h.set("OBS-LAT", Site::latitude_deg, "[deg] observatory latitude");
  h.set("OBS-LONG", Site::longitude_deg, "[deg] observatory longitude (east positive)");
  h.set("OBS-ELEV", Site::elevation_m, "[m] observatory elevation");
  h.set("DETSIZE", fmt::format("[1:{},1:{}]", camera.width(), camera.height()), "trimmed detector size");
  return h;
}

image::HeaderCards calibration_cards(std::string_view dstype, const DetectorInfo& det, const BandInfo* band) {
  image::HeaderCards h;
  h.set("DSTYPE", std::string(dstype), "dataset type");
  h.set("INSTRUME", std::string(kInstrument), "instrument");
  h.set("TELESCOP", std::string(kTelescope), "facility");
  h.set("OBSTYPE", std::string(dstype), "calibration type");
  h.set("DETECTOR", det.number, "detector number");
  h.set("DETNAME", det.name, "detector name within the raft");
  h.set("RAFT", det.raft, "raft name");
  if (band != nullptr) {
    h.set("BAND", band_string(*band), "abstract band");
    h.set("FILTER", std::string(band->physical_filter), "physical filter");
  }
  h.set("SWVER", repo::software_version(), "software that made the file");
  return h;
}

void write_raw(const std::filesystem::path& path, const image::HeaderCards& primary, const wcs::Wcs& wcs,
               const std::vector<AmplifierSpec>& amps, const std::vector<fits::Image<std::int32_t>>& pixels) {
  const bool with_pixels = !pixels.empty();
  if (with_pixels && pixels.size() != amps.size()) throw std::invalid_argument("write_raw: one image per amplifier");
  auto file = fits::File::create(path);
  primary.write_to(file);
  wcs.write_to(file);
  for (size_t i = 0; i < amps.size(); ++i) {
    const auto& h = amps[i].header;
    if (with_pixels) {
      fits::ImageWriteOptions o;
      o.extname = h.name;
      file.append_image(pixels[i], o);
    } else {
      file.append_header_hdu(h.name);
    }
    file.write_string("DATASEC", h.datasec.str(), "image pixels");
    file.write_string("BIASSEC", h.biassec.str(), "serial overscan");
    if (h.prescan) file.write_string("PRESCAN", h.prescan->str(), "serial prescan");
    file.write_string("DETSEC", h.detsec.str(), "place of DATASEC in the detector");
    file.write_double("GAIN", h.gain, "[electron/adu] gain");
    file.write_double("RDNOISE", h.read_noise, "[electron] read noise");
    file.write_double("SATURATE", h.saturation, "[adu] saturation level");
    file.write_string("BUNIT", "adu", "pixel unit");
  }
  file.close();
}

void write_calibration(const std::filesystem::path& path, const image::HeaderCards& primary,
                       const fits::Image<float>* plane, const image::HeaderCards& plane_cards) {
  auto file = fits::File::create(path);
  primary.write_to(file);
  if (plane == nullptr) {
    file.append_header_hdu("IMAGE");
  } else {
    fits::ImageWriteOptions o;
    o.extname = "IMAGE";
    file.append_image(*plane, o);
  }
  plane_cards.write_to(file);
  file.close();
}

}  // namespace pixserve::sim
