/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/* Every map of the capture layer, declared once (DESIGN-ebpf.md "Maps"). All but zm_sk_orig
 * are pinned by name under the agent's pin root, so a new object reuses them on upgrade. */
#ifndef ZMESH_MAPS_BPF_H
#define ZMESH_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "zmesh/abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct zm_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_PODS);
	__type(key, __u64);
	__type(value, struct zm_netns_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_netns SEC(".maps");

/* A pod can have a v4 and a v6 address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * ZM_MAX_PODS);
	__type(key, struct zm_addr);
	__type(value, struct zm_pod_ip_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_pod_ip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_PODS);
	__type(key, __u32);
	__type(value, struct zm_pod_name);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_pod_name SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ZM_MAX_EXCLUDED_PORTS);
	__type(key, struct zm_port_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_ports_excl SEC(".maps");

/* Not pinned: it lives and dies with the sockets of the loaded object. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct zm_orig);
} zm_sk_orig SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZM_MAX_ORIG_DST);
	__type(key, struct zm_orig_key);
	__type(value, struct zm_orig);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_orig_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, ZM_MAX_BYPASS);
	__type(key, struct zm_tuple);
	__type(value, struct zm_bypass_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_bypass SEC(".maps");

/* Value size 8: user space then reads back the socket cookie of each entry. */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, ZM_MAX_LISTENERS);
	__type(key, struct zm_listener_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_listeners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ZM_R_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} zm_stats SEC(".maps");

#endif /* ZMESH_MAPS_BPF_H */
