/* Egress decisions, kept pure so a test object can drive them. */
#ifndef NODEMESH_BPF_POLICY_H_
#define NODEMESH_BPF_POLICY_H_

#include "lib.h"

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

static __always_inline __u32 lookup_verdict(__u32 workload_id,
                                            __u32 service_id) {
  struct nm_policy_key key = {.workload_id = workload_id,
                              .service_id = service_id};
  struct nm_policy *p = bpf_map_lookup_elem(&nm_policy, &key);
  return p ? p->verdict : 0;
}

#endif /* NODEMESH_BPF_POLICY_H_ */
