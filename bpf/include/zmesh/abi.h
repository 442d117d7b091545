/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/*
 * The one definition of everything shared by the eBPF programs and the C++ side
 * (agent, ztunnel, zmeshctl): constants, map keys and values, and the reasons table.
 *
 * Rules (DESIGN-ebpf.md "Maps"):
 *  - fixed-width types only, explicit padding, every struct a multiple of 8 bytes;
 *  - addresses are 16 bytes, IPv4 as v4-mapped (::ffff:a.b.c.d);
 *  - ports in network byte order;
 *  - any change to a layout or a meaning bumps ZM_ABI_VERSION: an agent refuses pinned maps
 *    of another version and migrates them.
 */
#ifndef ZMESH_ABI_H
#define ZMESH_ABI_H

#include <linux/types.h>

#define ZM_ABI_VERSION 2

/* Socket marks. ztunnel's own sockets carry ZM_MARK_ZTUNNEL; its delivery to the app (from
 * the client's IP, IP_TRANSPARENT) carries ZM_MARK_DELIVERY. Both match under ZM_MARK_MASK. */
#define ZM_MARK_ZTUNNEL 0x539
#define ZM_MARK_DELIVERY 0x538
#define ZM_MARK_MASK 0xffe
/* Policy-routing table for replies to transparently delivered connections (in-pod). */
#define ZM_DELIVERY_ROUTE_TABLE 1337

/* ztunnel's in-pod ports. */
#define ZM_PORT_OUTBOUND 15001
#define ZM_PORT_INBOUND 15006
#define ZM_PORT_HBONE 15008
#define ZM_PORT_DNS 15053

/* Sizes. */
#define ZM_POD_NAME_LEN 384 /* "namespace/name/uid" with its NUL: 63 + 1 + 253 + 1 + 36 + 1 */
#define ZM_BUILD_ID_LEN 40

/* Map capacities. */
#define ZM_MAX_PODS 4096
#define ZM_MAX_EXCLUDED_PORTS 16384
#define ZM_MAX_ORIG_DST 65536
#define ZM_MAX_BYPASS 65536
#define ZM_MAX_LISTENERS 8192

/* One enum of reasons: BPF counters (zm_stats index), agent logs, metrics, the CLI.
 * X(name, "words") — the words are the metric label and the CLI's column. */
#define ZM_REASONS(X)                                                          \
	X(OUT_REDIRECTED, "out-redirected")                                    \
	X(OUT_SKIP_NOT_ENROLLED, "out-skip-not-enrolled")                      \
	X(OUT_SKIP_NOT_TCP, "out-skip-not-tcp")                                \
	X(OUT_SKIP_MARKED, "out-skip-marked")                                  \
	X(OUT_SKIP_LOOPBACK, "out-skip-loopback")                              \
	X(OUT_SKIP_OWN_IP, "out-skip-own-ip")                                  \
	X(OUT_SKIP_EXCLUDED_PORT, "out-skip-excluded-port")                    \
	X(OUT_MARK_SPOOFED, "out-mark-spoofed")                                \
	X(ORIGDST_RECORDED, "origdst-recorded")                                \
	X(ORIGDST_HIT, "origdst-hit")                                          \
	X(ORIGDST_MISS, "origdst-miss")                                        \
	X(BYPASS_NODE, "bypass-node-local")                                    \
	X(BYPASS_OWN_IP, "bypass-own-ip")                                      \
	X(BYPASS_DELIVERY, "bypass-ztunnel-delivery")                          \
	X(IN_STEERED, "in-steered")                                            \
	X(IN_PASS_NOT_TCP, "in-pass-not-tcp")                                  \
	X(IN_PASS_ZTUNNEL_PORT, "in-pass-ztunnel-port")                        \
	X(IN_PASS_LOOPBACK, "in-pass-loopback")                                \
	X(IN_PASS_NOT_POD_IP, "in-pass-not-pod-ip")                            \
	X(IN_PASS_BYPASS, "in-pass-bypass")                                    \
	X(IN_PASS_EXCLUDED_PORT, "in-pass-excluded-port")                      \
	X(IN_DROP_NO_LISTENER, "in-drop-no-listener")                          \
	X(IN_DROP_ASSIGN_FAILED, "in-drop-assign-failed")                      \
	X(MAP_UPDATE_FAILED, "map-update-failed")

#define ZM_REASON_ENUM_ENTRY(name, words) ZM_R_##name,
enum zm_reason { ZM_REASONS(ZM_REASON_ENUM_ENTRY) ZM_R_MAX };
#undef ZM_REASON_ENUM_ENTRY

/* zm_config flags. */
#define ZM_CFG_VERIFY_ZTUNNEL 0x1 /* a marked socket counts only if a ztunnel's tgid or cgroup */

/* zm_config[0]: written by the agent, read by every program. */
struct zm_config {
	__u32 abi;
	__u32 flags;
	__u32 mark_ztunnel;
	__u32 mark_delivery;
	__u32 mark_mask;
	__u32 ztunnel_tgid;
	__u64 ztunnel_cgroup_id;
	__u64 node_netns_cookie;
	/* The ztunnel being replaced (a surge upgrade: old and new overlap with SO_REUSEPORT
	 * while the old one drains); 0 when none. Its sockets count as ztunnel's too. */
	__u32 ztunnel_prev_tgid;
	__u32 pad;
	__u64 ztunnel_prev_cgroup_id;
};

/* zm_meta[0]: the upgrade gate. */
struct zm_meta {
	__u32 abi;
	__u32 pad;
	char build_id[ZM_BUILD_ID_LEN];
};

/* 16-byte address; IPv4 is v4-mapped. */
struct zm_addr {
	__u8 ip[16];
};

/* zm_netns: netns cookie (__u64) -> zm_netns_val. */
#define ZM_NETNS_OUT 0x1          /* outbound capture on */
#define ZM_NETNS_IN 0x2           /* inbound capture on */
#define ZM_NETNS_SRC_PRESERVE 0x4 /* in-pod rule/route/sysctl written */
struct zm_netns_val {
	__u32 flags;
	__u32 pod_index;
	__u32 ip4; /* network order, 0 if none */
	__u32 pad;
	__u8 ip6[16]; /* all zero if none */
};

/* zm_pod_ip: zm_addr -> zm_pod_ip_val. */
struct zm_pod_ip_val {
	__u64 netns_cookie;
	__u32 pod_index;
	__u32 flags; /* ZM_NETNS_* as in zm_netns */
};

/* zm_pod_name: pod index (__u32) -> zm_pod_name. */
struct zm_pod_name {
	char name[ZM_POD_NAME_LEN];
};

/* zm_ports_excl: zm_port_key -> __u32 (1). */
#define ZM_DIR_OUTBOUND 1
#define ZM_DIR_INBOUND 2
struct zm_port_key {
	__u32 pod_index;
	__u16 port; /* network order */
	__u8 direction;
	__u8 pad;
};

/* zm_sk_orig (socket storage) and zm_orig_dst values: the destination before the rewrite. */
struct zm_orig {
	__u8 ip[16];
	__u16 port;   /* network order */
	__u16 family; /* AF_INET or AF_INET6: what the app asked for */
	__u32 pad;
};

/* zm_orig_dst: {netns cookie, client ip, client port} -> zm_orig. */
struct zm_orig_key {
	__u64 netns_cookie;
	__u8 ip[16];
	__u16 port; /* network order */
	__u8 pad[6];
};

/* zm_bypass: the connection's 4-tuple as its client sees it -> zm_bypass_val. */
struct zm_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u32 pad;
};
struct zm_bypass_val {
	__u64 time_ns; /* bpf_ktime_get_ns() at connect */
	__u32 reason;  /* ZM_R_BYPASS_* */
	__u32 pad;
};

/* zm_listeners (SOCKHASH): {pod ip, role} -> ztunnel's listening socket. */
#define ZM_ROLE_INBOUND 1 /* the 15006 plaintext listener */
struct zm_listener_key {
	__u8 ip[16];
	__u32 role;
	__u32 pad;
};

#ifdef __cplusplus
static_assert(sizeof(struct zm_config) == 56, "zm_config layout");
static_assert(sizeof(struct zm_meta) == 48, "zm_meta layout");
static_assert(sizeof(struct zm_addr) == 16, "zm_addr layout");
static_assert(sizeof(struct zm_netns_val) == 32, "zm_netns_val layout");
static_assert(sizeof(struct zm_pod_ip_val) == 16, "zm_pod_ip_val layout");
static_assert(sizeof(struct zm_pod_name) == ZM_POD_NAME_LEN, "zm_pod_name layout");
static_assert(sizeof(struct zm_port_key) == 8, "zm_port_key layout");
static_assert(sizeof(struct zm_orig) == 24, "zm_orig layout");
static_assert(sizeof(struct zm_orig_key) == 32, "zm_orig_key layout");
static_assert(sizeof(struct zm_tuple) == 40, "zm_tuple layout");
static_assert(sizeof(struct zm_bypass_val) == 16, "zm_bypass_val layout");
static_assert(sizeof(struct zm_listener_key) == 24, "zm_listener_key layout");
#endif

#endif /* ZMESH_ABI_H */
