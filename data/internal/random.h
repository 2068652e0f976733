// Portable seeded randomness for the synthetic data and the sampler: the same numbers on every
// platform and standard library (std::uniform_*_distribution and std::shuffle are not specified
// exactly, std::mt19937_64 and these helpers are).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

namespace reel::data::detail {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Order-sensitive hash of a few integers: derives independent seeds, e.g. mix({seed, epoch}).
inline uint64_t mix(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x243F6A8885A308D3ull;
  for (uint64_t p : parts) h = splitmix64(h ^ splitmix64(p));
  return h;
}

// Uniform integer in [0, n), n > 0 (multiply-shift; bias below 2^-32 for n < 2^32).
template <class Rng>
uint64_t below(Rng& rng, uint64_t n) {
  return uint64_t((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

// Uniform double in [0, 1) with 53 random bits.
template <class Rng>
double uniform(Rng& rng) {
  return double(rng() >> 11) * 0x1.0p-53;
}

template <class Rng>
double uniform(Rng& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform(rng);
}

// Fisher-Yates shuffle in place.
template <class Rng, class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(rng, i)]);
}

}  // namespace reel::data::detail
