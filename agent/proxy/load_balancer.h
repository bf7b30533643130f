#pragma once

// Endpoint and target selection. Each worker owns its own balancer state
// (no locks, no shared counters); Pick() never allocates.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"

namespace nodemesh::proxy {

// Smooth weighted round robin, as nginx does it: over any window of
// sum(weights) picks each index is picked exactly weight times, and the
// picks of an index are spread out rather than bunched. Used for a route's
// weighted targets, where App Mesh promises the split.
class SmoothWeightedRoundRobin {
 public:
  explicit SmoothWeightedRoundRobin(std::vector<uint32_t> weights);

  // The next index; SIZE_MAX when every weight is 0. Weights of 0 are never
  // picked.
  size_t Pick();
  size_t size() const { return weights_.size(); }

 private:
  std::vector<uint32_t> weights_;
  std::vector<int64_t> current_;
  int64_t total_ = 0;
};

// Round robin over n endpoints, skipping those `usable` rejects (ejected,
// unhealthy). n may change between calls as the endpoint set does.
class RoundRobin {
 public:
  // SIZE_MAX when no index in [0, n) is usable.
  size_t Pick(size_t n, absl::FunctionRef<bool(size_t)> usable);

 private:
  size_t next_ = 0;
};

// splitmix64: a fast non-cryptographic generator whose whole state is one
// word a worker owns; any seed, 0 included, is fine.
uint64_t NextRandom(uint64_t* state);

// A uniform integer in [0, n) for n >= 1, from NextRandom.
uint64_t RandomBelow(uint64_t n, uint64_t* state);

// Least request with the power of two choices (Envoy's default
// choice_count of 2): draws two distinct usable indexes at random and
// returns the one with fewer active requests (ties: the first drawn). With
// one usable index, returns it; SIZE_MAX when none is usable.
size_t PickLeastRequest(std::span<const uint32_t> active,
                        absl::FunctionRef<bool(size_t)> usable,
                        uint64_t* rng_state);

}  // namespace nodemesh::proxy
