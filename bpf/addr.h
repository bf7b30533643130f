/* Address helpers and constants shared by the hook families. Pure
 * functions of their arguments (no maps), so a test object can include this
 * header and drive them with BPF_PROG_TEST_RUN. Addresses are 16 bytes,
 * network order, IPv4 as ::ffff:a.b.c.d. */
#ifndef NODEMESH_BPF_ADDR_H_
#define NODEMESH_BPF_ADDR_H_

#include "kernel.h"

/* Not in vmlinux.h (they are macros in the uapi headers). */
#define AF_INET 2
#define AF_INET6 10
#define SOL_IP 0
#define SOL_IPV6 41
#define BPF_TCP_CLOSE_STATE 7 /* TCP_CLOSE */
#define DNS_PORT 53

/* a.b.c.d (network order) -> ::ffff:a.b.c.d */
static __always_inline void v4_to_mapped(__u32 ip4, __u8 out[16]) {
  __u32 *w = (__u32 *)out;
  w[0] = 0;
  w[1] = 0;
  w[2] = bpf_htonl(0x0000ffff);
  w[3] = ip4;
}

static __always_inline void copy_addr6(const __u32 in[4], __u8 out[16]) {
  __u32 *w = (__u32 *)out;
  w[0] = in[0];
  w[1] = in[1];
  w[2] = in[2];
  w[3] = in[3];
}

/* The address of a socket context by family, as 16 bytes. */
#define NM_PICK_ADDR(family, ip4_field, ip6_field, out) \
  do {                                                  \
    if ((family) == AF_INET) {                          \
      v4_to_mapped((ip4_field), (out));                 \
    } else {                                            \
      __u32 *w_ = (__u32 *)(out);                       \
      w_[0] = (ip6_field)[0];                           \
      w_[1] = (ip6_field)[1];                           \
      w_[2] = (ip6_field)[2];                           \
      w_[3] = (ip6_field)[3];                           \
    }                                                   \
  } while (0)

static __always_inline int addr_is_mapped_v4(const __u8 addr[16]) {
  const __u32 *w = (const __u32 *)addr;
  return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline __u32 mapped_v4(const __u8 addr[16]) {
  return ((const __u32 *)addr)[3];
}

/* 127.0.0.0/8 (also v4-mapped) or ::1. */
static __always_inline int addr_is_loopback(const __u8 addr[16]) {
  const __u32 *w = (const __u32 *)addr;
  if (addr_is_mapped_v4(addr)) return (bpf_ntohl(w[3]) >> 24) == 127;
  return w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == bpf_htonl(1);
}

static __always_inline void copy_addr(__u8 dst[16], const __u8 src[16]) {
  __u32 *d = (__u32 *)dst;
  const __u32 *s = (const __u32 *)src;
  d[0] = s[0];
  d[1] = s[1];
  d[2] = s[2];
  d[3] = s[3];
}

#endif /* NODEMESH_BPF_ADDR_H_ */
