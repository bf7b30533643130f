/* Drives the datapath's pure decision helpers (bpf/addr.h, bpf/policy.h)
 * with BPF_PROG_TEST_RUN: the same code the hooks inline, run by the kernel
 * on inputs the test chooses. A syscall program needs no socket or cgroup. */
// clang-format off
#include "kernel.h"
#include "addr.h"
#include "policy.h"
#include "decisions_test.h"
// clang-format on

SEC("syscall")
int nm_test_decisions(struct nm_decision_case *c) {
  __u8 addr[16];
  __builtin_memcpy(addr, c->addr, sizeof(addr));
  int loopback = addr_is_loopback(addr);
  c->is_loopback = loopback;
  c->is_mapped_v4 = addr_is_mapped_v4(addr);
  c->allows_service = egress_allows_service(c->workload_flags, c->verdict);
  c->allows_other = egress_allows_other(c->workload_flags, loopback);
  return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
