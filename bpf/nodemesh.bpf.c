/* The nodemesh datapath: one BPF object (one skeleton, one set of pinned
 * maps), its hook families one file each. */
#include "connect.bpf.h"
#include "dns.bpf.h"
#include "ingress.bpf.h"
#include "sk_msg.bpf.h"
#include "sockops.bpf.h"
#include "sockopt.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
