#include "agent/datapath/datapath_maps.h"

#include <arpa/inet.h>

#include "gtest/gtest.h"

namespace nodemesh::datapath {
namespace {

TEST(ServiceAddressTest, Ipv4IsHeldV4Mapped) {
  auto a = ServiceAddress::Parse("127.10.0.1:8080");
  ASSERT_TRUE(a.ok()) << a.status();
  const uint8_t want[16] = {0, 0, 0,    0,    0,   0,  0, 0,
                            0, 0, 0xff, 0xff, 127, 10, 0, 1};
  EXPECT_EQ(0, memcmp(a->addr, want, 16));
  nm_service_key key = a->Key();
  EXPECT_EQ(key.port, htons(8080));  // the map holds network order
  EXPECT_EQ(key.protocol, 6);
}

TEST(ServiceAddressTest, Ipv6AndUdp) {
  auto a = ServiceAddress::Parse("[fd00::1]:53", 17);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->addr[0], 0xfd);
  EXPECT_EQ(a->addr[15], 1);
  EXPECT_EQ(a->Key().protocol, 17);
}

TEST(ServiceAddressTest, BadInputNamesIt) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000",
                          "300.1.1.1:80", "[::1:80", "host:80"}) {
    auto a = ServiceAddress::Parse(bad);
    ASSERT_FALSE(a.ok()) << bad;
    EXPECT_NE(a.status().message().find(bad), std::string::npos) << a.status();
  }
}

TEST(AbiTest, LayoutsAreWhatBothSidesExpect) {
  // The kernel side compiles the same header; these pin the sizes that
  // bpftool dumps and pinned maps depend on.
  EXPECT_EQ(sizeof(nm_service_key), 20u);
  EXPECT_EQ(sizeof(nm_service), 8u);
  EXPECT_EQ(sizeof(nm_orig_dst), 40u);
  EXPECT_EQ(sizeof(nm_peer_key), 32u);
  EXPECT_EQ(sizeof(nm_sock_key), 48u);
  EXPECT_EQ(sizeof(nm_config), 12u);
  EXPECT_EQ(StatNames().size(), static_cast<size_t>(NM_STAT_MAX));
}

}  // namespace
}  // namespace nodemesh::datapath
