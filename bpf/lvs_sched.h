/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_sched.h - virtual service lookup and realserver scheduling.
 *
 * Provides: lvs_svc_lookup() / lvs_svc_lookup_vf() (the virtual service a flow is addressed to, behind the VIP filter),
 * lvs_svc_allports() (the all-ports service a flow falls to when its port's service is a
 * tombstone), lvs_real_get() (a realserver slot, only while it is the generation a flow was
 * scheduled to), lvs_real_gone() (the same slot deleted, its entries waiting for it) and
 * lvs_schedule() (the realserver the service's lookup table gives a new flow; the
 * least-connection family and thresholds in lvs_lc.h).
 * Expects: lvs_services, lvs_tables, lvs_reals, lvs_rr_cursor and lvs_vip_filter (lvs_maps.h),
 * kept by the control plane as lvs_abi.h describes. Counts nothing: a failed schedule says why.
 */
#ifndef LVS_SCHED_H
#define LVS_SCHED_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_hash.h"
#include "lvs_lc.h"

/* The VIP filter's two bits for an address (lvs_abi.h); both set while the filter is off.
 * src/dataplane/vipfilter.ts is the control plane's side. */
static __always_inline __u32 lvs_vip_bits(const struct lvs_cfg *cfg, const __u8 *addr)
{
	__u32 w[4], slot, word;
	__u64 *bits;

	if (!(cfg->flags & LVS_CFG_F_VIP_FILTER))
		return 3;
	__builtin_memcpy(w, addr, 16);
	slot = ((w[0] ^ w[1] ^ w[2] ^ w[3]) * LVS_VIP_FILTER_MULT) >> (32 - LVS_VIP_FILTER_SLOT_BITS);
	word = slot / 32;
	bits = bpf_map_lookup_elem(&lvs_vip_filter, &word);
	if (!bits)
		return 3;
	return (*bits >> ((slot % 32) * 2)) & 3;
}

/* (proto, VIP, port), then (proto, VIP, 0) for all-ports services; `vf`, the VIP filter's bits
 * for the destination (lvs_vip_bits), skips the lookups that cannot succeed. */
static __always_inline struct lvs_svc *lvs_svc_lookup_vf(const struct lvs_flow_key *f, __u32 vf)
{
	struct lvs_svc_key k = {};
	struct lvs_svc *svc;

	if (!vf)
		return NULL;
	__builtin_memcpy(k.addr, f->daddr, 16);
	k.port = f->dport;
	k.proto = f->proto;
	k.family = f->family;
	if (vf & (1u << LVS_VF_PORT_SHIFT)) {
		svc = bpf_map_lookup_elem(&lvs_services, &k);
		if (svc)
			return svc;
	}
	if (!(vf & (1u << LVS_VF_ALLPORTS_SHIFT)))
		return NULL;
	k.port = 0; /* all-ports service */
	return bpf_map_lookup_elem(&lvs_services, &k);
}

/* lvs_svc_lookup_vf with the filter's bits read here. */
static __always_inline struct lvs_svc *lvs_svc_lookup(const struct lvs_flow_key *f,
						      const struct lvs_cfg *cfg)
{
	return lvs_svc_lookup_vf(f, lvs_vip_bits(cfg, f->daddr));
}

/* (proto, VIP, 0) for a flow whose (proto, VIP, port) entry is a tombstone (LVS_SVC_F_GONE):
 * without an entry of the deleted service the flow is not its, exactly as if it were absent. */
static __always_inline struct lvs_svc *lvs_svc_allports(const struct lvs_flow_key *f,
							const struct lvs_cfg *cfg)
{
	struct lvs_svc_key k = {};

	if (f->dport == 0 || !(lvs_vip_bits(cfg, f->daddr) & (1u << LVS_VF_ALLPORTS_SHIFT)))
		return NULL; /* port 0 was the all-ports key already */
	__builtin_memcpy(k.addr, f->daddr, 16);
	k.proto = f->proto;
	k.family = f->family;
	return bpf_map_lookup_elem(&lvs_services, &k);
}

static __always_inline struct lvs_real *lvs_real_get(__u32 idx, __u32 gen)
{
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &idx);

	if (!r || !(r->flags & LVS_REAL_F_ACTIVE) || r->gen != gen)
		return NULL;
	return r;
}

/* The slot of generation gen, deleted with its entries kept (LVS_REAL_F_GONE, not in use). */
static __always_inline int lvs_real_gone(const struct lvs_real *r, __u32 gen)
{
	return r && !(r->flags & LVS_REAL_F_ACTIVE) && (r->flags & LVS_REAL_F_GONE) && r->gen == gen;
}

/* The service's table at the slot the flow hashes to (or the rr cursor points at). Returns the
 * realserver index, or LVS_REAL_NONE with *why set to the drop counter. */
static __always_inline __u32 lvs_schedule(const struct lvs_svc *svc, const struct lvs_flow_key *f,
					  __u32 seed, __u32 *why)
{
	__u32 size = svc->table_size;
	__u32 tslot = svc->table_slot;
	__u32 slot, *ri, *cur = NULL;
	void *table;

	if (svc->flags & LVS_SVC_F_GONE) { /* a tombstone schedules nothing */
		*why = LVS_C_DROP_SERVICE_GONE;
		return LVS_REAL_NONE;
	}
	if (size == 0) {
		*why = LVS_C_DROP_NO_REAL;
		return LVS_REAL_NONE;
	}
	if (svc->flags & LVS_SVC_F_LC) /* least-connection family: the table holds candidates */
		return lvs_lc_schedule(svc, f, seed, size, why);
	if (svc->flags & LVS_SVC_F_ROTATE) {
		__u32 id = svc->id;
		cur = bpf_map_lookup_elem(&lvs_rr_cursor, &id);

		if (!cur) {
			*why = LVS_C_DROP_NO_TABLE;
			return LVS_REAL_NONE;
		}
		slot = *cur;
		if (slot >= size)
			slot = 0;
		*cur = slot + 1;
	} else {
		slot = lvs_flow_hash(f, svc->hash_fields, seed) % size;
	}
	table = bpf_map_lookup_elem(&lvs_tables, &tslot);
	if (!table) {
		*why = LVS_C_DROP_NO_TABLE;
		return LVS_REAL_NONE;
	}
	ri = bpf_map_lookup_elem(table, &slot);
	if (!ri) {
		*why = LVS_C_DROP_NO_TABLE;
		return LVS_REAL_NONE;
	}
	if (*ri == LVS_REAL_NONE) {
		*why = LVS_C_DROP_NO_REAL;
		return LVS_REAL_NONE;
	}
	if ((svc->flags & LVS_SVC_F_THRESH) && lvs_lc_overloaded(*ri)) {
		/* IPVS: rr / wrr move on past an overloaded destination; mh, sh and dh find none. */
		if (cur)
			return lvs_rr_skip(table, cur, slot, size, why);
		*why = LVS_C_DROP_OVERLOADED;
		return LVS_REAL_NONE;
	}
	return *ri;
}

#endif /* LVS_SCHED_H */
