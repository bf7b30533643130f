/* Egress decisions, kept pure (no maps) so a test object can drive them
 * with BPF_PROG_TEST_RUN. */
#ifndef NODEMESH_BPF_POLICY_H_
#define NODEMESH_BPF_POLICY_H_

#include "kernel.h"

/* May a caller with these workload flags reach a service whose policy entry
 * holds verdict (0: none)? DROP_ALL admits only explicit ALLOWs; ALLOW_ALL
 * refuses only explicit DENYs. A caller outside any registered workload has
 * flags 0 and is governed by DENY entries of workload id 0 only. */
static __always_inline int egress_allows_service(__u32 flags, __u32 verdict) {
  if (flags & NM_WORKLOAD_EGRESS_DROP_ALL) return verdict == NM_POLICY_ALLOW;
  return verdict != NM_POLICY_DENY;
}

/* May the caller reach an address that is no service? DROP_ALL confines a
 * workload to the mesh; its own host's loopback stays reachable (local
 * health endpoints, the agent). */
static __always_inline int egress_allows_other(__u32 flags, int loopback) {
  return !(flags & NM_WORKLOAD_EGRESS_DROP_ALL) || loopback;
}

#endif /* NODEMESH_BPF_POLICY_H_ */
