/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* sockops: at TCP_CONNECT_CB the client's (netns, ip, port) becomes known, so the original
 * destination kept by connect4/6 is re-keyed for getsockopt, and connections that must skip
 * inbound capture are recorded in zm_bypass. Both are deleted again at close. */
#include "helpers.bpf.h"

/* The local and remote addresses of the socket, v4-mapped for IPv4. */
static __always_inline void zm_skops_addrs(struct bpf_sock_ops *skops, __u8 *local,
					   __u8 *remote)
{
	__u32 l6[4], r6[4];

	if (skops->family == ZM_AF_INET) {
		zm_v4_mapped(local, skops->local_ip4);
		zm_v4_mapped(remote, skops->remote_ip4);
		return;
	}
	ZM_CTX_IP6(l6, skops->local_ip6);
	ZM_CTX_IP6(r6, skops->remote_ip6);
	zm_copy_v6(local, l6);
	zm_copy_v6(remote, r6);
}

/* Builds both keys: the orig-dst key and the bypass 4-tuple (client's view). */
static __always_inline void zm_skops_keys(struct bpf_sock_ops *skops, struct zm_orig_key *ok,
					  struct zm_tuple *tuple)
{
	__builtin_memset(ok, 0, sizeof(*ok));
	__builtin_memset(tuple, 0, sizeof(*tuple));
	zm_skops_addrs(skops, tuple->saddr, tuple->daddr);
	/* local_port is host order. remote_port is the network-order port in the UPPER 16
	 * bits (the kernel shifts skc_dport left by 16; measured: the low half reads 0), so
	 * bpf_ntohl yields the host-order port. */
	tuple->sport = bpf_htons((__u16)skops->local_port);
	tuple->dport = bpf_htons((__u16)bpf_ntohl(skops->remote_port));
	ok->netns_cookie = bpf_get_netns_cookie(skops);
	__builtin_memcpy(ok->ip, tuple->saddr, 16);
	ok->port = tuple->sport;
}

static __always_inline int zm_record_orig(struct bpf_sock_ops *skops,
					  const struct zm_orig_key *ok)
{
	struct bpf_sock *sk = skops->sk;
	struct zm_orig *orig;

	if (!sk)
		return 0;
	orig = bpf_sk_storage_get(&zm_sk_orig, sk, 0, 0);
	if (!orig)
		return 0;
	if (bpf_map_update_elem(&zm_orig_dst, ok, orig, BPF_ANY)) {
		zm_count(ZM_R_MAP_UPDATE_FAILED);
		return 0;
	}
	zm_count(ZM_R_ORIGDST_RECORDED);
	return 1;
}

/* Why this connection must skip inbound capture at the pod it goes to, or 0. */
static __always_inline __u32 zm_bypass_reason(struct bpf_sock_ops *skops,
					      const struct zm_tuple *tuple, __u64 netns)
{
	struct zm_pod_ip_val *pod = bpf_map_lookup_elem(&zm_pod_ip, tuple->daddr);
	struct zm_config *cfg = zm_cfg();
	struct bpf_sock *sk = skops->sk;

	if (!pod || !cfg)
		return 0;
	if (sk && sk->mark == cfg->mark_delivery)
		return ZM_R_BYPASS_DELIVERY;
	if (netns == cfg->node_netns_cookie)
		return ZM_R_BYPASS_NODE;
	if (netns == pod->netns_cookie)
		return ZM_R_BYPASS_OWN_IP;
	return 0;
}

static __always_inline int zm_record_bypass(struct bpf_sock_ops *skops,
					    const struct zm_tuple *tuple, __u64 netns)
{
	__u32 reason = zm_bypass_reason(skops, tuple, netns);
	struct zm_bypass_val val = {};

	if (!reason)
		return 0;
	val.time_ns = bpf_ktime_get_ns();
	val.reason = reason;
	if (bpf_map_update_elem(&zm_bypass, tuple, &val, BPF_ANY)) {
		zm_count(ZM_R_MAP_UPDATE_FAILED);
		return 0;
	}
	zm_count(reason);
	return 1;
}

SEC("sockops")
int zm_sockops(struct bpf_sock_ops *skops)
{
	struct zm_orig_key ok;
	struct zm_tuple tuple;
	int want_close = 0;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		zm_skops_keys(skops, &ok, &tuple);
		want_close |= zm_record_orig(skops, &ok);
		want_close |= zm_record_bypass(skops, &tuple, ok.netns_cookie);
		if (want_close)
			bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags |
							     BPF_SOCK_OPS_STATE_CB_FLAG);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		/* args[1] is the new state; the addresses are still set at this point. */
		if (skops->args[1] != BPF_TCP_CLOSE)
			break;
		zm_skops_keys(skops, &ok, &tuple);
		bpf_map_delete_elem(&zm_orig_dst, &ok);
		bpf_map_delete_elem(&zm_bypass, &tuple);
		break;
	}
	return 1;
}
