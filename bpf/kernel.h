/* What every BPF file here includes first: the kernel's types and the
 * libbpf helper declarations, then the ABI shared with the agent. */
#ifndef NODEMESH_BPF_KERNEL_H_
#define NODEMESH_BPF_KERNEL_H_

/* Programs here touch only UAPI context structs (bpf_sock_addr, bpf_sock_ops,
 * sk_msg_md, bpf_sockopt, bpf_sock), whose field offsets the verifier itself
 * rewrites; no kernel-internal struct is read. CO-RE relocations on context
 * accesses make clang 14 emit `reg = offset; reg += ctx` loads that the
 * verifier rejects, so vmlinux.h is included without preserve_access_index. */
#define BPF_NO_PRESERVE_ACCESS_INDEX
/* vmlinux.h first: it defines the types the other headers use. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "nodemesh/abi.h"
// clang-format on

#endif /* NODEMESH_BPF_KERNEL_H_ */
