/* DNS capture for workloads: cgroup/sendmsg4/6 send unconnected UDP port-53
 * datagrams to the agent's DNS port (connected sockets are caught in
 * connect4/6); cgroup/recvmsg4/6 and getpeername4/6 make the answer appear to
 * come from the resolver that was asked. Attached to --cgroup_root only. */
#ifndef NODEMESH_BPF_DNS_H_
#define NODEMESH_BPF_DNS_H_

#include "connect.bpf.h"

static __always_inline int handle_sendmsg(struct bpf_sock_addr *ctx,
                                          const __u8 addr[16], const int hook6,
                                          int v4) {
  if (ctx->user_port != bpf_htons(DNS_PORT)) return NM_SOCK_PROCEED;
  struct nm_config *cfg = lookup_config();
  if (!cfg || !cfg->dns_port || is_agent_socket(ctx, cfg))
    return NM_SOCK_PROCEED;
  return redirect_dns(ctx, addr, cfg, hook6, v4);
}

/* The source of an answer (or the peer name) is the agent's DNS socket on
 * loopback: show the resolver the workload asked instead. */
static __always_inline int restore_resolver(struct bpf_sock_addr *ctx,
                                            const __u8 addr[16],
                                            const int hook6) {
  struct nm_config *cfg = lookup_config();
  if (!cfg || !cfg->dns_port || ctx->user_port != bpf_htons(cfg->dns_port) ||
      !addr_is_loopback(addr))
    return NM_SOCK_PROCEED;
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return NM_SOCK_PROCEED;
  struct nm_orig_dst *o = bpf_sk_storage_get(&nm_sock_meta, sk, 0, 0);
  if (!o || !(o->flags & NM_SOCK_DNS)) return NM_SOCK_PROCEED;
  struct nm_target t = {.port = o->port};
  copy_addr(t.addr, o->addr);
  if (write_target(ctx, &t, hook6)) count_stat(NM_STAT_DNS_RESTORES, 1);
  return NM_SOCK_PROCEED;
}

SEC("cgroup/sendmsg4")
int nm_sendmsg4(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  v4_to_mapped(ctx->user_ip4, addr);
  return handle_sendmsg(ctx, addr, 0, 1);
}

SEC("cgroup/sendmsg6")
int nm_sendmsg6(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  load_user_ip6(ctx, addr);
  return handle_sendmsg(ctx, addr, 1, addr_is_mapped_v4(addr));
}

SEC("cgroup/recvmsg4")
int nm_recvmsg4(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  v4_to_mapped(ctx->user_ip4, addr);
  return restore_resolver(ctx, addr, 0);
}

SEC("cgroup/recvmsg6")
int nm_recvmsg6(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  load_user_ip6(ctx, addr);
  return restore_resolver(ctx, addr, 1);
}

SEC("cgroup/getpeername4")
int nm_getpeername4(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  v4_to_mapped(ctx->user_ip4, addr);
  return restore_resolver(ctx, addr, 0);
}

SEC("cgroup/getpeername6")
int nm_getpeername6(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  load_user_ip6(ctx, addr);
  return restore_resolver(ctx, addr, 1);
}

#endif /* NODEMESH_BPF_DNS_H_ */
