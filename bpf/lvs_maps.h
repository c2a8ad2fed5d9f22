/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_maps.h - the director's maps. Sizes below are defaults; the loader resizes every map
 * (bpf_map__set_max_entries) before load, so small boxes and large directors use one object.
 * The control plane pins all of them under one bpffs directory.
 */
#ifndef LVS_MAPS_H
#define LVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"

#define LVS_DEFAULT_MAX_SERVICES 1024
#define LVS_DEFAULT_MAX_REALS    16384
#define LVS_DEFAULT_MAX_CONNS    262144
#define LVS_DEFAULT_MAX_PERSIST  65536
#define LVS_DEFAULT_MAX_FRAGS    8192
#define LVS_DEFAULT_MAX_TX_PORTS 64

/* (proto, VIP, port) -> service. A HASH map: an update replaces the whole value under RCU, so
 * switching a service to a new table (table_slot + table_size together) is one atomic step. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, struct lvs_svc_key);
	__type(value, struct lvs_svc);
} lvs_services SEC(".maps");

/* A service's lookup table: slot -> realserver index. Inner maps are created by the control
 * plane with the table's own size (BPF_F_INNER_MAP lets sizes differ). */
struct lvs_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

/* Two slots per service: the new table is filled in the spare slot, then the service entry is
 * switched to it, so no packet ever sees a half-written table. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2 * LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct lvs_table);
} lvs_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_real);
} lvs_reals SEC(".maps");

/* Shared (not per-CPU) LRU: a flow keeps its realserver whichever CPU RSS hands it to. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_CONNS);
	__type(key, struct lvs_flow_key);
	__type(value, struct lvs_conn);
} lvs_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_PERSIST);
	__type(key, struct lvs_persist_key);
	__type(value, struct lvs_pin);
} lvs_persist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_FRAGS);
	__type(key, struct lvs_frag_key);
	__type(value, struct lvs_pin);
} lvs_frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_cfg);
} lvs_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lvs_stats);
} lvs_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_stats);
} lvs_real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lvs_counters SEC(".maps");

/* rr / wrr position per service, per CPU (no shared cache line on the hot path). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} lvs_rr_cursor SEC(".maps");

/* VIP filter (lvs_abi.h): two bits per address slot, checked before any service lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} lvs_vip_filter SEC(".maps");

/* Per-CPU clock cache (internal, not part of the control plane's ABI): the coarse monotonic
 * clock as last read on this CPU, and the jiffies64 value it was read at. */
struct lvs_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_clock);
} lvs_clock SEC(".maps");

/* Egress interfaces for realservers behind another interface (XDP_REDIRECT). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_TX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} lvs_tx_ports SEC(".maps");

#endif /* LVS_MAPS_H */
