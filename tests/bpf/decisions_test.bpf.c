/* Drives the datapath's pure decision helpers (bpf/addr.h, bpf/policy.h,
 * bpf/inbound.h) with BPF_PROG_TEST_RUN: the same code the hooks inline, run
 * by the kernel on inputs the test chooses. A syscall program needs no
 * socket or cgroup; the inbound helpers read packets, so a cgroup_skb
 * program runs them on a packet the test builds. */
// clang-format off
#include "kernel.h"
#include "addr.h"
#include "inbound.h"
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

struct nm_inbound_case inbound_case;

SEC("cgroup_skb/ingress")
int nm_test_inbound(struct __sk_buff *skb) {
  struct nm_inbound_case *c = &inbound_case;
  struct nm_tcp_head h = {};
  int parsed = read_tcp_head(skb, &h);
  c->parsed = parsed;
  c->attempt = inbound_is_attempt(parsed, h.flags);
  c->flags = h.flags;
  __builtin_memcpy(c->saddr, h.id.saddr, sizeof(c->saddr));
  c->sport = h.id.sport;
  c->dport = h.id.dport;
  c->seq = h.id.seq;
  c->verdict = inbound_verdict(c->mode, skb->mark, c->agent_mark);
  return c->verdict == NM_INBOUND_DIRECT_REFUSE ? NM_SKB_DROP : NM_SKB_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
