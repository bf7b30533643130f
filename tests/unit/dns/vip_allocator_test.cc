// VIPs: one per virtual service from --service_cidr, kept across restarts
// (the state file), re-allocated when the range changes, reclaimed only
// when the range runs out.

#include "agent/dns/vip_allocator.h"

#include <filesystem>
#include <set>

#include "gtest/gtest.h"

namespace nodemesh::dns {
namespace {

class VipAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vip-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(VipAllocatorTest, OnePerServiceInsideTheRangeAndStableAcrossRestarts) {
  std::string a_vip, b_vip;
  uint32_t a_id = 0;
  {
    auto v = VipAllocator::Create("127.128.0.0/16", dir_);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_TRUE(v->Sync({"m/a.local", "m/b.local"}));
    EXPECT_FALSE(v->Sync({"m/a.local", "m/b.local"}));  // nothing new
    ASSERT_NE(v->Find("m/a.local"), nullptr);
    a_vip = v->Find("m/a.local")->ToString();
    b_vip = v->Find("m/b.local")->ToString();
    a_id = v->Find("m/a.local")->service_id;
    EXPECT_NE(a_vip, b_vip);
    EXPECT_EQ(a_vip.rfind("127.128.", 0), 0u);
    EXPECT_NE(v->Find("m/a.local")->service_id,
              v->Find("m/b.local")->service_id);
    ASSERT_NE(v->KeyOf(v->Find("m/b.local")->service_id), nullptr);
    EXPECT_EQ(*v->KeyOf(v->Find("m/b.local")->service_id), "m/b.local");
    EXPECT_EQ(v->KeyOf(999), nullptr);
  }
  auto again = VipAllocator::Create("127.128.0.0/16", dir_);
  ASSERT_TRUE(again.ok());
  // A service that left the model keeps its VIP too, and a new one never
  // takes an address in use.
  again->Sync({"m/c.local", "m/a.local"});
  EXPECT_EQ(again->Find("m/a.local")->ToString(), a_vip);
  EXPECT_EQ(again->Find("m/a.local")->service_id, a_id);
  EXPECT_EQ(again->Find("m/b.local")->ToString(), b_vip);
  EXPECT_NE(again->Find("m/c.local")->ToString(), a_vip);
  EXPECT_NE(again->Find("m/c.local")->ToString(), b_vip);
}

TEST_F(VipAllocatorTest, ANewRangeAllocatesAnew) {
  {
    auto v = VipAllocator::Create("127.128.0.0/16", dir_);
    v->Sync({"m/a.local"});
  }
  auto v = VipAllocator::Create("127.200.0.0/24", dir_);
  ASSERT_TRUE(v.ok());
  v->Sync({"m/a.local"});
  EXPECT_EQ(v->Find("m/a.local")->ToString().rfind("127.200.0.", 0), 0u);
}

TEST_F(VipAllocatorTest, AFullRangeReclaimsGoneServicesOnly) {
  auto v = VipAllocator::Create("127.9.9.0/30", dir_);  // .2 only usable
  ASSERT_TRUE(v.ok());
  v->Sync({"m/a.local"});
  ASSERT_NE(v->Find("m/a.local"), nullptr);
  v->Sync({"m/a.local", "m/b.local"});
  EXPECT_EQ(v->Find("m/b.local"), nullptr);  // full; a is still in use
  v->Sync({"m/b.local"});                    // a left the model
  ASSERT_NE(v->Find("m/b.local"), nullptr);
  EXPECT_EQ(v->Find("m/a.local"), nullptr);
}

TEST_F(VipAllocatorTest, RefusesABadRange) {
  EXPECT_FALSE(VipAllocator::Create("127.0.0.0", dir_).ok());
  EXPECT_FALSE(VipAllocator::Create("fd00::/64", dir_).ok());
  EXPECT_FALSE(VipAllocator::Create("127.0.0.0/31", dir_).ok());
}

}  // namespace
}  // namespace nodemesh::dns
