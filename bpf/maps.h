/* Every map of the nodemesh datapath, each documented where it is defined:
 * purpose, key, value, who writes it, who reads it. All are pinned by name
 * under --bpf_pin_dir and carry BTF, so `bpftool map dump pinned` prints
 * named fields. Sizes are upper bounds. The hash maps the agent writes (and
 * nm_counters) are BPF_F_NO_PREALLOC, so they cost only what they hold: a
 * preallocated nm_backends alone would pin 24 MB of kernel memory on every
 * node (bench/e2e measured 71 MB for all maps preallocated). Lookups cost
 * the same; only updates allocate, and those are the agent's (rare) or a
 * counter's first use per (workload, service). nm_orig_by_peer stays an
 * LRU, which the kernel always preallocates. */
#ifndef NODEMESH_BPF_MAPS_H_
#define NODEMESH_BPF_MAPS_H_

#include "kernel.h"

/* Service addresses (VIPs) that workloads dial.
 * key nm_service_key (VIP, port, protocol) -> nm_service.
 * Written by the agent (compiled from the mesh model); read by connect4/6. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_service_key);
  __type(value, struct nm_service);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_services SEC(".maps");

/* Local endpoints of DIRECT services, as a slot table (Cilium's socket LB):
 * connect picks slot = random % backend_count in O(1).
 * key nm_backend_key (service id, slot) -> nm_backend.
 * Written by the agent; read by connect4/6. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_backend_key);
  __type(value, struct nm_backend);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_backends SEC(".maps");

/* Registered workloads, by the cgroup their processes run in.
 * key cgroup id (u64) -> nm_workload (source workload id, egress flags).
 * Written by the agent on registration; read by connect4/6. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct nm_workload);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_workloads SEC(".maps");

/* Egress policy: may a source workload reach a service? Under DROP_ALL only
 * ALLOW entries pass; under ALLOW_ALL only DENY entries refuse.
 * key nm_policy_key (workload id, service id) -> nm_policy.
 * Written by the agent (backends of each virtual node); read by connect4/6. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 262144);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_policy_key);
  __type(value, struct nm_policy);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_policy SEC(".maps");

/* Per-CPU counters per (source workload, service).
 * key nm_counter_key -> nm_counters (one per CPU; the agent sums them).
 * Written by connect4/6 and sk_msg; read by the agent for /metrics. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 65536);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_counter_key);
  __type(value, struct nm_counters);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_counters SEC(".maps");

/* Per-CPU datapath-wide counters, indexed by enum nm_stat.
 * Written by every program; read by the agent for /metrics. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, NM_STAT_MAX);
  __type(key, __u32);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_stats SEC(".maps");

/* Socket-local state of a redirected socket: its original destination and
 * its source workload. Lives and dies with the socket (no cleanup, no
 * collisions across network namespaces).
 * Written by connect4/6 and sendmsg4/6 (client sockets) and sockops (the
 * agent's accepted sockets); read by sockops, recvmsg, getpeername, sk_msg. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct nm_orig_dst);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sock_meta SEC(".maps");

/* Original destinations of proxied connections, for the accepting side.
 * key nm_peer_key (netns cookie, client address, client port) -> nm_orig_dst.
 * Written by sockops at the client's ACTIVE_ESTABLISHED (before the proxy's
 * accept() returns) and deleted at its TCP_CLOSE; read by getsockopt. LRU so
 * an entry whose close was missed cannot fill the map. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct nm_peer_key);
  __type(value, struct nm_orig_dst);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_orig_by_peer SEC(".maps");

/* Both ends of local mesh TCP connections, for sk_msg splicing.
 * key nm_sock_key (netns cookie, 4-tuple) -> socket.
 * Written by sockops at established (sockets leave on close by themselves);
 * read by sk_msg, which redirects to the peer's key. */
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, 65536);
  __type(key, struct nm_sock_key);
  __type(value, __u64);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_sock_pairs SEC(".maps");

/* Inbound enforcement: the listening ports of workloads whose virtual node
 * listener has tls mode STRICT or PERMISSIVE.
 * key nm_inbound_key (the socket's cgroup id, its port) -> nm_inbound.
 * Written by the agent (compiled from the model and the local workloads);
 * read by the cgroup_skb ingress program. A port with no entry passes. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_inbound_key);
  __type(value, struct nm_inbound);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_inbound SEC(".maps");

/* Per-CPU counters of connections into enforced listeners.
 * key nm_inbound_ctr_key (workload id, mode) -> nm_inbound_ctr.
 * Written by the ingress program; read by the agent for /metrics. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, 16384);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct nm_inbound_ctr_key);
  __type(value, struct nm_inbound_ctr);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_inbound_ctr SEC(".maps");

/* SYNs the ingress program refused lately, so a client's retransmissions
 * count as one refused connection.
 * key nm_refused_syn (source, ports, sequence number) -> 1.
 * Written and read by the ingress program only; LRU: old entries simply
 * fall out. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct nm_refused_syn);
  __type(value, __u8);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_refused_syns SEC(".maps");

/* Settings that may differ between agent runs (ports, splicing, mark).
 * key 0 -> nm_config. Written by each starting agent; read by every program.
 * Zeroed (no agent has configured it): programs do nothing. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct nm_config);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_config SEC(".maps");

/* What the pins hold: layout version and build id of the loaded object.
 * key 0 -> nm_layout. Written and read by the agent only. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct nm_layout);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} nm_layout SEC(".maps");

#endif /* NODEMESH_BPF_MAPS_H_ */
