/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* The one BPF object of zmesh (one skeleton): every attach point, sharing maps.bpf.h. */
#include "connect.bpf.c"
#include "sockops.bpf.c"
#include "getsockopt.bpf.c"
#include "sk_lookup.bpf.c"

/* GPL-compatible: bpf_sk_assign and the sk_storage helpers are GPL-only. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";
