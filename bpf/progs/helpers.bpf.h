/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* Small helpers shared by the programs: counters, config, v4-mapped addresses. */
#ifndef ZMESH_HELPERS_BPF_H
#define ZMESH_HELPERS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "zmesh/abi.h"
#include "maps.bpf.h"

#define ZM_AF_INET 2
#define ZM_AF_INET6 10
#define ZM_SOCK_STREAM 1
#define ZM_IPPROTO_TCP 6

/* One 4-byte context read. clang merges adjacent 4-byte ctx loads into one 8-byte load
 * (e.g. local_ip6[0..1]) that the verifier rejects for these contexts; volatile prevents it. */
#define ZM_CTX_U32(field) (*(volatile __u32 *)&(field))

/* A 16-byte address from four 4-byte context words, read one by one (see ZM_CTX_U32). */
#define ZM_CTX_IP6(dst, words)                                                 \
	do {                                                                   \
		(dst)[0] = ZM_CTX_U32((words)[0]);                              \
		(dst)[1] = ZM_CTX_U32((words)[1]);                              \
		(dst)[2] = ZM_CTX_U32((words)[2]);                              \
		(dst)[3] = ZM_CTX_U32((words)[3]);                              \
	} while (0)

static __always_inline void zm_count(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&zm_stats, &reason);

	if (n)
		*n += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline struct zm_config *zm_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&zm_config, &zero);
}

/* ::ffff:a.b.c.d from a network-order IPv4 address. */
static __always_inline void zm_v4_mapped(__u8 *ip, __u32 v4)
{
	__u32 *w = (__u32 *)ip;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0xffff);
	w[3] = v4;
}

static __always_inline void zm_copy_v6(__u8 *ip, const __u32 *v6)
{
	__u32 *w = (__u32 *)ip;

	w[0] = v6[0];
	w[1] = v6[1];
	w[2] = v6[2];
	w[3] = v6[3];
}

static __always_inline int zm_is_v4_mapped(const __u32 *w)
{
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

static __always_inline int zm_is_loopback4(__u32 v4)
{
	return (bpf_ntohl(v4) >> 24) == 127;
}

/* ::1 or ::ffff:127.0.0.0/104 */
static __always_inline int zm_is_loopback6(const __u32 *w)
{
	if (w[0] == 0 && w[1] == 0 && w[2] == 0 && w[3] == bpf_htonl(1))
		return 1;
	return zm_is_v4_mapped(w) && zm_is_loopback4(w[3]);
}

static __always_inline int zm_addr_eq(const __u32 *a, const __u32 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

#endif /* ZMESH_HELPERS_BPF_H */
