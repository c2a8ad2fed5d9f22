/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_flowcache.h - the per-CPU flow cache: an established flow's service and realserver in one
 * array probe, in front of the service lookup (lvs_services, a HASH) and the connection table
 * (lvs_conns, a shared LRU), the two hashed lookups that made up most of an established packet's
 * cost.
 *
 * Provides: lvs_fc_epoch() (the configuration epoch, read before any lookup a cache entry is made
 * from), lvs_fc_hit() (the flow's cached answer, when it still is the full path's answer) and
 * lvs_fc_fill() (an entry made after the full path found the flow in lvs_conns).
 * Expects: lvs_flowcache (per-CPU, private) and lvs_epoch (bumped by the control plane's
 * MapWriter after every write it makes), lvs_reals, CONFIG_HZ (libbpf's kconfig).
 *
 * An entry is the full path's answer for as long as nothing it was made from can have changed:
 *  - the configuration: every control-plane write (services, realservers, marks, settings,
 *    connection entries inserted or deleted, sync) bumps lvs_epoch; an entry of another epoch is
 *    never used;
 *  - the realserver: its slot is read for the forward anyway; a slot no longer ACTIVE or of
 *    another generation falls through (deleted, gone, reused);
 *  - the connection entry: only states a packet without SYN, FIN or RST leaves as they are
 *    (ESTABLISHED, UDP) are cached, and only packets without those flags hit, so the packet would
 *    move nothing on (no lvs_lc_move, no state-change event); a cache entry lapses, counted in
 *    jiffies (inlined by the JIT: no clock read on a hit), before the full path would refresh
 *    the connection entry (LVS_REFRESH_NS after its timestamp: the persistence touch, the NAT
 *    mirror and the refresh event happen there). A timeout is at least a second, so an entry
 *    that would have expired is past its refresh too. Another CPU refreshing the entry only
 *    makes the cached deadline earlier than it need be: the probe falls through earlier, never
 *    later. (Jiffies that stall, as in a descheduled VM until its next tick, delay a refresh by
 *    as long; nothing else.)
 *  - fragments and everything that is not TCP / UDP to a service never probe.
 * What the cache cannot see is an entry evicted from the full LRU by another flow's insert: such
 * a flow keeps its realserver for at most LVS_REFRESH_NS, counted as a hit, and then takes the
 * full path (where, without its entry, it is a stray sent by the consistent table, as before).
 *
 * RSS keeps a flow on one CPU, so one CPU's cache is enough; a flow moved to another CPU misses
 * there once. Slots are direct-mapped (a colliding flow replaces the entry: both still work).
 */
#ifndef LVS_FLOWCACHE_H
#define LVS_FLOWCACHE_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_clock.h" /* NSEC_PER_SEC */
#include "lvs_fwd.h"   /* lvs_tun_label() */

#define LVS_FC_REFRESH_NS NSEC_PER_SEC /* = LVS_REFRESH_NS (lvs_conn.h) */
#define LVS_FC_MIN_HZ     100          /* no kernel ticks slower: a jiffy is at most 10 ms */

/* The kernel's tick rate (libbpf reads it from the kernel's config; 0 where that is not
 * readable, and then the slowest rate is assumed: entries lapse early, never late). */
extern unsigned int CONFIG_HZ __kconfig __weak;
#define LVS_FC_FLAGS (LVS_TCP_SYN | LVS_TCP_FIN | LVS_TCP_RST)

static __always_inline __u64 lvs_fc_epoch(void)
{
	__u32 zero = 0;
	__u64 *e = bpf_map_lookup_elem(&lvs_epoch, &zero);

	return e ? *e : 0;
}

/* The slot of a flow: its key's 10 words folded, then a multiplicative hash scaled to the
 * cache's slots (multiply-shift: of 2^k slots, the hash's top k bits). */
static __always_inline __u32 lvs_fc_slot(const struct lvs_flow_key *f)
{
	const __u32 *w = (const __u32 *)f;
	__u32 s = w[0] ^ w[1] ^ w[2] ^ w[3];
	__u32 d = w[4] ^ w[5] ^ w[6] ^ w[7];
	__u32 h = (s * 0x9e3779b1u) ^ d ^ (w[8] * 0x85ebca6bu) ^ w[9];

	return (__u32)(((__u64)(h * 0x9e3779b1u) * cfg_size_max_flowcache) >> 32);
}

static __always_inline int lvs_fc_same(const struct lvs_flow_key *a, const struct lvs_flow_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*a) / 4); i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* Probes may answer only packets that would move their entry on not at all. Benchmark only
 * (`make -C bpf bench-objects`, lvs_director_nofc.o): -DLVS_BENCH_NO_FLOWCACHE never probes. */
static __always_inline int lvs_fc_may_probe(const struct lvs_pkt *p)
{
#ifdef LVS_BENCH_NO_FLOWCACHE
	return 0;
#endif
	return p->frag == LVS_FRAG_NONE && !(p->proto == IPPROTO_TCP && (p->tcp_flags & LVS_FC_FLAGS));
}

/* The cached answer for this packet, or NULL (take the full path). */
static __always_inline struct lvs_fc_entry *lvs_fc_hit(const struct lvs_pkt *p, __u64 epoch,
						       struct lvs_real **rp)
{
	__u32 slot = lvs_fc_slot(&p->flow);
	struct lvs_fc_entry *e = bpf_map_lookup_elem(&lvs_flowcache, &slot);
	struct lvs_real *r;
	__u32 idx;

	if (!e)
		return NULL;
	if (e->epoch != epoch)
		return NULL;
	if (!lvs_fc_same(&e->key, &p->flow))
		return NULL;
	if (bpf_jiffies64() >= e->until_jiffies) /* its refresh may be due: the full path decides */
		return NULL;
	idx = e->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != e->gen || !(r->flags & LVS_REAL_F_ACTIVE))
		return NULL;
	*rp = r;
	return e;
}

/* The full path found the flow's entry c (already moved on by this packet) under svc_id. */
static __always_inline void lvs_fc_fill(const struct lvs_pkt *p, const struct lvs_cfg *cfg,
					__u64 epoch, __u32 svc_id, const struct lvs_conn *c,
					const struct lvs_time *t)
{
	__u64 hz = CONFIG_HZ >= LVS_FC_MIN_HZ ? CONFIG_HZ : LVS_FC_MIN_HZ;
	__u64 j0, now, ticks;
	struct lvs_real *r;
	__u32 idx;
	struct lvs_fc_entry *e;
	__u32 slot;

	if (!lvs_fc_may_probe(p) || (c->state != LVS_CS_ESTABLISHED && c->state != LVS_CS_UDP))
		return;
	/* The entry lapses ticks jiffies after j0, each at most NSEC_PER_SEC / hz long. The cached
	 * coarse clock plus its lag bounds the time from above all through this packet
	 * (lvs_clock.h), so no clock is read here. While jiffies < j0 + ticks, less than ticks
	 * jiffies have passed and the entry's age stays within LVS_FC_REFRESH_NS: the full path
	 * would neither refresh nor expire it. (lvs_conn_hit() leaves no timestamp ahead of the
	 * clock: it would have refreshed it.) */
	j0 = bpf_jiffies64();
	now = t->lo + LVS_CLOCK_LAG_NS;
	if (c->last_seen_ns + LVS_FC_REFRESH_NS <= now)
		return;
	ticks = (c->last_seen_ns + LVS_FC_REFRESH_NS - now) * hz / NSEC_PER_SEC;
	if (!ticks)
		return;
	slot = lvs_fc_slot(&p->flow);
	e = bpf_map_lookup_elem(&lvs_flowcache, &slot);
	if (!e)
		return;
	e->key = p->flow;
	e->until_jiffies = j0 + ticks;
	e->epoch = epoch;
	e->real = c->real;
	e->gen = c->gen;
	e->svc_id = svc_id;
	/* IPv6 Tun (lvs_fwd_tun: any family but IPv4): the flow label hashed once per fill. */
	idx = c->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	e->tun_label = r && r->method == LVS_FWD_TUN && r->family != LVS_FAMILY_IPV4 ? lvs_tun_label(p, cfg) : 0;
}

#endif /* LVS_FLOWCACHE_H */
