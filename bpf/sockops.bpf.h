/* sockops, attached to --cgroup_root and --agent_cgroup (both ends of a local
 * leg must be seen). At the client's ACTIVE_ESTABLISHED, which runs before
 * the proxy's accept() can return, it publishes the original destination for
 * the accepting side; at established on either side it adds local mesh
 * sockets to nm_sock_pairs for sk_msg splicing. */
#ifndef NODEMESH_BPF_SOCKOPS_H_
#define NODEMESH_BPF_SOCKOPS_H_

#include "lib.h"

static __always_inline void sockops_local_addr(struct bpf_sock_ops *skops,
                                               __u8 out[16]) {
  NM_PICK_ADDR(skops->family, skops->local_ip4, skops->local_ip6, out);
}

static __always_inline void sockops_remote_addr(struct bpf_sock_ops *skops,
                                                __u8 out[16]) {
  NM_PICK_ADDR(skops->family, skops->remote_ip4, skops->remote_ip6, out);
}

/* remote_port holds the network-order port in its upper 16 bits. */
static __always_inline __u16 sockops_remote_port(struct bpf_sock_ops *skops) {
  return (__u16)bpf_ntohl(skops->remote_port);
}

/* The key under which the accepting side will look this client up. */
static __always_inline void client_peer_key(struct bpf_sock_ops *skops,
                                            struct nm_peer_key *key) {
  key->netns_cookie = bpf_get_netns_cookie(skops);
  sockops_local_addr(skops, key->addr);
  key->port = (__u16)skops->local_port;
}

static __always_inline void publish_orig_dst(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct nm_orig_dst *o = bpf_sk_storage_get(&nm_sock_meta, sk, 0, 0);
  if (!o || !(o->flags & NM_SOCK_PROXIED)) return;
  struct nm_peer_key key = {};
  client_peer_key(skops, &key);
  bpf_map_update_elem(&nm_orig_by_peer, &key, o, BPF_ANY);
  count_stat(NM_STAT_ORIG_DST_RECORDED, 1);
  /* Ask for state callbacks so TCP_CLOSE removes the entry. */
  bpf_sock_ops_cb_flags_set(
      skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The agent's accepted socket inherits its client's metadata, so splice
 * counters attribute both directions to (workload, service). Returns
 * whether the client is a redirected workload socket (whose own end was
 * added to nm_sock_pairs at its ACTIVE_ESTABLISHED, which on loopback runs
 * before this PASSIVE_ESTABLISHED). */
static __always_inline int adopt_client_meta(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return 0;
  struct nm_peer_key key = {.netns_cookie = bpf_get_netns_cookie(skops),
                            .port = sockops_remote_port(skops)};
  sockops_remote_addr(skops, key.addr);
  struct nm_orig_dst *client = bpf_map_lookup_elem(&nm_orig_by_peer, &key);
  if (!client) return 0;
  struct nm_orig_dst *o =
      bpf_sk_storage_get(&nm_sock_meta, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (o) *o = *client;
  return 1;
}

/* `peer_is_workload`: the other end is a redirected workload socket. The
 * agent's own sockets (they carry its SO_MARK: upstream connects, and the
 * children of its marked listeners) are added only then: a leg to a peer
 * that is never added (a gateway client, an endpoint outside the cgroups)
 * cannot be spliced, and sk_msg on it would only cost every send. */
static __always_inline void add_to_sock_pairs(struct bpf_sock_ops *skops,
                                              int peer_is_workload) {
  struct nm_config *cfg = lookup_config();
  if (!cfg || !cfg->sockmap) return;
  struct bpf_sock *sk = skops->sk;
  if (!peer_is_workload && sk && cfg->agent_mark && sk->mark == cfg->agent_mark)
    return;
  struct nm_sock_key key = {.netns_cookie = bpf_get_netns_cookie(skops)};
  sockops_local_addr(skops, key.local_addr);
  sockops_remote_addr(skops, key.remote_addr);
  /* Only legs whose both ends are on this host's loopback can be spliced. */
  if (!addr_is_loopback(key.remote_addr)) return;
  key.local_port = (__u16)skops->local_port;
  key.remote_port = sockops_remote_port(skops);
  if (bpf_sock_hash_update(skops, &nm_sock_pairs, &key, BPF_NOEXIST) == 0)
    count_stat(NM_STAT_SOCKHASH_ADDS, 1);
  else
    count_stat(NM_STAT_SOCKHASH_ADD_FAILS, 1);
}

static __always_inline void forget_orig_dst(struct bpf_sock_ops *skops) {
  struct nm_peer_key key = {};
  client_peer_key(skops, &key);
  bpf_map_delete_elem(&nm_orig_by_peer, &key);
}

SEC("sockops")
int nm_sockops(struct bpf_sock_ops *skops) {
  if (skops->family != AF_INET && skops->family != AF_INET6) return 1;
  switch (skops->op) {
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      publish_orig_dst(skops);
      add_to_sock_pairs(skops, 0);
      break;
    case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
      add_to_sock_pairs(skops, adopt_client_meta(skops));
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (skops->args[1] == BPF_TCP_CLOSE_STATE) forget_orig_dst(skops);
      break;
  }
  return 1;
}

#endif /* NODEMESH_BPF_SOCKOPS_H_ */
