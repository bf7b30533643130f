// W3C traceparent: what is forwarded as it is, what is replaced, and the
// shape of the ones the proxy generates.

#include "agent/http/trace_context.h"

#include <string>

#include "gtest/gtest.h"

namespace nodemesh::http {
namespace {

constexpr char kValid[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceparentTest, TheSpecExampleIsValid) {
  EXPECT_TRUE(IsValidTraceparent(kValid));
  EXPECT_TRUE(IsValidTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
}

TEST(TraceparentTest, WrongLengthOrSeparatorsAreInvalid) {
  std::string v = kValid;
  EXPECT_FALSE(IsValidTraceparent(""));
  EXPECT_FALSE(IsValidTraceparent(v.substr(0, 54)));
  EXPECT_FALSE(IsValidTraceparent(v + "-"));  // version 00 is exactly 55
  EXPECT_FALSE(IsValidTraceparent(v + "0"));
  std::string sep = v;
  sep[35] = '_';
  EXPECT_FALSE(IsValidTraceparent(sep));
}

TEST(TraceparentTest, NonHexUppercaseAndZeroIdsAreInvalid) {
  std::string v = kValid;
  std::string bad = v;
  bad[10] = 'g';
  EXPECT_FALSE(IsValidTraceparent(bad));
  bad = v;
  bad[10] = 'F';
  EXPECT_FALSE(IsValidTraceparent(bad));
  EXPECT_FALSE(IsValidTraceparent(
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
  EXPECT_FALSE(IsValidTraceparent(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
}

TEST(TraceparentTest, VersionFfIsInvalidLaterVersionsMayGrow) {
  std::string v = kValid;
  EXPECT_FALSE(IsValidTraceparent("ff" + v.substr(2)));
  EXPECT_TRUE(IsValidTraceparent("01" + v.substr(2)));
  EXPECT_TRUE(IsValidTraceparent("01" + v.substr(2) + "-what-comes-next"));
  EXPECT_FALSE(IsValidTraceparent("01" + v.substr(2) + "x"));
}

TEST(TraceparentTest, GeneratedOnesAreVersion00Unsampled) {
  std::string out;
  AppendTraceparent(0x4bf92f3577b34da6, 0xa3ce929d0e0e4736, 0x00f067aa0ba902b7,
                    &out);
  EXPECT_EQ(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  EXPECT_TRUE(IsValidTraceparent(out));
  out.clear();
  AppendTraceparent(0, 0, 0, &out);  // zero ids are not allowed
  EXPECT_TRUE(IsValidTraceparent(out)) << out;
}

}  // namespace
}  // namespace nodemesh::http
