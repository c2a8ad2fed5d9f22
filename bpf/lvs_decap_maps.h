/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_decap_maps.h - the decapsulation program's maps and .rodata globals: its interface to the
 * control plane (src/realserver/), generated for TypeScript by scripts/gen-abi.mjs
 * (src/abi/decap-generated.ts: DECAP_SKELETON) and checked against the object's BTF at load by
 * the same code as the director's (src/abi/skeleton.ts).
 */
#ifndef LVS_DECAP_MAPS_H
#define LVS_DECAP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_decap.h"

/* Not a knob: the ABI this object was built for. */
const volatile __u32 cfg_decap_abi_version = LVS_DECAP_ABI_VERSION;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LVS_DECAP_MAX_VIPS);
	__type(key, struct lvs_decap_vip_key);
	__type(value, struct lvs_decap_vip_stats);
} lvs_decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lvs_decap_counters SEC(".maps");

/* Keeps the ABI types in BTF for the layout check. */
struct lvs_decap_abi_anchor {
	struct lvs_decap_vip_key vip_key;
	struct lvs_decap_vip_stats vip_stats;
	enum lvs_decap_counter counter;
};
const volatile struct lvs_decap_abi_anchor lvs_decap_abi_anchor;

#endif /* LVS_DECAP_MAPS_H */
