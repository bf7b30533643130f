/* sk_msg on nm_sock_pairs: a lookup and a redirect to the peer socket's
 * ingress queue, and nothing else. Policy never lives here: Cilium's sockops
 * accelerator rotted because it ran a second copy of the policy datapath. */
#ifndef NODEMESH_BPF_SK_MSG_H_
#define NODEMESH_BPF_SK_MSG_H_

#include "lib.h"

static __always_inline void count_splice(struct sk_msg_md *msg, __u32 bytes) {
  count_stat(NM_STAT_MSG_REDIRECTS, 1);
  count_stat(NM_STAT_MSG_BYTES, bytes);
  struct bpf_sock *sk = msg->sk;
  if (!sk) return;
  struct nm_orig_dst *o = bpf_sk_storage_get(&nm_sock_meta, sk, 0, 0);
  if (!o) return;
  struct nm_counters *c = lookup_counters(o->workload_id, o->service_id);
  if (!c) return;
  c->redirects++;
  c->bytes += bytes;
}

SEC("sk_msg")
int nm_sk_msg(struct sk_msg_md *msg) {
  /* The peer's key: this socket's tuple seen from the other end. */
  struct nm_sock_key peer = {.netns_cookie = bpf_get_netns_cookie(msg)};
  __u32 family = msg->family;
  NM_PICK_ADDR(family, msg->remote_ip4, msg->remote_ip6, peer.local_addr);
  NM_PICK_ADDR(family, msg->local_ip4, msg->local_ip6, peer.remote_addr);
  peer.local_port = (__u16)bpf_ntohl(msg->remote_port);
  peer.remote_port = (__u16)msg->local_port;
  __u32 bytes = msg->size;
  if (bpf_msg_redirect_hash(msg, &nm_sock_pairs, &peer, BPF_F_INGRESS) ==
      SK_PASS) {
    count_splice(msg, bytes);
  } else {
    count_stat(NM_STAT_MSG_REDIRECT_MISSES, 1);
  }
  /* SK_PASS either way: without a peer the bytes take the normal TCP path. */
  return SK_PASS;
}

#endif /* NODEMESH_BPF_SK_MSG_H_ */
