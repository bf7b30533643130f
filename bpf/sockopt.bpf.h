/* cgroup/getsockopt, attached to --agent_cgroup only. Answers
 * SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6) for sockets
 * the proxy accepted, from what sockops published, and NM_SO_PEER_WORKLOAD
 * with the connecting workload. Every other option passes untouched: the
 * first comparison sends it on its way. */
#ifndef NODEMESH_BPF_SOCKOPT_H_
#define NODEMESH_BPF_SOCKOPT_H_

#include "lib.h"

static __always_inline struct nm_orig_dst *lookup_client(
    struct bpf_sockopt *ctx) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return 0;
  struct nm_peer_key key = {.netns_cookie = bpf_get_netns_cookie(ctx),
                            .port = bpf_ntohs(sk->dst_port)};
  NM_PICK_ADDR(sk->family, sk->dst_ip4, sk->dst_ip6, key.addr);
  struct nm_orig_dst *o = bpf_map_lookup_elem(&nm_orig_by_peer, &key);
  count_stat(o ? NM_STAT_ORIG_DST_ANSWERS : NM_STAT_ORIG_DST_MISSES, 1);
  return o;
}

static __always_inline int answer_orig_dst4(struct bpf_sockopt *ctx) {
  struct sockaddr_in *sin = ctx->optval;
  if ((void *)(sin + 1) > ctx->optval_end) return 1;
  struct nm_orig_dst *o = lookup_client(ctx);
  if (!o || !addr_is_mapped_v4(o->addr)) return 1;
  sin->sin_family = AF_INET;
  sin->sin_port = o->port;
  sin->sin_addr.s_addr = mapped_v4(o->addr);
  ctx->optlen = sizeof(*sin);
  ctx->retval = 0;
  return 1;
}

static __always_inline int answer_orig_dst6(struct bpf_sockopt *ctx) {
  struct sockaddr_in6 *sin6 = ctx->optval;
  if ((void *)(sin6 + 1) > ctx->optval_end) return 1;
  struct nm_orig_dst *o = lookup_client(ctx);
  if (!o) return 1;
  __builtin_memset(sin6, 0, sizeof(*sin6));
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = o->port;
  copy_addr(sin6->sin6_addr.in6_u.u6_addr8, o->addr);
  ctx->optlen = sizeof(*sin6);
  ctx->retval = 0;
  return 1;
}

static __always_inline int answer_peer_workload(struct bpf_sockopt *ctx) {
  struct nm_peer_workload *pw = ctx->optval;
  if ((void *)(pw + 1) > ctx->optval_end) return 1;
  struct nm_orig_dst *o = lookup_client(ctx);
  if (!o) return 1;
  pw->cgroup_id = o->cgroup_id;
  pw->workload_id = o->workload_id;
  pw->service_id = o->service_id;
  ctx->optlen = sizeof(*pw);
  ctx->retval = 0;
  return 1;
}

SEC("cgroup/getsockopt")
int nm_getsockopt(struct bpf_sockopt *ctx) {
  if (ctx->level == SOL_IP) {
    if (ctx->optname == NM_SO_ORIGINAL_DST) return answer_orig_dst4(ctx);
    if (ctx->optname == NM_SO_PEER_WORKLOAD) return answer_peer_workload(ctx);
  } else if (ctx->level == SOL_IPV6 && ctx->optname == NM_SO_ORIGINAL_DST) {
    return answer_orig_dst6(ctx);
  }
  return 1;
}

#endif /* NODEMESH_BPF_SOCKOPT_H_ */
