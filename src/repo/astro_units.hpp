// Conversions the registry needs between header values and ObsCore units:
// photometric bands to wavelength limits, ISO 8601 times to MJD.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace pixserve::repo {

// Wavelength limits of a survey band, metres (ObsCore em_min / em_max).
struct BandLimits {
  double em_min = 0.0;
  double em_max = 0.0;
  double center() const { return 0.5 * (em_min + em_max); }
  double resolving_power() const { return center() / (em_max - em_min); }
};

// The LSST ugrizy bands (system throughput half-maximum points). nullopt for
// an unknown band name.
std::optional<BandLimits> band_limits(std::string_view band);

// The band whose interval contains the wavelength (metres), if any.
std::optional<std::string> band_at_wavelength(double metres);

// Parses an ISO 8601 date or date-time as FITS and DALI write it
// (YYYY-MM-DD, YYYY-MM-DDThh:mm[:ss[.fff]], optional trailing 'Z') into a
// Modified Julian Date in the same time scale. Throws std::invalid_argument
// naming the problem for malformed or impossible dates.
double mjd_from_iso(std::string_view iso);

// Formats an MJD as YYYY-MM-DDThh:mm:ss.sss.
std::string iso_from_mjd(double mjd);

// The current time as an MJD (UTC; the difference from TAI, 37 s, is far
// below any embargo resolution).
double mjd_now();

}  // namespace pixserve::repo
