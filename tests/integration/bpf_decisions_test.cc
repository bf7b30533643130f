// The datapath's decision helpers, run by the kernel through
// BPF_PROG_TEST_RUN on a syscall program that inlines them.

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstring>
#include <memory>

#include "gtest/gtest.h"
#include "nm_decisions_test.skel.h"
#include "nodemesh/abi.h"
#include "tests/bpf/decisions_test.h"

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

}  // namespace
}  // namespace nodemesh::testing
