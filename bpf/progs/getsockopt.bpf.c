/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* cgroup/getsockopt: answers SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST for ztunnel's accepted
 * socket from zm_orig_dst, as netfilter would under iptables. Every other option returns at
 * once: this program runs on every getsockopt of the node. */
#include "helpers.bpf.h"

#define ZM_SOL_IP 0
#define ZM_SOL_IPV6 41
#define ZM_SO_ORIGINAL_DST 80 /* IP6T_SO_ORIGINAL_DST has the same number */
#define ZM_PAGE_SIZE 4096

struct zm_sockaddr_in {
	__u16 family;
	__u16 port;
	__u32 addr;
	__u8 zero[8];
};

struct zm_sockaddr_in6 {
	__u16 family;
	__u16 port;
	__u32 flowinfo;
	__u8 addr[16];
	__u32 scope_id;
};

/* The peer of ztunnel's accepted socket is the app's client end: the orig-dst key. */
static __always_inline int zm_peer_key(struct bpf_sockopt *ctx, struct zm_orig_key *key)
{
	struct bpf_sock *sk = ctx->sk;
	__u32 d6[4];

	if (!sk)
		return 0;
	__builtin_memset(key, 0, sizeof(*key));
	key->netns_cookie = bpf_get_netns_cookie(ctx);
	if (sk->family == ZM_AF_INET) {
		zm_v4_mapped(key->ip, sk->dst_ip4);
	} else {
		ZM_CTX_IP6(d6, sk->dst_ip6);
		zm_copy_v6(key->ip, d6);
	}
	key->port = sk->dst_port;
	return 1;
}

/* Writes the answer; its length, or 0 if it does not fit or cannot be said at this level. */
static __always_inline int zm_write_orig(struct bpf_sockopt *ctx, const struct zm_orig *orig)
{
	void *end = ctx->optval_end;

	if (ctx->level == ZM_SOL_IP) {
		struct zm_sockaddr_in *sin = ctx->optval;

		if ((void *)(sin + 1) > end || !zm_is_v4_mapped((const __u32 *)orig->ip))
			return 0;
		__builtin_memset(sin, 0, sizeof(*sin));
		sin->family = ZM_AF_INET;
		sin->port = orig->port;
		sin->addr = ((const __u32 *)orig->ip)[3];
		return sizeof(*sin);
	} else {
		struct zm_sockaddr_in6 *sin6 = ctx->optval;

		if ((void *)(sin6 + 1) > end)
			return 0;
		__builtin_memset(sin6, 0, sizeof(*sin6));
		sin6->family = ZM_AF_INET6;
		sin6->port = orig->port;
		__builtin_memcpy(sin6->addr, orig->ip, 16);
		return sizeof(*sin6);
	}
}

SEC("cgroup/getsockopt")
int zm_getsockopt(struct bpf_sockopt *ctx)
{
	struct zm_orig_key key;
	struct zm_orig *orig;
	int len;

	if ((ctx->level != ZM_SOL_IP && ctx->level != ZM_SOL_IPV6) ||
	    ctx->optname != ZM_SO_ORIGINAL_DST) {
		/* The kernel passes at most a page; a larger optlen left as is fails the call. */
		if (ctx->optlen > ZM_PAGE_SIZE)
			ctx->optlen = 0;
		return 1;
	}
	if (!zm_peer_key(ctx, &key))
		return 1;
	orig = bpf_map_lookup_elem(&zm_orig_dst, &key);
	len = orig ? zm_write_orig(ctx, orig) : 0;
	if (!len) {
		zm_count(ZM_R_ORIGDST_MISS);
		return 1;
	}
	ctx->optlen = len;
	/* clang 14 merges the optlen and retval stores into one 8-byte store, which the
	 * verifier rejects for this context: keep them apart. */
	asm volatile("" ::: "memory");
	ctx->retval = 0;
	zm_count(ZM_R_ORIGDST_HIT);
	return 1;
}
