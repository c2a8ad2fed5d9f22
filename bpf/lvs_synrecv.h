/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_synrecv.h - SYN_RECV connections kept out of the connection table: a DR / Tun flow's SYN
 * writes a way of lvs_synrecv (a shared ARRAY of 4-way buckets, by a keyed hash of the flow)
 * instead of an lvs_conns entry; the flow's next client packet without SYN (the handshake's ACK,
 * or FIN / RST / data) enters it in lvs_conns. A SYN flood so overwrites only other SYN_RECV
 * ways, never an established flow's entry, and never pays the insert into the full shared LRU
 * (~590 ns, eviction included; a way write is one cache line).
 *
 * Provides: lvs_synrecv_find() (the flow's live way: HIT / GONE / MISS), lvs_synrecv_refresh()
 * (a retransmitted SYN), lvs_synrecv_enter() (the next packet: into lvs_conns), lvs_synrecv_add()
 * (a new SYN_RECV connection, into its bucket), lvs_synrecv_held() and lvs_synrecv_peek() (a
 * deleted service's wait and ICMP errors, as lvs_conn_held / lvs_conn_peek).
 * Expects: lvs_synrecv and its key cfg_key_synrecv0..2 (lvs_maps.h), lvs_reals, lvs_cfg's
 * SYN_RECV timeout, the packet's lvs_time.
 *
 * A way is live while its check word matches its other fields (struct lvs_synrecv; a way torn by
 * two CPUs writing at once, or cleared, is not), it is younger than the SYN_RECV timeout and its
 * realserver slot is still the one it was scheduled to (in use, or deleted with its entries kept).
 * A live way binds its realserver's InActConn (lvs_lc.h) until it is entered, evicted by another
 * flow's SYN (unbound, CONN_SYNRECV_EVICTED) or found dead by the control plane's recount
 * (src/director/reader.ts counts live ways as inactive).
 *
 * Which way a new SYN takes (lvs_synrecv_add): the flow's own way (a dead one: a live one was a
 * retransmit, refreshed), else the first way that is expired or whose realserver slot changed
 * (an empty way is both), else the way seen longest ago (lowest way on a tie); the order reads no
 * check word (a torn way is taken by its age), the taken way's connection is evicted if it was
 * live (check word included). So a flow
 * keeps at most one way, and a client's SYN_RECV connection is lost only when 4 newer SYNs land in
 * its bucket within its handshake. A flow whose way was evicted or expired is a stray at its ACK
 * (lvs_conn.h): the consistent schedulers give it the same realserver, rr / wlc may not -- the
 * price of a flood, as IPVS's drop_entry defence drops SYN_RECV connections. LVS-NAT realservers
 * keep entering the SYN in lvs_conns (the realserver's SYN-ACK must find the reply entry), and so
 * do SYNs that carry FIN or RST.
 *
 * Bucket of a flow: h = jhash2 of the 12 words (key0, key1, the flow key's 10 words) with initval
 * key2, key0..2 the director's own 96 random bits (cfg_key_synrecv0..2: drawn at its first load,
 * kept across upgrades; jhash's whole state, so more key would add nothing), then
 * (h * buckets) >> 32, buckets = max_entries / LVS_SYNRECV_WAYS read from the map itself (CO-RE),
 * so any size the loader sets is used whole. Keyed, and not by lvs_cfg's hash_seed: that seed is
 * the same on directors behind one ECMP group (their schedulers must agree) and 0 by default, so
 * anyone could compute 4 SYNs that share a client's bucket and evict its SYN_RECV way; no slot
 * of this table is compared across directors, so each keys its own. The key words lead the
 * input: after the first block jhash's 96-bit state depends on all of them (an initval alone
 * would key 32 bits), at no cost (12 words take the 3 mixes and the final of 10). The reference
 * model replays it (test/model/synrecv.ts).
 */
#ifndef LVS_SYNRECV_H
#define LVS_SYNRECV_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_sched.h"
#include "lvs_hash.h"
#include "lvs_lc.h"
#include "lvs_persist.h"
#include "lvs_sync.h"
#include "lvs_conn.h" /* lvs_timeout_ns() */

/* The kernel's struct bpf_map, only the field read (relocated by libbpf against the kernel's BTF). */
struct bpf_map___lvs {
	__u32 max_entries;
} __attribute__((preserve_access_index));

/* The first slot of the flow's bucket (see above). */
static __always_inline __u32 lvs_synrecv_bucket(const struct lvs_flow_key *f)
{
	const __u32 *k = (const __u32 *)f;
	__u32 n = ((struct bpf_map___lvs *)&lvs_synrecv)->max_entries / LVS_SYNRECV_WAYS;
	__u32 a, b, c;

	_Static_assert(sizeof(*f) == 10 * 4, "the bucket hash reads the flow key as 10 words");
	a = b = c = LVS_JHASH_INITVAL + (12 << 2) + cfg_key_synrecv2;
	a += cfg_key_synrecv0; b += cfg_key_synrecv1; c += k[0];
	lvs_jhash_mix(a, b, c);
	a += k[1]; b += k[2]; c += k[3];
	lvs_jhash_mix(a, b, c);
	a += k[4]; b += k[5]; c += k[6];
	lvs_jhash_mix(a, b, c);
	a += k[7]; b += k[8]; c += k[9];
	lvs_jhash_final(a, b, c);
	return (__u32)(((__u64)c * n) >> 32) * LVS_SYNRECV_WAYS;
}

/* The check word of a way: its first 15 words mixed (rotate, multiply), so that a way holding
 * parts of two flows (or nothing: an all-zero way) fails it. */
static __always_inline __u32 lvs_synrecv_check(const struct lvs_synrecv *e)
{
	const __u32 *w = (const __u32 *)e;
	__u32 h = LVS_SYNRECV_CHECK_SEED;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*e) / 4) - 1; i++) {
		h ^= w[i];
		h = ((h << 13) | (h >> 19)) * 0x9e3779b1u;
	}
	return h ^ (h >> 16);
}

static __always_inline int lvs_synrecv_is(const struct lvs_synrecv *e, const struct lvs_flow_key *f)
{
	const __u32 *x = (const __u32 *)&e->key, *y = (const __u32 *)f;
	__u32 d = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*f) / 4); i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* The realserver slot of a SYN_RECV way e younger than the SYN_RECV timeout and still on the
 * realserver slot it was scheduled to (in use or gone), its check word not read, else NULL. */
static __always_inline struct lvs_real *lvs_synrecv_fresh(const struct lvs_synrecv *e,
							  const struct lvs_cfg *cfg, struct lvs_time *t)
{
	__u64 timeout = lvs_timeout_ns(cfg, LVS_CS_SYN_RECV);
	struct lvs_real *r;
	__u32 idx;

	if (timeout && lvs_older_than(t, e->last_seen_ns, timeout))
		return NULL;
	idx = e->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != e->gen || !(r->flags & (LVS_REAL_F_ACTIVE | LVS_REAL_F_GONE)))
		return NULL;
	return r;
}

/* The realserver slot of a live SYN_RECV way e (see above), else NULL. */
static __always_inline struct lvs_real *lvs_synrecv_live(const struct lvs_synrecv *e,
							 const struct lvs_cfg *cfg, struct lvs_time *t)
{
	if (e->check != lvs_synrecv_check(e))
		return NULL;
	return lvs_synrecv_fresh(e, cfg, t);
}

/* What lvs_synrecv_find() found (as lvs_conn_hit()'s LVS_CONN_*). */
#define LVS_SYNRECV_MISS 0
#define LVS_SYNRECV_HIT  1 /* *ep the flow's live slot, *rp its realserver (in use) */
#define LVS_SYNRECV_GONE 2 /* the flow's realserver was deleted, its entries wait for it: drop */

/*
 * The bucket's 4 ways are read by global functions: the verifier checks each once, on its own,
 * where 4 unrolled ways inlined at every call on the packet path multiply its states past its
 * limit (a BPF-to-BPF call costs a few ns). Their pointer arguments may be NULL to the verifier.
 */

/* The slot of the flow's first way (lowest) in bucket b (lvs_synrecv_bucket()) that holds it
 * live, else -1. */
__noinline int lvs_synrecv_way_of(__u32 b, const struct lvs_flow_key *f, const struct lvs_cfg *cfg,
				  struct lvs_time *t)
{
	if (!f || !cfg || !t)
		return -1;
#pragma unroll
	for (__u32 i = 0; i < LVS_SYNRECV_WAYS; i++) {
		__u32 slot = b + i;
		struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);

		if (e && lvs_synrecv_is(e, f) && lvs_synrecv_live(e, cfg, t))
			return (int)slot;
	}
	return -1;
}

/* The way a new SYN of the flow takes (the rule above): its slot * 2, + 1 when it holds a live
 * connection (evicted); -1 if none. The order reads only ways' ages and realserver slots (a
 * check word is 15 dependent multiplies: 4 of them were ~60-100 ns of a SYN into a full
 * bucket); the taken way's check word then says whether it held a connection to unbind, so a
 * torn way is never unbound, and is taken as any other by its age. */
__noinline int lvs_synrecv_victim(__u32 b, const struct lvs_flow_key *f, const struct lvs_cfg *cfg,
				  struct lvs_time *t)
{
	__u32 own = LVS_SYNRECV_WAYS, dead = LVS_SYNRECV_WAYS, old = 0, way, slot;
	__u64 oldest = ~0ULL;
	struct lvs_synrecv *e;

	if (!f || !cfg || !t)
		return -1;
#pragma unroll
	for (__u32 i = 0; i < LVS_SYNRECV_WAYS; i++) {
		slot = b + i;
		e = bpf_map_lookup_elem(&lvs_synrecv, &slot);
		if (!e)
			return -1;
		if (own == LVS_SYNRECV_WAYS && lvs_synrecv_is(e, f))
			own = i;
		if (dead < LVS_SYNRECV_WAYS)
			continue; /* taken unless a later way is the flow's own: no age to read */
		if (!lvs_synrecv_fresh(e, cfg, t)) {
			dead = i;
			continue;
		}
		if (e->last_seen_ns < oldest) {
			oldest = e->last_seen_ns;
			old = i;
		}
	}
	way = own < LVS_SYNRECV_WAYS ? own : dead < LVS_SYNRECV_WAYS ? dead : old;
	slot = b + (way & (LVS_SYNRECV_WAYS - 1));
	e = bpf_map_lookup_elem(&lvs_synrecv, &slot);
	if (!e)
		return -1;
	return (int)(slot * 2 + (lvs_synrecv_live(e, cfg, t) ? 1 : 0));
}

/* A flow's SYN_RECV realserver while it is still the one scheduled (lvs_conn_peek()'s rule: no
 * timeout, read only; its first way that holds it), else LVS_REAL_NONE. */
__noinline __u32 lvs_synrecv_peek(const struct lvs_flow_key *f)
{
	__u32 b;

	if (!f)
		return LVS_REAL_NONE;
	b = lvs_synrecv_bucket(f);
#pragma unroll
	for (__u32 i = 0; i < LVS_SYNRECV_WAYS; i++) {
		__u32 slot = b + i;
		struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);

		if (e && lvs_synrecv_is(e, f) && e->check == lvs_synrecv_check(e) && lvs_real_get(e->real, e->gen))
			return e->real;
	}
	return LVS_REAL_NONE;
}

/* The flow's first way (lowest) in its bucket b that holds it live. The caller hashes the flow
 * once (lvs_synrecv_bucket()) for this and, on a miss, for lvs_synrecv_add(). */
static __always_inline int lvs_synrecv_find(__u32 b, const struct lvs_pkt *p, const struct lvs_cfg *cfg,
					    struct lvs_time *t, struct lvs_synrecv **ep,
					    struct lvs_real **rp)
{
	int way = lvs_synrecv_way_of(b, &p->flow, cfg, t);
	__u32 slot, idx;
	struct lvs_synrecv *e;
	struct lvs_real *r;

	if (way < 0)
		return LVS_SYNRECV_MISS;
	slot = (__u32)way;
	e = bpf_map_lookup_elem(&lvs_synrecv, &slot);
	if (!e)
		return LVS_SYNRECV_MISS;
	idx = e->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r)
		return LVS_SYNRECV_MISS;
	if (!(r->flags & LVS_REAL_F_ACTIVE))
		return LVS_SYNRECV_GONE;
	*ep = e;
	*rp = r;
	return LVS_SYNRECV_HIT;
}

/* A retransmitted SYN: same realserver, timestamp (and a persistent service's template) refreshed. */
static __always_inline void lvs_synrecv_refresh(const struct lvs_svc *svc, const struct lvs_pkt *p,
						const struct lvs_cfg *cfg, struct lvs_time *t,
						struct lvs_synrecv *e)
{
	__u64 now = lvs_time_now(t);

	e->last_seen_ns = now;
	e->check = lvs_synrecv_check(e);
	if (svc->flags & LVS_SVC_F_PERSIST)
		lvs_persist_touch(svc, p, now, lvs_timeout_ns(cfg, LVS_CS_SYN_RECV));
	lvs_count(LVS_C_CONN_HIT);
}

/* The flow's next packet without SYN (or with FIN / RST): entered in lvs_conns in state nst, its
 * live count moved, reported for sync (SYN_RECV -> ESTABLISHED is where IPVS syncs), the way
 * cleared. */
static __always_inline void lvs_synrecv_enter(const struct lvs_svc *svc, const struct lvs_pkt *p,
					      const struct lvs_cfg *cfg, struct lvs_time *t,
					      struct lvs_synrecv *e, const struct lvs_real *r, __u8 nst)
{
	struct lvs_conn nc = {};
	__u64 then = e->last_seen_ns;

	nc.last_seen_ns = lvs_time_now(t);
	nc.real = e->real;
	nc.gen = e->gen;
	nc.state = nst;
	bpf_map_update_elem(&lvs_conns, &p->flow, &nc, BPF_ANY);
	__builtin_memset(e, 0, sizeof(*e));
	lvs_lc_move(nc.real, LVS_CS_SYN_RECV, nst);
	if (svc->flags & LVS_SVC_F_PERSIST)
		lvs_persist_touch(svc, p, nc.last_seen_ns, lvs_timeout_ns(cfg, nst));
	lvs_count(LVS_C_CONN_HIT);
	lvs_count(LVS_C_CONN_SYNRECV_ENTERED);
	lvs_sync_conn(cfg, svc, p, r, LVS_CS_SYN_RECV, nst, then, nc.last_seen_ns);
}

/* A new SYN_RECV connection of svc on realserver ri (slot r): written over the way of its bucket
 * b the rule above picks; a live SYN_RECV connection of another flow there is unbound and counted. */
static __always_inline void lvs_synrecv_add(__u32 b, const struct lvs_svc *svc, const struct lvs_pkt *p, __u32 ri,
					    const struct lvs_real *r, const struct lvs_cfg *cfg,
					    struct lvs_time *t)
{
	int v = lvs_synrecv_victim(b, &p->flow, cfg, t);
	struct lvs_synrecv *e;
	__u32 slot;

	if (v < 0)
		return;
	slot = (__u32)v >> 1;
	e = bpf_map_lookup_elem(&lvs_synrecv, &slot);
	if (!e)
		return;
	if (v & 1) {
		lvs_lc_unbind(e->real, LVS_CS_SYN_RECV);
		lvs_count(LVS_C_CONN_SYNRECV_EVICTED);
	}
	e->key = p->flow;
	e->last_seen_ns = lvs_time_now(t);
	e->real = ri;
	e->gen = r->gen;
	e->svc_id = svc->id;
	e->check = lvs_synrecv_check(e);
	lvs_lc_bind(ri, LVS_CS_SYN_RECV);
	lvs_count(LVS_C_CONN_NEW);
	lvs_count(LVS_C_CONN_SYNRECV_NEW);
}

/* A deleted service's SYN_RECV connection still live (lvs_conn_held()'s rule). */
static __always_inline int lvs_synrecv_held(const struct lvs_pkt *p, const struct lvs_cfg *cfg,
					    struct lvs_time *t)
{
	return lvs_synrecv_way_of(lvs_synrecv_bucket(&p->flow), &p->flow, cfg, t) >= 0;
}

#endif /* LVS_SYNRECV_H */
