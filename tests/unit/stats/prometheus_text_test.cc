#include "agent/stats/prometheus_text.h"

#include "gtest/gtest.h"

namespace nodemesh::stats {
namespace {

TEST(PrometheusTextTest, FamilyThenSamples) {
  PrometheusText t;
  t.Family("nodemesh_x_total", "counter", "Things counted");
  t.Sample("nodemesh_x_total", {{"a", "1"}, {"b", "two"}}, uint64_t{7});
  t.Sample("nodemesh_x_total", {}, uint64_t{0});
  EXPECT_EQ(t.text(),
            "# HELP nodemesh_x_total Things counted\n"
            "# TYPE nodemesh_x_total counter\n"
            "nodemesh_x_total{a=\"1\",b=\"two\"} 7\n"
            "nodemesh_x_total 0\n");
}

TEST(PrometheusTextTest, LabelValuesAreEscaped) {
  EXPECT_EQ(PrometheusText::EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace nodemesh::stats
