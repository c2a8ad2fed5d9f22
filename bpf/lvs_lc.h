/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_lc.h - live connection counts per realserver, thresholds (ipvsadm -x / -y) and the
 * least-connection family of schedulers (lc wlc sed nq twos fo ovf) without a loop over the
 * realservers.
 *
 * Counts (lvs_real_conns) follow IPVS: a connection is bound to its realserver when entered and
 * unbound when its entry ends; ActiveConn holds TCP ESTABLISHED, InActConn every other live state
 * (SYN_RECV, FIN_WAIT, CLOSE, UDP, strays). Binding may set the realserver's overload flag (at
 * its upper threshold), unbinding may clear it (below its lower threshold, or 3/4 of the upper
 * without one), as ip_vs_bind_dest / ip_vs_unbind_dest do. An entry that ends without a packet
 * (idle expiry, LRU eviction) is unbound only by the control plane's recount.
 *
 * Scheduling (a service with LVS_SVC_F_LC): its table holds candidates. lc, wlc, sed, nq, twos:
 * slot k of LVS_LC_DRAWS is lvs_lc_draw(h, k) % size, h the 5-tuple's scheduling hash (the
 * reference model replays it); the first two usable (not overloaded) realservers drawn, distinct
 * except for twos, are compared by the scheduler's cost and the cheaper taken (the first on a
 * tie); when every draw was overloaded, the realservers listed after the drawn slots (table
 * entries size.., up to LVS_LC_WALK, heaviest first) are compared instead. fo, ovf: the table is
 * sorted by weight, highest first (list order on ties), and the first usable entry of the first
 * LVS_LC_WALK is IPVS's answer.
 *
 * Provides: lvs_lc_bind(), lvs_lc_unbind(), lvs_lc_move() (counts), lvs_lc_overloaded(),
 * lvs_lc_schedule() (a new flow's realserver), lvs_rr_skip() (rr past overloaded slots).
 * Expects: lvs_dests and lvs_real_conns (lvs_maps.h), the service's table; keeps its scan in its
 * own per-CPU lvs_lc_scratch (private).
 */
#ifndef LVS_LC_H
#define LVS_LC_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_hash.h"

#define LVS_LC_ALL_FIELDS (LVS_HF_SADDR | LVS_HF_SPORT | LVS_HF_DADDR | LVS_HF_DPORT | LVS_HF_PROTO)

static __always_inline int lvs_lc_is_active(__u8 state)
{
	return state == LVS_CS_ESTABLISHED;
}

/* The k-th draw from a flow's hash: murmur3's finalizer of h + k * golden ratio (src/sched/lc.ts). */
static __always_inline __u32 lvs_lc_draw(__u32 h, __u32 k)
{
	__u32 x = h + k * 0x9e3779b9u;

	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

static __always_inline __u32 lvs_lc_pos(__s32 v)
{
	return v > 0 ? (__u32)v : 0;
}

/* A connection of state st entered for realserver ri. */
static __always_inline void lvs_lc_bind(__u32 ri, __u8 st)
{
	struct lvs_real_conns *c = bpf_map_lookup_elem(&lvs_real_conns, &ri);
	struct lvs_dest *d;

	if (!c)
		return;
	if (lvs_lc_is_active(st))
		__sync_fetch_and_add(&c->active, 1);
	else
		__sync_fetch_and_add(&c->inactive, 1);
	d = bpf_map_lookup_elem(&lvs_dests, &ri);
	if (d && d->u_thresh && lvs_lc_pos(c->active) + lvs_lc_pos(c->inactive) >= d->u_thresh)
		c->overloaded = 1;
}

/* A connection of state st of realserver ri ended (expired, or its port reused). */
static __always_inline void lvs_lc_unbind(__u32 ri, __u8 st)
{
	struct lvs_real_conns *c = bpf_map_lookup_elem(&lvs_real_conns, &ri);
	struct lvs_dest *d;
	__u32 total;

	if (!c)
		return;
	if (lvs_lc_is_active(st))
		__sync_fetch_and_add(&c->active, -1);
	else
		__sync_fetch_and_add(&c->inactive, -1);
	if (!c->overloaded)
		return;
	d = bpf_map_lookup_elem(&lvs_dests, &ri);
	total = lvs_lc_pos(c->active) + lvs_lc_pos(c->inactive);
	if (!d || (d->l_thresh ? total < d->l_thresh : !d->u_thresh || (__u64)total * 4 < (__u64)d->u_thresh * 3))
		c->overloaded = 0;
}

/* A connection moved from state from to state to: ActiveConn <-> InActConn. */
static __always_inline void lvs_lc_move(__u32 ri, __u8 from, __u8 to)
{
	struct lvs_real_conns *c;

	if (lvs_lc_is_active(from) == lvs_lc_is_active(to))
		return;
	c = bpf_map_lookup_elem(&lvs_real_conns, &ri);
	if (!c)
		return;
	if (lvs_lc_is_active(to)) {
		__sync_fetch_and_add(&c->active, 1);
		__sync_fetch_and_add(&c->inactive, -1);
	} else {
		__sync_fetch_and_add(&c->active, -1);
		__sync_fetch_and_add(&c->inactive, 1);
	}
}

static __always_inline int lvs_lc_overloaded(__u32 ri)
{
	struct lvs_real_conns *c = bpf_map_lookup_elem(&lvs_real_conns, &ri);

	return c && c->overloaded;
}

/* a (weight aw) is cheaper than b (weight bw) by the kind's cost; ties keep b (the first seen).
 * Products in 64 bits, as IPVS compares overhead / weight by cross-multiplication. */
static __always_inline int lvs_lc_better(__u32 kind, __u32 aa, __u32 ai, __u32 aw,
					 __u32 ba, __u32 bi, __u32 bw)
{
	__u64 ao = ((__u64)aa << 8) + ai, bo = ((__u64)ba << 8) + bi;

	switch (kind) {
	case LVS_LC_LC:
		return ao < bo;
	case LVS_LC_NQ:
		if (ba == 0)
			return 0;
		if (aa == 0)
			return 1;
		/* fall through: sed */
	case LVS_LC_SED:
		return ((__u64)aa + 1) * bw < ((__u64)ba + 1) * aw;
	default: /* wlc, twos */
		return ao * bw < bo * aw;
	}
}

/* rr / wrr with thresholds: the slots after an overloaded pick, up to LVS_LC_WALK of them (the
 * cursor moves past them as IPVS's rr moves past an overloaded destination). */
static __always_inline __u32 lvs_rr_skip(void *table, __u32 *cur, __u32 slot, __u32 size, __u32 *why)
{
	for (__u32 k = 1; k < LVS_LC_WALK; k++) {
		__u32 s = slot + k, *ri;

		if (s >= size)
			s -= size;
		if (s >= size)
			break;
		ri = bpf_map_lookup_elem(table, &s);
		if (!ri || *ri == LVS_REAL_NONE)
			break;
		if (!lvs_lc_overloaded(*ri)) {
			*cur = s + 1;
			return *ri;
		}
	}
	*why = LVS_C_DROP_OVERLOADED;
	return LVS_REAL_NONE;
}

static long lvs_lc_step(__u64 k, void *unused)
{
	__u32 zero = 0, tslot, slot, *rp, ri, a, in;
	struct lvs_lc_scan *s = bpf_map_lookup_elem(&lvs_lc_scratch, &zero);
	struct lvs_real_conns *c;
	struct lvs_dest *d;
	void *table;

	if (!s)
		return 1;
	tslot = s->tslot;
	table = bpf_map_lookup_elem(&lvs_tables, &tslot);

	if (!table) {
		s->why = LVS_C_DROP_NO_TABLE;
		return 1;
	}
	if (s->mode == LVS_LC_SCAN_WALK) {
		if (k >= s->size)
			return 1;
		slot = k;
	} else if (s->mode == LVS_LC_SCAN_FALLBACK) {
		slot = s->size + (__u32)k;
	} else {
		slot = lvs_lc_draw(s->h, k) % s->size;
	}
	rp = bpf_map_lookup_elem(table, &slot);
	if (!rp || *rp == LVS_REAL_NONE) {
		if (s->mode != LVS_LC_SCAN_FALLBACK)
			s->why = LVS_C_DROP_NO_REAL;
		return 1;
	}
	ri = *rp;
	if (ri == s->best && s->mode == LVS_LC_SCAN_DRAW && s->kind != LVS_LC_TWOS)
		return 0;
	c = bpf_map_lookup_elem(&lvs_real_conns, &ri);
	d = bpf_map_lookup_elem(&lvs_dests, &ri);
	if (!c || !d || c->overloaded)
		return 0;
	a = lvs_lc_pos(c->active);
	in = lvs_lc_pos(c->inactive);
	if (s->mode == LVS_LC_SCAN_WALK) {
		if (s->kind == LVS_LC_OVF && a > d->weight)
			return 0;
		s->best = ri;
		return 1;
	}
	if (s->best == LVS_REAL_NONE || lvs_lc_better(s->kind, a, in, d->weight, s->ba, s->bi, s->bw)) {
		s->best = ri;
		s->ba = a;
		s->bi = in;
		s->bw = d->weight;
	}
	return s->mode == LVS_LC_SCAN_DRAW && ++s->seen == 2;
}

/* The realserver of a new flow for a service of the least-connection family, or LVS_REAL_NONE
 * with *why set. size > 0: the entries drawn from (fo / ovf: the list). */
static __always_inline __u32 lvs_lc_schedule(const struct lvs_svc *svc, const struct lvs_flow_key *f,
					     __u32 seed, __u32 size, __u32 *why)
{
	__u32 zero = 0, kind = (svc->flags >> LVS_SVC_LC_SHIFT) & LVS_SVC_LC_MASK;
	struct lvs_lc_scan *s = bpf_map_lookup_elem(&lvs_lc_scratch, &zero);

	if (!s) {
		*why = LVS_C_DROP_NO_TABLE;
		return LVS_REAL_NONE;
	}
	__builtin_memset(s, 0, sizeof(*s));
	s->tslot = svc->table_slot;
	s->size = size;
	s->kind = kind;
	s->best = LVS_REAL_NONE;
	if (kind == LVS_LC_FO || kind == LVS_LC_OVF) {
		s->mode = LVS_LC_SCAN_WALK;
		bpf_loop(LVS_LC_WALK, lvs_lc_step, NULL, 0);
	} else {
		s->h = lvs_flow_hash(f, LVS_LC_ALL_FIELDS, seed);
		bpf_loop(LVS_LC_DRAWS, lvs_lc_step, NULL, 0);
		if (s->best == LVS_REAL_NONE && !s->why) {
			/* Every draw overloaded (a heavy realserver at its threshold fills most slots):
			 * the realservers listed after the drawn slots, up to LVS_LC_WALK, compared. */
			s->mode = LVS_LC_SCAN_FALLBACK;
			bpf_loop(LVS_LC_WALK, lvs_lc_step, NULL, 0);
		}
	}
	if (s->why) {
		*why = s->why;
		return LVS_REAL_NONE;
	}
	if (s->best == LVS_REAL_NONE)
		*why = LVS_C_DROP_OVERLOADED;
	return s->best;
}

#endif /* LVS_LC_H */
