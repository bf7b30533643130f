// The real datapath programs on real sockets: each test loads them into its
// own pin dir, attaches them to its own cgroups, and runs its clients in its
// own network namespace (no default route).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/datapath/kernel_fs.h"
#include "gtest/gtest.h"
#include "tests/integration/fixtures.h"

namespace nodemesh::testing {
namespace {

using datapath::ServiceAddress;

std::pair<uint32_t, uint32_t> Pair(uint32_t workload, uint32_t service) {
  return {workload, service};
}

nm_config Config(uint16_t outbound_port, bool sockmap = false,
                 uint16_t dns_port = 0) {
  nm_config c{};
  c.outbound_port = outbound_port;
  c.dns_port = dns_port;
  c.sockmap = sockmap ? 1 : 0;
  c.agent_mark = NM_DEFAULT_AGENT_MARK;
  return c;
}

void AddService(DatapathScope& dp, const std::string& vip, uint32_t id,
                nm_service_action action,
                const std::vector<std::string>& backends = {}) {
  auto addr = ServiceAddress::Parse(vip);
  ASSERT_TRUE(addr.ok()) << addr.status();
  std::vector<nm_backend> slots;
  for (const auto& b : backends) {
    auto ba = ServiceAddress::Parse(b);
    ASSERT_TRUE(ba.ok());
    nm_backend nb{};
    std::memcpy(nb.addr, ba->addr, 16);
    nb.port = htons(ba->port);
    slots.push_back(nb);
  }
  ASSERT_TRUE(dp.maps().WriteBackends(id, slots, 0).ok());
  nm_service svc{id, static_cast<uint8_t>(action), 0,
                 static_cast<uint16_t>(slots.size())};
  ASSERT_TRUE(dp.maps().UpsertService(*addr, svc).ok());
}

net::UniqueFd AcceptWithin(int listen_fd, int timeout_ms = 10000) {
  pollfd p{listen_fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return net::UniqueFd();
  return net::UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

std::string OriginalDst4(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(sockaddr_in);
  if (::getsockopt(fd, SOL_IP, NM_SO_ORIGINAL_DST, &ss, &len) != 0)
    return absl::StrCat("error: ", strerror(errno));
  return AddressOf(ss);
}

// A client in the workload cgroup connects to `target`, sends `hello`,
// expects `world` back. Exit 0 on success, else the step that failed.
int DialAndTalk(const std::string& target, const std::string& bind = "") {
  auto fd = Connect(target, bind);
  if (!fd.valid()) return 10;
  if (!WriteAll(fd.get(), "hello", 5)) return 11;
  char buf[5];
  if (!ReadAll(fd.get(), buf, 5)) return 12;
  return std::memcmp(buf, "world", 5) == 0 ? 0 : 13;
}

// Accepts one connection, checks "hello", answers "world".
void ServeOne(int listen_fd, std::string* orig_dst,
              nm_peer_workload* peer = nullptr) {
  auto conn = AcceptWithin(listen_fd);
  ASSERT_TRUE(conn.valid()) << "nothing reached the listener";
  if (orig_dst) *orig_dst = OriginalDst4(conn.get());
  if (peer) {
    socklen_t len = sizeof(*peer);
    ASSERT_EQ(::getsockopt(conn.get(), SOL_IP, NM_SO_PEER_WORKLOAD, peer, &len),
              0)
        << strerror(errno);
  }
  char buf[5];
  ASSERT_TRUE(ReadAll(conn.get(), buf, 5));
  ASSERT_EQ(std::string(buf, 5), "hello");
  ASSERT_TRUE(WriteAll(conn.get(), "world", 5));
}

TEST(DatapathTest, VipReachesProxyWhichRecoversOriginalDestination) {
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port));
  std::string wl = dp.AddWorkload(3, 0);
  AddService(dp, "127.10.0.1:8080", 7, NM_ACTION_PROXY);
  NetnsScope ns;
  net::UniqueFd listener;
  {
    NetnsScope::Enter in(ns);
    listener = Listen(absl::StrCat("127.0.0.1:", port));
  }
  ChildProcess client(wl, ns.fd(),
                      [] { return DialAndTalk("127.10.0.1:8080"); });
  std::string orig;
  nm_peer_workload peer{};
  ServeOne(listener.get(), &orig, &peer);
  EXPECT_EQ(client.Wait(), 0);
  EXPECT_EQ(orig, "127.10.0.1:8080");
  EXPECT_EQ(peer.workload_id, 3u);
  EXPECT_EQ(peer.service_id, 7u);
  EXPECT_EQ(peer.cgroup_id, *datapath::CgroupId(wl));

  auto counters = dp.maps().ReadCounters();
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ((*counters)[Pair(3, 7)].connections, 1u);
  EXPECT_EQ((*counters)[Pair(3, 7)].rewrites, 1u);
}

TEST(DatapathTest, V4MappedAndV6ServicesAreRedirectedToo) {
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port));
  std::string wl = dp.AddWorkload(1, 0);
  AddService(dp, "127.10.0.2:80", 1, NM_ACTION_PROXY);
  AddService(dp, "[fd00:6e6d::2]:80", 2, NM_ACTION_PROXY);
  NetnsScope ns;
  net::UniqueFd l4, l6;
  {
    NetnsScope::Enter in(ns);
    l4 = Listen(absl::StrCat("127.0.0.1:", port));
    l6 = Listen(absl::StrCat("[::1]:", port));
  }
  {
    ChildProcess c(wl, ns.fd(),
                   [] { return DialAndTalk("[::ffff:127.10.0.2]:80"); });
    std::string orig;
    ServeOne(l4.get(), &orig);
    EXPECT_EQ(c.Wait(), 0);
    EXPECT_EQ(orig, "127.10.0.2:80");
  }
  {
    ChildProcess c(wl, ns.fd(),
                   [] { return DialAndTalk("[fd00:6e6d::2]:80"); });
    auto conn = AcceptWithin(l6.get());
    ASSERT_TRUE(conn.valid());
    sockaddr_storage ss{};
    socklen_t len = sizeof(sockaddr_in6);
    ASSERT_EQ(::getsockopt(conn.get(), SOL_IPV6, NM_SO_ORIGINAL_DST, &ss, &len),
              0)
        << strerror(errno);
    EXPECT_EQ(AddressOf(ss), "[fd00:6e6d::2]:80");
    char buf[5];
    ASSERT_TRUE(ReadAll(conn.get(), buf, 5));
    ASSERT_TRUE(WriteAll(conn.get(), "world", 5));
    EXPECT_EQ(c.Wait(), 0);
  }
}

TEST(DatapathTest, OtherSocketOptionsPassThroughUntouched) {
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port));
  NetnsScope ns;
  NetnsScope::Enter in(ns);
  auto listener = Listen(absl::StrCat("127.0.0.1:", port));
  int rcvbuf = 0;
  socklen_t len = sizeof(rcvbuf);
  ASSERT_EQ(::getsockopt(listener.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len),
            0);
  EXPECT_GT(rcvbuf, 0);
  // Not an accepted mesh socket: the kernel's own answer (no conntrack).
  sockaddr_in sin{};
  len = sizeof(sin);
  EXPECT_NE(
      ::getsockopt(listener.get(), SOL_IP, NM_SO_ORIGINAL_DST, &sin, &len), 0);
}

TEST(DatapathTest, SocketsCarryingTheAgentMarkAreNeverRedirected) {
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port));
  std::string wl = dp.AddWorkload(1, 0);
  AddService(dp, "127.10.0.4:80", 4, NM_ACTION_PROXY);
  NetnsScope ns;
  net::UniqueFd proxy, direct;
  {
    NetnsScope::Enter in(ns);
    proxy = Listen(absl::StrCat("127.0.0.1:", port));
    direct = Listen("127.10.0.4:80");  // the VIP itself, in this netns
  }
  // Even from inside the workload cgroup, a marked socket keeps its
  // destination: the second guard against redirect loops.
  ChildProcess marked(wl, ns.fd(), [] {
    net::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    uint32_t mark = NM_DEFAULT_AGENT_MARK;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
      return 10;
    sockaddr_in vip{};
    vip.sin_family = AF_INET;
    vip.sin_port = htons(80);
    inet_pton(AF_INET, "127.10.0.4", &vip.sin_addr);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&vip),
                     sizeof(vip)) == 0
               ? 0
               : 11;
  });
  EXPECT_EQ(marked.Wait(), 0);
  EXPECT_TRUE(AcceptWithin(direct.get(), 2000).valid());
  EXPECT_FALSE(AcceptWithin(proxy.get(), 100).valid());
  auto stats = dp.maps().ReadStats();
  EXPECT_EQ((*stats)[NM_STAT_CONNECT_SKIPPED_MARK], 1u);
  EXPECT_EQ((*stats)[NM_STAT_PROXY_REWRITES], 0u);
}

TEST(DatapathTest, PolicyRefusesInConnectAndCounts) {
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port));
  std::string wl = dp.AddWorkload(5, NM_WORKLOAD_EGRESS_DROP_ALL);
  AddService(dp, "127.10.0.3:80", 9, NM_ACTION_PROXY);
  NetnsScope ns;
  net::UniqueFd listener;
  {
    NetnsScope::Enter in(ns);
    listener = Listen(absl::StrCat("127.0.0.1:", port));
  }
  // Not among the workload's backends: EPERM from connect() itself.
  ChildProcess denied(wl, ns.fd(), [] {
    auto fd = Connect("127.10.0.3:80");
    return !fd.valid() && errno == EPERM ? 0 : 1;
  });
  EXPECT_EQ(denied.Wait(), 0);
  // DROP_ALL confines the workload to the mesh: no other destinations.
  ChildProcess outside(wl, ns.fd(), [] {
    auto fd = Connect("198.18.9.9:80");
    return !fd.valid() && errno == EPERM ? 0 : 1;
  });
  EXPECT_EQ(outside.Wait(), 0);
  auto counters = dp.maps().ReadCounters();
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ((*counters)[Pair(5, 9)].refusals, 1u);
  EXPECT_EQ((*counters)[Pair(5, 0)].refusals, 1u);
  EXPECT_EQ((*dp.maps().ReadStats())[NM_STAT_POLICY_REFUSALS], 2u);

  // Listed as a backend: allowed.
  ASSERT_TRUE(dp.maps().SetPolicy(5, 9, NM_POLICY_ALLOW).ok());
  ChildProcess allowed(wl, ns.fd(),
                       [] { return DialAndTalk("127.10.0.3:80"); });
  std::string orig;
  ServeOne(listener.get(), &orig);
  EXPECT_EQ(allowed.Wait(), 0);
  EXPECT_EQ(orig, "127.10.0.3:80");
}

TEST(DatapathTest, NamespacesSharingLoopbackPortsDoNotCrossTalk) {
  const uint16_t port = PickPort();
  const uint16_t client_port = PickPort();
  DatapathScope dp(Config(port));
  std::string wl = dp.AddWorkload(1, 0);
  AddService(dp, "127.10.1.1:80", 11, NM_ACTION_PROXY);
  AddService(dp, "127.10.1.2:80", 12, NM_ACTION_PROXY);
  NetnsScope a, b;
  net::UniqueFd la, lb;
  {
    NetnsScope::Enter in(a);
    la = Listen(absl::StrCat("127.0.0.1:", port));
  }
  {
    NetnsScope::Enter in(b);
    lb = Listen(absl::StrCat("127.0.0.1:", port));
  }
  // Same client address and port in both namespaces, connected at once.
  auto dial_and_hold = [client_port](std::string vip) {
    return [client_port, vip] {
      auto fd = Connect(vip, absl::StrCat("127.0.0.1:", client_port));
      if (!fd.valid()) return 10;
      char c;
      return ::recv(fd.get(), &c, 1, 0) == 1 ? 0 : 11;
    };
  };
  ChildProcess ca(wl, a.fd(), dial_and_hold("127.10.1.1:80"));
  ChildProcess cb(wl, b.fd(), dial_and_hold("127.10.1.2:80"));
  auto conn_a = AcceptWithin(la.get());
  auto conn_b = AcceptWithin(lb.get());
  ASSERT_TRUE(conn_a.valid() && conn_b.valid());
  auto entries = dp.maps().CountEntries("nm_orig_by_peer");
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(*entries, 2u);
  EXPECT_EQ(OriginalDst4(conn_a.get()), "127.10.1.1:80");
  EXPECT_EQ(OriginalDst4(conn_b.get()), "127.10.1.2:80");
  WriteAll(conn_a.get(), "x", 1);
  WriteAll(conn_b.get(), "x", 1);
  EXPECT_EQ(ca.Wait(), 0);
  EXPECT_EQ(cb.Wait(), 0);
}

TEST(DatapathTest, DirectSpreadsConnectsOverLocalEndpoints) {
  constexpr int kEndpoints = 4;
  constexpr int kConnects = 1000;
  DatapathScope dp(Config(PickPort()));
  std::string wl = dp.AddWorkload(1, 0);
  NetnsScope ns;
  std::vector<net::UniqueFd> listeners;
  std::vector<std::string> backends;
  {
    NetnsScope::Enter in(ns);
    uint16_t base = PickPort();
    for (int i = 0; i < kEndpoints; ++i) {
      backends.push_back(absl::StrCat("127.0.0.", i + 2, ":", base));
      listeners.push_back(Listen(backends.back(), kConnects));
    }
  }
  AddService(dp, "127.10.2.1:5432", 21, NM_ACTION_DIRECT, backends);
  ChildProcess client(wl, ns.fd(), [] {
    for (int i = 0; i < kConnects; ++i)
      if (!Connect("127.10.2.1:5432").valid()) return 10;
    return 0;
  });
  std::vector<int> accepted(kEndpoints, 0);
  int total = 0;
  std::vector<pollfd> polls;
  for (auto& l : listeners) polls.push_back({l.get(), POLLIN, 0});
  while (total<kConnects&& ::poll(polls.data(), polls.size(), 5000)> 0) {
    for (int i = 0; i < kEndpoints; ++i) {
      if (!(polls[i].revents & POLLIN)) continue;
      net::UniqueFd c(::accept4(polls[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
      if (c.valid()) ++accepted[i], ++total;
    }
  }
  EXPECT_EQ(client.Wait(), 0);
  EXPECT_EQ(total, kConnects);
  // Uniform expectation 250 each; +-30% is over 5 standard deviations.
  for (int i = 0; i < kEndpoints; ++i) {
    EXPECT_GE(accepted[i], 175) << "endpoint " << i;
    EXPECT_LE(accepted[i], 325) << "endpoint " << i;
  }
  EXPECT_EQ((*dp.maps().ReadStats())[NM_STAT_DIRECT_REWRITES],
            static_cast<uint64_t>(kConnects));
}

// 16 MiB of random bytes through a proxied local leg and back.
void EchoThroughSplice(bool sockmap, uint64_t* redirects_out,
                       uint64_t* sockhash_adds_out, uint64_t* pair_bytes) {
  constexpr size_t kBytes = 16 << 20;
  const uint16_t port = PickPort();
  DatapathScope dp(Config(port, sockmap));
  std::string wl = dp.AddWorkload(2, 0);
  AddService(dp, "127.10.3.1:9000", 31, NM_ACTION_PROXY);
  NetnsScope ns;
  net::UniqueFd listener;
  {
    NetnsScope::Enter in(ns);
    listener = Listen(absl::StrCat("127.0.0.1:", port));
  }
  ChildProcess client(wl, ns.fd(), [] {
    std::vector<unsigned char> out(kBytes), in(kBytes);
    std::mt19937_64 rng(42);
    for (auto& b : out) b = static_cast<unsigned char>(rng());
    auto fd = Connect("127.10.3.1:9000");
    if (!fd.valid()) return 10;
    // Write and read concurrently so neither side's buffers deadlock.
    std::thread writer([&] { WriteAll(fd.get(), out.data(), out.size()); });
    bool ok = ReadAll(fd.get(), in.data(), in.size());
    writer.join();
    if (!ok) return 11;
    return in == out ? 0 : 12;
  });
  auto conn = AcceptWithin(listener.get());
  ASSERT_TRUE(conn.valid());
  std::vector<char> buf(1 << 16);
  size_t echoed = 0;
  while (echoed < kBytes) {
    ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
    ASSERT_GT(n, 0) << "after " << echoed << " bytes";
    ASSERT_TRUE(WriteAll(conn.get(), buf.data(), n));
    echoed += n;
  }
  EXPECT_EQ(client.Wait(60000), 0) << "bytes differ or the client failed";
  auto stats = dp.maps().ReadStats();
  ASSERT_TRUE(stats.ok());
  *redirects_out = (*stats)[NM_STAT_MSG_REDIRECTS];
  *sockhash_adds_out = (*stats)[NM_STAT_SOCKHASH_ADDS];
  *pair_bytes = (*dp.maps().ReadCounters())[Pair(2, 31)].bytes;
}

TEST(DatapathTest, SplicedLocalLegCarriesBytesIntact) {
  uint64_t redirects = 0, adds = 0, bytes = 0;
  EchoThroughSplice(true, &redirects, &adds, &bytes);
  EXPECT_EQ(adds, 2u);  // client socket and the proxy's accepted socket
  EXPECT_GT(redirects, 0u);
  EXPECT_GE(bytes, uint64_t{16} << 20);
}

TEST(DatapathTest, SplicingOffCarriesBytesWithNoRedirects) {
  uint64_t redirects = 1, adds = 1, bytes = 1;
  EchoThroughSplice(false, &redirects, &adds, &bytes);
  EXPECT_EQ(adds, 0u);
  EXPECT_EQ(redirects, 0u);
  EXPECT_EQ(bytes, 0u);
}

TEST(DatapathTest, DnsGoesToAgentAndAnswerComesFromResolverAsked) {
  const uint16_t dns_port = PickPort();
  DatapathScope dp(Config(PickPort(), false, dns_port));
  std::string wl = dp.AddWorkload(1, 0);
  NetnsScope ns;
  net::UniqueFd server;
  {
    NetnsScope::Enter in(ns);
    server.Reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(dns_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(
        ::bind(server.get(), reinterpret_cast<sockaddr*>(&sin), sizeof(sin)),
        0);
  }
  // A query for example.org A; the test server answers with the QR bit set.
  static const unsigned char kQuery[] = {
      0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 7,    'e',  'x',  'a',  'm',  'p',  'l',  'e',
      3,    'o',  'r',  'g',  0,    0x00, 0x01, 0x00, 0x01};
  std::thread resolver([&] {
    for (int i = 0; i < 2; ++i) {
      pollfd p{server.get(), POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return;
      unsigned char buf[512];
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(server.get(), buf, sizeof(buf), 0,
                             reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 3) return;
      buf[2] |= 0x80;
      ::sendto(server.get(), buf, n, 0, reinterpret_cast<sockaddr*>(&from),
               len);
    }
  });
  ChildProcess client(wl, ns.fd(), [] {
    sockaddr_in resolver{};
    resolver.sin_family = AF_INET;
    resolver.sin_port = htons(53);
    inet_pton(AF_INET, "198.18.53.53", &resolver.sin_addr);
    auto* to = reinterpret_cast<sockaddr*>(&resolver);
    // Unconnected socket: sendmsg4 redirects, recvmsg4 restores.
    net::UniqueFd u(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (::sendto(u.get(), kQuery, sizeof(kQuery), 0, to, sizeof(resolver)) !=
        sizeof(kQuery))
      return 10;
    unsigned char buf[512];
    sockaddr_storage from{};
    socklen_t len = sizeof(from);
    pollfd p{u.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return 11;
    ssize_t n = ::recvfrom(u.get(), buf, sizeof(buf), 0,
                           reinterpret_cast<sockaddr*>(&from), &len);
    if (n != sizeof(kQuery) || !(buf[2] & 0x80)) return 12;
    if (AddressOf(from) != "198.18.53.53:53") return 13;
    // Connected socket (as glibc does): connect4 redirects, getpeername4
    // and recvmsg4 restore.
    net::UniqueFd c(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (::connect(c.get(), to, sizeof(resolver)) != 0) return 14;
    sockaddr_storage peer{};
    len = sizeof(peer);
    ::getpeername(c.get(), reinterpret_cast<sockaddr*>(&peer), &len);
    if (AddressOf(peer) != "198.18.53.53:53") return 15;
    if (::send(c.get(), kQuery, sizeof(kQuery), 0) != sizeof(kQuery)) return 16;
    p = {c.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return 17;
    n = ::recv(c.get(), buf, sizeof(buf), 0);
    return n == sizeof(kQuery) && (buf[2] & 0x80) ? 0 : 18;
  });
  EXPECT_EQ(client.Wait(), 0);
  resolver.join();
  auto stats = dp.maps().ReadStats();
  EXPECT_EQ((*stats)[NM_STAT_DNS_REDIRECTS], 2u);
  EXPECT_GE((*stats)[NM_STAT_DNS_RESTORES], 2u);
}

}  // namespace
}  // namespace nodemesh::testing
