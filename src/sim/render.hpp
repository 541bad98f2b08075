// Rendering: the electrons the sky and the objects deposit in a detector
// during a visit, and the raw amplifier pixels the electronics make of them
// (flat response, bias, noise, gain, saturation, overscan).
#pragma once

#include <cstdint>
#include <vector>

#include "fits/fits.hpp"
#include "sim/camera.hpp"
#include "sim/observing.hpp"
#include "sim/sky_model.hpp"
#include "wcs/wcs.hpp"

namespace pixserve::sim {

// Electrons per pixel from the sky and every object (mean values, before the
// flat response and noise). Objects are placed through the detector's true
// WCS at mid-exposure; the PSF is a Gaussian of the visit's seeing, stars
// integrated exactly over each pixel.
fits::Image<float> render_scene(const SkyModel& sky, const Visit& visit, const wcs::Wcs& wcs, const Camera& camera);

// The raw pixels of every amplifier of a detector: signal = Poisson(scene x
// flat) up to the full well, plus the bias pattern (electrons), read noise,
// conversion by the gain and the row's bias level; prescan and overscan
// columns hold the bias level and read noise alone. noise_seed makes the
// noise of this (visit, detector) reproducible.
std::vector<fits::Image<std::int32_t>> render_raw(const std::vector<AmplifierSpec>& amps,
                                                  const fits::Image<float>& scene, const fits::Image<float>& flat,
                                                  const fits::Image<float>& bias, std::uint64_t noise_seed);

}  // namespace pixserve::sim
