// The proxy's byte paths: a tcpRoute reached through the kernel redirection
// (connect4 -> outbound listener -> SO_ORIGINAL_DST), half-close and the
// idle timeout; and HTTP Upgrade and CONNECT turning into tunnels.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/datapath/datapath_maps.h"
#include "gtest/gtest.h"
#include "tests/integration/echo_server.h"
#include "tests/integration/proxy_fixture.h"

namespace nodemesh::testing {
namespace {

using nlohmann::json;

// Sends `data`, half-closes, reads until EOF; returns what came back.
std::string SendHalfCloseRead(int fd, const std::string& data) {
  std::string back;
  std::thread writer([&] {
    if (!WriteAll(fd, data.data(), data.size()))
      fprintf(stderr, "write: %s\n", strerror(errno));
    ::shutdown(fd, SHUT_WR);
  });
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) fprintf(stderr, "recv: %s\n", strerror(errno));
    if (n <= 0) break;
    back.append(buf, static_cast<size_t>(n));
  }
  writer.join();
  return back;
}

class ProxyTcpTest : public ::testing::Test {
 protected:
  // A tcpRoute service on router port 7000 whose target echoes, with the
  // VIP 127.10.0.9:7000 sent to the proxy by the datapath.
  void StartTcp(json route_timeout = nullptr) {
    echo_ = std::make_unique<EchoServer>(node_.netns(), echo_port_);
    json tcp_route = {{"action", appmesh::Targets({{"echo", 1}})}};
    if (!route_timeout.is_null()) tcp_route["timeout"] = route_timeout;
    json model = {appmesh::Mesh(),
                  appmesh::Node("echo", echo_port_, "127.0.0.1", "tcp"),
                  appmesh::Router("tr", 7000, "tcp"),
                  appmesh::Route("tr", "bytes", {{"tcpRoute", tcp_route}}),
                  appmesh::ServiceByRouter("echo.m.local", "tr")};
    ASSERT_TRUE(node_.Start(model));
    auto maps = datapath::DatapathMaps::Open(node_.pin_dir());
    ASSERT_TRUE(maps.ok()) << maps.status();
    auto vip = datapath::ServiceAddress::Parse("127.10.0.9:7000");
    ASSERT_TRUE(vip.ok());
    nm_service svc{};
    svc.service_id = 9;
    svc.action = NM_ACTION_PROXY;
    ASSERT_TRUE(maps->UpsertService(*vip, svc).ok());
    workload_ = std::make_unique<CgroupScope>(node_.workloads_cgroup() + "/wl");
  }

  ProxyNode node_;
  uint16_t echo_port_ = PickPort();
  std::unique_ptr<EchoServer> echo_;
  std::unique_ptr<CgroupScope> workload_;
};

TEST_F(ProxyTcpTest, RedirectedConnectionCarriesBytesBothWaysWithHalfClose) {
  StartTcp();
  // A workload: connects to the VIP, which the kernel sends to the proxy.
  ChildProcess client(workload_->path(), node_.netns_fd(), [] {
    auto fd = Connect("127.10.0.9:7000");
    if (!fd.valid()) return 10;
    std::string data = Pattern(4 << 20);
    std::string back = SendHalfCloseRead(fd.get(), data);
    if (back == data) return 0;
    fprintf(stderr, "back %zu of %zu bytes\n", back.size(), data.size());
    return 11;
  });
  EXPECT_EQ(client.Wait(30000), 0);
  json stats = node_.AdminJson("/stats");
  EXPECT_EQ(stats["proxy"]["downstream_bytes_received_total"], 4 << 20);
  EXPECT_EQ(stats["proxy"]["downstream_bytes_sent_total"], 4 << 20);
  EXPECT_EQ(stats["proxy"]["tcp_connections_total"], 1) << stats.dump();
  EXPECT_EQ(echo_->accepted(), 1);
  // Splicing is off by default (see README "Splicing").
  EXPECT_TRUE(
      absl::StrContains(node_.Metrics(), "nodemesh_bpf_sockhash_adds_total 0"));
}

TEST_F(ProxyTcpTest, IdleTimeoutClosesBothSides) {
  StartTcp({{"idle", {{"unit", "ms"}, {"value", 400}}}});
  ChildProcess client(workload_->path(), node_.netns_fd(), [] {
    auto fd = Connect("127.10.0.9:7000");
    if (!fd.valid()) return 10;
    if (!WriteAll(fd.get(), "x", 1)) return 11;
    char c;
    if (::recv(fd.get(), &c, 1, 0) != 1) return 12;
    auto start = std::chrono::steady_clock::now();
    // Then silence: the proxy closes after the idle timeout.
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return 13;
    if (::recv(fd.get(), &c, 1, 0) != 0) return 14;
    auto waited = std::chrono::steady_clock::now() - start;
    return waited >= std::chrono::milliseconds(300) ? 0 : 15;
  });
  EXPECT_EQ(client.Wait(30000), 0);
  EXPECT_TRUE(absl::StrContains(node_.Metrics(), "nodemesh_timeouts_total 1"));
}

class ProxyTunnelTest : public ::testing::Test {
 protected:
  void StartHttp(const std::string& reply) {
    echo_ = std::make_unique<EchoServer>(node_.netns(), port_, reply);
    json model = {appmesh::Mesh(), appmesh::Node("app", port_),
                  appmesh::ServiceByNode("svc.m.local", "app"),
                  appmesh::Gateway("gw", gw_),
                  appmesh::GatewayRoute("gw", "all", "/", "svc.m.local")};
    ASSERT_TRUE(node_.Start(model));
  }
  // Sends a request head, expects `status` back, then echoes bytes through.
  void ExpectTunnel(uint16_t port, const std::string& request, int status) {
    net::UniqueFd fd;
    {
      NetnsScope::Enter in(node_.netns());
      fd = Connect(absl::StrCat("127.0.0.1:", port));
    }
    ASSERT_TRUE(fd.valid());
    // The first tunnel bytes ride with the request head.
    std::string first = request + "early";
    ASSERT_TRUE(WriteAll(fd.get(), first.data(), first.size()));
    std::string got;
    char buf[65536];
    while (got.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
      ASSERT_GT(n, 0);
      got.append(buf, static_cast<size_t>(n));
    }
    EXPECT_TRUE(absl::StartsWith(got, absl::StrCat("HTTP/1.1 ", status)))
        << got;
    std::string rest = got.substr(got.find("\r\n\r\n") + 4);
    std::string data = Pattern(1 << 20);
    std::string back = SendHalfCloseRead(fd.get(), data);
    EXPECT_TRUE(rest + back == "early" + data);
  }

  ProxyNode node_;
  uint16_t port_ = PickPort();
  uint16_t gw_ = PickPort();
  std::unique_ptr<EchoServer> echo_;
};

TEST_F(ProxyTunnelTest, UpgradeBecomesATunnel) {
  StartHttp(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n");
  ExpectTunnel(
      gw_,
      "GET /ws HTTP/1.1\r\nHost: svc.m.local\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n",
      101);
  EXPECT_TRUE(absl::StrContains(echo_->head(), "upgrade: websocket"))
      << echo_->head();
  json stats = node_.AdminJson("/stats");
  EXPECT_EQ(stats["proxy"]["tunnels_total"], 1);
  // A gateway client is no workload: none of the proxy's legs is spliced.
  EXPECT_TRUE(
      absl::StrContains(node_.Metrics(), "nodemesh_bpf_sockhash_adds_total 0"));
}

TEST_F(ProxyTunnelTest, ConnectBecomesATunnel) {
  StartHttp("HTTP/1.1 200 Connection Established\r\n\r\n");
  ExpectTunnel(
      node_.outbound_port(),
      absl::StrCat("CONNECT svc.m.local:", port_,
                   " HTTP/1.1\r\nHost: svc.m.local:", port_, "\r\n\r\n"),
      200);
  EXPECT_TRUE(absl::StartsWith(echo_->head(), "CONNECT svc.m.local:"))
      << echo_->head();
}

}  // namespace
}  // namespace nodemesh::testing
