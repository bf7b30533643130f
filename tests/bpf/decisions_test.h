/* One case for the decision-logic test object: inputs, and the outputs the
 * program writes back. Shared by tests/bpf/decisions_test.bpf.c and the C++
 * test that runs it with BPF_PROG_TEST_RUN. */
#ifndef NODEMESH_TESTS_BPF_DECISIONS_TEST_H_
#define NODEMESH_TESTS_BPF_DECISIONS_TEST_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct nm_decision_case {
  /* inputs */
  __u32 workload_flags; /* enum nm_workload_flags */
  __u32 verdict;        /* enum nm_policy_verdict, 0: no entry */
  __u8 addr[16];        /* network order, IPv4 as ::ffff:a.b.c.d */
  /* outputs */
  __u32 allows_service;
  __u32 allows_other;
  __u32 is_loopback;
  __u32 is_mapped_v4;
};

/* One inbound case: the packet is the test run's data, its mark the
 * __sk_buff's; the rest goes through the object's global `inbound_case`. */
struct nm_inbound_case {
  /* inputs */
  __u32 mode;       /* enum nm_inbound_mode of the listener's entry */
  __u32 agent_mark; /* nm_config.agent_mark */
  /* outputs */
  __u32 verdict; /* enum nm_inbound_verdict (bpf/inbound.h) */
  __u32 parsed;  /* read_tcp_head() */
  __u32 attempt; /* inbound_is_attempt() */
  __u32 flags;   /* TCP flags read */
  __u8 saddr[16];
  __u16 sport; /* network order */
  __u16 dport; /* network order */
  __u32 seq;   /* network order */
};

#endif /* NODEMESH_TESTS_BPF_DECISIONS_TEST_H_ */
