// Deterministic random numbers for the simulator. Every file gets its own
// generator seeded from (survey seed, stream, visit, detector, ...), so the
// output does not depend on which thread makes which file or in what order;
// the distributions are implemented here (not std::) so the bytes do not
// depend on the standard library either.
#pragma once

#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace pixserve::sim {

// What a generator is for: part of its seed, so streams never overlap.
enum class Stream : std::uint64_t {
  catalogue = 1,
  visit = 2,
  bias = 3,
  flat = 4,
  noise = 5,
  amplifiers = 6,
  pixel_response = 7,
  efd = 8,
};

// SplitMix64: a good 64-bit mixer, used to derive seeds.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

constexpr std::uint64_t derive_seed(std::uint64_t seed, Stream stream, std::initializer_list<std::uint64_t> keys) {
  std::uint64_t h = splitmix64(seed ^ splitmix64(static_cast<std::uint64_t>(stream)));
  for (const auto k : keys) h = splitmix64(h ^ splitmix64(k + 0x632BE59BD9B4E019ULL));
  return h;
}

// xoshiro256** with the distributions the simulation needs.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept {
    for (auto& s : s_) {
      seed = splitmix64(seed);
      s = seed;
    }
  }
  Rng(std::uint64_t seed, Stream stream, std::initializer_list<std::uint64_t> keys = {}) noexcept
      : Rng(derive_seed(seed, stream, keys)) {}

  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next() % n; }

  // Standard normal deviate (Marsaglia's polar method: no trigonometry; the
  // second value of each pair is kept for the next call).
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u = 0.0, v = 0.0, s = 0.0;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = v * f;
    has_spare_ = true;
    return u * f;
  }

  // Poisson deviate: exact (by multiplication) for small means; above 30 the
  // normal approximation, ample for sky-limited pixels and much faster.
  double poisson(double mean) noexcept {
    if (!(mean > 0.0)) return 0.0;
    if (mean >= 30.0) return std::max(0.0, std::round(mean + std::sqrt(mean) * normal()));
    const double limit = std::exp(-mean);
    double product = uniform();
    int k = 0;
    while (product > limit) {
      product *= uniform();
      ++k;
    }
    return k;
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace pixserve::sim
