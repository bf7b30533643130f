/* cgroup_skb/ingress, attached to --cgroup_root: inbound enforcement. A
 * packet arriving at a workload's TCP listening socket whose (cgroup, port)
 * nm_inbound lists is judged by its mark: the agent marks every socket it
 * opens (SO_MARK), and a locally generated SYN keeps its sender's mark up
 * to this hook (over lo and local addresses; a crossing into another
 * network namespace clears it). STRICT drops what the agent did not send,
 * so dialling a workload directly cannot bypass the proxy's mTLS and
 * authorization; PERMISSIVE admits it and counts it apart.
 *
 * Only packets for a listener are looked at (SYNs, and the handshake's
 * final ACK): the socket, not the packet, names the port, so no header trick
 * can dodge the lookup; established connections pass at the first test, and
 * sk_msg-redirected bytes never reach this hook. */
#ifndef NODEMESH_BPF_INGRESS_H_
#define NODEMESH_BPF_INGRESS_H_

#include "inbound.h"
#include "lib.h"

static __always_inline struct nm_inbound_ctr *lookup_inbound_ctr(
    const struct nm_inbound *in) {
  struct nm_inbound_ctr_key key = {.workload_id = in->workload_id,
                                   .mode = in->mode};
  struct nm_inbound_ctr *c = bpf_map_lookup_elem(&nm_inbound_ctr, &key);
  if (c) return c;
  struct nm_inbound_ctr zero = {};
  bpf_map_update_elem(&nm_inbound_ctr, &key, &zero, BPF_NOEXIST);
  return bpf_map_lookup_elem(&nm_inbound_ctr, &key);
}

/* Counts one connection attempt; `id` (when the headers were read) keeps a
 * refused client's SYN retransmissions from counting again. */
static __always_inline void count_inbound(const struct nm_inbound *in,
                                          int verdict,
                                          const struct nm_refused_syn *id) {
  if (verdict == NM_INBOUND_DIRECT_REFUSE && id) {
    __u8 one = 1;
    if (bpf_map_update_elem(&nm_refused_syns, id, &one, BPF_NOEXIST) != 0)
      return; /* seen: a retransmission */
  }
  struct nm_inbound_ctr *c = lookup_inbound_ctr(in);
  if (!c) return;
  if (verdict == NM_INBOUND_VIA_AGENT)
    c->via_agent++;
  else if (verdict == NM_INBOUND_DIRECT_ADMIT)
    c->direct_admitted++;
  else if (verdict == NM_INBOUND_DIRECT_REFUSE)
    c->direct_refused++;
}

SEC("cgroup_skb/ingress")
int nm_ingress(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return NM_SKB_PASS;
  sk = bpf_sk_fullsock(sk);
  if (!sk || sk->protocol != IPPROTO_TCP || sk->state != BPF_TCP_LISTEN)
    return NM_SKB_PASS;
  struct nm_inbound_key key = {.cgroup_id = bpf_skb_cgroup_id(skb),
                               .port = (__u16)sk->src_port};
  struct nm_inbound *in = bpf_map_lookup_elem(&nm_inbound, &key);
  if (!in) return NM_SKB_PASS;
  struct nm_config *cfg = lookup_config();
  int verdict = inbound_verdict(in->mode, skb->mark, cfg ? cfg->agent_mark : 0);
  struct nm_tcp_head h = {};
  int parsed = read_tcp_head(skb, &h);
  if (inbound_is_attempt(parsed, h.flags))
    count_inbound(in, verdict, parsed ? &h.id : 0);
  return verdict == NM_INBOUND_DIRECT_REFUSE ? NM_SKB_DROP : NM_SKB_PASS;
}

#endif /* NODEMESH_BPF_INGRESS_H_ */
