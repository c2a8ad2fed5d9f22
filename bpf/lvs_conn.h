/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_conn.h - the connection table: which realserver each client flow is on, and the flow's
 * state as IPVS infers it for DR and Tun (from the client's packets only).
 *
 * Provides: lvs_conn_hit() (an established flow's realserver; the entry moved on by the packet),
 * lvs_conn_add() (a newly scheduled flow entered) and lvs_conn_peek() (a flow's entry, read only).
 * Expects: lvs_conns (a shared LRU, lvs_maps.h), the idle timeouts of lvs_cfg, the packet's
 * lvs_time; persistence templates (lvs_persist.h) are refreshed along with their connections.
 * Counts CONN_* events.
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

/*
 * The flow's entry, if it still holds: its realserver in *ri, its state moved on by this packet,
 * its timestamp (and its persistence template's) refreshed. Returns 0 when the flow must be
 * scheduled anew: no entry, its realserver gone, a SYN on a closed connection's port (the client
 * reuses it), or an entry idle beyond its state's timeout.
 */
static __always_inline int lvs_conn_hit(const struct lvs_svc *svc, const struct lvs_pkt *p,
					const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *ri)
{
	struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, &p->flow);
	int tcp = p->proto == IPPROTO_TCP;
	__u8 fl = p->tcp_flags;
	__u8 st, nst;

	if (!c)
		return 0;
	st = c->state;
	if (!lvs_real_get(c->real, c->gen)) {
		lvs_count(LVS_C_CONN_REAL_GONE);
		return 0;
	}
	if (tcp && (fl & (LVS_TCP_SYN | LVS_TCP_ACK)) == LVS_TCP_SYN &&
	    (st == LVS_CS_FIN_WAIT || st == LVS_CS_CLOSE)) {
		lvs_count(LVS_C_CONN_REUSED);
		return 0;
	}
	if (lvs_timeout_ns(cfg, st) && lvs_older_than(t, c->last_seen_ns, lvs_timeout_ns(cfg, st))) {
		lvs_count(LVS_C_CONN_EXPIRED);
		return 0;
	}
	nst = tcp ? lvs_tcp_next_state(st, fl) : LVS_CS_UDP;
	if (nst != st)
		c->state = nst;
	if (nst != st || lvs_older_than(t, c->last_seen_ns, LVS_REFRESH_NS)) {
		__u64 now = lvs_time_now(t);

		c->last_seen_ns = now;
		if (svc->flags & LVS_SVC_F_PERSIST)
			lvs_persist_touch(svc, p, now);
	}
	*ri = c->real;
	lvs_count(LVS_C_CONN_HIT);
	return 1;
}

/* A new flow, scheduled to realserver ri of generation gen, entered in the table. */
static __always_inline void lvs_conn_add(const struct lvs_pkt *p, __u32 ri, __u32 gen,
					 struct lvs_time *t)
{
	struct lvs_conn nc = {};

	nc.last_seen_ns = lvs_time_now(t);
	nc.real = ri;
	nc.gen = gen;
	nc.state = p->proto == IPPROTO_TCP ? lvs_tcp_next_state(LVS_CS_NONE, p->tcp_flags) : LVS_CS_UDP;
	bpf_map_update_elem(&lvs_conns, &p->flow, &nc, BPF_ANY);
	lvs_count(LVS_C_CONN_NEW);
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
