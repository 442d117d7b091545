/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* Outbound capture (cgroup/connect4, cgroup/connect6): an enrolled pod's TCP connect is
 * rewritten to ztunnel's in-pod 127.0.0.1:15001 after the original destination is kept in
 * socket storage for sockops to re-key. Returns 1 (proceed) except when the destination
 * cannot be remembered: then the connect fails with EPERM, because an enrolled pod's
 * traffic must never leave the mesh uncaptured (fail closed). */
#include "helpers.bpf.h"

/* True when the socket is ztunnel's own: marked and, if verification is on, made by
 * ztunnel or by the ztunnel it replaces (any pod with CAP_NET_RAW can set a mark). */
static __always_inline int zm_is_ztunnel(struct bpf_sock_addr *ctx,
					 const struct zm_config *cfg)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk || (sk->mark & cfg->mark_mask) != (cfg->mark_ztunnel & cfg->mark_mask))
		return 0;
	if (!(cfg->flags & ZM_CFG_VERIFY_ZTUNNEL))
		return 1;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 cgroup = bpf_get_current_cgroup_id();

	if (tgid == cfg->ztunnel_tgid || cgroup == cfg->ztunnel_cgroup_id)
		return 1;
	if (cfg->ztunnel_prev_tgid &&
	    (tgid == cfg->ztunnel_prev_tgid || cgroup == cfg->ztunnel_prev_cgroup_id))
		return 1;
	zm_count(ZM_R_OUT_MARK_SPOOFED);
	return 0;
}

/* The checks common to both families; returns the reason to skip or ZM_R_MAX to capture. */
static __always_inline __u32 zm_out_verdict(struct bpf_sock_addr *ctx,
					    struct zm_netns_val **pod)
{
	__u64 cookie = bpf_get_netns_cookie(ctx);
	struct zm_config *cfg;

	*pod = bpf_map_lookup_elem(&zm_netns, &cookie);
	if (!*pod || !((*pod)->flags & ZM_NETNS_OUT))
		return ZM_R_OUT_SKIP_NOT_ENROLLED;
	if (ctx->type != ZM_SOCK_STREAM)
		return ZM_R_OUT_SKIP_NOT_TCP;
	cfg = zm_cfg();
	if (cfg && zm_is_ztunnel(ctx, cfg))
		return ZM_R_OUT_SKIP_MARKED;
	return ZM_R_MAX;
}

static __always_inline int zm_port_excluded(const struct zm_netns_val *pod, __u16 port)
{
	struct zm_port_key key = {
		.pod_index = pod->pod_index,
		.port = port,
		.direction = ZM_DIR_OUTBOUND,
	};

	return bpf_map_lookup_elem(&zm_ports_excl, &key) != 0;
}

/* Remembers the destination; false if the storage could not be created. */
static __always_inline int zm_remember(struct bpf_sock_addr *ctx, const __u8 *ip, __u16 port,
				       __u16 family)
{
	struct zm_orig *orig;

	orig = bpf_sk_storage_get(&zm_sk_orig, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		zm_count(ZM_R_MAP_UPDATE_FAILED);
		return 0;
	}
	__builtin_memcpy(orig->ip, ip, 16);
	orig->port = port;
	orig->family = family;
	orig->pad = 0;
	return 1;
}

SEC("cgroup/connect4")
int zm_connect4(struct bpf_sock_addr *ctx)
{
	struct zm_netns_val *pod;
	__u32 dst = ctx->user_ip4;
	__u16 port = (__u16)ctx->user_port;
	__u32 reason = zm_out_verdict(ctx, &pod);
	__u8 ip[16];

	if (reason == ZM_R_MAX) {
		if (zm_is_loopback4(dst))
			reason = ZM_R_OUT_SKIP_LOOPBACK;
		else if (pod->ip4 && dst == pod->ip4)
			reason = ZM_R_OUT_SKIP_OWN_IP;
		else if (zm_port_excluded(pod, port))
			reason = ZM_R_OUT_SKIP_EXCLUDED_PORT;
	}
	if (reason != ZM_R_MAX) {
		zm_count(reason);
		return 1;
	}
	zm_v4_mapped(ip, dst);
	if (!zm_remember(ctx, ip, port, ZM_AF_INET))
		return 0; /* fail closed */
	ctx->user_ip4 = bpf_htonl(0x7f000001);
	ctx->user_port = bpf_htons(ZM_PORT_OUTBOUND);
	zm_count(ZM_R_OUT_REDIRECTED);
	return 1;
}

static __always_inline int zm_own_ip6(const struct zm_netns_val *pod, const __u32 *dst)
{
	if (zm_is_v4_mapped(dst))
		return pod->ip4 && dst[3] == pod->ip4;
	return zm_addr_eq(dst, (const __u32 *)pod->ip6);
}

SEC("cgroup/connect6")
int zm_connect6(struct bpf_sock_addr *ctx)
{
	struct zm_netns_val *pod;
	__u32 dst[4];
	__u16 port = (__u16)ctx->user_port;
	__u32 reason = zm_out_verdict(ctx, &pod);
	int mapped;

	ZM_CTX_IP6(dst, ctx->user_ip6);
	if (reason == ZM_R_MAX) {
		if (zm_is_loopback6(dst))
			reason = ZM_R_OUT_SKIP_LOOPBACK;
		else if (zm_own_ip6(pod, dst))
			reason = ZM_R_OUT_SKIP_OWN_IP;
		else if (zm_port_excluded(pod, port))
			reason = ZM_R_OUT_SKIP_EXCLUDED_PORT;
	}
	if (reason != ZM_R_MAX) {
		zm_count(reason);
		return 1;
	}
	mapped = zm_is_v4_mapped(dst);
	if (!zm_remember(ctx, (const __u8 *)dst, port, ZM_AF_INET6))
		return 0; /* fail closed */
	/* A v4-mapped destination must stay v4-mapped: the socket may be bound to v4. */
	ctx->user_ip6[0] = 0;
	ctx->user_ip6[1] = 0;
	ctx->user_ip6[2] = mapped ? bpf_htonl(0xffff) : 0;
	ctx->user_ip6[3] = mapped ? bpf_htonl(0x7f000001) : bpf_htonl(1);
	ctx->user_port = bpf_htons(ZM_PORT_OUTBOUND);
	zm_count(ZM_R_OUT_REDIRECTED);
	return 1;
}
