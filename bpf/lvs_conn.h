/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_conn.h - the connection table: which realserver each client flow is on, and the flow's
 * state as IPVS infers it for DR and Tun (from the client's packets only).
 *
 * Provides: lvs_conn_hit() (an established flow's realserver; the entry moved on by the packet),
 * lvs_conn_held() (a deleted service's flow still has its entry), lvs_stray() (TCP without SYN
 * and without entry), lvs_conn_add() (a newly scheduled flow entered) and lvs_conn_peek() (a
 * flow's entry, read only). A DR / Tun SYN is kept out of the table (lvs_synrecv.h) until the
 * flow's next packet enters it.
 * Expects: lvs_conns and lvs_strays (shared LRUs, lvs_maps.h), the idle timeouts of lvs_cfg, the
 * packet's lvs_time; persistence templates (lvs_persist.h) live as long as their connections.
 * Counts CONN_* events; binds and unbinds connections to their realserver's live counts
 * (lvs_lc.h) as entries are made, move on and end; reports entries for connection sync
 * (lvs_sync.h) where they are written: made, promoted, moved on or refreshed.
 */
#ifndef LVS_CONN_H
#define LVS_CONN_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_sched.h"
#include "lvs_persist.h"
#include "lvs_lc.h"
#include "lvs_nat.h"
#include "lvs_sync.h"

#define LVS_REFRESH_NS NSEC_PER_SEC /* entry timestamps are written at most this often */

static __always_inline __u8 lvs_tcp_next_state(__u8 st, __u8 flags)
{
	if (flags & LVS_TCP_RST)
		return LVS_CS_CLOSE;
	if (flags & LVS_TCP_FIN)
		return LVS_CS_FIN_WAIT;
	if (flags & LVS_TCP_SYN)
		return st == LVS_CS_NONE ? LVS_CS_SYN_RECV : st;
	if (st == LVS_CS_NONE || st == LVS_CS_SYN_RECV)
		return LVS_CS_ESTABLISHED;
	return st;
}

/* The idle timeout of a state (lvs_cfg.timeout_s); 0: never expires. */
static __always_inline __u64 lvs_timeout_ns(const struct lvs_cfg *cfg, __u8 st)
{
	if (st >= LVS_CS_MAX)
		return 0;
	return (__u64)cfg->timeout_s[st] * NSEC_PER_SEC;
}

#define LVS_STRAY_PROMOTE_NS (LVS_STRAY_PROMOTE_S * NSEC_PER_SEC)
#define LVS_STRAY_TIMEOUT_NS (LVS_STRAY_TIMEOUT_S * NSEC_PER_SEC)

/* What lvs_conn_hit() found. */
#define LVS_CONN_MISS 0 /* no usable entry: schedule (or take as a stray) */
#define LVS_CONN_HIT  1 /* *ri is the flow's realserver */
#define LVS_CONN_GONE 2 /* the flow's realserver was deleted, its entry waits for it: drop */

static __always_inline int lvs_syn_closed(const struct lvs_pkt *p, __u8 st)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (LVS_TCP_SYN | LVS_TCP_ACK)) == LVS_TCP_SYN &&
	       (st == LVS_CS_FIN_WAIT || st == LVS_CS_CLOSE);
}

/*
 * The flow's entry, if it still holds: its realserver in *ri, its state moved on by this packet,
 * its timestamp (and its persistence template's) refreshed; *hit the entry. LVS_CONN_MISS when the flow must be
 * scheduled anew: no entry, its realserver slot emptied or reused, a SYN on a closed connection's
 * port (the client reuses it), or an entry idle beyond its state's timeout; *stale is set when
 * such an entry is there. LVS_CONN_GONE when the realserver was deleted with its entries kept
 * (LVS_REAL_F_GONE): the entry is neither refreshed nor moved on, so it expires on its own.
 */
static __always_inline int lvs_conn_hit(const struct lvs_svc *svc, const struct lvs_pkt *p,
					const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *ri,
					int *stale, const struct lvs_conn **hit)
{
	struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, &p->flow);
	int tcp = p->proto == IPPROTO_TCP;
	__u8 fl = p->tcp_flags;
	struct lvs_real *r;
	__u32 idx;
	__u8 st, nst;

	if (!c)
		return LVS_CONN_MISS;
	st = c->state;
	idx = c->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != c->gen || !(r->flags & (LVS_REAL_F_ACTIVE | LVS_REAL_F_GONE))) {
		lvs_count(LVS_C_CONN_REAL_GONE);
		*stale = 1;
		return LVS_CONN_MISS;
	}
	if (lvs_syn_closed(p, st)) {
		lvs_count(LVS_C_CONN_REUSED);
		lvs_lc_unbind(idx, st);
		*stale = 1;
		return LVS_CONN_MISS;
	}
	if (lvs_timeout_ns(cfg, st) && lvs_older_than(t, c->last_seen_ns, lvs_timeout_ns(cfg, st))) {
		lvs_count(LVS_C_CONN_EXPIRED);
		lvs_lc_unbind(idx, st);
		*stale = 1;
		return LVS_CONN_MISS;
	}
	if (!(r->flags & LVS_REAL_F_ACTIVE))
		return LVS_CONN_GONE;
	nst = tcp ? lvs_tcp_next_state(st, fl) : LVS_CS_UDP;
	if (nst != st) {
		c->state = nst;
		lvs_lc_move(idx, st, nst);
	}
	if (nst != st || lvs_older_than(t, c->last_seen_ns, LVS_REFRESH_NS)) {
		__u64 now = lvs_time_now(t);
		__u64 then = c->last_seen_ns;

		c->last_seen_ns = now;
		if (svc->flags & LVS_SVC_F_PERSIST)
			lvs_persist_touch(svc, p, now, lvs_timeout_ns(cfg, nst));
		lvs_nat_mirror(p, r, c); /* LVS-NAT: the reply entry follows */
		lvs_sync_conn(cfg, svc, p, r, st, nst, then, now);
	}
	*ri = c->real;
	*hit = c; /* the flow cache's source (lvs_flowcache.h) */
	lvs_count(LVS_C_CONN_HIT);
	return LVS_CONN_HIT;
}

/* A deleted service's flow whose entry still holds (not expired, not a SYN reusing a closed
 * one, its realserver slot still the entry's, in use or deleted): its packets are dropped.
 * Nothing is counted, refreshed or moved on. */
static __always_inline int lvs_conn_held(const struct lvs_pkt *p, const struct lvs_cfg *cfg,
					 struct lvs_time *t)
{
	struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, &p->flow);
	struct lvs_real *r;
	__u32 idx;

	if (!c)
		return 0;
	idx = c->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != c->gen || !(r->flags & (LVS_REAL_F_ACTIVE | LVS_REAL_F_GONE)))
		return 0;
	if (lvs_syn_closed(p, c->state))
		return 0;
	if (lvs_timeout_ns(cfg, c->state) &&
	    lvs_older_than(t, c->last_seen_ns, lvs_timeout_ns(cfg, c->state)))
		return 0;
	return 1;
}

/*
 * A TCP packet without SYN of a flow with no usable entry (sloppy_tcp off, as IPVS, but still
 * forwarded: a director taking over a pair's flows must not cut them). Its realserver is the
 * stray entry's (lvs_strays) while that is younger than LVS_STRAY_TIMEOUT_NS and its slot
 * unchanged, else a template's or the table's, recorded as a new stray. A stray seen again more
 * than LVS_STRAY_PROMOTE_NS after it was recorded, by a packet without FIN or RST, is a flow:
 * entered in lvs_conns as ESTABLISHED (*promoted set). Returns LVS_REAL_NONE with *why when no
 * realserver can take it.
 */
static __always_inline __u32 lvs_stray(const struct lvs_svc *svc, const struct lvs_pkt *p,
				       const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *why,
				       int *promoted)
{
	struct lvs_conn *s = bpf_map_lookup_elem(&lvs_strays, &p->flow);
	struct lvs_conn nc = {};
	struct lvs_real *r = NULL;
	__u32 ri;

	if (s && !lvs_older_than(t, s->last_seen_ns, LVS_STRAY_TIMEOUT_NS) &&
	    (r = lvs_real_get(s->real, s->gen))) {
		ri = s->real;
		if ((p->tcp_flags & (LVS_TCP_FIN | LVS_TCP_RST)) ||
		    !lvs_older_than(t, s->last_seen_ns, LVS_STRAY_PROMOTE_NS)) {
			lvs_count(LVS_C_CONN_STRAY);
			return ri;
		}
		nc.last_seen_ns = lvs_time_now(t);
		nc.real = ri;
		nc.gen = s->gen;
		nc.state = LVS_CS_ESTABLISHED;
		bpf_map_update_elem(&lvs_conns, &p->flow, &nc, BPF_ANY);
		lvs_nat_mirror(p, r, &nc); /* LVS-NAT: replies translated from now on */
		bpf_map_delete_elem(&lvs_strays, &p->flow);
		lvs_lc_move(ri, LVS_CS_NONE, LVS_CS_ESTABLISHED);
		lvs_count(LVS_C_CONN_PROMOTED);
		lvs_sync_conn(cfg, svc, p, r, LVS_CS_NONE, LVS_CS_ESTABLISHED, 0, nc.last_seen_ns);
		*promoted = 1;
		return ri;
	}
	if (s && lvs_real_get(s->real, s->gen))
		lvs_lc_unbind(s->real, LVS_CS_NONE); /* an expired stray, replaced below */
	ri = lvs_pick_stray(svc, p, cfg, t, why);
	if (ri == LVS_REAL_NONE)
		return ri;
	r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r)
		return ri; /* the caller drops it (drop_bad_real) */
	nc.last_seen_ns = lvs_time_now(t);
	nc.real = ri;
	nc.gen = r->gen;
	nc.state = LVS_CS_NONE;
	bpf_map_update_elem(&lvs_strays, &p->flow, &nc, BPF_ANY);
	lvs_lc_bind(ri, LVS_CS_NONE);
	lvs_count(LVS_C_CONN_STRAY);
	return ri;
}

/* A new flow of service svc, scheduled to realserver ri (slot r), entered in the table (a NAT
 * flow with its reply entry). */
static __always_inline void lvs_conn_add(const struct lvs_svc *svc, const struct lvs_pkt *p, __u32 ri,
					 const struct lvs_real *r, const struct lvs_cfg *cfg,
					 struct lvs_time *t)
{
	struct lvs_conn nc = {};

	nc.last_seen_ns = lvs_time_now(t);
	nc.real = ri;
	nc.gen = r->gen;
	nc.state = p->proto == IPPROTO_TCP ? lvs_tcp_next_state(LVS_CS_NONE, p->tcp_flags) : LVS_CS_UDP;
	bpf_map_update_elem(&lvs_conns, &p->flow, &nc, BPF_ANY);
	lvs_lc_bind(ri, nc.state);
	lvs_nat_mirror(p, r, &nc);
	lvs_count(LVS_C_CONN_NEW);
	lvs_sync_conn(cfg, svc, p, r, LVS_CS_NONE, nc.state, 0, nc.last_seen_ns);
}

/* A flow's entry while its realserver is still the one it was scheduled to; neither refreshed
 * nor moved on (an ICMP error about a flow is not the client's packet). */
static __always_inline struct lvs_conn *lvs_conn_peek(const struct lvs_flow_key *f)
{
	struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, f);

	if (c && lvs_real_get(c->real, c->gen))
		return c;
	return NULL;
}

#endif /* LVS_CONN_H */
