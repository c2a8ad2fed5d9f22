/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_frag.h - IP fragments: a non-first fragment has no ports, so it follows the realserver its
 * first fragment was sent to.
 *
 * Provides: lvs_frag_first() (a first fragment's realserver remembered for the ones that follow)
 * and lvs_handle_frag_later() (the handler of a non-first fragment; LVS_FORWARD_REPLY for one of
 * an LVS-NAT reply, whose first fragment the reply path recorded under the reply's addresses).
 * Expects: lvs_frags (an LRU, lvs_maps.h), a parsed packet (lvs_parse.h), and the load-time knob
 * that enables fragment tracking passed in by the caller. Counts FRAG_* and, for a fragment
 * with no state, PASS_FRAG_NO_STATE.
 */
#ifndef LVS_FRAG_H
#define LVS_FRAG_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_sched.h"
#include "lvs_nat.h"

#define LVS_FRAG_TIMEOUT (30 * NSEC_PER_SEC) /* as the kernel's ipfrag_time */

/* Fragments of one datagram share addresses, protocol and IP identification. */
static __always_inline void lvs_frag_key_of(struct lvs_frag_key *fk, const struct lvs_pkt *p)
{
	__builtin_memcpy(fk->saddr, p->flow.saddr, 16);
	__builtin_memcpy(fk->daddr, p->flow.daddr, 16);
	fk->id = p->frag_id;
	fk->proto = p->proto;
	fk->family = p->family;
}

/* A first fragment goes to realserver ri (generation gen): so do the fragments that follow. */
static __always_inline void lvs_frag_first(const struct lvs_pkt *p, __u32 ri, __u32 gen,
					   struct lvs_time *t)
{
	struct lvs_frag_key fk = {};
	struct lvs_pin pin = { .last_seen_ns = lvs_time_now(t), .real = ri, .gen = gen };

	lvs_frag_key_of(&fk, p);
	bpf_map_update_elem(&lvs_frags, &fk, &pin, BPF_ANY);
	lvs_count(LVS_C_FRAG_FIRST);
}

/* Non-first fragment: LVS_FORWARD to its first fragment's realserver, else XDP_PASS. */
static __always_inline int lvs_handle_frag_later(const struct lvs_pkt *p, int frag_on,
						 __u32 *real_idx, __u32 *gen)
{
	struct lvs_frag_key fk = {};
	struct lvs_pin *pin;
	struct lvs_real *r;
	struct lvs_time t;

	if (!frag_on)
		goto pass;
	lvs_frag_key_of(&fk, p);
	pin = bpf_map_lookup_elem(&lvs_frags, &fk);
	lvs_time_init(&t);
	if (!pin || lvs_older_than(&t, pin->last_seen_ns, LVS_FRAG_TIMEOUT))
		goto pass;
	r = lvs_real_get(pin->real, pin->gen);
	if (!r) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_count(LVS_C_FRAG_FOLLOW);
	*real_idx = pin->real;
	*gen = pin->gen;
	if (lvs_nat_is_reply(p, r))
		return LVS_FORWARD_REPLY; /* a NAT reply's: OutPkts, counted where it is sent */
	lvs_account(&lvs_svc_stats, r->svc_id, p->l3_len, 0);
	lvs_account(&lvs_real_stats, pin->real, p->l3_len, 0);
	return LVS_FORWARD;
pass:
	lvs_count(LVS_C_PASS_FRAG_NO_STATE);
	return XDP_PASS;
}

#endif /* LVS_FRAG_H */
