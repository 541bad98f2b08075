// The simulated camera: one 3x3 raft (R22) of detectors S00..S22 with gaps,
// each read out by several amplifiers (prescan, data, serial overscan
// columns; readout direction flips encoded in DETSEC); the true WCS of each
// detector for a visit (TAN-SIP: the focal plane's radial distortion grows
// with the distance from the boresight); and the detectors' calibration
// truth (bias fixed pattern, flat response).
#pragma once

#include <string>
#include <vector>

#include "fits/fits.hpp"
#include "image/isr.hpp"
#include "sim/observing.hpp"
#include "sim/simulator.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

struct DetectorInfo {
  int number = 0;    // DETECTOR: 90 + 3 * row + col, as LSSTCam numbers raft R22
  int row = 0;       // 0..2, focal-plane y
  int col = 0;       // 0..2, focal-plane x
  std::string name;  // DETNAME "S<row><col>"
  std::string raft = "R22";
};

// One amplifier: its header (geometry and electronics as ISR reads them)
// and the truth behind its raw pixels.
struct AmplifierSpec {
  image::Amplifier header;
  long raw_width = 0, raw_height = 0;
  double bias_level = 0.0;       // ADU
  double drift_amplitude = 0.0;  // ADU, slow sinusoidal bias drift along the readout
  double drift_period = 1.0;     // rows
  double drift_phase = 0.0;
  double drift_slope = 0.0;  // ADU across the amplifier's rows
  double full_well = 0.0;    // electrons

  // The bias (and overscan) level of a raw row, ADU.
  double level_at(long raw_row) const;
};

class Camera {
 public:
  explicit Camera(const SurveyConfig& config);

  long width() const noexcept { return width_; }
  long height() const noexcept { return height_; }
  double pixel_scale_arcsec() const noexcept { return scale_arcsec_; }
  // The detectors in use: the first config.detectors of the raft, centre
  // first, then the edge centres, then the corners.
  const std::vector<DetectorInfo>& detectors() const noexcept { return detectors_; }
  // Width of the whole raft including gaps, degrees.
  double raft_width_deg() const;
  // Radius of a circle around a detector's centre that holds it, degrees.
  double detector_radius_deg() const;

  // The true WCS of a detector during a visit (0-based trimmed pixels).
  wcs::Wcs detector_wcs(const DetectorInfo& det, const Visit& visit) const;

  // The amplifiers of a detector (electronics drawn from the seed).
  std::vector<AmplifierSpec> amplifiers(const DetectorInfo& det) const;

  // Calibration truth: the bias fixed pattern left after overscan
  // subtraction (electrons) and the flat response (vignetting, pixel
  // response non-uniformity, dead columns).
  fits::Image<float> bias_frame(const DetectorInfo& det) const;
  fits::Image<float> flat_frame(const DetectorInfo& det, const BandInfo& band) const;

 private:
  unsigned long long seed_;
  long width_, height_, gap_;
  double scale_arcsec_;
  double distortion_;  // k of the radial distortion r' = r (1 + k r^2), r in pixels
  std::vector<DetectorInfo> detectors_;

  double pitch_x() const noexcept { return static_cast<double>(width_ + gap_); }
  double pitch_y() const noexcept { return static_cast<double>(height_ + gap_); }
  // Focal-plane position (pixels from the boresight) of a detector pixel.
  double focal_x(const DetectorInfo& det, double x) const noexcept;
  double focal_y(const DetectorInfo& det, double y) const noexcept;
};

}  // namespace pixserve::sim
