/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_persist.h - persistence templates (ipvsadm -p / -M): a client's group keeps its realserver
 * for new connections while the template is valid: until the persistence timeout after its last
 * use, or while a connection under it lives (as IPVS keeps a template that controls connections).
 *
 * A template's last_seen_ns is the time its persistence timeout counts from: a connection under
 * it moves it to (connection's expiry - persistence timeout) when that is later, so it may lie in
 * the future: such a template is valid (lvs_tpl_live). A template to a quiesced realserver is
 * used (IPVS's default) unless lvs_cfg has LVS_CFG_F_EXPIRE_QUIESCENT.
 *
 * Provides: lvs_pick_new() (the realserver of a new connection: the template's, else the
 * service's table, which then makes the template), lvs_pick_stray() (the same without writing:
 * a stray makes no template) and lvs_persist_touch() (a connection of the group was used).
 * Expects: lvs_persist (lvs_maps.h), a parsed packet (lvs_parse.h) and the packet's lvs_time.
 * Counts PERSIST_HIT / PERSIST_NEW; a failed schedule leaves its drop reason in *why.
 */
#ifndef LVS_PERSIST_H
#define LVS_PERSIST_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_sched.h"

/* The client's persistence group: its address masked with the service's netmask. */
static __always_inline void lvs_persist_key_of(struct lvs_persist_key *pk, const struct lvs_svc *svc,
					       const struct lvs_pkt *p)
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		pk->caddr[i] = p->flow.saddr[i] & svc->persist_mask[i];
	pk->svc_id = svc->id;
	pk->family = p->family;
}

/* A template whose persistence timeout counts from then: valid until then + limit (a time in the
 * future is valid). Reads the clock only when then is ahead of the coarse clock. */
static __always_inline int lvs_tpl_live(struct lvs_time *t, __u64 then, __u64 limit)
{
	if (then > t->lo) {
		__u64 now = lvs_time_now(t);

		return then >= now || now - then <= limit;
	}
	return !lvs_older_than(t, then, limit);
}

/* The template's realserver when the template may be used, else NULL. */
static __always_inline struct lvs_real *lvs_tpl_real(const struct lvs_svc *svc, const struct lvs_cfg *cfg,
						     struct lvs_pin *tpl, struct lvs_time *t)
{
	struct lvs_real *r;

	if (!tpl || !lvs_tpl_live(t, tpl->last_seen_ns, (__u64)svc->persist_timeout * NSEC_PER_SEC))
		return NULL;
	r = lvs_real_get(tpl->real, tpl->gen);
	if (r && (r->flags & LVS_REAL_F_QUIESCED) && (cfg->flags & LVS_CFG_F_EXPIRE_QUIESCENT))
		return NULL;
	return r;
}

/* New connection: persistence template first, then the table. */
static __always_inline __u32 lvs_pick_new(const struct lvs_svc *svc, const struct lvs_pkt *p,
					  const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *why)
{
	struct lvs_persist_key pk = {};
	struct lvs_pin *tpl, ntpl = {};
	__u32 ri;

	if (!(svc->flags & LVS_SVC_F_PERSIST))
		return lvs_schedule(svc, &p->flow, cfg->hash_seed, why);

	lvs_persist_key_of(&pk, svc, p);
	tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
	if (lvs_tpl_real(svc, cfg, tpl, t)) {
		__u64 now = lvs_time_now(t);

		if (tpl->last_seen_ns < now) /* never shortens what a connection set */
			tpl->last_seen_ns = now;
		lvs_count(LVS_C_PERSIST_HIT);
		return tpl->real;
	}
	ri = lvs_schedule(svc, &p->flow, cfg->hash_seed, why);
	if (ri == LVS_REAL_NONE)
		return ri;
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r)
		return ri;
	ntpl.last_seen_ns = lvs_time_now(t);
	ntpl.real = ri;
	ntpl.gen = r->gen;
	bpf_map_update_elem(&lvs_persist, &pk, &ntpl, BPF_ANY);
	lvs_count(LVS_C_PERSIST_NEW);
	return ri;
}

/* A stray's realserver: a valid template's (read only), else the table's. */
static __always_inline __u32 lvs_pick_stray(const struct lvs_svc *svc, const struct lvs_pkt *p,
					    const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *why)
{
	struct lvs_persist_key pk = {};

	if (svc->flags & LVS_SVC_F_PERSIST) {
		struct lvs_pin *tpl;

		lvs_persist_key_of(&pk, svc, p);
		tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
		if (lvs_tpl_real(svc, cfg, tpl, t))
			return tpl->real;
	}
	return lvs_schedule(svc, &p->flow, cfg->hash_seed, why);
}

/* A connection of the client's group was used at now and expires conn_ns later (0: a state
 * without timeout extends nothing): the template stays valid at least that long. */
static __always_inline void lvs_persist_touch(const struct lvs_svc *svc, const struct lvs_pkt *p,
					      __u64 now, __u64 conn_ns)
{
	__u64 persist_ns = (__u64)svc->persist_timeout * NSEC_PER_SEC;
	__u64 from = conn_ns > persist_ns ? now + (conn_ns - persist_ns) : now;
	struct lvs_persist_key pk = {};
	struct lvs_pin *tpl;

	lvs_persist_key_of(&pk, svc, p);
	tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
	if (tpl && tpl->last_seen_ns < from)
		tpl->last_seen_ns = from;
}

#endif /* LVS_PERSIST_H */
