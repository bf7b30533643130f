/* Inbound decisions, kept pure (no maps) so a test object can drive them
 * with BPF_PROG_TEST_RUN: what a packet arriving at a workload's listening
 * socket is, and whether it may pass. */
#ifndef NODEMESH_BPF_INBOUND_H_
#define NODEMESH_BPF_INBOUND_H_

#include "addr.h"
#include "kernel.h"

/* Not in vmlinux.h (macros in the uapi headers). */
#define NM_ETH_P_IP 0x0800
#define NM_ETH_P_IPV6 0x86DD
#define NM_TCP_SYN 0x02
#define NM_TCP_ACK 0x10

/* Return codes of cgroup_skb programs. */
#define NM_SKB_PASS 1
#define NM_SKB_DROP 0

enum nm_inbound_verdict {
  NM_INBOUND_PASS = 0,      /* not a mode we enforce */
  NM_INBOUND_VIA_AGENT,     /* carries the agent's mark: admitted */
  NM_INBOUND_DIRECT_ADMIT,  /* PERMISSIVE, not from the agent: admitted */
  NM_INBOUND_DIRECT_REFUSE, /* STRICT, not from the agent: dropped */
};

/* A packet for a listener in `mode`, carrying skb->mark `mark`. A zero
 * agent_mark (no agent has configured the datapath) matches nothing, so
 * STRICT fails closed. */
static __always_inline int inbound_verdict(__u32 mode, __u32 mark,
                                           __u32 agent_mark) {
  if (mode != NM_INBOUND_STRICT && mode != NM_INBOUND_PERMISSIVE)
    return NM_INBOUND_PASS;
  if (agent_mark != 0 && mark == agent_mark) return NM_INBOUND_VIA_AGENT;
  return mode == NM_INBOUND_STRICT ? NM_INBOUND_DIRECT_REFUSE
                                   : NM_INBOUND_DIRECT_ADMIT;
}

/* The head of a TCP segment: who sent it and its flags. */
struct nm_tcp_head {
  struct nm_refused_syn id;
  __u8 flags;
};

/* Reads the IP and TCP headers of a cgroup_skb packet (its data starts at
 * the network header; the kernel has reassembled fragments by then).
 * Returns 1 when they were read, 0 otherwise (not TCP, or an IPv6 packet
 * with extension headers before TCP: these are not walked). */
static __always_inline int read_tcp_head(struct __sk_buff *skb,
                                         struct nm_tcp_head *h) {
  __u32 tcp_off;
  if (skb->protocol == bpf_htons(NM_ETH_P_IP)) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip))) return 0;
    if (ip.protocol != IPPROTO_TCP || ip.ihl < 5) return 0;
    v4_to_mapped(ip.saddr, h->id.saddr);
    tcp_off = ip.ihl * 4;
  } else if (skb->protocol == bpf_htons(NM_ETH_P_IPV6)) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6))) return 0;
    if (ip6.nexthdr != IPPROTO_TCP) return 0;
    copy_addr6(ip6.saddr.in6_u.u6_addr32, h->id.saddr);
    tcp_off = sizeof(ip6);
  } else {
    return 0;
  }
  /* source port, destination port, sequence number; flags at byte 13 */
  __u8 tcp[14];
  if (bpf_skb_load_bytes(skb, tcp_off, tcp, sizeof(tcp))) return 0;
  __builtin_memcpy(&h->id.sport, tcp, 2);
  __builtin_memcpy(&h->id.dport, tcp + 2, 2);
  __builtin_memcpy(&h->id.seq, tcp + 4, 4);
  h->flags = tcp[13];
  return 1;
}

/* Is this packet to a listener a connection attempt (to count)? A SYN
 * without ACK; and, not to undercount, anything whose headers could not
 * be read. The handshake's final ACK is not. */
static __always_inline int inbound_is_attempt(int parsed, __u8 flags) {
  if (!parsed) return 1;
  return (flags & NM_TCP_SYN) && !(flags & NM_TCP_ACK);
}

#endif /* NODEMESH_BPF_INBOUND_H_ */
