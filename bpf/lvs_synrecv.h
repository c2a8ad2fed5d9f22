/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_synrecv.h - SYN_RECV connections kept out of the connection table: a DR / Tun flow's SYN
 * writes a slot of lvs_synrecv (a shared ARRAY, direct-mapped by the flow's hash) instead of an
 * lvs_conns entry; the flow's next client packet without SYN (the handshake's ACK, or FIN / RST /
 * data) enters it in lvs_conns. A SYN flood so overwrites only other SYN_RECV slots, never an
 * established flow's entry, and never pays the insert into the full shared LRU (~590 ns, eviction
 * included; a slot write is one cache line).
 *
 * Provides: lvs_synrecv_find() (the flow's live slot: HIT / GONE / MISS), lvs_synrecv_refresh()
 * (a retransmitted SYN), lvs_synrecv_enter() (the next packet: into lvs_conns), lvs_synrecv_add()
 * (a new SYN_RECV connection, overwriting the slot's), lvs_synrecv_held() and
 * lvs_synrecv_peek() (a deleted service's wait and ICMP errors, as lvs_conn_held / lvs_conn_peek).
 * Expects: lvs_synrecv (lvs_maps.h), lvs_reals, lvs_cfg's SYN_RECV timeout, the packet's lvs_time.
 *
 * A slot is live while its check word matches its other fields (struct lvs_synrecv; a slot torn by
 * two CPUs writing at once, or cleared, is not), it is younger than the SYN_RECV timeout and its
 * realserver slot is still the one it was scheduled to (in use, or deleted with its entries kept).
 * A live slot binds its realserver's InActConn (lvs_lc.h) until it is entered, overwritten by
 * another flow's SYN (unbound, CONN_SYNRECV_EVICTED) or found dead by the control plane's
 * recount (src/director/reader.ts counts live slots as inactive). A flow whose slot was
 * overwritten or expired is a stray at its ACK (lvs_conn.h): the consistent schedulers give it
 * the same realserver, rr / wlc may not -- the price of a flood, as IPVS's drop_entry defence
 * drops SYN_RECV connections. LVS-NAT realservers keep entering the SYN in lvs_conns (the
 * realserver's SYN-ACK must find the reply entry), and so do SYNs that carry FIN or RST.
 *
 * Slot of a flow: the fold of lvs_fc_slot() (lvs_flowcache.h) h, then (h * max_entries) >> 32,
 * max_entries read from the map itself (CO-RE), so any size the loader sets is used whole.
 * The reference model replays both hashes (test/model/synrecv.ts).
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
#include "lvs_lc.h"
#include "lvs_persist.h"
#include "lvs_sync.h"
#include "lvs_conn.h" /* lvs_timeout_ns() */

/* The kernel's struct bpf_map, only the field read (relocated by libbpf against the kernel's BTF). */
struct bpf_map___lvs {
	__u32 max_entries;
} __attribute__((preserve_access_index));

static __always_inline __u32 lvs_synrecv_slot(const struct lvs_flow_key *f)
{
	const __u32 *w = (const __u32 *)f;
	__u32 s = w[0] ^ w[1] ^ w[2] ^ w[3];
	__u32 d = w[4] ^ w[5] ^ w[6] ^ w[7];
	__u32 h = ((s * 0x9e3779b1u) ^ d ^ (w[8] * 0x85ebca6bu) ^ w[9]) * 0x9e3779b1u;
	__u32 n = ((struct bpf_map___lvs *)&lvs_synrecv)->max_entries;

	return (__u32)(((__u64)h * n) >> 32);
}

/* The check word of a slot: its first 15 words mixed (rotate, multiply), so that a slot holding
 * parts of two flows (or nothing: an all-zero slot) fails it. */
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

/* The realserver slot of a live SYN_RECV slot e (see above), else NULL. */
static __always_inline struct lvs_real *lvs_synrecv_live(const struct lvs_synrecv *e,
							 const struct lvs_cfg *cfg, struct lvs_time *t)
{
	__u64 timeout = (__u64)cfg->timeout_s[LVS_CS_SYN_RECV] * NSEC_PER_SEC;
	struct lvs_real *r;
	__u32 idx;

	if (e->check != lvs_synrecv_check(e))
		return NULL;
	if (timeout && lvs_older_than(t, e->last_seen_ns, timeout))
		return NULL;
	idx = e->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != e->gen || !(r->flags & (LVS_REAL_F_ACTIVE | LVS_REAL_F_GONE)))
		return NULL;
	return r;
}

/* What lvs_synrecv_find() found (as lvs_conn_hit()'s LVS_CONN_*). */
#define LVS_SYNRECV_MISS 0
#define LVS_SYNRECV_HIT  1 /* *ep the flow's live slot, *rp its realserver (in use) */
#define LVS_SYNRECV_GONE 2 /* the flow's realserver was deleted, its entries wait for it: drop */

static __always_inline int lvs_synrecv_find(const struct lvs_pkt *p, const struct lvs_cfg *cfg,
					    struct lvs_time *t, struct lvs_synrecv **ep,
					    struct lvs_real **rp)
{
	__u32 slot = lvs_synrecv_slot(&p->flow);
	struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);
	struct lvs_real *r;

	if (!e || !lvs_synrecv_is(e, &p->flow))
		return LVS_SYNRECV_MISS;
	r = lvs_synrecv_live(e, cfg, t);
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
		lvs_persist_touch(svc, p, now, (__u64)cfg->timeout_s[LVS_CS_SYN_RECV] * NSEC_PER_SEC);
	lvs_count(LVS_C_CONN_HIT);
}

/* The flow's next packet without SYN (or with FIN / RST): entered in lvs_conns in state nst, its
 * live count moved, reported for sync (SYN_RECV -> ESTABLISHED is where IPVS syncs), the slot
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

/* A new SYN_RECV connection of svc on realserver ri (slot r): written over its slot; a live
 * SYN_RECV connection of another flow there is unbound and counted. */
static __always_inline void lvs_synrecv_add(const struct lvs_svc *svc, const struct lvs_pkt *p, __u32 ri,
					    const struct lvs_real *r, const struct lvs_cfg *cfg,
					    struct lvs_time *t)
{
	__u32 slot = lvs_synrecv_slot(&p->flow);
	struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);

	if (!e)
		return;
	if (lvs_synrecv_live(e, cfg, t)) {
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
	__u32 slot = lvs_synrecv_slot(&p->flow);
	struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);

	return e && lvs_synrecv_is(e, &p->flow) && lvs_synrecv_live(e, cfg, t);
}

/* A flow's SYN_RECV realserver while it is still the one scheduled (lvs_conn_peek()'s rule: no
 * timeout, read only), else LVS_REAL_NONE. */
static __always_inline __u32 lvs_synrecv_peek(const struct lvs_flow_key *f)
{
	__u32 slot = lvs_synrecv_slot(f);
	struct lvs_synrecv *e = bpf_map_lookup_elem(&lvs_synrecv, &slot);

	if (e && lvs_synrecv_is(e, f) && e->check == lvs_synrecv_check(e) && lvs_real_get(e->real, e->gen))
		return e->real;
	return LVS_REAL_NONE;
}

#endif /* LVS_SYNRECV_H */
