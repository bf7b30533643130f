/* cgroup/connect4 and cgroup/connect6, attached to --cgroup_root only.
 *
 * connect() to a service address: policy first (refused in connect() itself,
 * EPERM), then PROXY (to the agent's outbound listener on the caller's own
 * loopback, i.e. in the caller's network namespace) or DIRECT (to a local
 * endpoint from the slot table). The original destination and the caller
 * are kept in socket-local storage; sockops publishes them at established.
 * UDP to port 53 goes to the agent's DNS port when the agent serves DNS. */
#ifndef NODEMESH_BPF_CONNECT_H_
#define NODEMESH_BPF_CONNECT_H_

#include "lib.h"
#include "policy.h"

static __always_inline __u32 lookup_verdict(__u32 workload_id,
                                            __u32 service_id) {
  struct nm_policy_key key = {.workload_id = workload_id,
                              .service_id = service_id};
  struct nm_policy *p = bpf_map_lookup_elem(&nm_policy, &key);
  return p ? p->verdict : 0;
}

/* Where a rewrite goes, as 16 address bytes and a network-order port. */
struct nm_target {
  __u8 addr[16];
  __be16 port;
};

static __always_inline void set_loopback(struct nm_target *t, int v4) {
  __u32 *w = (__u32 *)t->addr;
  if (v4) {
    v4_to_mapped(bpf_htonl(0x7f000001), t->addr);
  } else {
    w[0] = 0;
    w[1] = 0;
    w[2] = 0;
    w[3] = bpf_htonl(1);
  }
}

/* Writes the target into the sock_addr context of a connect4/sendmsg4/...
 * hook (hook6 == 0: only user_ip4 may be touched, so the target must be
 * IPv4) or of a *6 hook (user_ip6, v4-mapped where the target is IPv4).
 * hook6 is a constant at every call site: the verifier rejects even a dead
 * store to user_ip6 in a *4 hook. Returns 0 when the target does not fit the
 * socket. */
static __always_inline int write_target(struct bpf_sock_addr *ctx,
                                        const struct nm_target *t,
                                        const int hook6) {
  if (!hook6) {
    if (!addr_is_mapped_v4(t->addr)) return 0;
    ctx->user_ip4 = mapped_v4(t->addr);
  } else {
    const __u32 *w = (const __u32 *)t->addr;
    ctx->user_ip6[0] = w[0];
    ctx->user_ip6[1] = w[1];
    ctx->user_ip6[2] = w[2];
    ctx->user_ip6[3] = w[3];
  }
  ctx->user_port = t->port;
  return 1;
}

static __always_inline void record_orig_dst(struct bpf_sock_addr *ctx,
                                            const __u8 addr[16], __u32 wid,
                                            __u32 service_id, __u32 flags) {
  struct bpf_sock *sk = ctx->sk;
  if (!sk) return;
  struct nm_orig_dst *o =
      bpf_sk_storage_get(&nm_sock_meta, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!o) return;
  copy_addr(o->addr, addr);
  o->port = ctx->user_port;
  o->family = ctx->user_family;
  o->workload_id = wid;
  o->cgroup_id = bpf_get_current_cgroup_id();
  o->service_id = service_id;
  o->flags = flags;
}

/* DNS: the loopback of the caller's netns at the agent's DNS port. */
static __always_inline int redirect_dns(struct bpf_sock_addr *ctx,
                                        const __u8 addr[16],
                                        const struct nm_config *cfg,
                                        const int hook6, int v4) {
  struct nm_target t = {.port = bpf_htons(cfg->dns_port)};
  set_loopback(&t, v4);
  record_orig_dst(ctx, addr, 0, 0, NM_SOCK_DNS);
  if (write_target(ctx, &t, hook6)) count_stat(NM_STAT_DNS_REDIRECTS, 1);
  return NM_SOCK_PROCEED;
}

static __always_inline int is_agent_socket(struct bpf_sock_addr *ctx,
                                           const struct nm_config *cfg) {
  struct bpf_sock *sk = ctx->sk;
  return sk && cfg->agent_mark && sk->mark == cfg->agent_mark;
}

static __always_inline int choose_backend(__u32 service_id, __u16 count,
                                          struct nm_target *t) {
  if (count == 0) return 0;
  struct nm_backend_key key = {.service_id = service_id,
                               .slot = bpf_get_prandom_u32() % count};
  struct nm_backend *b = bpf_map_lookup_elem(&nm_backends, &key);
  if (!b) return 0;
  copy_addr(t->addr, b->addr);
  t->port = b->port;
  return 1;
}

/* addr: the dialled address, 16 bytes; hook6: called from connect6; v4:
 * the target must be IPv4 (connect4, or a v4-mapped destination in
 * connect6). */
static __always_inline int handle_connect(struct bpf_sock_addr *ctx,
                                          const __u8 addr[16], const int hook6,
                                          int v4) {
  struct nm_config *cfg = lookup_config();
  if (!cfg || cfg->outbound_port == 0) return NM_SOCK_PROCEED;
  count_stat(NM_STAT_CONNECT_SEEN, 1);
  if (is_agent_socket(ctx, cfg)) {
    count_stat(NM_STAT_CONNECT_SKIPPED_MARK, 1);
    return NM_SOCK_PROCEED;
  }
  __u8 protocol = ctx->protocol;
  if (protocol == IPPROTO_UDP && cfg->dns_port &&
      ctx->user_port == bpf_htons(DNS_PORT))
    return redirect_dns(ctx, addr, cfg, hook6, v4);

  __u64 cgroup_id = bpf_get_current_cgroup_id();
  struct nm_workload *wl = bpf_map_lookup_elem(&nm_workloads, &cgroup_id);
  __u32 wid = wl ? wl->workload_id : 0;
  __u32 wflags = wl ? wl->flags : 0;

  struct nm_service_key key = {.port = ctx->user_port, .protocol = protocol};
  copy_addr(key.addr, addr);
  struct nm_service *svc = bpf_map_lookup_elem(&nm_services, &key);
  if (!svc) {
    if (egress_allows_other(wflags, addr_is_loopback(addr)))
      return NM_SOCK_PROCEED;
    struct nm_counters *c = lookup_counters(wid, 0);
    if (c) c->refusals++;
    count_stat(NM_STAT_POLICY_REFUSALS, 1);
    return NM_SOCK_REFUSE;
  }

  struct nm_counters *c = lookup_counters(wid, svc->service_id);
  if (c) c->connections++;
  if (!egress_allows_service(wflags, lookup_verdict(wid, svc->service_id))) {
    if (c) c->refusals++;
    count_stat(NM_STAT_POLICY_REFUSALS, 1);
    return NM_SOCK_REFUSE;
  }

  struct nm_target t = {};
  if (svc->action == NM_ACTION_DIRECT) {
    if (!choose_backend(svc->service_id, svc->backend_count, &t) ||
        (v4 && !addr_is_mapped_v4(t.addr)) || !write_target(ctx, &t, hook6)) {
      if (c) c->refusals++;
      count_stat(NM_STAT_DIRECT_NO_BACKEND, 1);
      return NM_SOCK_REFUSE;
    }
    record_orig_dst(ctx, addr, wid, svc->service_id, NM_SOCK_DIRECT);
    if (c) c->rewrites++;
    count_stat(NM_STAT_DIRECT_REWRITES, 1);
    return NM_SOCK_PROCEED;
  }
  /* PROXY: only TCP is proxied; UDP to a service passes untouched. */
  if (protocol != IPPROTO_TCP) return NM_SOCK_PROCEED;
  t.port = bpf_htons(cfg->outbound_port);
  set_loopback(&t, v4);
  record_orig_dst(ctx, addr, wid, svc->service_id, NM_SOCK_PROXIED);
  write_target(ctx, &t, hook6);
  if (c) c->rewrites++;
  count_stat(NM_STAT_PROXY_REWRITES, 1);
  return NM_SOCK_PROCEED;
}

/* The address a *6 hook's caller named, as 16 bytes. */
static __always_inline void load_user_ip6(struct bpf_sock_addr *ctx,
                                          __u8 addr[16]) {
  __u32 ip6[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2],
                  ctx->user_ip6[3]};
  copy_addr6(ip6, addr);
}

SEC("cgroup/connect4")
int nm_connect4(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  v4_to_mapped(ctx->user_ip4, addr);
  return handle_connect(ctx, addr, 0, 1);
}

SEC("cgroup/connect6")
int nm_connect6(struct bpf_sock_addr *ctx) {
  __u8 addr[16];
  load_user_ip6(ctx, addr);
  return handle_connect(ctx, addr, 1, addr_is_mapped_v4(addr));
}

#endif /* NODEMESH_BPF_CONNECT_H_ */
