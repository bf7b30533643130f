/* Map helpers shared by the hook families: counters and config. */
#ifndef NODEMESH_BPF_LIB_H_
#define NODEMESH_BPF_LIB_H_

#include "addr.h"
#include "maps.h"

/* Return codes of cgroup sock_addr and sockopt programs. */
#define NM_SOCK_PROCEED 1
#define NM_SOCK_REFUSE 0

static __always_inline void count_stat(__u32 index, __u64 n) {
  __u64 *v = bpf_map_lookup_elem(&nm_stats, &index);
  if (v) *v += n; /* per-CPU: no atomics needed */
}

static __always_inline struct nm_config *lookup_config(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&nm_config, &zero);
}

/* Per-CPU counters of (workload, service), created on first use. */
static __always_inline struct nm_counters *lookup_counters(__u32 workload_id,
                                                           __u32 service_id) {
  struct nm_counter_key key = {.workload_id = workload_id,
                               .service_id = service_id};
  struct nm_counters *c = bpf_map_lookup_elem(&nm_counters, &key);
  if (c) return c;
  struct nm_counters zero = {};
  bpf_map_update_elem(&nm_counters, &key, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(&nm_counters, &key);
}

#endif /* NODEMESH_BPF_LIB_H_ */
