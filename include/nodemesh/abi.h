/* The kernel ABI of nodemesh: every struct and constant that crosses the
 * boundary between bpf/ and agent/, defined once and included by both sides.
 *
 * Byte order is stated per field. Addresses are always 16 bytes: IPv4 is held
 * in its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so one map serves connect4,
 * connect6 and v4-mapped connects from AF_INET6 sockets alike.
 *
 * Changing the layout of anything here is an ABI change: bump
 * NM_LAYOUT_VERSION, and a starting agent will refuse to adopt pins of the
 * older layout (they must be removed with `nodemesh-agent --cleanup`).
 */
#ifndef NODEMESH_ABI_H_
#define NODEMESH_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Layout of the pinned maps; stored in nm_layout. 2: the agent-written hash
 * maps and nm_counters became BPF_F_NO_PREALLOC. */
#define NM_LAYOUT_VERSION 2

/* Default SO_MARK on the agent's own sockets. connect/sendmsg programs never
 * rewrite a socket carrying it: a second guard against redirect loops beside
 * the cgroup placement (the agent lives outside --cgroup_root). The ingress
 * program admits a connection into a STRICT listener only when its SYN
 * carries it (nm_config.agent_mark). */
#define NM_DEFAULT_AGENT_MARK 0x4e4d0001

/* getsockopt(SOL_IP, NM_SO_PEER_WORKLOAD) on a socket the proxy accepted
 * returns struct nm_peer_workload: which workload connected, as the kernel saw
 * it. Answered by the cgroup/getsockopt program; the kernel itself has no such
 * option (-ENOPROTOOPT without the program). Chosen outside the range that
 * Linux uses for SOL_IP options. */
#define NM_SO_PEER_WORKLOAD 0x4e4d
/* Linux's SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST (same number, per level). */
#define NM_SO_ORIGINAL_DST 80

/* What connect() to a service address does. */
enum nm_service_action {
  /* Rewrite to the agent's outbound listener in the caller's netns. */
  NM_ACTION_PROXY = 1,
  /* Rewrite straight to an endpoint on this node from nm_backends. */
  NM_ACTION_DIRECT = 2,
};

/* Bits of nm_workload.flags. */
enum nm_workload_flags {
  /* The workload's mesh has egressFilter DROP_ALL: only services that
   * nm_policy allows may be reached; other non-loopback destinations fail. */
  NM_WORKLOAD_EGRESS_DROP_ALL = 1 << 0,
};

/* Verdicts in nm_policy. */
enum nm_policy_verdict {
  NM_POLICY_ALLOW = 1,
  NM_POLICY_DENY = 2,
};

/* Indices of nm_stats, the per-CPU datapath-wide counters. */
enum nm_stat {
  NM_STAT_CONNECT_SEEN = 0,     /* connect() calls the programs looked at */
  NM_STAT_CONNECT_SKIPPED_MARK, /* skipped: socket carries the agent mark */
  NM_STAT_PROXY_REWRITES,       /* rewritten to the outbound listener */
  NM_STAT_DIRECT_REWRITES,      /* rewritten to a local endpoint */
  NM_STAT_POLICY_REFUSALS,      /* refused in connect() by policy */
  NM_STAT_DIRECT_NO_BACKEND,    /* DIRECT service with no backend: refused */
  NM_STAT_DNS_REDIRECTS,        /* DNS datagrams/connects sent to the agent */
  NM_STAT_DNS_RESTORES,         /* answers whose source was restored */
  NM_STAT_ORIG_DST_RECORDED,    /* original destinations published at
                                   established */
  NM_STAT_ORIG_DST_ANSWERS,     /* SO_ORIGINAL_DST answered from the map */
  NM_STAT_ORIG_DST_MISSES,      /* SO_ORIGINAL_DST asked, nothing recorded */
  NM_STAT_SOCKHASH_ADDS,        /* sockets added to nm_sock_pairs */
  NM_STAT_SOCKHASH_ADD_FAILS,   /* bpf_sock_hash_update failed */
  NM_STAT_MSG_REDIRECTS,        /* sk_msg redirected to the peer socket */
  NM_STAT_MSG_REDIRECT_MISSES,  /* sk_msg found no peer: normal TCP path */
  NM_STAT_MSG_BYTES,            /* bytes sk_msg redirected */
  NM_STAT_MAX,
};

/* nm_services key: a service address as the workload dials it. */
struct nm_service_key {
  __u8 addr[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
  __be16 port;   /* network order */
  __u8 protocol; /* IPPROTO_TCP or IPPROTO_UDP */
  __u8 pad;
};

/* nm_services value. */
struct nm_service {
  __u32 service_id; /* agent-assigned, > 0; keys nm_policy/nm_counters */
  __u8 action;      /* enum nm_service_action */
  __u8 pad;
  __u16 backend_count; /* DIRECT: valid slots 0..count-1 in nm_backends */
};

/* nm_backends key: Cilium's socket-LB slot table. */
struct nm_backend_key {
  __u32 service_id;
  __u32 slot; /* 0 .. backend_count-1 */
};

/* nm_backends value: one local endpoint of a DIRECT service. */
struct nm_backend {
  __u8 addr[16]; /* network order; IPv4 as ::ffff:a.b.c.d */
  __be16 port;   /* network order */
  __u16 pad;
};

/* nm_workloads key is the cgroup id (__u64) of the workload's cgroup. */
struct nm_workload {
  __u32 workload_id; /* the source workload (a virtual node), > 0 */
  __u32 flags;       /* enum nm_workload_flags */
};

/* nm_policy key: may this source workload reach this service? */
struct nm_policy_key {
  __u32 workload_id;
  __u32 service_id;
};

struct nm_policy {
  __u32 verdict; /* enum nm_policy_verdict */
};

/* nm_counters key and per-CPU value: per (source workload, service). */
struct nm_counter_key {
  __u32 workload_id; /* 0: a caller outside any registered workload */
  __u32 service_id;  /* 0: not a service (e.g. a DNS redirect) */
};

struct nm_counters {
  __u64 connections; /* connect() calls to the service */
  __u64 rewrites;    /* of which were rewritten (PROXY or DIRECT) */
  __u64 refusals;    /* of which were refused (policy, no backend) */
  __u64 redirects;   /* sk_msg redirects on the spliced sockets */
  __u64 bytes;       /* bytes sk_msg redirected */
};

/* The original destination of a redirected connection, and who made it.
 * Held in socket-local storage on the client socket (nm_sock_meta) and
 * published at established in nm_orig_by_peer for the accepting side. */
struct nm_orig_dst {
  __u8 addr[16];     /* network order; IPv4 as ::ffff:a.b.c.d */
  __be16 port;       /* network order */
  __u16 family;      /* AF_INET or AF_INET6, as the client dialled */
  __u32 workload_id; /* source workload, 0 if unregistered */
  __u64 cgroup_id;   /* the client's cgroup id */
  __u32 service_id;  /* 0 for DNS */
  __u32 flags;       /* NM_SOCK_* */
};

/* Bits of nm_orig_dst.flags. */
enum nm_sock_flags {
  NM_SOCK_PROXIED = 1 << 0, /* rewritten to the outbound listener */
  NM_SOCK_DNS = 1 << 1,     /* a DNS socket redirected to the agent */
  NM_SOCK_DIRECT = 1 << 2,  /* rewritten to a local endpoint */
};

/* nm_orig_by_peer key: how the accepting side names the client socket. The
 * netns cookie matters: pods share 127.0.0.1 but not port spaces. */
struct nm_peer_key {
  __u64 netns_cookie;
  __u8 addr[16]; /* the client's local address, network order, v4-mapped */
  __u16 port;    /* the client's local port, HOST order */
  __u16 pad[3];
};

/* nm_sock_pairs key: one end of a local TCP connection. The peer's key is
 * the same with local and remote swapped. */
struct nm_sock_key {
  __u64 netns_cookie;
  __u8 local_addr[16];  /* network order, v4-mapped */
  __u8 remote_addr[16]; /* network order, v4-mapped */
  __u16 local_port;     /* HOST order */
  __u16 remote_port;    /* HOST order */
  __u32 pad;
};

/* nm_config: settings that may differ between agent runs, rewritten by each
 * agent at start (one entry, key 0). */
struct nm_config {
  __u16 outbound_port; /* host order: the agent's outbound listener */
  __u16 dns_port;      /* host order: the agent's DNS port; 0 = no DNS
                          redirect (the agent serves no DNS) */
  __u8 sockmap;        /* 1: splice local socket pairs with sk_msg */
  __u8 pad[3];
  __u32 agent_mark; /* SO_MARK of the agent's own sockets */
};

/* Inbound modes in nm_inbound: a virtual node listener's tls.mode. A port
 * with no entry (DISABLED, no tls) is left alone. */
enum nm_inbound_mode {
  /* Only the agent may connect: a SYN without the agent's mark is dropped. */
  NM_INBOUND_STRICT = 1,
  /* Anyone may connect; direct connections are counted apart. */
  NM_INBOUND_PERMISSIVE = 2,
};

/* nm_inbound key: a listening socket of a workload. */
struct nm_inbound_key {
  __u64 cgroup_id; /* the listening socket's cgroup (the workload's) */
  __u16 port;      /* HOST order: the socket's local (listener) port */
  __u16 pad[3];
};

/* nm_inbound value. */
struct nm_inbound {
  __u8 mode; /* enum nm_inbound_mode */
  __u8 pad[3];
  __u32 workload_id; /* the workload's virtual node; keys nm_inbound_ctr */
};

/* nm_inbound_ctr key and per-CPU value: connections into a workload's
 * STRICT or PERMISSIVE listeners, by how they came. */
struct nm_inbound_ctr_key {
  __u32 workload_id;
  __u32 mode; /* enum nm_inbound_mode */
};

struct nm_inbound_ctr {
  __u64 via_agent;       /* SYNs that carried the agent's mark: admitted */
  __u64 direct_admitted; /* PERMISSIVE: SYNs without it, admitted */
  __u64 direct_refused;  /* STRICT: connections without it, dropped (a
                            retransmitted SYN is not counted again) */
};

/* nm_refused_syns key: a refused SYN, so that its retransmissions are not
 * counted as new connections. The initial sequence number tells a new
 * connection on the same ports from a retransmission. */
struct nm_refused_syn {
  __u8 saddr[16]; /* network order, v4-mapped */
  __u32 seq;      /* network order: the SYN's sequence number */
  __u16 sport;    /* network order */
  __u16 dport;    /* network order */
};

/* nm_layout: what the pins hold (one entry, key 0). */
struct nm_layout {
  __u32 version; /* NM_LAYOUT_VERSION */
  __u32 pad;
  __u64 build_id; /* hash of the loaded BPF object; equal: adopt as is */
};

/* What NM_SO_PEER_WORKLOAD returns. */
struct nm_peer_workload {
  __u64 cgroup_id;
  __u32 workload_id;
  __u32 service_id;
};

#endif /* NODEMESH_ABI_H_ */
