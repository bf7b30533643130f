// The datapath's decision helpers, run by the kernel through
// BPF_PROG_TEST_RUN on programs that inline them: a syscall program for
// the egress policy, a cgroup_skb program for inbound enforcement.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cstring>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nodemesh/abi.h"
#include "tests/bpf/decisions_test.h"
// The skeleton's globals have the types decisions_test.h defines.
#include "nm_decisions_test.skel.h"

namespace nodemesh::testing {
namespace {

class DecisionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    skel_.reset(nm_decisions_test__open_and_load());
    ASSERT_NE(skel_, nullptr) << "loading the test object failed";
  }

  nm_decision_case Run(uint32_t flags, uint32_t verdict, const char* ip) {
    nm_decision_case c{};
    c.workload_flags = flags;
    c.verdict = verdict;
    in_addr a4;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
      c.addr[10] = c.addr[11] = 0xff;
      std::memcpy(c.addr + 12, &a4, 4);
    } else {
      EXPECT_EQ(inet_pton(AF_INET6, ip, c.addr), 1) << ip;
    }
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &c,
                .ctx_size_in = sizeof(c));
    int fd = bpf_program__fd(skel_->progs.nm_test_decisions);
    EXPECT_EQ(bpf_prog_test_run_opts(fd, &opts), 0) << strerror(errno);
    return c;
  }

  struct Destroy {
    void operator()(nm_decisions_test* s) { nm_decisions_test__destroy(s); }
  };
  std::unique_ptr<nm_decisions_test, Destroy> skel_;
};

TEST_F(DecisionsTest, DropAllAdmitsOnlyExplicitAllows) {
  const uint32_t drop = NM_WORKLOAD_EGRESS_DROP_ALL;
  EXPECT_EQ(Run(drop, 0, "127.1.0.1").allows_service, 0u);
  EXPECT_EQ(Run(drop, NM_POLICY_DENY, "127.1.0.1").allows_service, 0u);
  EXPECT_EQ(Run(drop, NM_POLICY_ALLOW, "127.1.0.1").allows_service, 1u);
}

TEST_F(DecisionsTest, AllowAllRefusesOnlyExplicitDenies) {
  EXPECT_EQ(Run(0, 0, "127.1.0.1").allows_service, 1u);
  EXPECT_EQ(Run(0, NM_POLICY_ALLOW, "127.1.0.1").allows_service, 1u);
  EXPECT_EQ(Run(0, NM_POLICY_DENY, "127.1.0.1").allows_service, 0u);
}

TEST_F(DecisionsTest, DropAllKeepsLoopbackButNotTheWorld) {
  const uint32_t drop = NM_WORKLOAD_EGRESS_DROP_ALL;
  EXPECT_EQ(Run(drop, 0, "127.0.0.1").allows_other, 1u);
  EXPECT_EQ(Run(drop, 0, "127.255.1.2").allows_other, 1u);
  EXPECT_EQ(Run(drop, 0, "::1").allows_other, 1u);
  EXPECT_EQ(Run(drop, 0, "198.18.0.1").allows_other, 0u);
  EXPECT_EQ(Run(drop, 0, "fd00::1").allows_other, 0u);
  EXPECT_EQ(Run(0, 0, "198.18.0.1").allows_other, 1u);
}

TEST_F(DecisionsTest, AddressClassification) {
  auto v4 = Run(0, 0, "10.1.2.3");
  EXPECT_EQ(v4.is_mapped_v4, 1u);
  EXPECT_EQ(v4.is_loopback, 0u);
  auto v6 = Run(0, 0, "fd00::7f00:1");
  EXPECT_EQ(v6.is_mapped_v4, 0u);
  EXPECT_EQ(v6.is_loopback, 0u);
  EXPECT_EQ(Run(0, 0, "::ffff:127.0.0.1").is_loopback, 1u);
  EXPECT_EQ(Run(0, 0, "128.0.0.1").is_loopback, 0u);
}

// What bpf/inbound.h returns (not in a header user space includes).
enum InboundVerdict : uint32_t { kPass = 0, kViaAgent, kAdmit, kRefuse };

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kRst = 0x04;

// An Ethernet frame (test runs of skb programs take one and pull the
// link-layer header for cgroup_skb) with an IPv4 or IPv6 header and a TCP
// header, from `src` port 40000 to port 8443, sequence 0x01020304.
std::string Packet(const char* src, uint8_t flags, uint8_t ipv4_options = 0,
                   uint8_t protocol = 6) {
  std::string p(14, '\0');
  in_addr a4;
  bool v4 = inet_pton(AF_INET, src, &a4) == 1;
  p[12] = v4 ? 0x08 : static_cast<char>(0x86);
  p[13] = v4 ? 0x00 : static_cast<char>(0xdd);
  if (v4) {
    std::string ip(20 + ipv4_options, '\0');
    ip[0] = static_cast<char>(0x40 | (5 + ipv4_options / 4));
    uint16_t len = htons(static_cast<uint16_t>(ip.size() + 20));
    std::memcpy(&ip[2], &len, 2);
    ip[8] = 64;
    ip[9] = static_cast<char>(protocol);
    std::memcpy(&ip[12], &a4, 4);
    in_addr dst;
    inet_pton(AF_INET, "127.0.0.41", &dst);
    std::memcpy(&ip[16], &dst, 4);
    for (size_t i = 20; i < ip.size(); ++i) ip[i] = 1;  // NOP options
    p += ip;
  } else {
    std::string ip(40, '\0');
    ip[0] = 0x60;
    uint16_t len = htons(20);
    std::memcpy(&ip[4], &len, 2);
    ip[6] = static_cast<char>(protocol);
    ip[7] = 64;
    inet_pton(AF_INET6, src, &ip[8]);
    inet_pton(AF_INET6, "::1", &ip[24]);
    p += ip;
  }
  std::string tcp(20, '\0');
  uint16_t sport = htons(40000), dport = htons(8443);
  uint32_t seq = htonl(0x01020304);
  std::memcpy(&tcp[0], &sport, 2);
  std::memcpy(&tcp[2], &dport, 2);
  std::memcpy(&tcp[4], &seq, 4);
  tcp[12] = 5 << 4;
  tcp[13] = static_cast<char>(flags);
  return p + tcp;
}

class InboundDecisionsTest : public DecisionsTest {
 protected:
  // Runs the inbound helpers on `packet` carrying skb->mark `mark`; the
  // program's return code goes to *retval.
  nm_inbound_case Run(const std::string& packet, uint32_t mode, uint32_t mark,
                      uint32_t* retval = nullptr,
                      uint32_t agent_mark = NM_DEFAULT_AGENT_MARK) {
    skel_->bss->inbound_case = nm_inbound_case{};
    skel_->bss->inbound_case.mode = mode;
    skel_->bss->inbound_case.agent_mark = agent_mark;
    __sk_buff ctx{};
    ctx.mark = mark;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet.data(),
                .data_size_in = static_cast<uint32_t>(packet.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx));
    int fd = bpf_program__fd(skel_->progs.nm_test_inbound);
    EXPECT_EQ(bpf_prog_test_run_opts(fd, &opts), 0) << strerror(errno);
    if (retval) *retval = opts.retval;
    return skel_->bss->inbound_case;
  }
};

TEST_F(InboundDecisionsTest, StrictAdmitsOnlyTheAgentsMark) {
  std::string syn = Packet("127.0.0.1", kSyn);
  uint32_t rc = 9;
  EXPECT_EQ(Run(syn, NM_INBOUND_STRICT, NM_DEFAULT_AGENT_MARK, &rc).verdict,
            kViaAgent);
  EXPECT_EQ(rc, 1u);
  EXPECT_EQ(Run(syn, NM_INBOUND_STRICT, 0, &rc).verdict, kRefuse);
  EXPECT_EQ(rc, 0u);  // dropped
  EXPECT_EQ(Run(syn, NM_INBOUND_STRICT, NM_DEFAULT_AGENT_MARK + 1).verdict,
            kRefuse);
}

TEST_F(InboundDecisionsTest, PermissiveAdmitsBothAndTellsThemApart) {
  std::string syn = Packet("198.18.0.7", kSyn);
  uint32_t rc = 9;
  EXPECT_EQ(Run(syn, NM_INBOUND_PERMISSIVE, 0, &rc).verdict, kAdmit);
  EXPECT_EQ(rc, 1u);
  EXPECT_EQ(Run(syn, NM_INBOUND_PERMISSIVE, NM_DEFAULT_AGENT_MARK).verdict,
            kViaAgent);
}

TEST_F(InboundDecisionsTest, UnknownModesPassAndAZeroAgentMarkMatchesNothing) {
  std::string syn = Packet("127.0.0.1", kSyn);
  EXPECT_EQ(Run(syn, 0, 0).verdict, kPass);
  EXPECT_EQ(Run(syn, 7, 0).verdict, kPass);
  // No agent configured the datapath (agent_mark 0): STRICT fails closed,
  // even for a packet whose mark is 0 too.
  EXPECT_EQ(Run(syn, NM_INBOUND_STRICT, 0, nullptr, 0).verdict, kRefuse);
}

TEST_F(InboundDecisionsTest, ReadsIpv4AndIpv6HeadsAndCountsOnlySyns) {
  auto v4 = Run(Packet("198.18.0.7", kSyn), NM_INBOUND_STRICT, 0);
  EXPECT_EQ(v4.parsed, 1u);
  EXPECT_EQ(v4.attempt, 1u);
  EXPECT_EQ(ntohs(v4.sport), 40000);
  EXPECT_EQ(ntohs(v4.dport), 8443);
  EXPECT_EQ(ntohl(v4.seq), 0x01020304u);
  EXPECT_EQ(v4.saddr[10], 0xff);
  EXPECT_EQ(v4.saddr[12], 198);
  EXPECT_EQ(v4.saddr[15], 7);
  // IP options move the TCP header; it is still found.
  auto opts = Run(Packet("198.18.0.7", kSyn, 8), NM_INBOUND_STRICT, 0);
  EXPECT_EQ(opts.parsed, 1u);
  EXPECT_EQ(ntohs(opts.sport), 40000);
  EXPECT_EQ(opts.flags, kSyn);
  auto v6 = Run(Packet("fd00::9", kSyn), NM_INBOUND_STRICT, 0);
  EXPECT_EQ(v6.parsed, 1u);
  EXPECT_EQ(v6.saddr[0], 0xfd);
  EXPECT_EQ(v6.saddr[15], 9);
  EXPECT_EQ(ntohs(v6.dport), 8443);
  // The handshake's last ACK, a SYN-ACK and a RST are no new connection;
  // STRICT still drops them when unmarked.
  uint32_t rc = 9;
  auto ack = Run(Packet("127.0.0.1", kAck), NM_INBOUND_STRICT, 0, &rc);
  EXPECT_EQ(ack.attempt, 0u);
  EXPECT_EQ(rc, 0u);
  EXPECT_EQ(Run(Packet("127.0.0.1", kSyn | kAck), NM_INBOUND_STRICT, 0).attempt,
            0u);
  EXPECT_EQ(Run(Packet("127.0.0.1", kRst), NM_INBOUND_STRICT, 0).attempt, 0u);
  // Unreadable heads (an IPv6 extension header before TCP) count as
  // attempts, and the verdict does not depend on them.
  auto ext = Run(Packet("fd00::9", kSyn, 0, /*hop-by-hop*/ 0),
                 NM_INBOUND_STRICT, 0, &rc);
  EXPECT_EQ(ext.parsed, 0u);
  EXPECT_EQ(ext.attempt, 1u);
  EXPECT_EQ(rc, 0u);
}

}  // namespace
}  // namespace nodemesh::testing
