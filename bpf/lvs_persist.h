/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_persist.h - persistence templates (ipvsadm -p / -M): a client's group keeps its realserver
 * for new connections while the template is younger than the service's persistence timeout.
 *
 * Provides: lvs_pick_new() (the realserver of a new connection: the template's, else the
 * service's table, which then makes the template) and lvs_persist_touch() (a connection of the
 * group was used: its template lives on, as an IPVS template lives while its connections do).
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
	if (tpl && !lvs_older_than(t, tpl->last_seen_ns, (__u64)svc->persist_timeout * NSEC_PER_SEC)) {
		struct lvs_real *r = lvs_real_get(tpl->real, tpl->gen);

		/* A quiesced realserver takes no new connections, persistent clients included. */
		if (r && !(r->flags & LVS_REAL_F_QUIESCED)) {
			tpl->last_seen_ns = lvs_time_now(t);
			lvs_count(LVS_C_PERSIST_HIT);
			return tpl->real;
		}
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

static __always_inline void lvs_persist_touch(const struct lvs_svc *svc, const struct lvs_pkt *p,
					      __u64 now)
{
	struct lvs_persist_key pk = {};
	struct lvs_pin *tpl;

	lvs_persist_key_of(&pk, svc, p);
	tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
	if (tpl)
		tpl->last_seen_ns = now;
}

#endif /* LVS_PERSIST_H */
