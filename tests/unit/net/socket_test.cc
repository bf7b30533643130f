#include "agent/net/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include <string>

#include "gtest/gtest.h"

namespace nodemesh::net {
namespace {

TEST(SocketAddressTest, ParsesAndPrintsIpv4) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse("127.0.0.1:15000");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_INET);
  EXPECT_EQ(a->port(), 15000);
  EXPECT_EQ(a->addr_len(), sizeof(sockaddr_in));
  EXPECT_EQ(a->ToString(), "127.0.0.1:15000");
}

TEST(SocketAddressTest, ParsesAndPrintsIpv6) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse("[::1]:15000");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->family(), AF_INET6);
  EXPECT_EQ(a->port(), 15000);
  EXPECT_EQ(a->ToString(), "[::1]:15000");
  absl::StatusOr<SocketAddress> b = SocketAddress::Parse("[2001:db8:0:0::1]:0");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ToString(), "[2001:db8::1]:0");
}

TEST(SocketAddressTest, RejectsMalformedWithTheInputInTheMessage) {
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "127.0.0.1:80x", "localhost:80", "::1:80", "[::1]", "[::1]80",
        "[::1:80", "[127.0.0.1]:80", "1.2.3:80", ":80", "127.0.0.1:123456"}) {
    absl::StatusOr<SocketAddress> a = SocketAddress::Parse(bad);
    EXPECT_FALSE(a.ok()) << bad;
    if (!a.ok()) {
      EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(a.status().message().find(std::string("\"") + bad + "\""),
                absl::string_view::npos)
          << a.status();
    }
  }
}

TEST(SocketAddressTest, FromIpPortBracketsIpv6) {
  auto v4 = SocketAddress::FromIpPort("198.18.1.1", 15008);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->ToString(), "198.18.1.1:15008");
  auto v6 = SocketAddress::FromIpPort("fd00::2", 9000);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->ToString(), "[fd00::2]:9000");
  EXPECT_FALSE(SocketAddress::FromIpPort("nope", 1).ok());
}

TEST(SocketAddressTest, EqualityAndWithPort) {
  SocketAddress a = *SocketAddress::Parse("10.0.0.1:80");
  SocketAddress b = *SocketAddress::Parse("10.0.0.1:81");
  EXPECT_NE(a, b);
  EXPECT_EQ(a.WithPort(81), b);
  EXPECT_FALSE(SocketAddress().valid());
  EXPECT_EQ(SocketAddress(), SocketAddress());
}

TEST(SocketTest, ListenOnPortZeroThenConnectAndAccept) {
  SocketAddress any = *SocketAddress::Parse("127.0.0.1:0");
  absl::StatusOr<UniqueFd> lfd = ListenTcp(any, 16, /*reuse_port=*/false);
  ASSERT_TRUE(lfd.ok()) << lfd.status();
  EXPECT_TRUE(::fcntl(lfd->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(lfd->get(), F_GETFD) & FD_CLOEXEC);
  absl::StatusOr<SocketAddress> bound = LocalAddress(lfd->get());
  ASSERT_TRUE(bound.ok()) << bound.status();
  EXPECT_NE(bound->port(), 0);

  // Nothing pending yet: an empty fd, not an error.
  absl::StatusOr<UniqueFd> none = Accept(lfd->get(), nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->valid());

  absl::StatusOr<UniqueFd> cfd = ConnectTcp(*bound);
  ASSERT_TRUE(cfd.ok()) << cfd.status();
  pollfd pfd{cfd->get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  EXPECT_TRUE(SocketError(cfd->get()).ok());

  pollfd lp{lfd->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&lp, 1, 5000), 1);
  SocketAddress peer;
  absl::StatusOr<UniqueFd> afd = Accept(lfd->get(), &peer);
  ASSERT_TRUE(afd.ok()) << afd.status();
  ASSERT_TRUE(afd->valid());
  EXPECT_TRUE(::fcntl(afd->get(), F_GETFL) & O_NONBLOCK);
  EXPECT_EQ(peer, *LocalAddress(cfd->get()));
  EXPECT_EQ(*PeerAddress(afd->get()), peer);
}

TEST(SocketTest, ReusePortAllowsTwoListenersOnOnePort) {
  SocketAddress any = *SocketAddress::Parse("127.0.0.1:0");
  absl::StatusOr<UniqueFd> first = ListenTcp(any, 16, /*reuse_port=*/true);
  ASSERT_TRUE(first.ok()) << first.status();
  SocketAddress bound = *LocalAddress(first->get());
  absl::StatusOr<UniqueFd> second = ListenTcp(bound, 16, /*reuse_port=*/true);
  EXPECT_TRUE(second.ok()) << second.status();
}

TEST(SocketTest, BusyPortErrorNamesTheAddress) {
  SocketAddress any = *SocketAddress::Parse("127.0.0.1:0");
  absl::StatusOr<UniqueFd> first = ListenTcp(any, 16, /*reuse_port=*/false);
  ASSERT_TRUE(first.ok()) << first.status();
  SocketAddress bound = *LocalAddress(first->get());
  absl::StatusOr<UniqueFd> second = ListenTcp(bound, 16, /*reuse_port=*/false);
  ASSERT_FALSE(second.ok());
  const std::string msg(second.status().message());
  EXPECT_NE(msg.find(bound.ToString()), std::string::npos) << msg;
  EXPECT_NE(msg.find("Address already in use"), std::string::npos) << msg;
}

TEST(SocketTest, ConnectRefusedIsReportedBySocketError) {
  // Find a free port by binding and closing it.
  SocketAddress any = *SocketAddress::Parse("127.0.0.1:0");
  SocketAddress port;
  {
    absl::StatusOr<UniqueFd> l = ListenTcp(any, 1, false);
    ASSERT_TRUE(l.ok());
    port = *LocalAddress(l->get());
  }
  absl::StatusOr<UniqueFd> cfd = ConnectTcp(port);
  if (!cfd.ok()) {  // loopback may refuse synchronously
    EXPECT_NE(std::string(cfd.status().message()).find(port.ToString()),
              std::string::npos);
    return;
  }
  pollfd pfd{cfd->get(), POLLOUT, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  absl::Status st = SocketError(cfd->get());
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("refused"), std::string::npos) << st;
}

}  // namespace
}  // namespace nodemesh::net
