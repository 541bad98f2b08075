// Blocks of adjacent output pixels computed together, for the convolutions
// of PSF matching and template subtraction. A block's accumulators are
// separate variables (the folds below unroll over them) local to one
// function, which the compiler keeps in registers and vectorises without
// being asked for any architecture; a loop over a runtime length would be
// left scalar at -O2, and accumulators passed by reference are not
// vectorised either. Every lane performs the same operations in the same
// order, so a pixel's value does not depend on its position within a block.
#pragma once

#include <array>
#include <cstddef>
#include <utility>

namespace pixserve::image {
namespace lane_detail {

template <typename T, std::size_t... I>
[[gnu::always_inline]] inline void convolve_lanes(const T* taps, int ntaps, const T* base, long step, T* out,
                                                  std::index_sequence<I...>) {
  std::array<T, sizeof...(I)> acc{};
  for (int t = 0; t < ntaps; ++t) {
    const T k = taps[t];
    const T* src = base - t * step;
    ((acc[I] += k * src[I]), ...);
  }
  ((out[I] = acc[I]), ...);
}

template <typename T, std::size_t... I>
[[gnu::always_inline]] inline void convolve_lanes_at(const T* taps, const long* offsets, int ntaps, const T* base,
                                                     T* out, std::index_sequence<I...>) {
  std::array<T, sizeof...(I)> acc{};
  for (int t = 0; t < ntaps; ++t) {
    const T k = taps[t];
    const T* src = base + offsets[t];
    ((acc[I] += k * src[I]), ...);
  }
  ((out[I] = acc[I]), ...);
}

}  // namespace lane_detail

// out[q] = sum over t of taps[t] * base[q - t * step], for q < N, t in order.
// Always inlined: called out of line, the block runs several times slower.
template <std::size_t N, typename T>
[[gnu::always_inline]] inline void convolve_lanes(const T* taps, int ntaps, const T* base, long step, T* out) {
  lane_detail::convolve_lanes(taps, ntaps, base, step, out, std::make_index_sequence<N>{});
}

// out[q] = sum over t of taps[t] * base[offsets[t] + q]: a 2-D kernel as one
// list of taps and where each reads.
template <std::size_t N, typename T>
[[gnu::always_inline]] inline void convolve_lanes_at(const T* taps, const long* offsets, int ntaps, const T* base,
                                                     T* out) {
  lane_detail::convolve_lanes_at(taps, offsets, ntaps, base, out, std::make_index_sequence<N>{});
}

}  // namespace pixserve::image
