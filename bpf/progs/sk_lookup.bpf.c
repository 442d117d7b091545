/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* sk_lookup, one link per enrolled pod netns: inbound capture. SYNs for the pod's app ports
 * are steered to ztunnel's in-pod 15006 listener; enrolled but no listener -> drop (the
 * client gets a RST: fail closed). */
#include "helpers.bpf.h"

static __always_inline int zm_ztunnel_port(__u32 port)
{
	return port == ZM_PORT_OUTBOUND || port == ZM_PORT_INBOUND || port == ZM_PORT_HBONE ||
	       port == ZM_PORT_DNS;
}

/* Local and remote addresses, v4-mapped for IPv4. */
static __always_inline void zm_lookup_addrs(struct bpf_sk_lookup *ctx, struct zm_tuple *t)
{
	__u32 a[4];

	if (ctx->family == ZM_AF_INET) {
		zm_v4_mapped(t->saddr, ctx->remote_ip4);
		zm_v4_mapped(t->daddr, ctx->local_ip4);
		return;
	}
	ZM_CTX_IP6(a, ctx->remote_ip6);
	zm_copy_v6(t->saddr, a);
	ZM_CTX_IP6(a, ctx->local_ip6);
	zm_copy_v6(t->daddr, a);
}

/* Every pass decision, in the design's order; ZM_R_MAX when the SYN is to be steered. */
static __always_inline __u32 zm_in_verdict(struct bpf_sk_lookup *ctx, struct zm_tuple *t,
					   struct zm_pod_ip_val **pod)
{
	struct zm_port_key pk = {};

	if (ctx->protocol != ZM_IPPROTO_TCP)
		return ZM_R_IN_PASS_NOT_TCP;
	if (zm_ztunnel_port(ctx->local_port))
		return ZM_R_IN_PASS_ZTUNNEL_PORT;
	__builtin_memset(t, 0, sizeof(*t));
	zm_lookup_addrs(ctx, t);
	if (zm_is_loopback6((const __u32 *)t->daddr))
		return ZM_R_IN_PASS_LOOPBACK;
	*pod = bpf_map_lookup_elem(&zm_pod_ip, t->daddr);
	if (!*pod)
		return ZM_R_IN_PASS_NOT_POD_IP;
	t->sport = (__u16)ctx->remote_port;
	t->dport = bpf_htons((__u16)ctx->local_port);
	if (bpf_map_lookup_elem(&zm_bypass, t))
		return ZM_R_IN_PASS_BYPASS;
	pk.pod_index = (*pod)->pod_index;
	pk.port = t->dport;
	pk.direction = ZM_DIR_INBOUND;
	if (bpf_map_lookup_elem(&zm_ports_excl, &pk))
		return ZM_R_IN_PASS_EXCLUDED_PORT;
	return ZM_R_MAX;
}

SEC("sk_lookup")
int zm_sk_lookup(struct bpf_sk_lookup *ctx)
{
	struct zm_listener_key lk = {};
	struct zm_pod_ip_val *pod = 0;
	struct zm_tuple t;
	struct bpf_sock *sk;
	__u32 reason = zm_in_verdict(ctx, &t, &pod);
	long err;

	if (reason != ZM_R_MAX) {
		zm_count(reason);
		return SK_PASS;
	}
	__builtin_memcpy(lk.ip, t.daddr, 16);
	lk.role = ZM_ROLE_INBOUND;
	sk = bpf_map_lookup_elem(&zm_listeners, &lk);
	if (!sk) {
		zm_count(ZM_R_IN_DROP_NO_LISTENER);
		return SK_DROP;
	}
	err = bpf_sk_assign(ctx, sk, 0);
	bpf_sk_release(sk);
	if (err) {
		zm_count(ZM_R_IN_DROP_ASSIGN_FAILED);
		return SK_DROP;
	}
	zm_count(ZM_R_IN_STEERED);
	return SK_PASS;
}
