#include "agent/proxy/load_balancer.h"

#include <cstdint>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace nodemesh::proxy {
namespace {

std::vector<size_t> Picks(SmoothWeightedRoundRobin* rr, int n) {
  std::vector<size_t> picks;
  picks.reserve(n);
  for (int i = 0; i < n; ++i) picks.push_back(rr->Pick());
  return picks;
}

// The longest run of consecutive picks of `index`.
int MaxRun(const std::vector<size_t>& picks, size_t index) {
  int best = 0;
  int run = 0;
  for (size_t p : picks) {
    run = p == index ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}

// Every window of `window` consecutive picks holds exactly weights[i] picks
// of each i.
void ExpectEveryWindowExact(const std::vector<size_t>& picks,
                            const std::vector<uint32_t>& weights,
                            size_t window) {
  std::vector<int> counts(weights.size(), 0);
  for (size_t i = 0; i < picks.size(); ++i) {
    ASSERT_LT(picks[i], weights.size());
    ++counts[picks[i]];
    if (i >= window) --counts[picks[i - window]];
    if (i + 1 >= window) {
      for (size_t k = 0; k < weights.size(); ++k) {
        ASSERT_EQ(counts[k], static_cast<int>(weights[k]))
            << "window ending at pick " << i << ", index " << k;
      }
    }
  }
}

TEST(SmoothWeightedRoundRobinTest, NinetyTenIsExactAndInterleaved) {
  SmoothWeightedRoundRobin rr({90, 10});
  EXPECT_EQ(rr.size(), 2u);
  std::vector<size_t> picks = Picks(&rr, 10'000);
  int ones = 0;
  for (size_t p : picks) ones += p == 1;
  EXPECT_EQ(ones, 1'000);
  EXPECT_EQ(10'000 - ones, 9'000);
  EXPECT_EQ(MaxRun(picks, 1), 1);
  EXPECT_LE(MaxRun(picks, 0), 10);
  ExpectEveryWindowExact(picks, {90, 10}, 100);
}

TEST(SmoothWeightedRoundRobinTest, OneTwoThree) {
  SmoothWeightedRoundRobin rr({1, 2, 3});
  std::vector<size_t> picks = Picks(&rr, 600);
  ExpectEveryWindowExact(picks, {1, 2, 3}, 6);
  // nginx's sequence for {1, 2, 3} (the first maximum wins a tie).
  EXPECT_EQ(std::vector<size_t>(picks.begin(), picks.begin() + 6),
            (std::vector<size_t>{2, 1, 0, 2, 1, 2}));
  EXPECT_EQ(MaxRun(picks, 0), 1);
  EXPECT_EQ(MaxRun(picks, 1), 1);
}

TEST(SmoothWeightedRoundRobinTest, ZeroWeightsAreNeverPicked) {
  SmoothWeightedRoundRobin rr({0, 5});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(rr.Pick(), 1u);

  SmoothWeightedRoundRobin mixed({3, 0, 1, 0});
  std::vector<size_t> picks = Picks(&mixed, 400);
  ExpectEveryWindowExact(picks, {3, 0, 1, 0}, 4);
}

TEST(SmoothWeightedRoundRobinTest, NothingToPick) {
  SmoothWeightedRoundRobin zeros({0, 0});
  EXPECT_EQ(zeros.Pick(), SIZE_MAX);
  SmoothWeightedRoundRobin empty({});
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.Pick(), SIZE_MAX);
}

TEST(SmoothWeightedRoundRobinTest, HugeWeightsDoNotOverflow) {
  SmoothWeightedRoundRobin rr({UINT32_MAX, UINT32_MAX, 1});
  std::vector<size_t> picks = Picks(&rr, 1000);
  EXPECT_EQ(MaxRun(picks, 0), 1);
  EXPECT_EQ(MaxRun(picks, 1), 1);
  EXPECT_EQ(MaxRun(picks, 2), 0);
}

TEST(RoundRobinTest, CyclesInOrder) {
  RoundRobin rr;
  auto all = [](size_t) { return true; };
  std::vector<size_t> picks;
  picks.reserve(9);
  for (int i = 0; i < 9; ++i) picks.push_back(rr.Pick(4, all));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 1, 2, 3, 0, 1, 2, 3, 0}));
}

TEST(RoundRobinTest, SkipsUnusable) {
  RoundRobin rr;
  auto usable = [](size_t i) { return i != 1 && i != 2; };
  std::vector<size_t> picks;
  picks.reserve(6);
  for (int i = 0; i < 6; ++i) picks.push_back(rr.Pick(5, usable));
  EXPECT_EQ(picks, (std::vector<size_t>{0, 3, 4, 0, 3, 4}));

  RoundRobin wrap;
  auto only_zero = [](size_t i) { return i == 0; };
  EXPECT_EQ(wrap.Pick(3, only_zero), 0u);
  EXPECT_EQ(wrap.Pick(3, only_zero), 0u);
}

TEST(RoundRobinTest, NoneUsableOrEmpty) {
  RoundRobin rr;
  EXPECT_EQ(rr.Pick(4, [](size_t) { return false; }), SIZE_MAX);
  EXPECT_EQ(rr.Pick(0, [](size_t) { return true; }), SIZE_MAX);
  // Recovers once something is usable again.
  EXPECT_EQ(rr.Pick(2, [](size_t i) { return i == 1; }), 1u);
}

TEST(RoundRobinTest, EndpointSetShrinks) {
  RoundRobin rr;
  auto all = [](size_t) { return true; };
  for (int i = 0; i < 7; ++i) rr.Pick(10, all);  // next would be 7
  size_t p = rr.Pick(3, all);
  EXPECT_LT(p, 3u);
  EXPECT_EQ(rr.Pick(3, all), (p + 1) % 3);
}

TEST(NextRandomTest, DeterministicPerStateAndZeroSeedWorks) {
  uint64_t a = 0;
  uint64_t b = 0;
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = NextRandom(&a);
    EXPECT_EQ(x, NextRandom(&b));
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(NextRandomTest, RandomBelowStaysInRangeAndSpreads) {
  uint64_t state = 42;
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100'000; ++i) {
    uint64_t v = RandomBelow(10, &state);
    ASSERT_LT(v, 10u);
    ++counts[v];
  }
  for (int c : counts) {
    EXPECT_GT(c, 9'000);
    EXPECT_LT(c, 11'000);
  }
  EXPECT_EQ(RandomBelow(1, &state), 0u);
}

TEST(PickLeastRequestTest, PrefersTheLessLoaded) {
  std::vector<uint32_t> active = {100, 0};
  uint64_t rng = 1;
  int idle = 0;
  for (int i = 0; i < 1000; ++i) {
    size_t p = PickLeastRequest(
        active, [](size_t) { return true; }, &rng);
    ASSERT_LT(p, 2u);
    idle += p == 1;
  }
  EXPECT_GE(idle, 700);
  // With two endpoints both are always compared, so the idle one always wins.
  EXPECT_EQ(idle, 1000);
}

TEST(PickLeastRequestTest, IdleEndpointAmongManyWinsWhenDrawn) {
  std::vector<uint32_t> active(10, 50);
  active[3] = 0;
  uint64_t rng = 7;
  int idle = 0;
  constexpr int kTrials = 20'000;
  for (int i = 0; i < kTrials; ++i) {
    idle += PickLeastRequest(
                active, [](size_t) { return true; }, &rng) == 3;
  }
  // Drawn in 2 of 10 draws (distinct pairs: 1 - 9/10 * 8/9 = 20%), against
  // 10% for a uniform pick.
  EXPECT_GT(idle, kTrials * 17 / 100);
  EXPECT_LT(idle, kTrials * 23 / 100);
}

TEST(PickLeastRequestTest, DrawsDistinctIndexes) {
  // Equal load: ties go to the first drawn, so both indexes show up, and
  // an index is never compared with itself (which would bias nothing here
  // but is checked through the 3-endpoint case below).
  std::vector<uint32_t> active = {0, 0};
  uint64_t rng = 3;
  int zero = 0;
  for (int i = 0; i < 1000; ++i) {
    zero += PickLeastRequest(
                active, [](size_t) { return true; }, &rng) == 0;
  }
  EXPECT_GT(zero, 350);
  EXPECT_LT(zero, 650);

  // The most loaded of three can win only if drawn against itself.
  std::vector<uint32_t> three = {5, 1, 9};
  for (int i = 0; i < 2000; ++i) {
    ASSERT_NE(PickLeastRequest(
                  three, [](size_t) { return true; }, &rng),
              2u);
  }
}

TEST(PickLeastRequestTest, NeverPicksUnusable) {
  std::vector<uint32_t> active = {0, 0, 9, 0, 0};
  uint64_t rng = 11;
  auto usable = [](size_t i) { return i == 2; };
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(PickLeastRequest(active, usable, &rng), 2u);
  }
  EXPECT_EQ(PickLeastRequest(
                active, [](size_t) { return false; }, &rng),
            SIZE_MAX);
}

TEST(PickLeastRequestTest, MostlyEjectedSetStillCompares) {
  // Random probes mostly miss here, so the exact fallback decides.
  std::vector<uint32_t> active(100, 0);
  active[3] = 40;
  active[97] = 2;
  auto usable = [](size_t i) { return i == 3 || i == 97; };
  uint64_t rng = 5;
  for (int i = 0; i < 500; ++i) {
    ASSERT_EQ(PickLeastRequest(active, usable, &rng), 97u);
  }
}

TEST(PickLeastRequestTest, SingleAndEmpty) {
  uint64_t rng = 0;
  std::vector<uint32_t> one = {7};
  EXPECT_EQ(PickLeastRequest(
                one, [](size_t) { return true; }, &rng),
            0u);
  EXPECT_EQ(PickLeastRequest(
                one, [](size_t) { return false; }, &rng),
            SIZE_MAX);
  EXPECT_EQ(PickLeastRequest(
                {}, [](size_t) { return true; }, &rng),
            SIZE_MAX);
}

}  // namespace
}  // namespace nodemesh::proxy
