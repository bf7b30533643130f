#include "agent/proxy/outlier_detector.h"

#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nodemesh::proxy {
namespace {

using std::chrono::milliseconds;
using T = OutlierDetector::Clock::time_point;

OutlierPolicy Policy(uint64_t errors, int interval_ms, int base_ms,
                     uint32_t percent) {
  OutlierPolicy p;
  p.max_server_errors = errors;
  p.interval = milliseconds(interval_ms);
  p.base_ejection = milliseconds(base_ms);
  p.max_ejection_percent = percent;
  return p;
}

std::vector<std::string> Endpoints(int n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back("10.0.0." + std::to_string(i));
  return out;
}

TEST(OutlierDetectorTest, EjectsAtMaxServerErrorsWithinOneInterval) {
  T t0{};
  OutlierDetector d(Policy(3, 1000, 5000, 100), t0);
  d.SetEndpoints(Endpoints(2));
  EXPECT_FALSE(d.Report("10.0.0.0", 2, 10, t0));
  EXPECT_FALSE(d.ejected("10.0.0.0"));
  EXPECT_TRUE(d.Report("10.0.0.0", 1, 0, t0 + milliseconds(500)));
  EXPECT_TRUE(d.ejected("10.0.0.0"));
  EXPECT_FALSE(d.ejected("10.0.0.1"));
  EXPECT_EQ(d.ejected_count(), 1u);
  EXPECT_EQ(d.ejections_total(), 1u);
}

TEST(OutlierDetectorTest, ErrorsDoNotAddUpAcrossIntervals) {
  T t0{};
  OutlierDetector d(Policy(3, 1000, 5000, 100), t0);
  d.SetEndpoints(Endpoints(2));
  EXPECT_FALSE(d.Report("10.0.0.0", 2, 0, t0));
  EXPECT_FALSE(d.Advance(t0 + milliseconds(1000)));  // the interval ends
  EXPECT_FALSE(d.Report("10.0.0.0", 2, 0, t0 + milliseconds(1100)));
  EXPECT_FALSE(d.ejected("10.0.0.0"));
}

TEST(OutlierDetectorTest, ComesBackAfterItsTimeAndTheDurationGrows) {
  T t0{};
  OutlierDetector d(Policy(1, 10000, 1000, 100), t0);
  d.SetEndpoints(Endpoints(2));
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  EXPECT_FALSE(d.Advance(t0 + milliseconds(999)));
  EXPECT_TRUE(d.ejected("10.0.0.0"));
  EXPECT_TRUE(d.Advance(t0 + milliseconds(1000)));
  EXPECT_FALSE(d.ejected("10.0.0.0"));
  // Second ejection: twice the base.
  T t1 = t0 + milliseconds(1500);
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t1));
  EXPECT_EQ(d.ejection_count("10.0.0.0"), 2u);
  EXPECT_FALSE(d.Advance(t1 + milliseconds(1999)));
  EXPECT_TRUE(d.Advance(t1 + milliseconds(2000)));
  // Third: three times.
  T t2 = t1 + milliseconds(2100);
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t2));
  EXPECT_FALSE(d.Advance(t2 + milliseconds(2999)));
  EXPECT_TRUE(d.Advance(t2 + milliseconds(3000)));
  EXPECT_EQ(d.ejections_total(), 3u);
}

TEST(OutlierDetectorTest, ErrorFreeIntervalsLowerTheMultiplier) {
  T t0{};
  OutlierDetector d(Policy(1, 1000, 100, 100), t0);
  d.SetEndpoints(Endpoints(2));
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  d.Advance(t0 + milliseconds(100));
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t0 + milliseconds(200)));
  EXPECT_EQ(d.ejection_count("10.0.0.0"), 2u);
  d.Advance(t0 + milliseconds(400));   // back
  d.Advance(t0 + milliseconds(1000));  // error-free interval: 2 -> 1
  EXPECT_EQ(d.ejection_count("10.0.0.0"), 1u);
  d.Advance(t0 + milliseconds(2000));  // 1 -> 0
  EXPECT_EQ(d.ejection_count("10.0.0.0"), 0u);
}

TEST(OutlierDetectorTest, MaxEjectionPercentCapsEjections) {
  T t0{};
  OutlierDetector d(Policy(1, 1000, 5000, 50), t0);
  d.SetEndpoints(Endpoints(4));  // at most 2 out
  EXPECT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  EXPECT_TRUE(d.Report("10.0.0.1", 1, 0, t0));
  EXPECT_FALSE(d.Report("10.0.0.2", 5, 0, t0));
  EXPECT_FALSE(d.ejected("10.0.0.2"));
  EXPECT_EQ(d.ejected_count(), 2u);
  // Once one is back, another may go.
  d.Advance(t0 + milliseconds(5000));
  EXPECT_EQ(d.ejected_count(), 0u);
  EXPECT_TRUE(d.Report("10.0.0.2", 1, 0, t0 + milliseconds(5001)));
}

TEST(OutlierDetectorTest, AtLeastOneIsEjectableWhateverThePercent) {
  T t0{};
  OutlierDetector d(Policy(1, 1000, 5000, 0), t0);
  d.SetEndpoints(Endpoints(3));
  EXPECT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  EXPECT_FALSE(d.Report("10.0.0.1", 1, 0, t0));
  // 10% of 3 rounds down to 0: still one.
  d.SetPolicy(Policy(1, 1000, 5000, 10));
  EXPECT_FALSE(d.Report("10.0.0.2", 1, 0, t0));
  EXPECT_EQ(d.ejected_count(), 1u);
}

TEST(OutlierDetectorTest, ReportsForEjectedOrUnknownEndpointsAreIgnored) {
  T t0{};
  OutlierDetector d(Policy(1, 1000, 5000, 100), t0);
  d.SetEndpoints(Endpoints(2));
  EXPECT_FALSE(d.Report("10.9.9.9", 10, 0, t0));
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  EXPECT_FALSE(d.Report("10.0.0.0", 10, 0, t0));
  EXPECT_EQ(d.ejections_total(), 1u);
}

TEST(OutlierDetectorTest, AnEndpointThatLeavesIsForgotten) {
  T t0{};
  OutlierDetector d(Policy(1, 1000, 5000, 100), t0);
  d.SetEndpoints(Endpoints(3));
  ASSERT_TRUE(d.Report("10.0.0.0", 1, 0, t0));
  ASSERT_TRUE(d.Report("10.0.0.1", 1, 0, t0));
  d.SetEndpoints({"10.0.0.1", "10.0.0.2"});
  EXPECT_EQ(d.ejected_count(), 1u);
  EXPECT_TRUE(d.ejected("10.0.0.1"));
  EXPECT_FALSE(d.ejected("10.0.0.0"));
  d.SetEndpoints({"10.0.0.0", "10.0.0.1", "10.0.0.2"});
  EXPECT_FALSE(d.ejected("10.0.0.0"));  // came back fresh
  EXPECT_EQ(d.ejection_count("10.0.0.0"), 0u);
}

TEST(OutlierPolicyTest, FromTheModel) {
  model::OutlierDetection o;
  o.max_server_errors = 5;
  o.interval = model::Duration::Seconds(10);
  o.base_ejection_duration = model::Duration::Millis(1500);
  o.max_ejection_percent = 25;
  OutlierPolicy p = OutlierPolicy::From(o);
  EXPECT_EQ(p.max_server_errors, 5u);
  EXPECT_EQ(p.interval, milliseconds(10000));
  EXPECT_EQ(p.base_ejection, milliseconds(1500));
  EXPECT_EQ(p.max_ejection_percent, 25u);
}

TEST(HealthCheckStateTest, FlipsAfterTheThresholds) {
  HealthCheckState h(/*healthy_threshold=*/2, /*unhealthy_threshold=*/3);
  EXPECT_TRUE(h.healthy());
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(true));  // not consecutive: starts over
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_TRUE(h.Record(false));
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.Record(true));
  EXPECT_TRUE(h.Record(true));
  EXPECT_TRUE(h.healthy());
}

}  // namespace
}  // namespace nodemesh::proxy
