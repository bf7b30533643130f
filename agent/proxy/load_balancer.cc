#include "agent/proxy/load_balancer.h"

#include <cstdint>
#include <utility>

namespace nodemesh::proxy {

SmoothWeightedRoundRobin::SmoothWeightedRoundRobin(
    std::vector<uint32_t> weights)
    : weights_(std::move(weights)), current_(weights_.size(), 0) {
  for (uint32_t w : weights_) total_ += w;
}

size_t SmoothWeightedRoundRobin::Pick() {
  if (total_ == 0) return SIZE_MAX;
  // Every index gains its weight; the one furthest ahead is picked and pays
  // back the total. The sum of current_ stays 0, so values stay within
  // +-total_ and the picks of each index come out evenly spaced.
  size_t best = SIZE_MAX;
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (weights_[i] == 0) continue;
    current_[i] += weights_[i];
    if (best == SIZE_MAX || current_[i] > current_[best]) best = i;
  }
  current_[best] -= total_;
  return best;
}

size_t RoundRobin::Pick(size_t n, absl::FunctionRef<bool(size_t)> usable) {
  if (n == 0) return SIZE_MAX;
  size_t start = next_ % n;
  for (size_t k = 0; k < n; ++k) {
    size_t i = start + k < n ? start + k : start + k - n;
    if (usable(i)) {
      next_ = i + 1;
      return i;
    }
  }
  return SIZE_MAX;
}

uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t RandomBelow(uint64_t n, uint64_t* state) {
  // Lemire's multiply-shift: no division, and the bias (n / 2^64) is far
  // below anything a balancer could notice.
  return static_cast<uint64_t>(
      (static_cast<unsigned __int128>(NextRandom(state)) * n) >> 64);
}

size_t PickLeastRequest(std::span<const uint32_t> active,
                        absl::FunctionRef<bool(size_t)> usable,
                        uint64_t* rng_state) {
  const size_t n = active.size();
  if (n == 0) return SIZE_MAX;
  if (n == 1) return usable(0) ? 0 : SIZE_MAX;

  // Fast path: most endpoints are usable, so a few random probes find two
  // without looking at the others.
  constexpr int kProbes = 4;
  size_t a = SIZE_MAX;
  size_t b = SIZE_MAX;
  for (int i = 0; i < kProbes && a == SIZE_MAX; ++i) {
    size_t c = RandomBelow(n, rng_state);
    if (usable(c)) a = c;
  }
  if (a != SIZE_MAX) {
    for (int i = 0; i < kProbes && b == SIZE_MAX; ++i) {
      // Uniform over the indexes other than a.
      size_t c = RandomBelow(n - 1, rng_state);
      if (c >= a) ++c;
      if (usable(c)) b = c;
    }
  }

  if (b == SIZE_MAX) {
    // Slow path (many endpoints ejected): count the usable ones and draw
    // two distinct ranks among them, which keeps the choice uniform.
    size_t k = 0;
    size_t only = SIZE_MAX;
    for (size_t i = 0; i < n; ++i) {
      if (usable(i)) {
        ++k;
        only = i;
      }
    }
    if (k <= 1) return only;
    size_t ra = RandomBelow(k, rng_state);
    size_t rb = RandomBelow(k - 1, rng_state);
    if (rb >= ra) ++rb;
    a = SIZE_MAX;
    b = SIZE_MAX;
    size_t rank = 0;
    for (size_t i = 0; i < n && (a == SIZE_MAX || b == SIZE_MAX); ++i) {
      if (!usable(i)) continue;
      if (rank == ra) a = i;
      if (rank == rb) b = i;
      ++rank;
    }
    // `usable` changed its mind between the scans: take what was found.
    if (a == SIZE_MAX) return b == SIZE_MAX ? only : b;
    if (b == SIZE_MAX) return a;
  }
  return active[b] < active[a] ? b : a;
}

}  // namespace nodemesh::proxy
